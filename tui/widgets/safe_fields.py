"""Editable fields that never send a control character in their text to the terminal.

The value stays exactly as loaded and typed (what is saved is what was there); only the
painted line changes: every control character and lone surrogate is drawn as one visible
character (engine.display.one_for_one), so an OSC or CSI sequence inside a pair's prompt,
tags or notes shows as `␛]2;…` instead of retitling the window or clearing the screen.
Use these wherever a field is filled from a file or the store.
"""

from __future__ import annotations

from rich.segment import Segment
from textual.strip import Strip
from textual.widgets import Input, TextArea

from engine.display import one_for_one


class _PaintsSafely:
    def render_line(self, y: int) -> Strip:
        strip = super().render_line(y)  # type: ignore[misc]
        segments = list(strip)
        if all(one_for_one(segment.text) == segment.text for segment in segments):
            return strip
        safe = [Segment(one_for_one(segment.text), segment.style, segment.control) for segment in segments]
        # Control characters take no cell and their pictures one: keep the line within the widget.
        return Strip(safe).crop(0, max(strip.cell_length, self.size.width))  # type: ignore[attr-defined]


class SafeTextArea(_PaintsSafely, TextArea):
    """A TextArea drawn safely (see the module docstring)."""


class SafeInput(_PaintsSafely, Input):
    """An Input drawn safely (see the module docstring)."""
