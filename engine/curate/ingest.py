"""Ingest: a writer's exported markdown → clean pieces → training pairs.

Cleaning strips what a newsletter export adds (subscribe/share prompts, "Thanks for
reading…" footers, image lines and their italic captions, the subtitle and date lines),
pulls footnotes out (kept in `Piece.footnotes`, markers removed from the text), fixes
line endings, BOMs and stray whitespace, and keeps the writer's smart quotes and dashes.
Files that are not UTF-8 are read as Windows-1252 with a warning; empty files are skipped.

`ingest(paths, ...)` is a generator of events (progress per file, warnings) whose return
value is the `IngestResult`; `run_ingest` drains it for callers that only want the result.
Pair ids are `<file stem>-<tier>[-NN]`, so ingesting the same files again gives the same ids.
"""

from __future__ import annotations

import dataclasses
import math
import re
import unicodedata
from collections.abc import Callable, Generator, Iterable, Sequence
from pathlib import Path
from typing import ClassVar

from engine.events import Event
from engine.curate.pairs import Pair, find_duplicates, split_by_source
from engine.curate.tokens import pair_overhead
from engine.curate.tokens import split_sentences

NOTE_WORD_LIMIT = 300  # a cleaned piece under this many words is a note, else an essay
SOURCE_SUFFIXES = (".md", ".markdown", ".txt")
ALL_TIERS = ("continuation", "thesis", "paragraph", "note")
DEFAULT_BUDGET_TOKENS = 512  # the demo models' context; real models are checked by validate
LONG_PARAGRAPH_WORDS = 220  # a paragraph longer than this is split at sentences…
TARGET_PARAGRAPH_WORDS = 120  # …into paragraphs of about this many words
OPENING_PARAGRAPHS = 2  # continuation prompt: the first paragraphs of the piece
# Pairs are built to fit this share of the budget: a tokenizer retrained on slightly
# different text (the demo's is rebuilt with its models) then still finds them in budget.
BUDGET_HEADROOM = 0.97
SHORT_PIECE_WORDS = 20  # below this a piece is still paired, with a warning to look at it


# Events ------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class IngestStarted(Event):
    kind: ClassVar[str] = "ingest-started"
    files: int  # how many source files will be read


@dataclasses.dataclass(frozen=True)
class FileIngested(Event):
    kind: ClassVar[str] = "file-ingested"
    path: str
    index: int  # 1-based position among the files
    total: int
    piece_kind: str  # "essay" | "note"
    words: int
    pairs: int  # pairs built from this file


@dataclasses.dataclass(frozen=True)
class FileSkipped(Event):
    kind: ClassVar[str] = "file-skipped"
    path: str
    index: int
    total: int
    reason: str


@dataclasses.dataclass(frozen=True)
class IngestWarning(Event):
    kind: ClassVar[str] = "ingest-warning"
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclasses.dataclass(frozen=True)
class IngestFinished(Event):
    kind: ClassVar[str] = "ingest-finished"
    pieces: int
    pairs: int
    train: int
    val: int
    warnings: int


INGEST_EVENTS = {cls.kind: cls for cls in (IngestStarted, FileIngested, FileSkipped, IngestWarning, IngestFinished)}


# Cleaning ----------------------------------------------------------------------------------

@dataclasses.dataclass
class Piece:
    """One cleaned essay or note."""

    path: str  # the file it came from
    source: str  # stable name: the path relative to the folder given, without suffix
    title: str
    subtitle: str = ""
    date: str = ""
    blocks: list[str] = dataclasses.field(default_factory=list)  # paragraphs and "## " headings
    footnotes: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (label, text)

    @property
    def text(self) -> str:
        return "\n\n".join(self.blocks)

    @property
    def words(self) -> int:
        return sum(len(block.split()) for block in self.blocks if not is_heading(block))

    @property
    def kind(self) -> str:
        return "note" if self.words < NOTE_WORD_LIMIT else "essay"


def is_heading(block: str) -> bool:
    return block.startswith("#")


def decode(data: bytes, name: str) -> tuple[str, str | None]:
    """Text of a file and a warning when it was not UTF-8 (read as Windows-1252 instead)."""
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as error:
        # cp1252 leaves five bytes undefined; "replace" marks them rather than failing.
        text = data.decode("cp1252", errors="replace")
        return text, (
            f"not UTF-8 (byte 0x{data[error.start]:02x} at offset {error.start}); read as Windows-1252 — "
            "check its quotes and accents, and re-save it as UTF-8"
        )


_IMAGE = re.compile(r"^\s*(\[)?!\[[^\]]*\]\([^)]*\)(?(1)\]\([^)]*\))\s*$")
_ITALIC_LINE = re.compile(r"^\s*([*_])(?!\1)(.+?)\1\s*$")
_MONTHS = "jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec"
_DATE_LINE = re.compile(
    rf"^\s*(?:(?:{_MONTHS})[a-z]*\.?\s+\d{{1,2}},?\s+\d{{4}}|\d{{1,2}}\s+(?:{_MONTHS})[a-z]*\.?\s+\d{{4}}"
    r"|\d{4}-\d{2}-\d{2})\s*$",
    re.IGNORECASE,
)
# Whole lines a newsletter export adds; matched after stripping emphasis and link syntax.
_ARTEFACT = re.compile(
    r"^(?:subscribe(?: now)?|share|share this post|leave a comment|give a gift subscription|upgrade to paid|"
    r"read in app|thanks for reading\b.*|subscribe (?:for free|to receive)\b.*|"
    r"this post is public so feel free to share it\.?)$",
    re.IGNORECASE,
)
# A line that is nothing but a link whose text is a call to action ("[Share The Mending Hour](…)").
_ACTION_LINK = re.compile(
    r"^\[(?:subscribe|share|leave a comment|give a gift|upgrade|read in app|get the app)\b[^\]]*\]\([^)]*\)$",
    re.IGNORECASE,
)
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_FOOTNOTE_DEF = re.compile(r"^\[\^([^\]]+)\]:\s?(.*)$")
_FOOTNOTE_MARK = re.compile(r"\[\^[^\]]+\]")
_TITLE = re.compile(r"^#\s+(.+?)\s*#*\s*$")


def _is_artefact(line: str) -> bool:
    unemphasised = line.strip().strip("*_ ").strip()
    if _ACTION_LINK.match(unemphasised):
        return True
    plain = _LINK.sub(r"\1", unemphasised).strip()
    return bool(plain) and bool(_ARTEFACT.match(plain))


def clean_markdown(text: str, path: str = "", source: str = "") -> Piece:
    """Turn one exported markdown file's text into a Piece."""
    text = unicodedata.normalize("NFC", text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n"))
    lines = [line.replace("\u00a0", " ").replace("\t", " ").rstrip() for line in text.split("\n")]
    lines, footnotes = _take_footnotes(lines)

    title = subtitle = date = ""
    body: list[str] = []
    in_header = True  # title, subtitle, date and the lead image come before the first paragraph
    drop_caption = False  # the italic line right after an image is its caption
    for line in lines:
        stripped = line.strip()
        if not stripped:
            body.append("")
            continue
        if drop_caption and _ITALIC_LINE.match(stripped):
            drop_caption = False
            continue
        drop_caption = False
        if _IMAGE.match(stripped):
            drop_caption = True
            continue
        if _is_artefact(stripped):
            continue
        if in_header:
            title_match = _TITLE.match(stripped)
            if title_match and not title:
                title = title_match.group(1)
                continue
            italic = _ITALIC_LINE.match(stripped)
            if italic and title and not subtitle:
                subtitle = italic.group(2).strip()
                continue
            if _DATE_LINE.match(stripped) and not date:
                date = stripped
                continue
            in_header = False
        body.append(stripped)

    blocks = _blocks(body)
    if not title:
        title = _title_from_name(Path(path).stem) if path else ""
    return Piece(path=path, source=source, title=title, subtitle=subtitle, date=date, blocks=blocks, footnotes=footnotes)


def clean_source_file(path: str | Path, source: str | None = None) -> Piece:
    """Read and clean one file (UTF-8, or Windows-1252 as a fallback) — for callers that want
    the cleaned text without pairs or events, e.g. the demo-model builder."""
    path = Path(path)
    text, _ = decode(path.read_bytes(), str(path))
    return clean_markdown(text, str(path), source if source is not None else path.with_suffix("").name)


def _take_footnotes(lines: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """Remove `[^n]: …` definitions (with indented continuation lines) and every marker."""
    kept: list[str] = []
    footnotes: list[tuple[str, str]] = []
    current: list[str] | None = None
    for line in lines:
        definition = _FOOTNOTE_DEF.match(line)
        if definition:
            footnotes.append((definition.group(1), definition.group(2).strip()))
            current = [definition.group(2).strip()]
            continue
        if current is not None and line.startswith(("    ", "  ")) and line.strip():
            current.append(line.strip())
            footnotes[-1] = (footnotes[-1][0], " ".join(current))
            continue
        current = None
        # A marker glued to a word ("said.[^1]") or set off by a space: drop it and the space.
        kept.append(re.sub(r"\s*" + _FOOTNOTE_MARK.pattern, "", line))
    return kept, footnotes


def _blocks(body: list[str]) -> list[str]:
    """Join hard-wrapped lines into paragraphs; headings stand alone; long paragraphs split."""
    blocks: list[str] = []
    current: list[str] = []

    def flush() -> None:
        if current:
            paragraph = re.sub(r" {2,}", " ", " ".join(current)).strip()
            blocks.extend(split_long_paragraph(paragraph))
            current.clear()

    for line in body:
        if not line:
            flush()
        elif line.startswith("#"):
            flush()
            heading = re.sub(r"\s*#*\s*$", "", line)
            blocks.append(re.sub(r"^#+\s*", "## ", heading))
        else:
            current.append(line)
    flush()
    return [block for block in blocks if block.strip() and block.strip() != "##"]


def split_long_paragraph(paragraph: str) -> list[str]:
    """A paragraph over LONG_PARAGRAPH_WORDS becomes several of about TARGET_PARAGRAPH_WORDS,
    cut only between sentences (an export sometimes loses every paragraph break)."""
    if len(paragraph.split()) <= LONG_PARAGRAPH_WORDS:
        return [paragraph]
    sentences = [sentence.strip() for sentence in split_sentences(paragraph) if sentence.strip()]
    total = sum(len(sentence.split()) for sentence in sentences)
    parts = max(1, round(total / TARGET_PARAGRAPH_WORDS))
    goal = total / parts  # even parts, so no stub paragraph is left at the end
    result: list[str] = []
    current: list[str] = []
    current_words = 0
    for sentence in sentences:
        words = len(sentence.split())
        if current and current_words + words / 2 > goal and len(result) < parts - 1:
            result.append(" ".join(current))
            current, current_words = [], 0
        current.append(sentence)
        current_words += words
    if current:
        result.append(" ".join(current))
    return result


def _title_from_name(stem: str) -> str:
    words = re.sub(r"^\d{4}-\d{2}-\d{2}-?", "", stem).replace("_", "-").split("-")
    return " ".join(word for word in words if word).capitalize()


# Pair builders -----------------------------------------------------------------------------

Counter = Callable[[str], int]


def estimate_tokens(text: str) -> int:
    """A deliberately generous token estimate (1.5 per word) for when no tokenizer is given;
    small BPE vocabularies spend about 1.3 tokens on an English word."""
    return math.ceil(len(text.split()) * 1.5)


@dataclasses.dataclass(frozen=True)
class Budget:
    """How many tokens a pair may use, and how to count them."""

    tokens: int = DEFAULT_BUDGET_TOKENS
    count: Counter = estimate_tokens

    def room(self, prompt: str) -> int:
        """Tokens left for the response after this prompt and the template overhead."""
        return self.tokens - pair_overhead(self.count) - self.count(prompt)


def _fit_blocks(blocks: Sequence[str], room: int, count: Counter) -> str:
    """As many whole blocks from the start as fit; the last one cut at a sentence if needed.
    Never ends on a heading."""
    from engine.curate.tokens import truncate_at_sentence

    taken: list[str] = []
    for block in blocks:
        candidate = "\n\n".join([*taken, block])
        if count(candidate) <= room:
            taken.append(block)
            continue
        if not is_heading(block):
            remaining = room - (count("\n\n".join(taken)) + 2 if taken else 0)
            partial = truncate_at_sentence(block, remaining, count, word_fallback=False) if remaining > 0 else ""
            if partial and len(partial.split()) >= 8:  # a few words alone make a poor ending
                taken.append(partial)
        break
    while taken and is_heading(taken[-1]):
        taken.pop()
    return "\n\n".join(taken)


def _tail_blocks(blocks: Sequence[str], room: int, count: Counter) -> str:
    """As many whole blocks from the end as fit; if even the last does not, its last sentences."""
    taken: list[str] = []
    for block in reversed(blocks):
        candidate = "\n\n".join([block, *taken])
        if count(candidate) > room:
            if not taken:
                sentences = [s for s in split_sentences(block) if s.strip()]
                while sentences and count("".join(sentences).strip()) > room:
                    sentences.pop(0)
                if sentences:
                    taken.insert(0, "".join(sentences).strip())
            break
        taken.insert(0, block)
    return "\n\n".join(taken)


def _quoted(title: str) -> str:
    return f"“{title}”"


CUT_TAG = "cut"  # a pair whose response stops short of its text because of the token budget


def _pair(piece: Piece, tier: str, prompt: str, response: str, suffix: str = "",
          whole: Sequence[str] = ()) -> Pair:
    """A pair; when `response` is shorter than the `whole` blocks it was cut from, it is
    tagged CUT_TAG and its notes say where the budget cut it."""
    stem = Path(piece.path).stem or piece.source.replace("/", "-")
    cut = cut_note(whole, response) if whole else None
    return Pair(
        id=f"{stem}-{tier}{suffix}", prompt=prompt, response=response, source=piece.source,
        tier=tier, tags=[piece.kind, CUT_TAG] if cut else [piece.kind], notes=cut or "",
    )


def cut_note(blocks: Sequence[str], response: str) -> str | None:
    """"cut at the token budget after …" when `response` holds less than `blocks`, else None."""
    text_blocks = [block for block in blocks if not is_heading(block)]
    total_words = sum(len(block.split()) for block in text_blocks)
    kept_words = sum(len(block.split()) for block in response.split("\n\n") if not is_heading(block))
    if kept_words >= total_words:
        return None
    kept_blocks = [block for block in response.split("\n\n") if not is_heading(block)]
    last = kept_blocks[-1] if kept_blocks else ""
    partial = bool(kept_blocks) and len(kept_blocks) <= len(text_blocks) and last != text_blocks[len(kept_blocks) - 1]
    tail = " ".join(response.split()[-6:])
    where = (f"inside paragraph {len(kept_blocks)} of {len(text_blocks)}" if partial
             else f"after paragraph {len(kept_blocks)} of {len(text_blocks)}")
    return (f"cut at the token budget {where}, after “…{tail}”; "
            f"{total_words - kept_words} of {total_words} words left out")


def thesis_pair(piece: Piece, budget: Budget) -> Pair | None:
    """Title and topic → the piece (from the top, as much as the budget holds)."""
    topic = f" — {piece.subtitle[0].lower()}{piece.subtitle[1:]}" if piece.subtitle else ""
    prompt = f"Write an essay titled {_quoted(piece.title)}{topic}"
    prompt = prompt if prompt.endswith((".", "?", "!")) else prompt + "."
    response = _fit_blocks(piece.blocks, budget.room(prompt), budget.count)
    return _pair(piece, "thesis", prompt, response, whole=piece.blocks) if response else None


def continuation_pair(piece: Piece, budget: Budget) -> Pair | None:
    """The opening paragraphs → what follows (as much as the budget holds)."""
    paragraphs = [i for i, block in enumerate(piece.blocks) if not is_heading(block)]
    if len(paragraphs) <= OPENING_PARAGRAPHS:
        return None
    split_at = paragraphs[OPENING_PARAGRAPHS]
    header = f"Continue the essay {_quoted(piece.title)} from where this opening stops.\n\n"
    opening = _fit_blocks(piece.blocks[:split_at], budget.tokens // 2, budget.count)
    prompt = header + opening
    response = _fit_blocks(piece.blocks[split_at:], budget.room(prompt), budget.count)
    if not (opening and response):
        return None
    return _pair(piece, "continuation", prompt, response, whole=piece.blocks[split_at:])


def paragraph_pairs(piece: Piece, budget: Budget) -> list[Pair]:
    """For every paragraph after the first: the paragraphs before it → it."""
    pairs = []
    number = 0
    for index, block in enumerate(piece.blocks):
        if is_heading(block) or index == 0:
            continue
        header = f"Write the next paragraph of the essay {_quoted(piece.title)}.\n\n"
        # The response gets what it needs (up to half the budget); context fills the rest.
        response = _fit_blocks([block], budget.tokens // 2, budget.count)
        if not response:
            continue
        context_room = budget.tokens - pair_overhead(budget.count) - budget.count(header) - budget.count(response) - 2
        context = _tail_blocks(piece.blocks[:index], context_room, budget.count)
        if not context or all(is_heading(part) for part in context.split("\n\n")):
            continue
        number += 1
        pairs.append(_pair(piece, "paragraph", header + context, response, f"-{number:02d}", whole=[block]))
    return pairs


def note_pair(piece: Piece, budget: Budget) -> Pair | None:
    """A note is one pair: its title → the note."""
    prompt = f"Write a short note titled {_quoted(piece.title)}."
    response = _fit_blocks(piece.blocks, budget.room(prompt), budget.count)
    return _pair(piece, "note", prompt, response, whole=piece.blocks) if response else None


def build_pairs(piece: Piece, tiers: Iterable[str] = ALL_TIERS, budget: Budget | None = None) -> list[Pair]:
    """The pairs of one piece for the chosen tiers (essay tiers for essays, `note` for notes)."""
    budget = budget or Budget()
    tiers = set(tiers)
    if piece.kind == "note":
        pair = note_pair(piece, budget) if "note" in tiers else None
        return [pair] if pair else []
    pairs: list[Pair] = []
    if "thesis" in tiers and (pair := thesis_pair(piece, budget)):
        pairs.append(pair)
    if "continuation" in tiers and (pair := continuation_pair(piece, budget)):
        pairs.append(pair)
    if "paragraph" in tiers:
        pairs.extend(paragraph_pairs(piece, budget))
    return _without_duplicates(pairs)


def _without_duplicates(pairs: list[Pair]) -> list[Pair]:
    """Drop a later pair that repeats an earlier one: a continuation whose budget held only
    one paragraph is the same example as that paragraph's pair."""
    exact, near = find_duplicates(pairs)
    drop = {later for _, later in exact} | {later for _, later, _ in near}
    return [pair for index, pair in enumerate(pairs) if index not in drop]


# The ingest run ----------------------------------------------------------------------------

@dataclasses.dataclass
class IngestResult:
    pieces: list[Piece]
    pairs: list[Pair]
    warnings: list[IngestWarning]
    skipped: list[FileSkipped]


def source_files(paths: Iterable[str | Path], warnings: list[IngestWarning] | None = None) -> list[tuple[Path, str]]:
    """(file, source name) for every markdown/text file given or inside a folder given,
    sorted; a folder's files are named relative to that folder. Symlinked folders are
    followed once; a symlink loop or a broken link is skipped with a warning appended to
    `warnings`."""
    found: dict[Path, str] = {}
    for given in paths:
        given = Path(given)
        if given.is_dir():
            for file in _walk(given, given, set(), warnings if warnings is not None else []):
                found.setdefault(file, file.relative_to(given).with_suffix("").as_posix())
        else:
            found.setdefault(given, given.with_suffix("").name)
    return sorted(found.items(), key=lambda item: item[1])


def _walk(folder: Path, top: Path, seen: set[Path], warnings: list[IngestWarning]) -> list[Path]:
    """Source files under `folder`, each real folder visited once (so a loop ends)."""
    try:
        real = folder.resolve(strict=True)
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop (Python < 3.13)
        warnings.append(IngestWarning(str(folder), "symlink loop or broken link; skipped"))
        return []
    if real in seen:
        warnings.append(IngestWarning(str(folder), f"symlink back to {real} (a loop); skipped"))
        return []
    seen.add(real)
    files: list[Path] = []
    try:
        entries = sorted(folder.iterdir())
    except OSError as error:
        warnings.append(IngestWarning(str(folder), f"cannot list the folder ({error.strerror or error}); skipped"))
        return []
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_symlink() and not entry.exists():  # exists() follows the link: False for loops and dangling links
            warnings.append(IngestWarning(str(entry), "symlink loop or broken link; skipped"))
        elif entry.is_dir():
            files.extend(_walk(entry, top, seen, warnings))
        elif entry.is_file() and entry.suffix.lower() in SOURCE_SUFFIXES:
            files.append(entry)
    return files


# Control characters that never belong in prose (tab, newlines, carriage return and form feed do).
_NOT_TEXT = re.compile("[\x00-\x08\x0e-\x1f\x7f\ufffd]")
NOT_TEXT_SHARE = 0.01  # more than this share of such characters: a binary file, not prose


def not_text_reason(data: bytes, text: str) -> str | None:
    """Why a source file is not text (NUL bytes, or undecodable/control characters in bulk), else None."""
    nul = data.find(b"\x00")
    if nul >= 0:
        return (f"not text: a NUL byte at offset {nul} (a binary file, or UTF-16); skipped — "
                "export it as UTF-8 markdown or plain text")
    odd = _NOT_TEXT.findall(text)
    if len(odd) > max(3, len(text) * NOT_TEXT_SHARE):
        return (f"not text: {len(odd)} control or undecodable characters; skipped — "
                "export it as UTF-8 markdown or plain text")
    return None


def ingest(
    paths: Iterable[str | Path],
    *,
    tiers: Iterable[str] = ALL_TIERS,
    val_share: float = 0.15,
    seed: int = 0,
    budget_tokens: int = DEFAULT_BUDGET_TOKENS,
    counter: Counter | None = None,
) -> Generator[Event, None, IngestResult]:
    """Read, clean and pair every source file; yields progress and warnings, returns the result.

    `counter` counts tokens for the length budget (default: a generous word-based estimate).
    """
    tiers = tuple(tiers)
    unknown = set(tiers) - set(ALL_TIERS)
    if unknown:
        raise ValueError(f"unknown tier(s) {sorted(unknown)}; choose from {', '.join(ALL_TIERS)}")
    if not tiers:
        raise ValueError(f"no tier chosen; choose from {', '.join(ALL_TIERS)}")
    if budget_tokens < 1:
        raise ValueError(f"token budget {budget_tokens}: must be at least 1")
    budget = Budget(int(budget_tokens * BUDGET_HEADROOM), counter or estimate_tokens)
    warnings: list[IngestWarning] = []
    files = source_files(paths, warnings)
    yield IngestStarted(files=len(files))
    yield from warnings
    pieces: list[Piece] = []
    pairs: list[Pair] = []
    skipped: list[FileSkipped] = []
    stems: dict[str, str] = {}
    for index, (file, source) in enumerate(files, start=1):
        try:
            data = file.read_bytes()
        except OSError as error:
            event = FileSkipped(str(file), index, len(files), f"cannot read: {error.strerror or error}")
            skipped.append(event)
            yield event
            continue
        text, problem = decode(data, str(file))
        refusal = not_text_reason(data, text)
        if refusal:
            event = FileSkipped(str(file), index, len(files), refusal)
            skipped.append(event)
            yield event
            continue
        if problem:
            warning = IngestWarning(str(file), problem)
            warnings.append(warning)
            yield warning
        piece = clean_markdown(text, str(file), source)
        if not piece.blocks:
            reason = "empty file" if not text.strip() else "no text left after removing export artefacts"
            event = FileSkipped(str(file), index, len(files), f"{reason}; skipped")
            skipped.append(event)
            yield event
            continue
        if file.stem in stems:
            warning = IngestWarning(str(file), f"same file name as {stems[file.stem]}; pair ids may clash — rename one")
            warnings.append(warning)
            yield warning
        stems.setdefault(file.stem, str(file))
        if piece.words < SHORT_PIECE_WORDS:
            warning = IngestWarning(str(file), f"only {piece.words} words; kept as a pair — delete it if it is too slight to train on")
            warnings.append(warning)
            yield warning
        built = build_pairs(piece, tiers, budget)
        pieces.append(piece)
        pairs.extend(built)
        yield FileIngested(str(file), index, len(files), piece.kind, piece.words, len(built))
    pairs = split_by_source(pairs, val_share, seed) if pairs else []
    val = sum(pair.split == "val" for pair in pairs)
    yield IngestFinished(len(pieces), len(pairs), len(pairs) - val, val, len(warnings))
    return IngestResult(pieces, pairs, warnings, skipped)


# Keeping the sources --------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class SourceCopy:
    """A source file ingested from outside the workspace and where it is kept."""

    source: Path  # the file that was read
    target: Path  # data/sources/<source name><suffix>
    state: str  # "new" (not there yet) | "same" (already there, identical) | "different"


def plan_source_copies(pieces: Iterable[Piece], sources_dir: str | Path) -> list[SourceCopy]:
    """What keeping the ingested files under `sources_dir` takes: files read from elsewhere go
    to `sources_dir/<source name><suffix>`, so ingesting that folder later names them alike."""
    sources_dir = Path(sources_dir)
    inside = sources_dir.resolve()
    plan = []
    for piece in pieces:
        source = Path(piece.path)
        if source.resolve().is_relative_to(inside):
            continue
        target = sources_dir / f"{piece.source}{source.suffix}"
        if not target.exists():
            state = "new"
        else:
            state = "same" if target.is_file() and target.read_bytes() == source.read_bytes() else "different"
        plan.append(SourceCopy(source, target, state))
    return plan


def copy_sources(plan: Iterable[SourceCopy]) -> list[Path]:
    """Copy every new or different file of a plan (atomically); returns the targets written."""
    from engine.atomic import write_atomic

    written = []
    for copy in plan:
        if copy.state != "same":
            copy.target.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(copy.target, copy.source.read_bytes())
            written.append(copy.target)
    return written


def run_ingest(paths: Iterable[str | Path], **options: object) -> IngestResult:
    """Run `ingest` to the end, ignoring its events."""
    generator = ingest(paths, **options)  # type: ignore[arg-type]
    while True:
        try:
            next(generator)
        except StopIteration as stop:
            return stop.value
