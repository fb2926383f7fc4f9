"""Exact and near-duplicate training pairs, found without comparing every pair with every other.

Exact: the same prompt and response after case-folding and dropping punctuation.
Near: MinHash signatures of word trigrams, bucketed by LSH bands, give candidate pairs;
a candidate counts when both its prompts and its responses reach NEAR_DUPLICATE_JACCARD.
numpy is imported on first use, not at import time.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.curate.pairs import Pair

# Near-duplicate rule: both the prompts and the responses share at least this share of
# word trigrams (Jaccard). Requiring both keeps the thesis pair (title → whole piece) and
# the continuation pair (opening → rest) of one essay apart: their responses overlap but
# their prompts do not.
NEAR_DUPLICATE_JACCARD = 0.8
SHINGLE_WORDS = 3

_WORD = re.compile(r"\w+")


def normalise_text(text: str) -> str:
    """Case-folded words only: what "the same text" means for duplicate checks."""
    return " ".join(_WORD.findall(text.casefold()))


def jaccard(first: frozenset[int] | set[int], second: frozenset[int] | set[int]) -> float:
    if not first and not second:
        return 1.0
    return len(first & second) / len(first | second)


# MinHash with LSH banding (Broder 1997; Leskovec et al., Mining of Massive Datasets §3.4):
# MINHASH_BANDS bands of MINHASH_ROWS hashes. Two texts with Jaccard s share at least one
# band with probability 1 - (1 - s^r)^b: ≈ 0.98 at s = 0.8, ≈ 0.06 at s = 0.3, so only
# likely pairs are compared exactly and there is no loop over all pairs of pairs.
MINHASH_ROWS = 4
MINHASH_BANDS = 8
_BUCKET_WINDOW = 8  # in one band bucket, compare each text with this many before it


@dataclasses.dataclass(frozen=True)
class _TextFeatures:
    normalised_hash: int  # hash of the case-folded words: equal for "the same text"
    shingles: Any  # numpy uint64 array: 32-bit hashes of the word trigrams (words, if under 3)
    signature: Any  # numpy uint64 MinHash signature (MINHASH_ROWS * MINHASH_BANDS), or None: no words

    def shingle_set(self) -> set[int]:
        return set(self.shingles.tolist())


# Features per text, reused across validations while the text is unchanged (the TUI
# re-validates after each edit; only the edited text is hashed again).
_FEATURES: dict[str, _TextFeatures] = {}
_FEATURES_LIMIT = 100_000
_FEATURE_CHUNK = 512  # texts hashed per numpy batch (bounds memory: ~20 MB per batch)
_MINHASH: tuple[Any, Any] | None = None


def _minhash_parameters() -> tuple[Any, Any]:
    global _MINHASH
    if _MINHASH is None:
        import numpy as np

        rng = np.random.default_rng(20240314)  # fixed: signatures are comparable across calls
        size = MINHASH_ROWS * MINHASH_BANDS
        # Multiply-shift hashing (Dietzfelbinger et al. 1997): odd 64-bit multipliers.
        multipliers = rng.integers(0, 2**63, size=size, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
        offsets = rng.integers(0, 2**63, size=size, dtype=np.uint64)
        _MINHASH = (multipliers[:, None], offsets[:, None])
    return _MINHASH


def _features_of(texts: list[str]) -> list[_TextFeatures]:
    """Features of many texts; the uncached ones are computed in numpy batches."""
    missing = list(dict.fromkeys(text for text in texts if text not in _FEATURES))
    if len(_FEATURES) + len(missing) > _FEATURES_LIMIT:
        _FEATURES.clear()
        missing = list(dict.fromkeys(texts))
    for start in range(0, len(missing), _FEATURE_CHUNK):
        chunk = missing[start:start + _FEATURE_CHUNK]
        _FEATURES.update(zip(chunk, _compute_features(chunk), strict=True))
    return [_FEATURES[text] for text in texts]


def _compute_features(texts: list[str]) -> list[_TextFeatures]:
    import numpy as np

    multiplier, offset = _minhash_parameters()
    mask = np.uint64(0xFFFFFFFF)
    word_lists = [_WORD.findall(text.casefold()) for text in texts]
    lengths = np.fromiter((len(words) for words in word_lists), dtype=np.int64, count=len(texts))
    # hash() is salted per process; only comparisons within one run use these values.
    word_hashes = np.fromiter(map(hash, itertools.chain.from_iterable(word_lists)), dtype=np.int64,
                              count=int(lengths.sum())).astype(np.uint64) & mask
    padded = np.concatenate([word_hashes, np.zeros(SHINGLE_WORDS - 1, dtype=np.uint64)])
    # Trigram hash from three word hashes; uint64 arithmetic wraps, which is what we want.
    with np.errstate(over="ignore"):
        trigram = (padded[:-2] * np.uint64(0x9E3779B1) + padded[1:-1]) * np.uint64(0x85EBCA77) + padded[2:]
    trigram = (trigram ^ (trigram >> np.uint64(32))) & mask
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    pieces = []
    for begin, length in zip(starts.tolist(), lengths.tolist(), strict=True):
        if length >= SHINGLE_WORDS:
            pieces.append(trigram[begin:begin + length - SHINGLE_WORDS + 1])
        else:
            pieces.append(word_hashes[begin:begin + length])
    counts = [len(piece) for piece in pieces]
    nonempty = [i for i, count in enumerate(counts) if count]
    signatures: dict[int, Any] = {}
    if nonempty:
        flat = np.concatenate([pieces[i] for i in nonempty])
        # h_i(x) = top 32 bits of (a_i * x + b_i) mod 2**64: one independent-enough hash per row.
        with np.errstate(over="ignore"):
            permuted = (multiplier * flat[None, :] + offset) >> np.uint64(32)
        bounds = np.concatenate([[0], np.cumsum([counts[i] for i in nonempty])[:-1]])
        minima = np.ascontiguousarray(np.minimum.reduceat(permuted, bounds, axis=1).T)
        signatures = {i: minima[row] for row, i in enumerate(nonempty)}
    return [
        _TextFeatures(hash(" ".join(words)), piece, signatures.get(i))
        for i, (words, piece) in enumerate(zip(word_lists, pieces, strict=True))
    ]


def find_duplicates(pairs: Sequence[Pair]) -> tuple[list[tuple[int, int]], list[tuple[int, int, float]]]:
    """(exact, near) duplicates as index pairs (earlier, later); near ones carry the lower
    of the prompt and response Jaccard similarities.

    Exact: same prompt and response after case-folding and dropping punctuation.
    Near: candidates come from MinHash bands of the responses; a candidate counts when the
    word-trigram Jaccard of the prompts and of the responses are both ≥ NEAR_DUPLICATE_JACCARD.
    """
    exact: list[tuple[int, int]] = []
    representative: dict[tuple[int, int], int] = {}
    unique: list[int] = []
    prompt_features: dict[int, _TextFeatures] = {}
    response_features: dict[int, _TextFeatures] = {}
    features = _features_of([text for pair in pairs for text in (pair.prompt, pair.response)])
    for index in range(len(pairs)):
        prompt, response = features[2 * index], features[2 * index + 1]
        key = (prompt.normalised_hash, response.normalised_hash)
        if key in representative:
            exact.append((representative[key], index))
            continue
        representative[key] = index
        unique.append(index)
        prompt_features[index], response_features[index] = prompt, response

    candidates = _band_candidates([index for index in unique if response_features[index].signature is not None],
                                  response_features)
    near: list[tuple[int, int, float]] = []
    for first, second in sorted(candidates):
        response_similarity = jaccard(response_features[first].shingle_set(), response_features[second].shingle_set())
        if response_similarity < NEAR_DUPLICATE_JACCARD:
            continue
        prompt_similarity = jaccard(prompt_features[first].shingle_set(), prompt_features[second].shingle_set())
        if prompt_similarity >= NEAR_DUPLICATE_JACCARD:
            near.append((first, second, min(prompt_similarity, response_similarity)))
    return exact, near


def _band_candidates(indices: list[int], features: dict[int, _TextFeatures]) -> set[tuple[int, int]]:
    """Index pairs (earlier, later) whose signatures agree on every row of some band."""
    import numpy as np

    candidates: set[tuple[int, int]] = set()
    if len(indices) < 2:
        return candidates
    signatures = np.stack([features[index].signature for index in indices])  # (texts, rows * bands)
    order_of = np.asarray(indices)
    mixers = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0x27D4EB2F165667C5],
                      dtype=np.uint64)[:MINHASH_ROWS]
    for band in range(MINHASH_BANDS):
        rows = signatures[:, band * MINHASH_ROWS:(band + 1) * MINHASH_ROWS]
        with np.errstate(over="ignore"):
            keys = (rows * mixers).sum(axis=1)  # one 64-bit key per band; a rare false match is verified later
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        same_as_previous = np.flatnonzero(sorted_keys[1:] == sorted_keys[:-1]) + 1
        if not len(same_as_previous):
            continue
        # Walk the runs of equal keys; each member is compared with a few members before it.
        run_start = None
        for position in same_as_previous.tolist():
            if run_start is None or position - 1 != previous:
                run_start = position - 1
            members = order_of[order[max(run_start, position - _BUCKET_WINDOW):position]].tolist()
            later = int(order_of[order[position]])
            candidates.update((min(earlier, later), max(earlier, later)) for earlier in members)
            previous = position
    return candidates
