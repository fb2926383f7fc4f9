"""Snapshots of the Judge screen mid-session (rubric and pairwise) and of the leaderboard,
made deterministic with fixed shuffle and bootstrap seeds and a store filled through the
engine API (no timings are shown anywhere on these screens).

Regenerate (only these) with `pytest tests/tui/test_snapshots_judge.py --snapshot-update`
and look at the SVG before committing it.
"""

from __future__ import annotations

import pytest

from engine.judge import session as judging
from engine.judge.workspace_store import open_workspace_store
from tests.tui.test_judge import make_workspace
from tests.tui.waiting import workers_done
from tui.app import make_app

SIZES = pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])  # SSH default, comfortable


@pytest.fixture
def workspace(tmp_path, repo_root):
    return make_workspace(tmp_path / "workspace", repo_root)


def seeded_session(workspace, mode: str) -> int:
    db = open_workspace_store(workspace)
    try:
        session_id = judging.build_session(db, mode=mode, rater="wren", seed=7)
        blind = judging.BlindSession(db, session_id)
        if mode == "rubric":
            blind.rate("voice", 4)
            blind.rate("coherence", 3)
            blind.next()
            blind.rate("voice", 2)
            blind.toggle_flag("degenerate")
            blind.set_note("loops in the second half")
        else:
            blind.choose("left")
            blind.next()
            blind.choose("right")
            blind.choose("tie", "voice")
        return session_id
    finally:
        db.close()


@SIZES
def test_judge_rubric_mid_session(snap_compare, size, workspace):
    seeded_session(workspace, "rubric")

    async def resume(pilot):
        await pilot.press("f4")
        await pilot.pause()
        await pilot.press("ctrl+o")  # the newest open session is highlighted
        await pilot.pause()
        await pilot.press("down")  # focus coherence: its anchors show

    assert snap_compare(make_app(workspace), run_before=resume, terminal_size=size)


@SIZES
def test_judge_pairwise_mid_session(snap_compare, size, workspace):
    seeded_session(workspace, "pairwise")

    async def resume(pilot):
        await pilot.press("f4")
        await pilot.pause()
        await pilot.press("ctrl+o")
        await pilot.pause()

    assert snap_compare(make_app(workspace), run_before=resume, terminal_size=size)


def rated_store(workspace) -> None:
    """Rate everything in a rubric session and vote in a pairwise one."""
    db = open_workspace_store(workspace)
    rubric_id = judging.build_session(db, mode="rubric", rater="wren", seed=3)
    blind = judging.BlindSession(db, rubric_id)
    for position in range(blind.total):
        blind.goto(position)
        for offset, name in enumerate(("voice", "coherence", "originality", "craft")):
            blind.rate(name, 1 + (position * 3 + offset) % 5)
    blind.end()
    pairwise_id = judging.build_session(db, mode="pairwise", rater="wren", seed=4)
    blind = judging.BlindSession(db, pairwise_id)
    for position in range(blind.total):
        blind.goto(position)
        blind.choose(("left", "right", "tie")[position % 3])
    blind.end()
    db.close()


# Fixed voice scores (what engine.judge.voice stores), chosen so the voice order disagrees with
# the ratings for one contestant; and one contestant never scored.
VOICE_SCORES = (
    ("zebra-base", 0.58, 0.41, 0.74, 4),
    ("run-ocelot/checkpoint-40", 0.91, 0.80, 0.98, 9),
    ("quokka-large", 0.73, 0.60, 0.85, 2),
)


def store_voice_scores(workspace, scores=VOICE_SCORES) -> None:
    db = open_workspace_store(workspace)
    for label, auc, low, high, copied in scores:
        db["voice_scores"].insert({"label": label, "status": "scored", "auc": auc, "auc_low": low, "auc_high": high,
                                   "copied_words": copied, "created_at": "2026-11-30T12:00:00"})
    db.close()


async def open_board(pilot):
    await pilot.press("f4")
    await pilot.pause()
    await pilot.press("ctrl+l")
    await workers_done(pilot.app)
    pilot.app.clear_notifications()  # other screens' start-up toasts come and go with timing
    await pilot.pause()


@SIZES
def test_leaderboard(snap_compare, size, workspace):
    rated_store(workspace)
    assert snap_compare(make_app(workspace), run_before=open_board, terminal_size=size)


@SIZES
def test_leaderboard_with_voice_scores(snap_compare, size, workspace):
    # The voice section sits under the headline: on screen at 80x24 without scrolling.
    rated_store(workspace)
    store_voice_scores(workspace)
    assert snap_compare(make_app(workspace), run_before=open_board, terminal_size=size)


@SIZES
def test_judge_builder(snap_compare, size, workspace):
    async def open_builder(pilot):
        await pilot.press("f4")
        await pilot.pause()
        pilot.app.clear_notifications()
        await pilot.pause()

    assert snap_compare(make_app(workspace), run_before=open_builder, terminal_size=size)


@SIZES
def test_reading_view(snap_compare, size, workspace):
    (workspace.root / "data" / "pairs.jsonl").write_text(
        '{"id": "p1", "prompt": "Write.", "response": "Long ago the river kept its own counsel, they said.", '
        '"split": "train"}\n', encoding="utf-8")
    db = open_workspace_store(workspace)
    session_id = judging.build_session(db, mode="rubric", rater="wren", seed=5, canary_ids=["river-short"])
    judging.BlindSession(db, session_id).end()
    db.close()

    async def open_reading(pilot):
        from tui.screens.reading import ReadingScreen

        await pilot.press("f4")
        await pilot.pause()
        pilot.app.push_screen(ReadingScreen(pilot.app.workspace, session_id))
        await workers_done(pilot.app)
        pilot.app.clear_notifications()
        await pilot.pause()

    assert snap_compare(make_app(workspace), run_before=open_reading, terminal_size=size)
