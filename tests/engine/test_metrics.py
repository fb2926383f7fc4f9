"""Automatic metrics against examples worked out by hand."""

from __future__ import annotations

import pytest

from engine.judge.metrics import (
    LiveSignals, char_script, distinct_n, is_repetition_cascade, live_signals, longest_repeated_span, longest_run,
    other_script_share, refusal_phrases, seq_rep_n, share_of, text_metrics, text_script, words,
)


def test_distinct_and_seq_rep():
    items = list("abab")  # bigrams ab, ba, ab: 2 unique of 3
    assert distinct_n(items, 1) == 0.5
    assert distinct_n(items, 2) == pytest.approx(2 / 3)
    assert seq_rep_n(items, 2) == pytest.approx(1 / 3)
    assert distinct_n(items, 5) == 0.0 and seq_rep_n(items, 5) == 0.0  # too short: no n-grams
    assert seq_rep_n(list("abcd"), 1) == 0.0


def test_longest_run_and_repeated_span():
    assert longest_run([]) == 0
    assert longest_run([1, 2, 2, 2, 3, 3]) == 3
    assert longest_repeated_span(list("abcxabcy")) == 3  # "abc" twice
    assert longest_repeated_span(list("aaaa")) == 3  # overlapping "aaa" at 0 and 1
    assert longest_repeated_span(list("abcd")) == 0
    assert longest_repeated_span([]) == 0


def test_repetition_cascade_flag():
    assert is_repetition_cascade([","] * 6)
    assert not is_repetition_cascade([","] * 5 + ["x"])
    looping = list("abcd") * 5  # 17 four-grams, 4 unique: seq-rep-4 = 13/17
    assert is_repetition_cascade(looping)
    assert not is_repetition_cascade(list("abcdefghijklmnopqrst"))


def test_scripts():
    assert char_script("a") == "LATIN" and char_script("ж") == "CYRILLIC" and char_script(",") is None
    assert char_script("水") == "CJK"
    assert text_script("the river") == "LATIN" and text_script("123 ,") is None
    assert other_script_share(["river", "река", ",", "mend"], "LATIN") == pytest.approx(1 / 3)
    assert other_script_share(["река"], None) == 1.0  # no prompt script: Latin assumed
    assert other_script_share([",", "!"], "LATIN") == 0.0


def test_refusals_words_and_shares():
    assert refusal_phrases("I’m sorry, but as an AI I cannot.") == ["i'm sorry", "i cannot", "as an ai"]
    assert refusal_phrases("The river was sorry for nothing.") == []
    assert words("Mend, tend!") == ["mend", ",", "tend", "!"]
    assert share_of([1, 9, 9, 2], {9}) == 0.5 and share_of([], {9}) == 0.0


def test_text_metrics_of_a_small_generation():
    metrics = text_metrics("the river the river, the end", prompt="Write about the river.",
                           token_ids=[5, 6, 5, 6, 7, 9, 9], end_ids=[9])
    # words: the river the river , the end → 7 words, 4 distinct; 6 bigrams, 5 distinct
    assert metrics["distinct_1"] == pytest.approx(4 / 7)
    assert metrics["distinct_2"] == pytest.approx(5 / 6)
    assert metrics["longest_repeated_span"] == 2
    assert metrics["eos_share"] == pytest.approx(2 / 7)
    assert metrics["length_tokens"] == 7 and metrics["length_words"] == 6
    assert metrics["other_script_share"] == 0.0 and not metrics["refusal"] and not metrics["empty"]
    assert not metrics["repetition_cascade"]
    assert text_metrics("", token_ids=[9, 9], end_ids=[9])["empty"]
    assert text_metrics("text", token_ids=[9, 9], end_ids=[9])["empty"]  # EOS-only ids


def test_live_signals_on_a_partly_filled_canvas():
    scripts = {1: "LATIN", 2: "LATIN", 3: "CYRILLIC", 0: None}
    canvas = [1, 2, 1, 2, None, 3, 3, 3, 9]
    signals = live_signals(canvas, end_ids=[9], token_script=scripts.get, prompt_script="LATIN")
    # stretches [1,2,1,2] and [3,3,3,9]: trigrams 121, 212, 333, 339 — none repeats
    assert signals["repeated_ngram_share"] == 0.0
    assert signals["longest_run"] == 3
    assert signals["other_script_share"] == pytest.approx(3 / 7, abs=1e-4)  # 9 has no script; live values are rounded
    assert signals["eos_share"] == pytest.approx(1 / 8, abs=1e-4)
    assert not signals["cascade"]
    # A mask splits runs: 0 0 _ 0 0 is two runs of two, not four.
    assert live_signals([0, 0, None, 0, 0], [], scripts.get, "LATIN")["longest_run"] == 2
    cascade = live_signals([0] * 6, [], scripts.get, "LATIN")
    assert cascade["cascade"] and cascade["repeated_ngram_share"] == pytest.approx(3 / 4)
    assert live_signals([None] * 4, [], scripts.get, None) == {
        "repeated_ngram_share": 0.0, "longest_run": 0, "other_script_share": 0.0, "eos_share": 0.0, "cascade": False,
    }


def test_incremental_live_signals_equal_the_definition_after_every_commit():
    """Random canvases over a small alphabet (so n-grams repeat, runs and cascades happen),
    filled in random order: the kept-up-to-date signals equal the from-scratch ones each time."""
    import random

    scripts = {0: None, 1: "LATIN", 2: "LATIN", 3: "CYRILLIC", 4: "GREEK"}
    rng = random.Random(7)
    cascades = runs_of_three = 0
    for trial in range(200):
        length = rng.randint(0, 40)
        alphabet = rng.randint(1, 5)
        tokens = [rng.randrange(alphabet) for _ in range(length)]
        end_ids, prompt_script = [rng.randrange(5)], rng.choice([None, "LATIN", "CYRILLIC"])
        live = LiveSignals(length, end_ids, scripts.get, prompt_script)
        canvas: list[int | None] = [None] * length
        assert live.signals() == live_signals(canvas, end_ids, scripts.get, prompt_script)
        for position in rng.sample(range(length), length):
            canvas[position] = tokens[position]
            live.commit(position, tokens[position])
            expected = live_signals(canvas, end_ids, scripts.get, prompt_script)
            assert live.signals() == expected, (trial, canvas)
        final = live.signals()
        cascades += final["cascade"]
        runs_of_three += final["longest_run"] >= 3
    assert cascades > 20 and runs_of_three > 50  # the cases covered the interesting branches


def test_incremental_live_signals_refuse_a_second_commit_at_one_position():
    live = LiveSignals(3, [], {}.get, None)
    live.commit(1, 5)
    with pytest.raises(ValueError, match="position 1 is already committed"):
        live.commit(1, 6)
