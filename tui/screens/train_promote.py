"""What the Train screen's runs list reads from judgments.db, and promoting from it.

- `read_best(workspace, run_ids)`: each run's best-judged checkpoint (one build_report for
  all runs). A workspace without judgments.db has nothing rated: the file is not created,
  and an existing one is opened read-only.
- `checkpoint_to_promote(run, best_step)`: the best-judged checkpoint if it is complete, else
  the newest complete one (engine.models.portable.check_complete decides).
- `gate_checkpoint` / `promote_checkpoint`: engine.models.versions' gate and promote, as
  `voicebench versions gate|promote` run them, on a connection of the calling thread.
- `ForceDialog`: the gate did not say "better"; y promotes anyway (recorded as forced).

Everything here runs in the screen's thread workers; nothing imports torch.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from engine.train.runs import RunSummary


@dataclasses.dataclass(frozen=True)
class BestCheckpoint:
    best: dict[str, Any] | None  # engine.judge.report.best_checkpoint's answer
    has_outputs: bool  # the store holds canary outputs of this run's checkpoints


def read_best(workspace: Any, run_ids: list[str]) -> dict[str, BestCheckpoint]:
    """Best checkpoint per run id; {} when there is no store yet (nothing rated)."""
    path = Path(workspace.db_path)
    if not path.exists() or not run_ids:
        return {}
    from engine.judge.report import best_checkpoint, build_report
    from engine.judge.store import open_store

    db = open_store(path, read_only=True)
    try:
        data = build_report(db)
        with_outputs = {row["run_id"] for row in data["leaderboard"] if row["checkpoint_step"]}
        return {run_id: BestCheckpoint(best_checkpoint(db, run_id, data), run_id in with_outputs)
                for run_id in run_ids}
    finally:
        db.close()


def _step(folder: Path) -> int:
    match = re.search(r"checkpoint-(\d+)$", folder.name)
    return int(match.group(1)) if match else -1


def checkpoint_to_promote(run: RunSummary, best_step: int | None) -> Path:
    """The checkpoint folder to promote; raises ArtefactError (a sentence) when none is complete."""
    from engine.models.portable import ArtefactError, check_complete

    folders = sorted((run.path / "checkpoints").glob("checkpoint-*"), key=_step, reverse=True)
    if best_step is not None:
        folders.sort(key=lambda folder: _step(folder) != best_step)  # the best first, then newest first
    problems = []
    for folder in folders:
        try:
            check_complete(folder)
            return folder
        except ArtefactError as error:
            problems.append(str(error))
    where = f" ({problems[0]})" if problems else ""
    raise ArtefactError(f"{run.label}: no complete checkpoint in {run.path / 'checkpoints'}{where}; "
                        "let the run save one (or resume it) first.")


def _store(workspace: Any) -> Any:
    from engine.judge.workspace_store import open_workspace_store

    return open_workspace_store(workspace)


def gate_checkpoint(workspace: Any, folder: Path) -> Any:
    """The gate's verdict for `folder` against the current version (writes nothing but the store's setup)."""
    from engine.models.versions import gate_for

    db = _store(workspace)
    try:
        return gate_for(workspace, db, folder)
    finally:
        db.close()


def promote_checkpoint(workspace: Any, folder: Path, *, force: bool) -> Any:
    """engine.models.versions.promote; returns its Promotion, raises VersionError/ArtefactError."""
    from engine.models.versions import promote

    db = _store(workspace)
    try:
        return promote(workspace, db, folder, note="promoted from the Train screen", force=force)
    finally:
        db.close()


class ForceDialog(ModalScreen[bool]):
    """The gate did not find the checkpoint better: promote anyway (recorded as forced)?"""

    BINDINGS = [
        Binding("y", "dismiss(True)", "Promote anyway", id="train.promote.force"),
        Binding("n,escape", "dismiss(False)", "Don't promote", id="train.promote.cancel"),
    ]
    DEFAULT_CSS = """
    ForceDialog { align: center middle; }
    ForceDialog > Vertical { width: 72; max-width: 100%; height: auto; border: thick $warning;
                             background: $surface; padding: 1 2; }
    ForceDialog .dialog--title { text-style: bold; }
    """

    def __init__(self, checkpoint: str, verdict: str, message: str) -> None:
        super().__init__()
        self.checkpoint, self.verdict, self.message = checkpoint, verdict, message

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Gate: {self.verdict} — promote {self.checkpoint} anyway?", classes="dialog--title")
            yield Static(self.message, id="force-message")
            yield Label("y: promote anyway (recorded as forced with the version) · n / escape: don't")
