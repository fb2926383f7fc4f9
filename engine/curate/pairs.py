"""Training pairs: the JSONL file, its records, validation, splitting and search.

One JSON object a line: `{"id", "prompt", "response", "source", "tier", "split", "tags",
"notes"}`; any other key is kept in `Pair.extra` and written back. Loading never drops
data: a line that cannot be read as a pair is kept verbatim as a `BadLine` and written
back on save: JSON that is nested too deep, numbers too long to convert, lone surrogate
escapes (`"\ud800"`, which no UTF-8 file can hold), NUL characters, lines that are not
objects and bytes that are not UTF-8 all become problem lines, so `load_pairs` never raises
on content. `iter_pairs_lines` is the same reader as a stream, for checks over files too big
to hold (`voicebench pairs validate` / `stats`).

Saving is atomic (temp file in the same folder, fsync, `os.replace`), keeps one backup
(`pairs.jsonl.bak`) and refuses to overwrite a file that changed on disk since it was
loaded (`SaveConflict`) unless forced. The check and the replace happen under an exclusive
`fcntl.flock` on `.<name>.lock` beside the file, so of two racing saves from the same
starting point one lands and the other gets SaveConflict, never a silent loss.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import functools
import hashlib
import json
import os
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

from engine.atomic import write_atomic
from engine.curate.duplicates import NEAR_DUPLICATE_JACCARD, find_duplicates, jaccard, normalise_text
from engine.curate.tokens import pair_overhead

__all__ = [
    "BadLine", "Fingerprint", "NEAR_DUPLICATE_JACCARD", "Pair", "PairFile", "PairsFileError",
    "FileReport", "Problem", "SaveConflict", "iter_pairs_lines", "lock_path", "validate_file", "duplicate_pair", "filter_pairs", "find_duplicates", "jaccard", "load_pairs", "new_id",
    "normalise_text", "pair_token_count", "save_pairs", "split_by_source", "validate",
]

KNOWN_KEYS = ("id", "prompt", "response", "source", "tier", "split", "tags", "notes")
TIERS = ("continuation", "thesis", "paragraph", "note", "manual")
SPLITS = ("train", "val")
BACKUP_SUFFIX = ".bak"

class SaveConflict(Exception):
    """The file on disk changed since it was loaded; reload it or save to another path."""


class PairsFileError(OSError):
    """The pairs path cannot be read as a file at all (a folder, no permission). An OSError,
    so callers that already handle unreadable files handle it; `str()` is the whole message."""


@dataclasses.dataclass(frozen=True)
class Pair:
    """One prompt/response training pair. Frozen: a change is a new pair
    (`dataclasses.replace`), so derived values such as `search_text` can be cached and
    an undo step is just the old list of references. Never mutate `tags` or `extra`."""

    id: str
    prompt: str
    response: str
    source: str = ""  # which essay/note it came from; the train/val split is by source
    tier: str = "manual"  # how it was made: continuation | thesis | paragraph | note | manual
    split: str = "train"  # train | val
    tags: list[str] = dataclasses.field(default_factory=list)
    notes: str = ""  # the writer's own remarks; never used for training
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)  # unknown keys, kept

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Pair:
        """Build a pair from a JSON object; raises ValueError naming the field at fault.

        A missing prompt or response loads as "" so the writer can fix it in the editor;
        `validate` reports it.
        """
        if not isinstance(record, Mapping):
            raise ValueError(f"expected a JSON object, got {_json_type(record)}")
        pair_id = record.get("id")
        if not isinstance(pair_id, str) or not pair_id.strip():
            raise ValueError("`id` must be a non-empty string" + ("" if "id" in record else " (missing)"))
        values: dict[str, Any] = {"id": pair_id}
        for name in ("prompt", "response", "source", "tier", "split", "notes"):
            if name not in record:
                continue
            value = record[name]
            if not isinstance(value, str):
                raise ValueError(f"`{name}` must be a string, got {_json_type(value)}")
            values[name] = value
        values.setdefault("prompt", "")
        values.setdefault("response", "")
        if "tags" in record:
            tags = record["tags"]
            if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
                raise ValueError(f"`tags` must be a list of strings, got {json.dumps(tags, ensure_ascii=False)[:60]}")
            values["tags"] = list(tags)
        values["extra"] = {key: value for key, value in record.items() if key not in KNOWN_KEYS}
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object: known keys in a fixed order, then unknown keys as loaded."""
        record: dict[str, Any] = {
            "id": self.id, "prompt": self.prompt, "response": self.response, "source": self.source,
            "tier": self.tier, "split": self.split, "tags": list(self.tags), "notes": self.notes,
        }
        for key, value in self.extra.items():
            if key not in record:
                record[key] = value
        return record

    @functools.cached_property
    def search_text(self) -> str:
        """Case-folded text `filter_pairs` searches, computed once per pair: a filter
        keystroke over 10,000 pairs then costs substring scans only."""
        return "\n".join((self.id, self.prompt, self.response, self.source, " ".join(self.tags), self.notes)).casefold()


@dataclasses.dataclass(frozen=True)
class BadLine:
    """A line that is not a usable pair; written back verbatim on save."""

    line: int  # 1-based line number in the file as loaded
    raw: str  # the line's text without its newline
    message: str  # what is wrong, e.g. "not valid JSON: Expecting ',' delimiter (column 17)"
    # Pairs before it in the file as loaded, so a save puts it back between the same pairs
    # even when blank lines (dropped on save) came before it. None: place it by `line`.
    pairs_before: int | None = dataclasses.field(default=None, compare=False)


@dataclasses.dataclass(frozen=True)
class Fingerprint:
    """What was on disk when a file was loaded or saved (content hash decides)."""

    size: int
    sha256: str

    @classmethod
    def of_bytes(cls, data: bytes) -> Fingerprint:
        return cls(size=len(data), sha256=hashlib.sha256(data).hexdigest())


@dataclasses.dataclass
class _Original:
    """A pair as it was read: its line, raw text and record, so unchanged pairs keep their bytes."""

    pair: Pair  # strong reference, so the id() key below can never be reused by another object
    line: int
    raw: str
    snapshot: tuple[Any, ...]  # _snapshot(pair) when read; a different value means "edited"


def _snapshot(pair: Pair) -> tuple[Any, ...]:
    return (pair.id, pair.prompt, pair.response, pair.source, pair.tier, pair.split, tuple(pair.tags),
            pair.notes, json.dumps(pair.extra, sort_keys=True) if pair.extra else "")


@dataclasses.dataclass(eq=False)
class PairFile:
    """A loaded pairs file: the pairs, the unreadable lines, and what was on disk."""

    path: Path
    pairs: list[Pair] = dataclasses.field(default_factory=list)
    bad_lines: list[BadLine] = dataclasses.field(default_factory=list)
    fingerprint: Fingerprint | None = None  # None: the file did not exist when loaded
    _originals: dict[int, _Original] = dataclasses.field(default_factory=dict, repr=False)
    _loaded_order: list[int] = dataclasses.field(default_factory=list, repr=False)  # id() of pairs as on disk
    _loaded_bad_lines: int = dataclasses.field(default=0, repr=False)

    def line_of(self, pair_id: str) -> int:
        """The 1-based line of the first pair with this id: where it sits on disk, or where
        the next save will put it for a pair that is new or was replaced. 0 if no such id."""
        for index, pair in enumerate(self.pairs):
            if pair.id == pair_id:
                return self.line_of_pair(pair, index)
        return 0

    def line_of_pair(self, pair: Pair, index: int | None = None) -> int:
        """The line of this very pair object (see `line_of`)."""
        original = self._originals.get(id(pair))
        if original is not None and original.pair is pair:
            return original.line
        if index is None:
            index = next((i for i, candidate in enumerate(self.pairs) if candidate is pair), len(self.pairs))
        return _layout_lines(len(self.pairs), self.bad_lines)[0][index] if index < len(self.pairs) else 0

    def lines(self) -> list[int]:
        """Line numbers of every pair, in list order (one pass, for validation)."""
        layout, _ = _layout_lines(len(self.pairs), self.bad_lines)
        result = []
        for index, pair in enumerate(self.pairs):
            original = self._originals.get(id(pair))
            result.append(original.line if original is not None and original.pair is pair else layout[index])
        return result

    def ids(self) -> set[str]:
        return {pair.id for pair in self.pairs}

    def is_modified(self) -> bool:
        """True when saving would write something different from what was loaded."""
        if [id(pair) for pair in self.pairs] != self._loaded_order or len(self.bad_lines) != self._loaded_bad_lines:
            return True  # added, removed, replaced or reordered
        return any(_snapshot(pair) != self._originals[id(pair)].snapshot for pair in self.pairs)

    def _render(self) -> str:
        """The file's text: pairs in order, bad lines back at their original line numbers."""
        pair_lines = []
        for pair in self.pairs:
            original = self._originals.get(id(pair))
            if original is not None and original.pair is pair and _snapshot(pair) == original.snapshot:
                pair_lines.append(original.raw)  # unchanged: keep its exact bytes
            else:
                pair_lines.append(json.dumps(pair.to_dict(), ensure_ascii=False))
        out = _merge_bad_lines(pair_lines, self.bad_lines, raw=True)
        return "".join(line + "\n" for line in out)


def _layout_lines(pair_count: int, bad_lines: list[BadLine]) -> tuple[list[int], list[int]]:
    """Line numbers (pairs, bad lines) that `_render` produces."""
    order = _merge_bad_lines(list(range(pair_count)), bad_lines)
    pair_lines = [0] * pair_count
    bad_numbers = []
    for number, item in enumerate(order, start=1):
        if isinstance(item, BadLine):
            bad_numbers.append(number)
        else:
            pair_lines[item] = number
    return pair_lines, bad_numbers


def _merge_bad_lines(items: list[Any], bad_lines: list[BadLine], *, raw: bool = False) -> list[Any]:
    """Insert bad lines (their raw text, or the BadLine) at their original line numbers,
    clamped to the end, so a file saved without edits keeps every line where it was."""
    if not bad_lines:
        return items
    merged = list(items)
    for inserted, bad in enumerate(sorted(bad_lines, key=lambda bad: bad.line)):
        position = bad.line - 1 if bad.pairs_before is None else bad.pairs_before + inserted
        merged.insert(min(position, len(merged)), bad.raw if raw else bad)
    return merged


def _json_type(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)


# Loading ---------------------------------------------------------------------------------

def load_pairs(path: str | Path) -> PairFile:
    """Read a pairs file. Never raises on bad content: unreadable lines become `BadLine`s.

    A missing file loads as an empty PairFile (fingerprint None). A path that cannot be
    read as a file (a folder, no permission) raises PairsFileError with what to do.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return PairFile(path=path)
    except OSError as error:
        raise PairsFileError(_unreadable_message(path, error)) from error
    pair_file = PairFile(path=path, fingerprint=Fingerprint.of_bytes(data))
    for number, raw, item in _read_lines(data.split(b"\n")):
        if isinstance(item, BadLine):
            pair_file.bad_lines.append(dataclasses.replace(item, pairs_before=len(pair_file.pairs)))
        else:
            pair_file.pairs.append(item)
            pair_file._originals[id(item)] = _Original(item, number, raw, _snapshot(item))
    pair_file._loaded_order = [id(pair) for pair in pair_file.pairs]
    pair_file._loaded_bad_lines = len(pair_file.bad_lines)
    return pair_file


def iter_pairs_lines(path: str | Path) -> Iterator[tuple[int, Pair | BadLine]]:
    """(line number, Pair or BadLine) for every non-blank line, read one line at a time:
    the same reader as `load_pairs`, in constant memory. Raises PairsFileError when the
    path cannot be read as a file (missing included: there is nothing to stream)."""
    path = Path(path)
    try:
        handle = path.open("rb")
    except OSError as error:
        raise PairsFileError(_unreadable_message(path, error)) from error
    with handle:
        try:
            for number, _, item in _read_lines(handle):
                yield number, item
        except OSError as error:
            raise PairsFileError(_unreadable_message(path, error)) from error


def _unreadable_message(path: Path, error: OSError) -> str:
    if isinstance(error, IsADirectoryError) or path.is_dir():
        return f"{path}: is a folder, not a pairs file; give the path of a .jsonl file (e.g. data/pairs.jsonl)"
    if isinstance(error, FileNotFoundError):
        return f"{path}: no such file. Run `voicebench ingest` to build pairs from your sources."
    if isinstance(error, PermissionError):
        return f"{path}: not allowed to read it; check the file's permissions"
    return f"{path}: cannot be read ({error.strerror or error})"


# JSON whitespace: a line holding only these is blank. str.strip() would also drop
# characters such as U+001C or U+2028, and with them a line we must keep as it is.
_JSON_WHITESPACE = " \t\r"


def _read_lines(lines: Iterable[bytes]) -> Iterator[tuple[int, str, Pair | BadLine]]:
    """(number, raw text, Pair or BadLine) for each non-blank line. Lines are split on
    b"\\n" only: str.splitlines() would also break inside a JSON string at U+2028, U+0085
    and friends, which json.dumps(ensure_ascii=False) leaves unescaped."""
    for number, line in enumerate(lines, start=1):
        line = line.removesuffix(b"\n").removesuffix(b"\r")
        try:
            raw = line.decode("utf-8")
        except UnicodeDecodeError:
            # Keep the bytes: surrogateescape writes them back exactly on save.
            raw = line.decode("utf-8", errors="surrogateescape")
            yield number, raw, BadLine(number, raw, "not UTF-8 text; re-save the file as UTF-8")
            continue
        if not raw.strip(_JSON_WHITESPACE):
            continue  # blank lines carry no data
        yield number, raw, _read_line(number, raw)


def _read_line(number: int, raw: str) -> Pair | BadLine:
    """One line as a Pair, or a BadLine saying what is wrong; never raises on content."""
    try:
        # A byte-order mark (editors put one at the start of a file) is read past but kept
        # in `raw`, so saving writes the line back exactly as it was.
        record = json.loads(raw.removeprefix("\ufeff"))
    except json.JSONDecodeError as error:
        return BadLine(number, raw, f"not valid JSON: {error.msg} (column {error.colno})")
    except RecursionError:
        return BadLine(number, raw, "JSON nested too deeply to read (lists or objects inside each other "
                                    "hundreds of levels down); a pair is one flat object")
    except ValueError as error:  # e.g. an integer longer than Python converts (4,300 digits)
        return BadLine(number, raw, f"cannot be read: {error}")
    if "\\u" in raw:  # only an escape can put a lone surrogate or a NUL into the text
        problem = _text_problem(record)
        if problem:
            return BadLine(number, raw, problem)
    try:
        pair = Pair.from_dict(record)
        if pair.extra:
            _snapshot(pair)  # serialises the unknown keys, as saving will
    except ValueError as error:
        return BadLine(number, raw, str(error))
    except RecursionError:  # a deep value under an unknown key, met when it is serialised
        return BadLine(number, raw, "JSON nested too deeply to keep; a pair is one flat object")
    return pair


def _text_problem(record: Any) -> str:
    """Why the strings in `record` are not text, or "". Iterative, so depth cannot recurse."""
    stack = [record]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, str):
            if "\x00" in value:
                return "holds a NUL character (\\u0000), which is not text; remove it"
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as error:
                code = ord(value[error.start])
                return (f"holds a lone surrogate (\\u{code:04x}), half of a character that is not "
                        "text; remove the escape or give the whole character")
    return ""


# Saving ----------------------------------------------------------------------------------

def save_pairs(pair_file: PairFile, path: str | Path | None = None, *, force: bool = False) -> PairFile:
    """Write the pairs atomically and return `pair_file`, now pointing at what is on disk.

    `path` saves to another file ("save as"); the PairFile then belongs to that path.
    Raises SaveConflict when the target changed on disk since it was loaded (or, for a
    save-as, already exists) — unless `force`. The previous content is kept as `<name>.bak`.
    """
    target = Path(path) if path is not None else pair_file.path
    same_file = _same_path(target, pair_file.path)
    text = pair_file._render()
    data = text.encode("utf-8", errors="surrogateescape")
    # Check and replace under one lock: a save racing this one waits, then sees our bytes
    # and refuses (SaveConflict) instead of overwriting them unseen.
    with _save_lock(target):
        current = _read_or_none(target)
        if not force:
            if same_file:
                on_disk = Fingerprint.of_bytes(current) if current is not None else None
                if on_disk != pair_file.fingerprint:
                    raise SaveConflict(
                        f"{target}: changed on disk since it was loaded; reload it, save to another "
                        "file, or save with force to overwrite the other change"
                    )
            elif current is not None:
                raise SaveConflict(f"{target}: already exists; choose another name or save with force to overwrite it")
        if current is not None and current != data:
            write_atomic(target.with_name(target.name + BACKUP_SUFFIX), current)
        write_atomic(target, data)
    lines, _ = _layout_lines(len(pair_file.pairs), pair_file.bad_lines)
    pair_file.bad_lines = _renumber_bad_lines(pair_file.bad_lines, len(pair_file.pairs))
    pair_file._originals = {}
    for pair, number, raw in zip(pair_file.pairs, lines, _pair_texts(text, lines), strict=True):
        pair_file._originals[id(pair)] = _Original(pair, number, raw, _snapshot(pair))
    pair_file.path = target
    pair_file.fingerprint = Fingerprint.of_bytes(data)
    pair_file._loaded_order = [id(pair) for pair in pair_file.pairs]
    pair_file._loaded_bad_lines = len(pair_file.bad_lines)
    return pair_file


def _pair_texts(text: str, lines: list[int]) -> list[str]:
    all_lines = text.split("\n")
    return [all_lines[number - 1] for number in lines]


def _renumber_bad_lines(bad_lines: list[BadLine], pair_count: int) -> list[BadLine]:
    _, numbers = _layout_lines(pair_count, bad_lines)
    ordered = sorted(bad_lines, key=lambda bad: bad.line)
    return [dataclasses.replace(bad, line=number, pairs_before=number - 1 - rank)
            for rank, (bad, number) in enumerate(zip(ordered, numbers, strict=True))]


def _same_path(first: Path, second: Path) -> bool:
    return os.path.abspath(first) == os.path.abspath(second)


def lock_path(path: str | Path) -> Path:
    """The lock file that save_pairs holds beside `path` (`.<name>.lock`, ignored by git)."""
    path = Path(path)
    return path.with_name(f".{path.name}.lock")


@contextlib.contextmanager
def _save_lock(target: Path) -> Iterator[None]:
    """An exclusive flock on the target's lock file, released when the block ends (or the
    process dies: the kernel drops flocks with the file descriptor)."""
    lock = lock_path(target)
    lock.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # closing releases the lock


def _read_or_none(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise PairsFileError(_unreadable_message(path, error)) from error


# Validation ------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Problem:
    """One thing wrong with a pairs file; `str()` is `path:line: message`."""

    path: str
    line: int
    pair_id: str | None  # None for a bad line
    field: str | None  # "prompt", "response", "id", "split", "tokens", … or None
    message: str
    severity: str = "error"  # error | warning

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


class TokenCounterLike(Protocol):
    def count(self, text: str) -> int: ...


CounterArg = TokenCounterLike | Callable[[str], int] | Mapping[str, Any] | None


def validate(
    pair_file: PairFile,
    budgets: Mapping[str, int] | None = None,
    counter: CounterArg = None,
) -> list[Problem]:
    """Everything wrong with the file, sorted by line.

    `budgets` maps a model name to its token budget; `counter` counts tokens — one counter
    (or a function) for every model, or a mapping model name → counter. Budgets without a
    counter for that model are skipped.
    """
    checks = _Checks(str(pair_file.path), budgets, counter, cache=True)
    for bad in pair_file.bad_lines:
        checks.bad_line(bad)
    pairs, lines = pair_file.pairs, pair_file.lines()
    for start in range(0, len(pairs), CHECK_CHUNK):
        checks.add(list(zip(lines[start:start + CHECK_CHUNK], pairs[start:start + CHECK_CHUNK], strict=True)))
    return checks.finish(lambda indices: {index: pairs[index] for index in indices})


@dataclasses.dataclass
class FileReport:
    """What `validate_file` found: the problems and the counts the CLI summarises."""

    problems: list[Problem]
    pairs: int
    splits: dict[str, int]
    bad_lines: int


def validate_file(
    path: str | Path,
    budgets: Mapping[str, int] | None = None,
    counter: CounterArg = None,
) -> FileReport:
    """`validate(load_pairs(path), …)` without holding the file: the pairs are read and
    checked a chunk at a time, keeping per pair only its id, line, split counts and the
    duplicate finder's hashes; the few near-duplicate candidates are re-read at the end.
    Same problems, same order. Raises PairsFileError when the file cannot be read, or
    changed while it was being checked."""
    path = Path(path)
    checks = _Checks(str(path), budgets, counter, cache=False)
    before = _stamp(path)
    chunk: list[tuple[int, Pair]] = []
    for number, item in iter_pairs_lines(path):
        if isinstance(item, BadLine):
            checks.bad_line(item)
            continue
        chunk.append((number, item))
        if len(chunk) == CHECK_CHUNK:
            checks.add(chunk)
            chunk = []
    if chunk:
        checks.add(chunk)

    def fetch(indices: list[int]) -> dict[int, Pair]:
        # Only the wanted lines are parsed again; the rest are skipped as bytes.
        wanted = {checks.lines[index]: index for index in indices}
        found: dict[int, Pair] = {}
        try:
            with path.open("rb") as handle:
                for number, line in enumerate(handle, start=1):
                    if number in wanted:
                        for _, _, item in _read_lines([line]):
                            if isinstance(item, Pair):
                                found[wanted[number]] = item
        except OSError as error:
            raise PairsFileError(_unreadable_message(path, error)) from error
        if _stamp(path) != before or len(found) != len(wanted):
            raise PairsFileError(f"{path}: changed while it was being checked; run the check again")
        return found

    problems = checks.finish(fetch)
    return FileReport(problems, len(checks.ids), dict(checks.splits), checks.bad_line_count)


def _stamp(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


# Pairs checked (and tokens counted, in one batch per tokenizer) at a time.
CHECK_CHUNK = 1000


class _Checks:
    """The checks of `validate`, fed pairs in file order a chunk at a time, so the same code
    serves a loaded file and a stream. Per pair it keeps only id, line and a few counts."""

    def __init__(self, path: str, budgets: Mapping[str, int] | None, counter: CounterArg, *, cache: bool):
        from engine.curate.duplicates import DuplicateFinder

        self.path = path
        self.problems: list[Problem] = []
        self.lines: list[int] = []
        self.ids: list[str] = []
        self.splits: Counter[str] = Counter()
        self.bad_line_count = 0
        self.first_line_of_id: dict[str, int] = {}
        # source -> split -> [pairs, index of its first pair], in order of first appearance
        self.sources: dict[str, dict[str, list[int]]] = {}
        self.finder = DuplicateFinder(cache=cache)
        # (model, budget, counts of a list of texts); models without a counter are skipped
        self.budgets = [(model, budget, count_many) for model, budget in (budgets or {}).items()
                        if (count_many := _batch_counter(counter, model)) is not None]

    def bad_line(self, bad: BadLine) -> None:
        self.bad_line_count += 1
        self.problems.append(Problem(self.path, bad.line, None, None, bad.message))

    def add(self, chunk: list[tuple[int, Pair]]) -> None:
        first_index = len(self.ids)
        for line, pair in chunk:
            index = len(self.ids)
            self.lines.append(line)
            self.ids.append(pair.id)
            self.splits[pair.split] += 1
            self._pair_problems(index, line, pair)
            if pair.source and pair.split in SPLITS:
                self.sources.setdefault(pair.source, {}).setdefault(pair.split, [0, index])[0] += 1
        pairs = [pair for _, pair in chunk]
        self.finder.add(pairs)
        if self.budgets:
            self._budget_problems(first_index, pairs)

    def _pair_problems(self, index: int, line: int, pair: Pair) -> None:
        def add(field: str | None, message: str) -> None:
            self.problems.append(Problem(self.path, line, pair.id, field, message))

        if not pair.prompt.strip():
            add("prompt", f"pair {pair.id!r}: prompt is missing or empty")
        if not pair.response.strip():
            add("response", f"pair {pair.id!r}: response is missing or empty")
        if pair.split not in SPLITS:
            add("split", f"pair {pair.id!r}: split must be 'train' or 'val', not {pair.split!r}")
        if pair.id in self.first_line_of_id:
            add("id", f"duplicate id {pair.id!r} (first on line {self.first_line_of_id[pair.id]})")
        else:
            self.first_line_of_id[pair.id] = line

    def _budget_problems(self, first_index: int, pairs: list[Pair]) -> None:
        counted: dict[int, list[int | None]] = {}  # one count per tokenizer, even when models share it
        for model, budget, count_many in self.budgets:
            owner = getattr(count_many, "__self__", count_many)
            if id(owner) not in counted:
                smallest = min(other for _, other, many in self.budgets
                               if getattr(many, "__self__", many) is owner)
                counted[id(owner)] = _pair_tokens(pairs, count_many, pair_overhead(owner),
                                                  smallest if getattr(owner, "at_most_bytes", False) else None)
            for offset, tokens in enumerate(counted[id(owner)]):
                if tokens is not None and tokens > budget:
                    pair = pairs[offset]
                    self.problems.append(Problem(
                        self.path, self.lines[first_index + offset], pair.id, "tokens",
                        f"pair {pair.id!r} is {tokens} tokens, over {model}'s budget of {budget}; "
                        "shorten it or truncate it at a sentence",
                    ))

    def finish(self, fetch: Callable[[list[int]], dict[int, Pair]]) -> list[Problem]:
        problems = self.problems
        lines, ids = self.lines, self.ids
        for source, splits in self.sources.items():
            # A source in both splits: reported once, on its first pair in the smaller split.
            if len(splits) < 2:
                continue
            (train, first_train), (val, first_val) = splits["train"], splits["val"]
            index = first_val if val <= train else first_train
            problems.append(Problem(
                self.path, lines[index], ids[index], "split",
                f"source {source!r} is in both splits ({train} train, {val} val pairs): "
                "move its pairs to one split so validation never sees training text",
            ))
        exact, near = self.finder.finish(fetch)
        problems.extend(
            Problem(self.path, lines[later], ids[later], None,
                    f"pair {ids[later]!r} has the same prompt and response as {ids[earlier]!r} "
                    f"(line {lines[earlier]}); delete one")
            for earlier, later in exact
        )
        problems.extend(
            Problem(self.path, lines[later], ids[later], None,
                    f"pair {ids[later]!r} is a near-duplicate of {ids[earlier]!r} "
                    f"(line {lines[earlier]}, {similarity:.0%} similar); keep one unless both are wanted",
                    severity="warning")
            for earlier, later, similarity in near
        )
        problems.sort(key=lambda problem: (problem.line, problem.field or ""))
        return problems


def _pair_tokens(pairs: list[Pair], count_many: Callable[[list[str]], list[int]], overhead: int,
                 fits_in_bytes: int | None) -> list[int | None]:
    """Tokens of each pair when trained (its texts' counts + the layout's `overhead`), or None
    for a pair that cannot exceed `fits_in_bytes` tokens: with a counter whose tokens each
    cover at least one byte, a pair of at most that many UTF-8 bytes (plus the overhead)
    fits, uncounted."""
    if fits_in_bytes is None:
        wanted = list(range(len(pairs)))
    else:
        wanted = [index for index, pair in enumerate(pairs)
                  if _utf8_length(pair.prompt) + _utf8_length(pair.response) + overhead > fits_in_bytes]
    counts = count_many([text for index in wanted for text in (pairs[index].prompt, pairs[index].response)])
    tokens: list[int | None] = [None] * len(pairs)
    for position, index in enumerate(wanted):
        tokens[index] = counts[2 * position] + counts[2 * position + 1] + overhead
    return tokens


def _utf8_length(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", errors="surrogatepass"))


def pair_token_count(pair: Pair, count: Callable[[str], int]) -> int:
    """Tokens a pair takes when trained: prompt + response + the layout's overhead (the
    counter's model's own when `count` is a TokenCounter or its `count`; see
    engine.curate.tokens.pair_overhead)."""
    return count(pair.prompt) + count(pair.response) + pair_overhead(count)


def _counter_for(counter: CounterArg, model: str) -> Callable[[str], int] | None:
    if counter is None:
        return None
    if isinstance(counter, Mapping):
        counter = counter.get(model)
        if counter is None:
            return None
    return counter.count if hasattr(counter, "count") else counter  # type: ignore[return-value]


def _batch_counter(counter: CounterArg, model: str) -> Callable[[list[str]], list[int]] | None:
    """Counts for a list of texts with the model's counter: one batch when the counter has
    `count_many` (a TokenCounter tokenises its uncached texts together), else one by one."""
    if isinstance(counter, Mapping):
        counter = counter.get(model)
    if counter is None:
        return None
    if hasattr(counter, "count_many"):
        return counter.count_many
    count = _counter_for(counter, model)
    return lambda texts: [count(text) for text in texts]


# Splitting -------------------------------------------------------------------------------

def split_by_source(pairs: Iterable[Pair], val_share: float, seed: int = 0) -> list[Pair]:
    """Copies of `pairs` with `split` set so that about `val_share` of the pairs are in val
    and no source is in both splits.

    Sources are ranked by a hash of (seed, source) — stable whatever order the pairs come
    in, and adding a new source does not reshuffle the others — and taken into val in that
    order until val holds `val_share` of the pairs. A pair without a source is its own source.
    """
    if not 0.0 <= val_share < 1.0:
        raise ValueError(f"val share must be in [0, 1), got {val_share}")
    pairs = list(pairs)
    counts: dict[str, int] = defaultdict(int)
    for pair in pairs:
        counts[_split_key(pair)] += 1
    ranked = sorted(counts, key=lambda key: hashlib.sha256(f"{seed}\0{key}".encode()).hexdigest())
    target = val_share * len(pairs)
    val_sources: set[str] = set()
    val_count = 0
    for key in ranked:
        # Stop before a source that would overshoot the target by more than it helps,
        # but always put at least one source in val when a val share was asked for.
        if val_count >= target or len(val_sources) == len(counts) - 1:
            break
        if val_sources and abs(val_count + counts[key] - target) > abs(val_count - target):
            continue
        val_sources.add(key)
        val_count += counts[key]
    return [
        dataclasses.replace(pair, split="val" if _split_key(pair) in val_sources else "train",
                            tags=list(pair.tags), extra=dict(pair.extra))
        for pair in pairs
    ]


def _split_key(pair: Pair) -> str:
    return pair.source if pair.source else f"\0id:{pair.id}"


# Helpers the editor uses -----------------------------------------------------------------

def new_id(existing: Iterable[str], prefix: str = "pair") -> str:
    """The first free `prefix-NNNN` id."""
    taken = set(existing)
    number = 1
    while f"{prefix}-{number:04d}" in taken:
        number += 1
    return f"{prefix}-{number:04d}"


def duplicate_pair(pair: Pair, existing: Iterable[str]) -> Pair:
    """A copy with a fresh id (`<id>-copy`, `<id>-copy-2`, …), tier 'manual' kept as is."""
    taken = set(existing)
    candidate, number = f"{pair.id}-copy", 2
    while candidate in taken:
        candidate, number = f"{pair.id}-copy-{number}", number + 1
    return dataclasses.replace(pair, id=candidate, tags=list(pair.tags), extra=json.loads(json.dumps(pair.extra)))


_FIELD_QUERY = re.compile(r"^(id|tier|split|source|tag):(.*)$")


def filter_pairs(pairs: Iterable[Pair], query: str) -> list[Pair]:
    """Pairs matching every word of `query` (case-insensitive substrings of the prompt,
    response, id, source, tags and notes). `tier:`, `split:`, `source:`, `tag:` and `id:`
    terms match that field only, e.g. `tier:note river`. An empty query matches all."""
    terms = query.casefold().split()
    if not terms:
        return list(pairs)
    field_terms: list[tuple[str, str]] = []
    text_terms: list[str] = []
    for term in terms:
        match = _FIELD_QUERY.match(term)
        if match and match.group(2):
            field_terms.append((match.group(1), match.group(2)))
        else:
            text_terms.append(term)
    if field_terms:
        pairs = [pair for pair in pairs if all(_field_matches(pair, name, value) for name, value in field_terms)]
    if not text_terms:
        return list(pairs)
    first, rest = text_terms[0], text_terms[1:]
    # The first term filters with a plain comprehension (the hot loop); the rest refine.
    result = [pair for pair in pairs if first in pair.search_text]
    for term in rest:
        result = [pair for pair in result if term in pair.search_text]
    return result


def query_narrows(previous: str, query: str) -> bool:
    """True when every pair `query` matches is among those `previous` matches, so a filter
    can search the previous result instead of all pairs (typing on, `river` → `river m`):
    each earlier term is kept, same kind (field or words) and same or stricter."""
    before, after = previous.casefold().split(), query.casefold().split()
    if not before or len(after) < len(before):
        return False
    for old, new in zip(before, after):
        old_field, new_field = _FIELD_QUERY.match(old), _FIELD_QUERY.match(new)
        old_field = old_field if old_field and old_field.group(2) else None
        new_field = new_field if new_field and new_field.group(2) else None
        if old_field is None and new_field is None:
            if old not in new:
                return False
        elif old_field is None or new_field is None or old_field.group(1) != new_field.group(1) \
                or old_field.group(2) not in new_field.group(2):
            return False
    return True


def _field_matches(pair: Pair, name: str, value: str) -> bool:
    if name == "tag":
        return any(value in tag.casefold() for tag in pair.tags)
    return value in getattr(pair, name).casefold()


