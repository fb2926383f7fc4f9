"""`voicebench pairs validate` and `stats` stream the file: same answers as the whole-file code.

A small file holding every kind of problem (bad lines, empty fields, a bad split, duplicate
ids, exact and near duplicates, a source in both splits, pairs over a budget) is checked by
`validate(load_pairs(...))` and by the streaming `validate_file`, with chunks smaller than
the file so the chunk seams are crossed; the problems must be equal, in the same order.
"""

from __future__ import annotations

import json
import random

import pytest

import engine.curate.pairs as pairs_module
from engine.cli import pairs_cmd
from engine.curate.pairs import PairsFileError, load_pairs, validate, validate_file

WORDS = "river mend bread flour letter library heron gate ledger rope frost rain wool thread kettle lamp".split()


def _text(rng: random.Random, count: int) -> str:
    return " ".join(rng.choices(WORDS, k=count))


def _problem_file(path) -> None:
    rng = random.Random(3)
    lines = []
    for index in range(60):
        record = {"id": f"p{index}", "prompt": _text(rng, 12), "response": _text(rng, 30),
                  "source": f"essay-{index // 5}", "split": "val" if index // 5 == 3 else "train"}
        lines.append(json.dumps(record))
    base = json.loads(lines[10])
    lines.append(json.dumps({**base, "id": "exact-copy", "prompt": base["prompt"].upper() + "!"}))
    near = base["response"].split()
    near[-1] = "heron" if near[-1] != "heron" else "gate"
    lines.append(json.dumps({**base, "id": "near-copy", "response": " ".join(near)}))
    lines.append(json.dumps({"id": "p3", "prompt": "duplicate id", "response": "here"}))
    lines.append(json.dumps({"id": "empty", "prompt": " ", "response": "", "split": "test"}))
    lines.append(json.dumps({"id": "leak", "prompt": "a", "response": "b", "source": "essay-0", "split": "val"}))
    lines.append(json.dumps({"id": "long", "prompt": _text(rng, 300), "response": _text(rng, 300)}))
    lines.insert(7, "{not json")
    lines.insert(30, "")
    lines.insert(31, "[1, 2]")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _words(text: str) -> int:
    return len(text.split())


def test_streaming_validate_finds_exactly_what_whole_file_validate_finds(tmp_path, monkeypatch):
    path = tmp_path / "pairs.jsonl"
    _problem_file(path)
    monkeypatch.setattr(pairs_module, "CHECK_CHUNK", 7)  # many chunk seams in a small file
    budgets, counters = {"tiny": 200, "small": 300}, {"tiny": _words, "small": _words}
    whole = validate(load_pairs(path), budgets=budgets, counter=counters)
    streamed = validate_file(path, budgets=budgets, counter=counters)
    assert streamed.problems == whole
    kinds = " | ".join(problem.message for problem in whole)
    for expected in ("not valid JSON", "expected a JSON object", "prompt is missing", "split must be",
                     "duplicate id 'p3'", "same prompt and response", "near-duplicate", "in both splits",
                     "over tiny's budget", "over small's budget"):
        assert expected in kinds
    assert (streamed.pairs, streamed.bad_lines) == (66, 2)
    assert streamed.splits == {"train": 59, "val": 6, "test": 1}


def test_streaming_stats_match_the_loaded_file(tmp_path, monkeypatch):
    path = tmp_path / "pairs.jsonl"
    _problem_file(path)
    monkeypatch.setattr(pairs_cmd, "STATS_CHUNK", 7)

    class WordCounter:
        def count_many(self, texts):
            return [_words(text) for text in texts]

    counter = WordCounter()
    budgets, counters = {"a": 200, "b": 300}, {"a": counter, "b": counter}
    assert pairs_cmd.file_stats(path, budgets, counters) == pairs_cmd.pair_stats(load_pairs(path), budgets, counters)


def test_a_file_changed_between_the_two_passes_is_reported_not_misread(tmp_path, monkeypatch):
    path = tmp_path / "pairs.jsonl"
    _problem_file(path)
    original_finish = pairs_module._Checks.finish

    def finish_after_an_edit(self, fetch):
        path.write_text(path.read_text(encoding="utf-8") + json.dumps({"id": "new", "prompt": "p", "response": "r"}) + "\n")
        return original_finish(self, fetch)

    monkeypatch.setattr(pairs_module._Checks, "finish", finish_after_an_edit)
    with pytest.raises(PairsFileError, match="changed while it was being checked"):
        validate_file(path)


def test_budgets_and_stats_with_counts_by_piece_equal_exact_counting(tmp_path, monkeypatch):
    """The demo tokenizer counts by piece; a plain function tokenising each whole text is the
    reference. Budgets are set so one pair is exactly at a budget and one a token over."""
    from pathlib import Path

    from tokenizers import Tokenizer

    from engine.curate import tokens

    monkeypatch.setattr(tokens, "_COUNTERS", {})
    model = Path(__file__).resolve().parents[2] / "data" / "models" / "demo-ar"
    fast = tokens.token_counter(model)
    assert isinstance(fast._encode_many, tokens._PieceCounts)
    tokenizer = Tokenizer.from_file(str(model / "tokenizer.json"))

    class ExactCounter:
        pair_overhead = fast.pair_overhead  # the demo model's layout, as the fast counter measures it

        def count(self, text):
            return len(tokenizer.encode(text, add_special_tokens=False).ids)

        def count_many(self, texts):
            return [self.count(text) for text in texts]

    exact = ExactCounter()
    path = tmp_path / "pairs.jsonl"
    _problem_file(path)
    with path.open("a", encoding="utf-8") as handle:  # texts the fast path must hand to the tokenizer
        handle.write(json.dumps({"id": "accents", "prompt": "Café  naïve — “quoted”", "response": "end <|end|> x"}) + "\n")
        handle.write(json.dumps({"id": "spaces", "prompt": "a   b\n\n c ", "response": "tab\there\r\nthen"}) + "\n")
    lengths = sorted({exact.count(pair.prompt) + exact.count(pair.response) + fast.pair_overhead
                      for pair in load_pairs(path).pairs})
    limit = lengths[len(lengths) // 2]
    budgets = {"at-limit": limit, "one-under": limit - 1, "roomy": lengths[-1]}
    monkeypatch.setattr(pairs_module, "CHECK_CHUNK", 7)
    monkeypatch.setattr(pairs_cmd, "STATS_CHUNK", 7)

    with_pieces = validate_file(path, budgets=budgets, counter=dict.fromkeys(budgets, fast))
    with_exact = validate_file(path, budgets=budgets, counter=dict.fromkeys(budgets, exact))
    assert with_pieces.problems == with_exact.problems
    over = [problem.message for problem in with_pieces.problems if problem.field == "tokens"]
    assert any(f"is {limit} tokens, over one-under's budget of {limit - 1}" in message for message in over)
    assert not any(f"is {limit} tokens, over at-limit" in message for message in over)
    assert not any("roomy" in message for message in over)

    stats_pieces = pairs_cmd.file_stats(path, budgets, dict.fromkeys(budgets, fast))
    assert stats_pieces == pairs_cmd.file_stats(path, budgets, dict.fromkeys(budgets, exact))
    assert stats_pieces["tokens"]["roomy"]["max"] == lengths[-1]


def test_pairs_short_enough_in_bytes_are_not_tokenised_and_problems_stay_exact(tmp_path):
    """A counter whose tokens each cover a byte (at_most_bytes) need not count a pair whose
    UTF-8 length already fits the smallest budget; the problems are those of counting all."""
    from engine.curate.tokens import DEFAULT_PAIR_OVERHEAD_TOKENS, TokenCounter

    path = tmp_path / "pairs.jsonl"
    _problem_file(path)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps({"id": "accents", "prompt": "Café naïve — ok", "response": "é" * 40}) + "\n")
    tokenised: list[str] = []

    def chars(texts):  # one token per character: never more than the UTF-8 bytes
        tokenised.extend(texts)
        return [len(text) for text in texts]

    pairs = load_pairs(path).pairs

    def size(pair):
        # A counter made from no model adds the default overhead.
        return len(pair.prompt.encode()) + len(pair.response.encode()) + DEFAULT_PAIR_OVERHEAD_TOKENS

    sizes = sorted(size(pair) for pair in pairs)
    for budgets in ({"roomy": sizes[-1]}, {"tight": sizes[len(sizes) // 2], "roomy": sizes[-1]}, {"accents": 60}):
        bounded = TokenCounter("chars", chars, at_most_bytes=True)
        tokenised.clear()
        fast = validate_file(path, budgets=budgets, counter=dict.fromkeys(budgets, bounded))
        exact = validate_file(path, budgets=budgets, counter=dict.fromkeys(budgets, lambda text: len(text)))
        assert fast.problems == exact.problems
        smallest = min(budgets.values())
        assert set(tokenised) == {text for pair in pairs if size(pair) > smallest for text in (pair.prompt, pair.response)}
    assert any(problem.field == "tokens" and "accents" in problem.message for problem in fast.problems)
