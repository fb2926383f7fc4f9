"""The Canvas screen's "save these settings as a preset" dialogs: a name prompt (validated as
`engine.sample.sweep` names presets), and a y/n question before an existing preset is replaced.

The dialogs only ask; the Canvas screen saves with `engine.sample.sweep.save_preset`, so
`voicebench sweep --preset NAME` and `voicebench canary --preset NAME` read back what it wrote.
"""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from engine.display import safe_text
from engine.sample.sweep import PRESET_NAME, PRESETS_NAME

DIALOG_CSS = """
{name} {{ align: center middle; }}
{name} > Vertical {{ width: 76; max-width: 100%; height: auto; border: round $accent; background: $surface;
    padding: 1 2; }}
{name} Label {{ text-style: bold; }}
{name} .hint {{ color: $text-muted; margin-top: 1; }}
{name} #preset-error {{ color: $text-error; height: auto; }}
"""


def describe_values(values: dict[str, Any]) -> str:
    """`temperature 0.7 · steps 64 · eos keep` — a preset's settings on one line."""
    return " · ".join(f"{key} {value}" for key, value in values.items())


def name_problem(name: str) -> str:
    """Why `name` cannot name a preset, or "" when it can."""
    if not name:
        return "Type a name for the preset (enter saves, escape cancels)."
    if not PRESET_NAME.match(name):
        return (f"{safe_text(name)!r} cannot name a preset: use letters, digits, '-' and '_', starting with a "
                "letter or digit (like \"calm-64\").")
    return ""


class PresetNameDialog(ModalScreen[str | None]):
    """Ask for a preset name; enter confirms a valid one, escape cancels."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel", id="preset_dialog.cancel")]
    DEFAULT_CSS = DIALOG_CSS.format(name="PresetNameDialog")

    def __init__(self, values: dict[str, Any], existing: list[str], default: str = "") -> None:
        super().__init__()
        self.values, self.existing, self.default = values, existing, default

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Save these sampler settings as a preset")
            yield Static(describe_values(self.values))
            yield Input(self.default, placeholder="a name, like calm-64", id="preset-name", select_on_focus=False)
            yield Static("", id="preset-error")
            existing = ", ".join(safe_text(name) for name in self.existing) or "none yet"
            yield Static(f"Saved to {PRESETS_NAME} in the workspace, for `voicebench sweep --preset NAME` and "
                         f"`voicebench canary --preset NAME`. Gen length and seed are not saved: each canary "
                         f"sets its own. Existing presets: {existing}.", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#preset-name", Input).focus()

    @on(Input.Submitted, "#preset-name")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        name = event.value.strip()
        problem = name_problem(name)
        if problem:
            self.query_one("#preset-error", Static).update(problem)
            return
        self.dismiss(name)


class ConfirmOverwriteDialog(ModalScreen[bool]):
    """A preset of this name exists: replace it (y) or keep it (n / escape)?"""

    BINDINGS = [
        Binding("y", "dismiss(True)", "Overwrite", id="preset_overwrite.yes"),
        Binding("n,escape", "dismiss(False)", "Keep it", id="preset_overwrite.no"),
    ]
    DEFAULT_CSS = DIALOG_CSS.format(name="ConfirmOverwriteDialog")

    def __init__(self, name: str, old: dict[str, Any], new: dict[str, Any]) -> None:
        super().__init__()
        self.preset_name, self.old, self.new = name, old, new

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"A preset named {safe_text(self.preset_name)!r} exists. Overwrite it?")
            yield Static(f"now:  {safe_text(describe_values(self.old))}\nnew:  {describe_values(self.new)}")
            yield Static("y overwrites · n keeps it (pick another name)", classes="hint")
