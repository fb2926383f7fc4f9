"""Base class for the four workbench screens: nav bar on top, footer below, body between."""

from __future__ import annotations

from collections.abc import Iterable

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer

from tui.widgets.nav import NavBar


class WorkbenchScreen(Screen):
    """Subclasses set SCREEN_NAME and implement compose_body()."""

    SCREEN_NAME = ""

    def compose(self) -> ComposeResult:
        yield NavBar(self.SCREEN_NAME, workspace_label=str(self.app.workspace.root))
        yield from self.compose_body()
        yield Footer()

    def compose_body(self) -> Iterable[Widget]:
        raise NotImplementedError
