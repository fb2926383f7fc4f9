"""QLoRA's memory estimate against loaded 4-bit models and measured training steps on CPU.

What a CPU measurement says about a GPU here: bitsandbytes' CPU backend stores the same NF4
bytes and the same quantisation constants a GPU does, and its training matmul does what the
GPU's does (dequantise the one layer's weight to the compute dtype, multiply, save only the
packed weight for backward), so the tensors autograd keeps are the same. The probe
(tests/memory_probe.py) counts tensors, not the allocator, so CUDA's caching slack and context
are not in it (the estimate adds them as a fixed overhead on a GPU), nor is the transient
dequantised weight inside the forward operator (one layer's at a time, on either device).
The GPU configuration is checked too: compute dtype bfloat16, no autocast (as training runs
QLoRA), which keeps the residual stream in float32.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("bitsandbytes")

from engine.models.memory import TrainPlan, estimate_training, model_shape, training_phases
from tests.engine.test_memory import deep_llama_dir  # noqa: F401  (a fixture: 8 layers, 64 wide)
from tests.memory_probe import measured_training_peak, quantisation_tensors

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def llada_dir(tmp_path_factory) -> Path:
    """A native LLaDA with LLaDA's tokenizer ids and 126,464-entry vocabulary, 64 wide, 4 blocks."""
    from tests.tiny_models import build_llada_64

    return build_llada_64(tmp_path_factory.mktemp("llada-qlora-memory"), n_layers=4, include_bias=True)


def stored_bytes(tensors) -> int:
    """Bytes of the distinct storages behind `tensors` (a shared table counts once)."""
    storages = {tensor.untyped_storage().data_ptr(): tensor.untyped_storage().nbytes() for tensor in tensors}
    return sum(storages.values())


@pytest.mark.parametrize("fixture", ["deep_llama_dir", "llada_dir", "tiny_gpt2_dir", "tiny_masked_dir"])
def test_weights_and_constants_are_what_a_4bit_model_holds(fixture, request):
    """The estimate's weights line equals the bytes of a loaded, prepared 4-bit model exactly
    (NF4 block weights, float32 embeddings, head, norms and biases); its constants line is within
    1% of the quant_state tensors (per-layer rounding of the 256-block groups is not modelled)."""
    from peft import prepare_model_for_kbit_training

    from engine.models.loading import load_model

    folder = request.getfixturevalue(fixture)
    model = load_model(str(folder), device="cpu", dtype="bfloat16", load_in_4bit=True).model
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    terms = dict(training_phases(model_shape(folder), TrainPlan(method="qlora", cuda=False))["loss"])
    assert stored_bytes(model.parameters()) == terms["weights"]
    constants = stored_bytes(quantisation_tensors(model))
    assert abs(terms["quantisation constants"] - constants) <= 0.01 * constants, (terms, constants)


@pytest.mark.parametrize("checkpointing", [False, True])
def test_bfloat16_qlora_estimate_is_within_20_percent_of_a_measured_step(deep_llama_dir, checkpointing):  # noqa: F811
    """A GPU's QLoRA: NF4 weights computing in bfloat16. Before the estimate counted QLoRA's
    float32 stream, it predicted 0.62 of this step's peak without checkpointing."""
    plan = TrainPlan(method="qlora", dtype="bfloat16", max_length=384, batch_size=2, checkpointing=checkpointing,
                     cuda=False)
    predicted = estimate_training(model_shape(deep_llama_dir), plan).total_bytes
    measured = measured_training_peak(deep_llama_dir, "qlora", batch=2, length=384, checkpointing=checkpointing,
                                      dtype="bfloat16")
    assert 0.8 <= predicted / measured <= 1.2, (predicted, measured)


def test_llada_qlora_diffusion_estimate_is_within_20_percent_of_a_measured_step(llada_dir):
    """LLaDA under QLoRA with its masked-diffusion loss: the 126k-entry logits dominate."""
    plan = TrainPlan(method="qlora", dtype="bfloat16", max_length=64, batch_size=2, checkpointing=True, cuda=False)
    estimate = estimate_training(model_shape(llada_dir), plan)
    measured = measured_training_peak(llada_dir, "qlora", batch=2, length=64, checkpointing=True, dtype="bfloat16")
    assert 0.8 <= estimate.total_bytes / measured <= 1.2, (estimate.total_bytes, measured)
    assert dict(estimate.breakdown)["logits"] > estimate.total_bytes / 2


@pytest.mark.parametrize("options", [{}, {"include_bias": True}, {"include_qkv_bias": True, "weight_tying": True},
                                     {"include_bias": True, "bias_for_layer_norm": False},
                                     {"layer_norm_with_affine": False, "n_kv_heads": 2}])
def test_llada_config_counts_equal_the_built_model(options):
    """The config-only count (what the weights line is made of) matches the model for every bias and norm key."""
    from engine.models.llada.modeling import LLaDAModelLM
    from engine.models.memory import llada_parameter_count
    from tests.tiny_models import tiny_llada_config

    config = tiny_llada_config(vocab_size=300, embedding_size=320, **options)
    model = LLaDAModelLM(config)
    assert llada_parameter_count(config.to_dict())["parameters"] == sum(p.numel() for p in model.parameters())
