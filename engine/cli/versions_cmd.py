"""`voicebench versions`: list, show, gate, promote and roll back versions of your model.

    voicebench versions list
    voicebench versions show v2
    voicebench versions gate runs/RUN/checkpoints/checkpoint-20      # the verdict, nothing written
    voicebench versions promote runs/RUN/checkpoints/checkpoint-20 --note "warmer openings"
    voicebench versions promote runs/RUN/checkpoints/checkpoint-40 --force   # past a worse/untested gate
    voicebench versions rollback v1

The current version is what the workspace model `voice` means (`voicebench generate --model
voice`, canaries, the Canvas). Refusals and bad input print one line and exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from engine.display import safe_text

EXIT_USAGE = 2


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "versions", help="versions of your model: list, show, gate, promote, rollback",
        description="A version is an immutable snapshot of a checkpoint in models/versions/vN/, promoted only "
                    "when the gate finds it better than the current version on the canaries (or with --force).",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="every version, the current one marked")
    listing.add_argument("--json", action="store_true", help="one JSON object per version")
    show = actions.add_parser("show", help="one version: provenance, settings and its gate")
    show.add_argument("name", help="version name (v1, v2, …)")
    show.add_argument("--json", action="store_true", help="the full record as JSON")
    gate = actions.add_parser("gate", help="compare a checkpoint with the current version; writes nothing")
    gate.add_argument("checkpoint", help="checkpoint folder (runs/<id>/checkpoints/checkpoint-N)")
    gate.add_argument("--json", action="store_true", help="the gate's evidence as JSON")
    promote = actions.add_parser("promote", help="snapshot a checkpoint as the next version, through the gate")
    promote.add_argument("checkpoint", help="checkpoint folder (runs/<id>/checkpoints/checkpoint-N)")
    promote.add_argument("--note", default="", help="why this version (kept with it)")
    promote.add_argument("--force", action="store_true",
                         help="promote even when the gate says worse, not distinguishable or untested (recorded)")
    rollback = actions.add_parser("rollback", help="make an earlier version current again")
    rollback.add_argument("name", help="version name (v1, …)")
    rollback.add_argument("--note", default="", help="why (kept in the history)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.judge.workspace_store import open_workspace_store, reading_store
    from engine.models.portable import ArtefactError
    from engine.models.versions import GateRefused
    from engine.workspace import Workspace, WorkspaceError

    try:
        workspace = Workspace.open(args.workspace)
        if args.action != "promote":  # list, show, gate and rollback only read (or refuse, as rollback may)
            db = reading_store(workspace)
        else:
            if not workspace.db_path.exists():  # refused before the store is made
                from engine.models.versions import check_checkpoint

                check_checkpoint(workspace, args.checkpoint)
            db = open_workspace_store(workspace)
        return ACTIONS[args.action](workspace, db, args)
    except GateRefused as refusal:
        if getattr(args, "json", False):
            print(json.dumps(refusal.gate.to_dict()))
        print(f"voicebench versions: {safe_text(str(refusal))}", file=sys.stderr)
        return EXIT_USAGE
    except (WorkspaceError, ArtefactError) as error:
        print(f"voicebench versions: {safe_text(str(error))}", file=sys.stderr)
        return EXIT_USAGE


def _say(text: str) -> None:
    """Print a line that may hold a note, label or path from the workspace: control characters
    (terminal escapes) are shown, not obeyed."""
    print(safe_text(text))


def _list(workspace: Any, db: Any, args: argparse.Namespace) -> int:
    from engine.models.versions import list_versions

    versions = list_versions(db)
    if args.json:
        for version in versions:
            print(json.dumps(_plain(version)))
        return 0
    if not versions:
        _say("no versions yet; promote a checkpoint with `voicebench versions promote runs/<id>/checkpoints/checkpoint-N`")
        return 0
    for version in versions:
        mark = "*" if version.current else " "
        forced = " (forced)" if version.forced else ""
        source = f"{version.run_id}/{version.checkpoint}" if version.run_id else version.checkpoint
        _say(f"{mark} {version.name:<4} {version.created_at[:19]}  {version.kind:<7} {source}  "
              f"gate: {version.verdict}{forced}  {' '.join(version.note.split())}")
    return 0


def _show(workspace: Any, db: Any, args: argparse.Namespace) -> int:
    from engine.models.versions import get_version, history

    version = get_version(db, args.name)
    if args.json:
        print(json.dumps(_plain(version), indent=2))
        return 0
    _say(f"{version.name}{' (current)' if version.current else ''}: {version.path}")
    _say(f"  from      {version.run_id}/{version.checkpoint} (step {version.step})")
    _say(f"  base      {version.base_model}   kind {version.kind}")
    _say(f"  hash      {version.content_hash[:16]}   pairs {str(version.pairs_hash)[:16]}")
    _say(f"  gate      {version.gate.get('message', version.verdict)}{'  [forced]' if version.forced else ''}")
    _say(f"  note      {version.note or '-'}")
    for event in history(db):
        if event["version"] == version.name:
            _say(f"  {event['at'][:19]}  {event['action']}  {event['note'] or ''}".rstrip())
    return 0


def _gate(workspace: Any, db: Any, args: argparse.Namespace) -> int:
    from engine.models.versions import gate_for

    result = gate_for(workspace, db, args.checkpoint)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        _say(result.message)
    return 0


def _promote(workspace: Any, db: Any, args: argparse.Namespace) -> int:
    from engine.models.versions import promote

    outcome = promote(workspace, db, args.checkpoint, note=args.note, force=args.force)
    forced = " (forced past the gate)" if outcome.version.forced else ""
    _say(f"{outcome.version.name} is now current{forced}: {outcome.version.path}")
    _say(f"  gate: {outcome.gate.message}")
    return 0


def _rollback(workspace: Any, db: Any, args: argparse.Namespace) -> int:
    from engine.models.versions import rollback

    version = rollback(workspace, db, args.name, note=args.note)
    _say(f"{version.name} is now current: {version.path}")
    return 0


def _plain(version: Any) -> dict[str, Any]:
    import dataclasses

    return dataclasses.asdict(version)


ACTIONS = {"list": _list, "show": _show, "gate": _gate, "promote": _promote, "rollback": _rollback}
