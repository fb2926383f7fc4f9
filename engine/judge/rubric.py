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
from engine.settings import Key, SettingsError, SettingsFile, Table, TableArray, read_settings

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_-]*$")
# Letters the Judge screen already uses while rating with the rubric; a flag on one of
# them would never toggle (tests/tui/test_judge.py keeps this list true to the screen).
JUDGE_RUBRIC_KEYS = {"j": "next item", "k": "previous item", "s": "skip", "n": "note"}


class RubricError(SettingsError):
    """A rubric file or edit is invalid; the message says where and what to do."""


RUBRIC_SCHEMA = {
    "criterion": TableArray(Table({
        "name": Key("str", required=True, doc="short lower-case id"),
        "description": Key("str", required=True, doc="what the rater judges"),
        "scale": Key("int list", doc="[low, high], at most 10 scores (default [1, 5])"),
        "anchors": Key("table", doc="score = what it means"),
    })),
    "flag": TableArray(Table({
        "name": Key("str", required=True), "key": Key("str", required=True, doc="one letter on the Judge screen"),
        "description": Key("str"),
    })),
}


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
    settings = read_settings(path, RUBRIC_SCHEMA, error_type=RubricError)
    criteria = []
    for key_path, entry in settings.entries("criterion"):
        criteria.append(_checked_criterion(entry["name"], entry["description"], entry.get("scale", [1, 5]),
                                           entry.get("anchors", {}), settings, key_path))
    flags: list[Flag] = []
    for key_path, entry in settings.entries("flag"):
        key = entry["key"]
        if len(key) != 1 or not key.isalpha():
            raise settings.error((*key_path, "key"), f"must be one letter, got {key!r}", "Pick a letter a–z")
        if key.lower() in JUDGE_RUBRIC_KEYS:
            taken = {flag.key for flag in flags} | set(JUDGE_RUBRIC_KEYS)
            free = " ".join(letter for letter in "abcdefghilmopqrtuvwxyz" if letter not in taken)
            raise settings.error((*key_path, "key"), f"{key!r} is the Judge screen's "
                                 f"{JUDGE_RUBRIC_KEYS[key.lower()]} key", f"Pick another letter (free: {free})")
        flags.append(Flag(name=entry["name"], key=key.lower(), description=entry.get("description", "")))
    _check_unique(settings, "criterion", "name")
    _check_unique(settings, "flag", "name")
    _check_unique(settings, "flag", "key", str.lower)
    return Rubric(criteria=criteria, flags=flags)


def _checked_criterion(name: str, description: str, scale: Any, anchors: Any,
                       settings: SettingsFile | None = None, key_path: tuple = ()) -> Criterion:
    """A valid Criterion or a RubricError: at its file line when read from a file, else naming it."""

    def problem(key: str, what: str, advice: str = "") -> RubricError:
        if settings is not None:
            return settings.error((*key_path, key), what, advice)  # type: ignore[return-value]
        sentence = f"criterion {name!r}: {key}: {what.rstrip('.')}."
        return RubricError(sentence + (f" {advice.rstrip('.')}." if advice else ""), key=key)

    if not NAME_PATTERN.match(name):
        raise problem("name", f"{name!r} must be lower-case letters, digits, - or _", "Rename it, e.g. \"voice\"")
    if (not isinstance(scale, (list, tuple)) or len(scale) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in scale)
            or scale[0] >= scale[1] or scale[1] - scale[0] > 9):
        raise problem("scale", f"must be [low, high] integers with low < high and at most 10 "
                      f"scores (one number key each), got {scale!r}", "Write e.g. scale = [1, 5]")
    if not isinstance(anchors, dict):
        raise problem("anchors", "must be a table", "Write e.g. anchors = { 1 = \"…\", 5 = \"…\" }")
    parsed: dict[int, str] = {}
    for key, text in anchors.items():
        try:
            score = int(key)
        except (TypeError, ValueError):
            raise problem("anchors", f"key {key!r} is not a score number", "Key each anchor by its score") from None
        if not scale[0] <= score <= scale[1]:
            raise problem("anchors", f"anchor {score} is outside the scale {scale[0]}–{scale[1]}",
                          "Remove it or widen the scale")
        if not isinstance(text, str):
            raise problem("anchors", f"anchor {score} must be a string, got {text!r}", "Put the sentence in quotes")
        parsed[score] = text
    return Criterion(name=name, description=description, scale_min=scale[0], scale_max=scale[1],
                     anchors=dict(sorted(parsed.items())))


def _check_unique(settings: SettingsFile, table: str, key: str, normal=lambda value: value) -> None:
    seen: dict[str, int] = {}
    for key_path, entry in settings.entries(table):
        value = normal(entry[key])
        if value in seen:
            raise settings.error((*key_path, key), f"{table} {key}s must be unique; {value!r} is already used "
                                 f"on line {seen[value]}", "Change one of them")
        seen[value] = settings.line(*key_path, key)


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
    checked = _checked_criterion(name, description, list(scale), anchors or {})
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
                                 new_scale, anchors if anchors is not None else current.anchors)
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
