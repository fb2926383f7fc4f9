"""Will it fit? The Train screen's memory estimate: one line under the status, the breakdown in a tab.

The estimate is engine.models.memory's `MemoryEstimate` for the TrainConfig the form would
launch (the screen computes it in a worker, without importing torch). `fit_line` is the
compact line ("GPU needs ~21.1 GB: fits 24 GB · checkpointing on: 13.4 GB, fits 16 GB"), cut
to the width it is given: the cheapest change goes first, then "F10 details". `fit_report` is
the full breakdown, with the run's measured peak beside the prediction once a run reports one.
Both are pure so tests can check them.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import Static

GIB = 1024**3
MIB_PER_GIB = 1024
DETAILS_KEY = "F10"


def gb(size_bytes: float) -> str:
    return f"{size_bytes / GIB:.1f} GB"


def verdict_text(estimate: Any) -> str:
    card = estimate.smallest_card
    return f"fits {card} GB" if card else "fits no listed card (96 GB max)"


def fit_line(estimate: Any | None, message: str = "", width: int = 120, measured_mib: float | None = None) -> Text:
    """The compact line: prediction, verdict and the cheapest change that fits a smaller card;
    with `measured_mib` (a run's reported peak) the measured figure beside the prediction."""
    if estimate is None:
        return Text(message, style="dim", no_wrap=True, overflow="ellipsis")
    head = Text()
    head.append("GPU needs ", style="dim")
    head.append(f"~{gb(estimate.total_bytes)}", style="bold")
    if measured_mib is not None:
        head.append(" · measured ", style="dim")
        head.append(gb(measured_mib * 2**20), style="bold")
    else:
        head.append(f": {verdict_text(estimate)}", style="green" if estimate.smallest_card else "red")
    tails = []
    if estimate.advice and measured_mib is None:
        tails.append(f" · {estimate.advice[0].text()}")
    tails.append(f" · {DETAILS_KEY} details")
    for tail in tails:
        if head.cell_len + len(tail) <= width:
            head.append(tail, style="dim")
    head.no_wrap, head.overflow = True, "ellipsis"
    head.truncate(max(width, 10), overflow="ellipsis")
    return head


def fit_report(estimate: Any | None, message: str = "", measured_mib: float | None = None,
               measured_label: str = "") -> Text:
    """Every term of the predicted peak, the verdict per card, the changes that fit a smaller
    card, and the measured peak of a run when one reported it."""
    text = Text()
    if estimate is None:
        text.append(message or "No estimate yet: pick a model.", style="dim")
        return text
    lines = estimate.lines()
    text.append(f"Predicted peak GPU memory for these settings\n{lines[0]}\n", style="bold")
    for line in lines[1:]:
        text.append(line + "\n")
    if len(estimate.advice) > 1:
        text.append("  other changes that fit a smaller card:\n", style="dim")
        for advice in estimate.advice[1:]:
            text.append(f"    {advice.text()}\n", style="dim")
    if measured_mib is not None:
        text.append(f"\nMeasured by {measured_label or 'the run'}: {gb(measured_mib * 2**20)} peak "
                    f"against {gb(estimate.total_bytes)} predicted", style="bold")
        text.append(" (on a GPU the allocator's peak, torch.cuda.max_memory_allocated; on CPU the process's "
                    "peak resident memory, which a GPU prediction does not describe)\n", style="dim")
    text.append("\nAn estimate from config.json (no weights read); the formulas and their sources are in "
                "engine/models/memory.py. `voicebench train --estimate` prints the same.", style="dim")
    return text


class FitLine(Static):
    """The compact line; re-cut to its width on resize."""

    def show(self, estimate: Any | None, message: str = "", measured_mib: float | None = None) -> None:
        self.shown = (estimate, message, measured_mib)
        self.update(fit_line(estimate, message, self.content_size.width or 120, measured_mib))

    def on_resize(self) -> None:
        if getattr(self, "shown", None) is not None:
            self.show(*self.shown)
