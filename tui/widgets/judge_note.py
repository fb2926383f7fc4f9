"""The Judge screen's two small dialogs: the note on the current item (enter saves, an
empty line clears it, escape keeps the old note) and the "end the session?" question."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, Label

from tui.widgets.safe_fields import SafeInput


class NoteDialog(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel", id="judge.note.cancel")]
    DEFAULT_CSS = """
    NoteDialog { align: center middle; }
    NoteDialog > Vertical { width: 80; height: auto; border: round $accent; background: $surface; padding: 1 2; }
    """

    def __init__(self, note: str) -> None:
        super().__init__()
        self.note = note

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Note on this item (enter saves, escape cancels)")
            yield SafeInput(self.note, id="note-input")

    @on(Input.Submitted)
    def save(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip())


class ConfirmEndDialog(ModalScreen[bool]):
    """Ending a session is final and reveals every source, so it is asked once more."""

    BINDINGS = [
        Binding("y,enter", "dismiss(True)", "End and reveal", id="judge.end.confirm"),
        Binding("n,escape", "dismiss(False)", "Keep rating", id="judge.end.cancel"),
    ]
    DEFAULT_CSS = """
    ConfirmEndDialog { align: center middle; }
    ConfirmEndDialog > Vertical { width: 70; height: auto; border: thick $warning; background: $surface; padding: 1 2; }
    """

    def __init__(self, pending: int) -> None:
        super().__init__()
        self.pending = pending

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("End this session and reveal who wrote what?", classes="dialog--title")
            unanswered = f"{self.pending} items are still unanswered. " if self.pending else ""
            yield Label(f"{unanswered}No more rating in this session after that.")
            yield Label("y / enter: end and reveal · n / escape: keep rating")
        yield Footer()
