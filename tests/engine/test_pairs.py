"""Pairs file: loading keeps every line, saving is atomic and conflict-aware, validation
finds each kind of problem, splitting never leaks a source, filtering finds pairs."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from engine.curate import pairs as pairs_module
from engine.curate.pairs import (
    BadLine,
    Pair,
    PairFile,
    SaveConflict,
    duplicate_pair,
    filter_pairs,
    find_duplicates,
    load_pairs,
    new_id,
    query_narrows,
    save_pairs,
    split_by_source,
    validate,
)


def record(pair_id: str, prompt: str = "Write about the river.", response: str = "The river was high.", **more) -> str:
    return json.dumps({"id": pair_id, "prompt": prompt, "response": response, **more}, ensure_ascii=False)


def write_lines(path: Path, *lines: str) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


# Loading ---------------------------------------------------------------------------------------

def test_load_keeps_bad_lines_verbatim_and_reports_file_line(tmp_path):
    path = write_lines(
        tmp_path / "pairs.jsonl",
        record("a"),
        '{"id": "b", "prompt": "unfinished',
        '["not", "an", "object"]',
        record("c", prompt=7),
        json.dumps({"prompt": "no id", "response": "x"}),
        record("d", tags="river"),
    )
    pair_file = load_pairs(path)
    assert [pair.id for pair in pair_file.pairs] == ["a"]
    assert [bad.line for bad in pair_file.bad_lines] == [2, 3, 4, 5, 6]
    assert pair_file.bad_lines[0].raw == '{"id": "b", "prompt": "unfinished'
    messages = [str(problem) for problem in validate(pair_file)]
    assert messages[0].startswith(f"{path}:2: not valid JSON")
    assert messages[1] == f"{path}:3: expected a JSON object, got a list"
    assert messages[2] == f"{path}:4: `prompt` must be a string, got a number"
    assert messages[3] == f"{path}:5: `id` must be a non-empty string (missing)"
    assert messages[4].startswith(f"{path}:6: `tags` must be a list of strings")


def test_bad_lines_and_unknown_keys_round_trip_byte_for_byte(tmp_path):
    lines = (
        record("a", source="s", weight=2.5, meta={"by": "hand"}),
        "this line is not json",
        json.dumps({"id": "b", "prompt": "p", "response": "r", "tier": "thesis"}, separators=(",", ":")),
    )
    path = write_lines(tmp_path / "pairs.jsonl", *lines)
    original = path.read_bytes()
    pair_file = load_pairs(path)
    assert pair_file.pairs[0].extra == {"weight": 2.5, "meta": {"by": "hand"}}
    assert not pair_file.is_modified()
    save_pairs(pair_file)
    assert path.read_bytes() == original  # nothing edited: every byte kept

    pair_file.pairs[1] = dataclasses.replace(pair_file.pairs[1], response="r, edited")
    assert pair_file.is_modified()
    save_pairs(pair_file)
    assert not pair_file.is_modified()
    saved = path.read_text(encoding="utf-8").splitlines()
    assert saved[0] == lines[0]
    assert saved[1] == "this line is not json"  # the bad line stays where it was
    assert json.loads(saved[2])["response"] == "r, edited"
    reloaded = load_pairs(path)
    assert reloaded.pairs[0].extra == {"weight": 2.5, "meta": {"by": "hand"}}
    assert reloaded.pairs[0].to_dict()["weight"] == 2.5


def test_is_modified_tracks_adds_deletes_and_dropped_bad_lines(tmp_path):
    path = write_lines(tmp_path / "pairs.jsonl", record("a"), "oops", record("b"))
    for change in (
        lambda f: f.pairs.append(Pair("c", "p", "r")),
        lambda f: f.pairs.pop(0),
        lambda f: f.pairs.reverse(),
        lambda f: f.bad_lines.clear(),
        lambda f: f.pairs[0].tags.append("new"),
        lambda f: f.pairs[0].extra.update(weight=1),
    ):
        pair_file = load_pairs(path)
        assert not pair_file.is_modified()
        change(pair_file)
        assert pair_file.is_modified()


def test_missing_prompt_loads_empty_and_is_reported(tmp_path):
    path = write_lines(tmp_path / "pairs.jsonl", json.dumps({"id": "a", "response": "r"}), record("b", response="  "))
    pair_file = load_pairs(path)
    assert [pair.prompt for pair in pair_file.pairs] == ["", "Write about the river."]
    problems = validate(pair_file)
    assert [(problem.line, problem.field) for problem in problems] == [(1, "prompt"), (2, "response")]
    assert "prompt is missing or empty" in problems[0].message


def test_blank_lines_and_bom_do_not_shift_reported_lines(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_bytes(("\ufeff" + record("a") + "\n\n" + record("a", prompt="other") + "\n").encode("utf-8"))
    pair_file = load_pairs(path)
    assert [pair.id for pair in pair_file.pairs] == ["a", "a"]
    assert [str(problem) for problem in validate(pair_file)] == [
        f"{path}:3: duplicate id 'a' (first on line 1)"
    ]
    assert pair_file.line_of("a") == 1


def test_unicode_line_separators_inside_text_do_not_split_a_record(tmp_path):
    path = tmp_path / "pairs.jsonl"
    response = "one\u2028two\u0085three\u2029four"
    pair_file = load_pairs(path)
    pair_file.pairs.append(Pair("a", "p", response))
    save_pairs(pair_file)
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))  # and CRLF line endings
    reloaded = load_pairs(path)
    assert reloaded.bad_lines == []
    assert reloaded.pairs[0].response == response


def test_missing_file_loads_empty_and_saves_new(tmp_path):
    path = tmp_path / "new" / "pairs.jsonl"
    pair_file = load_pairs(path)
    assert pair_file.pairs == [] and pair_file.fingerprint is None
    pair_file.pairs.append(Pair("a", "p", "r"))
    save_pairs(pair_file)
    assert load_pairs(path).pairs == [Pair("a", "p", "r")]
    assert not (tmp_path / "new" / "pairs.jsonl.bak").exists()  # nothing to back up


def test_non_utf8_line_is_kept_as_bad_line(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_bytes(record("a").encode() + b"\n" + b'{"id": "b", "prompt": "caf\xe9"}\n')
    pair_file = load_pairs(path)
    assert [bad.line for bad in pair_file.bad_lines] == [2]
    assert "UTF-8" in pair_file.bad_lines[0].message
    pair_file.pairs[0] = dataclasses.replace(pair_file.pairs[0], notes="edited")
    save_pairs(pair_file)
    assert path.read_bytes().splitlines()[1] == b'{"id": "b", "prompt": "caf\xe9"}'


# Saving ----------------------------------------------------------------------------------------

def test_save_keeps_one_backup_of_the_previous_file(tmp_path):
    path = write_lines(tmp_path / "pairs.jsonl", record("a"))
    first = path.read_text(encoding="utf-8")
    pair_file = load_pairs(path)
    pair_file.pairs[0] = dataclasses.replace(pair_file.pairs[0], prompt="second")
    save_pairs(pair_file)
    assert (tmp_path / "pairs.jsonl.bak").read_text(encoding="utf-8") == first
    second = path.read_text(encoding="utf-8")
    pair_file.pairs[0] = dataclasses.replace(pair_file.pairs[0], prompt="third")
    save_pairs(pair_file)
    assert (tmp_path / "pairs.jsonl.bak").read_text(encoding="utf-8") == second
    # no temp files left; the lock file stays (removing it would race a saver waiting on it)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".pairs.jsonl.lock", "pairs.jsonl", "pairs.jsonl.bak"]


def test_save_refuses_a_file_changed_on_disk_since_load(tmp_path):
    path = write_lines(tmp_path / "pairs.jsonl", record("a"))
    pair_file = load_pairs(path)
    pair_file.pairs[0] = dataclasses.replace(pair_file.pairs[0], response="mine")
    write_lines(path, record("a", response="someone else's edit"))  # another editor saved meanwhile
    with pytest.raises(SaveConflict, match="changed on disk since it was loaded"):
        save_pairs(pair_file)
    assert json.loads(path.read_text(encoding="utf-8"))["response"] == "someone else's edit"

    # Save-as to a new file works and the PairFile now belongs to it.
    other = tmp_path / "mine.jsonl"
    save_pairs(pair_file, other)
    assert pair_file.path == other
    assert json.loads(other.read_text(encoding="utf-8"))["response"] == "mine"
    # Save-as over an existing file needs force.
    with pytest.raises(SaveConflict, match="already exists"):
        save_pairs(pair_file, path)
    save_pairs(pair_file, path, force=True)
    assert json.loads(path.read_text(encoding="utf-8"))["response"] == "mine"
    assert "someone else's edit" in (tmp_path / "pairs.jsonl.bak").read_text(encoding="utf-8")


def test_save_refuses_when_a_file_appeared_after_loading_a_missing_one(tmp_path):
    path = tmp_path / "pairs.jsonl"
    pair_file = load_pairs(path)
    write_lines(path, record("theirs"))
    pair_file.pairs.append(Pair("mine", "p", "r"))
    with pytest.raises(SaveConflict):
        save_pairs(pair_file)
    save_pairs(pair_file, force=True)
    assert [pair.id for pair in load_pairs(path).pairs] == ["mine"]


def test_after_a_save_the_next_save_does_not_conflict(tmp_path):
    path = write_lines(tmp_path / "pairs.jsonl", record("a"))
    pair_file = load_pairs(path)
    for text in ("one", "two", "three"):
        pair_file.pairs[0] = dataclasses.replace(pair_file.pairs[0], response=text)
        save_pairs(pair_file)
    assert load_pairs(path).pairs[0].response == "three"


@pytest.mark.parametrize("failing", ["replace", "fsync"])
def test_a_crash_mid_save_leaves_the_old_file_whole(tmp_path, monkeypatch, failing):
    path = write_lines(tmp_path / "pairs.jsonl", *(record(f"p{i}", response="old " * 50) for i in range(100)))
    before = path.read_bytes()
    pair_file = load_pairs(path)
    pair_file.pairs[:] = [dataclasses.replace(pair, response="new " * 50) for pair in pair_file.pairs]

    def crash(*args, **kwargs):
        raise OSError("disk unplugged")

    if failing == "replace":
        # Let the backup's replace through, fail the one that would install the new file.
        real_replace = os.replace

        def replace(src, dst):
            if str(dst) == str(path):
                crash()
            real_replace(src, dst)

        monkeypatch.setattr(pairs_module.os, "replace", replace)
    else:
        monkeypatch.setattr(pairs_module.os, "fsync", crash)
    with pytest.raises(OSError, match="disk unplugged"):
        save_pairs(pair_file)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # temp file cleaned up
    # The user can still save once the disk is back.
    save_pairs(pair_file)
    assert all(pair.response == "new " * 50 for pair in load_pairs(path).pairs)


def test_new_pairs_get_the_line_they_will_be_saved_at(tmp_path):
    path = write_lines(tmp_path / "pairs.jsonl", record("a"), "garbage", record("b"))
    pair_file = load_pairs(path)
    pair_file.pairs.append(Pair("c", "p", "r"))
    assert pair_file.line_of("b") == 3
    assert pair_file.line_of("c") == 4
    assert pair_file.line_of("nope") == 0
    save_pairs(pair_file)
    assert path.read_text(encoding="utf-8").splitlines()[3].startswith('{"id": "c"')


# Validation ------------------------------------------------------------------------------------

def test_exact_duplicates_ignore_case_spacing_and_punctuation(tmp_path):
    path = write_lines(
        tmp_path / "pairs.jsonl",
        record("a", prompt="Write about bread.", response="The loaf  rose, slowly."),
        record("b", prompt="write about bread", response="the loaf rose slowly"),
    )
    problems = validate(load_pairs(path))
    assert [(problem.line, problem.severity) for problem in problems] == [(2, "error")]
    assert "same prompt and response as 'a' (line 1)" in problems[0].message


def test_near_duplicates_are_warnings_and_distinct_pairs_are_not(tmp_path):
    text = ("The river came up over the third step on Sunday and over the fifth by Tuesday, "
            "and nobody on Mill Lane slept much, and the ducks did as they liked.")
    path = write_lines(
        tmp_path / "pairs.jsonl",
        record("a", prompt="Write about the flood on Mill Lane.", response=text),
        record("b", prompt="Write about the flood on Mill Lane!", response=text.replace("much", "well")),
        # Same response, different prompt: two different training examples, not flagged.
        record("c", prompt="Continue the essay from its opening paragraphs about town life.", response=text),
        record("d", prompt="Write about bread.", response="Flour, water, salt and a great deal of patience."),
    )
    problems = validate(load_pairs(path))
    assert [(problem.pair_id, problem.severity) for problem in problems] == [("b", "warning")]
    assert "near-duplicate of 'a' (line 1" in problems[0].message


def test_near_duplicate_search_scales_without_all_pairs_comparison():
    # 3,000 distinct pairs plus one planted near-duplicate: found, and nothing else.
    pairs = [Pair(f"p{i}", f"Prompt number {i} about topic {i * 7}", f"word{i} " * 5 + f"unique tail {i} text")
             for i in range(3000)]
    pairs.append(Pair("copy", pairs[1234].prompt, pairs[1234].response + " extra"))
    exact, near = find_duplicates(pairs)
    assert exact == []
    assert [(first, second) for first, second, _ in near] == [(1234, 3000)]


def test_near_duplicates_are_found_reliably_and_distinct_texts_are_not():
    import random

    rng = random.Random(7)
    words = [f"w{number}" for number in range(400)]
    originals = [Pair(f"o{i}", "Write the next paragraph.", " ".join(rng.choices(words, k=120))) for i in range(40)]
    planted = []
    for i, pair in enumerate(originals[:20]):
        tokens = pair.response.split()
        tokens[rng.randrange(len(tokens))] = "changed"  # one word in 120: trigram Jaccard ≈ 0.95
        planted.append(Pair(f"n{i}", pair.prompt, " ".join(tokens)))
    exact, near = find_duplicates(originals + planted)
    assert exact == []
    assert sorted((first, second) for first, second, _ in near) == [(i, 40 + i) for i in range(20)]


def test_leakage_is_reported_once_per_source_on_the_smaller_split(tmp_path):
    path = write_lines(
        tmp_path / "pairs.jsonl",
        record("a1", source="essay-a", split="train", response="one"),
        record("a2", source="essay-a", split="train", response="two"),
        record("a3", source="essay-a", split="val", response="three"),
        record("b1", source="essay-b", split="val", response="four"),
        record("x", split="sideways", response="five"),
    )
    problems = validate(load_pairs(path))
    assert [(problem.line, problem.field) for problem in problems] == [(3, "split"), (5, "split")]
    assert "source 'essay-a' is in both splits (2 train, 1 val pairs)" in problems[0].message
    assert "split must be 'train' or 'val'" in problems[1].message


def test_budgets_use_each_models_counter(tmp_path):
    path = write_lines(
        tmp_path / "pairs.jsonl",
        record("short", prompt="one two", response="three four"),
        record("long", prompt="word " * 20, response="word " * 30),
    )
    pair_file = load_pairs(path)
    words = lambda text: len(text.split())  # noqa: E731 - a tiny stand-in tokenizer
    doubled = lambda text: 2 * len(text.split())  # noqa: E731
    problems = validate(pair_file, budgets={"small": 40, "big": 100}, counter={"small": words, "big": doubled})
    # long = 50 words + 8 overhead: over small's 40 (58) and over big's 100 (108); short fits both.
    assert [(problem.pair_id, problem.field) for problem in problems] == [("long", "tokens"), ("long", "tokens")]
    assert any("58 tokens, over small's budget of 40" in problem.message for problem in problems)
    assert any("108 tokens, over big's budget of 100" in problem.message for problem in problems)
    # One counter for every model, and budgets without a counter are skipped.
    assert len(validate(pair_file, budgets={"small": 40}, counter=words)) == 1
    assert validate(pair_file, budgets={"small": 40}) == []


def test_validate_never_changes_the_file(tmp_path):
    path = write_lines(tmp_path / "pairs.jsonl", record("a"), "bad", record("a"))
    before = path.read_bytes()
    assert validate(load_pairs(path))
    assert path.read_bytes() == before


# Splitting, helpers, filtering -------------------------------------------------------------------

def test_split_by_source_never_leaks_and_is_deterministic():
    pairs = [Pair(f"{source}-{i}", "p", "r", source=f"s{source}") for source in range(40) for i in range(source % 5 + 1)]
    split = split_by_source(pairs, 0.2, seed=0)
    splits_of: dict[str, set[str]] = {}
    for pair in split:
        splits_of.setdefault(pair.source, set()).add(pair.split)
    assert all(len(splits) == 1 for splits in splits_of.values())
    val_share = sum(pair.split == "val" for pair in split) / len(split)
    assert 0.15 <= val_share <= 0.25
    assert [pair.split for pair in split_by_source(list(reversed(pairs)), 0.2, seed=0)] == [
        pair.split for pair in reversed(split)
    ]  # input order does not matter
    assert [p.split for p in split_by_source(pairs, 0.2, seed=1)] != [p.split for p in split]
    assert all(pair.split == "train" for pair in pairs)  # the input is not modified


def test_split_by_source_edge_cases():
    assert {pair.split for pair in split_by_source([Pair("a", "p", "r", source="only")], 0.5)} == {"train"}
    two = split_by_source([Pair("a", "p", "r", source="x"), Pair("b", "p", "r", source="y")], 0.1)
    assert sorted(pair.split for pair in two) == ["train", "val"]  # a val share asks for at least one source
    assert {pair.split for pair in split_by_source(two, 0.0)} == {"train"}
    with pytest.raises(ValueError, match="val share"):
        split_by_source(two, 1.0)


def test_new_id_and_duplicate_pair():
    assert new_id([]) == "pair-0001"
    assert new_id(["pair-0001", "pair-0002", "pair-0004"]) == "pair-0003"
    original = Pair("a", "p", "r", tags=["river"], extra={"meta": {"k": 1}})
    copy = duplicate_pair(original, ["a", "a-copy"])
    assert copy.id == "a-copy-2" and copy.prompt == "p" and copy.tags == ["river"]
    copy.tags.append("x")
    copy.extra["meta"]["k"] = 2
    assert original.tags == ["river"] and original.extra == {"meta": {"k": 1}}


def test_filter_pairs_matches_all_terms_and_fields():
    pairs = [
        Pair("a", "Write about the River.", "Water.", source="essays/flood", tier="thesis", tags=["weather"]),
        Pair("b", "Write about bread.", "Flour and the river mill.", source="notes/bread", tier="note", split="val"),
        Pair("c", "Write about letters.", "Ink.", source="notes/post", tier="note", notes="check RIVER spelling"),
    ]
    ids = lambda query: [pair.id for pair in filter_pairs(pairs, query)]  # noqa: E731
    assert ids("") == ["a", "b", "c"]
    assert ids("river") == ["a", "b", "c"]  # prompt, response, notes; case-insensitive
    assert ids("river flour") == ["b"]
    assert ids("tier:note") == ["b", "c"]
    assert ids("split:val river") == ["b"]
    assert ids("tag:weath") == ["a"]
    assert ids("source:essays") == ["a"]
    assert ids("zebra") == []
    # Pairs are frozen, so the cached search text can never go stale: an edit is a new pair.
    with pytest.raises(dataclasses.FrozenInstanceError):
        pairs[2].response = "Zebra ink."  # type: ignore[misc]
    pairs[2] = dataclasses.replace(pairs[2], response="Zebra ink.")
    assert ids("zebra") == ["c"]


def test_query_narrows_only_when_the_longer_query_matches_a_subset():
    assert query_narrows("rive", "river")
    assert query_narrows("river", "river m")
    assert query_narrows("tier:no", "tier:note bread")
    assert not query_narrows("", "river")  # nothing to narrow from
    assert not query_narrows("river m", "river")  # shorter: broader
    assert not query_narrows("tier", "tier:note")  # words `tier` became a field term
    assert not query_narrows("tier:", "tier:n")  # `tier:` alone is a word, not a field term
    assert not query_narrows("tag:riv", "tier:riv")

    # Whenever it says "narrows", filtering the earlier result gives the full answer.
    pairs = [
        Pair("a", "Write about the River.", "Water, tier upon tier.", tier="thesis", tags=["river"]),
        Pair("b", "Write about bread.", "Flour and the river mill.", tier="note", split="val"),
        Pair("c", "A note.", "The tier of the note.", tier="note", notes="river"),
    ]
    typed = ["t", "ti", "tie", "tier", "tier:", "tier:n", "tier:no", "tier:note", "tier:note r", "tier:note ri"]
    for earlier in typed:
        for later in typed:
            if query_narrows(earlier, later):
                assert filter_pairs(filter_pairs(pairs, earlier), later) == filter_pairs(pairs, later), (earlier, later)


def test_pair_round_trips_through_dict():
    pair = Pair("a", "p", "r", source="s", tier="paragraph", split="val", tags=["t"], notes="n", extra={"x": [1]})
    assert Pair.from_dict(pair.to_dict()) == pair
    assert list(pair.to_dict()) == ["id", "prompt", "response", "source", "tier", "split", "tags", "notes", "x"]


def test_bad_line_is_a_plain_record():
    bad = BadLine(3, "{", "not valid JSON")
    assert PairFile(path=Path("x.jsonl"), bad_lines=[bad]).bad_lines[0].raw == "{"
