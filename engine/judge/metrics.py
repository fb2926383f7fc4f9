"""Automatic text metrics: one module for every degeneration and shape measure.

Used by the sampler on every frame (`LiveSignals`, incremental), by canary runs and the judge's
leaderboard (`text_metrics`). Functions over sequences accept any hashable items (token
ids or words), so the same code measures model tokens and words of a finished text.

Definitions:
- distinct-n (Li et al. 2016): unique n-grams / all n-grams.
- seq-rep-n (Welleck et al. 2019): 1 − unique n-grams / all n-grams.
- longest repeated n-gram span: length of the longest contiguous span that occurs at least
  twice (occurrences may overlap: "a a a" repeats "a a").
- longest run: the most consecutive copies of one item.
- repetition cascade: a run of CASCADE_RUN copies, or seq-rep-4 ≥ CASCADE_SEQ_REP_4 over at
  least CASCADE_MIN_ITEMS items — the "same word everywhere" / comma-cascade failure.
- other-script share: among words that contain letters, the share whose letters are in
  another Unicode script than most of the prompt's letters (Latin when it has none).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any

# A run this long of one token is a cascade, whatever the rest looks like.
CASCADE_RUN = 6
# seq-rep-4 above this means most 4-grams are copies of earlier ones.
CASCADE_SEQ_REP_4 = 0.5
CASCADE_MIN_ITEMS = 16
# n of the repeated n-gram share reported live (3: two-word phrases repeat in good prose).
LIVE_NGRAM_N = 3

# Lower-cased phrases that mark a refusal or an assistant disclaimer instead of an answer.
REFUSAL_PHRASES = (
    "i'm sorry", "i am sorry", "i apologize", "i cannot", "i can't", "i can not", "i won't",
    "i'm unable to", "i am unable to", "as an ai", "as a language model", "i'm not able to",
    "i am not able to", "cannot assist", "can't help with", "cannot help with",
)

_WORD_PATTERN = re.compile(r"\w+|[^\w\s]", re.UNICODE)
UNKNOWN_SCRIPT = "UNKNOWN"  # a byte fragment (U+FFFD) from a token cut inside a character


# Sequences ----------------------------------------------------------------------------
def ngrams(items: Sequence[Hashable], n: int) -> list[tuple]:
    return [tuple(items[index : index + n]) for index in range(len(items) - n + 1)]


def distinct_n(items: Sequence[Hashable], n: int) -> float:
    """Unique n-grams over all n-grams; 0.0 when the sequence is shorter than n."""
    grams = ngrams(items, n)
    return len(set(grams)) / len(grams) if grams else 0.0


def seq_rep_n(items: Sequence[Hashable], n: int) -> float:
    """Share of n-grams that repeat an n-gram seen before: 1 − unique/all (0.0 when none)."""
    grams = ngrams(items, n)
    return 1.0 - len(set(grams)) / len(grams) if grams else 0.0


def longest_run(items: Sequence[Hashable]) -> int:
    """Most consecutive copies of one item (0 for an empty sequence)."""
    best = current = 0
    previous: Any = object()
    for item in items:
        current = current + 1 if item == previous else 1
        best = max(best, current)
        previous = item
    return best


def longest_repeated_span(items: Sequence[Hashable]) -> int:
    """Length of the longest span occurring at least twice (0 when nothing repeats).

    If a span of length L repeats, so does its prefix of length L−1, so binary search on L.
    """
    def repeats(length: int) -> bool:
        seen: set[tuple] = set()
        for gram in ngrams(items, length):
            if gram in seen:
                return True
            seen.add(gram)
        return False

    low, high = 0, max(len(items) - 1, 0)
    while low < high:
        middle = (low + high + 1) // 2
        if repeats(middle):
            low = middle
        else:
            high = middle - 1
    return low


def is_repetition_cascade(items: Sequence[Hashable]) -> bool:
    if longest_run(items) >= CASCADE_RUN:
        return True
    return len(items) >= CASCADE_MIN_ITEMS and seq_rep_n(items, 4) >= CASCADE_SEQ_REP_4


def share_of(items: Sequence[Hashable], wanted: Iterable[Hashable]) -> float:
    """Share of items that are in `wanted` (e.g. EOS share of token ids); 0.0 when empty."""
    wanted_set = set(wanted)
    return sum(item in wanted_set for item in items) / len(items) if items else 0.0


# Scripts ------------------------------------------------------------------------------
def char_script(char: str) -> str | None:
    """The Unicode script of a letter ("LATIN", "CYRILLIC", "CJK" …); None for non-letters."""
    if char == "\ufffd":
        return UNKNOWN_SCRIPT
    if not unicodedata.category(char).startswith("L"):
        return None
    name = unicodedata.name(char, "")
    return name.split(" ", 1)[0] if name else UNKNOWN_SCRIPT


def text_script(text: str) -> str | None:
    """The most common script among the letters of `text`; None when it has no letters."""
    counts = Counter(script for script in map(char_script, text) if script is not None)
    return counts.most_common(1)[0][0] if counts else None


def other_script_share(pieces: Iterable[str], reference_script: str | None) -> float:
    """Share of pieces with letters whose script differs from `reference_script` (Latin if None)."""
    reference = reference_script or "LATIN"
    scripts = [script for script in map(text_script, pieces) if script is not None]
    return sum(script != reference for script in scripts) / len(scripts) if scripts else 0.0


# Text ---------------------------------------------------------------------------------
def words(text: str) -> list[str]:
    """Lower-cased words and punctuation marks (so a comma cascade counts)."""
    return _WORD_PATTERN.findall(text.lower())


def refusal_phrases(text: str) -> list[str]:
    """The refusal phrases found in `text`, in REFUSAL_PHRASES order."""
    lowered = text.lower().replace("\u2019", "'")
    return [phrase for phrase in REFUSAL_PHRASES if phrase in lowered]


def text_metrics(
    text: str,
    prompt: str = "",
    token_ids: Sequence[int] | None = None,
    end_ids: Iterable[int] = (),
) -> dict[str, Any]:
    """Every automatic metric of one generation, as a flat dict of plain values.

    Word-level measures use `words(text)`; `token_ids` (the generated ids, EOS padding
    included) give the token length and the EOS share; `end_ids` are EOS/EOT ids.
    """
    word_list = words(text)
    end_set = set(end_ids)
    ids = list(token_ids or [])
    content_ids = [token_id for token_id in ids if token_id not in end_set]
    return {
        "distinct_1": distinct_n(word_list, 1),
        "distinct_2": distinct_n(word_list, 2),
        "distinct_3": distinct_n(word_list, 3),
        "seq_rep_4": seq_rep_n(word_list, 4),
        "longest_repeated_span": longest_repeated_span(word_list),
        "longest_run": longest_run(word_list),
        "repetition_cascade": is_repetition_cascade(word_list),
        "other_script_share": other_script_share(text.split(), text_script(prompt)),
        "refusal_phrases": refusal_phrases(text),
        "refusal": bool(refusal_phrases(text)),
        "eos_share": share_of(ids, end_set),
        "length_tokens": len(ids),
        "length_words": len(text.split()),
        "empty": not text.strip() or (bool(ids) and not content_ids),
    }


# Live signals (one sampler frame) -----------------------------------------------------
def _committed_runs(canvas: Sequence[int | None]) -> list[list[int]]:
    """Contiguous stretches of committed ids (None marks a mask), so n-grams never span a mask."""
    runs: list[list[int]] = [[]]
    for token_id in canvas:
        if token_id is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append(token_id)
    return [run for run in runs if run]


def live_signals(
    canvas: Sequence[int | None],
    end_ids: Iterable[int],
    token_script: Callable[[int], str | None],
    prompt_script: str | None,
) -> dict[str, Any]:
    """Degeneration signals of a partly filled canvas (None = still masked), from scratch.

    The definition: the sampler keeps the same values up to date with `LiveSignals`, and the
    tests hold the two equal at every step. `token_script(id)` gives a token's script (None
    for punctuation/space). Returns: repeated_ngram_share (n = LIVE_NGRAM_N, within committed
    stretches), longest_run (one token, committed neighbours), other_script_share, eos_share
    and a `cascade` warning flag.
    """
    runs = _committed_runs(canvas)
    committed = [token_id for run in runs for token_id in run]
    grams = [gram for run in runs for gram in ngrams(run, LIVE_NGRAM_N)]
    repeated_share = 1.0 - len(set(grams)) / len(grams) if grams else 0.0
    run_length = max((longest_run(run) for run in runs), default=0)
    reference = prompt_script or "LATIN"
    scripts = [script for script in map(token_script, committed) if script is not None]
    other_share = sum(script != reference for script in scripts) / len(scripts) if scripts else 0.0
    cascade = run_length >= CASCADE_RUN or (
        len(grams) >= CASCADE_MIN_ITEMS and repeated_share >= CASCADE_SEQ_REP_4
    )
    return {
        "repeated_ngram_share": round(repeated_share, 4),
        "longest_run": run_length,
        "other_script_share": round(other_share, 4),
        "eos_share": round(share_of(committed, end_ids), 4),
        "cascade": cascade,
    }


class LiveSignals:
    """`live_signals` of a canvas kept up to date as tokens are committed, never recomputed.

    A sampler only ever fills masks, so every count only grows: committing a token adds the
    n-grams through it that are now fully committed (none of them existed before), may join
    runs of one token on either side, and adds one to the script and EOS tallies. A commit
    costs O(LIVE_NGRAM_N + the run through it), a frame's signals O(1), whatever the canvas
    length; the values equal `live_signals` exactly (same integer counts, same divisions).
    """

    def __init__(self, length: int, end_ids: Iterable[int], token_script: Callable[[int], str | None],
                 prompt_script: str | None):
        self.canvas: list[int | None] = [None] * length
        self._end_ids = frozenset(end_ids)
        self._token_script = token_script
        self._reference = prompt_script or "LATIN"
        self._gram_counts: Counter[tuple] = Counter()
        self._grams = 0
        self._longest_run = 0
        self._committed = 0
        self._ends = 0
        self._with_script = 0
        self._other_script = 0

    def commit(self, position: int, token_id: int) -> None:
        """Record `token_id` at a masked `position` (a committed position cannot change)."""
        canvas = self.canvas
        if canvas[position] is not None:
            raise ValueError(f"position {position} is already committed; live signals only follow masks being filled")
        canvas[position] = token_id
        self._committed += 1
        self._ends += token_id in self._end_ids
        script = self._token_script(token_id)
        if script is not None:
            self._with_script += 1
            self._other_script += script != self._reference
        # The n-grams through `position` whose every item is now committed.
        n, length = LIVE_NGRAM_N, len(canvas)
        for start in range(max(0, position - n + 1), min(position, length - n) + 1):
            gram = tuple(canvas[start:start + n])
            if None not in gram:
                self._gram_counts[gram] += 1
                self._grams += 1
        # The run of this token through `position`: runs only ever merge, so the longest grows.
        left = position
        while left > 0 and canvas[left - 1] == token_id:
            left -= 1
        right = position
        while right + 1 < length and canvas[right + 1] == token_id:
            right += 1
        self._longest_run = max(self._longest_run, right - left + 1)

    def signals(self) -> dict[str, Any]:
        grams = self._grams
        repeated_share = 1.0 - len(self._gram_counts) / grams if grams else 0.0
        other_share = self._other_script / self._with_script if self._with_script else 0.0
        cascade = self._longest_run >= CASCADE_RUN or (
            grams >= CASCADE_MIN_ITEMS and repeated_share >= CASCADE_SEQ_REP_4
        )
        return {
            "repeated_ngram_share": round(repeated_share, 4),
            "longest_run": self._longest_run,
            "other_script_share": round(other_share, 4),
            "eos_share": round(self._ends / self._committed, 4) if self._committed else 0.0,
            "cascade": cascade,
        }
