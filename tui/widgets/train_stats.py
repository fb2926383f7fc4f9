"""The two-line status of the run on show: id and status, step/max with a bar, loss, val loss,
lr, tokens/s, memory and time left. `stats_text` is pure so tests can check it."""

from __future__ import annotations

import dataclasses

from rich.text import Text
from textual.widgets import Static

STATUS_STYLES = {
    "running": "bold cyan", "starting": "bold", "cancelling": "bold yellow", "done": "bold green",
    "cancelled": "bold yellow", "failed": "bold red", "crashed": "bold red", "killed": "bold red",
    "interrupted": "bold yellow",
}
BAR_WIDTH = 20


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


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _num(value: float | None, pattern: str) -> str:
    return "–" if value is None else format(value, pattern)


def stats_text(view: RunView) -> Text:
    """Line 1: run, status, progress, ETA. Line 2: loss, val loss, lr, throughput, memory."""
    if not view.run_id and not view.status:
        return Text("No run yet. Set the options and press ctrl+s to start; the runs list (F8) has earlier runs.",
                    style="dim")
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(f"{view.run_id or 'new run'}  ", style="bold")
    text.append(view.status or "?", style=STATUS_STYLES.get(view.status, "bold"))
    total = view.max_steps or 0
    filled = round(BAR_WIDTH * min(view.step, total) / total) if total else 0
    text.append(f"  step {view.step}/{total or '?'} ")
    text.append("█" * filled, style="green")
    text.append("░" * (BAR_WIDTH - filled), style="dim")
    text.append(f"  ETA {format_duration(view.eta_s)}")
    if view.world_size and view.world_size > 1:
        text.append(f"  ×{view.world_size} ranks", style="dim")
    text.append("\n")
    text.append(f"loss {_num(view.loss, '.4f')}  val {_num(view.val_loss, '.4f')}  lr {_num(view.lr, '.1e')}  "
                f"{_num(view.tokens_per_s, '.0f')} tok/s  mem {_num(view.memory, '.0f')} MiB")
    return text


class TrainStats(Static):
    def show(self, view: RunView) -> None:
        self.update(stats_text(view))
