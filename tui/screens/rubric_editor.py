"""The rubric editor, pushed over the Judge screen (ctrl+b): add, edit, retire and restore
criteria in the store through `engine.judge.rubric`.

Highlight a criterion to load it into the form; ctrl+s saves the form (edits the criterion
of that name, or adds it when the name is new); ctrl+n clears the form for a new one;
ctrl+t retires the highlighted criterion, or restores it when retired. Retired criteria
keep their ratings and still appear in reports; they are only left out of new rating.
Anchors are one per line, `score: text`. Works on the caller's (UI-thread) connection:
each edit is one small write.
"""

from __future__ import annotations

from sqlite_utils import Database
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Input, Label, Static, TextArea

from engine.judge import rubric as rubric_store
from engine.judge.rubric import Criterion, RubricError


def parse_anchors(text: str) -> dict[int, str]:
    """'1: plain\\n5: hers' → {1: 'plain', 5: 'hers'}; RubricError names the bad line."""
    anchors: dict[int, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        score, sep, words = line.partition(":")
        if not sep or not score.strip().lstrip("-").isdigit():
            raise RubricError(f"anchors line {number}: write `score: text`, e.g. `3: in places`; got {line!r}.")
        anchors[int(score)] = words.strip()
    return anchors


def format_anchors(criterion: Criterion) -> str:
    return "\n".join(f"{score}: {words}" for score, words in criterion.anchors.items())


class RubricEditorScreen(ModalScreen[bool]):
    """Returns True when anything changed (the Judge screen reloads its rubric)."""

    BINDINGS = [
        Binding("escape", "close", "Close", id="rubric.close"),
        Binding("ctrl+s", "save", "Save criterion", id="rubric.save", tooltip="Edit it, or add it if the name is new"),
        Binding("ctrl+n", "new", "New", id="rubric.new", tooltip="Clear the form for a new criterion"),
        Binding("ctrl+t", "toggle_retired", "Retire/restore", id="rubric.retire",
                tooltip="Retire the highlighted criterion (its ratings stay), or restore it"),
    ]
    DEFAULT_CSS = """
    RubricEditorScreen { align: center middle; }
    RubricEditorScreen > Vertical { width: 110; max-width: 100%; height: 36; max-height: 100%; border: round $accent; background: $surface; padding: 0 1; }
    /* Table and anchors share the room 2:3 (10 and 15 rows in the 36-row box; 5 and 7 at 80x24). */
    RubricEditorScreen #rubric-table { height: 2fr; }
    RubricEditorScreen .rubric-row { height: 3; }
    RubricEditorScreen .rubric-label { width: 14; padding: 1 1 0 0; text-style: bold; }
    RubricEditorScreen #rubric-name { width: 30; }
    RubricEditorScreen #rubric-scale { width: 12; }
    RubricEditorScreen #rubric-description { width: 1fr; }
    RubricEditorScreen #rubric-anchors { height: 3fr; }
    RubricEditorScreen #rubric-status { height: auto; min-height: 1; color: $text-muted; }
    RubricEditorScreen #rubric-status.error { color: $text-error; text-style: bold; }
    """

    def __init__(self, db: Database) -> None:
        super().__init__()
        self.db = db
        self.changed = False

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Rubric — criteria in the store (retired ones keep their ratings)")
            yield DataTable(id="rubric-table", cursor_type="row")
            with Horizontal(classes="rubric-row"):
                yield Label("Name", classes="rubric-label")
                yield Input(id="rubric-name", placeholder="lower-case id")
                yield Label("Scale", classes="rubric-label")
                yield Input("1-5", id="rubric-scale")
            with Horizontal(classes="rubric-row"):
                yield Label("Description", classes="rubric-label")
                yield Input(id="rubric-description")
            yield Label("Anchors (one per line, `score: what it means`)")
            yield TextArea(id="rubric-anchors")
            yield Static(id="rubric-status")
        yield Footer()

    def on_mount(self) -> None:
        self.reload()

    def reload(self, keep: str | None = None) -> None:
        table = self.query_one(DataTable)
        table.clear(columns=True)
        table.add_columns("name", "scale", "status", "description")
        for criterion in rubric_store.criteria(self.db, include_retired=True):
            table.add_row(criterion.name, f"{criterion.scale_min}–{criterion.scale_max}",
                          "retired" if criterion.retired else "active", criterion.description[:60], key=criterion.name)
        if keep is not None and keep in table.rows:
            table.move_cursor(row=table.get_row_index(keep))

    def _highlighted(self) -> str | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    @on(DataTable.RowHighlighted)
    def load_form(self, event: DataTable.RowHighlighted) -> None:
        criterion = rubric_store.criterion(self.db, event.row_key.value)
        self.query_one("#rubric-name", Input).value = criterion.name
        self.query_one("#rubric-scale", Input).value = f"{criterion.scale_min}-{criterion.scale_max}"
        self.query_one("#rubric-description", Input).value = criterion.description
        self.query_one("#rubric-anchors", TextArea).text = format_anchors(criterion)

    def _status(self, message: str, error: bool = False) -> None:
        status = self.query_one("#rubric-status", Static)
        status.update(message)
        status.set_class(error, "error")

    def action_new(self) -> None:
        for field in ("#rubric-name", "#rubric-description"):
            self.query_one(field, Input).value = ""
        self.query_one("#rubric-scale", Input).value = "1-5"
        self.query_one("#rubric-anchors", TextArea).text = ""
        self.query_one("#rubric-name", Input).focus()
        self._status("New criterion: fill the form, then ctrl+s.")

    def action_save(self) -> None:
        name = self.query_one("#rubric-name", Input).value.strip()
        description = self.query_one("#rubric-description", Input).value.strip()
        scale_text = self.query_one("#rubric-scale", Input).value.strip()
        try:
            low, _, high = scale_text.partition("-")
            try:
                scale = (int(low), int(high))
            except ValueError:
                raise RubricError(f"scale: write `low-high`, e.g. `1-5`; got {scale_text!r}.") from None
            anchors = parse_anchors(self.query_one("#rubric-anchors", TextArea).text)
            if not description:
                raise RubricError("description: say what the criterion asks of an output.")
            exists = self.db["criteria"].count_where("name = ?", [name])
            if exists:
                rubric_store.edit_criterion(self.db, name, description=description, anchors=anchors, scale=scale)
                verb = "Saved"
            else:
                rubric_store.add_criterion(self.db, name, description, scale=scale, anchors=anchors)
                verb = "Added"
        except RubricError as error:
            self._status(str(error), error=True)
            return
        self.changed = True
        self.reload(keep=name)
        self._status(f"{verb} criterion {name!r}.")

    def action_toggle_retired(self) -> None:
        name = self._highlighted()
        if name is None:
            return
        criterion = rubric_store.criterion(self.db, name)
        if criterion.retired:
            rubric_store.restore_criterion(self.db, name)
            self._status(f"Restored {name!r}: new ratings will score it again.")
        else:
            rubric_store.retire_criterion(self.db, name)
            self._status(f"Retired {name!r}: its ratings stay and still appear in reports.")
        self.changed = True
        self.reload(keep=name)

    def action_close(self) -> None:
        self.dismiss(self.changed)
