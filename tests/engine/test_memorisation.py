"""Copied passages: the longest word runs an output shares with the training responses."""

from __future__ import annotations

import random

import pytest

from engine.judge.memorisation import CopyIndex, longest_passage

CORPUS = [
    "The river keeps its own counsel, and the town keeps the river's secrets in return.",
    "I wrote this in the kitchen, with the window open and the kettle on.",
]


def test_finds_the_longest_copied_passage_with_its_source_and_offsets():
    index = CopyIndex(CORPUS, min_words=4)
    output = "Today THE RIVER keeps its own counsel, and the town sleeps. I wrote this in the kitchen, late."
    spans = index.copied_spans(output)
    assert [output[s.start:s.end] for s in spans] == [
        "THE RIVER keeps its own counsel, and the town", "I wrote this in the kitchen"]
    assert [(s.words, s.source) for s in spans] == [(9, 0), (6, 1)]
    first = spans[0]
    assert CORPUS[0][first.source_start:first.source_end] == "The river keeps its own counsel, and the town"
    assert index.longest("nothing shared with anything at all here") is None


def test_short_shared_runs_are_not_copying_and_overlaps_are_taken_once():
    index = CopyIndex(CORPUS + ["keeps its own counsel, and the town keeps"], min_words=6)
    assert index.copied_spans("in the kitchen with the") == []  # 5 words: below min_words
    spans = index.copied_spans("the river keeps its own counsel, and the town keeps the river's secrets")
    assert len(spans) == 1 and spans[0].words == 13  # the long match wins; the shorter overlap is dropped


def test_a_planted_passage_is_found_in_a_large_corpus():
    rng = random.Random(0)
    vocabulary = [f"w{i}" for i in range(3000)]
    corpus = [" ".join(rng.choice(vocabulary) for _ in range(200)) for _ in range(500)]  # 100,000 words
    index = CopyIndex(corpus)
    planted = " ".join(corpus[321].split()[50:90])  # 40 words copied from one response
    output = " ".join(rng.choice(vocabulary) for _ in range(300)) + " " + planted
    spans = index.copied_spans(output)
    assert spans[0].words == 40 and spans[0].source == 321


def test_min_words_must_be_positive():
    with pytest.raises(ValueError, match="min_words"):
        CopyIndex(CORPUS, min_words=0)


def _brute_longest(reply: list[str], texts: list[list[str]]) -> int:
    best = 0
    for text in texts:
        for i in range(len(reply)):
            for j in range(len(text)):
                length = 0
                while i + length < len(reply) and j + length < len(text) and reply[i + length] == text[j + length]:
                    length += 1
                best = max(best, length)
    return best


@pytest.mark.parametrize("min_words", [1, 3])
def test_longest_passage_agrees_with_brute_force(min_words):
    rng = random.Random(3)
    vocabulary = ["a", "b", "c", "d"]
    for _ in range(30):
        texts = [[rng.choice(vocabulary) for _ in range(rng.randint(1, 25))] for _ in range(3)]
        replies = [[rng.choice(vocabulary) for _ in range(rng.randint(1, 25))] for _ in range(2)]
        words, passage = longest_passage(CopyIndex([" ".join(t) for t in texts], min_words),
                                         [" ".join(reply) for reply in replies])
        expected = max(_brute_longest(reply, texts) for reply in replies)
        assert words == (expected if expected >= min_words else 0)
        assert len(passage.split()) == words
        if words:
            assert any(f" {passage} " in f" {' '.join(text)} " for text in texts)


def test_a_copied_passage_never_spans_two_corpus_texts_and_ignores_case_and_punctuation():
    index = CopyIndex(["the kettle sang", "on the sill a heron"], min_words=1)
    assert longest_passage(index, ["I said the kettle sang on the sill"]) == (3, "the kettle sang")
    index = CopyIndex(["For most of my adult life I owned exactly one sharp knife."], min_words=3)
    assert longest_passage(index, ["for most of my adult life, I owned"]) == (8, "for most of my adult life, I owned")
