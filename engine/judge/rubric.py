"""The rubric: criteria scored on a small integer scale, plus yes/no flags.

`data/rubric.toml` is the default; `seed_rubric(db, path)` copies it into the store the
first time (when the store has no criteria yet). After that the store is the truth and
the rubric editor changes it with `add_criterion`, `edit_criterion`, `retire_criterion`
and `restore_criterion`. Retiring hides a criterion from new sessions; its past ratings
stay and still appear in reports.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from engine.judge.store import now
from engine.settings import EntryError, load_entries, require, where

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_-]*$")
# Letters the Judge screen already uses while rating with the rubric; a flag on one of
# them would never toggle (tests/tui/test_judge.py keeps this list true to the screen).
JUDGE_RUBRIC_KEYS = {"j": "next item", "k": "previous item", "s": "skip", "n": "note"}


class RubricError(EntryError):
    """A rubric file or edit is invalid; the message says where and what to do."""


@dataclasses.dataclass(frozen=True)
class Criterion:
    name: str  # short id, lower-case ("voice")
    description: str
    scale_min: int = 1
    scale_max: int = 5
    anchors: dict[int, str] = dataclasses.field(default_factory=dict)  # score -> what it means
    retired: bool = False
    id: int | None = None  # row id once stored

    @property
    def scores(self) -> range:
        return range(self.scale_min, self.scale_max + 1)


@dataclasses.dataclass(frozen=True)
class Flag:
    name: str  # degenerate | refusal | wrong-language | memorised …
    key: str  # the letter that toggles it on the Judge screen
    description: str = ""
    retired: bool = False


@dataclasses.dataclass(frozen=True)
class Rubric:
    criteria: list[Criterion]
    flags: list[Flag]


def load_rubric(path: str | Path) -> Rubric:
    """Parse a rubric TOML file; RubricError names the file, line and entry on a problem."""
    criteria = []
    try:
        entries = load_entries(path, "criterion")
        flag_entries = load_entries(path, "flag")
    except EntryError as error:
        raise RubricError(str(error)) from None
    for index, (line, entry) in enumerate(entries):
        try:
            name = require(path, line, "criterion", entry, index, "name", str)
            description = require(path, line, "criterion", entry, index, "description", str)
            scale = entry.get("scale", [1, 5])
            anchors = entry.get("anchors", {})
            criteria.append(_checked_criterion(name, description, scale, anchors,
                                               where(path, line, "criterion", entry, index)))
        except EntryError as error:
            raise RubricError(str(error)) from None
    flags = []
    for index, (line, entry) in enumerate(flag_entries):
        try:
            name = require(path, line, "flag", entry, index, "name", str)
            key = require(path, line, "flag", entry, index, "key", str)
        except EntryError as error:
            raise RubricError(str(error)) from None
        if len(key) != 1 or not key.isalpha():
            raise RubricError(f"{where(path, line, 'flag', entry, index)}: `key` must be one letter, got {key!r}.")
        if key.lower() in JUDGE_RUBRIC_KEYS:
            taken = {flag.key for flag in flags} | set(JUDGE_RUBRIC_KEYS)
            free = " ".join(letter for letter in "abcdefghilmopqrtuvwxyz" if letter not in taken)
            raise RubricError(f"{where(path, line, 'flag', entry, index)}: key {key!r} is the Judge screen's "
                              f"{JUDGE_RUBRIC_KEYS[key.lower()]} key; pick another letter (free: {free}).")
        flags.append(Flag(name=name, key=key.lower(), description=str(entry.get("description", ""))))
    _check_unique([c.name for c in criteria], path, "criterion names")
    _check_unique([f.name for f in flags], path, "flag names")
    _check_unique([f.key for f in flags], path, "flag keys")
    return Rubric(criteria=criteria, flags=flags)


def _checked_criterion(name: str, description: str, scale: Any, anchors: Any, context: str) -> Criterion:
    if not NAME_PATTERN.match(name):
        raise RubricError(f"{context}: name {name!r} must be lower-case letters, digits, - or _.")
    if (not isinstance(scale, (list, tuple)) or len(scale) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in scale)
            or scale[0] >= scale[1] or scale[1] - scale[0] > 9):
        raise RubricError(
            f"{context}: `scale` must be [low, high] integers with low < high and at most 10 "
            f"scores (one number key each), got {scale!r}."
        )
    if not isinstance(anchors, dict):
        raise RubricError(f"{context}: `anchors` must be a table like {{ 1 = \"…\", 5 = \"…\" }}.")
    parsed: dict[int, str] = {}
    for key, text in anchors.items():
        try:
            score = int(key)
        except (TypeError, ValueError):
            raise RubricError(f"{context}: anchor key {key!r} is not a score number.") from None
        if not scale[0] <= score <= scale[1]:
            raise RubricError(f"{context}: anchor {score} is outside the scale {scale[0]}–{scale[1]}.")
        parsed[score] = str(text)
    return Criterion(name=name, description=description, scale_min=scale[0], scale_max=scale[1],
                     anchors=dict(sorted(parsed.items())))


def _check_unique(values: list[str], path: str | Path, what: str) -> None:
    seen = set()
    for value in values:
        if value in seen:
            raise RubricError(f"{path}: {what} must be unique; {value!r} appears twice.")
        seen.add(value)


# Store -------------------------------------------------------------------------------------
def seed_rubric(db: Database, path: str | Path) -> bool:
    """Copy the rubric file into an empty store; returns True when it seeded."""
    if db["criteria"].count or not Path(path).exists():
        return False
    rubric = load_rubric(path)
    with db.atomic():
        for position, criterion in enumerate(rubric.criteria):
            _insert_criterion(db, criterion, position)
        for flag in rubric.flags:
            db["flags"].insert({"name": flag.name, "key": flag.key, "description": flag.description, "retired": 0})
    return True


def _insert_criterion(db: Database, criterion: Criterion, position: int) -> int:
    stamp = now()
    return db["criteria"].insert({
        "name": criterion.name, "description": criterion.description,
        "scale_min": criterion.scale_min, "scale_max": criterion.scale_max,
        "anchors_json": json.dumps({str(k): v for k, v in criterion.anchors.items()}),
        "retired": int(criterion.retired), "position": position,
        "created_at": stamp, "updated_at": stamp,
    }).last_pk


def _row_to_criterion(row: dict[str, Any]) -> Criterion:
    anchors = {int(k): v for k, v in json.loads(row["anchors_json"] or "{}").items()}
    return Criterion(name=row["name"], description=row["description"] or "", scale_min=row["scale_min"],
                     scale_max=row["scale_max"], anchors=anchors, retired=bool(row["retired"]), id=row["id"])


def criteria(db: Database, *, include_retired: bool = False) -> list[Criterion]:
    """Criteria in display order; retired ones only when asked (reports ask)."""
    where_sql = "" if include_retired else "where retired = 0"
    return [_row_to_criterion(row) for row in db.query(f"select * from criteria {where_sql} order by position, id")]


def criterion(db: Database, name: str) -> Criterion:
    row = next(db.query("select * from criteria where name = ?", [name]), None)
    if row is None:
        known = ", ".join(c.name for c in criteria(db, include_retired=True)) or "none yet"
        raise RubricError(f"no criterion named {name!r} in the store (known: {known}).")
    return _row_to_criterion(row)


def flags(db: Database, *, include_retired: bool = False) -> list[Flag]:
    where_sql = "" if include_retired else "where retired = 0"
    return [Flag(name=row["name"], key=row["key"], description=row["description"] or "", retired=bool(row["retired"]))
            for row in db.query(f"select * from flags {where_sql} order by id")]


def add_criterion(db: Database, name: str, description: str, scale: tuple[int, int] = (1, 5),
                  anchors: dict[int, str] | None = None) -> Criterion:
    """Add a new criterion at the end of the list."""
    checked = _checked_criterion(name, description, list(scale), anchors or {}, f"criterion {name!r}")
    if db["criteria"].count_where("name = ?", [name]):
        raise RubricError(f"criterion {name!r} already exists; edit it, or restore it if it was retired.")
    position = next(db.query("select coalesce(max(position), -1) + 1 as p from criteria"))["p"]
    _insert_criterion(db, checked, position)
    return criterion(db, name)


def edit_criterion(db: Database, name: str, *, description: str | None = None,
                   anchors: dict[int, str] | None = None, scale: tuple[int, int] | None = None) -> Criterion:
    """Change a criterion's wording or anchors. The scale can only change before it has
    ratings, because old scores on another scale would no longer mean the same thing."""
    current = criterion(db, name)
    new_scale = list(scale) if scale is not None else [current.scale_min, current.scale_max]
    if scale is not None and tuple(scale) != (current.scale_min, current.scale_max):
        if db["rating_scores"].count_where("criterion_id = ?", [current.id]):
            raise RubricError(
                f"criterion {name!r} already has ratings on {current.scale_min}–{current.scale_max}; "
                "add a new criterion for the new scale and retire this one."
            )
    checked = _checked_criterion(name, description if description is not None else current.description,
                                 new_scale, anchors if anchors is not None else current.anchors,
                                 f"criterion {name!r}")
    db["criteria"].update(current.id, {
        "description": checked.description, "scale_min": checked.scale_min, "scale_max": checked.scale_max,
        "anchors_json": json.dumps({str(k): v for k, v in checked.anchors.items()}), "updated_at": now(),
    })
    return criterion(db, name)


def retire_criterion(db: Database, name: str) -> Criterion:
    """Hide from new sessions; existing ratings are kept and reported."""
    current = criterion(db, name)
    db["criteria"].update(current.id, {"retired": 1, "updated_at": now()})
    return criterion(db, name)


def restore_criterion(db: Database, name: str) -> Criterion:
    current = criterion(db, name)
    db["criteria"].update(current.id, {"retired": 0, "updated_at": now()})
    return criterion(db, name)
