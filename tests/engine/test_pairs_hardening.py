"""The pairs file under attack: racing savers in real processes, hostile lines, random bytes.

- Two processes load the same file, wait at a barrier, and save their own edit at once,
  round after round: every save either lands (and is in the final file) or gets
  SaveConflict — none is lost silently.
- Lines nested 100,000 deep, 5,000-digit numbers, lone surrogates, NUL characters,
  non-object lines and invalid UTF-8 load as problem lines, are reported by validate,
  and are written back byte for byte on save.
- Property tests (hypothesis): any bytes and any JSON load without raising and survive a
  save unchanged.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.cli import main
from engine.cli.pairs_cmd import pair_stats
from engine.curate.export import export_pairs
from engine.curate.pairs import (
    BadLine,
    Pair,
    PairsFileError,
    SaveConflict,
    iter_pairs_lines,
    load_pairs,
    save_pairs,
    validate,
)

ROUNDS = 40


def _racing_saver(path: str, name: str, barrier, results) -> None:
    """One saver: each round load, wait for the other, add a pair named after the round, save."""
    for round_number in range(ROUNDS):
        barrier.wait()
        pair_file = load_pairs(path)
        barrier.wait()  # both loaded the same bytes; now save at the same moment
        pair_id = f"{name}-{round_number}"
        pair_file.pairs.append(Pair(id=pair_id, prompt="p", response=name))
        try:
            save_pairs(pair_file)
            results.put((round_number, pair_id, "landed"))
        except SaveConflict:
            results.put((round_number, pair_id, "conflict"))
        except Exception as error:  # anything else is a failure the parent reports
            results.put((round_number, pair_id, f"error: {error!r}"))


def test_racing_saves_never_lose_an_edit(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps({"id": "seed", "prompt": "p", "response": "r"}) + "\n", encoding="utf-8")
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(2), context.Queue()
    savers = [context.Process(target=_racing_saver, args=(str(path), name, barrier, results)) for name in ("a", "b")]
    for saver in savers:
        saver.start()
    outcomes = [results.get(timeout=60) for _ in range(2 * ROUNDS)]
    for saver in savers:
        saver.join(timeout=30)
        assert saver.exitcode == 0

    assert {outcome for _, _, outcome in outcomes} <= {"landed", "conflict"}, outcomes
    landed = {pair_id for _, pair_id, outcome in outcomes if outcome == "landed"}
    by_round: dict[int, list[str]] = {}
    for round_number, _, outcome in outcomes:
        by_round.setdefault(round_number, []).append(outcome)
    # Both savers loaded the same bytes, so exactly one of them may land each round.
    assert all(sorted(round_outcomes) == ["conflict", "landed"] for round_outcomes in by_round.values()), by_round
    final_ids = {pair.id for pair in load_pairs(path).pairs}
    assert final_ids == {"seed"} | landed  # every landed edit is there: zero lost


# Hostile lines ------------------------------------------------------------------------------

HOSTILE_LINES = {
    "nested 100,000 deep": b"[" * 100_000 + b"]" * 100_000,
    "5,000-digit integer": b'{"id": "big", "prompt": "p", "response": "r", "n": ' + b"7" * 5000 + b"}",
    "lone surrogate": b'{"id": "sur", "prompt": "\\ud800", "response": "r"}',
    "lone surrogate in a key": b'{"id": "key", "prompt": "p", "response": "r", "\\udfff": 1}',
    "escaped NUL": b'{"id": "nul", "prompt": "a\\u0000b", "response": "r"}',
    "raw NUL byte": b'{"id": "raw", "prompt": "a\x00b", "response": "r"}',
    "list, not an object": b"[1, 2, 3]",
    "a bare string": b'"just text"',
    "invalid UTF-8": b'{"id": "latin", "prompt": "caf\xe9", "response": "r"}',
}


def _hostile_file(tmp_path: Path) -> tuple[Path, list[bytes]]:
    good = [json.dumps({"id": f"ok-{i}", "prompt": f"prompt {i}", "response": f"response {i}"}).encode() for i in range(3)]
    lines = [good[0], *HOSTILE_LINES.values(), good[1], b"", b"   ", good[2]]
    path = tmp_path / "pairs.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path, lines


def test_hostile_lines_load_as_problem_lines_and_are_kept_on_save(tmp_path):
    path, lines = _hostile_file(tmp_path)
    pair_file = load_pairs(path)
    assert [pair.id for pair in pair_file.pairs] == ["ok-0", "ok-1", "ok-2"]
    hostile_line_numbers = list(range(2, 2 + len(HOSTILE_LINES)))
    assert [bad.line for bad in pair_file.bad_lines] == hostile_line_numbers
    messages = {bad.line: bad.message for bad in pair_file.bad_lines}
    assert "nested too deeply" in messages[2]
    assert "cannot be read" in messages[3] and "digits" in messages[3]
    assert "lone surrogate" in messages[4] and "\\ud800" in messages[4]
    assert "lone surrogate" in messages[5]
    assert "NUL" in messages[6]
    assert "not valid JSON" in messages[7]  # a raw control character inside a string
    assert "expected a JSON object" in messages[8] and "expected a JSON object" in messages[9]
    assert "not UTF-8" in messages[10]

    problems = validate(pair_file)
    reported = {problem.line for problem in problems}
    assert {bad.line for bad in pair_file.bad_lines} <= reported

    # An edit elsewhere; every hostile line goes back byte for byte, in its place.
    pair_file.pairs[1] = dataclasses.replace(pair_file.pairs[1], notes="edited")
    save_pairs(pair_file)
    saved = path.read_bytes().split(b"\n")
    for raw in HOSTILE_LINES.values():
        assert raw in saved, f"hostile line not kept: {raw[:60]!r}"
    assert saved.index(HOSTILE_LINES["nested 100,000 deep"]) == 1  # right after ok-0, as loaded


def test_lone_surrogate_is_refused_by_validate_and_cannot_crash_stats_or_export(tmp_path, capsys):
    path = tmp_path / "pairs.jsonl"
    path.write_bytes(HOSTILE_LINES["lone surrogate"] + b"\n" +
                     json.dumps({"id": "ok", "prompt": "p", "response": "r"}).encode() + b"\n")
    assert main(["--workspace", str(tmp_path), "pairs", "validate", str(path), "--no-budgets"]) == 1
    out = capsys.readouterr().out
    assert f"{path}:1: holds a lone surrogate" in out
    pair_file = load_pairs(path)
    assert pair_stats(pair_file, {}, {})["pairs"] == 1
    out_path = tmp_path / "out.jsonl"
    assert export_pairs(pair_file.pairs, out_path, "prompt-completion", "all") == 1
    out_path.read_text(encoding="utf-8")  # valid UTF-8 throughout
    assert main(["--workspace", str(tmp_path), "pairs", "stats", str(path)]) == 0


def test_a_folder_as_the_pairs_path_is_a_clear_error(tmp_path, capsys):
    folder = tmp_path / "pairs.jsonl"
    folder.mkdir()
    with pytest.raises(PairsFileError, match="is a folder, not a pairs file"):
        load_pairs(folder)
    with pytest.raises(PairsFileError, match="is a folder"):
        list(iter_pairs_lines(folder))
    for command in ("validate", "stats"):
        assert main(["--workspace", str(tmp_path), "pairs", command, str(folder)]) == 2
        err = capsys.readouterr().err
        assert "is a folder, not a pairs file" in err and "Traceback" not in err


# Property-based ------------------------------------------------------------------------------

def _expected_lines(data: bytes) -> list[bytes]:
    """The lines a save writes for an unedited file: every non-blank line, without its CR."""
    lines = [line.removesuffix(b"\r") for line in data.split(b"\n")]
    return [line for line in lines if line.strip(b" \t\r")]


def _check_round_trip(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "pairs.jsonl"
    path.write_bytes(data)
    pair_file = load_pairs(path)  # must not raise
    streamed = list(iter_pairs_lines(path))
    assert [item for _, item in streamed if isinstance(item, Pair)] == pair_file.pairs
    assert [item for _, item in streamed if isinstance(item, BadLine)] == pair_file.bad_lines
    validate(pair_file)  # must not raise either
    save_pairs(pair_file, force=True)
    assert path.read_bytes() == b"".join(line + b"\n" for line in _expected_lines(data))
    again = load_pairs(path)
    assert [pair.to_dict() for pair in again.pairs] == [pair.to_dict() for pair in pair_file.pairs]
    assert [bad.raw for bad in again.bad_lines] == [bad.raw for bad in pair_file.bad_lines]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.lists(st.binary(max_size=40) | st.sampled_from([b"", b"\r", b"{", b"\xff", b"\xef\xbb\xbf", b"\\ud800"]),
                     max_size=8).map(b"\n".join))
def test_any_bytes_load_and_survive_a_save(tmp_path, data):
    _check_round_trip(tmp_path, data)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=6,
)
pair_like = st.fixed_dictionaries(
    {"id": st.text(min_size=1, max_size=8)},
    optional={"prompt": st.text() | json_values, "response": st.text(), "tags": st.lists(st.text(max_size=4)) | json_values,
              "split": st.sampled_from(["train", "val", "test"]), "extra": json_values},
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=st.lists(pair_like | json_values, max_size=6), ascii_only=st.booleans())
def test_any_json_lines_load_and_survive_a_save(tmp_path, records, ascii_only):
    data = b"".join(json.dumps(record, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass") + b"\n"
                    for record in records)
    _check_round_trip(tmp_path, data)
