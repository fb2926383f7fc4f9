"""The bar along the top that names every screen and its key, highlighting the active one."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

# (mode name, label, key) in the order they appear; the app binds the keys.
SCREENS = (
    ("pairs", "Pairs", "f1"),
    ("train", "Train", "f2"),
    ("canvas", "Canvas", "f3"),
    ("judge", "Judge", "f4"),
)


class NavBar(Static):
    """One line: `voicebench  F1 Pairs  F2 Train  F3 Canvas  F4 Judge   <workspace>`."""

    DEFAULT_CSS = """
    NavBar { height: 1; background: $panel; color: $text-muted; }
    """

    def __init__(self, active: str, workspace_label: str = "") -> None:
        super().__init__()
        self.active = active
        self.workspace_label = workspace_label

    def render(self) -> Text:
        text = Text(" voicebench ", style="bold")
        for mode, label, key in SCREENS:
            style = "bold reverse" if mode == self.active else ""
            text.append(f" {key.upper()} {label} ", style=style)
            text.append(" ")
        if self.workspace_label:
            text.append(f"  {self.workspace_label}", style="dim")
        return text
