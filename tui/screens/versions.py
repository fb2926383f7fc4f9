"""Versions (F12): the history of your model — every version, what its promotion rested on,
and a key to make an earlier one current again.

A modal over any screen. The list and rollback read and write judgments.db through
engine.models.versions in a thread worker (its own connection); the handlers here only
update widgets. Promoting happens on the command line (`voicebench versions promote`),
where the gate's full evidence is printed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

COLUMNS = ("", "version", "from", "gate", "note")
TITLE = "Versions · * is current: what the model `voice` means · r: make the highlighted one current"


class VersionsScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,q", "dismiss", "Close", id="versions.close"),
        Binding("r", "rollback", "Make current", id="versions.rollback",
                tooltip="Roll back (or forward) to the highlighted version; `voice` then means it"),
    ]
    DEFAULT_CSS = """
    VersionsScreen { align: center middle; }
    VersionsScreen > Vertical { width: 90%; height: 80%; border: round $accent; background: $surface; padding: 0 1; }
    VersionsScreen DataTable { height: 1fr; }
    VersionsScreen #versions-detail { height: auto; max-height: 8; color: $text-muted; }
    """

    @dataclass
    class Loaded(Message):
        versions: list[Any]  # engine.models.versions.Version
        history: list[dict[str, Any]]
        status: str

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(TITLE, id="versions-title")
            yield DataTable(id="versions-table", cursor_type="row", zebra_stripes=True)
            yield Static("", id="versions-detail")

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns(*COLUMNS)
        self.versions: list[Any] = []
        self.history: list[dict[str, Any]] = []

    def on_screen_resume(self) -> None:
        self.load()  # the app keeps this screen: reread the store each time it opens

    @work(thread=True, exclusive=True, exit_on_error=False, group="versions")
    def load(self, rollback_to: str | None = None) -> None:
        from engine.judge.store import open_store
        from engine.models.versions import VersionError, history, list_versions, rollback

        workspace = self.app.workspace
        db = open_store(workspace.db_path)
        try:
            status = ""
            if rollback_to:
                try:
                    rollback(workspace, db, rollback_to, note="from the Versions view")
                    status = f"{rollback_to} is now current."
                except VersionError as error:
                    status = str(error)
            self.post_message(self.Loaded(list_versions(db), history(db), status))
        finally:
            db.close()

    @on(Loaded)
    def _show(self, message: Loaded) -> None:
        self.versions, self.history = message.versions, message.history
        table = self.query_one(DataTable)
        table.clear()
        for version in message.versions:
            source = f"{version.run_id}/{version.checkpoint}" if version.run_id else (version.checkpoint or "")
            gate = version.verdict + (" (forced)" if version.forced else "")
            table.add_row("*" if version.current else "", version.name, source, gate, version.note, key=version.name)
        self.query_one("#versions-title", Static).update(message.status or TITLE)
        if not message.versions:
            self._detail("No versions yet. Promote a checkpoint: voicebench versions promote runs/<id>/checkpoints/checkpoint-N")
        else:
            self._describe(table.cursor_row)

    @on(DataTable.RowHighlighted)
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._describe(event.cursor_row)

    def _describe(self, row: int) -> None:
        if not 0 <= row < len(self.versions):
            return
        version = self.versions[row]
        events = [f"{event['at'][:16]} {event['action']}" + (f" — {event['note']}" if event["note"] else "")
                  for event in self.history if event["version"] == version.name]
        self._detail("\n".join([version.gate.get("message", version.verdict), *events]))

    def _detail(self, text: str) -> None:
        self.query_one("#versions-detail", Static).update(text)

    def action_rollback(self) -> None:
        row = self.query_one(DataTable).cursor_row
        if 0 <= row < len(self.versions):
            self.load(rollback_to=self.versions[row].name)
