"""The typewriter: a causal model typing the same prompt token by token, beside the canvas.

The screen's worker appends `TokenFrame.text` pieces to a list and tells the widget to
catch up; the widget only ever draws the text so far plus a cursor.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Static

from engine.display import safe_text


class Typewriter(Vertical):
    """Title line (model, tokens, speed) over the growing text."""

    DEFAULT_CSS = """
    Typewriter { border: round $panel-lighten-2; border-title-color: $text-muted; }
    Typewriter #typewriter-status { height: 1; color: $text-muted; }
    Typewriter #typewriter-status.error { color: $text-error; height: auto; }
    Typewriter VerticalScroll { height: 1fr; }
    Typewriter #typewriter-text { padding: 0 1 0 0; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.border_title = "typewriter"
        self.pieces: list[str] = []
        self.typing = False

    def compose(self) -> ComposeResult:
        yield Static("a causal model types the same prompt here", id="typewriter-status")
        with VerticalScroll():
            yield Static("", id="typewriter-text")

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    def start(self, model_label: str) -> None:
        self.border_title = f"typewriter · {model_label}"
        self.pieces = []
        self.typing = True
        self._status(f"loading {model_label}…")
        self._draw()

    def extend(self, pieces: list[str], tokens_per_second: float | None) -> None:
        self.pieces.extend(pieces)
        speed = f" · {tokens_per_second:.1f} tok/s" if tokens_per_second else ""
        self._status(f"{len(self.pieces)} tokens{speed}")
        self._draw()

    def finish(self, note: str) -> None:
        self.typing = False
        self._status(note)
        self._draw()

    def fail(self, message: str) -> None:
        self.typing = False
        self._status(message, error=True)
        self._draw()

    def clear(self, note: str) -> None:
        """Empty the panel (a replayed trace has no typewriter run)."""
        self.border_title = "typewriter"
        self.pieces = []
        self.typing = False
        self._status(note)
        self._draw()

    def _status(self, message: str, error: bool = False) -> None:
        status = self.query_one("#typewriter-status", Static)
        status.set_class(error, "error")
        status.update(message)

    def _draw(self) -> None:
        text = Text(safe_text(self.text))
        if self.typing:
            text.append("▌", "bold #7fd4ff")
        self.query_one("#typewriter-text", Static).update(text)
        self.query_one(VerticalScroll).scroll_end(animate=False)
