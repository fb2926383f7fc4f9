"""`voicebench models`: the workspace's models and what of each is on this machine.

    voicebench models                 # every configured model
    voicebench models llada-8b-instruct demo-ar

Reads files only (engine/models/doctor.py): offline, no torch. A model not downloaded gets
one line with the command that fetches it; broken files (missing shards, another family's
config, a diffusion tokenizer without a mask token) get one line each and exit status 2.
"""

from __future__ import annotations

import argparse
import sys

from engine.display import safe_text


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "models", help="list the workspace's models and what of each is on this machine",
        description="For each model: config, tokenizer, weights, chat template, special ids (EOS, end of "
                    "turn, mask), family, parameter count and the memory needed to sample it. Offline.",
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help="only these models (names or folders)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.models.doctor import check_model
    from engine.workspace import Workspace, WorkspaceError

    try:
        workspace = Workspace.open(args.workspace)
    except WorkspaceError as error:
        print(f"voicebench models: error: {safe_text(str(error))}", file=sys.stderr)
        return 2
    names = args.names or list(workspace.models)
    broken = False
    for name in names:
        report = check_model(workspace.model(name))
        print(safe_text("\n".join(report.lines())))
        broken = broken or bool(report.problems)
    return 2 if broken else 0
