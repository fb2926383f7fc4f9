"""The Pairs screen: placeholder until issue 2 lands."""

from __future__ import annotations

from textual.widgets import Static

from tui.screens.base import WorkbenchScreen


class PairsScreen(WorkbenchScreen):
    SCREEN_NAME = "pairs"

    def compose_body(self):
        yield Static("Pairs: not built yet (issue 2).", id="placeholder")
