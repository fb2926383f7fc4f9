"""Progress and cancel in a real (tiny) run: phase events, an ETA that counts canaries, a cancel
that skips canaries, and run labels."""

from __future__ import annotations

import io
import json
import os
import signal

import pytest

from engine.train.progress import RunClock
from engine.train.run import run_training
from engine.train.runs import checkpoint_label, default_label, list_runs, read_run
from tests.engine.test_train_run import workspace  # noqa: F401 - the shared pairs fixture

CANARIES = "".join(
    f'[[canary]]\nid = "c{index}"\nkind = "known-topic-short"\nprompt = "Write about thing {index}."\n'
    "max_new_tokens = 4\n\n" for index in range(3))


def test_clock_counts_evaluations_checkpoints_and_their_canaries():
    clock = RunClock(max_steps=30, eval_every=10, save_every=10, canaries_per_checkpoint=5,
                     step_seconds=[1.0], eval_seconds=[4.0], save_seconds=[2.0], canary_seconds=[10.0])
    # After step 10 with its eval and save done: 20 steps, evals at 20 and 30, saves at 20 and 30.
    assert clock.eta(10) == 20 * 1.0 + 2 * 4.0 + 2 * (2.0 + 5 * 10.0)
    # At the last step, mid-canaries of its checkpoint: only the 3 canaries left count.
    assert clock.eta(30, canaries_left_now=3) == 30.0
    # The final save is counted even when it is not a multiple of save_every.
    assert RunClock(max_steps=25, save_every=10).checkpoints_after(20) == 1
    assert RunClock(max_steps=20, save_every=10).checkpoints_after(20) == 0
    assert RunClock(max_steps=5).eta(0) is None  # no step timed yet


class SignalOnFirstStep(io.StringIO):
    """The run's stdout: sends the process SIGTERM when the first step line is written, the way
    the app's cancel does (the run's own handler turns it into a cancel request)."""

    def __init__(self):
        super().__init__()
        self.sent = False

    def write(self, text):
        if not self.sent and '"event":"step"' in text:
            self.sent = True
            os.kill(os.getpid(), signal.SIGTERM)
        return super().write(text)


def test_a_cancel_skips_the_checkpoint_canaries_and_phases_say_what_ran(workspace, tiny_masked_dir):  # noqa: F811
    pytest.importorskip("engine.sample.diffusion")
    (workspace / "data" / "canaries.toml").write_text(CANARIES)
    out = SignalOnFirstStep()
    code = run_training(workspace, {"model": str(tiny_masked_dir), "method": "diffusion", "max_steps": 200,
                                    "save_every": 50, "eval_every": 0, "batch_size": 4, "canaries": "all",
                                    "canary_max_new_tokens": 4, "canary_steps": 2, "out": "runs/c",
                                    "label": "river test"}, json_mode=True, stdout=out)
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert code == 0
    kinds = [event["event"] for event in events]
    assert kinds[0] == "phase" and events[0]["phase"] == "loading"
    # The base model's three canaries, each announced as "canary n/3", then the phase closes at 3/3.
    counts = [(event["done"], event["total"]) for event in events
              if event["event"] == "phase" and event["phase"] == "canaries"]
    assert counts == [(0, 3), (1, 3), (2, 3), (3, 3)]
    assert [event["step"] for event in events if event["event"] == "canary"] == [0, 0, 0]
    # Step 1's line is printed after step 1 ended, so the cancel lands at the end of step 2:
    # saved, no canaries for checkpoint-2, and done says so.
    done = events[-1]
    assert done["status"] == "cancelled" and done["step"] == 2 and done["resumable"]
    assert done["canaries_skipped"] == 3 and done["last_checkpoint"].endswith("checkpoint-2")
    phases = [event["phase"] for event in events if event["event"] == "phase"]
    assert phases[-1] == "saving" and "training" in phases
    step = next(event for event in events if event["event"] == "step")
    assert step["eta_s"] is not None and step["eta_s"] > 0
    # The label travels to config.toml, status.json and the start line.
    assert next(event for event in events if event["event"] == "start")["label"] == "river test"
    run = read_run(workspace / "runs" / "c")
    assert run.label == "river test" and checkpoint_label(run, 2) == "river test @ step 2"
    assert json.loads((workspace / "runs" / "c" / "status.json").read_text())["label"] == "river test"


def test_default_labels_count_runs_of_the_same_model_and_method(workspace, tiny_llama_dir):  # noqa: F811
    settings = {"model": str(tiny_llama_dir), "method": "lora", "max_steps": 1, "batch_size": 4,
                "canaries": "none", "eval_every": 0, "save_every": 0}
    for name in ("a", "b"):
        assert run_training(workspace, {**settings, "out": f"runs/{name}"}, json_mode=True, stdout=io.StringIO()) == 0
    labels = sorted(run.label for run in list_runs(workspace / "runs"))
    model = tiny_llama_dir.name
    assert labels == [f"{model} lora #1", f"{model} lora #2"]
    assert default_label(workspace / "runs", str(tiny_llama_dir), "lora") == f"{model} lora #3"
    assert default_label(workspace / "runs", str(tiny_llama_dir), "full") == f"{model} full #1"


class BrokenStdout(io.StringIO):
    """stdout of a run whose reader went away (the app quit and left the run running)."""

    def write(self, text):
        raise BrokenPipeError(32, "Broken pipe")


def test_a_broken_stdout_does_not_stop_the_record(tmp_path):
    from engine.train.events import LogEvent, StepEvent
    from engine.train.record import RunLog

    log = RunLog(tmp_path / "run", is_main=True, json_mode=True, stdout=BrokenStdout())
    log.emit(LogEvent(level="info", message="first"))
    log.emit(StepEvent(step=1, max_steps=3, epoch=0.1, loss=2.0, lr=1e-3, grad_norm=None, tokens_per_s=1.0,
                       memory=1.0, world_size=1, elapsed_s=1.0, eta_s=2.0))
    log.close()
    lines = (tmp_path / "run" / "events.jsonl").read_text().splitlines()
    assert [json.loads(line)["event"] for line in lines] == ["log", "step"]
