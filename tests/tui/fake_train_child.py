"""A stand-in for `python -m engine.train --json` in Train screen tests: no torch, instant.

    python tests/tui/fake_train_child.py MODE [engine flags…]

MODE:
- "steps": start, a base-model `canary`, then one `step` a tick (eval every 2, a memorisation
  warning at step 4), `checkpoint` and `done`; SIGTERM
  makes it finish the step, checkpoint and report `done` with status "cancelled".
- "garbage": prints non-protocol text on stdout and a traceback on stderr, exits 1.
- "error": an `error` event with advice, then `done` failed, exits 1 (like a bad model path).
- "stubborn": like "steps" but ignores SIGTERM, so only SIGKILL stops it.
Lines are built from the engine's own event classes, so they match the protocol.
"""

from __future__ import annotations

import os
import signal
import sys
import time

from engine.train.events import (
    CanaryEvent,
    CheckpointEvent,
    DoneEvent,
    ErrorEvent,
    EvalEvent,
    MemorisationEvent,
    StartEvent,
    StepEvent,
)

TICK_SECONDS = float(os.environ.get("FAKE_TRAIN_TICK", "0.05"))  # the benchmark sets 0: as fast as it can print


def emit(event) -> None:
    print(event.to_json(), flush=True)


def flag(name: str, default: str) -> str:
    argv = sys.argv
    return argv[argv.index(name) + 1] if name in argv else default


def main() -> int:
    mode = sys.argv[1]
    if mode == "garbage":
        print("this is not json", flush=True)
        print('{"event": "step", "half a line', flush=True)
        print("Traceback (most recent call last):\nRuntimeError: the fake child fell over", file=sys.stderr, flush=True)
        return 1
    if mode == "error":
        emit(ErrorEvent(error_kind="model", message="no-such-model: no such folder",
                        advice="Give a local model folder.", step=0, resumable=False))
        emit(DoneEvent(status="failed", step=0, run_dir="", last_checkpoint=None, resumable=False, seconds=0.0))
        return 1
    cancelled = []
    if mode == "stubborn":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGTERM, lambda signum, frame: cancelled.append(signum))
    max_steps = 3 if "--resume" in sys.argv else int(flag("--max-steps", "1000"))
    run_dir = "runs/fake-run"
    emit(StartEvent(run_id="fake-run", run_dir=run_dir, model=flag("--model", "demo-ar"), family="causal",
                    objective="causal", method=flag("--method", "lora"), max_steps=max_steps, start_step=0,
                    resumed_from=None, world_size=1, train_examples=8, val_examples=2, skipped_examples=0,
                    trainable_parameters=100, total_parameters=1000, lr=1e-3, lr_note="default"))
    emit(CanaryEvent(step=0, canary_id="river-short", prompt="Write about the river.",
                     text="The river keeps its own counsel.", seed=0, settings={"temperature": 0.0}, seconds=0.5))
    step = 0
    while step < max_steps and not cancelled:
        time.sleep(TICK_SECONDS)
        step += 1
        emit(StepEvent(step=step, max_steps=max_steps, epoch=step / 4, loss=5.0 / step, lr=1e-3, grad_norm=1.0,
                       tokens_per_s=100.0, memory=800.0, world_size=1, elapsed_s=step * 0.1,
                       eta_s=(max_steps - step) * 0.1))
        if step % 2 == 0:
            emit(EvalEvent(step=step, val_loss=5.5 / step))
        if step == 4:
            emit(MemorisationEvent(step=4, val_loss=2.0, best_val_loss=1.5, train_loss=1.0, best_train_loss=1.2,
                                   stopping=False))
    checkpoint = f"{run_dir}/checkpoints/checkpoint-{step}"
    emit(CheckpointEvent(step=step, path=checkpoint))
    status = "cancelled" if cancelled else "done"
    emit(DoneEvent(status=status, step=step, run_dir=run_dir, last_checkpoint=checkpoint,
                   resumable=status == "cancelled", seconds=step * 0.1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
