"""Base class for the four workbench screens: nav bar on top, key bar below, body between."""

from __future__ import annotations

from collections.abc import Iterable

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widget import Widget
from tui.widgets.nav import KeyBar, NavBar


class WorkbenchScreen(Screen):
    """Subclasses set SCREEN_NAME and implement compose_body()."""

    SCREEN_NAME = ""

    def compose(self) -> ComposeResult:
        # The folder's name only: short, and the same in every checkout (snapshot tests).
        yield NavBar(self.SCREEN_NAME, workspace_label=f"workspace: {self.app.workspace.root.name}")
        yield from self.compose_body()
        yield KeyBar()

    def compose_body(self) -> Iterable[Widget]:
        raise NotImplementedError

    def prepare_to_quit(self) -> bool:
        """Called before the app quits: flush unsaved work. Return False to stay open
        (e.g. a save needs the user's decision); the screen tells the user why."""
        return True
