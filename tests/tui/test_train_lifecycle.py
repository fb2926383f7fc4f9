"""Train screen at real timings: a slow fake trainer whose phases wait on gates the test opens.

Cancel during checkpoint canaries, the second press, resume in the same session, quit (stop
or leave running), progress for every phase, the cause of a death, labels, number fields
and blind canaries. Nothing here sleeps on the clock: the fake waits for files the test
writes, and the test waits for the screen to show what it should.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest
from textual.widgets import Select

from engine.workspace import Workspace
from tests.tui.test_train import fake_child, open_train, run_to_exit, wait_until
from tests.tui.train_fixtures import write_workspace
from tests.tui.waiting import workers_done
from tui.app import make_app
from tui.widgets.train_runs_list import RunsTable

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


def stats(screen) -> str:
    return str(screen.query_one("#train-stats").render())


def log_text(screen) -> str:
    return "\n".join(line.text for line in screen.query_one("#train-log").lines)


def open_gate(control, name: str) -> None:
    (control / name).write_text("")


def form_values(screen, **values: str) -> None:
    form = screen.query_one("TrainForm")
    for name, value in values.items():
        form.input(name).value = value


async def start_until_evaluating(pilot, screen, max_steps: str) -> None:
    """Start a run of `max_steps` and wait until it reaches its gated first evaluation."""
    form_values(screen, max_steps=max_steps)
    await pilot.press("ctrl+s")
    await wait_until(pilot, lambda: "evaluating" in stats(screen))


async def test_cancel_during_checkpoint_canaries_lands_cancelled_and_resumable(tmp_path, monkeypatch):
    control = tmp_path / "control"
    fake_child(monkeypatch, "steps", gates=("canary-2-2",), control=control, canaries=3)
    app = make_app(Workspace.open(write_workspace(tmp_path / "ws")))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_train(pilot)
        form_values(screen, max_steps="100", save_every="2", label="river test")
        await pilot.press("ctrl+s")
        # The second canary of checkpoint-2 takes "minutes": the status line says so.
        await wait_until(pilot, lambda: "canary 2/3 (checkpoint-2)" in stats(screen))
        assert "river test" in stats(screen)
        await pilot.press("ctrl+t")
        await wait_until(pilot, lambda: screen.live.exit_code is not None)
        await workers_done(app)
        await pilot.pause()
        live = screen.live
        assert live.exit_code == 0 and not live.process.forced  # no kill: the cancel landed by itself
        assert live.view.status == "cancelled" and live.done.resumable and live.done.canaries_skipped == 2
        assert "2 canaries of the last checkpoint were skipped" in log_text(screen)
        assert "checkpoint river test @ step 2" in log_text(screen)
        status = json.loads((screen.app.workspace.root / live.run_dir / "status.json").read_text())
        assert status["status"] == "cancelled" and status["resumable"] and status["label"] == "river test"
        row = screen.query_one(RunsTable).run_by_id(live.view.run_id)
        assert row.status == "cancelled" and row.label == "river test"
        assert not screen.query_one("#train-error").display


async def test_resume_in_the_same_session_keeps_the_curve(tmp_path, monkeypatch):
    control = tmp_path / "control"
    fake_child(monkeypatch, "steps", gates=("eval-4",), control=control)
    app = make_app(Workspace.open(write_workspace(tmp_path / "ws")))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_train(pilot)
        await start_until_evaluating(pilot, screen, "6")
        # The runs list and the status line agree on the step while it trains.
        table = screen.query_one(RunsTable)
        await wait_until(pilot, lambda: table.run_by_id(screen.live.view.run_id) is not None)
        await pilot.pause()
        assert str(table.get_row(screen.live.view.run_id)[3]) == "4/6" and "step 4/6" in stats(screen)
        await pilot.press("ctrl+t")
        open_gate(control, "eval-4")  # the evaluation finishes; then the cancel lands
        await wait_until(pilot, lambda: screen.live.exit_code is not None)
        await workers_done(app)
        await pilot.pause()
        first = screen.live
        assert first.view.status == "cancelled" and [step for step, _ in first.curves.train] == [1, 2, 3, 4]
        await pilot.press("ctrl+r")  # straight away, without going to the runs list
        await wait_until(pilot, lambda: screen.live is not first and screen.live.exit_code is not None)
        await workers_done(app)
        await pilot.pause()
        resumed = screen.live
        assert resumed.process.command[-3:-1] == ["--resume", str(screen.app.workspace.root / first.run_dir)]
        assert "resumed at step 4 from checkpoint-4" in log_text(screen)
        assert [step for step, _ in resumed.curves.train] == [1, 2, 3, 4, 5, 6]  # earlier points kept
        assert [step for step, _ in screen.query_one("#train-plot").series[0].points] == [1, 2, 3, 4, 5, 6]
        assert resumed.view.status == "done" and "step 6/6" in stats(screen)
        assert screen.query_one(RunsTable).run_by_id(first.view.run_id).status == "done"


async def test_second_press_kills_and_the_dead_run_resumes(tmp_path, monkeypatch):
    fake_child(monkeypatch, "stubborn")
    app = make_app(Workspace.open(write_workspace(tmp_path / "ws")))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_train(pilot)
        form_values(screen, max_steps="100000", save_every="1")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: len(screen.live.curves.train) >= 2)
        await pilot.press("ctrl+t")
        await pilot.pause()
        assert screen.live.active and screen.live.view.status == "cancelling"  # no timer will kill it
        await pilot.press("ctrl+t")
        await wait_until(pilot, lambda: screen.live.exit_code is not None)
        await workers_done(app)
        await pilot.pause()
        dead = screen.live
        assert dead.view.status == "interrupted"
        # status.json still says "running" (it was killed), but the list knows the pid is gone.
        row = screen.query_one(RunsTable).run_by_id(dead.view.run_id)
        assert row.status == "interrupted" and row.resumable
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: screen.live is not dead)
        assert "--resume" in screen.live.process.command
        await pilot.press("ctrl+t", "ctrl+t")
        await wait_until(pilot, lambda: screen.live.exit_code is not None)
        await workers_done(app)


async def test_progress_is_shown_for_every_phase(tmp_path, monkeypatch):
    control = tmp_path / "control"
    fake_child(monkeypatch, "steps", gates=("loading", "canary-0-1", "eval-2", "canary-3-1"), control=control,
               canaries=2)
    app = make_app(Workspace.open(write_workspace(tmp_path / "ws")))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_train(pilot)
        form_values(screen, max_steps="100", save_every="3")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: "loading model and data" in stats(screen))
        open_gate(control, "loading")
        await wait_until(pilot, lambda: "canary 1/2 (base)" in stats(screen))
        assert "ETA 1:00" in stats(screen)  # the phase's ETA, canaries included
        open_gate(control, "canary-0-1")
        await wait_until(pilot, lambda: "evaluating" in stats(screen))
        assert "step 2/100" in stats(screen)
        open_gate(control, "eval-2")
        await wait_until(pilot, lambda: "canary 1/2 (checkpoint-3)" in stats(screen))
        await pilot.press("ctrl+t")
        await wait_until(pilot, lambda: screen.live.exit_code is not None)
        await workers_done(app)


async def test_quit_and_stop_waits_for_the_checkpoint(tmp_path, monkeypatch):
    control = tmp_path / "control"
    fake_child(monkeypatch, "steps", gates=("eval-2",), control=control)
    app = make_app(Workspace.open(write_workspace(tmp_path / "ws")))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_train(pilot)
        await start_until_evaluating(pilot, screen, "100")
        process, run_dir = screen.live.process, screen.app.workspace.root / screen.live.run_dir
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert type(app.screen).__name__ == "QuitWhileTrainingDialog"
        await pilot.press("s")
        await pilot.pause()
        assert app.is_running and type(app.screen).__name__ == "StoppingDialog"
        shown = str(app.screen.query_one("#stopping-progress").render())
        assert "waiting for: evaluating (then the checkpoint)" in shown
        assert process.running  # nothing is killed while it waits
        open_gate(control, "eval-2")
        await wait_until(pilot, lambda: not app.is_running)
    assert process.wait(timeout=30) == 0
    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "cancelled" and status["resumable"] and status["step"] == 2


class FakeClock:
    """The stopping dialog's clock, moved by the test (events arriving read it too)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_stopping_shows_a_countdown_and_which_key_kills(tmp_path, monkeypatch):
    from tui.screens import train_quit

    clock = FakeClock()
    monkeypatch.setattr(train_quit, "monotonic", clock)
    control = tmp_path / "control"
    fake_child(monkeypatch, "steps", gates=("eval-2",), control=control)
    app = make_app(Workspace.open(write_workspace(tmp_path / "ws")))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_train(pilot)
        await start_until_evaluating(pilot, screen, "100")
        process = screen.live.process
        await pilot.press("ctrl+q")
        await pilot.pause()
        await pilot.press("s")
        await pilot.pause()
        dialog = app.screen
        assert type(dialog).__name__ == "StoppingDialog"

        def shown(selector: str) -> str:
            return str(dialog.query_one(selector).render())

        # The run's first evaluation: nothing to estimate from yet.
        assert "waiting for: evaluating (then the checkpoint)" in shown("#stopping-progress")
        assert "estimating… (no evaluation of this run has been timed yet)" in shown("#stopping-countdown")
        assert "k or ctrl+t" in shown("#stopping-hint") and "kill it now" in shown("#stopping-hint")
        for selector in ("#stopping-progress", "#stopping-countdown", "#stopping-hint"):
            assert dialog.region.contains_region(dialog.query_one(selector).region)  # all of it at 80x24

        # As if this run's evaluations took 10 minutes and its saves one: the dialog counts down.
        screen.live.timer.eval_seconds.append(600.0)
        screen.live.timer.save_seconds.append(60.0)
        clock.now += 90  # 1:30 into this evaluation
        await wait_until(pilot, lambda: "about 9:30 left" in shown("#stopping-countdown"))
        assert "waited 1:30" in shown("#stopping-progress")
        clock.now += 600  # the evaluation overran: only the save is left to count down
        await wait_until(pilot, lambda: "about 1:00 left" in shown("#stopping-countdown"))

        await pilot.press("ctrl+q")  # a repeat of quit does not kill: it says which key does
        await pilot.pause()
        assert app.is_running and process.running
        assert "press k (or ctrl+t): that kills the run" in shown("#stopping-hint")
        await pilot.press("k")
        await wait_until(pilot, lambda: not app.is_running)
    assert process.wait(timeout=30) == -signal.SIGKILL and process.forced


def test_work_timer_estimates_what_a_stop_waits_for():
    from engine.train.events import CheckpointEvent, EvalEvent, PhaseEvent, StepEvent
    from tui.screens.train_quit import StopEstimate, WorkTimer, estimate_text

    def step(number: int, seconds: float | None):
        return StepEvent(step=number, max_steps=10, epoch=0.0, loss=1.0, lr=1e-3, grad_norm=None, tokens_per_s=1.0,
                         memory=1.0, world_size=1, elapsed_s=0.0, eta_s=None, step_s=seconds)

    timer = WorkTimer()
    timer.observe(PhaseEvent(phase="loading", step=0), now=0.0)
    assert timer.stop_estimate(now=5.0) == StopEstimate(None, "loading")
    timer.observe(PhaseEvent(phase="training", step=0), now=10.0)
    assert timer.stop_estimate(now=11.0) == StopEstimate(None, "step")  # no step timed yet
    timer.observe(step(1, None), now=12.0)  # an event that carries no time times nothing
    assert timer.stop_estimate(now=12.5) == StopEstimate(None, "step")
    # Durations come from the events, not from when they arrive: these two reach the app together.
    timer.observe(step(2, 2.0), now=16.0)
    timer.observe(step(3, 4.0), now=16.0)  # a step takes 3 s on average
    assert timer.stop_estimate(now=17.0) == StopEstimate(2.0, "step", save_untimed=True)
    assert estimate_text(timer.stop_estimate(now=17.0)) == "about 0:02 left + the save (not timed yet)"
    timer.observe(PhaseEvent(phase="evaluation", step=3), now=16.0)
    timer.observe(EvalEvent(step=3, val_loss=1.0, seconds=10.0), now=26.0)  # evaluations take 10 s
    timer.observe(PhaseEvent(phase="saving", step=3), now=26.0)
    timer.observe(CheckpointEvent(step=3, path="checkpoint-3", seconds=6.0), now=26.0)  # saves take 6 s
    timer.observe(step(4, 3.0), now=35.0)
    assert list(timer.step_seconds) == [2.0, 4.0, 3.0]
    assert list(timer.eval_seconds) == [10.0] and list(timer.save_seconds) == [6.0]
    assert timer.stop_estimate(now=36.0) == StopEstimate(2.0 + 6.0, "step")  # the step in flight began at 35
    timer.observe(PhaseEvent(phase="evaluation", step=4), now=40.0)
    assert timer.stop_estimate(now=44.0) == StopEstimate(6.0 + 6.0, "evaluation")  # counts down…
    assert timer.stop_estimate(now=47.0) == StopEstimate(3.0 + 6.0, "evaluation")
    assert timer.stop_estimate(now=80.0).seconds == 6.0  # …overdue evaluation: the save is still ahead
    timer.observe(PhaseEvent(phase="saving", step=4), now=80.0)
    assert timer.stop_estimate(now=82.0) == StopEstimate(4.0, "save")
    assert estimate_text(timer.stop_estimate(now=99.0)) == "any moment now (longer than this run's saves have taken so far)"
    timer.observe(PhaseEvent(phase="canaries", step=4, done=0, total=3, detail="checkpoint-4"), now=81.0)
    assert estimate_text(timer.stop_estimate(now=90.0)) == "any moment now: the canary stops at its next token"


async def test_quit_and_leave_it_running_detaches_and_the_next_start_shows_it_live(tmp_path, monkeypatch):
    fake_child(monkeypatch, "steps")
    root = write_workspace(tmp_path / "ws")
    app = make_app(Workspace.open(root))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_train(pilot)
        form_values(screen, max_steps="100000")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: len(screen.live.curves.train) >= 1)
        process, run_dir = screen.live.process, root / screen.live.run_dir
        await pilot.press("ctrl+q")
        await pilot.pause()
        await pilot.press("l")
        await wait_until(pilot, lambda: not app.is_running)
    try:
        assert not process.cancel_requested
        events = run_dir / "events.jsonl"

        def steps_written() -> int:
            return events.read_text().count('"event":"step"')

        before = steps_written()
        deadline = time.monotonic() + 30
        while steps_written() <= before + 3:  # it keeps training with the app gone
            assert time.monotonic() < deadline, "the left-running trainer stopped writing"
            with pytest.raises(subprocess.TimeoutExpired):
                process.wait(timeout=0.1)  # …and stays alive
        again = make_app(Workspace.open(root))
        async with again.run_test(size=(120, 40)) as pilot:
            screen = await open_train(pilot)
            row = screen.query_one(RunsTable).run_by_id(run_dir.name)
            assert row is not None and row.status == "running" and row.pid == process.pid
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


async def test_the_cause_is_the_error_event_not_a_library_warning(tmp_path, monkeypatch):
    fake_child(monkeypatch, "warn-and-die")
    app = make_app(Workspace.open(write_workspace(tmp_path / "ws")))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_train(pilot)
        await run_to_exit(pilot, screen)
        shown = str(screen.query_one("#train-error").render())
        assert screen.live.view.status == "interrupted"
        assert "the optimizer state is corrupt" in shown and "Resume from the previous checkpoint." in shown
        assert "FutureWarning" not in shown


async def test_number_fields_replace_on_typing_and_text_fields_do_not(tmp_path, monkeypatch):
    fake_child(monkeypatch, "steps")
    app = make_app(Workspace.open(write_workspace(tmp_path / "ws")))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_train(pilot)
        form = screen.query_one("TrainForm")
        assert form.input("max_steps").value == "60"
        form.input("label").focus()
        await pilot.press("tab")  # into max steps, as a writer would
        assert app.focused is form.input("max_steps")
        await pilot.press("3", "0")
        assert form.input("max_steps").value == "30"  # not 6030
        form.input("lora_targets").focus()
        await pilot.press("tab")  # into canaries, a text field: typing appends
        assert app.focused is form.input("canaries")
        await pilot.press("end", "x")
        assert form.input("canaries").value == "allx"
        assert form.input("label").placeholder == "demo-ar lora #1"
        form.query_one("#train-method", Select).value = "full"
        await pilot.pause()
        assert form.input("lora_rank").disabled and form.input("lora_targets").disabled
        assert form.input("label").placeholder == "demo-ar full #1"


async def test_canary_texts_stay_hidden_while_a_blind_session_is_open(tmp_path, monkeypatch):
    from engine.judge import session as judging
    from engine.judge.store import open_store
    from tests.engine.judge_data import add_generations, seed_rubric

    fake_child(monkeypatch, "steps")
    root = write_workspace(tmp_path / "ws")
    db = open_store(Workspace.open(root).db_path)
    seed_rubric(db, tmp_path)
    add_generations(db, ["a", "b"], 2)
    judging.build_session(db, mode="rubric", seed=1)
    db.close()
    app = make_app(Workspace.open(root))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_train(pilot)
        form_values(screen, max_steps="3")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: screen.live.exit_code is not None)
        await pilot.press("f6")
        await workers_done(app)
        await pilot.pause()
        notice = screen.query_one("#train-canary-blind")
        assert notice.display and "blind judging session is open" in str(notice.render())
        assert not screen.query_one("#train-canary-log").display
        await pilot.press("ctrl+g")
        await pilot.pause()
        assert screen.query_one("#train-canary-log").display and not notice.display
