"""Snapshot tests of the Pairs screen and the help screen on the small fixed workspace.

Regenerate (only these) with `pytest tests/tui/test_snapshots_pairs.py --snapshot-update`
and look at the SVGs before committing them.
"""

from __future__ import annotations

import pytest

from tests.tui.pairs_fixtures import make_workspace, settle
from tui.app import make_app

SIZES = pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])  # SSH default, comfortable


@pytest.fixture
def app(tmp_path):
    # The folder name shows in the nav bar; tmp_path's own name changes per run.
    return make_app(make_workspace(tmp_path / "demo"))


@SIZES
def test_pairs_screen(snap_compare, size, app):
    assert snap_compare(app, run_before=settle, terminal_size=size)


@SIZES
def test_pairs_screen_filtered_with_a_flagged_pair(snap_compare, size, app):
    async def run_before(pilot) -> None:
        await settle(pilot)
        await pilot.press("slash", *"tier:note")
        await pilot.press("enter", "down", "down")  # back in the table, on walking-note
        await settle(pilot)

    assert snap_compare(app, run_before=run_before, terminal_size=size)


@SIZES
def test_help_screen(snap_compare, size, app):
    async def run_before(pilot) -> None:
        await settle(pilot)
        await pilot.press("question_mark")
        await pilot.pause()

    assert snap_compare(app, run_before=run_before, terminal_size=size)


@SIZES
def test_pairs_editing(snap_compare, size, app):
    """Editing a pair: at 80 columns the editor takes the whole width."""

    async def run_before(pilot) -> None:
        await settle(pilot)
        await pilot.press("down", "down", "enter")  # river-thesis in the editor
        await settle(pilot)

    assert snap_compare(app, run_before=run_before, terminal_size=size)


@SIZES
def test_pairs_problem_shown_whole(snap_compare, size, app):
    async def run_before(pilot) -> None:
        await settle(pilot)
        await pilot.press("p", "down", "down", "down")
        await settle(pilot)

    assert snap_compare(app, run_before=run_before, terminal_size=size)
