"""`voicebench app [DIR]` opens the app; `voicebench init DIR` makes a new workspace."""

from __future__ import annotations

import argparse
import importlib
import sys

from engine.display import safe_text
from engine.workspace import Workspace, WorkspaceError, init_workspace


def register(subparsers: argparse._SubParsersAction) -> None:
    app = subparsers.add_parser("app", help="open the app (the default when no command is given)")
    app.add_argument("path", nargs="?", default=None, help="workspace folder (default: --workspace)")
    app.set_defaults(func=lambda args: open_app(args.path or args.workspace))

    init = subparsers.add_parser("init", help="make a new, empty workspace in DIR")
    init.add_argument("path", metavar="DIR", help="folder to create (may exist)")
    init.set_defaults(func=run_init)


def open_app(path: str) -> int:
    try:
        workspace = Workspace.open(path)
    except WorkspaceError as error:
        print(f"voicebench: {safe_text(str(error))}", file=sys.stderr)
        return 2
    # Imported by name so the engine package never imports the UI at module level.
    tui_app = importlib.import_module("tui.app")
    tui_app.run(workspace)
    return 0


def run_init(args: argparse.Namespace) -> int:
    workspace = init_workspace(args.path)
    print(f"made workspace {workspace.root}")
    print(f"  put essays and notes in {workspace.sources_dir}, then: voicebench -w {workspace.root} ingest")
    return 0
