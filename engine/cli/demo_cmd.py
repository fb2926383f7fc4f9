"""`voicebench demo`: the whole job on the bundled demo workspace.

    voicebench demo                  # open the app on the demo workspace
    voicebench demo --headless       # no terminal UI: validate, canaries, train, canaries, report
    voicebench demo --headless --model demo-diffusion --max-steps 10

The headless run, in order, printing a progress line as it goes:
1. validate `data/pairs.jsonl` (engine.curate.pairs.validate) and show the first problems;
2. answer the canaries with the base demo model (stored in judgments.db);
3. train briefly in a child process (`python -m engine.train … --json`), reading its
   JSON-line events (a crash there ends the demo with the child's error, not a traceback);
4. answer the canaries again with the trained checkpoint (adapter or full weights);
5. print the leaderboard report (markdown) — automatic metrics and both outputs side by
   side; the human columns fill in once you rate blind on the Judge screen.
It writes `runs/` and `judgments.db` in the workspace (both git-ignored) and runs on CPU.
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.display import safe_text

DEFAULT_MAX_STEPS = 20
STEP_LINE_EVERY = 5  # print every Nth training step (and the last)


class DemoError(Exception):
    """The demo cannot go on; the message says what to do. `exit_code` 2: the input or setup
    is unusable (nothing was written); 1: a step ran and failed (training)."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo", help="run the demo: the app, or --headless for the whole job without a UI",
        description="Run voicebench on the bundled demo workspace. --headless validates the pairs, runs the "
                    "canaries, trains a demo model briefly on CPU, runs the canaries again and prints the report.",
    )
    parser.add_argument("--headless", action="store_true", help="no terminal UI: print progress lines and a report")
    parser.add_argument("--model", default="demo-ar", help="demo model to train: demo-ar (default) or demo-diffusion")
    parser.add_argument("--method", default=None, choices=("lora", "full", "diffusion"),
                        help="training method (default: lora for demo-ar, diffusion for demo-diffusion)")
    parser.add_argument("--max-steps", type=int, default=DEFAULT_MAX_STEPS, dest="max_steps",
                        help=f"training steps (default {DEFAULT_MAX_STEPS}; a minute or two on CPU)")
    parser.add_argument("--set", dest="set_name", default=None, metavar="NAME",
                        help="only canaries whose set, kind or id is NAME (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="seed for training and canaries")
    parser.add_argument("--no-eval", action="store_true", dest="no_eval",
                        help="skip the validation pass at the end of training (quicker)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not args.headless:
        from engine.cli.workspace_cmd import open_app

        return open_app(args.workspace)
    try:
        run_headless(args.workspace, model=args.model, method=args.method, max_steps=args.max_steps,
                     set_name=args.set_name, seed=args.seed, evaluate=not args.no_eval)
    except DemoError as error:
        print(f"voicebench demo: {safe_text(str(error))}", file=sys.stderr)
        return error.exit_code
    return 0


def run_headless(root: str | Path, *, model: str = "demo-ar", method: str | None = None,
                 max_steps: int = DEFAULT_MAX_STEPS, set_name: str | None = None, seed: int = 0,
                 evaluate: bool = True, say: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The headless demo; returns the report dict (tests read it). Raises DemoError."""
    from engine.workspace import Workspace, WorkspaceError

    say = say or (lambda line: print(safe_text(line), flush=True))
    # Checked before minutes of canaries: the trainer would refuse them only after those.
    if max_steps < 1:
        raise DemoError(f"--max-steps {max_steps}: must be at least 1 (the demo trains for a fixed number of steps).")
    if seed < 0:
        raise DemoError(f"--seed {seed}: must be 0 or more.")
    try:
        workspace = Workspace.open(root)
    except WorkspaceError as error:
        raise DemoError(str(error)) from None
    entry = workspace.model(model)
    model_dir = Path(entry.path)
    if not (model_dir / "config.json").exists():
        raise DemoError(
            f"{model_dir}: the demo model {model!r} is not built. Build the demo models with "
            "`python -m engine.models.demo` (a few minutes on CPU), then run the demo again."
        )
    family = entry.family or _family(str(model_dir))
    method = method or ("lora" if family == "causal" else "diffusion")

    say(f"[1/5] pairs: validating {workspace.pairs_path}")
    _validate_pairs(workspace, say)

    from engine.judge.canary import CanaryFileError, load_canaries, select_canaries
    from engine.judge.rubric import RubricError, load_rubric
    from engine.judge.workspace_store import open_workspace_store

    try:  # checked before judgments.db is opened (and so created)
        select_canaries(load_canaries(workspace.canaries_path), set_name)
        if not workspace.db_path.exists() and workspace.rubric_path.exists():
            load_rubric(workspace.rubric_path)
    except (CanaryFileError, RubricError) as error:
        raise DemoError(str(error)) from None
    db = open_workspace_store(workspace)
    say(f"[2/5] canaries: base model {model}")
    try:
        _canaries(db, workspace, model, None, set_name, seed, say)
    except CanaryFileError as error:
        raise DemoError(str(error)) from None

    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
    run_dir = workspace.runs_dir / f"{model}-{method}-{stamp}"  # also the run id on the leaderboard
    say(f"[3/5] training: {model}, {method}, {max_steps} steps → {run_dir.relative_to(workspace.root)}")
    checkpoint = _train(workspace, model, method, max_steps, seed, run_dir, evaluate, say)

    say(f"[4/5] canaries: trained checkpoint {Path(checkpoint).name}")
    if method in ("lora", "qlora"):
        _canaries(db, workspace, model, checkpoint, set_name, seed, say)
    else:
        _canaries(db, workspace, checkpoint, None, set_name, seed, say)

    from engine.judge.report import build_report, render

    say("[5/5] report")
    data = build_report(db)
    say(render(data, "markdown"))
    say("Rate the outputs blind in the app (`voicebench`, F4 Judge) to fill in the human columns.")
    return data


def _family(path: str) -> str:
    from engine.models.loading import read_family

    return read_family(path)


def _validate_pairs(workspace: Any, say: Callable[[str], None]) -> None:
    from engine.curate.pairs import load_pairs, validate

    if not workspace.pairs_path.exists():
        raise DemoError(f"{workspace.pairs_path}: no pairs file. Make pairs with `voicebench ingest` first.")
    pair_file = load_pairs(workspace.pairs_path)
    problems = validate(pair_file)
    errors = [p for p in problems if p.severity == "error"]
    splits = {"train": 0, "val": 0}
    for pair in pair_file.pairs:
        splits[pair.split] = splits.get(pair.split, 0) + 1
    say(f"      {len(pair_file.pairs)} pairs ({splits.get('train', 0)} train, {splits.get('val', 0)} val), "
        f"{len(errors)} errors, {len(problems) - len(errors)} warnings")
    for problem in problems[:3]:
        say(f"      {problem}")
    if not pair_file.pairs:
        raise DemoError(f"{workspace.pairs_path}: no usable pairs, so there is nothing to train on.")


def _canaries(db: Any, workspace: Any, model: str, adapter: str | None, set_name: str | None, seed: int,
              say: Callable[[str], None]) -> None:
    from engine.judge.canary import CanaryDone, CanaryResult, run_canaries

    for event in run_canaries(db, workspace, model, adapter=adapter, set_name=set_name, seed=seed):
        if isinstance(event, CanaryResult):
            flat = " ".join(event.text.split()) or "(empty)"
            how = "stored" if event.reused else f"{event.seconds:.1f} s"
            say(f"      {event.canary_id} ({how}): {flat[:90]}{'…' if len(flat) > 90 else ''}")
        elif isinstance(event, CanaryDone):
            say(f"      {event.label}: {event.generated} generated, {event.reused} already stored")


def _train(workspace: Any, model: str, method: str, max_steps: int, seed: int, run_dir: Path,
           evaluate: bool, say: Callable[[str], None]) -> str:
    """Run `python -m engine.train --json` and follow its events; returns the last checkpoint."""
    command = [
        sys.executable, "-m", "engine.train", "--workspace", str(workspace.root), "--model", model,
        "--method", method, "--max-steps", str(max_steps), "--out", str(run_dir), "--seed", str(seed),
        "--save-every", "0", "--canaries", "none", "--json",
        # One validation pass, at the end: the demo's val loss without slowing the steps.
        "--eval-every", str(max_steps if evaluate else 0),
    ]
    # stderr (library logs) goes to a file: a full pipe nobody reads would stall the child.
    stderr_file = tempfile.TemporaryFile("w+", encoding="utf-8")
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr_file, text=True, cwd=workspace.root)
    done: dict[str, Any] | None = None
    errors: list[str] = []
    assert child.stdout is not None
    for line in child.stdout:
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue  # not protocol (a library printing); the events file has the record
        kind = event.get("event")
        if kind == "start":
            say(f"      {event.get('train_examples')} train / {event.get('val_examples')} val examples, "
                f"{event.get('trainable_parameters'):,} trainable parameters, lr {event.get('lr'):g}")
        elif kind == "step":
            step, total = event.get("step"), event.get("max_steps")
            if step == total or step % STEP_LINE_EVERY == 0:
                say(f"      step {step}/{total}  loss {event.get('loss'):.3f}  "
                    f"{event.get('tokens_per_s', 0):.0f} tok/s")
        elif kind == "eval":
            say(f"      eval at step {event.get('step')}: val loss {event.get('val_loss'):.3f}")
        elif kind == "checkpoint":
            say(f"      checkpoint {Path(event.get('path', '')).name}")
        elif kind == "error":
            errors.append(f"{event.get('message')} {event.get('advice') or ''}".strip())
            say(f"      error: {errors[-1]}")
        elif kind == "done":
            done = event
    code = child.wait()
    stderr_file.seek(0)
    stderr = stderr_file.read()
    stderr_file.close()
    if done is None or done.get("status") != "done" or not done.get("last_checkpoint"):
        detail = errors[-1] if errors else (stderr.strip().splitlines() or ["no output"])[-1]
        raise DemoError(f"training exited with code {code} and no finished checkpoint: {detail} "
                        f"(events in {run_dir / 'events.jsonl'})", exit_code=1)
    say(f"      done in {done.get('seconds', 0):.0f} s")
    return str(done["last_checkpoint"])
