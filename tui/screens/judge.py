"""The Judge screen: placeholder until issue 5 lands."""

from __future__ import annotations

from textual.widgets import Static

from tui.screens.base import WorkbenchScreen


class JudgeScreen(WorkbenchScreen):
    SCREEN_NAME = "judge"

    def compose_body(self):
        yield Static("Judge: not built yet (issue 5).", id="placeholder")
