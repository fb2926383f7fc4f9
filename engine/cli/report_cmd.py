"""`voicebench report`: the leaderboard, agreement figures and canaries side by side.

    voicebench report                          # markdown on stdout
    voicebench report --format csv --out leaderboard.csv
    voicebench report --format json --out report.json
"""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report", help="print or write the leaderboard (markdown, csv or json)",
        description="Leaderboard per model/run/checkpoint from judgments.db: rubric means and Bradley–Terry "
                    "scores with bootstrap 95% intervals, win rates, position bias, test–retest and "
                    "inter-rater agreement, automatic metrics, and canary outputs side by side.",
    )
    parser.add_argument("--format", choices=("markdown", "csv", "json"), default="markdown",
                        help="output format (csv holds the leaderboard rows only)")
    parser.add_argument("--out", default=None, metavar="FILE", help="write here (atomically) instead of stdout")
    parser.add_argument("--samples", type=int, default=200, help="bootstrap resamples for Bradley–Terry intervals")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed, so a report can be reproduced")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.atomic import write_atomic
    from engine.display import safe_text
    from engine.judge.report import build_report, render
    from engine.judge.workspace_store import reading_store
    from engine.workspace import Workspace

    workspace = Workspace.open(args.workspace)
    if args.samples < 1:
        print(f"voicebench report: --samples {args.samples}: must be at least 1.", file=sys.stderr)
        return 2
    if args.out:
        workspace.check_output(args.out)
    db = reading_store(workspace, rubric=True)  # nothing judged yet: an empty report with the rubric
    text = render(build_report(db, bt_samples=args.samples, seed=args.seed), args.format)
    if args.out:
        target = write_atomic(args.out, text)
        print(f"wrote {safe_text(str(target))}", file=sys.stderr)
    else:
        sys.stdout.write(safe_text(text))  # markdown and JSON are safe already; CSV keeps raw values in files only
    return 0

