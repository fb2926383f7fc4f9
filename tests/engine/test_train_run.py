"""Training runs in-process on tiny models: loss goes down, QLoRA, resume, OOM, canaries, records."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from pathlib import Path

import pytest

from engine.train.config import load_config
from engine.train.run import run_training

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py

RESPONSES = [
    "The river keeps its own counsel, and the town keeps the river's.",
    "I wrote this in the kitchen, with the window open.",
    "Every essay is an argument with the person I was last year.",
    "Notes on walking, bread, weather and small repairs.",
]


@pytest.fixture()
def workspace(tmp_path) -> Path:
    """Four train pairs (one batch, so every step sees the same data), one val pair, one bad line."""
    (tmp_path / "data").mkdir()
    lines = [{"id": f"p{i}", "prompt": f"Write note {i}.", "response": text, "split": "train"}
             for i, text in enumerate(RESPONSES)]
    lines.append({"id": "v0", "prompt": "Write note 9.", "response": RESPONSES[0], "split": "val"})
    text = "".join(json.dumps(line) + "\n" for line in lines) + "{not json\n"  # line 6: reported, skipped
    (tmp_path / "data" / "pairs.jsonl").write_text(text)
    return tmp_path


def train(workspace: Path, *, with_phases: bool = False, **overrides):
    """Run in-process with --json; returns (exit code, events as dicts), `phase` progress
    lines left out unless `with_phases`."""
    out = io.StringIO()
    settings = {"canaries": "none", "batch_size": 4, "eval_every": 0, "save_every": 0, **overrides}
    code = run_training(workspace, settings, json_mode=True, stdout=out)
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    return code, [event for event in events if with_phases or event["event"] != "phase"]


def of(events, kind):
    return [event for event in events if event["event"] == kind]


def test_lora_run_lowers_loss_and_records_the_run(workspace, tiny_llama_dir):
    code, events = train(workspace, model=str(tiny_llama_dir), method="lora", lr=2e-2, max_steps=6,
                         out="runs/lora", eval_every=3)
    assert code == 0
    assert events[0]["event"] == "start" and events[-1]["event"] == "done"
    losses = [event["loss"] for event in of(events, "step")]
    assert [event["step"] for event in of(events, "step")] == [1, 2, 3, 4, 5, 6]
    assert losses[-1] < losses[0] - 0.05
    assert [event["step"] for event in of(events, "eval")] == [3, 6]
    # Each kind of work reports its own time (the app's stop countdown reads these).
    assert all(0 < event["step_s"] <= event["elapsed_s"] for event in of(events, "step"))
    assert all(event["seconds"] > 0 for event in of(events, "eval") + of(events, "checkpoint"))
    start, done = events[0], events[-1]
    assert start["trainable_parameters"] < start["total_parameters"] / 2
    assert start["train_examples"] == 4 and start["val_examples"] == 1
    assert any("pairs.jsonl:6:" in event["message"] for event in of(events, "log"))
    assert done["status"] == "done" and done["step"] == 6
    run_dir = workspace / "runs" / "lora"
    assert Path(done["last_checkpoint"]) == run_dir / "checkpoints" / "checkpoint-6"
    assert (run_dir / "checkpoints" / "checkpoint-6" / "adapter_model.safetensors").exists()
    # The run folder: every event in events.jsonl, the resolved config, status and the data hash.
    recorded = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    assert [event for event in recorded if event["event"] != "phase"] == events
    config = load_config(run_dir / "config.toml")
    assert config.lr == 2e-2 and config.method == "lora" and config.max_steps == 6
    assert json.loads((run_dir / "status.json").read_text())["status"] == "done"
    pairs_hash = hashlib.sha256((workspace / "data" / "pairs.jsonl").read_bytes()).hexdigest()
    assert json.loads((run_dir / "run.json").read_text())["pairs_sha256"] == pairs_hash


def test_full_fine_tuning_of_gpt2_through_the_cli(workspace, tiny_gpt2_dir, capsys):
    from engine.cli import main

    code = main(["-w", str(workspace), "train", "--model", str(tiny_gpt2_dir), "--method", "full",
                 "--lr", "3e-3", "--max-steps", "5", "--out", "runs/full", "--canaries", "none",
                 "--eval-every", "0", "--json"])
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    events = [event for event in events if event["event"] != "phase"]
    assert code == 0
    losses = [event["loss"] for event in of(events, "step")]
    assert len(losses) == 5 and losses[-1] < losses[0] - 0.05
    assert events[0]["trainable_parameters"] == events[0]["total_parameters"]
    assert (workspace / "runs" / "full" / "checkpoints" / "checkpoint-5" / "model.safetensors").exists()


def test_masked_diffusion_run_lowers_loss(workspace, tiny_masked_dir):
    code, events = train(workspace, model=str(tiny_masked_dir), method="diffusion", lr=1e-2, max_steps=8,
                         out="runs/diffusion", eval_every=8)
    assert code == 0
    start = events[0]
    assert start["objective"] == "diffusion" and start["family"] == "masked"
    losses = [event["loss"] for event in of(events, "step")]
    # Masks are random per step, so compare averages (the seed makes the run repeatable).
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3
    assert len(of(events, "eval")) == 1


def test_default_diffusion_lr_comes_with_its_reason(workspace, tiny_masked_dir):
    code, events = train(workspace, model=str(tiny_masked_dir), method="lora", max_steps=1, out="runs/dlora")
    assert code == 0
    start = events[0]
    assert start["lr"] == pytest.approx(1e-4 * 5)  # diffusion LoRA default, x5 for a tiny model
    assert "1/p" in start["lr_note"]


def test_qlora_trains_4bit_weights_on_cpu(workspace, tiny_llama_dir, monkeypatch):
    from engine.train import lora

    seen = {}
    original = lora.apply_lora

    def spy(model, **kwargs):
        seen["4bit"] = sorted({type(m).__name__ for m in model.modules() if "4bit" in type(m).__name__})
        seen["checkpointing"] = model.is_activation_checkpointing
        return original(model, **kwargs)

    monkeypatch.setattr(lora, "apply_lora", spy)
    code, events = train(workspace, model=str(tiny_llama_dir), method="qlora", lr=2e-2, max_steps=2, out="runs/q",
                         gradient_checkpointing=True)
    assert code == 0 and events[-1]["status"] == "done"
    assert seen["4bit"] == ["Linear4bit"] and seen["checkpointing"]
    assert all(event["loss"] == event["loss"] for event in of(events, "step"))  # not NaN
    assert (workspace / "runs" / "q" / "checkpoints" / "checkpoint-2" / "adapter_model.safetensors").exists()


def test_resume_continues_at_the_next_step_with_the_same_state(workspace, tiny_llama_dir):
    import torch
    from safetensors.torch import load_file

    # Batch 1 over 4 train pairs: the checkpoint at step 2 is mid-epoch, so the resumed run
    # must skip exactly the batches already seen, in the same shuffled order.
    settings = dict(model=str(tiny_llama_dir), method="lora", lr=1e-2, max_steps=4, save_every=2, batch_size=1)
    code, straight = train(workspace, out="runs/straight", **settings)
    assert code == 0
    # The same run stopped after step 2: its folder as it was then, minus the last checkpoint.
    shutil.copytree(workspace / "runs" / "straight", workspace / "runs" / "resumed")
    shutil.rmtree(workspace / "runs" / "resumed" / "checkpoints" / "checkpoint-4")
    out = io.StringIO()
    code = run_training(workspace, {}, resume="runs/resumed", json_mode=True, stdout=out)
    resumed = [json.loads(line) for line in out.getvalue().splitlines()]
    resumed = [event for event in resumed if event["event"] != "phase"]
    assert code == 0
    assert resumed[0]["start_step"] == 2 and resumed[0]["resumed_from"].endswith("checkpoint-2")
    assert [event["step"] for event in of(resumed, "step")] == [3, 4]
    straight_losses = {event["step"]: event["loss"] for event in of(straight, "step")}
    for event in of(resumed, "step"):
        assert event["loss"] == pytest.approx(straight_losses[event["step"]], rel=1e-5)
    a = workspace / "runs" / "straight" / "checkpoints" / "checkpoint-4"
    b = workspace / "runs" / "resumed" / "checkpoints" / "checkpoint-4"
    weights_a, weights_b = load_file(a / "adapter_model.safetensors"), load_file(b / "adapter_model.safetensors")
    assert weights_a.keys() == weights_b.keys()
    for name in weights_a:
        torch.testing.assert_close(weights_a[name], weights_b[name])
    state_a = torch.load(a / "optimizer.pt", weights_only=True)["state"]
    state_b = torch.load(b / "optimizer.pt", weights_only=True)["state"]
    for index in state_a:
        torch.testing.assert_close(state_a[index]["exp_avg_sq"], state_b[index]["exp_avg_sq"])
        assert int(state_a[index]["step"]) == int(state_b[index]["step"]) == 4


def test_out_of_memory_ends_the_run_failed_and_resumable(workspace, tiny_llama_dir, monkeypatch):
    import torch

    from engine.train.trainer import VoicebenchTrainer

    original = VoicebenchTrainer.compute_loss
    calls = {"n": 0}

    def flaky(self, model, inputs, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return original(self, model, inputs, *args, **kwargs)

    monkeypatch.setattr(VoicebenchTrainer, "compute_loss", flaky)
    code, events = train(workspace, model=str(tiny_llama_dir), method="lora", max_steps=4, save_every=1, out="runs/oom")
    assert code == 1
    error, done = events[-2], events[-1]
    assert error["event"] == "error" and error["kind"] == "oom" and error["resumable"] is True
    assert "--batch-size" in error["advice"] and "--gradient-checkpointing" in error["advice"]
    assert done == {**done, "status": "failed", "resumable": True, "step": 1}
    assert done["last_checkpoint"].endswith("checkpoint-1")
    status = json.loads((workspace / "runs" / "oom" / "status.json").read_text())
    assert status["status"] == "failed" and status["resumable"] is True


def test_lora_targets_that_match_nothing_fail_the_run_with_the_names(workspace, tiny_llama_dir):
    code, events = train(workspace, model=str(tiny_llama_dir), method="lora", lora_targets=["Wqkv"],
                         max_steps=1, out="runs/bad")
    assert code == 1
    error = of(events, "error")[0]
    assert error["kind"] == "config" and "['Wqkv']" in error["message"] and "q_proj" in error["message"]
    assert events[-1]["status"] == "failed"


def test_canaries_run_on_the_base_model_and_at_each_checkpoint(workspace, tiny_masked_dir):
    pytest.importorskip("engine.sample.diffusion")
    (workspace / "data" / "canaries.toml").write_text(
        '[[canary]]\nid = "river-short"\nkind = "known-topic-short"\nprompt = "Write about the river."\n'
        "max_new_tokens = 8\n"
    )
    code, events = train(workspace, model=str(tiny_masked_dir), method="diffusion", lr=1e-2, max_steps=2,
                         save_every=2, canaries="all", canary_max_new_tokens=4, canary_steps=2, out="runs/c")
    assert code == 0, of(events, "log")
    canaries = of(events, "canary")
    assert [event["step"] for event in canaries] == [0, 2]
    assert all(event["canary_id"] == "river-short" and event["settings"]["gen_length"] == 4 for event in canaries)
    # Base canaries come before the first step; checkpoint canaries right after the checkpoint.
    kinds = [event["event"] for event in events]
    assert kinds[0] == "start" and kinds.index("canary") < kinds.index("step")
    assert kinds[kinds.index("checkpoint") + 1] == "canary"
    lines = (workspace / "runs" / "c" / "canaries.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == canaries


def test_llada_lora_diffusion_run_adapts_blocks_not_the_head(workspace, tiny_llada_dir):
    from safetensors.torch import load_file

    (workspace / "voicebench.toml").write_text(
        f'[models.tiny-llada]\npath = "{tiny_llada_dir}"\nfamily = "llada"\n')  # no trust_remote_code
    code, events = train(workspace, model="tiny-llada", method="lora", lr=1e-2, max_steps=2, out="runs/llada",
                         gradient_checkpointing=True)
    assert code == 0, of(events, "error")
    assert not [event for event in of(events, "log") if "checkpointing" in event["message"]]  # supported natively
    assert (events[0]["family"], events[0]["objective"]) == ("llada", "diffusion")
    adapter = load_file(workspace / "runs" / "llada" / "checkpoints" / "checkpoint-2" / "adapter_model.safetensors")
    adapted = {name.split(".lora_")[0] for name in adapter}
    assert any(name.endswith("blocks.0.ff_out") for name in adapted)
    assert not any(name.endswith("transformer.ff_out") for name in adapted)
