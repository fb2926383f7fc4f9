"""The transformers Trainer subclass and the callback that turns its progress into events.

`VoicebenchTrainer` keeps the Trainer's loop — checkpoints, gradient accumulation, mixed
precision, DDP/FSDP/DeepSpeed through accelerate, resume with optimizer, scheduler, RNG
and data order — and changes only the loss:
- causal: the model's own cross-entropy on labels that are -100 outside the response
  (built by the collator with `engine.train.objectives.response_only_labels`);
- diffusion: `engine.train.objectives.diffusion_mask` + `diffusion_loss` (LLaDA's SFT loss).
  Training masks come from the global torch RNG, which the Trainer saves in every
  checkpoint, so a resumed run draws the same masks a straight run would. Evaluation uses
  its own generator reseeded at every evaluation, so val losses compare across steps.

`EventCallback` runs on every rank (cancel and early stop must be agreed by all ranks)
but only rank 0 emits. It times steps, evaluations and saves on a `RunClock`
(engine/train/progress.py) so every `step` and `phase` event carries an ETA that includes
them, and it announces the evaluation and saving phases before they start.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from transformers import Trainer, TrainerCallback

from engine.train.events import CheckpointEvent, EvalEvent, LogEvent, MemorisationEvent, PhaseEvent, StepEvent
from engine.train.progress import RunClock


class VoicebenchTrainer(Trainer):
    def __init__(self, *args: Any, objective: str, family: str, mask_token_id: int | None,
                 diffusion_eps: float, eval_seed: int, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.objective = objective
        self.family = family
        self.mask_token_id = mask_token_id
        self.diffusion_eps = diffusion_eps
        self.eval_seed = eval_seed
        self.trained_tokens = 0  # non-padding tokens this rank has trained on (read by EventCallback)
        self._eval_generator: torch.Generator | None = None
        if objective == "diffusion":
            # Our diffusion loss is a per-batch mean, so the Trainer must divide it by the
            # number of accumulation steps itself.
            self.loss_is_scaled_for_ga = False

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if model.training:
            self.trained_tokens += int(inputs["attention_mask"].sum())
        if self.objective == "causal":
            inputs = {key: value for key, value in inputs.items() if key != "prompt_lengths"}
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        return self._diffusion_loss(model, inputs, return_outputs)

    def _diffusion_loss(self, model, inputs, return_outputs):
        from engine.train.objectives import diffusion_loss, diffusion_mask, response_lengths

        input_ids = inputs["input_ids"]
        prompt_lengths = inputs["prompt_lengths"]
        generator = None if model.training else self._eval_generator
        noisy_ids, masked, p_mask = diffusion_mask(
            input_ids, prompt_lengths, self.mask_token_id, eps=self.diffusion_eps, generator=generator
        )
        outputs = model(input_ids=noisy_ids, attention_mask=inputs.get("attention_mask"))
        logits = outputs.logits
        if self.family == "dream":
            from engine.sample.diffusion import shift_logits

            logits = shift_logits(logits)  # Dream predicts token i from position i-1
        loss = diffusion_loss(logits, input_ids, masked, p_mask, response_lengths(input_ids, prompt_lengths))
        return (loss, outputs) if return_outputs else loss

    def evaluate(self, *args: Any, **kwargs: Any):
        device = self.args.device
        self._eval_generator = torch.Generator(device=device).manual_seed(self.eval_seed)
        return super().evaluate(*args, **kwargs)

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        # Only the loss matters for evaluation here; the default would try to gather
        # logits and labels (which diffusion batches do not have).
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad(), self.compute_loss_context_manager():
            loss = self.compute_loss(model, inputs)
        return loss.detach(), None, None


def peak_memory_mib(device: Any) -> float:
    """Peak CUDA allocation on a GPU, else the process's peak resident memory (Linux: KiB)."""
    if torch.cuda.is_available() and str(device).startswith("cuda"):
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class MemorisationWatch:
    """Warn when validation loss rises above its best while training loss keeps falling.

    After each eval: if val loss is above the best seen and the mean train loss since the
    previous eval is below the train loss at the time of the best val, the streak grows;
    otherwise it resets. The warning fires when the streak reaches `patience`.
    """

    def __init__(self, patience: int):
        self.patience = max(1, patience)
        self.best_val: float | None = None
        self.train_at_best: float | None = None
        self.streak = 0

    def update(self, val_loss: float, train_loss: float | None) -> bool:
        if self.best_val is None or val_loss <= self.best_val or train_loss is None:
            if self.best_val is None or val_loss <= self.best_val:
                self.best_val, self.train_at_best = val_loss, train_loss
            self.streak = 0
            return False
        if self.train_at_best is not None and train_loss < self.train_at_best:
            self.streak += 1
        else:
            self.streak = 0
        return self.streak >= self.patience


class EventCallback(TrainerCallback):
    """Emits step/eval/checkpoint/memorisation events and honours cancel requests."""

    def __init__(self, *, emit: Callable[[Any], None], is_main: bool, world_size: int,
                 cancel_requested: Callable[[], bool], early_stop: bool, patience: int,
                 on_checkpoint: Callable[[int, str, Any], None] | None = None, clock: RunClock | None = None):
        self.emit = emit if is_main else (lambda event: None)
        self.is_main = is_main
        self.world_size = world_size
        self.cancel_requested = cancel_requested
        self.early_stop = early_stop
        self.watch = MemorisationWatch(patience)
        self.on_checkpoint = on_checkpoint
        self.trainer: VoicebenchTrainer | None = None  # set by the runner after construction
        self.cancelled = False
        self.stopped_early = False
        self.last_checkpoint: str | None = None
        self._train_losses: list[float] = []
        self._started = time.perf_counter()
        self._last_time = self._started
        self._last_tokens = 0
        self._start_step: int | None = None
        self.clock = clock
        self._step_started: float | None = None
        self._step_seconds: float | None = None  # the last step's own time, reported with its step event
        self._phase_started = 0.0  # when the evaluation or save in progress began

    # --- helpers ---------------------------------------------------------------------------
    def _agreed(self, flag: bool, args: Any) -> bool:
        """True on every rank when any rank says so (ranks must stop on the same step)."""
        if self.world_size <= 1 or not torch.distributed.is_initialized():
            return flag
        value = torch.tensor([1.0 if flag else 0.0], device=args.device)
        torch.distributed.all_reduce(value, op=torch.distributed.ReduceOp.MAX)
        return bool(value.item() > 0)

    # --- Trainer hooks ---------------------------------------------------------------------
    def on_train_begin(self, args, state, control, **kwargs):
        self._start_step = state.global_step
        self._started = self._last_time = time.perf_counter()
        if self.clock is not None:
            self.clock.max_steps = state.max_steps

    def on_step_begin(self, args, state, control, **kwargs):
        self._step_started = time.perf_counter()

    def phase(self, phase: str, step: int, *, save_pending: bool = False, canaries_left: int = 0,
              **fields: Any) -> None:
        """Announce a phase with the run's ETA, counting the work still ahead in this step
        (its evaluation, its save and that save's canaries, canaries not yet answered)."""
        eta = None
        if self.clock is not None:
            eta = self.clock.eta(step, evaluation_pending=phase == "evaluation",
                                 save_pending=save_pending or phase == "saving", canaries_left_now=canaries_left)
        self.emit(PhaseEvent(phase=phase, step=step, eta_s=eta, **fields))

    def _begin_phase_after_step(self, state, control) -> None:
        """After a step's log: say whether an evaluation or a save comes next."""
        self._phase_started = time.perf_counter()
        if control.should_evaluate:
            self.phase("evaluation", state.global_step, save_pending=bool(control.should_save))
        elif control.should_save:
            self.phase("saving", state.global_step)

    def on_step_end(self, args, state, control, **kwargs):
        if self._step_started is not None:
            self._step_seconds = time.perf_counter() - self._step_started
            if self.clock is not None:
                self.clock.step_seconds.append(self._step_seconds)
        if self._agreed(self.cancel_requested(), args):
            # Finish this step, save it, stop: the run can resume from exactly here.
            self.emit(LogEvent(level="info", message=(
                f"cancel requested: step {state.global_step} finished, saving a checkpoint, then stopping")))
            self.cancelled = True
            control.should_save = True
            control.should_training_stop = True
        return control

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        if "loss" not in logs:
            return
        now = time.perf_counter()
        tokens = self.trainer.trained_tokens if self.trainer is not None else 0
        seconds = max(now - self._last_time, 1e-9)
        tokens_per_s = (tokens - self._last_tokens) * self.world_size / seconds
        self._last_time, self._last_tokens = now, tokens
        done_here = state.global_step - (self._start_step or 0)
        elapsed = now - self._started
        if self.clock is not None:
            eta = self.clock.eta(state.global_step, evaluation_pending=bool(control.should_evaluate),
                                 save_pending=bool(control.should_save))
        else:
            eta = (state.max_steps - state.global_step) * elapsed / done_here if done_here > 0 else None
        loss = float(logs["loss"])
        self._train_losses.append(loss)
        grad_norm = logs.get("grad_norm")
        self.emit(StepEvent(
            step=state.global_step, max_steps=state.max_steps, epoch=round(float(state.epoch or 0.0), 4),
            loss=loss, lr=float(logs.get("learning_rate", 0.0)),
            grad_norm=None if grad_norm is None else float(grad_norm),
            tokens_per_s=round(tokens_per_s, 2), memory=round(peak_memory_mib(args.device), 1),
            world_size=self.world_size, elapsed_s=round(elapsed, 3),
            eta_s=None if eta is None else round(eta, 2),
            step_s=None if self._step_seconds is None else round(self._step_seconds, 3),
        ))
        self._begin_phase_after_step(state, control)

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if not metrics or "eval_loss" not in metrics:
            return
        val_loss = float(metrics["eval_loss"])
        seconds = time.perf_counter() - self._phase_started
        if self.clock is not None:
            self.clock.eval_seconds.append(seconds)
        self.emit(EvalEvent(step=state.global_step, val_loss=val_loss, seconds=round(seconds, 3)))
        train_loss = sum(self._train_losses) / len(self._train_losses) if self._train_losses else None
        self._train_losses = []
        # Every rank sees the same gathered eval loss, so every rank takes the same decision.
        if self.watch.update(val_loss, train_loss):
            stopping = self.early_stop
            self.emit(MemorisationEvent(
                step=state.global_step, val_loss=val_loss, best_val_loss=float(self.watch.best_val),
                train_loss=float(train_loss), best_train_loss=float(self.watch.train_at_best),
                stopping=stopping,
            ))
            self.watch.streak = 0  # warn once per streak
            if stopping:
                self.stopped_early = True
                control.should_save = True
                control.should_training_stop = True
        self._phase_started = time.perf_counter()
        if control.should_save:
            self.phase("saving", state.global_step)
        else:
            self.phase("training", state.global_step)
        return control

    def on_save(self, args, state, control, **kwargs):
        path = str(Path(args.output_dir) / f"checkpoint-{state.global_step}")
        self.last_checkpoint = path
        seconds = time.perf_counter() - self._phase_started
        if self.clock is not None:
            self.clock.save_seconds.append(seconds)
        self.emit(CheckpointEvent(step=state.global_step, path=path, seconds=round(seconds, 3)))
        if self.on_checkpoint is not None and self.is_main:
            self.on_checkpoint(state.global_step, path, kwargs.get("model"))
        if not control.should_training_stop and state.global_step < state.max_steps:
            self.phase("training", state.global_step)
        # Canaries take time that is not training time; do not let them skew tokens/s.
        self._last_time = time.perf_counter()
