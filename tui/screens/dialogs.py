"""Small modal dialogs of the Pairs screen: the save conflict (reload / save as / overwrite)
and the ingest's source clash (overwrite / keep existing / cancel).

The ingest and export dialogs, which need the engine's ingest and export modules, live in
`tui/screens/pairs_io.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static


@dataclass(frozen=True)
class ConflictChoice:
    """What the writer chose: "save_as" (with a path), "reload" or "overwrite"."""

    action: str
    path: str = ""


class SaveConflictDialog(ModalScreen[ConflictChoice | None]):
    """The pairs file changed on disk while there were unsaved edits. Nothing is lost:
    every choice keeps the in-memory edits somewhere on disk."""

    BINDINGS = [
        Binding("escape", "dismiss(None)", "Decide later", id="conflict.later"),
        Binding("ctrl+r", "choose('reload')", "Reload (keep mine aside)", id="conflict.reload"),
        Binding("ctrl+o", "choose('overwrite')", "Overwrite with mine", id="conflict.overwrite"),
    ]
    DEFAULT_CSS = """
    SaveConflictDialog { align: center middle; }
    SaveConflictDialog > Vertical {
        width: 84; max-width: 100%; height: auto; border: thick $error; background: $surface; padding: 1 2;
    }
    SaveConflictDialog .dialog--title { text-style: bold; color: $text-error; }
    SaveConflictDialog Input { margin: 1 0 0 0; }
    SaveConflictDialog Horizontal { height: auto; margin-top: 1; }
    SaveConflictDialog Button { margin-right: 1; }
    SaveConflictDialog #conflict-error { color: $text-error; }
    """

    def __init__(self, file_label: str, unsaved_label: str, save_as_default: str, rescue_label: str,
                 error: str = "") -> None:
        super().__init__()
        self.file_label = file_label
        self.unsaved_label = unsaved_label
        self.save_as_default = save_as_default
        self.rescue_label = rescue_label
        self.error = error

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"{self.file_label} changed on disk", classes="dialog--title")
            yield Static(
                f"Another program changed the file since it was loaded. Your {self.unsaved_label} "
                "are safe in memory; nothing is written until you choose:\n"
                f"• Save as: write your version to the path below and keep editing it there.\n"
                f"• Reload: load the file from disk; your version is first written to {self.rescue_label}.\n"
                "• Overwrite: replace the file on disk with your version (the other change goes to .bak)."
            )
            yield Input(self.save_as_default, id="conflict-path", placeholder="path for your version")
            yield Static(self.error, id="conflict-error")
            with Horizontal():
                yield Button("Save as", id="conflict-save-as", variant="primary")
                yield Button("Reload", id="conflict-reload")
                yield Button("Overwrite", id="conflict-overwrite", variant="error")
                yield Button("Later", id="conflict-later")

    def on_mount(self) -> None:
        self.query_one("#conflict-save-as", Button).focus()

    def action_choose(self, action: str) -> None:
        path = self.query_one("#conflict-path", Input).value.strip()
        self.dismiss(ConflictChoice(action, path))

    @on(Input.Submitted, "#conflict-path")
    def _submitted(self) -> None:
        self.action_choose("save_as")

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        actions = {
            "conflict-save-as": "save_as", "conflict-reload": "reload", "conflict-overwrite": "overwrite",
        }
        if event.button.id in actions:
            self.action_choose(actions[event.button.id])
        else:
            self.dismiss(None)


CLASH_OVERWRITE = "overwrite"  # replace the files in data/sources with the ingested ones
CLASH_KEEP = "keep"  # copy only the new files; the differing ones stay as they are
CLASH_CANCEL = "cancel"  # copy nothing, apply nothing
CLASHES_LISTED = 5  # files named in the question; the rest are counted


class SourceClashDialog(ModalScreen[str]):
    """Ingest read files whose copies in data/sources hold other text: replace them, keep
    them, or stop. Answered with one key: o, k, or escape."""

    BINDINGS = [
        Binding("o", f"dismiss('{CLASH_OVERWRITE}')", "Overwrite", id="clash.overwrite"),
        Binding("k", f"dismiss('{CLASH_KEEP}')", "Keep existing", id="clash.keep"),
        Binding("escape,c", f"dismiss('{CLASH_CANCEL}')", "Cancel", id="clash.cancel"),
    ]
    DEFAULT_CSS = """
    SourceClashDialog { align: center middle; }
    SourceClashDialog > Vertical {
        width: 84; max-width: 100%; height: auto; max-height: 100%;
        border: thick $warning; background: $surface; padding: 1 2;
    }
    SourceClashDialog .dialog--title { text-style: bold; color: $text-warning; }
    SourceClashDialog #clash-files { margin: 1 0; }
    SourceClashDialog Horizontal { height: auto; }
    SourceClashDialog Button { margin-right: 1; }
    """

    def __init__(self, clashes: list[tuple[str, str]]) -> None:
        """`clashes`: (file in data/sources, the ingested file with other text), as shown."""
        super().__init__()
        self.clashes = clashes

    def compose(self) -> ComposeResult:
        from engine.display import safe_text

        count = len(self.clashes)
        lines = [f"• {safe_text(target)}\n    ingested: {safe_text(source)}"
                 for target, source in self.clashes[:CLASHES_LISTED]]
        if count > CLASHES_LISTED:
            lines.append(f"… and {count - CLASHES_LISTED} more")
        with Vertical():
            yield Label(f"{count} source{'s' if count != 1 else ''} already in the workspace with other text",
                        classes="dialog--title")
            yield Static("\n".join(lines), id="clash-files", markup=False)
            them, files = ("them", "files") if count != 1 else ("it", "file")
            yield Static(f"o: overwrite {them} with the ingested {files} (ctrl+z will not bring {them} back)\n"
                         f"k: keep the existing {files}, copy only the new ones\n"
                         "escape: cancel — nothing copied, no pairs applied", markup=False)
            with Horizontal():
                yield Button("Overwrite  o", id="clash-overwrite", variant="warning")
                yield Button("Keep existing  k", id="clash-keep", variant="primary")
                yield Button("Cancel  esc", id="clash-cancel")

    def on_mount(self) -> None:
        self.query_one("#clash-keep", Button).focus()  # the choice that loses nothing

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        choices = {"clash-overwrite": CLASH_OVERWRITE, "clash-keep": CLASH_KEEP}
        self.dismiss(choices.get(event.button.id, CLASH_CANCEL))
