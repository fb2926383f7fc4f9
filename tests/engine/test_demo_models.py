"""Tests for the committed demo models (data/models/) and the builder that makes them."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest

from engine.models import demo as demo_models
from engine.models.demo_tokenizer import CHAT_ROLE_TOKENS, EOT_TOKEN, EOS_TOKEN, MASK_TOKEN, PAD_TOKEN
from engine.models.loading import FAMILY_CAUSAL, FAMILY_MASKED, load_model

MODELS = {demo_models.DIFFUSION_NAME: FAMILY_MASKED, demo_models.AR_NAME: FAMILY_CAUSAL}
# The model cards promise "a few million parameters" each and ~30 MB together.
MIN_PARAMETERS, MAX_PARAMETERS = 1_000_000, 5_000_000


@pytest.fixture(scope="module")
def models_dir(repo_root: Path) -> Path:
    return repo_root / "data" / "models"


@pytest.mark.parametrize("name", sorted(MODELS))
def test_committed_model_loads_with_its_family_and_size(models_dir, name):
    loaded = load_model(str(models_dir / name))
    assert loaded.family == MODELS[name]
    parameters = demo_models.parameter_count(loaded.model)
    assert MIN_PARAMETERS <= parameters <= MAX_PARAMETERS
    info = json.loads((models_dir / name / "build.json").read_text(encoding="utf-8"))
    assert info["parameters"] == parameters
    assert math.isfinite(info["final_loss"]) and info["final_loss"] < info["first_loss"]
    card = (models_dir / name / "README.md").read_text(encoding="utf-8")
    assert f"{parameters:,}" in card and info["repeat_command"] in card
    assert f"**{info['distinct_1']:.2f}**" in card


@pytest.mark.parametrize("name", sorted(MODELS))
def test_committed_tokenizer_has_special_tokens_and_chat_template(models_dir, name):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(models_dir / name)
    assert (tokenizer.mask_token, tokenizer.pad_token, tokenizer.eos_token) == (MASK_TOKEN, PAD_TOKEN, EOS_TOKEN)
    vocab = tokenizer.get_vocab()
    for token in (EOT_TOKEN, *CHAT_ROLE_TOKENS):
        assert token in vocab
    text = tokenizer.apply_chat_template([{"role": "user", "content": "the river"}], add_generation_prompt=True,
                                         tokenize=False)
    assert text == "<|user|>\nthe river<|end|>\n<|assistant|>\n"
    # Trained on the corpus: its common words (with their leading space, byte-level BPE) are one token.
    assert len(tokenizer(" the river", add_special_tokens=False)["input_ids"]) == 2


def test_both_models_share_one_tokenizer_and_fit_the_size_budget(models_dir):
    tokenizers = [(models_dir / name / "tokenizer.json").read_bytes() for name in sorted(MODELS)]
    assert tokenizers[0] == tokenizers[1]
    assert demo_models.folder_megabytes(models_dir) < demo_models.MAX_TOTAL_MB
    for name in MODELS:
        assert (models_dir / name / "model.safetensors").exists()


def test_lr_schedule_warms_up_holds_then_decays_to_the_floor():
    plan = demo_models.ModelPlan("m", "causal", 8, 1, 1, 16, lr=1.0, minutes=0, warmup_steps=10, min_lr_share=0.1)
    assert demo_models.lr_at(0, 100, 50, plan) == pytest.approx(0.1)
    assert demo_models.lr_at(9, 100, 50, plan) == pytest.approx(1.0)
    assert demo_models.lr_at(49, 100, 50, plan) == pytest.approx(1.0)
    assert demo_models.lr_at(75, 100, 50, plan) == pytest.approx(0.55)  # halfway down the cosine
    assert demo_models.lr_at(100, 100, 50, plan) == pytest.approx(0.1)


def test_fit_prompt_keeps_the_instruction_and_the_end_of_the_context(models_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(models_dir / demo_models.AR_NAME)
    context = " ".join(f"word{index}" for index in range(300))
    prompt = f"Write the next paragraph.\n\n{context}"
    fitted = demo_models.fit_prompt(tokenizer, prompt, 64)
    assert fitted.startswith("Write the next paragraph.\n\n…") and fitted.endswith("word299")
    ids = tokenizer.apply_chat_template([{"role": "user", "content": fitted}], add_generation_prompt=True,
                                        return_dict=False)
    assert len(ids) <= 64
    assert demo_models.fit_prompt(tokenizer, "Write a short note.", 64) == "Write a short note."


TINY_PIECES = {
    "essays/2024-01-01-the-ferry.md": "# The Ferry\n\n*On crossing*\n\nJan 1, 2024\n\n" + (
        "The ferry goes across the river twice an hour. I mend the rope on the slipway and the river keeps "
        "its own counsel. Bread, weather and letters. ") * 12,
    "notes/2024-02-02-frost.md": "# Frost\n\nHard frost on the slipway, white to the waterline. The river steams.\n",
    "notes/2024-03-03-kettle.md": "# The Kettle\n\nI mended the kettle lid with a plain brass screw. Stubborn thing.\n",
}


def _tiny_config(root: Path, out: Path, **plan_overrides) -> demo_models.BuildConfig:
    for relative, text in TINY_PIECES.items():
        (root / "data" / "sources" / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / "data" / "sources" / relative).write_text(text, encoding="utf-8")
    base = demo_models.default_config(out, root)
    return dataclasses.replace(
        base, vocab_size=320, chunk_len=32, pair_len=64, tokens_per_batch=128, log_every=2, eval_tokens=8,
        diffusion=dataclasses.replace(base.diffusion, hidden_size=32, num_layers=1, num_heads=2,
                                      intermediate_size=64, warmup_steps=2, **plan_overrides),
        ar=dataclasses.replace(base.ar, hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64,
                               warmup_steps=2, **plan_overrides),
    )


def _weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def test_builder_runs_end_to_end_and_its_recorded_command_reproduces_the_weights(tmp_path):
    import torch

    # A time budget: the builder picks the step count itself and records it.
    config = _tiny_config(tmp_path, tmp_path / "timed", minutes=0.01, steps=None)
    events = []
    results = demo_models._drain(_tee(demo_models.build_demo_models(config), events))
    assert [event.model for event in events if isinstance(event, demo_models.BuildDone)] == list(MODELS)
    for name, family in MODELS.items():
        folder = tmp_path / "timed" / name
        loaded = load_model(str(folder))
        assert loaded.family == family
        info = json.loads((folder / "build.json").read_text(encoding="utf-8"))
        assert info == json.loads(json.dumps(results[name]))
        assert 1 <= info["decay_from"] <= info["steps"]
        assert len(info["sample_ids"]) == 8 and 0 < info["distinct_1"] <= 1
        assert "--steps-diffusion" in info["repeat_command"]
        assert {"model.safetensors", "config.json", "tokenizer.json", "README.md", "build.json"} <= {
            path.name for path in folder.iterdir()
        }
    assert not [path for path in (tmp_path / "timed").iterdir() if path.name.startswith(".")], "no staging left"

    # The recorded schedule, replayed as fixed step counts, gives bit-identical weights.
    args = demo_models.parse_args(results[demo_models.DIFFUSION_NAME]["repeat_command"].split()[3:])
    replay = _tiny_config(tmp_path, tmp_path / "replay")
    replay = dataclasses.replace(
        replay,
        diffusion=dataclasses.replace(replay.diffusion, steps=args.steps_diffusion, decay_from=args.decay_from_diffusion),
        ar=dataclasses.replace(replay.ar, steps=args.steps_ar, decay_from=args.decay_from_ar),
    )
    demo_models._drain(demo_models.build_demo_models(replay))
    for name in MODELS:
        first, second = _weights(tmp_path / "timed" / name), _weights(tmp_path / "replay" / name)
        assert first.keys() == second.keys()
        assert all(torch.equal(first[key], second[key]) for key in first)


def _tee(generator, events):
    """Pass a generator through, keeping what it yields, and return its return value."""
    while True:
        try:
            event = next(generator)
        except StopIteration as stop:
            return stop.value
        events.append(event)
        yield event
