"""The Train screen: placeholder until issue 4 lands."""

from __future__ import annotations

from textual.widgets import Static

from tui.screens.base import WorkbenchScreen


class TrainScreen(WorkbenchScreen):
    SCREEN_NAME = "train"

    def compose_body(self):
        yield Static("Train: not built yet (issue 4).", id="placeholder")
