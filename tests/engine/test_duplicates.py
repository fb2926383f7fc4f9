"""The duplicate finder against a straightforward reference that compares every pair with
every other, on a few hundred random pairs with planted copies and edits of every degree."""

from __future__ import annotations

import random
import re

from engine.curate.duplicates import (NEAR_DUPLICATE_JACCARD, SHINGLE_WORDS, _WORD, DuplicateFinder, _word_bytes,
                                      find_duplicates, normalise_text)
from engine.curate.pairs import Pair

WORDS = ("river heron kettle gate ledger lamp rope frost rain wool thread needle window winter "
         "summer morning evening slow small quiet careful honest kitchen table bread flour").split()
DECORATIONS = ["", ",", ".", "!", " —", "'s", "_x", "2", " Ünïcødé", "  "]


def shingles(text: str) -> set[tuple[str, ...]]:
    words = normalise_text(text).split()
    if len(words) < SHINGLE_WORDS:
        return {(word,) for word in words}
    return {tuple(words[i:i + SHINGLE_WORDS]) for i in range(len(words) - SHINGLE_WORDS + 1)}


def similarity(first: set, second: set) -> float:
    return 1.0 if not first and not second else len(first & second) / len(first | second)


def reference(pairs: list[Pair]) -> tuple[list[tuple[int, int]], dict[tuple[int, int], float]]:
    """Exact: the first pair with the same normalised prompt and response, for each later one.
    Near: every two other pairs (response with words) whose prompts and responses both reach
    the threshold, by trigram Jaccard, with the lower of the two."""
    exact, first_of, kept = [], {}, []
    for index, pair in enumerate(pairs):
        key = (normalise_text(pair.prompt), normalise_text(pair.response))
        if key in first_of:
            exact.append((first_of[key], index))
        else:
            first_of[key] = index
            if key[1]:
                kept.append(index)
    near = {}
    sets = {index: (shingles(pairs[index].prompt), shingles(pairs[index].response)) for index in kept}
    for position, earlier in enumerate(kept):
        for later in kept[position + 1:]:
            prompt = similarity(sets[earlier][0], sets[later][0])
            response = similarity(sets[earlier][1], sets[later][1])
            if prompt >= NEAR_DUPLICATE_JACCARD and response >= NEAR_DUPLICATE_JACCARD:
                near[(earlier, later)] = min(prompt, response)
    return exact, near


def edited(rng: random.Random, text: str, changes: int) -> str:
    words = text.split()
    for _ in range(changes if words else 0):
        words[rng.randrange(len(words))] = rng.choice(WORDS) + rng.choice(DECORATIONS)
    return " ".join(words)


def random_pairs(seed: int, count: int) -> list[Pair]:
    rng = random.Random(seed)
    pairs: list[Pair] = []
    for index in range(count):
        if pairs and rng.random() < 0.45:  # a copy of an earlier pair: exact, recased, or edited
            model = rng.choice(pairs)
            kind = rng.choice(["exact", "recased", "edited", "edited", "edited"])
            if kind == "exact":
                prompt, response = model.prompt, model.response
            elif kind == "recased":
                prompt, response = model.prompt.upper() + "!", re.sub(r"\s+", "  ", model.response) + "."
            else:
                prompt = edited(rng, model.prompt, rng.choice([0, 0, 0, 1]))
                response = edited(rng, model.response, rng.randrange(0, 5))
        else:
            prompt = " ".join(rng.choices(WORDS, k=rng.choice([1, 2, rng.randint(20, 40)])))
            response = " ".join(rng.choices(WORDS, k=rng.choice([0, 2, rng.randint(40, 90)])))
        pairs.append(Pair(id=f"p{index}", prompt=prompt, response=response))
    return pairs


def test_the_ascii_fast_path_finds_the_words_the_pattern_finds():
    rng = random.Random(7)
    alphabet = [chr(code) for code in range(128)] + list("éÜß—“”İ")
    for _ in range(2000):
        text = "".join(rng.choices(alphabet, k=rng.randint(0, 40)))
        assert _word_bytes(text).split() == [word.encode() for word in _WORD.findall(text.casefold())], repr(text)


def test_duplicates_match_comparing_every_pair_with_every_other():
    found_total = expected_total = 0
    for seed in range(6):
        pairs = random_pairs(seed, 300)
        expected_exact, expected_near = reference(pairs)
        exact, near = find_duplicates(pairs)
        assert exact == expected_exact
        found = {(earlier, later): value for earlier, later, value in near}
        # Never a pair the reference does not report, with the reference's similarity
        # (trigrams are compared as 32-bit hashes: equal barring a collision).
        for key, value in found.items():
            assert key in expected_near and abs(value - expected_near[key]) < 1e-9, key
        # LSH finds a pair at similarity s with probability 1 - (1 - s^4)^8: every one at 0.9
        # or more (99.98% each); at 0.8 each is missed 1.5% of the time, so allow a few
        # (the hashes are fixed, so which ones is the same on every run).
        assert {key for key, value in expected_near.items() if value >= 0.9} <= set(found)
        found_total += len(found)
        expected_total += len(expected_near)
    assert found_total >= 0.95 * expected_total and expected_total > 60


def test_streaming_and_cached_finders_agree():
    pairs = random_pairs(11, 300)
    streamed = DuplicateFinder(cache=False)
    for start in range(0, len(pairs), 37):
        streamed.add(pairs[start:start + 37])
    assert streamed.finish(lambda indices: {index: pairs[index] for index in indices}) == find_duplicates(pairs)
