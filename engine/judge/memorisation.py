"""Passages an output copied from the training pairs: the longest runs of words it shares with them.

    index = CopyIndex([pair.response for pair in train_pairs])      # once per corpus
    spans = index.copied_spans(output_text)                         # longest first, no overlaps
    spans[0].words, output_text[spans[0].start:spans[0].end], spans[0].source
    words, passage = longest_passage(index, outputs)                # the longest over many texts

Used by the reading view (highlights), the promotion gate (a copied passage vetoes) and the
voice score (recitation is not voice).

Method (seed and extend): the corpus is split into words (case-folded, punctuation kept out of
the comparison) and every run of `min_words` consecutive words goes into a hash table,
keyed by the run, pointing at where it occurs. An output is scanned the same way; wherever its
run of `min_words` words is in the table, the match is extended word by word in both texts
to its full length. Building costs one pass over the corpus, a query one pass over the output
plus the length of what it copied, so a 100,000-word corpus answers in milliseconds. Maximal
matches are then taken longest first, skipping any that overlap one already taken.

Choices: words rather than characters, because a shared phrase is what memorisation looks
like to a writer (and character matches of common words would light up every text);
`min_words` = 6 by default, below which shared runs ("at the end of the") are ordinary English.
"""

from __future__ import annotations

import dataclasses
import re
from collections import defaultdict
from collections.abc import Iterable

WORD = re.compile(r"\w+(?:['’]\w+)*")
DEFAULT_MIN_WORDS = 6
MAX_SEEDS_PER_KEY = 32  # a run repeated more often than this is boilerplate; extending each is waste


@dataclasses.dataclass(frozen=True)
class CopiedSpan:
    """A passage of the output found word for word in the corpus."""

    start: int  # character offsets into the output text
    end: int
    words: int
    source: int  # index of the corpus text it was found in
    source_start: int  # character offsets into that corpus text
    source_end: int


def _words(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """Case-folded words and their character spans."""
    found = list(WORD.finditer(text))
    return [match.group().casefold() for match in found], [match.span() for match in found]


class CopyIndex:
    """A hash index of every `min_words`-word run in a corpus of texts."""

    def __init__(self, corpus: list[str], min_words: int = DEFAULT_MIN_WORDS) -> None:
        if min_words < 1:
            raise ValueError(f"min_words must be at least 1, got {min_words}")
        self.min_words = min_words
        self.corpus = list(corpus)
        self._words: list[list[str]] = []
        self._spans: list[list[tuple[int, int]]] = []
        self._seeds: dict[tuple[str, ...], list[tuple[int, int]]] = defaultdict(list)
        for doc, text in enumerate(self.corpus):
            words, spans = _words(text)
            self._words.append(words)
            self._spans.append(spans)
            for position in range(len(words) - min_words + 1):
                seeds = self._seeds[tuple(words[position:position + min_words])]
                if len(seeds) < MAX_SEEDS_PER_KEY:
                    seeds.append((doc, position))

    def copied_spans(self, text: str) -> list[CopiedSpan]:
        """Maximal shared runs of at least `min_words` words, longest first, non-overlapping."""
        words, spans = _words(text)
        k = self.min_words
        candidates: dict[tuple[int, int], tuple[int, int, int]] = {}  # (start, end) in output → best source
        for position in range(len(words) - k + 1):
            for doc, source_position in self._seeds.get(tuple(words[position:position + k]), ()):
                corpus_words = self._words[doc]
                # Only extend from the left edge of a match: a seed inside a match found already
                # (output and source both one word further on) adds nothing.
                if (position and source_position and words[position - 1] == corpus_words[source_position - 1]):
                    continue
                length = k
                while (position + length < len(words) and source_position + length < len(corpus_words)
                       and words[position + length] == corpus_words[source_position + length]):
                    length += 1
                key = (position, position + length)
                if key not in candidates:
                    candidates[key] = (doc, source_position, source_position + length)
        chosen: list[CopiedSpan] = []
        taken = [False] * len(words)
        for (first, last), (doc, source_first, source_last) in sorted(
                candidates.items(), key=lambda item: (-(item[0][1] - item[0][0]), item[0][0])):
            if any(taken[first:last]):
                continue
            taken[first:last] = [True] * (last - first)
            source_spans = self._spans[doc]
            chosen.append(CopiedSpan(start=spans[first][0], end=spans[last - 1][1], words=last - first, source=doc,
                                     source_start=source_spans[source_first][0],
                                     source_end=source_spans[source_last - 1][1]))
        return chosen

    def longest(self, text: str) -> CopiedSpan | None:
        """The longest passage copied from the corpus, or None."""
        spans = self.copied_spans(text)
        return spans[0] if spans else None


def longest_passage(index: CopyIndex, texts: Iterable[str]) -> tuple[int, str]:
    """(words, passage as written) of the longest passage any of `texts` copied; (0, "") when none."""
    best_words, best_passage = 0, ""
    for text in texts:
        span = index.longest(text)
        if span is not None and span.words > best_words:
            best_words, best_passage = span.words, text[span.start:span.end]
    return best_words, best_passage
