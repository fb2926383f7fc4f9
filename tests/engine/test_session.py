"""Blind sessions: nothing identifying reaches the rater, repeats, every action committed."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from engine.judge import session as judging
from engine.judge import store
from tests.engine.judge_data import SECRET_PATH, add_generations, seed_rubric

LABELS = ["base-model-alpha", "run-zeta/checkpoint-9", "tuned-omega"]
BLIND_FIELDS = {"item_id", "position", "total", "mode", "prompt", "text", "left_text", "right_text",
                "scores", "flags", "note", "choices", "status"}


@pytest.fixture
def db(tmp_path):
    database = store.open_store(tmp_path / "judgments.db")
    seed_rubric(database, tmp_path)
    add_generations(database, LABELS, canary_count=10)
    return database


def all_items(blind: judging.BlindSession) -> list[judging.BlindItem]:
    return [blind.goto(position) for position in range(blind.total)]


def test_blind_items_carry_no_identifying_fields(db):
    session_id = judging.build_session(db, mode="rubric", seed=1)
    blind = judging.BlindSession(db, session_id)
    assert {field.name for field in dataclasses.fields(judging.BlindItem)} == BLIND_FIELDS
    identifying = judging.identifying_strings(db, session_id)
    assert set(LABELS) <= identifying and f"{SECRET_PATH}/{LABELS[0]}" in identifying
    secrets = [*identifying, SECRET_PATH, "hash-", "seconds", "1.25", "checkpoint", "temperature"]
    for item in all_items(blind):
        shown = repr(item)
        assert not [secret for secret in secrets if secret in shown], shown
    pairwise = judging.BlindSession(db, judging.build_session(db, mode="pairwise", seed=1))
    for item in all_items(pairwise):
        assert item.left_text and item.right_text and item.text is None
        assert not [secret for secret in secrets if secret in repr(item)]


def test_order_follows_the_stored_seed(db):
    def texts(seed: int) -> list[str]:
        blind = judging.BlindSession(db, judging.build_session(db, seed=seed))
        return [item.text for item in all_items(blind)]

    assert texts(7) == texts(7)
    assert texts(7) != texts(8)
    assert sorted(texts(7)) != texts(7)  # actually shuffled, not in insertion order
    row = next(db.query("select shuffle_seed from sessions order by id limit 1"))
    assert row["shuffle_seed"] == 7


def test_about_ten_percent_of_items_come_back_later(db):
    session_id = judging.build_session(db, seed=3)
    rows = list(db.query("select id, position, generation_id, repeat_of_item_id from session_items "
                         "where session_id = ? order by position", [session_id]))
    originals = [row for row in rows if row["repeat_of_item_id"] is None]
    repeats = [row for row in rows if row["repeat_of_item_id"] is not None]
    assert len(originals) == 30 and len(repeats) == 3
    by_id = {row["id"]: row for row in rows}
    for repeat in repeats:
        original = by_id[repeat["repeat_of_item_id"]]
        assert original["generation_id"] == repeat["generation_id"]
        assert repeat["position"] > original["position"] + 2  # not straight after: "later"
    # Nothing on the repeat tells it apart: same text, same fields, a fresh empty answer.
    blind = judging.BlindSession(db, session_id)
    first = blind.goto(by_id[repeats[0]["repeat_of_item_id"]]["position"])
    blind.rate("voice", 4)
    again = blind.goto(repeats[0]["position"])
    assert again.text == first.text and again.scores == {} and again.status == "pending"


def test_rating_navigation_and_status(db):
    blind = judging.BlindSession(db, judging.build_session(db, seed=2, rater="wren"))
    item = blind.rate("voice", 5)
    assert item.scores == {"voice": 5} and item.status == "pending"
    item = blind.rate("voice", 2)
    assert item.scores == {"voice": 2}  # a second key press replaces the score
    item = blind.rate("coherence", 4)
    assert item.status == "done"  # every active criterion scored
    item = blind.toggle_flag("degenerate")
    assert item.flags == ("degenerate",)
    assert blind.toggle_flag("degenerate").flags == ()
    assert blind.set_note("too tidy").note == "too tidy"
    assert blind.next().position == 1
    skipped = blind.skip()
    assert skipped.position == 2 and blind.goto(1).status == "skipped"
    assert blind.prev().position == 0 and blind.prev().position == 0  # stops at the start
    assert blind.progress() == {"done": 1, "skipped": 1, "pending": blind.total - 2,
                                "total": blind.total, "position": 0}
    assert blind.next_pending().position == 2
    with pytest.raises(judging.SessionError, match="1–5"):
        blind.rate("voice", 7)
    with pytest.raises(judging.SessionError, match="no criterion"):
        blind.rate("charm", 3)
    with pytest.raises(judging.SessionError, match="rubric session"):
        blind.choose("left")
    assert blind.goto(blind.total) is None  # past the end: the screen offers to end
    with pytest.raises(judging.SessionError, match="past the last"):
        blind.rate("voice", 3)


def test_a_retired_criterion_cannot_be_rated_and_no_longer_blocks_done(db):
    from engine.judge.rubric import retire_criterion

    retire_criterion(db, "coherence")
    blind = judging.BlindSession(db, judging.build_session(db, seed=2))
    with pytest.raises(judging.SessionError, match="retired"):
        blind.rate("coherence", 3)
    assert blind.rate("voice", 3).status == "done"


def test_identities_are_revealed_only_after_the_end(db):
    blind = judging.BlindSession(db, judging.build_session(db, seed=5))
    blind.rate("voice", 3)
    with pytest.raises(judging.SessionError, match="end"):
        blind.reveal()
    revealed = blind.end()
    assert len(revealed) == blind.total
    assert {item.label for item in revealed} == set(LABELS)
    assert revealed[0].scores == {"voice": 3}
    assert sum(item.repeat_of_position is not None for item in revealed) == 3
    with pytest.raises(judging.SessionError, match="ended"):
        blind.rate("voice", 4)
    assert judging.open_sessions(db) == []


def test_pairwise_items_pair_different_contestants_on_one_canary_with_sides_drawn(db):
    session_id = judging.build_session(db, mode="pairwise", seed=4, repeat_share=0)
    rows = list(db.query(
        "select gl.label as left_label, gr.label as right_label, gl.canary_id as lc, gr.canary_id as rc "
        "from session_items i join generations gl on gl.id = i.generation_id "
        "join generations gr on gr.id = i.right_generation_id where i.session_id = ?", [session_id]))
    assert len(rows) == 30  # 3 pairs of contestants × 10 canaries
    assert all(row["left_label"] != row["right_label"] and row["lc"] == row["rc"] for row in rows)
    left_counts = {label: sum(row["left_label"] == label for row in rows) for label in LABELS}
    assert all(0 < count < 20 for count in left_counts.values())  # each shown on both sides
    blind = judging.BlindSession(db, session_id)
    assert blind.choose("left").choices == {"overall": "left"}
    item = blind.choose("tie")
    item = blind.choose("right", "voice")
    assert item.choices == {"overall": "tie", "voice": "right"} and item.status == "done"
    assert db["comparisons"].count == 2
    with pytest.raises(judging.SessionError, match="winner"):
        blind.choose("up")


def test_building_needs_something_to_rate(db):
    with pytest.raises(judging.SessionError, match="nothing to rate"):
        judging.build_session(db, labels=["no-such-model"])
    with pytest.raises(judging.SessionError, match="mode"):
        judging.build_session(db, mode="vibes")
    assert [c.label for c in judging.contestants(db)] == LABELS


CHILD = textwrap.dedent("""
    import sys, time
    from engine.judge import store
    from engine.judge import session as judging
    db = store.open_store(sys.argv[1])
    blind = judging.BlindSession(db, int(sys.argv[2]))
    for score in (1, 2, 3, 4, 5):
        blind.rate("voice", score)
        blind.rate("coherence", 6 - score)
        blind.next()
        print("rated", score, flush=True)
    blind.rate("voice", 2)  # the keystroke that lands before the kill
    print("ready", flush=True)
    time.sleep(120)  # the parent kills us here, mid-session
""")


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_ratings_survive_the_process_being_killed_mid_session(db, tmp_path, repo_root):
    session_id = judging.build_session(db, seed=9)
    db.close()
    path = tmp_path / "judgments.db"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path), str(session_id)], cwd=repo_root,
                             stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(repo_root)})
    try:
        lines = []
        for line in child.stdout:
            lines.append(line.strip())
            if line.strip() == "ready":
                break
        assert lines[-1] == "ready", lines
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    reopened = store.open_store(path)
    blind = judging.BlindSession(reopened, session_id)
    assert blind.cursor == 5  # resumes where the rater was
    assert blind.current().scores == {"voice": 2}
    answered = [blind.goto(position) for position in range(5)]
    assert [item.scores for item in answered] == [{"voice": s, "coherence": 6 - s} for s in (1, 2, 3, 4, 5)]
    assert all(item.status == "done" for item in answered)


def test_revealed_texts_only_after_the_session_ends(db):
    session_id = judging.build_session(db, rater="wren", seed=1)
    with pytest.raises(judging.SessionError, match="still open"):
        judging.revealed_texts(db, session_id)
    judging.BlindSession(db, session_id).end()
    reading = judging.revealed_texts(db, session_id)
    assert reading and all(len(canary.outputs) == len({label for label, _ in canary.outputs}) for canary in reading)
    assert {label for canary in reading for label, _ in canary.outputs} == {
        row["label"] for row in db.query("select distinct label from generations")}
