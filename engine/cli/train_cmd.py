"""`voicebench train …`: fine-tune a model on the workspace's pairs, in this process.

Same flags and events as `python -m engine.train` (engine/train/options.py). For several
processes or GPUs launch the module instead: `torchrun --nproc_per_node 2 -m engine.train …`
or `accelerate launch --num_processes N -m engine.train …`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.display import safe_text
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
    parser.add_argument("--estimate", action="store_true",
                        help="print the predicted peak GPU memory of these settings (per term, per card, "
                             "and the cheapest change that fits) and exit without training")
    parser.set_defaults(func=handle_train)


def handle_train(args: argparse.Namespace) -> int:
    if getattr(args, "estimate", False):
        return print_estimate(args)
    from engine.train.__main__ import run_from_args
    from engine.train.options import config_overrides
    from engine.train.config import ConfigError
    from engine.train.run import resolve_settings
    from engine.workspace import Workspace, WorkspaceError

    if getattr(args, "method", None) == "dpo":  # refuse before a run folder exists: exit 2, one line
        from engine.train.dpo import refusal

        try:
            reason = refusal(Workspace.open(args.workspace), getattr(args, "model", "demo-ar"))
        except WorkspaceError as error:
            reason = str(error)
        if reason:
            print(f"voicebench train: {safe_text(reason)}", file=sys.stderr)
            return 2

    # Settings are checked here first, so a bad voicebench.toml, config or flag ends like
    # every other command's bad input (exit 2, one line, nothing written); the run itself
    # reports its own failures as events (exit 1).
    workspace = Workspace.open(args.workspace)
    config, _, _ = resolve_settings(workspace, config_overrides(args), getattr(args, "config", None),
                                    getattr(args, "resume", None))
    pairs = Path(config.pairs).expanduser()
    pairs = pairs if pairs.is_absolute() else workspace.root / pairs
    if pairs.is_dir():  # before a run folder exists; a missing file is the run's own "no pairs file" event
        raise ConfigError(f"{pairs}: is a folder, not a pairs file. Give --pairs a .jsonl file.")
    from engine.models.loading import resolve_model_path

    resolve_model_path(workspace.model(config.model).path)  # a mistyped --model: exit 2, no run folder
    return run_from_args(args)


def print_estimate(args: argparse.Namespace) -> int:
    """`--estimate`: the memory estimate for the settings as a run would layer them (config
    defaults < the workspace's [train] < --config < flags). Reads config.json only."""
    from engine.models.loading import ModelNotFoundError
    from engine.models.memory import ShapeError, estimate_for_config
    from engine.train.config import ConfigError
    from engine.train.options import config_overrides
    from engine.train.run import resolve_settings
    from engine.workspace import Workspace, WorkspaceError

    try:
        workspace = Workspace.open(args.workspace)
        config, _, _ = resolve_settings(workspace, config_overrides(args), getattr(args, "config", None), None)
        estimate = estimate_for_config(workspace, config)
    except (WorkspaceError, ConfigError, ModelNotFoundError, ShapeError) as error:
        print(f"voicebench train: error: {safe_text(str(error))}", file=sys.stderr)
        return 2
    print(f"{config.model}: " + "\n".join(estimate.lines()))
    return 0
