"""The voicebench Textual app: four screens (Pairs, Train, Canvas, Judge) over one workspace.

Run it with `voicebench` in a workspace folder (the repo root is the bundled demo), or
build it in tests with `make_app(workspace)`.

Only the first screen is imported and composed at start-up: each mode is a factory that
imports its screen module on first use, because the other screens pull in what Pairs does
not need (the judging store's sqlite-utils, which imports pandas, costs over a second).
The help screen and the Pairs screen's dialogs are imported when first opened too.
"""

from __future__ import annotations

import importlib

from textual.app import App
from textual.binding import Binding
from textual.command import Hit, Hits, Provider
from textual.screen import Screen

from engine.workspace import Workspace
from tui.screens.base import WorkbenchScreen
from tui.widgets.nav import SCREENS

# mode → (module, class): imported when the mode is first shown.
SCREEN_CLASSES = {
    "pairs": ("tui.screens.pairs", "PairsScreen"),
    "train": ("tui.screens.train", "TrainScreen"),
    "canvas": ("tui.screens.canvas", "CanvasScreen"),
    "judge": ("tui.screens.judge", "JudgeScreen"),
}
# Screens pushed on top of a mode (not modes themselves), built the same lazy way.
PUSHED_SCREEN_CLASSES = {"versions": ("tui.screens.versions", "VersionsScreen")}


def screen_factory(mode: str):
    """A callable Textual's MODES accepts: builds the mode's screen, importing it on first use."""
    module_name, class_name = SCREEN_CLASSES.get(mode) or PUSHED_SCREEN_CLASSES[mode]

    def build() -> Screen:
        return getattr(importlib.import_module(module_name), class_name)()

    build.__name__ = f"build_{mode}_screen"
    return build


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
    MODES = {mode: screen_factory(mode) for mode in SCREEN_CLASSES}
    DEFAULT_MODE = "pairs"
    COMMANDS = App.COMMANDS | {ScreenCommands}
    BINDINGS = [
        *[
            Binding(key, f"switch_mode('{mode}')", label, id=f"app.goto.{mode}", tooltip=f"Go to the {label} screen")
            for mode, label, key in SCREENS
        ],
        Binding("question_mark", "help", "Help", id="app.help", tooltip="List every key of this screen"),
        Binding("f12", "push_screen('versions')", "Versions", show=False, id="app.versions",
                tooltip="Your model's versions: history, gate verdicts, roll back"),
        Binding("ctrl+q", "quit", "Quit", id="app.quit", priority=True),
    ]
    # Named screens pushed by key (after BINDINGS: that list reads tui.widgets.nav.SCREENS, the nav bar's).
    SCREENS = {"versions": screen_factory("versions")}

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
        # Imported on first use: the help screen is not needed for the first frame.
        from tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))


def make_app(workspace: Workspace | None = None) -> VoicebenchApp:
    """The one way to build the app, shared by the CLI and the tests."""
    return VoicebenchApp(workspace or Workspace.open("."))


def run(workspace: Workspace) -> None:
    make_app(workspace).run()
