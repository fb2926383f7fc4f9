"""`python -m engine.train …` — the training entry point (also what torchrun / accelerate launch run).

    python -m engine.train --model demo-ar --method lora --max-steps 30 --json
    torchrun --nproc_per_node 2 -m engine.train --model demo-ar --max-steps 10 --out runs/ddp
    accelerate launch --num_processes 4 -m engine.train --config runs/<id>/config.toml

Flags are in engine/train/options.py; events in engine/train/events.py.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from engine.train.options import add_train_arguments, config_overrides


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m engine.train",
        description="Fine-tune a model on the workspace's pairs (LoRA, QLoRA, full or masked diffusion).",
    )
    add_train_arguments(parser)
    return parser


def run_from_args(args: argparse.Namespace) -> int:
    from engine.train.run import run_training

    return run_training(
        getattr(args, "workspace", "."), config_overrides(args),
        config_path=getattr(args, "config", None), resume=getattr(args, "resume", None),
        json_mode=bool(getattr(args, "json", False)),
    )


def main(argv: Sequence[str] | None = None) -> int:
    return run_from_args(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
