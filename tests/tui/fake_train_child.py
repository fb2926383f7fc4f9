"""A stand-in for `python -m engine.train --json` in Train screen tests: no torch, fast.

    python tests/tui/fake_train_child.py MODE [engine flags…]

MODE:
- "steps": the engine's order of events — `phase` loading, `start`, the base model's canaries
  (each announced by a `phase` "canaries n/N"), one `step` a tick (eval every 2, a
  memorisation warning at step 4), checkpoints every --save-every steps with their
  canaries, and `done`. It writes runs/<id>/events.jsonl and status.json (with its pid) in
  the workspace as the engine does, so the runs list, resume and "leave it running" work.
  SIGTERM: finish the step, save a checkpoint, skip its canaries, `done` "cancelled".
  `--resume RUN_DIR` continues after that run's last checkpoint.
- "garbage": prints non-protocol text on stdout and a traceback on stderr, exits 1.
- "error": an `error` event with advice, then `done` failed, exits 1 (like a bad model path).
- "stubborn": like "steps" but ignores SIGTERM, so only SIGKILL stops it.
- "warn-and-die": a library FutureWarning on stderr, an `error` event, then SIGKILL to itself
  (no `done`): the cause shown must be the error event, not the warning.

Slow phases without sleeping in the test: FAKE_TRAIN_GATES lists gate names (comma-separated)
the child waits at until FAKE_TRAIN_CONTROL/<name> exists — "loading", "canary-<step>-<n>"
(the n-th canary at that step, 0 = base model), "eval-<step>". A cancel during a canary gate
stops that canary at once, like the engine's token-by-token check.
Lines are built from the engine's own event classes, so they match the protocol.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time
from pathlib import Path

from engine.train.events import (
    CanaryEvent,
    CheckpointEvent,
    DoneEvent,
    ErrorEvent,
    EvalEvent,
    LogEvent,
    MemorisationEvent,
    PhaseEvent,
    StartEvent,
    StepEvent,
)

TICK_SECONDS = float(os.environ.get("FAKE_TRAIN_TICK", "0.05"))  # the benchmark sets 0: as fast as it can print
GATES = {gate for gate in os.environ.get("FAKE_TRAIN_GATES", "").split(",") if gate}
CONTROL = Path(os.environ.get("FAKE_TRAIN_CONTROL", "."))
CANARIES = ("river-short", "kitchen-long", "walking-notes")
cancelled: list[int] = []


def flag(name: str, default: str) -> str:
    argv = sys.argv
    return argv[argv.index(name) + 1] if name in argv else default


class Record:
    """stdout plus the run folder, like engine/train/record.py (stdout may break: carry on)."""

    def __init__(self, run_dir: Path | None):
        self.run_dir = run_dir
        self.status: dict = {"status": "running", "step": 0, "max_steps": None, "last_checkpoint": None,
                             "resumable": False}
        self.stdout_ok = True
        if run_dir is not None:
            run_dir.mkdir(parents=True, exist_ok=True)

    def emit(self, event) -> None:
        line = event.to_json()
        if self.run_dir is not None:
            with (self.run_dir / "events.jsonl").open("a", encoding="utf-8") as handle:
                handle.write(line + "\n")
        if self.stdout_ok:
            try:
                print(line, flush=True)
            except OSError:
                self.stdout_ok = False
        if event.kind == "start":
            self.update(step=event.start_step, max_steps=event.max_steps, run_id=event.run_id, label=event.label)
        elif event.kind == "checkpoint":
            self.update(step=event.step, last_checkpoint=event.path)
        elif event.kind == "done":
            self.update(status=event.status, step=event.step, last_checkpoint=event.last_checkpoint,
                        resumable=event.resumable)

    def update(self, **fields) -> None:
        if self.run_dir is None:
            return
        self.status.update(fields, pid=os.getpid(), world_size=1, updated_at=time.strftime("%Y-%m-%dT%H:%M:%S"))
        (self.run_dir / "status.json").write_text(json.dumps(self.status), encoding="utf-8")


GATE_GIVE_UP_SECONDS = 120.0  # a test that failed never opens its gate: do not wait forever


def wait_gate(name: str, cancellable: bool = False) -> bool:
    """Wait until the test opens gate `name` (if it is one); False when a cancel came first."""
    deadline = time.monotonic() + GATE_GIVE_UP_SECONDS
    while name in GATES and not (CONTROL / name).exists() and time.monotonic() < deadline:
        if cancellable and cancelled:
            return False
        time.sleep(0.01)
    return True


def canaries(record: Record, step: int, detail: str, count: int) -> int:
    """Answer `count` canaries (each may be gated); returns how many were skipped by a cancel."""
    for index in range(count):
        if cancelled:
            return count - index
        record.emit(PhaseEvent(phase="canaries", step=step, done=index, total=count, detail=detail, eta_s=60.0))
        if not wait_gate(f"canary-{step}-{index + 1}", cancellable=True):
            record.emit(LogEvent(level="info", message=f"canary {CANARIES[index]} stopped by the cancel"))
            return count - index
        record.emit(CanaryEvent(step=step, canary_id=CANARIES[index], prompt=f"Write about {CANARIES[index]}.",
                                text=f"Text of {CANARIES[index]} at step {step}.", seed=0,
                                settings={"temperature": 0.0}, seconds=0.5))
    record.emit(PhaseEvent(phase="canaries", step=step, done=count, total=count, detail=detail))
    return 0


def main() -> int:
    mode = sys.argv[1]
    if mode == "garbage":
        print("this is not json", flush=True)
        print('{"event": "step", "half a line', flush=True)
        print("Traceback (most recent call last):\nRuntimeError: the fake child fell over", file=sys.stderr, flush=True)
        return 1
    if mode == "error":
        print(ErrorEvent(error_kind="model", message="no-such-model: no such folder",
                         advice="Give a local model folder.", step=0, resumable=False).to_json(), flush=True)
        print(DoneEvent(status="failed", step=0, run_dir="", last_checkpoint=None, resumable=False,
                        seconds=0.0).to_json(), flush=True)
        return 1
    if mode == "warn-and-die":
        print(ErrorEvent(error_kind="internal", message="RuntimeError: the optimizer state is corrupt",
                         advice="Resume from the previous checkpoint.", step=3, resumable=True).to_json(), flush=True)
        print("/lib/peft/tuners.py:12: FutureWarning: `x` is deprecated\n  warnings.warn(", file=sys.stderr,
              flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    if mode == "stubborn":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGTERM, lambda signum, frame: cancelled.append(signum))
    canary_count = int(os.environ.get("FAKE_TRAIN_CANARIES", "1"))
    save_every = int(flag("--save-every", "0"))
    resume = flag("--resume", "")
    if resume:
        run_dir = Path(resume)
        previous = json.loads((run_dir / "status.json").read_text())
        match = re.search(r"checkpoint-(\d+)$", previous.get("last_checkpoint") or "")
        start_step = int(match.group(1)) if match else 0
        max_steps, label = int(previous.get("max_steps") or 3), previous.get("label", "")
        resumed_from = previous.get("last_checkpoint")
    else:
        run_dir = Path(flag("--out", f"runs/fake-{time.strftime('%H%M%S')}-{os.getpid()}"))
        start_step, max_steps, label, resumed_from = 0, int(flag("--max-steps", "1000")), flag("--label", ""), None
    record = Record(run_dir)
    record.emit(PhaseEvent(phase="loading", step=start_step, detail=flag("--model", "demo-ar")))
    wait_gate("loading")
    record.emit(StartEvent(run_id=run_dir.name, run_dir=str(run_dir), model=flag("--model", "demo-ar"),
                           family="causal", objective="causal", method=flag("--method", "lora"), max_steps=max_steps,
                           start_step=start_step, resumed_from=resumed_from, world_size=1, train_examples=8,
                           val_examples=2, skipped_examples=0, trainable_parameters=100, total_parameters=1000,
                           lr=1e-3, lr_note="default", label=label))
    if not resume:
        canaries(record, 0, "base", canary_count)
    step, skipped = start_step, 0
    while step < max_steps and not cancelled:
        time.sleep(TICK_SECONDS)
        step += 1
        record.emit(StepEvent(step=step, max_steps=max_steps, epoch=step / 4, loss=5.0 / step, lr=1e-3, grad_norm=1.0,
                              tokens_per_s=100.0, memory=800.0, world_size=1, elapsed_s=step * 0.1,
                              eta_s=(max_steps - step) * 0.1, step_s=TICK_SECONDS))
        if step % 2 == 0:
            record.emit(PhaseEvent(phase="evaluation", step=step))
            evaluation_started = time.monotonic()
            wait_gate(f"eval-{step}")
            record.emit(EvalEvent(step=step, val_loss=5.5 / step, seconds=time.monotonic() - evaluation_started))
        if step == 4:
            record.emit(MemorisationEvent(step=4, val_loss=2.0, best_val_loss=1.5, train_loss=1.0, best_train_loss=1.2,
                                          stopping=False))
        if save_every and step % save_every == 0 and step < max_steps and not cancelled:
            record.emit(CheckpointEvent(step=step, path=f"{run_dir}/checkpoints/checkpoint-{step}", seconds=0.0))
            skipped = canaries(record, step, f"checkpoint-{step}", canary_count)
            if skipped:
                break
    checkpoint = f"{run_dir}/checkpoints/checkpoint-{step}"
    if not skipped:
        record.emit(PhaseEvent(phase="saving", step=step))
        record.emit(CheckpointEvent(step=step, path=checkpoint, seconds=0.0))
        if cancelled:
            skipped = canary_count
    status = "cancelled" if cancelled else "done"
    record.emit(DoneEvent(status=status, step=step, run_dir=str(run_dir), last_checkpoint=checkpoint,
                          resumable=status == "cancelled", seconds=step * 0.1, canaries_skipped=skipped))
    return 0


if __name__ == "__main__":
    sys.exit(main())
