"""The app shell: screen switching (F1–F4, command palette), `?` help, binding ids, and a
first screen that does not import torch."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tests.tui.pairs_fixtures import make_workspace, settle
from tui.app import VoicebenchApp, make_app
from tui.screens.dialogs import SaveConflictDialog
from tui.screens.help import HelpScreen
from tui.screens.pairs import PairsScreen
from tui.screens.pairs_io import ExportDialog, IngestDialog
from tui.widgets.nav import SCREENS, NavBar
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


async def test_footer_is_rebuilt_only_when_its_keys_change(workspace):
    app = make_app(workspace)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        shown = list(app.screen.query("FooterKey"))
        assert "Filter" in [key.description for key in shown]
        for _ in range(3):  # a bindings signal with the same keys: the same key widgets stay
            app.screen.refresh_bindings()
        await pilot.pause()
        assert list(app.screen.query("FooterKey")) == shown
        await pilot.press("slash")  # the filter has focus: the screen's letter keys go from the footer
        await settle(pilot)
        descriptions = [key.description for key in app.screen.query("FooterKey") if not key.has_class("-command-palette")]
        assert "New" not in descriptions
        assert descriptions == [binding.description for _node, binding, _enabled, _tooltip
                                in app.screen.active_bindings.values() if binding.show]
