"""The runs list (runs/*/status.json) and the settings diff of two marked runs.

Rows name runs by their label (engine/train/runs.py); the run the screen is training is
updated in place from its events (`show_live`), so the list and the status line agree.

Space marks a run for comparison (two at most: marking a third drops the oldest mark);
the screen overlays the marked runs' curves and shows `diff_text` of their config.toml.

The "best" column is each run's best-judged checkpoint (engine.judge.report.best_checkpoint),
which the screen reads from judgments.db in a worker and hands over with `set_best`; "–" until
then or when the run has no canaries in the store. `p` asks the screen to promote a checkpoint
of the highlighted run (PromoteRequested); `v` opens the Versions view.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable

from engine.train.runs import RunSummary, config_diff
from tui.widgets.train_stats import STATUS_STYLES

COMPARE_LABELS = ("A", "B")
NOT_RATED = "–"  # no canaries of this run in the store (or not read yet)


def best_text(best: dict[str, Any] | None, has_outputs: bool) -> Text:
    """"@ step 20 1.20 [0.80, 1.60]" (★ when its interval clears every other checkpoint of the
    run); "not enough ratings yet" when the run has canaries but too few ratings; "–" otherwise."""
    if best is None:
        return Text("not enough ratings yet" if has_outputs else NOT_RATED, style="dim")
    text = Text(f"@ step {best['step']} {best['score']:.2f} [{best['low']:.2f}, {best['high']:.2f}]")
    if best.get("separated"):
        text.append(" ★", style="bold green")
    return text


class RunsTable(DataTable):
    BINDINGS = [
        Binding("space", "toggle_mark", "Mark to compare", id="train.runs.mark",
                tooltip="Mark this run; with two marked, their curves overlay and their settings are diffed"),
        Binding("p", "promote", "Promote", id="train.runs.promote",
                tooltip="Promote this run's best-judged (else newest) complete checkpoint to a version, "
                        "through the gate; a verdict other than better asks before forcing"),
        # F6 opens the Versions view elsewhere; on this screen F6 is the Canaries tab.
        Binding("v", "app.push_screen('versions')", "Versions", id="train.runs.versions",
                tooltip="Your model's versions: history, gate verdicts, roll back"),
    ]

    class PromoteRequested(Message):
        def __init__(self, run: RunSummary) -> None:
            super().__init__()
            self.run = run

    class MarksChanged(Message):
        def __init__(self, marked: tuple[str, ...]) -> None:
            super().__init__()
            self.marked = marked

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)
        self.runs: list[RunSummary] = []
        self.marked: list[str] = []
        self.best: dict[str, Text] = {}  # run id -> the "best" cell

    def on_mount(self) -> None:
        # Name, status and progress first: at 80 columns the model and method scroll off.
        for label, width in (("", 1), ("run", 20), ("status", 11), ("steps", 7), ("loss", 7), ("best", 27),
                             ("model", 11), ("method", 9)):
            self.add_column(label, width=width, key=label or "mark")  # "loss": the last training loss

    def set_runs(self, runs: list[RunSummary]) -> None:
        """Replace the rows, keeping the cursor on the same run and marks on runs that still exist."""
        current = self.highlighted_run
        self.runs = runs
        ids = {run.run_id for run in runs}
        self.marked = [run_id for run_id in self.marked if run_id in ids]
        self.clear()
        for run in runs:
            self.add_row(*self._cells(run), key=run.run_id)
        if current is not None and current.run_id in ids:
            self.move_cursor(row=self.get_row_index(current.run_id))

    def _cells(self, run: RunSummary) -> list[Any]:
        mark = COMPARE_LABELS[self.marked.index(run.run_id)] if run.run_id in self.marked else ""
        steps = f"{run.step}/{run.max_steps}" if run.max_steps else str(run.step)
        loss = f"{run.last_loss:.4f}" if run.last_loss is not None else "–"
        status = Text(run.status, style=STATUS_STYLES.get(run.status, ""))
        best = self.best.get(run.run_id, Text(NOT_RATED, style="dim"))
        return [Text(mark, style="bold reverse"), run.label, status, steps, loss, best, run.model, run.method]

    def set_best(self, best: dict[str, Text]) -> None:
        """The best-checkpoint cells, read from the store by the screen."""
        self.best = best
        ids = {run.run_id for run in self.runs}
        for run_id, cell in best.items():
            if run_id in ids:
                self.update_cell(run_id, "best", cell)

    def action_promote(self) -> None:
        run = self.highlighted_run
        if run is not None:
            self.post_message(self.PromoteRequested(run))

    def show_live(self, run_id: str, status: str, step: int, max_steps: int | None, loss: float | None) -> None:
        """Update the row of the run being trained from its events (status.json lags behind)."""
        if run_id not in {run.run_id for run in self.runs}:
            return
        self.update_cell(run_id, "status", Text(status, style=STATUS_STYLES.get(status, "")))
        self.update_cell(run_id, "steps", f"{step}/{max_steps}" if max_steps else str(step))
        if loss is not None:
            self.update_cell(run_id, "loss", f"{loss:.4f}")

    @property
    def highlighted_run(self) -> RunSummary | None:
        if not self.runs or self.cursor_row < 0 or self.cursor_row >= len(self.runs):
            return None
        return self.runs[self.cursor_row]

    def run_by_id(self, run_id: str) -> RunSummary | None:
        return next((run for run in self.runs if run.run_id == run_id), None)

    def action_toggle_mark(self) -> None:
        run = self.highlighted_run
        if run is None:
            return
        if run.run_id in self.marked:
            self.marked.remove(run.run_id)
        else:
            self.marked.append(run.run_id)
            del self.marked[:-2]
        for row in self.runs:
            mark = COMPARE_LABELS[self.marked.index(row.run_id)] if row.run_id in self.marked else ""
            self.update_cell(row.run_id, "mark", Text(mark, style="bold reverse"))
        self.post_message(self.MarksChanged(tuple(self.marked)))


def _value(value: Any) -> str:
    return "–" if value is None else str(value)


def diff_text(first: RunSummary, second: RunSummary) -> Text:
    """Settings that differ between two runs, one line each: key, A's value, B's value."""
    rows = config_diff(first.config, second.config)
    text = Text()
    text.append(f"A {first.label}", style="bold cyan")
    text.append("  vs  ")
    text.append(f"B {second.label}", style="bold magenta")
    text.append("\n")
    if not rows:
        text.append("same settings (apart from the run folder)", style="dim")
        return text
    width = max(len(key) for key, _, _ in rows)
    for key, left, right in rows:
        text.append(f"{key.ljust(width)}  ")
        text.append(_value(left), style="cyan")
        text.append("  →  ", style="dim")
        text.append(_value(right), style="magenta")
        text.append("\n")
    text.rstrip()
    return text
