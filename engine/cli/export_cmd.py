"""`voicebench export`: a version or checkpoint as a folder plain transformers/peft load.

    voicebench export v2 --out ~/models/my-voice-adapter            # LoRA adapter + model card
    voicebench export v2 --out ~/models/my-voice --merged --dtype bfloat16   # full model, safetensors

(Not to be confused with `voicebench pairs export`, which writes the training pairs.)
The folder is written under a temporary name and renamed, and never over a non-empty folder.
"""

from __future__ import annotations

import argparse
import sys

from engine.display import safe_text

EXIT_USAGE = 2


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export", help="export a version or checkpoint as an adapter or merged model folder",
        description="Write a version (v1, …) or checkpoint as a peft adapter folder, or with --merged as a "
                    "complete model (LoRA folded in, safetensors shards, tokenizer, chat template, generation "
                    "config) that AutoModelFor… loads without voicebench; both with a model card.",
    )
    parser.add_argument("source", metavar="VERSION_OR_CHECKPOINT",
                        help="a version name (v2) or folder (models/versions/v2, runs/<id>/checkpoints/checkpoint-N)")
    parser.add_argument("--out", required=True, metavar="DIR", help="new or empty folder to write")
    parser.add_argument("--merged", action="store_true", help="fold the adapter into the base and write full weights")
    parser.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default=None,
                        help="weights dtype of a merged export (default: float32)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.judge.workspace_store import reading_store
    from engine.models.loading import ModelNotFoundError
    from engine.models.portable import ArtefactError, artefact_in, export_artefact
    from engine.models.versions import provenance_of
    from engine.workspace import Workspace, WorkspaceError

    try:
        workspace = Workspace.open(args.workspace)
        db = reading_store(workspace)
        provenance, evaluation = provenance_of(workspace, db, artefact_in(workspace, args.source))
        out = export_artefact(workspace, args.source, args.out, merged=args.merged, dtype=args.dtype,
                              provenance=provenance, evaluation=evaluation)
    except (WorkspaceError, ArtefactError, ModelNotFoundError) as error:
        print(f"voicebench export: {safe_text(str(error))}", file=sys.stderr)
        return EXIT_USAGE
    kind = "merged model" if args.merged else "adapter"
    print(safe_text(f"wrote {kind} to {out}"))
    return 0
