"""Command-line flags of `python -m engine.train` and `voicebench train` (one definition).

Flags default to "not given" (argparse.SUPPRESS), so the runner can layer settings:
TrainConfig defaults < the workspace's [train] table < `--config FILE` (or the resumed
run's config.toml) < flags. No torch import here: `voicebench --help` stays fast.
"""

from __future__ import annotations

import argparse
from typing import Any

from engine.train.config import METHODS, SCHEDULERS, TEMPLATES


def _targets(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def add_train_arguments(parser: argparse.ArgumentParser, *, workspace_flag: bool = True) -> None:
    S = argparse.SUPPRESS
    add = parser.add_argument
    if workspace_flag:
        add("--workspace", "-w", default=".", metavar="DIR",
            help="workspace folder (pairs, canaries, runs/, judgments.db); default: current folder")
    add("--config", metavar="TOML", default=S,
        help="load settings from a run's config.toml (flags given as well override it)")
    add("--resume", nargs="?", const="", metavar="RUN_DIR", default=S,
        help="continue a run from its last checkpoint (optimizer, scheduler, RNG and data order "
             "restored); RUN_DIR defaults to --out or the folder of --config")
    add("--json", action="store_true", default=S,
        help="print one JSON event per line on stdout (the protocol in engine/train/events.py)")
    add("--label", default=S,
        help='short name for the run, shown in the runs list and judging (default: "<model> <method> #N")')
    add("--model", default=S, help="workspace model name (demo-ar, demo-diffusion, …) or a model folder")
    add("--method", choices=METHODS, default=S,
        help="lora, qlora (4-bit NF4 base + LoRA), full (all weights), or diffusion "
             "(all weights, masked-diffusion model), or dpo (LoRA on preference pairs from `voicebench prefs "
             "export`; causal models only); diffusion models always use the diffusion loss")
    add("--pairs", default=S, metavar="JSONL", help="pairs file (default: data/pairs.jsonl in the workspace)")
    add("--template", choices=TEMPLATES, default=S,
        help="prompt format: auto (chat template when the tokenizer has one, plain for GPT-2), chat or plain")
    add("--max-steps", type=int, dest="max_steps", default=S, help="optimizer steps (0: use --epochs)")
    add("--epochs", type=float, default=S, help="epochs over the train split when --max-steps is 0")
    add("--lr", type=float, default=S,
        help="peak learning rate (default: 2e-4 LoRA, 2e-5 full; diffusion half of that because "
             "its 1/p loss weighting inflates gradient variance; ×5 for models under 50M parameters)")
    add("--batch-size", type=int, dest="batch_size", default=S, help="sequences per device per micro-batch")
    add("--grad-accum", type=int, dest="grad_accum", default=S, help="micro-batches per optimizer step")
    add("--max-length", type=int, dest="max_length", default=S, help="tokens per sequence (prompt + response)")
    add("--warmup-steps", type=int, dest="warmup_steps", default=S, help="linear learning-rate warm-up steps")
    add("--scheduler", choices=SCHEDULERS, default=S, help="learning-rate schedule")
    add("--weight-decay", type=float, dest="weight_decay", default=S, help="AdamW weight decay")
    add("--eval-every", type=int, dest="eval_every", default=S, help="evaluate on the val split every N steps (0: never)")
    add("--save-every", type=int, dest="save_every", default=S, help="checkpoint every N steps (0: only at the end)")
    add("--save-limit", type=int, dest="save_limit", default=S, help="keep only the newest N checkpoints")
    add("--seed", type=int, default=S, help="seed for adapters, data order and diffusion masks")
    add("--out", default=S, metavar="DIR", help="run folder (default: runs/<time>-<model>-<method>)")
    add("--gradient-checkpointing", action=argparse.BooleanOptionalAction, dest="gradient_checkpointing",
        default=S, help="recompute activations in the backward pass to save memory (where supported)")
    add("--compute-dtype", choices=("float32", "bfloat16", "float16"), dest="compute_dtype", default=S,
        help="weights/compute dtype (default: float32 on CPU, bfloat16 on GPU); QLoRA's compute dtype")
    add("--diffusion-eps", type=float, dest="diffusion_eps", default=S,
        help="minimum masking probability eps in p = (1-eps)t + eps")
    add("--early-stop", action=argparse.BooleanOptionalAction, dest="early_stop", default=S,
        help="stop when validation loss rises while training loss falls (memorisation)")
    add("--memorisation-patience", type=int, dest="memorisation_patience", default=S,
        help="evaluations in a row with that pattern before warning")
    lora = parser.add_argument_group("LoRA")
    lora.add_argument("--lora-rank", type=int, dest="lora_rank", default=S, help="adapter rank r")
    lora.add_argument("--lora-alpha", type=int, dest="lora_alpha", default=S, help="adapter scale numerator (scale = alpha/r)")
    lora.add_argument("--lora-dropout", type=float, dest="lora_dropout", default=S, help="dropout on the adapter input")
    lora.add_argument("--lora-targets", type=_targets, dest="lora_targets", default=S,
                      help="comma-separated module-name suffixes (default per family, e.g. q_proj,…,down_proj "
                           "for Llama, c_attn,c_proj,c_fc for GPT-2)")
    canary = parser.add_argument_group("canaries")
    canary.add_argument("--canaries", default=S,
                        help="all, none, or comma-separated canary ids, answered before training and at each checkpoint")
    canary.add_argument("--canary-max-new-tokens", type=int, dest="canary_max_new_tokens", default=S,
                        help="cap each canary's length (faster checkpoints)")
    canary.add_argument("--canary-seed", type=int, dest="canary_seed", default=S, help="sampling seed for canaries")
    canary.add_argument("--canary-temperature", type=float, dest="canary_temperature", default=S,
                        help="canary sampling temperature (default: the workspace's canary setting)")
    canary.add_argument("--canary-steps", type=int, dest="canary_steps", default=S,
                        help="diffusion sampler steps for canaries")


RUN_ONLY_KEYS = ("workspace", "config", "resume", "json", "func", "command", "estimate")


def config_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """TrainConfig fields the user gave on the command line."""
    return {key: value for key, value in vars(args).items() if key not in RUN_ONLY_KEYS}
