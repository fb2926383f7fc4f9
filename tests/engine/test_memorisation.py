"""Copied passages: the longest word runs an output shares with the training responses."""

from __future__ import annotations

import random

import pytest

from engine.judge.memorisation import CopyIndex

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
