"""Quitting while a run trains: the choice, and the wait for the run's checkpoint.

`QuitWhileTrainingDialog` asks: stop the run (it finishes its step, saves a checkpoint,
stays resumable; the app quits once it has) or leave it running (the trainer carries on
after the app exits, writing runs/<id>/events.jsonl; the next start shows it live).
`StoppingDialog` shows what the app is waiting for, a countdown to it and how long it has
waited; the Train screen calls `show()` as the run's phase changes and closes it when the
child exits. `k` or `ctrl+t` (the cancel key, pressed a second time) kills the run instead.

The countdown comes from `WorkTimer`. It keeps the durations the run reports for its
steps, evaluations and saves (`step_s` and `seconds` on their events, measured in the child,
so events that reach the app in one batch still count right) and times only the work in
flight, from when the app saw it begin. A stop waits for the work in flight and then the save:

    left = (mean time of the work in flight − time it has run so far, at least 0) + mean save time

A kind of work not yet timed in this run leaves the estimate unknown ("estimating…"), except
the save, which then counts as zero and says so. Canaries stop at their next token after a
cancel, so a stop during one waits for no more than that.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from time import monotonic
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from tui.widgets.train_stats import format_duration

DIALOG_CSS = """
{name} {{ align: center middle; }}
{name} > Vertical {{
    width: 72; max-width: 100%; height: auto; border: thick $warning; background: $surface; padding: 1 2;
}}
{name} .dialog--title {{ text-style: bold; }}
{name} Horizontal {{ height: auto; margin-top: 1; }}
{name} Button {{ margin-right: 1; }}
"""


TIMINGS_KEPT = 20  # recent durations averaged per kind of work (a run's pace drifts)
WORK_NAMES = {"training": "step", "evaluation": "evaluation", "saving": "save"}  # phase -> what it times


def _keep(durations: deque[float], seconds: float | None) -> None:
    if seconds is not None:  # None: an event from a writer that did not time it
        durations.append(seconds)


def _mean(values: deque[float]) -> float | None:
    return sum(values) / len(values) if values else None


@dataclasses.dataclass
class StopEstimate:
    """What a stop still waits for: `seconds` left (None: unknown), `work` ("step",
    "evaluation", "save", "canary", "loading") and whether the save is counted untimed."""

    seconds: float | None
    work: str
    save_untimed: bool = False


@dataclasses.dataclass
class WorkTimer:
    """Durations of this run's steps, evaluations and saves, as its events report them."""

    step_seconds: deque[float] = dataclasses.field(default_factory=lambda: deque(maxlen=TIMINGS_KEPT))
    eval_seconds: deque[float] = dataclasses.field(default_factory=lambda: deque(maxlen=TIMINGS_KEPT))
    save_seconds: deque[float] = dataclasses.field(default_factory=lambda: deque(maxlen=TIMINGS_KEPT))
    phase: str = "loading"  # "loading", "training", "evaluation", "saving", "canaries"
    phase_started: float | None = None
    last_event_at: float | None = None  # the end of the last thing reported: a step starts there

    def observe(self, event: Any, now: float | None = None) -> None:
        """Feed one training event (engine/train/events.py) as it arrives."""
        now = monotonic() if now is None else now
        kind = event.kind
        if kind == "phase":
            ended = event.phase == "canaries" and event.total is not None and event.done >= event.total
            if event.phase != self.phase or self.phase_started is None:
                self.phase_started = now
            self.phase = "training" if ended else event.phase
        elif kind == "start":
            self.phase, self.phase_started = "training", now
        elif kind == "step":
            _keep(self.step_seconds, event.step_s)
        elif kind == "eval":
            _keep(self.eval_seconds, event.seconds)
        elif kind == "checkpoint":
            _keep(self.save_seconds, event.seconds)
        if kind in ("step", "eval", "checkpoint"):  # the work it reports is over: training goes on
            self.phase, self.phase_started = "training", now
        self.last_event_at = now

    def stop_estimate(self, now: float | None = None) -> StopEstimate:
        """How long a stop asked for now still has to wait: the work in flight, then the save."""
        now = monotonic() if now is None else now
        save = _mean(self.save_seconds)
        if self.phase == "loading":
            return StopEstimate(None, "loading")
        if self.phase == "canaries":
            return StopEstimate(0.0, "canary")  # a canary stops at its next token after a cancel
        if self.phase == "saving":
            if save is None:
                return StopEstimate(None, "save")
            return StopEstimate(max(0.0, save - (now - (self.phase_started or now))), "save")
        timings = self.eval_seconds if self.phase == "evaluation" else self.step_seconds
        started = self.phase_started if self.phase == "evaluation" else self.last_event_at
        in_flight = _mean(timings)
        work = WORK_NAMES.get(self.phase, "step")
        if in_flight is None:
            return StopEstimate(None, work)
        left = max(0.0, in_flight - (now - (started or now)))
        return StopEstimate(left + (save or 0.0), work, save_untimed=save is None)


def estimate_text(estimate: StopEstimate) -> str:
    """The countdown line: "about 1:20 left", "estimating…", or "any moment now"."""
    if estimate.seconds is None:
        if estimate.work == "loading":
            return "estimating… (the model is still loading; it stops once training starts)"
        return f"estimating… (no {estimate.work} of this run has been timed yet)"
    if estimate.seconds >= 1:
        untimed = " + the save (not timed yet)" if estimate.save_untimed else ""
        return f"about {format_duration(estimate.seconds)} left{untimed}"
    if estimate.work == "canary":
        return "any moment now: the canary stops at its next token"
    return f"any moment now (longer than this run's {estimate.work}s have taken so far)"


class QuitWhileTrainingDialog(ModalScreen[str | None]):
    """Returns "stop", "leave" or None (stay)."""

    BINDINGS = [
        Binding("s", "choose('stop')", "Stop it (resumable)", id="quit_train.stop"),
        Binding("l", "choose('leave')", "Leave it running", id="quit_train.leave"),
        Binding("escape", "choose(None)", "Don't quit", id="quit_train.stay"),
    ]
    DEFAULT_CSS = DIALOG_CSS.format(name="QuitWhileTrainingDialog")

    def __init__(self, run_name: str) -> None:
        super().__init__()
        self.run_name = run_name

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"{self.run_name} is training", classes="dialog--title")
            yield Static(
                "s  Stop it: it finishes the step, saves a checkpoint and stays resumable; the app "
                "waits for that, then quits.\n"
                "l  Leave it running: training goes on after the app exits (its progress is in the "
                "run folder; the next start shows it on the runs list).\n"
                "esc  Don't quit.")
            with Horizontal():
                yield Button("Stop it (resumable)", id="quit-stop", variant="warning")
                yield Button("Leave it running", id="quit-leave", variant="primary")
                yield Button("Don't quit", id="quit-stay")

    def on_mount(self) -> None:
        self.query_one("#quit-stop", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss({"quit-stop": "stop", "quit-leave": "leave"}.get(event.button.id or ""))

    def action_choose(self, choice: str | None) -> None:
        self.dismiss(choice)


class StoppingDialog(ModalScreen[str | None]):
    """Waiting for the run to checkpoint before quitting. Returns "force" (kill now and quit)
    or "stay" (keep the app open; the run still stops); closed with None when the run exits."""

    BINDINGS = [
        Binding("ctrl+t,k", "choose('force')", "Kill it now", id="stopping.force"),
        Binding("escape", "choose('stay')", "Don't quit", id="stopping.stay"),
    ]
    DEFAULT_CSS = DIALOG_CSS.format(name="StoppingDialog") + """
    StoppingDialog #stopping-countdown { text-style: bold; }
    StoppingDialog #stopping-hint { margin-top: 1; }
    StoppingDialog #stopping-hint.-nudged { color: $text-warning; text-style: bold; }
    """

    def __init__(self, run_name: str, waiting_for: str, timer: WorkTimer | None = None) -> None:
        super().__init__()
        self.run_name = run_name
        self.waiting_for = waiting_for
        self.timer = timer
        self.started = monotonic()
        self.composed = False

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Stopping {self.run_name} before quitting", classes="dialog--title")
            yield Static("", id="stopping-progress")
            yield Static("", id="stopping-countdown")
            yield Static("k or ctrl+t (a second cancel)  kill it now and quit: the step in flight is lost, "
                         "the last checkpoint stays\nesc  don't quit (it still stops and stays resumable)",
                         id="stopping-hint")

    def nudge(self) -> None:
        """ctrl+q again while waiting: say which key kills, rather than kill on a repeat."""
        if self.composed:
            hint = self.query_one("#stopping-hint", Static)
            hint.add_class("-nudged")
            hint.update("Still waiting for the checkpoint. To quit now, press k (or ctrl+t): that kills the run "
                        "(the step in flight is lost, the last checkpoint stays).\nesc  don't quit")

    def on_mount(self) -> None:
        self.composed = True
        self.show(self.waiting_for)
        self.set_interval(1.0, self._tick)

    def show(self, waiting_for: str) -> None:
        self.waiting_for = waiting_for
        self._tick()

    def _tick(self) -> None:
        if not self.composed:
            return  # events can arrive between push_screen and mount; on_mount shows the latest
        elapsed = format_duration(monotonic() - self.started)
        self.query_one("#stopping-progress", Static).update(f"waiting for: {self.waiting_for}  (waited {elapsed})")
        countdown = estimate_text(self.timer.stop_estimate()) if self.timer is not None else "estimating…"
        self.query_one("#stopping-countdown", Static).update(countdown)

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice)
