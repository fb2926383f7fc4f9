"""Resume picks the newest complete checkpoint, and judgments.db follows the runs.

- A run killed while saving leaves a half-written newest checkpoint (real files from a real
  run, with the ones the Trainer writes last removed): resume passes over it with a warning,
  continues from the one before, and the store ends with one loss row per step.
- A failed run with no complete checkpoint is not advertised as resumable.
- A run the store calls running whose process is gone is marked interrupted when the runs
  list is read or the store is opened for the CLI / Judge screen; a live one is left alone.
"""

from __future__ import annotations

import io
import json
import os
import shutil

import pytest

from engine.judge import store
from engine.train.run import run_training
from engine.train.runs import STALE_STATUS, checkpoint_problem, list_runs, newest_complete_checkpoint
from tests.engine.test_train_run import of, train, workspace  # noqa: F401 - fixtures

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py

DEAD_PID = 2**22 + 12345  # above Linux's pid_max default: no such process


def test_resume_skips_a_half_written_checkpoint_and_keeps_one_row_per_step(workspace, tiny_llama_dir):  # noqa: F811
    settings = dict(model=str(tiny_llama_dir), method="lora", lr=1e-2, max_steps=4, save_every=2, batch_size=1)
    code, first = train(workspace, out="runs/killed", **settings)
    assert code == 0
    run_dir = workspace / "runs" / "killed"
    half = run_dir / "checkpoints" / "checkpoint-4"
    # Killed while saving checkpoint-4: the weights are there, the files written after them are not.
    for name in ("trainer_state.json", "scheduler.pt", "rng_state.pth"):
        (half / name).unlink(missing_ok=True)
    (half / "optimizer.pt").write_bytes((half / "optimizer.pt").read_bytes()[:100])
    status = json.loads((run_dir / "status.json").read_text())
    (run_dir / "status.json").write_text(json.dumps({**status, "status": "running", "pid": DEAD_PID}))
    assert "trainer_state.json" in checkpoint_problem(half)
    assert newest_complete_checkpoint(run_dir / "checkpoints")[0].name == "checkpoint-2"

    out = io.StringIO()
    code = run_training(workspace, {}, resume="runs/killed", json_mode=True, stdout=out)
    resumed = [json.loads(line) for line in out.getvalue().splitlines()]
    assert code == 0, resumed[-2:]
    warnings = [event["message"] for event in of(resumed, "log") if event["level"] == "warning"]
    assert any("checkpoint-4: incomplete" in message and "resuming from checkpoint-2" in message
               for message in warnings), warnings
    start = of(resumed, "start")[0]
    assert start["start_step"] == 2 and start["resumed_from"].endswith("checkpoint-2")
    assert [event["step"] for event in of(resumed, "step")] == [3, 4]
    assert resumed[-1]["status"] == "done" and not checkpoint_problem(half)  # saved whole this time

    db = store.open_store(workspace / "judgments.db")
    rows = list(db.query("select step, count(*) as n from run_metrics where run_id = 'killed' and name = 'loss' "
                         "group by step order by step"))
    assert [(row["step"], row["n"]) for row in rows] == [(1, 1), (2, 1), (3, 1), (4, 1)]
    assert next(db.query("select status from runs where id = 'killed'"))["status"] == "done"


def test_a_failed_run_without_a_complete_checkpoint_is_not_resumable(workspace, tiny_llama_dir, monkeypatch):  # noqa: F811
    import torch

    from engine.train.trainer import VoicebenchTrainer

    def out_of_memory(self, model, inputs, *args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(VoicebenchTrainer, "compute_loss", out_of_memory)
    code, events = train(workspace, model=str(tiny_llama_dir), method="lora", max_steps=4, save_every=2, out="runs/oom")
    assert code == 1
    error, done = events[-2], events[-1]
    assert error["kind"] == "oom" and error["resumable"] is False
    assert done["status"] == "failed" and done["resumable"] is False and done["last_checkpoint"] is None
    status = json.loads((workspace / "runs" / "oom" / "status.json").read_text())
    assert status["resumable"] is False


def _run_folder(runs_dir, run_id: str, pid: int) -> None:
    folder = runs_dir / run_id
    folder.mkdir(parents=True)
    (folder / "status.json").write_text(json.dumps({"status": "running", "pid": pid, "step": 3,
                                                    "updated_at": "2026-01-01T00:00:00+00:00"}))


@pytest.mark.parametrize("opener", ["runs list", "workspace store"])
def test_runs_whose_process_is_gone_are_marked_interrupted_in_the_store(tmp_path, opener):
    from engine.judge.workspace_store import open_workspace_store
    from engine.workspace import Workspace

    runs_dir = tmp_path / "runs"
    _run_folder(runs_dir, "killed", DEAD_PID)
    _run_folder(runs_dir, "alive", os.getpid())
    db = store.open_store(tmp_path / "judgments.db")
    for run_id in ("killed", "alive", "vanished"):
        store.record_run(db, run_id=run_id, method="lora", status="running", out_dir=runs_dir / run_id)
    if opener == "runs list":
        listed = {run.run_id: run.status for run in list_runs(runs_dir)}
        assert listed == {"killed": STALE_STATUS, "alive": "running"}
    else:
        open_workspace_store(Workspace.open(tmp_path))
    statuses = {row["id"]: (row["status"], row["ended_at"]) for row in db.query("select id, status, ended_at from runs")}
    assert statuses["killed"] == (STALE_STATUS, "2026-01-01T00:00:00+00:00")
    assert statuses["alive"] == ("running", None)
    if opener == "workspace store":
        assert statuses["vanished"][0] == STALE_STATUS  # its folder is gone: nothing will ever finish it


def test_listing_runs_never_creates_the_store(tmp_path):
    _run_folder(tmp_path / "runs", "killed", DEAD_PID)
    assert list_runs(tmp_path / "runs")[0].status == STALE_STATUS
    assert not (tmp_path / "judgments.db").exists()
