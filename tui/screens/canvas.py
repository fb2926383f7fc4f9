"""The Canvas screen: placeholder until issue 3 lands."""

from __future__ import annotations

from textual.widgets import Static

from tui.screens.base import WorkbenchScreen


class CanvasScreen(WorkbenchScreen):
    SCREEN_NAME = "canvas"

    def compose_body(self):
        yield Static("Canvas: not built yet (issue 3).", id="placeholder")
