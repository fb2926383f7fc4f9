"""Read the `[[table]]` entries of a workspace TOML file (canaries, rubric) with the line
each one starts on, so errors can say "data/canaries.toml:12: canary 'river-short': …".
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any


class EntryError(ValueError):
    """A TOML file or one of its entries is unusable; the message names file, line and entry."""


def load_entries(path: str | Path, table: str) -> list[tuple[int, dict[str, Any]]]:
    """Each `[[table]]` entry as (line number of its header, its keys)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise EntryError(f"{path}: file not found. Create it (see the README for its format).") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise EntryError(f"{path}: {error}. Fix the TOML syntax and try again.") from error
    entries = data.get(table, [])
    if not isinstance(entries, list):
        raise EntryError(f"{path}: `{table}` must be an array of tables written as [[{table}]].")
    header = re.compile(rf"^\s*\[\[\s*{re.escape(table)}\s*\]\]")
    lines = [number for number, line in enumerate(text.splitlines(), start=1) if header.match(line)]
    # Inline arrays (`canary = [{…}]`) have no header lines; fall back to line 1.
    lines += [1] * (len(entries) - len(lines))
    return list(zip(lines, entries))


def where(path: str | Path, line: int, table: str, entry: dict[str, Any], index: int) -> str:
    """The prefix of an error about one entry."""
    name = entry.get("id") or entry.get("name")
    label = f"{table} {name!r}" if name else f"{table} #{index + 1}"
    return f"{path}:{line}: {label}"


def require(path: str | Path, line: int, table: str, entry: dict[str, Any], index: int,
            key: str, kind: type | tuple[type, ...]) -> Any:
    """entry[key], checked for presence and type, or an EntryError that says what to write."""
    if key not in entry:
        raise EntryError(f"{where(path, line, table, entry, index)}: missing `{key}`. Add it to the entry.")
    value = entry[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise EntryError(
            f"{where(path, line, table, entry, index)}: `{key}` must be a {names}, got {value!r}."
        )
    return value
