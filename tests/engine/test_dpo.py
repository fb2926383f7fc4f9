"""`--method dpo` on the demo model: preference accuracy on the train pairs rises in 20 steps;
events, checkpoints and canaries as in any run; diffusion models are refused."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest

from engine.train.run import run_training
from tests.engine.versions_data import demo_workspace, run_cli

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py

REPO = Path(__file__).resolve().parents[2]
TRAIN_ROWS = 8


def response_logprob(model, tokenizer, prompt: str, response: str) -> float:
    """Sum of log p(response tokens | prompt) with the chat formatting SFT uses."""
    import torch

    from engine.train.data import encode_pair

    ids, prompt_length = encode_pair(tokenizer, prompt, response, "chat")
    tensor = torch.tensor([ids])
    with torch.no_grad():
        logits = model(tensor).logits[0, :-1].float()
    logprobs = torch.log_softmax(logits, dim=-1).gather(1, tensor[0, 1:, None])[:, 0]
    return float(logprobs[prompt_length - 1:].sum())


def preference_accuracy(model, base, tokenizer, rows) -> float:
    """Share of rows whose DPO implicit reward prefers chosen: the policy raised chosen's
    log-likelihood relative to the reference more than rejected's."""
    wins = 0
    for row in rows:
        margin = ((response_logprob(model, tokenizer, row["prompt"], row["chosen"])
                   - response_logprob(base, tokenizer, row["prompt"], row["chosen"]))
                  - (response_logprob(model, tokenizer, row["prompt"], row["rejected"])
                     - response_logprob(base, tokenizer, row["prompt"], row["rejected"])))
        wins += margin > 0
    return wins / len(rows)


@pytest.fixture(scope="module")
def demo_prefs(tmp_path_factory):
    """Self-play preferences from the demo workspace: the writer's response over demo-ar's attempt."""
    from engine.judge.prefs import self_play_preferences, write_preferences
    from engine.models.loading import load_model
    from engine.train.data import load_training_pairs

    root = demo_workspace(tmp_path_factory.mktemp("ws"))
    pairs, _ = load_training_pairs(root / "data" / "pairs.jsonl")
    short = sorted(pairs, key=lambda pair: len(pair.prompt) + len(pair.response))
    chosen = [pair for pair in short if pair.split == "train"][:TRAIN_ROWS] + \
             [pair for pair in short if pair.split == "val"][:2]
    loaded = load_model(str(root / "data" / "models" / "demo-ar"), family="causal", device="cpu")
    stream = self_play_preferences(loaded, chosen, max_new_tokens=24)
    while True:
        try:
            next(stream)
        except StopIteration as stop:
            rows = stop.value
            break
    write_preferences(rows, root / "data" / "prefs.jsonl")
    return root, rows, loaded


def test_twenty_dpo_steps_raise_preference_accuracy_on_the_train_pairs(demo_prefs):
    from peft import PeftModel

    from engine.judge import store

    root, rows, base = demo_prefs
    out = io.StringIO()
    code = run_training(root, {"method": "dpo", "model": "demo-ar", "max_steps": 20, "batch_size": 2,
                               "max_length": 128, "lr": 5e-3, "save_every": 20, "eval_every": 10,
                               "canaries": "river-short", "canary_max_new_tokens": 6, "out": "runs/dpo"},
                        json_mode=True, stdout=out)
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert code == 0, events[-3:]
    assert events[0]["event"] == "start" and events[0]["objective"] == "dpo" and events[-1]["status"] == "done"
    assert [event["step"] for event in events if event["event"] == "step"] == list(range(1, 21))
    curves = [event for event in events if event["event"] == "preference"]
    train_curve = [event for event in curves if event["split"] == "train"]
    assert len(train_curve) == 20 and [event["step"] for event in curves if event["split"] == "val"] == [10, 20]
    assert train_curve[0]["reward_margin"] == pytest.approx(0.0, abs=1e-4)  # policy = reference at the start
    assert train_curve[-1]["reward_margin"] > 0 and train_curve[-1]["preference_accuracy"] >= 0.5

    checkpoint = root / "runs" / "dpo" / "checkpoints" / "checkpoint-20"
    assert json.loads((checkpoint / "adapter_config.json").read_text())["base_model_name_or_path"] == "demo-ar"
    train_rows = [row for row in rows if row["split"] == "train"]
    policy = PeftModel.from_pretrained(base.model, str(checkpoint)).eval()
    reference = _Reference(policy)
    before = preference_accuracy(reference, reference, base.tokenizer, train_rows)  # DPO starts at the reference
    after = preference_accuracy(policy, reference, base.tokenizer, train_rows)
    assert before == 0.0 and after >= 0.75, (before, after)

    db = store.open_store(root / "judgments.db")
    labels = {row["label"] for row in db.query("select label from generations where run_id = 'dpo'")}
    assert labels == {"demo-ar", "dpo/checkpoint-20"}  # canaries of the base and of the checkpoint
    metric_names = {row["name"] for row in db.query("select distinct name from run_metrics where run_id = 'dpo'")}
    assert {"train_reward_margin", "train_preference_accuracy", "val_preference_accuracy"} <= metric_names


class _Reference:
    """The reference model: the same PeftModel with its adapter switched off for each call."""

    def __init__(self, peft_model):
        self.peft_model = peft_model

    def __call__(self, *args, **kwargs):
        with self.peft_model.disable_adapter():
            return self.peft_model(*args, **kwargs)


def test_dpo_on_a_diffusion_model_is_refused_with_one_line(tmp_path, capsys):
    (tmp_path / "data" / "models" / "demo-diffusion").mkdir(parents=True)
    shutil.copy2(REPO / "data" / "models" / "demo-diffusion" / "config.json",
                 tmp_path / "data" / "models" / "demo-diffusion" / "config.json")
    result = run_cli(capsys, "-w", str(tmp_path), "train", "--method", "dpo", "--model", "demo-diffusion")
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "--method diffusion (SFT) only" in result.stderr
    assert not (tmp_path / "runs").exists()


def test_a_resumed_dpo_run_takes_the_same_steps_as_a_straight_one(demo_prefs):
    root, _, _ = demo_prefs
    settings = {"method": "dpo", "model": "demo-ar", "max_steps": 4, "batch_size": 2, "max_length": 64,
                "lr": 5e-3, "save_every": 2, "eval_every": 0, "canaries": "none", "out": "runs/dpo-straight"}

    def losses(events):
        return {event["step"]: event["loss"] for event in events if event["event"] == "step"}

    out = io.StringIO()
    assert run_training(root, settings, json_mode=True, stdout=out) == 0
    straight = losses(json.loads(line) for line in out.getvalue().splitlines())
    out = io.StringIO()
    assert run_training(root, {}, resume="runs/dpo-straight/checkpoints/checkpoint-2", json_mode=True, stdout=out) == 0
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert events[0]["start_step"] == 2
    resumed = losses(events)
    assert sorted(resumed) == [3, 4]
    assert resumed == pytest.approx({step: straight[step] for step in (3, 4)}, abs=1e-5)
