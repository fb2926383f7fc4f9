"""Exact and near-duplicate training pairs, found without comparing every pair with every other.

Exact: the same prompt and response after case-folding and dropping punctuation.
Near: MinHash signatures of word trigrams, bucketed by LSH bands, give candidate pairs;
a candidate counts when both its prompts and its responses reach NEAR_DUPLICATE_JACCARD.
numpy is imported on first use, not at import time.

Hashing runs in numpy over a batch of texts at once, with no Python object per word: each
text becomes the UTF-8 bytes of its case-folded words separated by spaces (plain ASCII text
by one `bytes.translate`, other text by the word pattern (`_WORD`), which agree on ASCII),
a word's hash is a polynomial hash of its bytes from one prefix sum, and a text's hash
(equal for "the same text") is a polynomial hash of its words' hashes.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
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


# Plain ASCII text → its words as `\w+` finds them after case-folding: letters lower-cased,
# digits and "_" kept, every other byte a space.
_ASCII_WORD_BYTES = bytes(code if chr(code).isalnum() or chr(code) == "_" else 32 for code in range(128)).lower()
_ASCII_WORD_TABLE = _ASCII_WORD_BYTES + b" " * 128
_SPACE = 32
# Odd bases of the polynomial hashes (odd: invertible modulo 2**64, so a hash of any span
# comes from two prefix sums).
_BYTE_BASE = 0x100000001B3
_WORD_BASE = 0x9E3779B97F4A7C15


def _word_bytes(text: str) -> bytes:
    """The text's case-folded words as UTF-8, separated by one or more spaces."""
    if text.isascii():
        return text.encode("ascii").translate(_ASCII_WORD_TABLE)
    return " ".join(_WORD.findall(text.casefold())).encode("utf-8", errors="surrogatepass")


def _mix(values: Any) -> Any:
    """The splitmix64 finaliser: spreads a polynomial hash's bits over all 64."""
    import numpy as np

    with np.errstate(over="ignore"):
        values = (values ^ (values >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        values = (values ^ (values >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return values ^ (values >> np.uint64(31))


# Powers of each hash base (and of its inverse), kept between batches up to this many.
_POWERS: dict[int, tuple[Any, Any]] = {}
_POWERS_KEPT = 1 << 22


def _powers(base: int, size: int) -> tuple[Any, Any]:
    """(base^i, base^-i) mod 2**64 for i < size."""
    import numpy as np

    cached = _POWERS.get(base)
    if cached is None or len(cached[0]) < size:
        length = 1 << max(16, (size - 1).bit_length())
        powers = np.full(length, base, dtype=np.uint64)
        inverse = np.full(length, pow(base, -1, 2**64), dtype=np.uint64)
        powers[0] = inverse[0] = 1
        with np.errstate(over="ignore"):  # uint64 arithmetic wraps modulo 2**64, as wanted
            cached = (np.cumprod(powers, dtype=np.uint64), np.cumprod(inverse, dtype=np.uint64))
        if length <= _POWERS_KEPT:
            _POWERS[base] = cached
    return cached[0][:size], cached[1][:size]


def _span_hashes(values: Any, starts: Any, ends: Any, base: int) -> Any:
    """Polynomial hash Σ values[s + k] · base^k (mod 2**64) of each span [s, e), vectorised:
    a prefix sum of values[i] · base^i, then each span's difference scaled by base^-s."""
    import numpy as np

    size = len(values)
    if not size:  # no values: every span is empty
        return np.zeros(len(starts), dtype=np.uint64)
    powers, inverse_powers = _powers(base, size + 1)
    prefix = np.empty(size + 1, dtype=np.uint64)  # prefix[i] = Σ_{j<i} values[j] · base^j
    prefix[0] = 0
    with np.errstate(over="ignore"):  # uint64 arithmetic wraps modulo 2**64, as wanted
        np.multiply(values, powers[:size], out=prefix[1:], dtype=np.uint64, casting="unsafe")
        np.cumsum(prefix, out=prefix)
        spans = (prefix[ends] - prefix[starts]) * inverse_powers[starts]
    return spans


def _words_and_text_hashes(texts: list[str]) -> tuple[Any, Any, Any]:
    """(word hashes of all texts in order, 64-bit; words per text; one hash per text of its
    word sequence, equal exactly when the case-folded words are — up to 2**-64 collisions)."""
    import numpy as np

    blobs = [_word_bytes(text) for text in texts]
    # Spaces around every text, so each word has a space before and after it.
    data = np.frombuffer(b" " + b" ".join(blobs) + b" ", dtype=np.uint8)
    space = data == _SPACE
    word_starts = np.flatnonzero(space[:-1] > space[1:]) + 1  # a space, then a word byte
    word_ends = np.flatnonzero(space[:-1] < space[1:]) + 1  # a word byte, then a space
    word_hashes = _mix(_span_hashes(data, word_starts, word_ends, _BYTE_BASE))
    blob_starts = np.cumsum([1] + [len(blob) + 1 for blob in blobs[:-1]], dtype=np.int64)
    first_words = np.searchsorted(word_starts, blob_starts)
    last_words = np.concatenate([first_words[1:], [len(word_starts)]]).astype(np.int64)
    lengths = last_words - first_words
    text_hashes = _mix(_span_hashes(word_hashes, first_words, last_words, _WORD_BASE) ^ lengths.astype(np.uint64))
    return word_hashes, lengths, text_hashes


def _normalised_hashes(texts: list[str]) -> list[int]:
    """`_TextFeatures.normalised_hash` of each text, without its trigrams."""
    return _words_and_text_hashes(texts)[2].tolist() if texts else []


def _shingles(texts: list[str]) -> tuple[Any, Any, Any]:
    """(text hashes; the shingle hashes of all texts in order — 32-bit hashes of the word
    trigrams, or of the words of a text under three words; shingles per text)."""
    import numpy as np

    mask = np.uint64(0xFFFFFFFF)
    all_word_hashes, lengths, text_hashes = _words_and_text_hashes(texts)
    word_hashes = all_word_hashes & mask
    padded = np.concatenate([word_hashes, np.zeros(SHINGLE_WORDS - 1, dtype=np.uint64)])
    # Trigram hash from three word hashes; uint64 arithmetic wraps, which is what we want.
    with np.errstate(over="ignore"):
        trigram = (padded[:-2] * np.uint64(0x9E3779B1) + padded[1:-1]) * np.uint64(0x85EBCA77) + padded[2:]
    trigram = (trigram ^ (trigram >> np.uint64(32))) & mask
    # Per word: its text's length and its place in the text. A trigram starts at each word
    # but the last two of a text; a text under three words keeps its words instead.
    length_of_word = np.repeat(lengths, lengths)
    first_word = np.cumsum(lengths) - lengths
    place = np.arange(len(word_hashes)) - np.repeat(first_word, lengths)
    short = length_of_word < SHINGLE_WORDS
    keep = short | (place <= length_of_word - SHINGLE_WORDS)
    values = np.where(short, word_hashes, trigram)[keep]
    counts = np.where(lengths < SHINGLE_WORDS, lengths, lengths - (SHINGLE_WORDS - 1))
    return text_hashes, values, counts


def _signatures(values: Any, counts: Any) -> Any:
    """MinHash signature rows (texts with shingles only, in order) of flat shingle values."""
    import numpy as np

    multiplier, offset = _minhash_parameters()
    bounds = (np.cumsum(counts) - counts)[counts > 0]
    signatures = np.empty((len(bounds), len(multiplier)), dtype=np.uint64)
    if not len(values):
        return signatures
    # h_i(x) = top 32 bits of (a_i * x + b_i) mod 2**64: one independent-enough hash per row.
    # Taking the top bits keeps order, so it is done after the minimum, on the few minima.
    # One row at a time: the buffer stays in the CPU's cache.
    permuted = np.empty(len(values), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for row in range(len(multiplier)):
            np.multiply(values, multiplier[row, 0], out=permuted)
            permuted += offset[row, 0]
            signatures[:, row] = np.minimum.reduceat(permuted, bounds)
    return signatures >> np.uint64(32)


def _compute_features(texts: list[str]) -> list[_TextFeatures]:
    import numpy as np

    if not texts:
        return []
    text_hashes, values, counts = _shingles(texts)
    signatures = iter(_signatures(values, counts))
    pieces = np.split(values, np.cumsum(counts)[:-1])
    return [_TextFeatures(text_hash, piece, next(signatures) if len(piece) else None)
            for text_hash, piece in zip(text_hashes.tolist(), pieces, strict=True)]


def _hashes_and_signatures(texts: list[str]) -> tuple[list[int], list[Any]]:
    """(`normalised_hash`, `signature` or None) of each text, as `_compute_features` gives
    them, without a features object per text (the streaming pass keeps only these)."""
    if not texts:
        return [], []
    text_hashes, values, counts = _shingles(texts)
    signatures = iter(_signatures(values, counts))
    return text_hashes.tolist(), [next(signatures) if count else None for count in counts.tolist()]


def find_duplicates(pairs: Sequence[Pair]) -> tuple[list[tuple[int, int]], list[tuple[int, int, float]]]:
    """(exact, near) duplicates as index pairs (earlier, later); near ones carry the lower
    of the prompt and response Jaccard similarities.

    Exact: same prompt and response after case-folding and dropping punctuation.
    Near: candidates come from MinHash bands of the responses; a candidate counts when the
    word-trigram Jaccard of the prompts and of the responses are both ≥ NEAR_DUPLICATE_JACCARD.
    """
    finder = DuplicateFinder(cache=True)
    finder.add(pairs)
    return finder.finish(lambda indices: {index: pairs[index] for index in indices})


class DuplicateFinder:
    """`find_duplicates` in two passes, for files too big to hold in memory.

        finder = DuplicateFinder()
        finder.add(chunk)  ...                     # pairs in file order, a chunk at a time
        exact, near = finder.finish(fetch)         # fetch(indices) -> {index: Pair}, re-read

    `add` keeps, per pair, only the hashes that decide "exact" and the response's MinHash
    signature (~300 bytes); `finish` re-reads the few candidate pairs to measure their
    Jaccard exactly, so the answer is the same as holding every pair.
    `cache=True` keeps each text's features for the next validation (the editor re-validates
    after every edit); a one-off pass over a big file leaves it off.
    """

    def __init__(self, *, cache: bool = False):
        self.cache = cache
        self.count = 0
        self.exact: list[tuple[int, int]] = []
        self._representative: dict[tuple[int, int], int] = {}
        self._signatures: dict[int, Any] = {}  # unique pairs with words in the response

    def add(self, pairs: Sequence[Pair]) -> None:
        if self.cache:
            features = _features_of([text for pair in pairs for text in (pair.prompt, pair.response)])
            prompt_hashes = [feature.normalised_hash for feature in features[0::2]]
            response_hashes = [feature.normalised_hash for feature in features[1::2]]
            signatures = [feature.signature for feature in features[1::2]]
        else:
            # Prompts only need their word hash here (their trigrams are measured in
            # `finish`, for candidates); responses need signatures. Batches of
            # _FEATURE_CHUNK bound the numpy temporaries.
            prompt_hashes, response_hashes, signatures = [], [], []
            for start in range(0, len(pairs), _FEATURE_CHUNK):
                chunk = pairs[start:start + _FEATURE_CHUNK]
                prompt_hashes += _normalised_hashes([pair.prompt for pair in chunk])
                hashes, chunk_signatures = _hashes_and_signatures([pair.response for pair in chunk])
                response_hashes += hashes
                signatures += chunk_signatures
        for offset, key in enumerate(zip(prompt_hashes, response_hashes, strict=True)):
            index = self.count + offset
            if key in self._representative:
                self.exact.append((self._representative[key], index))
                continue
            self._representative[key] = index
            if signatures[offset] is not None:
                self._signatures[index] = signatures[offset]
        self.count += len(pairs)

    def finish(self, fetch: Callable[[list[int]], dict[int, Pair]]) -> tuple[
            list[tuple[int, int]], list[tuple[int, int, float]]]:
        candidates = sorted(_band_candidates(self._signatures))
        if not candidates:
            return self.exact, []
        pairs = fetch(sorted({index for candidate in candidates for index in candidate}))
        shingles: dict[int, tuple[set[int], set[int]]] = {}

        def shingle_sets(index: int) -> tuple[set[int], set[int]]:
            if index not in shingles:
                pair = pairs[index]
                texts = [pair.prompt, pair.response]
                prompt, response = _features_of(texts) if self.cache else _compute_features(texts)
                shingles[index] = (prompt.shingle_set(), response.shingle_set())
            return shingles[index]

        near: list[tuple[int, int, float]] = []
        for first, second in candidates:
            (first_prompt, first_response), (second_prompt, second_response) = shingle_sets(first), shingle_sets(second)
            response_similarity = jaccard(first_response, second_response)
            if response_similarity < NEAR_DUPLICATE_JACCARD:
                continue
            prompt_similarity = jaccard(first_prompt, second_prompt)
            if prompt_similarity >= NEAR_DUPLICATE_JACCARD:
                near.append((first, second, min(prompt_similarity, response_similarity)))
        return self.exact, near


def _band_candidates(signature_of: dict[int, Any]) -> set[tuple[int, int]]:
    """Index pairs (earlier, later) whose signatures agree on every row of some band."""
    import numpy as np

    candidates: set[tuple[int, int]] = set()
    indices = sorted(signature_of)
    if len(indices) < 2:
        return candidates
    signatures = np.stack([signature_of[index] for index in indices])  # (texts, rows * bands)
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
