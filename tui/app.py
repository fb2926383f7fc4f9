"""The voicebench Textual app: four screens (Pairs, Train, Canvas, Judge) over one workspace.

Run it with `voicebench` in a workspace folder (the repo root is the bundled demo), or
build it in tests with `make_app(workspace)`.
"""

from __future__ import annotations

from textual.app import App
from textual.binding import Binding
from textual.command import Hit, Hits, Provider

from engine.workspace import Workspace
from tui.screens.base import WorkbenchScreen
from tui.screens.canvas import CanvasScreen
from tui.screens.help import HelpScreen
from tui.screens.judge import JudgeScreen
from tui.screens.pairs import PairsScreen
from tui.screens.train import TrainScreen
from tui.widgets.nav import SCREENS


class ScreenCommands(Provider):
    """Command palette: go to any screen by name."""

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for mode, label, key in SCREENS:
            command = f"Go to {label}"
            score = matcher.match(command)
            if score > 0:
                yield Hit(score, matcher.highlight(command), lambda mode=mode: self.app.switch_mode(mode),
                          help=f"switch to the {label} screen ({key.upper()})")


class VoicebenchApp(App):
    TITLE = "voicebench"
    MODES = {
        "pairs": PairsScreen,
        "train": TrainScreen,
        "canvas": CanvasScreen,
        "judge": JudgeScreen,
    }
    DEFAULT_MODE = "pairs"
    COMMANDS = App.COMMANDS | {ScreenCommands}
    BINDINGS = [
        *[
            Binding(key, f"switch_mode('{mode}')", label, id=f"app.goto.{mode}", tooltip=f"Go to the {label} screen")
            for mode, label, key in SCREENS
        ],
        Binding("question_mark", "help", "Help", id="app.help", tooltip="List every key of this screen"),
        Binding("ctrl+q", "quit", "Quit", id="app.quit", priority=True),
    ]

    def __init__(self, workspace: Workspace) -> None:
        super().__init__()
        self.workspace = workspace

    async def action_quit(self) -> None:
        """Quit, after every open workbench screen has flushed its work (autosave) — in every mode,
        not only the one on show (a run training on the Train screen must be asked about)."""
        screens = [screen for stack in self._screen_stacks.values() for screen in stack]
        for screen in screens:
            if isinstance(screen, WorkbenchScreen) and not screen.prepare_to_quit():
                return
        self.exit()

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))


def make_app(workspace: Workspace | None = None) -> VoicebenchApp:
    """The one way to build the app, shared by the CLI and the tests."""
    return VoicebenchApp(workspace or Workspace.open("."))


def run(workspace: Workspace) -> None:
    make_app(workspace).run()
