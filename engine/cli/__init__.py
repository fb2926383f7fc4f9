"""The `voicebench` command.

`voicebench` with no subcommand opens the app on the workspace in the current folder
(`voicebench PATH` or `--workspace PATH` for another). Subcommands live in one module
each and register themselves here; none imports torch at module level, so `--help`
stays fast.

Exit codes: 0 done; 1 the command ran and found problems (`pairs validate`, `pairs export`
of a file with unreadable lines, `ingest` refusing to replace edited pairs, a failed
training run); 2 the input is unusable (a settings file, a flag, a model, a file) — one
line on stderr saying what, where and what to do, and no file written; 3 a fault inside
voicebench (one line asking for a report; VOICEBENCH_TRACEBACK=1 shows the traceback);
130 interrupted with ctrl+c.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path

from engine.cli import (
    canary_cmd,
    demo_cmd,
    export_cmd,
    generate_cmd,
    models_cmd,
    pairs_cmd,
    prefs_cmd,
    report_cmd,
    sweep_cmd,
    train_cmd,
    versions_cmd,
    voice_cmd,
    workspace_cmd,
)
from engine.library_noise import quiet_library_noise

COMMAND_MODULES = (workspace_cmd, pairs_cmd, generate_cmd, train_cmd, canary_cmd, report_cmd, demo_cmd, models_cmd,
                   versions_cmd, export_cmd, prefs_cmd, sweep_cmd, voice_cmd)


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
    try:
        if args.command is None:
            return workspace_cmd.open_app(args.workspace)
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("voicebench: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:  # noqa: BLE001 - the one place that turns errors into messages
        return report_error(args, error)


EXIT_PROBLEMS = 1
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 3
EXIT_INTERRUPTED = 130


def domain_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean "your input is unusable": their message already says what, where and
    what to do. Imported here, on the error path, so `--help` stays fast."""
    from engine.curate.pairs import SaveConflict
    from engine.curate.tokens import TokenizerUnavailable
    from engine.judge.prefs import PreferenceError
    from engine.judge.store import StoreError
    from engine.judge.voice import VoiceError
    from engine.models.loading import ModelNotFoundError, RemoteCodeRefused
    from engine.models.memory import ShapeError
    from engine.models.portable import ArtefactError
    from engine.sample.diffusion import SamplerSettingsError
    from engine.sample.sweep import SweepError
    from engine.sample.trace import TraceError
    from engine.settings import SettingsError
    from engine.train.config import ConfigError
    from engine.workspace import WorkspaceError

    return (SettingsError, WorkspaceError, SamplerSettingsError, ConfigError, ModelNotFoundError,
            RemoteCodeRefused, TokenizerUnavailable, SaveConflict, TraceError, StoreError, SweepError, VoiceError,
            PreferenceError, ArtefactError, ShapeError, OSError, UnicodeError)


def _os_message(error: OSError) -> str:
    """"PATH: what the system said. What to do." for a file the command could not use."""
    if not error.filename or error.strerror is None:
        return str(error)  # our own FileNotFoundError("… what to do") messages
    what = error.strerror[0].lower() + error.strerror[1:]
    if isinstance(error, IsADirectoryError):
        advice = "Give a file, not a folder"
    elif isinstance(error, FileNotFoundError):
        advice = "Check the path"
    elif isinstance(error, PermissionError):
        advice = "Check the file's permissions"
    else:
        advice = "Check the path and the disk"
    return f"{error.filename}: {what}. {advice}"


def report_error(args: argparse.Namespace, error: Exception) -> int:
    """One line on stderr for an error a command did not handle; the exit code."""
    from engine.display import safe_text

    command = " ".join(part for part in ("voicebench", args.command, getattr(args, "pairs_command", None)) if part)
    if isinstance(error, domain_errors()):
        message = _os_message(error) if isinstance(error, OSError) else str(error)
        code = EXIT_BAD_INPUT
    elif isinstance(error, sqlite3.DatabaseError):
        db_path = Path(args.workspace).expanduser() / "judgments.db"
        message = (f"{db_path}: cannot use the judgments store ({error}). If the file is not voicebench's, move it "
                   "aside and run again; if a newer voicebench wrote it, use that version")
        code = EXIT_BAD_INPUT
    else:
        message = (f"internal error: {type(error).__name__}: {error}. This is a bug in voicebench; please "
                   "report it with the command you ran (VOICEBENCH_TRACEBACK=1 shows the traceback)")
        code = EXIT_INTERNAL
    if os.environ.get("VOICEBENCH_TRACEBACK"):
        import traceback

        traceback.print_exception(error)
    first_line = " ".join(safe_text(message).split("\n"))
    print(f"{command}: {first_line}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
