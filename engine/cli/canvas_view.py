"""The `voicebench generate --watch` canvas: a rich renderable updated from sampler frames.

Masks are drawn as ░ (▒ inside the block being filled), tokens committed this step are
highlighted, earlier ones coloured by the confidence they were committed with (red below
0.3, yellow below 0.7, green above), and the current block is underlined. A header gives
step, block, masks left, forward passes and tokens/s; a footer the live degeneration
signals, with a warning when a cascade starts. Plain terminal only — the TUI has its own.
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Group
from rich.text import Text

from engine.display import safe_text

MASK_CELL = "░"
CURRENT_BLOCK_MASK_CELL = "▒"


def confidence_style(confidence: float) -> str:
    if confidence >= 0.7:
        return "green"
    if confidence >= 0.3:
        return "yellow"
    return "red"


class CanvasView:
    """Holds the canvas state; `update(frame)` applies a StepFrame, rich renders `__rich__`."""

    def __init__(self, tokenizer: Any, gen_length: int, block_length: int, steps: int | None):
        self.tokenizer = tokenizer
        self.block_length = block_length
        self.blocks = gen_length // block_length
        self.steps = steps  # None in fast mode: the step count is not known ahead
        self.cells: list[int | None] = [None] * gen_length
        self.confidences = [0.0] * gen_length
        self.fresh: set[int] = set()
        self.frame: Any = None
        self.started = time.perf_counter()
        self._pieces: dict[int, str] = {}

    def update(self, frame: Any) -> None:
        self.frame = frame
        self.fresh = {position for position, _, _ in frame.committed}
        for position, token_id, confidence in frame.committed:
            self.cells[position] = token_id
            self.confidences[position] = confidence

    def piece(self, token_id: int) -> str:
        """A token's text, with line breaks and blanks made visible."""
        if token_id not in self._pieces:
            text = self.tokenizer.decode([token_id], skip_special_tokens=False)
            text = safe_text(text.replace("\n", "⏎").replace("\t", "⇥"))
            # What is left unprintable (zero-width and format characters) would shift the
            # cells: show a dot instead.
            self._pieces[token_id] = "".join(char if char.isprintable() else "·" for char in text) or "·"
        return self._pieces[token_id]

    def __rich__(self) -> Group:
        frame = self.frame
        block = frame.block if frame else 0
        canvas = Text()
        for position, token_id in enumerate(self.cells):
            in_block = position // self.block_length == block
            underline = " underline" if in_block else ""
            if token_id is None:
                cell, style = (CURRENT_BLOCK_MASK_CELL, "bright_white") if in_block else (MASK_CELL, "grey50")
            else:
                cell = self.piece(token_id)
                style = "bold black on bright_yellow" if position in self.fresh else confidence_style(self.confidences[position])
            canvas.append(cell, style=style + underline)
        return Group(self._header(), canvas, self._signals())

    def _header(self) -> Text:
        if self.frame is None:
            return Text("waiting for the first step…", style="dim")
        frame = self.frame
        committed = sum(cell is not None for cell in self.cells)
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        total = f"/{self.steps}" if self.steps else ""
        return Text(
            f"step {frame.step}{total} · block {frame.block + 1}/{self.blocks} · masked {frame.masked} · "
            f"forward passes {frame.forward_passes} · {committed / elapsed:.1f} tokens/s",
            style="bold",
        )

    def _signals(self) -> Text:
        signals = self.frame.signals if self.frame else {}
        line = Text(
            f"repeated 3-grams {signals.get('repeated_ngram_share', 0.0):.2f} · longest run "
            f"{signals.get('longest_run', 0)} · other script {signals.get('other_script_share', 0.0):.2f} · "
            f"EOS {signals.get('eos_share', 0.0):.2f}",
            style="dim",
        )
        if signals.get("cascade"):
            line.append("  ⚠ repetition cascade", style="bold red")
        return line
