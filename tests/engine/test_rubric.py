"""The rubric: file errors that say where, seeding once, add/edit/retire in the store."""

from __future__ import annotations

import pytest

from engine.judge import rubric
from engine.judge import store
from tests.engine.judge_data import RUBRIC_TOML


@pytest.fixture
def db(tmp_path):
    database = store.open_store(memory=True)
    path = tmp_path / "rubric.toml"
    path.write_text(RUBRIC_TOML, encoding="utf-8")
    assert rubric.seed_rubric(database, path)
    return database


def test_the_bundled_rubric_loads(repo_root):
    loaded = rubric.load_rubric(repo_root / "data" / "rubric.toml")
    assert "voice" in [c.name for c in loaded.criteria]
    assert all(c.anchors and set(c.anchors) <= set(c.scores) for c in loaded.criteria)
    assert len({f.key for f in loaded.flags}) == len(loaded.flags)


@pytest.mark.parametrize(("text", "message"), [
    (RUBRIC_TOML.replace('description = "Holds together."\n', ""), r"rubric.toml:7: criterion 'coherence': missing `description`"),
    (RUBRIC_TOML.replace("scale = [1, 5]", "scale = [5, 1]", 1), r"rubric.toml:4: criterion 'voice': scale: must be \[low, high\]"),
    (RUBRIC_TOML.replace('3 = "In places"', '9 = "In places"'), r"rubric.toml:5: criterion 'voice': anchors: anchor 9 is outside the scale 1–5"),
    (RUBRIC_TOML.replace('key = "r"', 'key = "d"'), r"rubric.toml:19: flag 'refusal': key: flag keys must be unique; 'd' is already used on line 14"),
    (RUBRIC_TOML.replace('key = "r"', 'key = "rr"'), r"rubric.toml:19: flag 'refusal': key: must be one letter"),
    (RUBRIC_TOML.replace('key = "r"', 'key = "S"'),
     r"flag 'refusal': key: 'S' is the Judge screen's skip key. Pick another letter \(free: a b c e f"),
])
def test_rubric_file_errors_name_file_line_and_entry(tmp_path, text, message):
    path = tmp_path / "rubric.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(rubric.RubricError, match=message):
        rubric.load_rubric(path)


def test_seeding_happens_once(db, tmp_path):
    assert [c.name for c in rubric.criteria(db)] == ["voice", "coherence"]
    assert rubric.criterion(db, "voice").anchors == {1: "Not at all", 3: "In places", 5: "Could be theirs"}
    assert [f.key for f in rubric.flags(db)] == ["d", "r"]
    rubric.retire_criterion(db, "coherence")
    assert not rubric.seed_rubric(db, tmp_path / "rubric.toml")  # the store is the truth now
    assert [c.name for c in rubric.criteria(db)] == ["voice"]


def test_add_edit_retire_restore(db):
    added = rubric.add_criterion(db, "craft", "Sentence-level quality.", (1, 4), {4: "Exact"})
    assert (added.scale_min, added.scale_max, added.anchors) == (1, 4, {4: "Exact"})
    assert [c.name for c in rubric.criteria(db)] == ["voice", "coherence", "craft"]
    with pytest.raises(rubric.RubricError, match="already exists"):
        rubric.add_criterion(db, "craft", "again")
    edited = rubric.edit_criterion(db, "craft", description="Sentences.", anchors={1: "Padded", 4: "Exact"})
    assert edited.description == "Sentences." and edited.anchors == {1: "Padded", 4: "Exact"}
    assert rubric.retire_criterion(db, "craft").retired
    assert [c.name for c in rubric.criteria(db, include_retired=True)][-1] == "craft"
    assert not rubric.restore_criterion(db, "craft").retired
    with pytest.raises(rubric.RubricError, match="no criterion named 'tone'"):
        rubric.retire_criterion(db, "tone")


def test_the_scale_is_frozen_once_ratings_exist(db):
    from engine.judge import session as judging
    from tests.engine.judge_data import add_generations

    rubric.edit_criterion(db, "voice", scale=(1, 7))  # no ratings yet: allowed
    rubric.edit_criterion(db, "voice", scale=(1, 5))
    add_generations(db, ["a"], canary_count=1)
    blind = judging.BlindSession(db, judging.build_session(db, seed=0))
    blind.rate("voice", 4)
    with pytest.raises(rubric.RubricError, match="already has ratings"):
        rubric.edit_criterion(db, "voice", scale=(1, 10))
    rubric.retire_criterion(db, "voice")
    assert db["rating_scores"].count == 1  # retiring keeps its ratings


def test_a_criterion_added_mid_session_can_be_rated(db):
    from engine.judge import session as judging
    from tests.engine.judge_data import add_generations

    add_generations(db, ["a"], canary_count=2)
    blind = judging.BlindSession(db, judging.build_session(db, seed=0))
    blind.rate("voice", 4)
    rubric.add_criterion(db, "craft", "Sentence-level quality.")
    assert blind.rate("craft", 2).scores == {"voice": 4, "craft": 2}
