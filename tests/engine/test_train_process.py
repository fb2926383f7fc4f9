"""`python -m engine.train` as a child process: SIGTERM cancels cleanly; torchrun runs two CPU ranks."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from engine.train.run import run_training
from tests.engine.test_train_run import workspace  # noqa: F401 - the shared pairs fixture

REPO_ROOT = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    return env


def _common(model: Path, out: str) -> list[str]:
    return ["--model", str(model), "--out", out, "--canaries", "none", "--eval-every", "0", "--json"]


def test_sigterm_finishes_the_step_checkpoints_and_leaves_a_resumable_run(workspace, tiny_llama_dir):  # noqa: F811
    command = [sys.executable, "-m", "engine.train", "-w", str(workspace), *_common(tiny_llama_dir, "runs/cancel"),
               "--max-steps", "500", "--save-every", "0", "--batch-size", "2"]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=_env())
    lines = []
    try:
        for line in child.stdout:
            lines.append(json.loads(line))
            if lines[-1]["event"] == "step":
                child.send_signal(signal.SIGTERM)
                break
        rest, _ = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
    events = lines + [json.loads(line) for line in rest.splitlines()]
    assert child.returncode == 0
    done = events[-1]
    assert done["event"] == "done" and done["status"] == "cancelled" and done["resumable"] is True
    assert 1 <= done["step"] < 500
    run_dir = workspace / "runs" / "cancel"
    checkpoint = run_dir / "checkpoints" / f"checkpoint-{done['step']}"
    assert done["last_checkpoint"] == str(checkpoint)
    assert (checkpoint / "adapter_model.safetensors").exists() and (checkpoint / "optimizer.pt").exists()
    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "cancelled" and status["step"] == done["step"] and status["resumable"] is True
    assert json.loads((run_dir / "events.jsonl").read_text().splitlines()[-1]) == done
    # And it resumes at the next step.
    out = io.StringIO()
    code = run_training(workspace, {"max_steps": done["step"] + 1}, resume=str(run_dir), json_mode=True, stdout=out)
    resumed = [json.loads(line) for line in out.getvalue().splitlines()]
    assert code == 0
    assert [event["step"] for event in resumed if event["event"] == "step"] == [done["step"] + 1]
    assert resumed[-1]["status"] == "done"


@pytest.mark.skipif(shutil.which("torchrun") is None, reason="torchrun is not on PATH")
def test_torchrun_two_cpu_ranks_report_world_size_two_once(workspace, tiny_llama_dir):  # noqa: F811
    command = ["torchrun", "--standalone", "--nproc_per_node", "2", "-m", "engine.train", "-w", str(workspace),
               *_common(tiny_llama_dir, "runs/ddp"), "--max-steps", "3", "--save-every", "3", "--batch-size", "1"]
    result = subprocess.run(command, capture_output=True, text=True, env=_env(), timeout=300, cwd=workspace)
    assert result.returncode == 0, result.stderr[-2000:]
    events = [json.loads(line) for line in result.stdout.splitlines()]
    steps = [event for event in events if event["event"] == "step"]
    # Only rank 0 prints: each step exactly once, each saying there are two ranks.
    assert [event["step"] for event in steps] == [1, 2, 3]
    assert all(event["world_size"] == 2 for event in steps)
    start = next(event for event in events if event["event"] == "start")
    assert start["world_size"] == 2 and events[-1]["status"] == "done"
    # Two ranks of batch 1 take 4 train pairs through one epoch in 2 steps.
    assert steps[1]["epoch"] == pytest.approx(1.0)
    assert (workspace / "runs" / "ddp" / "checkpoints" / "checkpoint-3" / "adapter_model.safetensors").exists()
