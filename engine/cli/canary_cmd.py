"""`voicebench canary`: answer the workspace's canary prompts with one model and store them.

    voicebench canary --model data/models/demo-ar
    voicebench canary --model demo-ar --adapter runs/RUN/checkpoint-20 --set known-topic-short --seed 1
    voicebench canary --model demo-diffusion --json      # one JSON event per line

Re-running with the same model bytes, adapter, settings and seed reuses the stored
outputs (nothing is generated twice). Outputs land in the workspace's judgments.db.
"""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "canary", help="run the workspace canaries on a model and store the outputs",
        description="Run the fixed canary prompts (data/canaries.toml) on a causal or diffusion model "
                    "with fixed seeds and the workspace's settings; outputs and their metrics go to judgments.db.",
    )
    parser.add_argument("--model", required=True, help="workspace model name (demo-ar, …) or a model folder")
    parser.add_argument("--adapter", default=None, metavar="PATH", help="peft adapter folder applied on top of --model")
    parser.add_argument("--set", dest="set_name", default=None, metavar="NAME",
                        help="only canaries whose `set`, kind or id is NAME (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed, the same for every canary (default 0)")
    parser.add_argument("--label", default=None,
                        help="leaderboard name (default: the model name, or <run-id>/<checkpoint> inside runs/)")
    parser.add_argument("--trace-dir", default=None, metavar="DIR", help="diffusion models: save each canary's sampler trace here (replay it on the Canvas screen)")
    parser.add_argument("--preset", default=None, metavar="NAME", help="named sampler settings (presets.toml, see `sweep`)")
    parser.add_argument("--json", action="store_true", help="print one JSON event per line instead of text")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.display import safe_text, terminal_json
    from engine.judge.canary import (CanaryDone, CanaryResult, CanaryStart, adapter_folder, load_canaries,
                                     run_canaries, select_canaries)
    from engine.judge.rubric import load_rubric
    from engine.judge.workspace_store import open_workspace_store
    from engine.models.loading import read_family, resolve_model_path
    from engine.sample.sweep import apply_preset
    from engine.workspace import Workspace

    if args.label is not None and (not args.label.strip() or any(ord(c) < 32 or ord(c) == 127 for c in args.label)):
        print(f"voicebench canary: --label {args.label!r}: give one line of text (no line breaks or "
              "control characters); it names the contestant on the leaderboard.", file=sys.stderr)
        return 2
    workspace = Workspace.open(args.workspace)
    if args.preset:
        workspace = apply_preset(workspace, args.model, args.preset)
    # Everything that can be wrong with the input is checked before judgments.db is opened
    # (which creates it): a command that fails on bad input leaves no file behind.
    canaries = select_canaries(load_canaries(workspace.canaries_path), args.set_name)
    if not canaries:  # an empty file: loading a model to answer nothing would look like success
        print(f"voicebench canary: {workspace.canaries_path}: no [[canary]] entries. Add some (see the README), "
              "or copy the demo's data/canaries.toml.", file=sys.stderr)
        return 2
    if not workspace.db_path.exists() and workspace.rubric_path.exists():
        load_rubric(workspace.rubric_path)
    entry = workspace.model(args.model)
    resolve_model_path(entry.path)
    read_family(entry.path, entry.family)  # a config.json that is not a model's settings: named, exit 2
    if args.adapter:
        from engine.models.portable import check_complete

        check_complete(adapter_folder(workspace, args.adapter))  # damaged config or weights: named, exit 2
    db = open_workspace_store(workspace)
    events = run_canaries(db, workspace, args.model, adapter=args.adapter, set_name=args.set_name,
                          seed=args.seed, label=args.label, trace_dir=args.trace_dir, canaries=canaries)
    for event in events:
        if args.json:
            print(terminal_json(event.to_dict(), separators=(",", ":")), flush=True)
        elif isinstance(event, CanaryStart):
            print(safe_text(f"{event.label}: {event.total} canaries, {event.new} to generate"), flush=True)
        elif isinstance(event, CanaryResult):
            how = "stored already" if event.reused else f"{event.token_count} tokens, {event.seconds:.1f} s"
            print(safe_text(f"  {event.canary_id} v{event.version} ({how}): {_preview(event.text)}"), flush=True)
        elif isinstance(event, CanaryDone):
            print(safe_text(f"{event.label}: {event.generated} generated, {event.reused} reused"), flush=True)
    return 0


def _preview(text: str, width: int = 100) -> str:
    flat = " ".join(text.split()) or "(empty)"
    return flat if len(flat) <= width else flat[: width - 1] + "…"
