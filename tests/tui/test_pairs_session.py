"""PairsSession without any widgets: undo steps, row keys for shared ids, rescue paths."""

from __future__ import annotations

from engine.curate.pairs import Pair, PairFile, load_pairs
from tui.pairs_session import DUPLICATE_MARK, PairsSession, unique_path


def session_of(*ids: str) -> PairsSession:
    pairs = [Pair(id=pair_id, prompt=f"prompt {pair_id}", response=f"response {pair_id}") for pair_id in ids]
    return PairsSession(PairFile(path="unused.jsonl", pairs=pairs))


def test_typing_in_one_field_is_one_undo_step_and_other_fields_start_new_ones():
    session = session_of("a", "b")
    for text in ("p", "pr", "pro"):
        session.edit("a", prompt=text)
    session.edit("a", notes="n")
    assert session.undo("a").label == "edit notes of a"
    assert session.get("a").notes == "" and session.get("a").prompt == "pro"
    session.undo("a")
    assert session.get("a").prompt == "prompt a"
    assert not session.can_undo
    session.redo("a")
    assert session.get("a").prompt == "pro"


def test_moving_the_selection_breaks_the_typing_step():
    session = session_of("a")
    session.edit("a", prompt="one")
    session.break_coalescing()
    session.edit("a", prompt="one two")
    session.undo("a")
    assert session.get("a").prompt == "one"


def test_a_new_edit_clears_redo_and_version_tracks_dirtiness():
    session = session_of("a", "b")
    assert not session.dirty
    session.delete("a")
    assert session.dirty
    session.undo("b")
    assert [pair.id for pair in session.pairs] == ["a", "b"]
    session.set_split("b", "val")
    assert not session.can_redo


def test_delete_returns_the_next_row_and_duplicate_inserts_after():
    session = session_of("a", "b", "c")
    assert session.delete("b") == "c"
    assert session.delete("c") == "a"
    copy = session.duplicate("a")
    assert [pair.id for pair in session.pairs] == ["a", copy.id]
    assert copy.prompt == "prompt a"


def test_pairs_sharing_an_id_get_distinct_keys_and_edits_reach_the_right_one():
    session = session_of("x", "y", "x")
    keys = session.row_keys()
    assert [keys[id(pair)] for pair in session.pairs] == ["x", "y", f"x{DUPLICATE_MARK}1"]
    session.edit(f"x{DUPLICATE_MARK}1", prompt="second")
    assert [pair.prompt for pair in session.pairs] == ["prompt x", "prompt y", "second"]


def test_untouched_pairs_keep_their_bytes_on_save(tmp_path):
    path = tmp_path / "pairs.jsonl"
    original = '{"response": "r1", "prompt": "p1", "id": "one"}\n{"id": "two", "prompt": "p2", "response": "r2"}\n'
    path.write_text(original, encoding="utf-8")
    session = PairsSession.open(path)
    session.edit("two", notes="changed")
    session.save()
    first_line = path.read_text(encoding="utf-8").splitlines()[0]
    assert first_line == original.splitlines()[0]  # key order of an unedited pair kept
    assert load_pairs(path).pairs[1].notes == "changed"
    assert not session.dirty


def test_unique_path_counts_up(tmp_path):
    target = tmp_path / "pairs.mine.jsonl"
    assert unique_path(target) == target
    target.write_text("")
    assert unique_path(target) == tmp_path / "pairs.mine.1.jsonl"
