"""QLoRA through the real trainer (engine.train): 4-bit base weights, LoRA adapters only.

A tiny native LLaDA (d_model 64: bitsandbytes' CPU kernels quantise in 64-value blocks) trains
a few steps with the masked-diffusion objective, and a tiny Llama with the causal one, each
loaded in NF4 by `--method qlora` exactly as on a GPU box. The model the trainer built is caught
where run.py wraps it with LoRA, so the checks see what was trained, not a copy.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import pytest

pytest.importorskip("bitsandbytes")

from engine.train.run import run_training

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py

LLADA_TARGETS = {"q_proj", "k_proj", "v_proj", "attn_out", "ff_proj", "up_proj", "ff_out"}
LLAMA_TARGETS = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
RESPONSES = [
    "The river keeps its own counsel, and the town keeps the river's.",
    "I wrote this in the kitchen, with the window open.",
    "Every essay is an argument with the person I was last year.",
    "Notes on walking, bread, weather and small repairs.",
]


@pytest.fixture(scope="module")
def llada_64_dir(tmp_path_factory) -> Path:
    """A native LLaDA folder: LLaDA's tokenizer ids and 126,464-row vocabulary, 64 wide, 2 blocks."""
    from tests.tiny_models import build_llada_64

    return build_llada_64(tmp_path_factory.mktemp("llada-64"))


@pytest.fixture(scope="module")
def llama_64_dir(tmp_path_factory) -> Path:
    """A Llama-style folder 64 wide (at 32 wide, bitsandbytes' CPU inference repacking of the
    4-bit weights fails: it needs whole 64-value blocks per row)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from tests.tiny_models import build_tokenizer

    folder = tmp_path_factory.mktemp("llama-64")
    build_tokenizer(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                         bos_token_id=tokenizer.eos_token_id)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


@pytest.fixture()
def workspace(tmp_path) -> Path:
    (tmp_path / "data").mkdir()
    lines = [{"id": f"p{i}", "prompt": f"Write note {i}.", "response": text, "split": "train"}
             for i, text in enumerate(RESPONSES)]
    (tmp_path / "data" / "pairs.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return tmp_path


def four_bit_layers(model) -> dict[str, object]:
    """bitsandbytes' 4-bit layers by name (peft's LoRA wrapper around one is also called Linear4bit)."""
    from bitsandbytes.nn import Linear4bit

    return {name: module for name, module in model.named_modules() if isinstance(module, Linear4bit)}


def run_qlora(workspace: Path, monkeypatch, folder: Path, family: str, **settings):
    """Train with --method qlora; returns (events without progress phases, the trained model,
    the adapted module names, its state dict before training)."""
    from engine.train import lora

    (workspace / "voicebench.toml").write_text(f'[models.tiny]\npath = "{folder}"\nfamily = "{family}"\n')
    caught = {}
    wrap = lora.apply_lora

    def catch(model, **kwargs):
        wrapped, resolved = wrap(model, **kwargs)
        caught["model"], caught["resolved"] = wrapped, resolved
        caught["before"] = {name: tensor.detach().clone() for name, tensor in wrapped.state_dict().items()}
        return wrapped, resolved

    monkeypatch.setattr(lora, "apply_lora", catch)
    out = io.StringIO()
    run = {"model": "tiny", "method": "qlora", "lr": 2e-2, "max_steps": 2, "batch_size": 4, "canaries": "none",
           "eval_every": 0, "save_every": 0, "out": "runs/q", **settings}
    code = run_training(workspace, run, json_mode=True, stdout=out)
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    events = [event for event in events if event["event"] != "phase"]
    assert code == 0, [event for event in events if event["event"] in ("error", "log")]
    return events, caught["model"], caught["resolved"], caught["before"]


CASES = {
    # LLaDA: masked diffusion with checkpointing on (how LLaDA-8B QLoRA fits a 16 GB card at 2,048 tokens).
    "llada": ("llada_64_dir", "llada", "diffusion", LLADA_TARGETS, "model.transformer.ff_out", True),
    "llama": ("llama_64_dir", "causal", "causal", LLAMA_TARGETS, "lm_head", False),
}


@pytest.mark.parametrize("case", list(CASES))
def test_qlora_trains_only_adapters_on_4bit_weights_through_the_trainer(case, workspace, monkeypatch, request):
    import torch
    from bitsandbytes.nn import Params4bit
    from safetensors.torch import load_file

    fixture, family, objective, targets, head_name, checkpointing = CASES[case]
    folder = request.getfixturevalue(fixture)
    events, model, resolved, before = run_qlora(workspace, monkeypatch, folder, family,
                                                gradient_checkpointing=checkpointing)
    start, done = events[0], events[-1]
    assert (start["family"], start["objective"], start["method"]) == (family, objective, "qlora")
    assert done["event"] == "done" and done["status"] == "done" and done["step"] == 2
    losses = [event["loss"] for event in events if event["event"] == "step"]
    assert len(losses) == 2 and all(math.isfinite(loss) and loss > 0 for loss in losses)

    # Every block projection is NF4 under its adapter; the head stays a full-precision Linear, unadapted.
    quantised = four_bit_layers(model)
    adapted = {name.removesuffix(".base_layer") for name in quantised}
    assert adapted == {f"base_model.model.{name}" for name in resolved}
    assert {name.rsplit(".", 1)[-1] for name in adapted} == targets
    assert all(isinstance(layer.weight, Params4bit)
               and layer.weight.dtype == torch.uint8 and layer.weight.quant_state.quant_type == "nf4"
               for layer in quantised.values())
    head = model.get_output_embeddings()
    assert type(head) is torch.nn.Linear and not any(name.endswith(head_name) for name in resolved)
    assert model.base_model.model.is_activation_checkpointing is checkpointing

    # Only the adapters train: they are the trainable parameters and the only tensors that moved.
    trainable = {name for name, parameter in model.named_parameters() if parameter.requires_grad}
    assert trainable and all(".lora_A." in name or ".lora_B." in name for name in trainable)
    assert start["trainable_parameters"] == sum(p.numel() for p in model.parameters() if p.requires_grad)
    after = model.state_dict()
    moved = {name for name, tensor in before.items() if not torch.equal(tensor, after[name])}
    assert moved and moved <= {name for name in after if ".lora_" in name}
    assert any(".lora_B." in name for name in moved)  # B starts at zero: the adapter really learned
    assert all(torch.equal(before[f"{name}.weight"], after[f"{name}.weight"]) for name in
               (f"{layer}.base_layer" for layer in adapted))  # packed NF4 bytes untouched

    # The saved adapter loads back onto a fresh 4-bit base and answers as the trained model does.
    from engine.models.loading import load_entry
    from engine.workspace import ModelEntry

    checkpoint = workspace / "runs" / "q" / "checkpoints" / "checkpoint-2"
    saved = load_file(checkpoint / "adapter_model.safetensors")
    assert saved and all(".lora_" in name for name in saved)
    reloaded = load_entry(ModelEntry("tiny", str(folder), family=family, load_in_4bit=True,
                                     adapter=str(checkpoint)), device="cpu").model
    assert four_bit_layers(reloaded).keys() == quantised.keys()
    reloaded_state = reloaded.state_dict()
    for name in trainable:
        assert torch.equal(reloaded_state[name], after[name]), name
    input_ids = torch.tensor([[5, 17, 42, 9, 3, 28, 11, 60]])
    model.eval()
    with torch.no_grad():
        trained_logits = model(input_ids=input_ids).logits
        reloaded_logits = reloaded(input_ids=input_ids).logits
    assert torch.isfinite(trained_logits).all()
    torch.testing.assert_close(reloaded_logits, trained_logits)


def test_an_evaluation_on_cpu_leaves_4bit_layers_trainable(llama_64_dir):
    """bitsandbytes repacks 4-bit weights for its CPU inference kernel at the first no-grad
    eval forward (an evaluation, a canary) and that kernel has no backward: gradients after it
    must still flow through the 4-bit layers, equal to a model that never evaluated."""
    import warnings

    import torch

    from engine.models.loading import load_model

    input_ids = torch.tensor([[5, 17, 42, 9, 3, 28, 11, 60]])

    def embedding_gradient(evaluate_first: bool) -> torch.Tensor:
        model = load_model(str(llama_64_dir), device="cpu", dtype="float32", load_in_4bit=True).model
        if evaluate_first:
            with torch.no_grad():
                model.eval()(input_ids=input_ids)
        embedding = model.get_input_embeddings().weight
        embedding.requires_grad_(True)
        model.train()(input_ids=input_ids, labels=input_ids).loss.backward()
        return embedding.grad

    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # "an autograd kernel was not registered … silently incorrect"
        after_evaluation = embedding_gradient(True)
    torch.testing.assert_close(after_evaluation, embedding_gradient(False))
