"""Canaries on trained checkpoints: listing them, finding what a cancelled run missed, filling it
exactly as training would have (same label, same text for the same seed)."""

from __future__ import annotations

import pytest

from engine.judge import store
from engine.judge.checkpoint_canaries import fill_missing_canaries, missing_canaries, run_checkpoints
from engine.workspace import Workspace
from tests.engine.test_train_run import of, train, workspace  # noqa: F401 — fixtures

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py

CANARIES = "".join(
    f'[[canary]]\nid = "{name}"\nkind = "known-topic-short"\nprompt = "Write about the {name}."\nmax_new_tokens = 8\n\n'
    for name in ("river", "bread"))


def checkpoint_texts(db, label):
    return dict(db.execute("select c.canary_id, g.text from generations g join canaries c on c.id = g.canary_id "
                           "where g.label = ?", [label]).fetchall())


def test_a_cancelled_runs_missing_canaries_are_found_and_filled_as_training_would(workspace, tiny_llama_dir):
    (workspace / "data" / "canaries.toml").write_text(CANARIES)
    code, events = train(workspace, model=str(tiny_llama_dir), method="lora", max_steps=2, save_every=1,
                         canaries="all", canary_max_new_tokens=4, out="runs/r1")
    assert code == 0, of(events, "log")
    ws = Workspace.open(workspace)
    assert [(c.run_id, c.step, c.weights) for c in run_checkpoints(ws)] == [("r1", 1, "adapter"), ("r1", 2, "adapter")]
    db = store.open_store(ws.db_path)
    trained = checkpoint_texts(db, "r1/checkpoint-2")
    assert set(trained) == {"river", "bread"}
    assert missing_canaries(db, ws, "r1") == []

    # As if the run was cancelled before checkpoint-2's canaries: take them out of the store.
    db.execute("delete from generations where label = 'r1/checkpoint-2'")
    gaps = missing_canaries(db, ws, "r1")
    assert [(checkpoint.step, canary_id) for checkpoint, canary_id in gaps] == [(2, "river"), (2, "bread")]

    kinds = [event.kind for event in fill_missing_canaries(db, ws, "r1")]
    assert [kind for kind in kinds if kind != "phase"] == ["checkpoint_canaries_start", "canary", "canary"]
    assert "phase" in kinds  # "canary n/N" progress, as during training
    assert missing_canaries(db, ws, "r1") == []
    assert checkpoint_texts(db, "r1/checkpoint-2") == trained  # same seed and settings: same words
    assert list(fill_missing_canaries(db, ws, "r1")) == []  # nothing left: nothing loads
    db.close()


def test_unknown_run_or_half_written_checkpoint_is_not_listed(workspace):
    folder = workspace / "runs" / "r2" / "checkpoints" / "checkpoint-3"
    folder.mkdir(parents=True)
    (workspace / "runs" / "r2" / "config.toml").write_text('model = "demo-ar"\n')
    (folder / "optimizer.pt").write_bytes(b"")  # no weights yet
    ws = Workspace.open(workspace)
    assert run_checkpoints(ws) == []
    db = store.open_store(memory=True)
    assert missing_canaries(db, ws, "nope") == []
