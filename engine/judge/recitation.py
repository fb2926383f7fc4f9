"""The longest passage a model copied from the training responses, in words.

    index = CopyIndex(training_responses)          # built once: linear in the training words
    copied = index.longest_copy(reply)             # Copied(words=12, passage="…")

A model that recites her essays can fool a style discriminator; this says how much of a
reply is verbatim training text, so recitation is never mistaken for voice.

Algorithm: a suffix automaton (Blumer et al. 1985) over the training responses' words,
each response followed by its own separator so no match spans two responses. Walking a
reply through it gives, at every word, the longest suffix of the reply so far that occurs
in the training text — the longest common substring in O(training + reply) steps.
Words are compared case-folded, punctuation dropped (engine.judge.stylometry.words_of).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

from engine.judge.stylometry import words_of


@dataclasses.dataclass(frozen=True)
class Copied:
    words: int  # length of the longest verbatim passage, in words
    passage: str  # that passage, lower-cased words joined by spaces ("" when nothing matched)


class CopyIndex:
    """A suffix automaton over word ids of many texts (see the module docstring)."""

    def __init__(self, texts: Iterable[str]) -> None:
        self._ids: dict[str, int] = {}
        self._next: list[dict[int, int]] = [{}]
        self._link: list[int] = [-1]
        self._length: list[int] = [0]
        self._last = 0
        separator = -1
        for text in texts:
            for word in words_of(text):
                self._extend(self._ids.setdefault(word, len(self._ids)))
            self._extend(separator)  # unique per text, never in a reply: matches stop at text ends
            separator -= 1

    def _extend(self, symbol: int) -> None:
        current = len(self._length)
        self._next.append({})
        self._length.append(self._length[self._last] + 1)
        self._link.append(0)
        state = self._last
        while state != -1 and symbol not in self._next[state]:
            self._next[state][symbol] = current
            state = self._link[state]
        if state != -1:
            target = self._next[state][symbol]
            if self._length[state] + 1 == self._length[target]:
                self._link[current] = target
            else:
                clone = len(self._length)
                self._next.append(dict(self._next[target]))
                self._length.append(self._length[state] + 1)
                self._link.append(self._link[target])
                while state != -1 and self._next[state].get(symbol) == target:
                    self._next[state][symbol] = clone
                    state = self._link[state]
                self._link[target] = clone
                self._link[current] = clone
        self._last = current

    def longest_copy(self, text: str) -> Copied:
        """The longest run of `text`'s words found verbatim in one indexed text."""
        reply = words_of(text)
        best_length = best_end = 0
        state = length = 0
        for position, word in enumerate(reply):
            symbol = self._ids.get(word)
            if symbol is None:  # a word the training text never uses breaks every match
                state = length = 0
                continue
            while state and symbol not in self._next[state]:
                state = self._link[state]
                length = self._length[state]
            if symbol in self._next[state]:
                state = self._next[state][symbol]
                length += 1
            else:
                state = length = 0
            if length > best_length:
                best_length, best_end = length, position + 1
        return Copied(words=best_length, passage=" ".join(reply[best_end - best_length:best_end]))


def longest_copy_among(index: CopyIndex, texts: Sequence[str]) -> Copied:
    """The longest copied passage over several replies."""
    return max((index.longest_copy(text) for text in texts), key=lambda copied: copied.words,
               default=Copied(words=0, passage=""))
