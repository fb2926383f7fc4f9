"""Blind rubric rating at 80×24 (an SSH default): every control of a rating — the criteria,
the focused criterion's anchors, the flags and the note — is inside the visible screen, the
long output scrolls in its own pane, and a writer rates, flags and notes with keys alone."""

from __future__ import annotations

import pytest

from engine.judge import rubric as rubric_store
from engine.judge import session as judging
from engine.judge.workspace_store import open_workspace_store
from tests.tui.test_judge import make_workspace
from tui.app import make_app
from tui.widgets.judge_item import BlindItemView
from tui.widgets.nav import KeyBar

pytestmark = pytest.mark.anyio

# A generation far longer than the screen: what pushed the flags and note below the fold.
LONG_OUTPUT = "\n".join(f"Line {number} of a long answer about the river and its counsel." for number in range(1, 81))
CONTROLS = ("#item-rubric", "#item-anchors", "#item-flags", "#item-note")


@pytest.fixture
def anyio_backend():
    return "asyncio"


def long_output_session(workspace) -> int:
    db = open_workspace_store(workspace)
    try:
        db.execute("update generations set text = ?", [LONG_OUTPUT])
        db.conn.commit()
        return judging.build_session(db, mode="rubric", rater="wren", seed=7)
    finally:
        db.close()


def assert_on_screen(app, selector: str) -> None:
    """`selector`'s widget is drawn wholly inside the screen and above the footer."""
    screen = app.screen
    widget = screen.query_one(selector)
    region = widget.region
    assert widget.display and region.height > 0, f"{selector} is not drawn"
    assert screen.region.contains_region(region), f"{selector} at {region} is outside {screen.region}"
    footer_top = screen.query_one(KeyBar).region.y
    assert region.bottom <= footer_top, f"{selector} at {region} runs under the footer (row {footer_top})"



def long_output_app(tmp_path, repo_root):
    """The app on a workspace whose open rubric session starts on a long output."""
    workspace = make_workspace(tmp_path / "workspace", repo_root)
    long_output_session(workspace)
    return make_app(workspace)


async def resume_session(pilot) -> None:
    """F4, then ctrl+o: resume the open session the workspace holds."""
    await pilot.press("f4")
    await pilot.pause()
    await pilot.press("ctrl+o")
    await pilot.pause()

async def test_every_rating_control_is_visible_at_80x24(tmp_path, repo_root):
    app = long_output_app(tmp_path, repo_root)
    async with app.run_test(size=(80, 24)) as pilot:
        await resume_session(pilot)
        view = app.screen.query_one(BlindItemView)
        assert view.compact
        for row in range(4):  # every criterion focused in turn: its anchors change size
            for selector in CONTROLS:
                assert_on_screen(app, selector)
            await pilot.press("down")
            await pilot.pause()
        output_box = app.screen.query_one("#item-left-box")
        assert output_box.region.height >= 6  # room to read: four lines inside the border at least
        assert output_box.max_scroll_y > 0  # the long output scrolls in its own pane...
        await pilot.press("pagedown")
        await pilot.pause()
        assert output_box.scroll_y > 0
        for selector in CONTROLS:  # ...and the controls stay where they were
            assert_on_screen(app, selector)


async def test_rate_flag_and_note_with_keys_at_80x24(tmp_path, repo_root):
    workspace = make_workspace(tmp_path / "workspace", repo_root)
    session_id = long_output_session(workspace)
    app = make_app(workspace)
    async with app.run_test(size=(80, 24)) as pilot:
        await resume_session(pilot)
        screen = app.screen
        await pilot.press("4", "3", "5", "2")  # one key per criterion; the focus moves on
        await pilot.press("d", "m")  # flags: degenerate, memorised
        await pilot.press("n")
        await pilot.pause()
        note_input = app.screen.query_one("#note-input")
        assert app.screen.region.contains_region(note_input.region)  # the note dialog fits 80 columns
        await pilot.press(*"loops at the end", "enter")
        await pilot.pause()
        assert app.screen is screen
        flags_text = str(screen.query_one("#item-flags").render())
        note_text = str(screen.query_one("#item-note").render())
        assert "degenerate" in flags_text and "Note (n) loops at the end" in note_text
        for selector in CONTROLS:
            assert_on_screen(app, selector)

    db = open_workspace_store(workspace)
    try:
        item = judging.BlindSession(db, session_id).current()
        criteria = [criterion.name for criterion in rubric_store.criteria(db)]
        assert item.scores == dict(zip(criteria, (4, 3, 5, 2)))
        assert set(item.flags) == {"degenerate", "memorised"}
        assert item.note == "loops at the end"
    finally:
        db.close()


async def test_shrinking_the_terminal_mid_item_keeps_the_controls_on_screen(tmp_path, repo_root):
    app = long_output_app(tmp_path, repo_root)
    async with app.run_test(size=(120, 40)) as pilot:
        await resume_session(pilot)
        view = app.screen.query_one(BlindItemView)
        assert not view.compact
        for selector in CONTROLS:  # the roomy layout has room for everything too
            assert_on_screen(app, selector)
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        assert view.compact
        for selector in CONTROLS:
            assert_on_screen(app, selector)
        await pilot.resize_terminal(120, 40)  # and back: the roomy layout returns
        await pilot.pause()
        assert not view.compact
        prompt = app.screen.query_one("#item-prompt")
        assert not prompt.styles.inline.has_rule("max_height")  # judge.tcss's own limit applies again
        assert prompt.styles.max_height.value == 4
