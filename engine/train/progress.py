"""Where a run's time goes, and how much is left: steps, evaluations, checkpoints and canaries.

A step-only ETA ("steps left × seconds per step") reads 0:00 while a big model spends
minutes answering the last checkpoint's canaries. `RunClock` times each kind of work
separately and adds up what is still ahead:

    eta = steps left × mean step time
        + evaluations left × mean evaluation time
        + checkpoints left × (mean save time + canaries per checkpoint × mean canary time)
        + what is left of the phase in progress (canaries not yet answered)

Evaluations fall on multiples of `eval_every`, checkpoints on multiples of `save_every`
and at the last step (the Trainer always saves at the end). A kind of work not yet
measured counts as zero, except canaries, whose time is known from the base model's
canaries (step 0) before the first checkpoint. Until one step has been timed the ETA is
unknown (None). No torch here; engine/train/trainer.py feeds the clock.
"""

from __future__ import annotations

import dataclasses


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _multiples_after(step: int, every: int, last: int) -> int:
    """How many multiples of `every` lie in (step, last]."""
    if every <= 0 or last <= step:
        return 0
    return last // every - step // every


@dataclasses.dataclass
class RunClock:
    max_steps: int
    eval_every: int = 0  # 0: no evaluation
    save_every: int = 0  # 0: only the final save
    canaries_per_checkpoint: int = 0
    step_seconds: list[float] = dataclasses.field(default_factory=list)
    eval_seconds: list[float] = dataclasses.field(default_factory=list)
    save_seconds: list[float] = dataclasses.field(default_factory=list)
    canary_seconds: list[float] = dataclasses.field(default_factory=list)

    def checkpoints_after(self, step: int) -> int:
        """Checkpoints still to be written after `step` (the final one included)."""
        regular = _multiples_after(step, self.save_every, self.max_steps)
        final_is_regular = self.save_every > 0 and self.max_steps % self.save_every == 0
        return regular + (0 if final_is_regular or step >= self.max_steps else 1)

    def checkpoint_seconds(self) -> float:
        return _mean(self.save_seconds) + self.canaries_per_checkpoint * _mean(self.canary_seconds)

    def eta(self, step: int, *, canaries_left_now: int = 0, evaluation_pending: bool = False,
            save_pending: bool = False) -> float | None:
        """Seconds left after `step` has trained; the flags say which of this step's own
        phases (evaluation, save and its canaries) are still ahead."""
        if not self.step_seconds:
            return None
        seconds = (self.max_steps - step) * _mean(self.step_seconds)
        seconds += _multiples_after(step, self.eval_every, self.max_steps) * _mean(self.eval_seconds)
        seconds += self.checkpoints_after(step) * self.checkpoint_seconds()
        if evaluation_pending:
            seconds += _mean(self.eval_seconds)
        if save_pending:
            seconds += self.checkpoint_seconds()
        seconds += canaries_left_now * _mean(self.canary_seconds)
        return round(max(seconds, 0.0), 2)
