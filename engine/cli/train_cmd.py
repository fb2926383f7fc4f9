"""`voicebench train …`: fine-tune a model on the workspace's pairs, in this process.

Same flags and events as `python -m engine.train` (engine/train/options.py). For several
processes or GPUs launch the module instead: `torchrun --nproc_per_node 2 -m engine.train …`
or `accelerate launch --num_processes N -m engine.train …`.
"""

from __future__ import annotations

import argparse

from engine.train.options import add_train_arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `voicebench train`."""
    parser = subparsers.add_parser(
        "train",
        help="fine-tune a model on the pairs (LoRA, QLoRA, full or masked diffusion)",
        description="Fine-tune a model on the workspace's pairs. Runs are recorded in runs/<id>/ "
        "(config.toml, status.json, events.jsonl, checkpoints). With --json, prints one JSON "
        "event per line (see engine/train/events.py).",
    )
    add_train_arguments(parser, workspace_flag=False)  # -w/--workspace is global
    parser.set_defaults(func=handle_train)


def handle_train(args: argparse.Namespace) -> int:
    from engine.train.__main__ import run_from_args

    if getattr(args, "method", None) == "dpo":  # refuse before a run folder exists: exit 2, one line
        import sys

        from engine.train.dpo import refusal
        from engine.workspace import Workspace, WorkspaceError

        try:
            reason = refusal(Workspace.open(args.workspace), getattr(args, "model", "demo-ar"))
        except WorkspaceError as error:
            reason = str(error)
        if reason:
            print(f"voicebench train: {reason}", file=sys.stderr)
            return 2

    return run_from_args(args)
