"""CLI for curation: `voicebench ingest`, `voicebench pairs validate|stats|export`.

    voicebench ingest data/sources --out data/pairs.jsonl --val-share 0.15 --seed 0
    voicebench pairs validate data/pairs.jsonl
    voicebench pairs stats
    voicebench pairs export --format messages --out train.jsonl --split train

Nothing here imports torch or transformers at module level.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from engine.display import safe_text, terminal_json


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `ingest` and `pairs` (validate, stats, export) to the parser."""
    from engine.curate.export import FORMATS
    from engine.curate.ingest import ALL_TIERS

    ingest = subparsers.add_parser(
        "ingest", help="turn essays and notes (markdown) into training pairs",
        description="Clean exported markdown essays and notes and build training pairs from them. "
        "With no files, reads the workspace's data/sources and writes data/pairs.jsonl.",
    )
    ingest.add_argument("inputs", nargs="*", metavar="FILES_OR_DIRS",
                        help="markdown files or folders of them (default: the workspace's data/sources)")
    ingest.add_argument("--out", metavar="PAIRS", help="pairs file to write (default: the workspace's data/pairs.jsonl)")
    ingest.add_argument("--val-share", type=float, default=0.15, metavar="SHARE",
                        help="share of pairs to put in the val split, chosen by source (default: 0.15)")
    ingest.add_argument("--seed", type=int, default=0, help="seed that decides which sources go to val (default: 0)")
    ingest.add_argument("--tiers", default=",".join(ALL_TIERS), metavar="LIST",
                        help=f"comma-separated pair tiers to build (default: {','.join(ALL_TIERS)})")
    ingest.add_argument("--budget", type=int, default=None, metavar="TOKENS",
                        help="token budget every pair must fit (default: the tokenizer model's budget, else 512)")
    ingest.add_argument("--tokenizer", default="auto", metavar="MODEL",
                        help="model name or folder whose tokenizer counts tokens for the budget; 'auto' (default) "
                        "picks the smallest-budget model whose tokenizer is here, 'none' estimates 1.5 tokens a word")
    ingest.add_argument("--force", action="store_true",
                        help="replace a pairs file that holds edits ingest would not reproduce (a .bak copy is kept), "
                        "and sources in data/sources that differ from the files ingested")
    ingest.add_argument("--no-copy", action="store_true",
                        help="do not copy files from outside the workspace into its data/sources "
                        "(done only when writing the workspace's own pairs file)")
    ingest.add_argument("--dry-run", action="store_true", help="show what would be written, write nothing")
    ingest.set_defaults(func=run_ingest_command)

    pairs = subparsers.add_parser("pairs", help="check, summarise and export training pairs",
                                  description="Check, summarise and export a pairs file.")
    pairs_sub = pairs.add_subparsers(dest="pairs_command", metavar="ACTION", required=True)

    validate = pairs_sub.add_parser("validate", help="report every problem as file:line: message (exit 1 on errors)",
                                    description="Check a pairs file without changing it: unreadable lines, empty "
                                    "prompts/responses, duplicate ids, duplicate and near-duplicate pairs, sources in "
                                    "both splits, and pairs over a model's token budget.")
    validate.add_argument("pairs", nargs="?", metavar="PAIRS", help="pairs file (default: the workspace's data/pairs.jsonl)")
    validate.add_argument("--model", action="append", metavar="NAME",
                          help="check the token budget of this model only (repeatable; default: every model whose tokenizer is on this machine)")
    validate.add_argument("--no-budgets", action="store_true", help="skip token budget checks")
    validate.add_argument("--strict", action="store_true", help="exit 1 on warnings (near-duplicates) too")
    validate.set_defaults(func=run_validate_command)

    stats = pairs_sub.add_parser("stats", help="counts per tier, split and source; tokens per model",
                                 description="Summarise a pairs file: counts per tier, split and source, and token "
                                 "totals and over-budget counts for every model with a tokenizer here.")
    stats.add_argument("pairs", nargs="?", metavar="PAIRS", help="pairs file (default: the workspace's data/pairs.jsonl)")
    stats.add_argument("--model", action="append", metavar="NAME", help="count tokens for this model only (repeatable)")
    stats.add_argument("--json", action="store_true", help="print the numbers as one JSON object")
    stats.set_defaults(func=run_stats_command)

    export = pairs_sub.add_parser("export", help="write pairs as prompt/completion, messages or plain text",
                                  description="Export pairs for training elsewhere.")
    export.add_argument("pairs", nargs="?", metavar="PAIRS", help="pairs file (default: the workspace's data/pairs.jsonl)")
    export.add_argument("--format", required=True, choices=FORMATS,
                        help="prompt-completion JSONL, OpenAI messages JSONL, or plain text with <|endoftext|> separators")
    export.add_argument("--out", required=True, metavar="PATH",
                        help="file to write (with --split both: PATH's stem + .train/.val)")
    export.add_argument("--split", default="all", choices=("train", "val", "all", "both"),
                        help="which pairs: one split, all, or both splits to two files (default: all)")
    export.add_argument("--system", default=None, metavar="TEXT", help="system message for --format messages")
    export.add_argument("--allow-errors", action="store_true",
                        help="export even when the file has unreadable lines (they are left out)")
    export.set_defaults(func=run_export_command)


# Shared helpers -----------------------------------------------------------------------------

def _workspace(args: argparse.Namespace):
    from engine.workspace import Workspace

    return Workspace.open(args.workspace)


def _display(path: Path) -> Path:
    """Paths in messages relative to the current folder when they are inside it."""
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return path
    return path if relative.startswith("..") else Path(relative)


def _pairs_path(args: argparse.Namespace, workspace) -> Path:
    if getattr(args, "pairs", None):
        return Path(args.pairs)
    return _display(workspace.pairs_path)


def _error(message: str) -> int:
    print(f"voicebench: {safe_text(message)}", file=sys.stderr)
    return 2


def _say(text: str, *, err: bool = False) -> None:
    """Print a line that may hold pair or source text (see engine/display.py)."""
    print(safe_text(text), file=sys.stderr if err else sys.stdout)


def _unknown_model(workspace, names: list[str] | None) -> str:
    """An error for a --model that is neither a workspace model nor a folder (a typo), or ""."""
    from engine.curate.tokens import budgets_for
    from engine.workspace import looks_like_hub_id

    known_names = set(workspace.models) | set(budgets_for(workspace))
    for name in names or []:
        if (name not in known_names and not looks_like_hub_id(name)
                and not Path(workspace.model(name).path).expanduser().exists()):
            known = ", ".join(sorted(known_names))
            return f"--model {name}: not a workspace model ({known}) nor a model folder"
    return ""


def _counters(workspace, names: list[str] | None) -> tuple[dict[str, int], dict[str, Any], dict[str, str]]:
    """(budgets, counters, missing) for the chosen models, or every model with a tokenizer here."""
    from engine.curate.tokens import budgets_for, counters_for

    budgets = budgets_for(workspace)
    if names:
        unknown = [name for name in names if name not in budgets and name not in workspace.models]
        for name in unknown:
            entry = workspace.model(name)
            budgets[name] = entry.context_length or 0
    chosen = names or sorted(budgets)
    counters, missing = counters_for(workspace, chosen)
    if names:
        for name in names:
            if not budgets.get(name):
                missing[name] = f"{name}: no token budget known; add it under [budgets] in voicebench.toml"
                counters.pop(name, None)
    return {name: budgets[name] for name in counters}, _share_identical_tokenizers(workspace, counters), missing


def _share_identical_tokenizers(workspace, counters: dict[str, Any]) -> dict[str, Any]:
    """Models whose tokenizer.json is byte-identical and whose layout adds the same tokens
    around a pair (the two demo models) get one counter, so a file's texts are tokenised
    once for both rather than once per model."""
    from engine.curate.tokens import pair_overhead

    import hashlib

    shared: dict[str, Any] = {}
    result = {}
    for name, counter in counters.items():
        try:
            tokenizer_file = Path(workspace.model(name).path) / "tokenizer.json"
            digest = hashlib.sha256(tokenizer_file.read_bytes()).hexdigest() if tokenizer_file.is_file() else None
        except Exception:  # noqa: BLE001 - sharing is an optimisation; without it each model counts alone
            digest = None
        result[name] = shared.setdefault((digest, pair_overhead(counter)), counter) if digest else counter
    return result


# ingest -------------------------------------------------------------------------------------

def run_ingest_command(args: argparse.Namespace) -> int:
    from engine.curate.ingest import (ALL_TIERS, FileIngested, FileSkipped, IngestWarning, copy_sources, ingest,
                                      plan_source_copies)
    from engine.curate.pairs import PairFile, SaveConflict, load_pairs, save_pairs

    workspace = _workspace(args)
    inputs = [Path(item) for item in args.inputs] or [workspace.sources_dir]
    for item in inputs:
        if not item.exists():
            return _error(f"{item}: no such file or folder")
    out = Path(args.out) if args.out else workspace.pairs_path
    tiers = [tier.strip() for tier in args.tiers.split(",") if tier.strip()]
    if not 0.0 <= args.val_share < 1.0:
        return _error(f"--val-share {args.val_share}: must be at least 0 and below 1")
    if not tiers:
        return _error(f"--tiers {args.tiers!r}: names no tier; choose from {', '.join(ALL_TIERS)}")
    if args.budget is not None and args.budget < 1:
        return _error(f"--budget {args.budget}: must be at least 1 token")

    counter, budget, how = _ingest_counter(workspace, args.tokenizer, args.budget)
    if counter is None and isinstance(budget, str):
        return _error(budget)
    _say(f"note: {how}", err=True)
    try:
        events = ingest(inputs, tiers=tiers, val_share=args.val_share, seed=args.seed,
                        budget_tokens=budget, counter=counter)
    except ValueError as error:
        return _error(str(error))
    result = None
    while True:
        try:
            event = next(events)
        except StopIteration as stop:
            result = stop.value
            break
        except ValueError as error:
            return _error(str(error))
        if isinstance(event, IngestWarning):
            _say(f"warning: {_display(Path(event.path))}: {event.message}", err=True)
        elif isinstance(event, FileSkipped):
            _say(f"skipped: {_display(Path(event.path))}: {event.reason}", err=True)
        elif isinstance(event, FileIngested) and sys.stderr.isatty():
            _say(f"[{event.index}/{event.total}] {event.path}: {event.piece_kind}, {event.words} words, "
                 f"{event.pairs} pairs", err=True)

    pairs = result.pairs
    if not pairs:  # never replace a pairs file with nothing
        skipped = "; ".join(f"{_display(Path(event.path))}: {event.reason}" for event in result.skipped[:3])
        where = ", ".join(str(_display(item)) for item in inputs)
        return _error(f"{where}: no pairs built from {len(result.pieces)} usable of "
                      f"{len(result.pieces) + len(result.skipped)} source files{': ' + skipped if skipped else ''}. "
                      f"Nothing written; add markdown or text files (.md, .markdown, .txt) and run again")
    tiers_count = Counter(pair.tier for pair in pairs)
    splits = Counter(pair.split for pair in pairs)
    summary = (f"{len(result.pieces)} pieces → {len(pairs)} pairs "
               f"({', '.join(f'{count} {tier}' for tier, count in sorted(tiers_count.items()))}; "
               f"{splits['train']} train, {splits['val']} val)")
    # Sources are kept when ingest builds the workspace's own pairs (not an --out elsewhere).
    keeps_sources = not args.no_copy and out.resolve() == workspace.pairs_path.resolve()
    copies = plan_source_copies(result.pieces, workspace.sources_dir) if keeps_sources else []
    to_copy = [copy for copy in copies if copy.state != "same"]
    if args.dry_run:
        _say(f"dry run: would write {_display(out)}: {summary}")
        if to_copy:
            _say(f"dry run: would copy {len(to_copy)} sources into {_display(workspace.sources_dir)}")
        return 0
    clashes = [copy for copy in copies if copy.state == "different"]
    if clashes and not args.force:
        more = f" (and {len(clashes) - 1} more)" if len(clashes) > 1 else ""
        return _error(f"{_display(clashes[0].target)}{more}: already in the workspace with other text than "
                      f"{_display(clashes[0].source)}. Nothing written; re-run with --force to replace it, "
                      "or with --no-copy to leave data/sources as it is")

    existing = load_pairs(out)
    changed = _edits_ingest_would_lose(existing, pairs)
    if changed and not args.force:
        example, line = changed[0]
        more = f" and {len(changed) - 1} more" if len(changed) > 1 else ""
        _say(
            f"{_display(out)}:{line}: {example!r}{more} differ from what ingest builds now (edited by hand, "
            "or the sources changed). Re-run with --force to replace the file "
            f"(the old one is kept as {out.name}.bak), or write elsewhere with --out.",
            err=True,
        )
        return 1
    new_file = PairFile(path=out, pairs=pairs, fingerprint=existing.fingerprint)
    try:
        save_pairs(new_file, force=args.force)
    except SaveConflict as error:
        return _error(str(error))
    _say(f"wrote {_display(out)}: {summary}")
    written = copy_sources(to_copy)
    if written:
        _say(f"copied {len(written)} sources into {_display(workspace.sources_dir)} (the workspace keeps what it trains on)")
    return 0


def _ingest_counter(workspace, choice: str, budget: int | None):
    """(counter or None, budget, description) for `ingest --tokenizer`; on error
    (None, message, "")."""
    from engine.curate.ingest import DEFAULT_BUDGET_TOKENS
    from engine.curate.tokens import TokenizerUnavailable, budgets_for, counter_for_model, counters_for

    budgets = budgets_for(workspace)
    if choice == "none":
        budget = budget or DEFAULT_BUDGET_TOKENS
        return None, budget, f"lengths estimated at 1.5 tokens a word, budget {budget}"
    if choice == "auto":
        # The tightest budget among models whose tokenizer is here: pairs that fit it fit the rest.
        counters, _ = counters_for(workspace, sorted(budgets, key=lambda name: (budgets[name], name)))
        if not counters:
            budget = budget or DEFAULT_BUDGET_TOKENS
            return None, budget, f"no model tokenizer here; lengths estimated at 1.5 tokens a word, budget {budget}"
        name = min(counters, key=lambda name: (budgets[name], name))
        budget = budget or budgets[name]
        return counters[name], budget, f"lengths counted with {name}'s tokenizer, budget {budget}"
    try:
        counter = counter_for_model(workspace, choice)
    except TokenizerUnavailable as error:
        return None, str(error), ""
    budget = budget or budgets.get(choice) or DEFAULT_BUDGET_TOKENS
    return counter, budget, f"lengths counted with {choice}'s tokenizer, budget {budget}"


def _edits_ingest_would_lose(existing, new_pairs) -> list[tuple[str, int]]:
    """Existing pairs (id, line) that the new ingest would not write back identically,
    plus any unreadable lines — the things a plain overwrite would throw away."""
    fresh = {pair.id: pair.to_dict() for pair in new_pairs}
    lost = [(bad.raw[:40], bad.line) for bad in existing.bad_lines]
    for pair, line in zip(existing.pairs, existing.lines(), strict=True):
        if fresh.get(pair.id) != pair.to_dict():
            lost.append((pair.id, line))
    return sorted(lost, key=lambda item: item[1])


# pairs validate -------------------------------------------------------------------------------

def run_validate_command(args: argparse.Namespace) -> int:
    from engine.curate.pairs import PairsFileError, validate_file

    workspace = _workspace(args)
    path = _pairs_path(args, workspace)
    if not path.exists():
        return _error(f"{path}: no such file. Run `voicebench ingest` to build pairs from your sources.")
    budgets: dict[str, int] = {}
    counters: dict[str, Any] = {}
    if not args.no_budgets:
        if problem := _unknown_model(workspace, args.model):
            return _error(problem)
        budgets, counters, missing = _counters(workspace, args.model)
        for name, reason in sorted(missing.items()):
            if args.model:
                _say(f"note: budget of {name} not checked: {reason}", err=True)
    try:
        # Streamed: a 50,000-pair file is checked without holding it (engine.curate.pairs.validate_file).
        report = validate_file(path, budgets=budgets, counter=counters)
    except PairsFileError as error:
        return _error(str(error))
    problems = report.problems
    errors = [problem for problem in problems if problem.severity == "error"]
    warnings = [problem for problem in problems if problem.severity != "error"]
    for problem in problems:
        if problem.severity == "error":
            _say(str(problem))
        else:
            _say(f"{problem.path}:{problem.line}: {problem.severity}: {problem.message}")
    checked = ", ".join(f"{name} {budget}" for name, budget in sorted(budgets.items())) or "none"
    counts = f"{report.pairs} pairs ({report.splits.get('train', 0)} train, {report.splits.get('val', 0)} val)"
    if errors or (warnings and args.strict):
        _say(f"{path}: {counts}: {len(errors)} errors, {len(warnings)} warnings", err=True)
        return 1
    tail = f", {len(warnings)} warnings" if warnings else ", no problems"
    _say(f"{path}: {counts}{tail}; token budgets checked: {checked}")
    return 0


# pairs stats ------------------------------------------------------------------------------------

# Pairs tallied (and token-counted in one batch per tokenizer) at a time.
STATS_CHUNK = 1000


class _StatsTally:
    """The numbers `pairs stats` prints, summed a chunk of pairs at a time."""

    def __init__(self, budgets: dict[str, int], counters: dict[str, Any]):
        self.budgets, self.counters = budgets, dict(sorted(counters.items()))
        self.pairs = 0
        self.tiers: Counter = Counter()
        self.splits: Counter = Counter()
        self.by_source: dict[str, Counter] = defaultdict(Counter)
        self.tokens = {name: {"budget": budgets[name], "total": 0, "max": 0, "over_budget": 0} for name in self.counters}

    def add(self, pairs: list) -> None:
        from engine.curate.tokens import pair_overhead

        self.pairs += len(pairs)
        for pair in pairs:
            self.tiers[pair.tier] += 1
            self.splits[pair.split] += 1
            self.by_source[pair.source or "(none)"][pair.split] += 1
        texts = [text for pair in pairs for text in (pair.prompt, pair.response)]
        counted: dict[int, list[int]] = {}  # models sharing a tokenizer are counted once
        for name, counter in self.counters.items():
            if id(counter) not in counted:
                counted[id(counter)] = counter.count_many(texts)
            counts = counted[id(counter)]
            numbers = self.tokens[name]
            overhead = pair_overhead(counter)
            for offset in range(len(pairs)):
                length = counts[2 * offset] + counts[2 * offset + 1] + overhead
                numbers["total"] += length
                numbers["max"] = max(numbers["max"], length)
                numbers["over_budget"] += length > numbers["budget"]

    def result(self, path: Path | str, bad_lines: int) -> dict[str, Any]:
        return {
            "path": str(path),
            "pairs": self.pairs,
            "bad_lines": bad_lines,
            "tiers": dict(sorted(self.tiers.items())),
            "splits": dict(sorted(self.splits.items())),
            "sources": {source: dict(counts) for source, counts in sorted(self.by_source.items())},
            "tokens": self.tokens,
        }


def pair_stats(pair_file, budgets: dict[str, int], counters: dict[str, Any]) -> dict[str, Any]:
    """The numbers `pairs stats` prints for a loaded file (also handy for the TUI)."""
    tally = _StatsTally(budgets, counters)
    for start in range(0, len(pair_file.pairs), STATS_CHUNK):
        tally.add(pair_file.pairs[start:start + STATS_CHUNK])
    return tally.result(pair_file.path, len(pair_file.bad_lines))


def file_stats(path: Path, budgets: dict[str, int], counters: dict[str, Any]) -> dict[str, Any]:
    """`pair_stats` of a file read one line at a time, never held whole. Raises PairsFileError."""
    from engine.curate.pairs import BadLine, iter_pairs_lines

    tally = _StatsTally(budgets, counters)
    chunk, bad_lines = [], 0
    for _, item in iter_pairs_lines(path):
        if isinstance(item, BadLine):
            bad_lines += 1
            continue
        chunk.append(item)
        if len(chunk) == STATS_CHUNK:
            tally.add(chunk)
            chunk = []
    if chunk:
        tally.add(chunk)
    return tally.result(path, bad_lines)


def run_stats_command(args: argparse.Namespace) -> int:
    from engine.curate.pairs import PairsFileError

    workspace = _workspace(args)
    path = _pairs_path(args, workspace)
    if not path.exists():
        return _error(f"{path}: no such file. Run `voicebench ingest` to build pairs from your sources.")
    if problem := _unknown_model(workspace, args.model):
        return _error(problem)
    budgets, counters, missing = _counters(workspace, args.model)
    try:
        stats = file_stats(path, budgets, counters)
    except PairsFileError as error:
        return _error(str(error))
    if args.json:
        print(terminal_json(stats, indent=2))
        return 0
    _say(f"{path}: {stats['pairs']} pairs" + (f", {stats['bad_lines']} unreadable lines" if stats["bad_lines"] else ""))
    _say("tiers:  " + ", ".join(f"{tier} {count}" for tier, count in stats["tiers"].items()))
    _say("splits: " + ", ".join(f"{split} {count}" for split, count in stats["splits"].items()))
    _say(f"sources ({len(stats['sources'])}):")
    shown = {safe_text(source): counts for source, counts in stats["sources"].items()}
    width = max((len(source) for source in shown), default=0)
    for source, counts in shown.items():
        detail = ", ".join(f"{split} {count}" for split, count in sorted(counts.items()))
        _say(f"  {source:<{width}}  {detail}")
    if stats["tokens"]:
        print("tokens:")
        for name, numbers in stats["tokens"].items():
            _say(f"  {name}: {numbers['total']} total, longest pair {numbers['max']}, "
                 f"{numbers['over_budget']} over the budget of {numbers['budget']}")
    for name, reason in sorted(missing.items()):
        if args.model:
            _say(f"  {name}: not counted — {reason}")
    not_counted = sorted(set(missing) - set(args.model or []))
    if not_counted:
        _say(f"  (no tokenizer on this machine for: {', '.join(not_counted)})")
    return 0


# pairs export ------------------------------------------------------------------------------------

def run_export_command(args: argparse.Namespace) -> int:
    from engine.curate.export import export_pairs, export_splits
    from engine.curate.pairs import load_pairs

    workspace = _workspace(args)
    path = _pairs_path(args, workspace)
    if not path.exists():
        return _error(f"{path}: no such file. Run `voicebench ingest` to build pairs from your sources.")
    pair_file = load_pairs(path)
    if pair_file.bad_lines and not args.allow_errors:
        for bad in pair_file.bad_lines:
            _say(f"{path}:{bad.line}: {bad.message}", err=True)
        print("fix these lines (see `voicebench pairs validate`) or pass --allow-errors to leave them out",
              file=sys.stderr)
        return 1
    if args.system and args.format != "messages":
        return _error("--system only applies to --format messages")
    from engine.curate.export import split_paths

    outputs = split_paths(args.out, args.format).values() if args.split == "both" else [args.out]
    for output in outputs:
        workspace.check_output(output, inputs={path: "the pairs file being exported"})
    if args.split == "both":
        for out, count in export_splits(pair_file.pairs, args.out, args.format, system=args.system).items():
            _say(f"wrote {out}: {count} pairs ({args.format})")
        return 0
    count = export_pairs(pair_file.pairs, args.out, args.format, args.split, system=args.system)
    _say(f"wrote {args.out}: {count} pairs ({args.format}, split {args.split})")
    return 0
