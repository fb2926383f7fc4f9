"""`voicebench sweep`: sampler settings judged like models.

    voicebench sweep --model demo-diffusion --vary temperature=0,0.8 --vary block_length=16,32
    voicebench sweep --model demo-diffusion --vary steps=32,64 --vary eos=keep,suppress --grid
    voicebench sweep --model demo-ar --vary temperature=0,0.7,1.0 --canaries river-short,bread-short
    voicebench sweep --model demo-diffusion --vary dtype=bfloat16,float16,4bit

From a base setting (the workspace's [sampler]/[canary] tables, or --preset NAME) it changes
one variable at a time (every combination with --grid), runs the canaries for each setting
and stores each setting's outputs as its own contestant ("demo-ar · T=0.8"). Every value is
checked before anything generates. Then it prints a table with no ratings in it.
"""

from __future__ import annotations

import argparse
import sys

from engine.display import safe_text


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "sweep", help="run the canaries under several sampler settings, each stored as its own contestant",
        description="Vary sampler settings one at a time (or as a grid), run the canaries for each, and store each "
                    "setting as a contestant that blind sessions, the leaderboard, `voicebench voice` and the "
                    "report compare like models.",
    )
    parser.add_argument("--model", required=True, help="workspace model name (demo-ar, …) or a model folder")
    parser.add_argument("--adapter", default=None, metavar="PATH", help="peft adapter folder applied on top of --model")
    parser.add_argument("--vary", action="append", default=[], metavar="VAR=V1,V2",
                        help="a variable and its values: temperature, steps, block_length, cfg_scale, remasking, "
                             "threshold, eos (keep|suppress|deprioritise), use_template, "
                             "dtype (float32|bfloat16|float16|4bit); repeat for more")
    parser.add_argument("--grid", action="store_true", help="every combination instead of one variable at a time")
    parser.add_argument("--preset", default=None, metavar="NAME", help="base setting from presets.toml / voicebench.toml")
    parser.add_argument("--canaries", default=None, metavar="IDS",
                        help="comma-separated canary ids, kinds or sets (default: all canaries)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed, the same for every setting (default 0)")
    parser.add_argument("--json", action="store_true", help="print one JSON event per line")
    parser.set_defaults(func=run)


def parse_vary(items: list[str]) -> dict[str, list[str]]:
    from engine.sample.sweep import SweepError

    vary: dict[str, list[str]] = {}
    for item in items:
        name, sep, values = item.partition("=")
        if not sep or not name.strip():
            raise SweepError(f"--vary {item!r}: write it as VARIABLE=V1,V2 (like temperature=0,0.8).")
        vary.setdefault(name.strip(), []).extend(value for value in values.split(",") if value.strip())
    if not vary:
        raise SweepError("nothing to sweep: add --vary VARIABLE=V1,V2 (like --vary temperature=0,0.8).")
    return vary


def run(args: argparse.Namespace) -> int:
    from engine.judge.canary import CanaryDone, CanaryFileError, CanaryStart
    from engine.judge.workspace_store import open_workspace_store
    from engine.models.loading import ModelNotFoundError, RemoteCodeRefused
    from engine.models.portable import ArtefactError
    from engine.sample.sweep import SweepError, SweepSettingDone, plan_sweep, preset, render_table, run_sweep
    from engine.workspace import Workspace, WorkspaceError

    try:
        workspace = Workspace.open(args.workspace)
        if args.adapter:  # a damaged adapter is named here, before a model loads
            from engine.judge.canary import adapter_folder
            from engine.models.portable import check_complete

            check_complete(adapter_folder(workspace, args.adapter))
        base = preset(workspace, args.preset) if args.preset else {}
        canaries = [name.strip() for name in args.canaries.split(",") if name.strip()] if args.canaries else None
        plan = plan_sweep(workspace, args.model, parse_vary(args.vary), grid=args.grid, base=base,
                          adapter=args.adapter, canaries=canaries, seed=args.seed)
        if not plan.canary_ids:  # an empty canaries file: a sweep of nothing would look like success
            raise SweepError(f"{workspace.canaries_path}: no [[canary]] entries to sweep. Add some (see the README), "
                             "or copy the demo's data/canaries.toml.")
        db = open_workspace_store(workspace)
        rows = []
        for event in run_sweep(db, workspace, plan):
            if args.json:
                print(event.to_json(), flush=True)
            elif isinstance(event, CanaryStart):
                print(safe_text(f"{event.label}: {event.total} canaries, {event.new} to generate"), flush=True)
            elif isinstance(event, CanaryDone):
                print(f"  {event.generated} generated, {event.reused} reused", flush=True)
            if isinstance(event, SweepSettingDone):
                rows.append(event)
        if not args.json:
            print()
            print(safe_text(render_table(rows)))
            print("\nNo ratings here: rate the settings blind on the Judge screen; `voicebench voice LABEL` "
                  "adds the voice score.")
    except (WorkspaceError, SweepError, CanaryFileError, ModelNotFoundError, RemoteCodeRefused,
            FileNotFoundError, ArtefactError) as error:
        print(f"voicebench sweep: {safe_text(str(error))}", file=sys.stderr)
        return 2
    return 0
