"""The two-line status of the run on show: label and status, step/max with a bar, time left and
the phase in progress (loading, canary 3/5, evaluation, saving); then loss, val loss, lr,
tokens/s, memory. `stats_text` is pure so tests can check it; it fits the width it is given
(the bar shrinks first), so 80 columns keep the whole first line."""

from __future__ import annotations

import dataclasses

from rich.text import Text
from textual.widgets import Static

STATUS_STYLES = {
    "running": "bold cyan", "starting": "bold", "cancelling": "bold yellow", "done": "bold green",
    "cancelled": "bold yellow", "failed": "bold red", "crashed": "bold red", "killed": "bold red",
    "interrupted": "bold yellow", "stopping": "bold yellow", "detached": "bold cyan",
}
BAR_WIDTH = 20
NARROW_BAR_WIDTH = 8
PHASE_NAMES = {"loading": "loading model and data", "evaluation": "evaluating", "saving": "saving checkpoint"}


@dataclasses.dataclass
class RunView:
    """What the stats line shows; None fields print as "–"."""

    run_id: str = ""
    status: str = ""
    step: int = 0
    max_steps: int | None = None
    loss: float | None = None
    val_loss: float | None = None
    lr: float | None = None
    tokens_per_s: float | None = None
    memory: float | None = None  # MiB
    eta_s: float | None = None
    world_size: int | None = None
    label: str = ""  # the run's name; run_id when empty
    phase: str = ""  # the phase in progress ("" or "training": steps are flowing)
    phase_done: int = 0
    phase_total: int | None = None
    phase_detail: str = ""
    resumed_at: int | None = None  # the step a resumed run continued after


def phase_text(view: RunView) -> str:
    """"canary 3/5 (checkpoint-20)", "evaluating", "loading model and data"; "" while training."""
    if view.phase in ("", "training"):
        return ""
    if view.phase == "canaries":
        counted = f" {min(view.phase_done + 1, view.phase_total or 0)}/{view.phase_total}" if view.phase_total else ""
        where = f" ({view.phase_detail})" if view.phase_detail else ""
        return f"canary{counted}{where}"
    return PHASE_NAMES.get(view.phase, view.phase)


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _num(value: float | None, pattern: str) -> str:
    return "–" if value is None else format(value, pattern)


def stats_text(view: RunView, width: int = 120) -> Text:
    """Line 1: run, status, phase, progress, ETA. Line 2: loss, val loss, lr, throughput, memory.
    Under 110 columns the bar shrinks, under 70 it goes; each line is cut to `width`."""
    if not view.run_id and not view.status:
        return Text("No run yet. Set the options and press ctrl+s to start; the runs list (F8) has earlier runs.",
                    style="dim")
    first = Text()
    name = view.label or view.run_id or "new run"
    first.append(f"{name}  ", style="bold")
    first.append(view.status or "?", style=STATUS_STYLES.get(view.status, "bold"))
    # The phase comes early: a narrow line loses the bar, never "canary 3/5".
    phase = phase_text(view)
    if phase:
        first.append(f"  {phase}", style="bold yellow")
    total = view.max_steps or 0
    first.append(f"  step {view.step}/{total or '?'} ")
    bar = BAR_WIDTH if width >= 110 else NARROW_BAR_WIDTH if width >= 70 else 0
    if phase and width < 110:
        bar = 0
    if bar:
        filled = round(bar * min(view.step, total) / total) if total else 0
        first.append("█" * filled, style="green")
        first.append("░" * (bar - filled), style="dim")
    first.append(f"  ETA {format_duration(view.eta_s)}")
    if not phase and view.resumed_at is not None and view.step <= view.resumed_at + 1:
        first.append(f"  resumed at step {view.resumed_at}", style="dim")
    if view.world_size and view.world_size > 1:
        first.append(f"  ×{view.world_size} ranks", style="dim")
    second = Text(f"loss {_num(view.loss, '.4f')}  val {_num(view.val_loss, '.4f')}  lr {_num(view.lr, '.1e')}  "
                  f"{_num(view.tokens_per_s, '.0f')} tok/s  mem {_num(view.memory, '.0f')} MiB")
    for line in (first, second):
        line.truncate(max(width, 10), overflow="ellipsis")
    return Text("\n").join((first, second))


class TrainStats(Static):
    def show(self, view: RunView) -> None:
        self.view = view
        self.update(stats_text(view, self.size.width or 120))

    def on_resize(self) -> None:
        if getattr(self, "view", None) is not None:
            self.update(stats_text(self.view, self.size.width or 120))
