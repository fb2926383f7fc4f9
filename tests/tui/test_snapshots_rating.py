"""Snapshots of blind rubric rating with an output longer than the screen, at 80×24 (compact:
the output pane scrolls, criteria, anchors, flags and note stay on screen) and 120×40.

Regenerate (only these) with `pytest tests/tui/test_snapshots_rating.py --snapshot-update`
and look at the SVG before committing it.
"""

from __future__ import annotations

import pytest

from tests.tui.test_judge import make_workspace
from tests.tui.test_rating_small import long_output_session
from tui.app import make_app

SIZES = pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])  # SSH default, comfortable


@SIZES
def test_rating_long_output(snap_compare, size, tmp_path, repo_root):
    workspace = make_workspace(tmp_path / "workspace", repo_root)
    long_output_session(workspace)

    async def rate(pilot):
        await pilot.press("f4")
        await pilot.pause()
        await pilot.press("ctrl+o")
        await pilot.pause()
        await pilot.press("4", "3", "d")  # two criteria scored, focus on the third; a flag set
        await pilot.press("n", *"loops at the end", "enter")
        await pilot.pause()

    assert snap_compare(make_app(workspace), run_before=rate, terminal_size=size)
