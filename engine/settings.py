"""The one reader of the workspace's settings files (voicebench.toml, rubric.toml, canaries.toml).

    schema = {"sampler": Table({"steps": Key("int", minimum=1)})}
    settings = read_settings("voicebench.toml", schema)      # SettingsError on any problem
    settings.data["sampler"]["steps"]; settings.line("sampler", "steps")

`read_settings` decodes the file (invalid UTF-8 is an error naming the line), parses the
TOML (a syntax error names the line), maps every key to the line it is written on, and
checks the data against a small declarative schema: each table's keys, their kinds (a
string where a boolean belongs is an error, and a boolean is never a number), ranges and
choices, required keys, and unknown keys or tables with a "did you mean" when one is close.
Every problem is one `SettingsError` carrying file, line and key, with a message of the
shape "file:line: key: what is wrong. What to do." Callers add checks the schema cannot
express (unique ids, a scale's anchors) with `SettingsFile.error(...)`, so those read the same.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

KeyPath = tuple[str | int, ...]


class SettingsError(ValueError):
    """A settings file is unusable. `path`, `line` and `key` say where (any may be None when
    the problem has no place in a file); the message says what is wrong and what to do."""

    def __init__(self, message: str, *, path: str | Path | None = None, line: int | None = None,
                 key: str | None = None) -> None:
        super().__init__(message)
        self.path = None if path is None else str(path)
        self.line = line
        self.key = key


# Kept for callers that subclass the old name.
EntryError = SettingsError


# Schema ------------------------------------------------------------------------------------

KINDS = {
    "bool": "true or false",
    "int": "a whole number",
    "float": "a number",
    "str": "a string in quotes",
    "str list": "a list of strings, like [\"a\", \"b\"]",
    "int list": "a list of whole numbers, like [1, 5]",
    "table": "a table, like { 1 = \"…\" }",
    "any": "any value",
}


@dataclasses.dataclass(frozen=True)
class Key:
    """One setting: its kind (a name in KINDS), its limits, and a line for the README."""

    kind: str
    minimum: float | None = None  # inclusive
    maximum: float | None = None  # inclusive
    above: float | None = None  # exclusive lower limit (a positive number: above=0)
    choices: tuple[str, ...] | None = None
    required: bool = False
    doc: str = ""


@dataclasses.dataclass(frozen=True)
class Table:
    """A table with known keys, or (with `any_key`) one whose keys are free names with values of one kind."""

    keys: Mapping[str, Key] = dataclasses.field(default_factory=dict)
    any_key: Key | None = None
    doc: str = ""


@dataclasses.dataclass(frozen=True)
class TableArray:
    """`[[name]]` entries, each a `Table`."""

    entry: Table
    doc: str = ""


@dataclasses.dataclass(frozen=True)
class NamedTables:
    """`[name.NAME]` tables, one per free NAME, each a `Table` (e.g. [models.demo-ar])."""

    entry: Table
    doc: str = ""


Schema = Mapping[str, "Table | TableArray | NamedTables"]


# The reader --------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class SettingsFile:
    """A checked settings file: its data, and the line every key was written on."""

    path: Path
    data: dict[str, Any]
    lines: dict[KeyPath, int]
    error_type: type[SettingsError] = SettingsError

    def line(self, *key_path: str | int) -> int:
        """The line of a key, or of its nearest enclosing table; 1 when nothing is written."""
        path = tuple(key_path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return 1

    def error(self, key_path: KeyPath, problem: str, advice: str = "") -> SettingsError:
        """A SettingsError (of this file's error type) at a key: "file:line: key: problem. advice"."""
        return make_error(self.error_type, self.path, self.line(*key_path), key_label(self.data, key_path),
                          problem, advice)

    def entries(self, table: str) -> list[tuple[KeyPath, dict[str, Any]]]:
        """The `[[table]]` entries as (key path, entry), for callers' own checks."""
        return [((table, index), entry) for index, entry in enumerate(self.data.get(table, []))]


def make_error(error_type: type[SettingsError], path: str | Path, line: int | None, key: str | None,
               problem: str, advice: str = "") -> SettingsError:
    where = f"{path}:{line}" if line else str(path)
    sentence = problem.rstrip(".") + "."
    message = f"{where}: {key}: {sentence}" if key else f"{where}: {sentence}"
    if advice:
        message += " " + (advice if advice.endswith(("?", "!", ".")) else advice + ".")
    return error_type(message, path=path, line=line, key=key)


def key_label(data: Mapping[str, Any], key_path: KeyPath) -> str:
    """How a message names a key: `[models.mine] path`, `canary 'river-short'`, `scale` of a criterion…"""
    if not key_path:
        return ""
    head, rest = key_path[0], key_path[1:]
    if rest and isinstance(rest[0], int):  # an entry of [[head]]
        index = rest[0]
        entries = data.get(head, [])
        entry = entries[index] if isinstance(entries, list) and index < len(entries) else {}
        name = entry.get("id") or entry.get("name") if isinstance(entry, dict) else None
        label = f"{head} {name!r}" if isinstance(name, str) and name else f"{head} #{index + 1}"
        inner = ".".join(str(part) for part in rest[1:])
        return f"{label}: {inner}" if inner else label
    value: Any = data
    for part in key_path:
        value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, dict):
        return "[" + ".".join(str(part) for part in key_path) + "]"
    if len(key_path) == 1:
        return str(head)
    table = ".".join(str(part) for part in key_path[:-1])
    return f"[{table}] {key_path[-1]}"


def read_settings(path: str | Path, schema: Schema, *, error_type: type[SettingsError] = SettingsError,
                  what_is_it: str = "") -> SettingsFile:
    """Read, parse and check one settings file. Raises `error_type` (a SettingsError) on any problem;
    `what_is_it` finishes the "file not found" advice."""
    settings = read_toml(path, error_type=error_type, what_is_it=what_is_it)
    _check_file(settings, schema)
    return settings


def read_toml(path: str | Path, *, error_type: type[SettingsError] = SettingsError,
              what_is_it: str = "") -> SettingsFile:
    """Read and parse a TOML file, keeping each key's line, without checking its keys (a caller
    with its own checks, such as a run's config.toml). Raises `error_type` naming file and line."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise make_error(error_type, path, None, None, "file not found",
                         what_is_it or "Create it (see the README for its format)") from None
    except IsADirectoryError:
        raise make_error(error_type, path, None, None, "is a folder, not a settings file",
                         "Move the folder away or point to the file") from None
    except OSError as error:
        raise make_error(error_type, path, None, None, f"cannot read ({error.strerror or error})",
                         "Check its permissions") from None
    text = _decoded(raw, path, error_type)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        line = _decode_error_line(error)
        problem = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", str(error))
        raise make_error(error_type, path, line, None, f"not valid TOML ({problem})",
                         "Fix the TOML syntax and try again") from None
    except (RecursionError, ValueError) as error:  # nesting too deep; an integer of thousands of digits
        what = "nested too deeply" if isinstance(error, RecursionError) else "holds a number too long to read"
        raise make_error(error_type, path, None, None, f"not usable TOML ({what})",
                         "Fix the file; settings need neither") from None
    return SettingsFile(path=path, data=data, lines=key_lines(text), error_type=error_type)


def _decoded(raw: bytes, path: Path, error_type: type[SettingsError]) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise make_error(error_type, path, line, None,
                         f"not UTF-8 text (byte 0x{raw[error.start]:02x})",
                         "Re-save the file as UTF-8") from None
    return text.removeprefix("\ufeff")


def _decode_error_line(error: tomllib.TOMLDecodeError) -> int | None:
    line = getattr(error, "lineno", None)  # Python 3.14 adds it
    if isinstance(line, int):
        return line
    found = re.search(r"at line (\d+)", str(error))
    return int(found.group(1)) if found else None


# Checking ----------------------------------------------------------------------------------

def did_you_mean(name: str, known: list[str] | set[str] | Mapping[str, Any]) -> str:
    """" Did you mean `scale`?" for a name close to a known one, else ""."""
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return f"Did you mean `{close[0]}`?" if close else ""


def _unknown(settings: SettingsFile, key_path: KeyPath, known: Mapping[str, Any], what: str) -> SettingsError:
    name = str(key_path[-1])
    hint = did_you_mean(name, known)
    allowed = ", ".join(sorted(known)) or "none"
    advice = f"{hint} Allowed: {allowed}" if hint else f"Remove it, or use one of: {allowed}"
    return settings.error(key_path, f"unknown {what}", advice)


def _check_file(settings: SettingsFile, schema: Schema) -> None:
    for name, value in settings.data.items():
        if name not in schema:
            what = "table" if isinstance(value, (dict, list)) else "key"
            raise _unknown(settings, (name,), schema, what)
        part = schema[name]
        if isinstance(part, TableArray):
            if not isinstance(value, list) or not all(isinstance(entry, dict) for entry in value):
                raise settings.error((name,), f"must be written as [[{name}]] tables",
                                     f"Start each entry with a [[{name}]] line")
            for index, entry in enumerate(value):
                _check_table(settings, (name, index), entry, part.entry)
        elif isinstance(part, NamedTables):
            if not isinstance(value, dict):
                raise settings.error((name,), f"must be tables written as [{name}.NAME]",
                                     f"Write e.g. [{name}.mine] and its keys below it")
            for entry_name, entry in value.items():
                if not isinstance(entry, dict):
                    raise settings.error((name, entry_name), f"must be a table written as [{name}.{entry_name}]",
                                         f"Put its keys under a [{name}.{entry_name}] line")
                _check_table(settings, (name, entry_name), entry, part.entry)
        else:
            if not isinstance(value, dict):
                raise settings.error((name,), f"must be a table written as [{name}]",
                                     f"Put its keys under a [{name}] line")
            _check_table(settings, (name,), value, part)


def _check_table(settings: SettingsFile, key_path: KeyPath, table: dict[str, Any], spec: Table) -> None:
    for key, value in table.items():  # unknown keys first: a misspelt key is also a missing one
        key_spec = spec.keys.get(key, spec.any_key)
        if key_spec is None:
            raise _unknown(settings, (*key_path, key), spec.keys, "key")
        problem = check_value(value, key_spec)
        if problem:
            raise settings.error((*key_path, key), problem[0], problem[1])
    for key, key_spec in spec.keys.items():
        if key_spec.required and key not in table:
            raise settings.error(key_path, f"missing `{key}`", f"Add `{key} = …` ({KINDS[key_spec.kind]})")


def check_value(value: Any, spec: Key) -> tuple[str, str] | None:
    """(what is wrong, what to do) when a value does not fit its Key, else None."""
    wanted = KINDS[spec.kind]
    if not _is_kind(value, spec.kind):
        got = f"{as_toml(value)} ({_kind_name(value)})"
        advice = f"Write {wanted}"
        if spec.kind in ("bool", "int", "float") and isinstance(value, str):
            advice += ", without quotes"
        return f"must be {wanted}, got {got}", advice
    if spec.kind in ("int", "float"):
        if isinstance(value, float) and not math.isfinite(value):
            return f"must be a finite number, got {as_toml(value)}", "Write an ordinary number"
        limits = _limits(spec)
        if ((spec.minimum is not None and value < spec.minimum)
                or (spec.maximum is not None and value > spec.maximum)
                or (spec.above is not None and value <= spec.above)):
            return f"must be {limits}, got {as_toml(value)}", "Change the number"
    if spec.choices is not None and value not in spec.choices:
        hint = did_you_mean(str(value), list(spec.choices))
        return (f"must be one of {', '.join(spec.choices)}, got {as_toml(value)}",
                hint or f"Write one of: {', '.join(as_toml(choice) for choice in spec.choices)}")
    return None


def as_toml(value: Any) -> str:
    """A value as it is written in the file (true, "text", 3.5), shortened for a message."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, float) and not math.isfinite(value):
        text = "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    elif isinstance(value, (dict, list)):
        text = "a table" if isinstance(value, dict) else "[" + ", ".join(as_toml(item) for item in value) + "]"
    else:
        text = str(value)
    return text if len(text) <= 60 else text[:59] + "…"


def _is_kind(value: Any, kind: str) -> bool:
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "str":
        return isinstance(value, str)
    if kind == "str list":
        return isinstance(value, list) and all(isinstance(item, str) for item in value)
    if kind == "int list":
        return isinstance(value, list) and all(_is_kind(item, "int") for item in value)
    if kind == "table":
        return isinstance(value, dict)
    if kind == "any":
        return True
    raise ValueError(f"unknown settings kind {kind!r}")


def _kind_name(value: Any) -> str:
    for kind, name in (("bool", "a boolean"), ("int", "a whole number"), ("float", "a number"),
                       ("str", "a string")):
        if _is_kind(value, kind):
            return name
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


def _limits(spec: Key) -> str:
    parts = []
    if spec.above is not None:
        parts.append(f"above {spec.above:g}")
    if spec.minimum is not None:
        parts.append(f"at least {spec.minimum:g}")
    if spec.maximum is not None:
        parts.append(f"at most {spec.maximum:g}")
    return " and ".join(parts)


def describe_key(spec: Key) -> str:
    """The kind and limits of a key in words (for the README's settings reference)."""
    text = {"bool": "boolean", "int": "integer", "float": "number", "str": "string",
            "str list": "list of strings", "int list": "list of integers", "table": "table",
            "any": "any value"}[spec.kind]
    limits = _limits(spec)
    if limits:
        text += f", {limits}"
    if spec.choices:
        text += ": one of " + ", ".join(spec.choices)
    return text


# Line numbers ------------------------------------------------------------------------------

_HEADER = re.compile(r"^\s*(\[\[?)(.*?)\]\]?\s*(#.*)?$")


def key_lines(text: str) -> dict[KeyPath, int]:
    """The line each table header and key is written on, keyed by its full path
    (("models", "mine", "path"), ("canary", 0, "id")). Keys inside inline tables and
    multi-line values take their parent key's line. Expects text tomllib has accepted."""
    lines: dict[KeyPath, int] = {}
    table: KeyPath = ()
    array_counts: dict[KeyPath, int] = {}
    state = _ScanState()
    for number, line in enumerate(text.splitlines(), start=1):
        if state.busy:
            state.scan(line)
            continue
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        header = _HEADER.match(line) if stripped.startswith("[") else None
        if header:
            parts = split_dotted(header.group(2))
            if header.group(1) == "[[":
                index = array_counts.get(tuple(parts), 0)
                array_counts[tuple(parts)] = index + 1
                table = (*_resolve(parts, array_counts), index)
            else:
                table = _resolve(parts, array_counts)
            lines.setdefault(table, number)
            for depth in range(1, len(table)):
                lines.setdefault(table[:depth], number)
            continue
        key_text, value_text = _split_assignment(line)
        if key_text is None:
            continue
        parts = split_dotted(key_text)
        for depth in range(1, len(parts) + 1):
            lines.setdefault((*table, *parts[:depth]), number)
        state.scan(value_text)
    return lines


def _resolve(parts: list[str], array_counts: dict[KeyPath, int]) -> KeyPath:
    """A header's path with the current index of every array of tables it passes through
    ([[criterion]] then [criterion.extra] → ("criterion", 0, "extra"))."""
    resolved: list[str | int] = []
    for depth, part in enumerate(parts, start=1):
        resolved.append(part)
        count = array_counts.get(tuple(parts[:depth]))
        if count and depth < len(parts):
            resolved.append(count - 1)
    return tuple(resolved)


def split_dotted(text: str) -> list[str]:
    """`a."b.c".d` → ["a", "b.c", "d"] (bare, "basic" and 'literal' key parts)."""
    parts: list[str] = []
    current = ""
    quote = ""
    index = 0
    while index < len(text):
        char = text[index]
        if quote:
            if char == "\\" and quote == '"' and index + 1 < len(text):
                current += text[index: index + 2]
                index += 2
                continue
            if char == quote:
                quote = ""
            else:
                current += char
        elif char in "\"'":
            quote = char
        elif char == ".":
            parts.append(current.strip())
            current = ""
        else:
            current += char
        index += 1
    parts.append(current.strip())
    return [_unescape(part) for part in parts]


def _unescape(part: str) -> str:
    if "\\" not in part:
        return part
    try:
        return part.encode("latin-1", "backslashreplace").decode("unicode_escape")
    except (UnicodeDecodeError, UnicodeEncodeError):
        return part


def _split_assignment(line: str) -> tuple[str | None, str]:
    """(key text, value text) of a `key = value` line, reading quoted key parts whole."""
    quote = ""
    for index, char in enumerate(line):
        if quote:
            if char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char == "=":
            return line[:index], line[index + 1:]
        elif char == "#":
            break
    return None, ""


class _ScanState:
    """Tracks multi-line strings and open brackets across lines, so lines inside a value
    are never taken for keys or headers."""

    def __init__(self) -> None:
        self.string = ""  # the open multi-line delimiter: '\"\"\"' or "'''"
        self.depth = 0  # open [ and { of a value

    @property
    def busy(self) -> bool:
        return bool(self.string) or self.depth > 0

    def scan(self, text: str) -> None:
        index = 0
        while index < len(text):
            if self.string:
                if self.string == '"""' and text[index] == "\\":
                    index += 2
                    continue
                if text.startswith(self.string, index):
                    index += 3
                    while index < len(text) and text[index] == self.string[0]:
                        index += 1  # up to two quotes may end the string's content
                    self.string = ""
                    continue
                index += 1
                continue
            char = text[index]
            if text.startswith('"""', index) or text.startswith("'''", index):
                self.string = text[index: index + 3]
                index += 3
                continue
            if char in "\"'":
                end = _string_end(text, index)
                index = end
                continue
            if char == "#":
                return
            if char in "[{":
                self.depth += 1
            elif char in "]}":
                self.depth -= 1
            index += 1


def _string_end(text: str, start: int) -> int:
    """The index after a one-line string starting at `start`."""
    quote = text[start]
    index = start + 1
    while index < len(text):
        if quote == '"' and text[index] == "\\":
            index += 2
            continue
        if text[index] == quote:
            return index + 1
        index += 1
    return index


# The writer's side ----------------------------------------------------------------------------

def toml_value(value: Any) -> str:
    """One value as TOML (run configs, presets): booleans, numbers, strings, lists of them.

    Strings go out as JSON strings, which are valid TOML basic strings with every control
    character escaped. Anything else is a TypeError.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    raise TypeError(f"cannot write {value!r} to TOML")
