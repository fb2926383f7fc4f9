"""The Pairs screen's editing state, without any widgets: the loaded file, undo/redo, saving.

Pairs are treated as immutable: every edit swaps in a new `Pair` (dataclasses.replace),
so an undo step is just the previous list of pair references — a shallow copy that costs
microseconds even for 10,000 pairs — and the engine keeps the exact bytes of every pair
that was not touched.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from engine.curate.pairs import TIERS, Pair, PairFile, duplicate_pair, load_pairs, new_id, save_pairs

UNDO_LIMIT = 500  # undo steps kept; older ones are dropped
DUPLICATE_MARK = "\0"  # row key of the nth pair sharing an id: f"{id}\0{n}"


def unknown_field_values(query: str) -> str | None:
    """A hint when a `tier:` term of the filter names no tier (the filter matches a field by
    substring, so `tier:cont` is fine and `tier:notes` finds nothing): the valid tiers."""
    for term in query.casefold().split():
        name, _, value = term.partition(":")
        if name == "tier" and value and not any(value in tier for tier in TIERS):
            return f"No tier “{value}”: tiers are {', '.join(TIERS)}."
    return None


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """The pair list before (or after) one command, and which pair was selected."""

    pairs: tuple[Pair, ...]
    selected: str | None
    label: str  # "edit prompt", "delete pair-0003" … shown in the status line on undo


class PairsSession:
    """One open pairs file and its edit history. All methods run on the UI thread."""

    def __init__(self, pair_file: PairFile) -> None:
        self.pair_file = pair_file
        self.version = 0  # bumped by every change; autosave compares it with saved_version
        self.saved_version = 0
        self._undo: list[Snapshot] = []
        self._redo: list[Snapshot] = []
        # Typing into one field makes one undo step, not one per key: consecutive edits of
        # the same (pair, field) extend the step until something else happens.
        self._coalesce_key: tuple[str, str] | None = None
        # Row keys and their positions, rebuilt lazily once per version: the table asks
        # for every visible row's pair on each paint, and a scan of 10,000 pairs per row
        # made a filter keystroke visibly slow.
        self._keys_version = -1
        self._keys: dict[int, str] = {}
        self._positions: dict[str, int] = {}

    @classmethod
    def open(cls, path: Path) -> PairsSession:
        return cls(load_pairs(path))

    # Reading ---------------------------------------------------------------------------
    @property
    def pairs(self) -> list[Pair]:
        return self.pair_file.pairs

    @property
    def path(self) -> Path:
        return self.pair_file.path

    @property
    def dirty(self) -> bool:
        return self.version != self.saved_version

    def get(self, key: str | None) -> Pair | None:
        """The pair with this row key (see `row_keys`), or None."""
        index = self.index(key) if key is not None else None
        return self.pairs[index] if index is not None else None

    def index(self, key: str) -> int | None:
        return self._key_index()[1].get(key)

    def row_keys(self) -> dict[int, str]:
        """A unique key per pair object (`id(pair)` → key): the pair's id, and for the 2nd,
        3rd … pair sharing an id (a validation error the writer must be able to reach and
        fix) `id␀1`, `id␀2` …"""
        return self._key_index()[0]

    def _key_index(self) -> tuple[dict[int, str], dict[str, int]]:
        if self._keys_version != self.version:
            seen: dict[str, int] = {}
            keys: dict[int, str] = {}
            positions: dict[str, int] = {}
            for position, pair in enumerate(self.pairs):
                count = seen.get(pair.id, 0)
                seen[pair.id] = count + 1
                key = pair.id if count == 0 else f"{pair.id}{DUPLICATE_MARK}{count}"
                keys[id(pair)] = key
                positions[key] = position
            self._keys, self._positions, self._keys_version = keys, positions, self.version
        return self._keys, self._positions

    def key_at_line(self, line: int, pair_id: str) -> str | None:
        """The row key of the pair on this line of the file (falling back to the id)."""
        keys = self.row_keys()
        for pair, number in zip(self.pairs, self.pair_file.lines(), strict=True):
            if number == line and pair.id == pair_id:
                return keys[id(pair)]
        return pair_id if self.get(pair_id) is not None else None

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    # Commands --------------------------------------------------------------------------
    def _record(self, label: str, selected: str | None, coalesce: tuple[str, str] | None = None) -> None:
        """Remember the state before a change (unless it continues the previous edit)."""
        if coalesce is None or coalesce != self._coalesce_key or not self._undo:
            self._undo.append(Snapshot(tuple(self.pairs), selected, label))
            del self._undo[:-UNDO_LIMIT]
        self._coalesce_key = coalesce
        self._redo.clear()

    def _changed(self) -> None:
        self.version += 1

    def break_coalescing(self) -> None:
        """The next edit starts a new undo step (called when the selection moves)."""
        self._coalesce_key = None

    def edit(self, pair_id: str, **fields) -> Pair | None:
        """Change fields of one pair (prompt, response, tags, notes, split …)."""
        index = self.index(pair_id)
        if index is None:
            return None
        old = self.pairs[index]
        changes = {name: value for name, value in fields.items() if getattr(old, name) != value}
        if not changes:
            return old
        coalesce = (pair_id, next(iter(changes))) if len(changes) == 1 and set(changes) <= {"prompt", "response", "notes", "tags"} else None
        label = f"edit {', '.join(changes)} of {old.id}"
        self._record(label, pair_id, coalesce)
        new = dataclasses.replace(old, **changes)
        self.pairs[index] = new
        current = self._keys_version == self.version
        self._changed()
        if current and "id" not in changes:  # same key, same place: patch rather than rebuild
            self._keys[id(new)] = self._keys.pop(id(old))
            self._keys_version = self.version
        return new

    def add_new(self, after: str | None) -> Pair:
        """A new empty manual pair, placed after the selected one (or at the end)."""
        pair = Pair(id=new_id((pair.id for pair in self.pairs), prefix="manual"), prompt="", response="")
        self._insert(pair, after, f"new pair {pair.id}")
        return pair

    def duplicate(self, pair_id: str) -> Pair | None:
        original = self.get(pair_id)
        if original is None:
            return None
        copy = duplicate_pair(original, (pair.id for pair in self.pairs))
        self._insert(copy, pair_id, f"duplicate {original.id} as {copy.id}")
        return copy

    def _insert(self, pair: Pair, after: str | None, label: str) -> None:
        self._record(label, after)
        index = self.index(after) if after is not None else None
        self.pairs.insert(len(self.pairs) if index is None else index + 1, pair)
        self._changed()

    def delete(self, pair_id: str) -> str | None:
        """Remove a pair; returns the id that should be selected next."""
        index = self.index(pair_id)
        if index is None:
            return None
        self._record(f"delete {self.pairs[index].id}", pair_id)
        del self.pairs[index]
        self._changed()
        if not self.pairs:
            return None
        return self.row_keys()[id(self.pairs[min(index, len(self.pairs) - 1)])]

    def set_split(self, pair_id: str, split: str) -> bool:
        """Move a pair to train or val; False when it was already there."""
        pair = self.get(pair_id)
        if pair is None or pair.split == split:
            return False
        self.edit(pair_id, split=split)
        self.break_coalescing()
        return True

    def undo(self, selected: str | None) -> Snapshot | None:
        """Go back one step; returns the step (its `selected` is where the cursor goes)."""
        return self._travel(self._undo, self._redo, selected)

    def redo(self, selected: str | None) -> Snapshot | None:
        return self._travel(self._redo, self._undo, selected)

    def _travel(self, source: list[Snapshot], target: list[Snapshot], selected: str | None) -> Snapshot | None:
        if not source:
            return None
        step = source.pop()
        target.append(Snapshot(tuple(self.pairs), selected, step.label))
        self.pair_file.pairs[:] = step.pairs
        self._coalesce_key = None
        self._changed()
        return step

    # Disk ------------------------------------------------------------------------------
    def save(self, path: Path | None = None, *, force: bool = False) -> None:
        """Write to disk (raises engine.curate.pairs.SaveConflict; the caller asks the user)."""
        version = self.version
        save_pairs(self.pair_file, path, force=force)
        self.saved_version = version
        self._coalesce_key = None

    def reload(self) -> None:
        """Read the file again, dropping in-memory edits and history (callers rescue edits first)."""
        self.pair_file = load_pairs(self.pair_file.path)
        self._undo.clear()
        self._redo.clear()
        self._coalesce_key = None
        self.version += 1
        self.saved_version = self.version

    def replace_all(self, pairs: list[Pair], label: str, selected: str | None) -> None:
        """Swap in a whole new list of pairs (after ingest), as one undoable step."""
        self._record(label, selected)
        self.pair_file.pairs[:] = pairs
        self._changed()


def unique_path(path: Path, exists: Callable[[Path], bool] = Path.exists) -> Path:
    """`path` itself when free, else `name.1.ext`, `name.2.ext` …; used for rescue copies."""
    if not exists(path):
        return path
    number = 1
    while True:
        candidate = path.with_name(f"{path.stem}.{number}{path.suffix}")
        if not exists(candidate):
            return candidate
        number += 1
