"""The memory estimate: exact parameter counts from configs, and predictions within 20% of the
measured peak of real training steps on tiny models (float32, CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.models.memory import (GIB, TrainPlan, estimate_training, llada_parameter_count, model_shape,
                                  sampling_bytes)

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py

# LLaDA-8B-Instruct's published config.json (GSAI-ML/LLaDA-8B-Instruct), the keys that size it.
# Its model.safetensors.index.json gives total_size 16,031,162,368 bytes in bf16: 8,015,581,184.
LLADA_8B_CONFIG = {
    "activation_type": "silu", "architectures": ["LLaDAModelLM"], "block_type": "llama", "d_model": 4096,
    "embedding_size": 126464, "eos_token_id": 126081, "include_bias": False, "include_qkv_bias": False,
    "layer_norm_type": "rms", "mask_token_id": 126336, "max_sequence_length": 4096, "mlp_hidden_size": 12288,
    "mlp_ratio": 4, "model_type": "llada", "n_heads": 32, "n_kv_heads": 32, "n_layers": 32,
    "pad_token_id": 126081, "rms_norm_eps": 1e-05, "rope": True, "rope_theta": 500000.0,
    "vocab_size": 126464, "weight_tying": False,
}
LLADA_8B_PARAMETERS = 16031162368 // 2


@pytest.fixture(scope="module")
def llada_8b_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("llada-8b-config")
    (folder / "config.json").write_text(json.dumps(LLADA_8B_CONFIG))
    return folder


@pytest.fixture(scope="module")
def deep_llama_dir(tmp_path_factory) -> Path:
    """Eight thin layers: activations, not weights, decide the peak (as at real lengths)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from tests import tiny_models

    folder = tmp_path_factory.mktemp("deep-llama")
    tiny_models.build_tokenizer(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=176, num_hidden_layers=8,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                         pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


def test_llada_8b_published_config_gives_its_exact_parameter_count(llada_8b_dir):
    assert llada_parameter_count(LLADA_8B_CONFIG)["parameters"] == LLADA_8B_PARAMETERS
    shape = model_shape(llada_8b_dir)
    assert shape.parameters == LLADA_8B_PARAMETERS and shape.vocab == 126464 and shape.layers == 32
    # Block linear layers: everything but wte, the ff_out head and the norms.
    assert shape.block_linear == LLADA_8B_PARAMETERS - 2 * 126464 * 4096 - 65 * 4096


# Published configs (meta-llama/Llama-3.1-8B-Instruct, openai-community/gpt2-xl), the keys that size them,
# and their parameter counts as the model cards state them.
LLAMA_31_8B_CONFIG = {
    "model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 4096, "intermediate_size": 14336,
    "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256,
    "max_position_embeddings": 131072, "rms_norm_eps": 1e-05, "rope_theta": 500000.0, "tie_word_embeddings": False,
    "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"},
}
GPT2_XL_CONFIG = {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "n_embd": 1600, "n_layer": 48,
                  "n_head": 25, "n_positions": 1024, "n_ctx": 1024, "vocab_size": 50257}


@pytest.mark.parametrize("config, parameters", [(LLAMA_31_8B_CONFIG, 8_030_261_248), (GPT2_XL_CONFIG, 1_557_611_200)])
def test_published_configs_give_published_counts_on_the_meta_device(tmp_path, config, parameters):
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert model_shape(tmp_path).parameters == parameters


def test_meta_device_counts_equal_the_loaded_model(tiny_llama_dir, tiny_gpt2_dir):
    from engine.models.loading import load_model

    for folder in (tiny_llama_dir, tiny_gpt2_dir):
        model = load_model(str(folder), device="cpu").model
        assert model_shape(folder).parameters == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("method, checkpointing", [("full", False), ("full", True), ("lora", False), ("lora", True),
                                                   ("qlora", False), ("qlora", True)])
def test_estimate_is_within_20_percent_of_a_measured_step(deep_llama_dir, method, checkpointing):
    from tests.memory_probe import measured_training_peak

    plan = TrainPlan(method=method, dtype="float32", max_length=384, batch_size=2, checkpointing=checkpointing,
                     cuda=False)
    predicted = estimate_training(model_shape(deep_llama_dir), plan).total_bytes
    measured = measured_training_peak(deep_llama_dir, method, batch=2, length=384, checkpointing=checkpointing)
    assert 0.8 <= predicted / measured <= 1.2, (predicted, measured)


def test_diffusion_estimate_is_within_20_percent_of_a_measured_step(tiny_masked_dir):
    from tests.memory_probe import measured_training_peak

    plan = TrainPlan(method="diffusion", dtype="float32", max_length=256, batch_size=2, cuda=False)
    predicted = estimate_training(model_shape(tiny_masked_dir), plan).total_bytes
    measured = measured_training_peak(tiny_masked_dir, "diffusion", batch=2, length=256, checkpointing=False)
    assert 0.8 <= predicted / measured <= 1.2, (predicted, measured)


def test_verdicts_and_the_cheapest_change_that_fits(llada_8b_dir):
    shape = model_shape(llada_8b_dir)
    plan = TrainPlan(method="lora", dtype="bfloat16", max_length=2048, batch_size=2)
    estimate = estimate_training(shape, plan)
    names = [name for name, _ in estimate.breakdown]
    assert names[:3] == ["weights", "quantisation constants", "trainable parameters"] and names[-1] == "CUDA overhead"
    assert sum(size for _, size in estimate.breakdown) == estimate.total_bytes
    fits = [card for card, ok in estimate.verdicts if ok]
    assert fits and all(card * GIB >= estimate.total_bytes for card in fits)
    assert estimate.smallest_card == fits[0]
    cheapest = estimate.advice[0]
    assert cheapest.change == "checkpointing on" and cheapest.total_bytes < estimate.total_bytes
    assert cheapest.fits_gb < estimate.smallest_card
    assert cheapest.text() == f"checkpointing on: {cheapest.total_bytes / GIB:.1f} GB, fits {cheapest.fits_gb} GB"
    # QLoRA stores the block weights in NF4 plus 0.127 bits of constants each and 1,092 bytes of
    # code tables per layer (7 per block).
    qlora = estimate_training(shape, TrainPlan(method="qlora", max_length=2048, batch_size=2))
    terms = dict(qlora.breakdown)
    assert terms["quantisation constants"] == int(shape.block_linear * (8 / 64 + 32 / (64 * 256)) / 8) + 32 * 7 * 1092
    assert terms["weights"] < dict(estimate.breakdown)["weights"] / 2


def test_sampling_needs_the_weights_and_a_canvas(llada_8b_dir):
    shape = model_shape(llada_8b_dir)
    need = sampling_bytes(shape, "bfloat16", 1024)
    assert LLADA_8B_PARAMETERS * 2 < need < LLADA_8B_PARAMETERS * 2 + 3 * GIB


def test_train_estimate_prints_the_breakdown_without_training(tmp_path, llada_8b_dir, capsys):
    from engine.cli import main

    (tmp_path / "voicebench.toml").write_text(
        f'[models.llada]\npath = "{llada_8b_dir}"\nfamily = "llada"\n\n[train]\nmax_length = 1024\n')
    code = main(["-w", str(tmp_path), "train", "--estimate", "--model", "llada", "--method", "diffusion",
                 "--batch-size", "2"])
    out = capsys.readouterr().out
    assert code == 0 and not (tmp_path / "runs").exists()
    assert "diffusion, bfloat16, max length 1024, batch 2" in out and "8,015,581,184 parameters" in out
    assert "logits" in out and "96 GB fits" in out and "cheapest change:" in out

    code = main(["-w", str(tmp_path), "train", "--estimate", "--model", str(tmp_path / "nowhere")])
    captured = capsys.readouterr()
    assert code == 2 and captured.err.count("\n") == 1 and "no such folder" in captured.err
