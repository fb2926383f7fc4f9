"""The editor pane of the Pairs screen: prompt and response (TextArea), tags and notes (Input).

It shows one pair at a time and reports every change as `PairEditor.Edited(pair_id, field,
value)`; the screen applies it to the session. It never holds the pair itself, so undo,
reload and ingest only need to call `show()` again.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, Label, TextArea

from engine.curate.pairs import Pair
from tui.widgets.pair_table import middle_ellipsis
from tui.widgets.safe_fields import SafeInput, SafeTextArea

TITLE_WIDTH = 34  # the editor is 42 columns wide; its title keeps both ends of long ids


def parse_tags(value: str) -> list[str]:
    """`"river, bread ,"` → `["river", "bread"]`; order kept, repeats dropped."""
    tags: list[str] = []
    for tag in (part.strip() for part in value.split(",")):
        if tag and tag not in tags:
            tags.append(tag)
    return tags


class PairEditor(Vertical):
    """Prompt, response, tags and notes of the selected pair."""

    class Edited(Message):
        """The writer changed a field; `value` is a str (list[str] for tags)."""

        def __init__(self, pair_id: str, field: str, value: str | list[str]) -> None:
            super().__init__()
            self.pair_id = pair_id
            self.field = field
            self.value = value

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.pair_id: str | None = None
        self._loading = False

    def compose(self) -> ComposeResult:
        yield Label("prompt", classes="pair-editor--label")
        yield SafeTextArea(id="pair-prompt", soft_wrap=True, placeholder="what the model is given")
        yield Label("response", classes="pair-editor--label")
        yield SafeTextArea(id="pair-response", soft_wrap=True, placeholder="what it should answer, in your voice")
        yield Label("tags", classes="pair-editor--label")
        # Fields are autosaved, so tabbing in must not select everything: the next key would
        # replace the tags. The cursor goes to the end instead (see on_descendant_focus).
        yield SafeInput(id="pair-tags", compact=True, placeholder="comma separated", select_on_focus=False)
        yield Label("notes", classes="pair-editor--label")
        yield SafeInput(id="pair-notes", compact=True, placeholder="your remarks; never used for training",
                    select_on_focus=False)

    def show(self, pair: Pair | None, key: str | None = None) -> None:
        """Load a pair into the fields (None: an empty, disabled editor). `key` is the
        pair's row key when it differs from its id (pairs sharing an id)."""
        self.pair_id = (key or pair.id) if pair is not None else None
        self._loading = True
        try:
            values = {
                "#pair-prompt": pair.prompt if pair else "",
                "#pair-response": pair.response if pair else "",
            }
            for selector, text in values.items():
                area = self.query_one(selector, TextArea)
                area.read_only = pair is None
                if area.text != text:
                    area.load_text(text)
            tags = self.query_one("#pair-tags", Input)
            notes = self.query_one("#pair-notes", Input)
            # An Input keeps its value when the parsed tags are equal, so a trailing comma
            # the writer is typing is not wiped by a refresh of the same pair.
            if pair is None or parse_tags(tags.value) != pair.tags:
                tags.value = ", ".join(pair.tags) if pair else ""
            if notes.value != (pair.notes if pair else ""):
                notes.value = pair.notes if pair else ""
            for widget in (tags, notes):
                widget.disabled = pair is None
        finally:
            self._loading = False
        self.border_title = middle_ellipsis(pair.id, TITLE_WIDTH) if pair is not None else "no pair selected"
        self.border_subtitle = f"{pair.tier} · {pair.split}" if pair is not None else ""

    def show_bad_line(self, line: int, raw: str, message: str) -> None:
        """A line that is not a pair: shown read-only, as it is kept on disk."""
        self.show(None)
        prompt = self.query_one("#pair-prompt", TextArea)
        prompt.load_text(raw)
        self.query_one("#pair-response", TextArea).load_text(
            f"line {line} is not a pair: {message}\n\nIt is kept exactly as it is and written back on save; "
            "fix it in a text editor (or delete it there) and reload."
        )
        self.border_title = f"line {line}"
        self.border_subtitle = "not a pair"

    def on_descendant_focus(self, event) -> None:
        if isinstance(event.widget, Input):
            event.widget.cursor_position = len(event.widget.value)

    @on(TextArea.Changed)
    def _text_changed(self, event: TextArea.Changed) -> None:
        event.stop()
        if self._loading or self.pair_id is None or event.text_area.read_only:
            return
        field = "prompt" if event.text_area.id == "pair-prompt" else "response"
        self.post_message(self.Edited(self.pair_id, field, event.text_area.text))

    @on(Input.Changed, "#pair-tags, #pair-notes")
    def _input_changed(self, event: Input.Changed) -> None:
        event.stop()
        if self._loading or self.pair_id is None:
            return
        if event.input.id == "pair-tags":
            self.post_message(self.Edited(self.pair_id, "tags", parse_tags(event.value)))
        else:
            self.post_message(self.Edited(self.pair_id, "notes", event.value))
