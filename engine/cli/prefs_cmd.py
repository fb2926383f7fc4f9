"""`voicebench prefs export`: preference pairs (TRL format) from your votes, ratings and writing.

    voicebench prefs export                                  # votes + rubric ratings → data/prefs.jsonl
    voicebench prefs export --threshold 1.5 --out prefs.jsonl
    voicebench prefs export --self-play --model voice       # also: your response vs the model's attempt

Then train on them: `voicebench train --method dpo --pairs data/prefs.jsonl`.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections import Counter
from pathlib import Path

from engine.display import safe_text

EXIT_USAGE = 2
DEFAULT_OUT = "data/prefs.jsonl"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "prefs", help="preference pairs for DPO from your judgements",
        description="Write {prompt, chosen, rejected} JSONL (TRL's preference format) from pairwise votes, "
                    "rubric ratings that differ by a threshold, and optionally self-play (your response "
                    "chosen over the model's attempt at the same prompt).",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    export = actions.add_parser("export", help="write the preference file")
    export.add_argument("--out", default=DEFAULT_OUT, metavar="JSONL", help=f"where to write (default {DEFAULT_OUT})")
    export.add_argument("--threshold", type=float, default=1.0,
                        help="rubric points two outputs' mean scores must differ by (default 1.0)")
    export.add_argument("--no-votes", action="store_true", help="leave out pairwise votes")
    export.add_argument("--no-ratings", action="store_true", help="leave out rubric-rating pairs")
    export.add_argument("--self-play", action="store_true",
                        help="add your responses (chosen) against the model's greedy attempts (rejected)")
    export.add_argument("--model", default="voice",
                        help="model for --self-play (default: voice, the current version)")
    export.add_argument("--pairs", default=None, metavar="JSONL", help="pairs for --self-play (default: data/pairs.jsonl)")
    export.add_argument("--limit", type=int, default=None, help="at most this many pairs for --self-play")
    export.add_argument("--max-new-tokens", type=int, default=96, help="length of each self-play attempt")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.judge.prefs import PreferenceError, rubric_preferences, vote_preferences, write_preferences
    from engine.judge.workspace_store import reading_store
    from engine.models.loading import ModelNotFoundError
    from engine.train.data import DataError
    from engine.workspace import Workspace, WorkspaceError

    problem = _flag_problem(args)
    if problem:
        print(f"voicebench prefs: {problem}", file=sys.stderr)
        return EXIT_USAGE
    try:
        workspace = Workspace.open(args.workspace)
        out = Path(args.out).expanduser()
        out = out if out.is_absolute() else workspace.root / out
        pairs_path = workspace.root / args.pairs if args.pairs else workspace.pairs_path
        workspace.check_output(out, inputs={pairs_path: "the pairs file self-play reads"} if args.self_play else None)
        db = reading_store(workspace)
        rows = [] if args.no_votes else vote_preferences(db)
        if not args.no_ratings:
            rows += rubric_preferences(db, args.threshold)
        if args.self_play:
            rows += _self_play(workspace, args)
        target = write_preferences(rows, out)
    except (WorkspaceError, PreferenceError, ModelNotFoundError, DataError) as error:
        print(f"voicebench prefs: {safe_text(str(error))}", file=sys.stderr)
        return EXIT_USAGE
    counts = Counter((row["source"], row["split"]) for row in rows)
    summary = ", ".join(f"{count} {source} ({split})" for (source, split), count in sorted(counts.items()))
    print(safe_text(f"wrote {len(rows)} preference pairs to {target}: {summary}"))
    return 0


def _flag_problem(args: argparse.Namespace) -> str:
    """What is wrong with a numeric flag, or ""."""
    if not (math.isfinite(args.threshold) and args.threshold > 0):
        return f"--threshold {args.threshold}: must be a positive number (rubric points between two outputs)."
    if args.limit is not None and args.limit < 1:
        return f"--limit {args.limit}: must be at least 1 (leave it out for every pair)."
    if args.max_new_tokens < 1:
        return f"--max-new-tokens {args.max_new_tokens}: must be at least 1."
    return ""


def _self_play(workspace, args: argparse.Namespace) -> list:
    from engine.judge.prefs import self_play_preferences
    from engine.models.loading import load_entry
    from engine.train.data import load_training_pairs

    entry = workspace.model(args.model)
    pairs_path = workspace.root / args.pairs if args.pairs else workspace.pairs_path
    pairs, _ = load_training_pairs(pairs_path)
    pairs = pairs[: args.limit] if args.limit else pairs
    loaded = load_entry(entry)
    use_template = bool(getattr(loaded.tokenizer, "chat_template", None))
    stream = self_play_preferences(loaded, pairs, max_new_tokens=args.max_new_tokens, use_template=use_template)
    while True:
        try:
            progress = next(stream)
        except StopIteration as stop:
            return stop.value
        print(f"self-play {progress.done}/{progress.total}", file=sys.stderr, flush=True)
