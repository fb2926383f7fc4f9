"""Snapshots of the Pairs screen's ingest at 80×24 and 120×40: the preview of essays from
outside data/sources (what Apply would copy), and the question asked before overwriting a
source that is already there with other text.

Regenerate (only these) with `pytest tests/tui/test_snapshots_ingest.py --snapshot-update`
and look at the SVGs before committing them.
"""

from __future__ import annotations

import pytest
from textual.widgets import Input

from tests.tui.pairs_fixtures import make_workspace, settle
from tests.tui.test_pairs import outside_sources
from tui.app import make_app

SIZES = pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])  # SSH default, comfortable


@pytest.fixture
def app(tmp_path):
    # The folder name shows in the nav bar; tmp_path's own name changes per run. The essays sit
    # in the workspace (outside data/sources), so the paths shown do not change between runs.
    workspace = make_workspace(tmp_path / "demo")
    outside_sources(workspace.root / "elsewhere")
    return make_app(workspace)


async def preview(pilot) -> None:
    await settle(pilot)
    await pilot.press("i")
    await pilot.pause()
    pilot.app.screen.query_one("#ingest-paths", Input).value = "elsewhere"
    await pilot.press("ctrl+r")
    await settle(pilot)


@SIZES
def test_ingest_preview_of_outside_sources(snap_compare, size, app):
    assert snap_compare(app, run_before=preview, terminal_size=size)


@SIZES
def test_ingest_asks_before_overwriting_a_source(snap_compare, size, app):
    async def ask(pilot) -> None:
        await preview(pilot)
        await pilot.press("ctrl+o")
        await pilot.pause()

    assert snap_compare(app, run_before=ask, terminal_size=size)
