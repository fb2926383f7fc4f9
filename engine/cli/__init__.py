"""The `voicebench` command.

`voicebench` with no subcommand opens the app on the workspace in the current folder
(`voicebench PATH` or `--workspace PATH` for another). Subcommands live in one module
each and register themselves here; none imports torch at module level, so `--help`
stays fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from engine.cli import (canary_cmd, demo_cmd, generate_cmd, models_cmd, pairs_cmd, report_cmd, train_cmd,
                        workspace_cmd)
from engine.library_noise import quiet_library_noise

COMMAND_MODULES = (workspace_cmd, pairs_cmd, generate_cmd, train_cmd, canary_cmd, report_cmd, demo_cmd, models_cmd)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="voicebench",
        description="A terminal workbench for fine-tuning open models on your own writing. "
        "With no command, opens the app on the workspace in the current folder.",
    )
    parser.add_argument(
        "--workspace", "-w", default=".", metavar="DIR",
        help="workspace folder (default: the current folder; the repo root is the bundled demo)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    if argv and argv[0] not in commands and not argv[0].startswith("-") and Path(argv[0]).is_dir():
        argv = ["app", *argv]  # `voicebench PATH` opens that workspace
    args = parser.parse_args(argv)
    quiet_library_noise()
    if args.command is None:
        return workspace_cmd.open_app(args.workspace)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
