"""Training events and their JSON-lines protocol.

`python -m engine.train --json` prints one JSON object per line on stdout (only rank 0
prints when several processes run), and every run appends the same lines to
`runs/<id>/events.jsonl`. Each object has an "event" key naming its kind; the other keys
are the fields below. Readers must ignore unknown keys (newer writers may add fields) and
unknown kinds. Anything the process prints to stderr is logs, not protocol.

Order of a run: `phase` "loading", `start`, then `canary` lines for the base model (step 0),
then `step` lines with `eval`, `checkpoint`, `canary` and `memorisation` lines interleaved,
then exactly one `done` as the last line (preceded by `error` when the run failed). A run
that is resumed appends a new `start` (with `resumed_from`) to the same events.jsonl.
`log` lines may come anywhere (a store warning can even precede `start`).

`phase` lines say what a long stretch without steps is doing, so a reader can show
progress: "loading" (model and data, before `start`), "canaries" (detail "base" at step 0
or "checkpoint-N"; done/total count canaries, one line before each canary and one when the
phase ends), "evaluation" (before the val pass), "saving" (before a checkpoint is written),
"training" (steps are flowing again). Their `eta_s`, like that of `step`, is the time left
for the whole run including evaluations, checkpoints and their canaries (see
engine/train/progress.py); null while unknown.

A cancel (SIGTERM) finishes the step in flight, saves a checkpoint and stops; canaries
are not answered after a cancel (the `done` line counts the checkpoint's skipped ones in
`canaries_skipped`; the Judge screen can fill them later), and a canary being generated
when the cancel arrives stops at its next token.
A run that cannot start (bad flag values, unreadable config) prints only `error` and
`done` (run_dir "") and writes no run folder.

| event | fields |
| --- | --- |
| phase | phase ("loading", "canaries", "evaluation", "saving", "training"), step, done, total (null if unknown), detail, eta_s |
| start | run_id, run_dir, model, family, objective, method, max_steps, start_step, resumed_from (checkpoint path or null), world_size, train_examples, val_examples, skipped_examples, trainable_parameters, total_parameters, lr, lr_note, label (the run's name, "demo-ar lora #3") |
| step | step (1-based optimizer step), max_steps, epoch, loss, lr, grad_norm (null if unknown), tokens_per_s (all ranks; tokens the loss sees: non-padding for causal, every position incl. EOS padding for diffusion), memory (MiB: peak CUDA allocation on a GPU, peak process RSS on CPU), world_size, elapsed_s, eta_s, step_s (this step's own time) |
| eval | step, val_loss, seconds (the evaluation's time) |
| checkpoint | step, path (folder holding adapter_model.safetensors or model.safetensors plus optimizer/scheduler/RNG state), seconds (the save's time; canaries after it are timed apart) |
| canary | step (0 = base model), canary_id, prompt, text, seed, settings (sampler settings dict), seconds |
| memorisation | step, val_loss, best_val_loss, train_loss, best_train_loss, stopping (true when --early-stop ends the run) |
| log | level ("info" or "warning"), message |
| error | kind ("oom", "cuda", "data", "config", "model", "internal"), message, advice, step, resumable |
| done | status ("done", "failed", "cancelled"), step, run_dir, last_checkpoint (null if none), resumable, seconds, canaries_skipped (canaries not answered because of the cancel) |

Example:
    {"event":"step","step":3,"max_steps":10,"epoch":0.6,"loss":4.21,"lr":0.0002,...}
`status.json` in the run folder mirrors the latest state: status ("running", "done",
"failed", "cancelled"), step, max_steps, last_checkpoint, resumable, pid, label, updated_at.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, ClassVar

from engine.events import Event, event_from_dict


@dataclasses.dataclass(frozen=True)
class StartEvent(Event):
    kind: ClassVar[str] = "start"
    run_id: str
    run_dir: str
    model: str
    family: str
    objective: str  # "causal" | "diffusion"
    method: str
    max_steps: int
    start_step: int  # 0, or the checkpoint step a resumed run continues after
    resumed_from: str | None
    world_size: int
    train_examples: int
    val_examples: int
    skipped_examples: int  # pairs whose prompt alone does not fit max_length
    trainable_parameters: int
    total_parameters: int
    lr: float
    lr_note: str  # why the learning rate is what it is (default for the family, or "set by you")
    label: str = ""  # the run's name (TrainConfig.label); "" from writers older than labels


@dataclasses.dataclass(frozen=True)
class PhaseEvent(Event):
    kind: ClassVar[str] = "phase"
    phase: str  # one of PHASES
    step: int  # the optimizer step the phase belongs to (0 before training)
    done: int = 0  # units finished in this phase (canaries answered)
    total: int | None = None  # units in this phase; None when not counted
    detail: str = ""  # "base", "checkpoint-20", the canary id …
    eta_s: float | None = None  # seconds left for the whole run, phases included


@dataclasses.dataclass(frozen=True)
class StepEvent(Event):
    kind: ClassVar[str] = "step"
    step: int
    max_steps: int
    epoch: float
    loss: float
    lr: float
    grad_norm: float | None
    tokens_per_s: float
    memory: float  # MiB
    world_size: int
    elapsed_s: float
    eta_s: float | None
    step_s: float | None = None  # this step's own time (forward, backward, optimizer); None from older writers


@dataclasses.dataclass(frozen=True)
class EvalEvent(Event):
    kind: ClassVar[str] = "eval"
    step: int
    val_loss: float
    seconds: float | None = None  # how long this evaluation took


@dataclasses.dataclass(frozen=True)
class CheckpointEvent(Event):
    kind: ClassVar[str] = "checkpoint"
    step: int
    path: str
    seconds: float | None = None  # how long writing it took (its canaries come after, timed apart)


@dataclasses.dataclass(frozen=True)
class CanaryEvent(Event):
    kind: ClassVar[str] = "canary"
    step: int
    canary_id: str
    prompt: str
    text: str
    seed: int
    settings: dict[str, Any]
    seconds: float


@dataclasses.dataclass(frozen=True)
class MemorisationEvent(Event):
    kind: ClassVar[str] = "memorisation"
    step: int
    val_loss: float
    best_val_loss: float
    train_loss: float
    best_train_loss: float
    stopping: bool


@dataclasses.dataclass(frozen=True)
class LogEvent(Event):
    kind: ClassVar[str] = "log"
    level: str
    message: str


@dataclasses.dataclass(frozen=True)
class ErrorEvent(Event):
    kind: ClassVar[str] = "error"
    error_kind: str
    message: str
    advice: str
    step: int
    resumable: bool

    def to_dict(self) -> dict[str, Any]:
        # The protocol names the error class `kind`; the Python field cannot shadow the
        # ClassVar that names the event, hence `error_kind` here and `kind` on the wire.
        payload = super().to_dict()
        payload["kind"] = payload.pop("error_kind")
        return payload


@dataclasses.dataclass(frozen=True)
class DoneEvent(Event):
    kind: ClassVar[str] = "done"
    status: str  # "done" | "failed" | "cancelled"
    step: int
    run_dir: str
    last_checkpoint: str | None
    resumable: bool
    seconds: float
    canaries_skipped: int = 0  # canaries of the last checkpoint not answered because of a cancel


PHASES = ("loading", "canaries", "evaluation", "saving", "training")

TRAIN_EVENTS: dict[str, type[Event]] = {
    cls.kind: cls
    for cls in (PhaseEvent, StartEvent, StepEvent, EvalEvent, CheckpointEvent, CanaryEvent, MemorisationEvent,
                LogEvent, ErrorEvent, DoneEvent)
}
STATUSES = ("running", "done", "failed", "cancelled")


def parse_event(line: str | dict[str, Any]) -> Event | None:
    """One protocol line (or its dict) back to an event; None for kinds this reader does not know."""
    payload = json.loads(line) if isinstance(line, str) else dict(line)
    if payload.get("event") not in TRAIN_EVENTS:
        return None
    if payload["event"] == "error" and "kind" in payload:
        payload["error_kind"] = payload.pop("kind")
    return event_from_dict(payload, TRAIN_EVENTS)
