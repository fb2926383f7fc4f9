"""Preference export: votes (ties dropped, once per direction), rubric gaps, splits, self-play, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.judge.prefs import (
    PreferenceError,
    canary_split,
    load_preferences,
    rubric_preferences,
    self_play_preferences,
    vote_preferences,
    write_preferences,
)
from engine.judge.workspace_store import open_workspace_store
from engine.train.data import TrainingPair
from engine.workspace import Workspace
from tests.engine.versions_data import add_outputs, demo_workspace, rate, run_cli, vote

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def workspace_db(tmp_path):
    demo_workspace(tmp_path)
    db = open_workspace_store(Workspace.open(tmp_path))
    add_outputs(db, tmp_path, "a", [f"A writes note {i}." for i in range(6)], adapter_hash="ha")
    add_outputs(db, tmp_path, "b", [f"B writes note {i}." for i in range(6)], adapter_hash="hb")
    return tmp_path, db


def test_votes_become_rows_without_ties_once_per_direction(workspace_db):
    _, db = workspace_db
    vote(db, "a", "b", wins=3, losses=1, ties=2)
    vote(db, "a", "b", wins=3, losses=1)  # the same pairs voted again the same way: no new rows
    rows = vote_preferences(db)
    assert len(rows) == 4  # 3 + 1 decided pairs; ties dropped; repeats of a direction folded
    assert all(row["source"] == "pairwise" for row in rows)
    a_wins = [row for row in rows if row["chosen"].startswith("A")]
    assert len(a_wins) == 3 and all(row["rejected"].startswith("B") for row in a_wins)
    for row in rows:
        canary = row["origin"]["canary"]
        assert row["split"] == canary_split(canary) and row["prompt"].startswith("Write a note about thing")


def test_rubric_rows_need_the_threshold(workspace_db):
    _, db = workspace_db
    rate(db, {"a": 4, "b": 3})
    assert rubric_preferences(db, threshold=1.5) == []
    rows = rubric_preferences(db, threshold=1.0)
    assert len(rows) == 6 and all(row["chosen"].startswith("A") for row in rows)
    assert rows[0]["origin"]["chosen_mean"] == 4 and rows[0]["origin"]["rejected_mean"] == 3
    with pytest.raises(PreferenceError, match="must be positive"):
        rubric_preferences(db, threshold=0)


def test_canary_rows_of_one_canary_share_a_split_and_some_canaries_are_val():
    splits = {canary_split(f"canary-{i}") for i in range(40)}
    assert splits == {"train", "val"}
    assert canary_split("river-short") == canary_split("river-short")


def test_self_play_rows_take_the_pairs_split_and_put_the_writer_first():
    from engine.models.loading import load_model

    loaded = load_model(str(REPO / "data" / "models" / "demo-ar"), family="causal", device="cpu")
    pairs = [TrainingPair("p1", "Write a short note about the river.", "The river is mine.", "train"),
             TrainingPair("p2", "Write a short note about bread.", "Bread waits for no one.", "val")]
    stream = self_play_preferences(loaded, pairs, max_new_tokens=8)
    progress = []
    while True:
        try:
            progress.append(next(stream))
        except StopIteration as stop:
            rows = stop.value
            break
    assert [event.done for event in progress] == [1, 2]
    assert [(row["chosen"], row["split"], row["source"]) for row in rows] == [
        ("The river is mine.", "train", "self-play"), ("Bread waits for no one.", "val", "self-play")]
    assert all(row["rejected"] and row["rejected"] != row["chosen"] for row in rows)


def test_files_round_trip_and_bad_lines_are_named(tmp_path):
    path = write_preferences([{"prompt": "p", "chosen": "c", "rejected": "r", "split": "val", "source": "x"}],
                             tmp_path / "prefs.jsonl")
    assert load_preferences(path)[0]["split"] == "val"
    path.write_text('{"prompt": "p", "chosen": "c", "rejected": "r"}\n{"prompt": "p"}\n')
    with pytest.raises(PreferenceError, match=r"prefs.jsonl:2: needs string chosen, rejected"):
        load_preferences(path)


def test_export_with_no_votes_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys):
    demo_workspace(tmp_path)
    result = run_cli(capsys, "-w", str(tmp_path), "prefs", "export")
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "no preference pairs" in result.stderr
    assert not (tmp_path / "data" / "prefs.jsonl").exists()


def test_export_writes_every_source_it_found(workspace_db, capsys):
    root, db = workspace_db
    vote(db, "a", "b", wins=2)
    result = run_cli(capsys, "-w", str(root), "prefs", "export")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in (root / "data" / "prefs.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and {row["source"] for row in rows} == {"pairwise"}
    assert "wrote 2 preference pairs" in result.stdout
