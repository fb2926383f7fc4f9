"""The app shell: screen switching (F1–F4, command palette), `?` help, binding ids, and a
first screen that does not import torch."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from textual.command import CommandPalette

from tests.tui.pairs_fixtures import make_workspace, settle
from tui.app import VoicebenchApp, make_app
from tui.screens.dialogs import SaveConflictDialog
from tui.screens.help import HelpScreen
from tui.screens.pairs import PairsScreen
from tui.screens.pairs_io import ExportDialog, IngestDialog
from tui.widgets.nav import SCREENS, KeyBar, NavBar
from tui.widgets.pair_table import PairTable

pytestmark = pytest.mark.anyio
SIZE = (120, 40)


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def workspace(tmp_path):
    return make_workspace(tmp_path / "demo")


async def test_function_keys_switch_screens_and_the_nav_bar_follows(workspace):
    app = make_app(workspace)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.current_mode == "pairs"
        for mode, _label, key in [*SCREENS[1:], SCREENS[0]]:
            await pilot.press(key)
            await pilot.pause()
            assert app.current_mode == mode
            assert app.screen.query_one(NavBar).active == mode


async def test_question_mark_lists_the_keys_of_the_screen(workspace):
    app = make_app(workspace)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        listed = _help_text(app.screen)
        for description in ("Filter", "New", "Copy", "Delete", "Undo", "Redo", "Save", "Ingest", "Export",
                            "→train", "→val", "Problems", "Edit pair", "Help", "Quit",
                            *(label for _mode, label, _key in SCREENS)):
            assert description in listed
        assert "^z" in listed and "Keys · Pairs" in listed
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, PairsScreen)


def _help_text(help_screen: HelpScreen) -> str:
    from rich.console import Console

    console = Console(width=100, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(help_screen._table())
    return console.export_text()


async def test_command_palette_goes_to_a_screen(workspace):
    app = make_app(workspace)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Go to Judge")
        await settle(pilot)
        await pilot.press("enter")
        await pilot.pause()
        assert app.current_mode == "judge"


def test_every_binding_has_an_id_and_a_description():
    owners = [VoicebenchApp, PairsScreen, PairTable, HelpScreen, SaveConflictDialog, IngestDialog, ExportDialog]
    for owner in owners:
        for binding in owner.BINDINGS:
            assert binding.id, f"{owner.__name__}: binding {binding.key!r} has no id"
            assert binding.description, f"{owner.__name__}: binding {binding.key!r} has no description"


def test_first_screen_does_not_import_torch_or_transformers(tmp_path):
    workspace = make_workspace(tmp_path / "demo")
    script = textwrap.dedent(f"""
        import asyncio, sys
        from engine.workspace import Workspace
        from tui.app import make_app
        from tests.tui.pairs_fixtures import settle

        async def main():
            app = make_app(Workspace.open({str(workspace.root)!r}))
            async with app.run_test(size=(120, 40)) as pilot:
                await settle(pilot)
                rows = len(app.screen.query_one("#pairs-table").row_ids)
            print(rows, "torch" in sys.modules, "transformers" in sys.modules)

        asyncio.run(main())
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    rows, torch_loaded, transformers_loaded = result.stdout.split()
    assert int(rows) == 11  # the Pairs screen really was shown, tokens counted
    assert torch_loaded == "False"
    assert transformers_loaded == "False"


async def test_command_palette_runs_pairs_actions(workspace):
    app = make_app(workspace)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+p")
        await pilot.press(*"Pairs: Export")
        await settle(pilot)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ExportDialog)


async def test_key_bar_shows_the_focused_keys_and_a_click_presses_one(workspace):
    app = make_app(workspace)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        bar = app.screen.query_one(KeyBar)
        assert not bar.children  # one widget draws the whole line
        line = bar.render().plain
        assert line.startswith(" ⏎ Edit pair  / Filter  n New  c Copy  d Delete  ^z Undo ")
        assert line.endswith("▏^p palette") and len(line) == SIZE[0] - 1  # then one cell of padding
        assert "delete" not in line and "→val" not in line  # one key per action; hidden keys stay hidden

        await pilot.hover(KeyBar, offset=(line.index("Filter"), 0))  # the key's tooltip, as on the Footer
        assert bar.tooltip == "Filter by words or tier:/split:/tag:/source:/id:"
        await pilot.click(KeyBar, offset=(line.index("Filter"), 0))  # the filter's key, "/"
        await settle(pilot)
        assert app.focused is app.screen.query_one("#pairs-filter")
        keys, _palette = bar.shown_keys()  # the filter has focus: the screen's letter keys are gone
        assert "New" not in [key.description for key in keys]
        assert "New" not in bar.render().plain
        assert [key.description for key in keys] == list(dict.fromkeys(
            binding.description for _node, binding, _enabled, _tooltip in app.screen.active_bindings.values()
            if binding.show))

        await pilot.click(KeyBar, offset=(SIZE[0] - 3, 0))  # the palette's key at the right edge
        await pilot.pause()
        assert isinstance(app.screen, CommandPalette)


async def test_key_bar_is_cut_before_the_palette_key_on_a_narrow_terminal(workspace):
    app = make_app(workspace)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        bar = app.screen.query_one(KeyBar)
        line = bar.render().plain
        assert line == " ⏎ Edit pair  / Filter  n New  c Copy  d Delete  ^z Undo  ^s Save  i▏^p palette"
        await pilot.click(KeyBar, offset=(line.index("▏") - 1, 0))  # the cut key still works: "i" ingests
        await pilot.pause()
        assert isinstance(app.screen, IngestDialog)
