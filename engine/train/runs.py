"""Reading run folders back: the runs list, one run's loss curves, and how two configs differ.

A run folder `runs/<id>/` holds `config.toml` (the resolved TrainConfig), `status.json`
(latest state, see engine/train/record.py) and `events.jsonl` (the JSON-lines protocol of
engine/train/events.py). Everything here tolerates half-written or missing files: a run
still being written, or one killed hard, must show up in the list rather than break it.
No torch and no textual here: the Train screen lists runs and draws curves from these files.

    runs = list_runs(workspace.runs_dir)
    curves = read_curves(runs[0].path / "events.jsonl")
    rows = config_diff(runs[0].config, runs[1].config)   # [("lr", 0.001, 0.0005), …]
    checkpoint_label(runs[0], 20)                          # "demo-ar lora #3 @ step 20"
    chosen, skipped = newest_complete_checkpoint(run_dir / "checkpoints")

Labels: a run's name is `label` in its config.toml (TrainConfig.label, set by the writer
or `default_label` when the run starts). Runs from before labels show their folder name
without the "-<model>-<method>" tail. `checkpoint_label` is the one way every screen and
report names a checkpoint.

Checkpoints: the Trainer writes `checkpoint-N/` file by file (weights, optimizer,
scheduler, RNG state, and trainer_state.json last), so a run killed while saving leaves a
folder that looks like the newest checkpoint but cannot be resumed. A checkpoint counts
only when `checkpoint_problem` finds nothing missing; resume takes the newest complete one
and says which it passed over.

The store follows the folders: a run that judgments.db still calls "running" but whose
process is gone is marked STALE_STATUS there too (`mark_interrupted_runs`), whenever the
runs list is read (the app), the store is opened for the CLI or the Judge screen, or a
training run starts or resumes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import tomllib
from pathlib import Path
from typing import Any

STALE_STATUS = "interrupted"  # status.json says running, but its process is gone (killed, crashed)
# Settings that always differ between two runs (the run folder) and say nothing about training.
DIFF_IGNORED_KEYS = ("out", "label")

CHECKPOINT_NAME = re.compile(r"^checkpoint-(\d+)$")
# What every resumable checkpoint holds besides its weights (the Trainer writes
# trainer_state.json last); one of WEIGHT_FILES must be there too.
CHECKPOINT_FILES = ("trainer_state.json", "optimizer.pt", "scheduler.pt")
WEIGHT_FILES = ("adapter_model.safetensors", "model.safetensors", "model.safetensors.index.json",
                "adapter_model.bin", "pytorch_model.bin")


@dataclasses.dataclass
class Curves:
    """Loss curves of one run: (step, value) points in the order they were logged."""

    train: list[tuple[float, float]] = dataclasses.field(default_factory=list)
    val: list[tuple[float, float]] = dataclasses.field(default_factory=list)
    last_step: dict[str, Any] | None = None  # the last `step` event, for lr / tokens/s / memory
    max_steps: int | None = None

    def add(self, event: dict[str, Any]) -> None:
        """Fold one protocol event into the curves (unknown kinds are ignored)."""
        kind = event.get("event")
        if kind == "start":
            self.max_steps = _int(event.get("max_steps")) or self.max_steps
            # A resumed run starts again after its checkpoint: drop the points it will redo.
            start = _int(event.get("start_step")) or 0
            self.train = [point for point in self.train if point[0] <= start]
            self.val = [point for point in self.val if point[0] <= start]
        elif kind == "step" and _number(event.get("loss")) is not None:
            self.train.append((float(event["step"]), float(event["loss"])))
            self.last_step = event
            self.max_steps = _int(event.get("max_steps")) or self.max_steps
        elif kind == "eval" and _number(event.get("val_loss")) is not None:
            self.val.append((float(event["step"]), float(event["val_loss"])))


@dataclasses.dataclass
class RunSummary:
    """One row of the runs list."""

    run_id: str
    path: Path
    model: str
    method: str
    status: str  # running | done | failed | cancelled (status.json), STALE_STATUS, or "unknown"
    step: int
    max_steps: int | None
    last_loss: float | None
    updated_at: str
    resumable: bool
    last_checkpoint: str | None
    config: dict[str, Any]  # config.toml as read; {} when missing or unreadable (see `problem`)
    world_size: int = 1  # processes it trained with (resume with the same number)
    problem: str = ""  # why a file could not be read, shown instead of failing
    pid: int | None = None  # the training process status.json names (alive while status is running)
    status_label: str = ""  # the label status.json recorded (config.toml's is preferred)

    @property
    def label(self) -> str:
        """The run's name: its config's label, else status.json's, else its folder name
        without the model/method tail."""
        return (str(self.config.get("label") or "") or self.status_label
                or short_run_id(self.run_id, self.model, self.method))


def short_run_id(run_id: str, model: str, method: str) -> str:
    """"20260102-090000-demo-ar-lora" -> "20260102-090000" (model and method are shown apart)."""
    model_slug = re.sub(r"[^A-Za-z0-9.-]+", "-", model.rsplit("/", 1)[-1]).strip("-").lower()
    return run_id.removesuffix(f"-{model_slug}-{method}") or run_id


def run_label(run: RunSummary | str | Path) -> str:
    """The name of a run given as a RunSummary or its folder."""
    if not isinstance(run, RunSummary):
        run = read_run(Path(run))
    return run.label


def checkpoint_label(run: RunSummary | str | Path, step: int | None) -> str:
    """How every screen names a checkpoint: "demo-ar lora #3 @ step 20" (the run's label
    alone when `step` is None). `run` is a RunSummary or the run folder."""
    label = run_label(run)
    return label if step is None else f"{label} @ step {step}"


def default_label(runs_dir: str | Path, model: str, method: str) -> str:
    """"<model> <method> #N", N one more than the runs of that model and method under runs_dir."""
    return next_label(list_runs(runs_dir), model, method)


def next_label(runs: list[RunSummary], model: str, method: str) -> str:
    """`default_label` over runs already read (the Train form's placeholder)."""
    name = Path(model).name if "/" in model else model
    count = sum(1 for run in runs if run.config.get("model") == model and run.method == method)
    return f"{name} {method} #{count + 1}"


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _int(value: Any) -> int | None:
    number = _number(value)
    return int(number) if number is not None else None


def process_alive(pid: Any) -> bool:
    """Whether a process with this id exists (a run's status.json records its pid)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def read_events(path: Path) -> list[dict[str, Any]]:
    """Every parseable JSON object line of an events.jsonl, in order; a torn last line (the run
    is still writing) is skipped. `engine.train.events.parse_event` turns one into a dataclass."""
    events: list[dict[str, Any]] = []
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return events
    for line in text.splitlines():
        try:
            payload = json.loads(line)
        except ValueError:
            continue
        if isinstance(payload, dict):
            events.append(payload)
    return events


def read_curves(events_path: Path) -> Curves:
    curves = Curves()
    for event in read_events(events_path):
        curves.add(event)
    return curves


def read_config(path: Path) -> tuple[dict[str, Any], str]:
    """The config.toml of a run as a dict, and a problem message ("" when fine)."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8")), ""
    except FileNotFoundError:
        return {}, f"{path.name}: missing"
    except (OSError, tomllib.TOMLDecodeError) as error:
        return {}, f"{path.name}: {error}"


def read_run(folder: Path, *, live_pids: set[int] | None = None) -> RunSummary:
    """Summarise one run folder. A "running" status whose process is gone (and is not one of
    `live_pids`, the children the caller launched itself) becomes STALE_STATUS and resumable."""
    config, problem = read_config(folder / "config.toml")
    status: dict[str, Any] = {}
    try:
        status = json.loads((folder / "status.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        problem = problem or "status.json: missing"
    except (OSError, ValueError) as error:
        problem = problem or f"status.json: {error}"
    curves = read_curves(folder / "events.jsonl")
    state = str(status.get("status", "unknown"))
    pid = status.get("pid")
    if state == "running" and not (live_pids and pid in live_pids) and not process_alive(pid):
        state = STALE_STATUS
    step = _int(status.get("step")) or 0
    if curves.train:
        step = max(step, int(curves.train[-1][0]))
    return RunSummary(
        run_id=str(status.get("run_id") or folder.name),
        path=folder,
        model=str(config.get("model", "?")),
        method=str(config.get("method", "?")),
        status=state,
        step=step,
        max_steps=_int(status.get("max_steps")) or curves.max_steps,
        last_loss=curves.train[-1][1] if curves.train else None,
        updated_at=str(status.get("updated_at", "")),
        # A killed run resumes from its last checkpoint, or from step 0 in the same folder.
        resumable=bool(status.get("resumable")) or state == STALE_STATUS,
        last_checkpoint=status.get("last_checkpoint"),
        config=config,
        world_size=_int(status.get("world_size")) or 1,
        problem=problem,
        pid=pid if isinstance(pid, int) else None,
        status_label=str(status.get("label") or ""),
    )


def list_runs(runs_dir: str | Path, *, live_pids: set[int] | None = None,
              db_path: str | Path | None = None) -> list[RunSummary]:
    """Every folder under runs/ that looks like a run (has status.json or config.toml), newest first.

    Runs found interrupted are marked so in the store too: `db_path`, by default the
    workspace's judgments.db beside runs/ (only when it exists: listing never creates it)."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    runs = [
        read_run(folder, live_pids=live_pids)
        for folder in runs_dir.iterdir()
        if folder.is_dir() and ((folder / "status.json").exists() or (folder / "config.toml").exists())
    ]
    runs.sort(key=lambda run: (run.updated_at, run.run_id), reverse=True)
    stale = [run for run in runs if run.status == STALE_STATUS]
    if stale:
        _mark_in_store(Path(db_path) if db_path else runs_dir.parent / "judgments.db", runs_dir, live_pids)
    return runs


def _mark_in_store(db_path: Path, runs_dir: Path, live_pids: set[int] | None) -> None:
    if not db_path.is_file():
        return
    import sqlite3

    from engine.judge.store import StoreError, open_store

    try:
        db = open_store(db_path)
    except (StoreError, sqlite3.Error):
        return  # the list still shows the run interrupted; whoever opens the store hears why it cannot be used
    try:
        mark_interrupted_runs(db, runs_dir, live_pids=live_pids)
    except sqlite3.Error:
        pass  # bookkeeping only: the next look tries again
    finally:
        db.conn.close()


def mark_interrupted_runs(db: Any, runs_dir: str | Path, *, live_pids: set[int] | None = None) -> list[str]:
    """Runs the store calls "running" whose folder says their process is gone (or that have
    no folder any more): mark them STALE_STATUS, ended at their last status update.
    Returns the run ids marked. `db` is an open store (engine.judge.store)."""
    from engine.judge.store import now

    marked = []
    for row in list(db.query("select id, out_dir from runs where status = 'running'")):
        folder = Path(row["out_dir"]) if row["out_dir"] else Path(runs_dir) / row["id"]
        summary = read_run(folder, live_pids=live_pids) if folder.is_dir() else None
        if summary is not None and summary.status != STALE_STATUS:
            continue  # still running, or ended and about to say so itself
        ended = (summary.updated_at if summary is not None else "") or now()
        with db.atomic():
            changed = db.execute("update runs set status = ?, ended_at = ? where id = ? and status = 'running'",
                                 [STALE_STATUS, ended, row["id"]]).rowcount
        if changed:
            marked.append(row["id"])
    return marked


def checkpoint_step(folder: str | Path | None) -> int | None:
    """N of a `checkpoint-N` folder, else None."""
    match = CHECKPOINT_NAME.match(Path(folder).name) if folder else None
    return int(match.group(1)) if match else None


def checkpoint_problem(folder: str | Path) -> str:
    """What makes a checkpoint folder unusable for resuming ("" when it is complete)."""
    folder = Path(folder)
    missing = [name for name in CHECKPOINT_FILES if not (folder / name).is_file()]
    if not any((folder / name).is_file() for name in WEIGHT_FILES):
        missing.insert(0, "the weights (" + " or ".join(WEIGHT_FILES[:2]) + ")")
    if missing:
        return f"{', '.join(missing)} missing (stopped while saving?)"
    try:
        state = json.loads((folder / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        return f"trainer_state.json unreadable ({error})"
    if not isinstance(state, dict) or not isinstance(state.get("global_step"), int):
        return "trainer_state.json has no global_step"
    return ""


def newest_complete_checkpoint(checkpoints_dir: str | Path) -> tuple[Path | None, list[tuple[Path, str]]]:
    """(the newest complete checkpoint-N folder or None, [(newer incomplete folder, problem)])."""
    checkpoints_dir = Path(checkpoints_dir)
    try:
        folders = [entry for entry in checkpoints_dir.iterdir()
                   if entry.is_dir() and CHECKPOINT_NAME.match(entry.name)]
    except OSError:
        return None, []
    skipped: list[tuple[Path, str]] = []
    for folder in sorted(folders, key=checkpoint_step, reverse=True):
        problem = checkpoint_problem(folder)
        if not problem:
            return folder, skipped
        skipped.append((folder, problem))
    return None, skipped


def config_diff(first: dict[str, Any], second: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(key, first value, second value) for every setting that differs, by key; None where absent.
    Takes config.toml dicts (RunSummary.config); for TrainConfig objects pass `config_to_dict(c)`."""
    keys = sorted((set(first) | set(second)) - set(DIFF_IGNORED_KEYS))
    return [(key, first.get(key), second.get(key)) for key in keys if first.get(key) != second.get(key)]
