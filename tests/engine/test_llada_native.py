"""Native LLaDA (engine/models/llada): the published code's outputs reproduced, and what it adds.

The evidence in tests/fixtures/llada_published/ was written by LLaDA's published modeling code
(see the README there): its weights, the logits it gave and the tokens the sampler drew from it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from engine.models.llada import register
from engine.models.llada.configuration import LLaDAConfig
from engine.models.llada.modeling import LLaDAModelLM
from engine.sample.diffusion import SamplerSettings, sample_ids

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "llada_published"
LAYOUTS = ("llada8b_layout", "gqa_tied_bias")
SAMPLER_RUNS = ("low_confidence", "random", "cfg", "fast")
TOLERANCE = 1e-5


@pytest.fixture(scope="module", autouse=True)
def native_classes():
    register()


def published_model(layout: str, **kwargs) -> LLaDAModelLM:
    from transformers import AutoModel

    return AutoModel.from_pretrained(FIXTURES / layout, **kwargs).eval()


def expected_logits(layout: str) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(FIXTURES / layout / "expected_logits.safetensors")


def logits_of(model, input_ids: torch.Tensor, **kwargs) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=input_ids, **kwargs).logits.float()


def final_tokens(generator) -> list[int]:
    while True:
        try:
            next(generator)
        except StopIteration as stop:
            return list(stop.value.token_ids)


# Equivalence with the published implementation --------------------------------------------
@pytest.mark.parametrize("layout", LAYOUTS)
def test_published_checkpoint_loads_natively_and_gives_the_published_logits(layout):
    from transformers import AutoModelForMaskedLM

    model = published_model(layout)
    assert type(model) is LLaDAModelLM  # config.json's auto_map is not followed
    assert type(AutoModelForMaskedLM.from_pretrained(FIXTURES / layout)) is LLaDAModelLM
    expected = expected_logits(layout)
    logits = logits_of(model, expected["input_ids"])
    assert logits.shape == expected["logits"].shape
    assert (logits - expected["logits"]).abs().max().item() <= TOLERANCE


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("run", SAMPLER_RUNS)
def test_sampler_draws_the_published_model_s_tokens_at_temperature_zero(layout, run):
    recorded = json.loads((FIXTURES / layout / "expected_tokens.json").read_text())
    case = recorded["runs"][run]
    settings = SamplerSettings(temperature=0.0, **case["settings"])
    tokens = final_tokens(sample_ids(published_model(layout), recorded["prompt_ids"], recorded["mask_id"], settings,
                                     family="llada", eos_id=recorded["eos_id"]))
    assert tokens == case["token_ids"]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_config_keeps_every_published_key(layout, tmp_path):
    from transformers import AutoConfig

    published = json.loads((FIXTURES / layout / "config.json").read_text())
    config = AutoConfig.from_pretrained(FIXTURES / layout)
    assert type(config) is LLaDAConfig
    config.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    for key, value in published.items():
        if key != "transformers_version":
            assert saved[key] == value, key
    # The generic names transformers and peft read are LLaDA's own keys.
    assert (config.hidden_size, config.num_hidden_layers, config.tie_word_embeddings) == (
        published["d_model"], published["n_layers"], published["weight_tying"])


def test_parameter_names_are_the_published_names():
    from safetensors import safe_open

    with safe_open(FIXTURES / "llada8b_layout" / "model.safetensors", "pt") as published:
        published_names = set(published.keys())
    model = published_model("llada8b_layout")
    assert set(model.state_dict()) == published_names
    assert {"model.transformer.wte.weight", "model.transformer.ln_f.weight", "model.transformer.ff_out.weight",
            "model.transformer.blocks.1.up_proj.weight"} <= published_names


def test_tied_head_is_the_embedding_and_is_stored_once(tmp_path):
    from safetensors import safe_open

    model = published_model("gqa_tied_bias")
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight
    model.save_pretrained(tmp_path)
    with safe_open(tmp_path / "model.safetensors", "pt") as saved:
        assert "model.transformer.ff_out.weight" not in set(saved.keys())


def test_sharded_checkpoint_loads_the_same(tmp_path):
    model = published_model("llada8b_layout")
    model.save_pretrained(tmp_path, max_shard_size="40KB")
    index = json.loads((tmp_path / "model.safetensors.index.json").read_text())
    shards = set(index["weight_map"].values())
    assert len(shards) > 1 and not (tmp_path / "model.safetensors").exists()
    assert set(index["weight_map"]) == set(model.state_dict())
    expected = expected_logits("llada8b_layout")
    reloaded = published_model_from(tmp_path)
    assert (logits_of(reloaded, expected["input_ids"]) - expected["logits"]).abs().max().item() <= TOLERANCE


def published_model_from(folder: Path) -> LLaDAModelLM:
    from transformers import AutoModel

    return AutoModel.from_pretrained(folder).eval()


def test_llada_8b_config_has_8b_parameters_on_the_meta_device():
    with torch.device("meta"):
        model = LLaDAModelLM(LLaDAConfig())  # the defaults are LLaDA-8B-Instruct's config
    # 32 × (4·4096² + 3·4096·12288) + 2·126464·4096 (wte, head) + 65·4096 (norms)
    assert sum(parameter.numel() for parameter in model.parameters()) == 8_015_581_184


def test_a_config_the_native_model_cannot_run_names_the_key():
    with pytest.raises(ValueError, match="block_type 'sequential'.*Fix those keys in config.json"):
        LLaDAModelLM(LLaDAConfig(d_model=16, n_heads=2, n_layers=1, mlp_hidden_size=32, vocab_size=64,
                                 embedding_size=64, block_type="sequential"))


# What the published code lacks ---------------------------------------------------------------
def test_padding_keys_are_not_attended():
    model = published_model("llada8b_layout")
    input_ids = expected_logits("llada8b_layout")["input_ids"][:1, :8]
    padded = torch.cat([input_ids, torch.full((1, 4), 248)], dim=1)
    mask = torch.tensor([[1] * 8 + [0] * 4])
    alone = logits_of(model, input_ids)
    assert torch.allclose(logits_of(model, padded, attention_mask=mask)[:, :8], alone, atol=TOLERANCE)
    assert not torch.allclose(logits_of(model, padded)[:, :8], alone, atol=TOLERANCE)  # the mask mattered


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_loads_and_stays_near_float32(dtype):
    model = published_model("llada8b_layout", dtype=dtype)
    assert {parameter.dtype for parameter in model.parameters()} == {dtype}
    expected = expected_logits("llada8b_layout")
    logits = logits_of(model, expected["input_ids"])
    scale = expected["logits"].abs().max().item()
    assert (logits - expected["logits"]).abs().max().item() < 0.05 * scale


def test_4bit_loading_quantises_the_blocks_and_keeps_the_head(tmp_path):
    pytest.importorskip("bitsandbytes")
    from transformers import AutoModel, BitsAndBytesConfig

    # bitsandbytes' CPU kernels want rows of at least one 64-value quantisation block.
    torch.manual_seed(0)
    original = LLaDAModelLM(LLaDAConfig(d_model=64, n_heads=4, n_kv_heads=4, n_layers=2, mlp_hidden_size=128,
                                        vocab_size=250, embedding_size=256, max_sequence_length=64)).eval()
    original.save_pretrained(tmp_path)
    quantisation = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                      bnb_4bit_compute_dtype=torch.float32, bnb_4bit_use_double_quant=True)
    model = AutoModel.from_pretrained(tmp_path, quantization_config=quantisation).eval()
    kinds = {name: type(module).__name__ for name, module in model.named_modules()}
    assert kinds["model.transformer.blocks.0.q_proj"] == kinds["model.transformer.blocks.1.ff_out"] == "Linear4bit"
    assert kinds["model.transformer.ff_out"] == "Linear"  # the head stays in full precision
    input_ids = expected_logits("llada8b_layout")["input_ids"]
    logits = logits_of(model, input_ids)
    full = logits_of(original, input_ids)
    assert torch.isfinite(logits).all()
    agreement = torch.corrcoef(torch.stack([logits.flatten(), full.flatten()]))[0, 1]
    assert agreement > 0.9  # NF4 rounding moves the logits a little, not their shape


def test_lora_adapts_block_projections_by_name_and_never_the_head():
    from engine.train.lora import apply_lora, resolve_targets

    model = published_model("llada8b_layout")
    resolved = resolve_targets(model, None, "llada")
    assert "model.transformer.ff_out" not in resolved
    assert sorted({name.rsplit(".", 1)[-1] for name in resolved}) == sorted(
        ["q_proj", "k_proj", "v_proj", "attn_out", "ff_proj", "up_proj", "ff_out"])
    assert len(resolved) == 7 * 2
    assert resolve_targets(model, ["ff_out"], "llada") == [f"model.transformer.blocks.{i}.ff_out" for i in range(2)]
    wrapped, _ = apply_lora(model, family="llada", rank=2, alpha=4, dropout=0.0, targets=None)
    input_ids = expected_logits("llada8b_layout")["input_ids"]
    wrapped.train()
    wrapped(input_ids=input_ids, labels=input_ids).loss.backward()
    with_grads = {name for name, parameter in wrapped.named_parameters() if parameter.grad is not None}
    assert with_grads and all(".lora_" in name for name in with_grads)
    assert not any("transformer.ff_out.lora" in name for name in with_grads)


def test_gradient_checkpointing_keeps_gradients_and_lowers_peak_memory():
    from tests.benchmarks.bench_llada_memory import deep_tiny_llada, training_step_peak_bytes

    model = deep_tiny_llada(layers=6, d_model=32, tokens=256)
    assert model.supports_gradient_checkpointing
    input_ids = torch.randint(0, 256, (1, 256), generator=torch.Generator().manual_seed(0))
    plain = training_step_peak_bytes(model, input_ids, checkpointing=False)
    plain_grads = {name: parameter.grad.clone() for name, parameter in model.named_parameters()}
    checkpointed = training_step_peak_bytes(model, input_ids, checkpointing=True)
    assert model.is_activation_checkpointing
    for name, parameter in model.named_parameters():
        assert torch.allclose(parameter.grad, plain_grads[name], atol=1e-6), name
    assert checkpointed < 0.5 * plain  # measured ~0.12 at 16 blocks and 1,024 tokens


def test_the_head_is_never_a_target_even_under_a_numbered_path():
    from engine.train.lora import resolve_targets

    class Stacked(torch.nn.Module):  # puts the whole model, head included, under "stack.0."
        def __init__(self, inner: LLaDAModelLM):
            super().__init__()
            self.config, self.stack = inner.config, torch.nn.ModuleList([inner])

        def get_output_embeddings(self):
            return self.stack[0].get_output_embeddings()

    resolved = resolve_targets(Stacked(published_model("llada8b_layout")), ["ff_out"], "llada")
    assert resolved == [f"stack.0.model.transformer.blocks.{i}.ff_out" for i in range(2)]
