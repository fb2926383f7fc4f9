"""Will it fit? Predicted peak GPU memory of a training run, before launching it.

`model_shape(folder)` reads a model's config.json and counts its parameters without reading
weights: on the meta device (accelerate's init_empty_weights) for model types transformers
knows, and from the config's own
sizes for LLaDA (`llada_parameter_count`; LLaDA-8B's published config gives 8,015,581,184,
which is its safetensors index's total_size / 2 bytes). `estimate_training(shape, plan)`
returns a `MemoryEstimate`: a breakdown, a verdict per card (16/24/40/48/80/96 GB) and the
cheapest single change that fits a smaller card — plain frozen values a screen can render.
`estimate_for_config(workspace, train_config)` is the entry point for `train --estimate` and
the Train screen (`quick=True` there: no torch import for Llama-style, GPT-2 and LLaDA).

Sizes are in GiB, printed "GB" as card makers label them (an "80 GB" A100 holds 80 GiB).

Where each term comes from (P parameters, b batch, s max length, V vocabulary, h hidden,
kv key/value width, I MLP width, L layers, B bytes per element of the compute dtype):
- weights: P·B. QLoRA (Dettmers et al. 2023, "QLoRA", §3): the weights of every linear layer
  but the output head in NF4 (transformers' bitsandbytes loading), 0.5 bytes/param; the rest
  (embeddings, head, norms, biases) is cast to float32 by peft's `prepare_model_for_kbit_training`
  (it upcasts every non-4-bit parameter), so 4 bytes. Equal to the bytes a loaded tiny model
  holds (tests/engine/test_qlora_memory.py).
- quantisation constants (QLoRA §3, double quantisation): 8-bit absmax per 64 weights plus a
  float32 constant per 256 of those, 8/64 + 32/(64·256) = 0.127 bits per quantised weight;
  plus, per quantised layer, the tables bitsandbytes keeps in its QuantState: the 16-entry NF4
  code and the 256-entry code of the nested 8-bit absmax (float32) and the absmax offset,
  1,092 bytes (counted on loaded tiny models, bitsandbytes 0.50.2; 0.2 MB on an 8B model).
- QLoRA's activations and logits are float32 whatever the compute dtype: peft's
  `prepare_model_for_kbit_training` upcasts norms, embeddings and the head, a 4-bit layer
  returns its input's dtype, and training runs QLoRA without autocast (engine/train/run.py), so
  the residual stream stays float32; only the 4-bit matmul's input is cast to the compute dtype,
  and that copy is not saved for backward. Measured on CPU in bfloat16: the same peak as in float32.
- trainable parameters: LoRA adds r·(in + out) per adapted linear layer; peft keeps adapter
  weights in float32 even on a bf16 base (`autocast_adapter_dtype=True`), so 4 bytes each.
  Full and diffusion training train the weights themselves (counted once, as weights).
- gradients: one per trainable parameter in its dtype (PyTorch autograd's `.grad`).
- optimizer states: AdamW keeps exp_avg and exp_avg_sq per trainable parameter in the
  parameter's dtype (torch.optim.AdamW), 2 × the trainable bytes.
- activations: what autograd saves for backward, per token and layer, counted on tiny models
  with `torch.autograd.graph.saved_tensors_hooks` (eager PyTorch, SDPA attention):
  Llama-style blocks (Llama, Mistral, Qwen, LLaDA) 8h + 2kv + 4I elements, GPT-2 42h
  (GELU-tanh intermediates and dropout masks), ModernBERT 12h + 4I; plus 3h outside the
  blocks (embeddings, final norm). With checkpointing (non-reentrant, one checkpoint per
  block, as transformers places them) a block keeps only its input, h per token, and one
  block's activations are rebuilt at a time in backward. The same scheme as Korthikanti et
  al. 2022, "Reducing Activation Recomputation in Large Transformer Models", counted for
  these blocks instead of GPT-3's.
- logits: the loss works in float32 (transformers' ForCausalLMLoss and our diffusion loss
  both upcast). Causal: the logits (compute dtype), their float32 copy (bf16/fp16 only), the
  log-softmax cross_entropy saves and its gradient: B/4 + 2 (+1) float32 b·s·V buffers.
  Diffusion scores only masked positions (about half the response): B/4 + 1.25 (+0.25).
  Counted with the probe in tests/memory_probe.py (3.0 and 2.25 measured in float32).
  LLaDA's 126,464-entry vocabulary makes this 7.2 GB at b = 4, s = 1,024 in bf16.
- CUDA overhead: 1 GiB for the CUDA context, cuBLAS workspaces and caching-allocator slack
  (PyTorch's CUDA context alone is 0.3–0.8 GiB depending on the card and kernels loaded).
The peak is the larger of two moments: the loss (weights, optimizer states, every saved
activation or checkpoint, the logits' buffers; gradients only when accumulating) and backward
through the blocks (all gradients, checkpoints and one rebuilt block). Checked on CPU against
measured peaks of real steps (tests/engine/test_memory.py,
tests/engine/test_qlora_memory.py): within 20%.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

GIB = 1024**3
CARDS_GB = (16, 24, 40, 48, 80, 96)
CUDA_OVERHEAD = 1 * GIB
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
NF4_BYTES = 0.5
NF4_CONSTANT_BITS = 8 / 64 + 32 / (64 * 256)
NF4_TABLE_BYTES = 16 * 4 + 256 * 4 + 4  # per quantised layer: NF4 code, nested absmax code, offset
LINEAR_LAYERS_PER_BLOCK = {"llama-block": 7, "gpt2-block": 4, "modernbert-block": 4}  # what 4-bit loading quantises
LOSS_COPIES = 4  # logits, log-softmax, their gradients (float32)
FAMILY_LLAMA, FAMILY_GPT2, FAMILY_BERT = "llama-block", "gpt2-block", "modernbert-block"


class ShapeError(Exception):
    """A config.json that cannot be sized; the message names the file and what to do."""


@dataclasses.dataclass(frozen=True)
class ModelShape:
    """Sizes that decide memory, read from a config (no weights)."""

    model_type: str
    block: str  # which activation count applies: llama-block, gpt2-block, modernbert-block
    parameters: int
    block_linear: int  # weights of the linear layers 4-bit loading quantises (all but the head; biases stay)
    lora_width: int  # Σ (in + out) over the default LoRA targets: × rank = adapter parameters
    vocab: int
    hidden: int
    kv_width: int
    intermediate: int
    layers: int
    diffusion: bool = False  # a masked-diffusion model: trained with the diffusion loss whatever the method
    quantised_layers: int = 0  # linear layers 4-bit loading quantises (0: the block kind's count × layers)


@dataclasses.dataclass(frozen=True)
class TrainPlan:
    method: str = "lora"  # lora | qlora | full | diffusion
    dtype: str = "bfloat16"
    max_length: int = 512
    batch_size: int = 4
    grad_accum: int = 1
    checkpointing: bool = False
    lora_rank: int = 8
    cuda: bool = True  # add the CUDA overhead (False: CPU comparisons)


@dataclasses.dataclass(frozen=True)
class Advice:
    change: str  # "checkpointing on"
    total_bytes: int
    fits_gb: int | None  # smallest card it fits

    def text(self) -> str:
        where = f"fits {self.fits_gb} GB" if self.fits_gb else "fits no listed card"
        return f"{self.change}: {self.total_bytes / GIB:.1f} GB, {where}"


@dataclasses.dataclass(frozen=True)
class MemoryEstimate:
    plan: TrainPlan
    parameters: int
    moment: str  # when the peak happens: "loss" (start of backward) or "backward" (through the blocks)
    breakdown: tuple[tuple[str, int], ...]  # (term, bytes) alive at that moment, in the docstring's order
    total_bytes: int
    verdicts: tuple[tuple[int, bool], ...]  # (card GB, fits)
    advice: tuple[Advice, ...]  # single changes that fit a smaller card, cheapest first

    @property
    def smallest_card(self) -> int | None:
        return next((card for card, fits in self.verdicts if fits), None)

    def lines(self) -> list[str]:
        """Plain-text report (the CLI prints it; a screen may render the fields instead)."""
        plan = self.plan
        out = [f"{plan.method}, {plan.dtype}, max length {plan.max_length}, batch {plan.batch_size} × "
               f"accumulation {plan.grad_accum}, checkpointing {'on' if plan.checkpointing else 'off'}; "
               f"{self.parameters:,} parameters"]
        out += [f"  {name:<24}{size / GIB:8.2f} GB" for name, size in self.breakdown]
        moment = "at the loss" if self.moment == "loss" else "in backward through the blocks"
        out.append(f"  {'predicted peak':<24}{self.total_bytes / GIB:8.2f} GB ({moment})")
        out.append("  cards: " + "  ".join(f"{card} GB {'fits' if fits else 'no'}" for card, fits in self.verdicts))
        if self.advice:
            out.append(f"  cheapest change: {self.advice[0].text()}")
        return out


# Parameter counts -----------------------------------------------------------------------
def read_config(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / "config.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise ShapeError(f"{path}: missing; a model folder needs its config.json.") from error
    except json.JSONDecodeError as error:
        raise ShapeError(f"{path}: not valid JSON ({error}); download the model's config again.") from error


def llada_parameter_count(config: dict[str, Any]) -> dict[str, int]:
    """LLaDA's parameters from its config keys (the published checkpoints' layout):
    wte and (unless weight_tying) ff_out are embedding_size × d_model; each block has
    q_proj, attn_out (d × d), k_proj and v_proj (d × d·n_kv_heads/n_heads), ff_proj and
    up_proj (d × mlp_hidden_size), ff_out (mlp_hidden_size × d), attn_norm and ff_norm (d);
    ln_f (d). Biases as engine.models.llada.modeling builds them: every linear layer's and the
    head's with include_bias (q/k/v's also with include_qkv_bias), the norms' with
    bias_for_layer_norm (default: include_bias); no norm parameters without layer_norm_with_affine."""
    try:
        d, layers, heads = int(config["d_model"]), int(config["n_layers"]), int(config["n_heads"])
        kv_heads = int(config.get("n_kv_heads") or heads)
        mlp = int(config.get("mlp_hidden_size") or config.get("mlp_ratio", 4) * d)
        vocab = int(config.get("embedding_size") or config["vocab_size"])
    except KeyError as error:
        raise ShapeError(f"LLaDA config lacks {error}; expected the published keys (d_model, n_layers, …).") from error
    kv = d // heads * kv_heads
    linear = d * d * 2 + d * kv * 2 + d * mlp * 3
    include_bias, tied = bool(config.get("include_bias")), bool(config.get("weight_tying"))
    bias = (d + 2 * kv if include_bias or config.get("include_qkv_bias") else 0) + (
        2 * d + 2 * mlp if include_bias else 0)
    norm_bias = config.get("bias_for_layer_norm")
    norm = 0
    if config.get("layer_norm_with_affine", True):
        norm = d * (2 if (include_bias if norm_bias is None else norm_bias) else 1)
    embedding = vocab * d
    head = 0 if tied else vocab * d + (vocab if include_bias else 0)
    total = embedding + head + layers * (linear + bias + 2 * norm) + norm
    return {"parameters": total, "block_linear": layers * linear, "lora_width": layers * (
        (d + d) * 2 + (d + kv) * 2 + (d + mlp) * 3), "vocab": vocab, "hidden": d, "kv_width": kv,
        "intermediate": mlp, "layers": layers, "quantised_layers": layers * 7}


def model_shape(folder: str | Path, family: str | None = None) -> ModelShape:
    """The shape of the model in `folder` from its config.json alone."""
    config = read_config(folder)
    model_type = str(config.get("model_type", "")).lower()
    if family == "llada" or model_type == "llada":
        sizes = llada_parameter_count(config)
        return ModelShape(model_type="llada", block=FAMILY_LLAMA, diffusion=True, **sizes)
    return _meta_shape(Path(folder), config, model_type, family)


def _meta_shape(folder: Path, config_dict: dict[str, Any], model_type: str, family: str | None) -> ModelShape:
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForMaskedLM

    from engine.models.loading import DIFFUSION_FAMILIES, detect_family
    from engine.train.config import DEFAULT_LORA_TARGETS
    from engine.train.lora import _inside_block, _is_linear

    try:
        config = AutoConfig.for_model(model_type, **{k: v for k, v in config_dict.items() if k != "model_type"})
    except (ValueError, KeyError) as error:
        raise ShapeError(f"{folder / 'config.json'}: model_type {model_type!r} is unknown to transformers "
                         f"{__import__('transformers').__version__}; upgrade transformers or check the file.") from error
    family = family or detect_family(config)
    auto = AutoModelForMaskedLM if family in DIFFUSION_FAMILIES else AutoModelForCausalLM
    from accelerate import init_empty_weights

    with init_empty_weights():  # parameters on the meta device: shapes only, ~10x faster than torch.device("meta")
        model = auto.from_config(config)
    targets = set(DEFAULT_LORA_TARGETS.get(model_type, ()))
    head, embedding = model.get_output_embeddings(), model.get_input_embeddings()
    quantised = quantised_layers = lora_width = 0
    for name, module in model.named_modules():
        if not (name and _is_linear(module)) or module is head:
            continue
        # 4-bit loading quantises every linear layer's weight but the output head's (ModernBERT's
        # prediction head too); biases stay in full precision. LoRA adapts the blocks' layers only.
        quantised += module.weight.numel()
        quantised_layers += 1
        if _inside_block(name) and (not targets or name.rsplit(".", 1)[-1] in targets):
            lora_width += sum(module.weight.shape)
    parameters = sum(p.numel() for p in model.parameters())
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    if (getattr(text, "tie_word_embeddings", False) and head is not None and embedding is not None
            and head.weight is not embedding.weight):
        parameters -= head.weight.numel()  # tied on load; empty-weight init leaves them apart
    hidden = int(getattr(text, "hidden_size", 0) or getattr(text, "n_embd", 0))
    heads = int(getattr(text, "num_attention_heads", 0) or getattr(text, "n_head", 1))
    kv_heads = int(getattr(text, "num_key_value_heads", 0) or heads)
    block = (FAMILY_GPT2 if model_type == "gpt2" else FAMILY_BERT if family in DIFFUSION_FAMILIES and
             model_type != "llada" else FAMILY_LLAMA)
    return ModelShape(
        model_type=model_type, block=block, parameters=parameters, block_linear=quantised,
        lora_width=lora_width, vocab=int(text.vocab_size), hidden=hidden, kv_width=hidden // heads * kv_heads,
        intermediate=int(getattr(text, "intermediate_size", 0) or getattr(text, "n_inner", 0) or 4 * hidden),
        layers=int(getattr(text, "num_hidden_layers", 0) or getattr(text, "n_layer", 0)),
        diffusion=family in DIFFUSION_FAMILIES, quantised_layers=quantised_layers,
    )


# Estimates ------------------------------------------------------------------------------
def _block_activations(shape: ModelShape) -> int:
    """Elements autograd saves per token for one block (see the module docstring)."""
    h, kv, inner = shape.hidden, shape.kv_width, shape.intermediate
    if shape.block == FAMILY_GPT2:
        return 42 * h
    if shape.block == FAMILY_BERT:
        return 12 * h + 4 * inner
    return 8 * h + 2 * kv + 4 * inner


def nf4_constant_bytes(shape: ModelShape) -> int:
    """Bytes of the quantisation constants of the blocks' linear layers loaded in NF4 with
    double quantisation: 0.127 bits per weight plus each layer's code tables."""
    layers = shape.quantised_layers or shape.layers * LINEAR_LAYERS_PER_BLOCK.get(shape.block, 0)
    return int(shape.block_linear * NF4_CONSTANT_BITS / 8) + layers * NF4_TABLE_BYTES


def _logit_copies(shape: ModelShape, plan: TrainPlan) -> float:
    """b·s·V float32-sized buffers alive at the loss (see the module docstring)."""
    # The logits themselves, in the compute dtype (float32 under QLoRA: its head is upcast).
    model_dtype = 1.0 if plan.method == "qlora" else DTYPE_BYTES[plan.dtype] / 4
    if plan.method == "diffusion" or shape.diffusion:
        return model_dtype + 1.25 + (0.25 if model_dtype < 1 else 0)
    return model_dtype + 2 + (1 if model_dtype < 1 else 0)


def training_phases(shape: ModelShape, plan: TrainPlan) -> dict[str, tuple[tuple[str, int], ...]]:
    """Memory at the two moments that can be the peak: the loss (every saved activation and
    the logits' buffers) and backward through the blocks (gradients, checkpoints and one
    rebuilt block). Each is a tuple of (term, bytes)."""
    width = DTYPE_BYTES[plan.dtype]
    tokens = plan.batch_size * plan.max_length
    if plan.method == "qlora":
        rest = shape.parameters - shape.block_linear
        weights = int(shape.block_linear * NF4_BYTES + rest * 4)
        constants = nf4_constant_bytes(shape)
        width = 4  # the residual stream is float32 under QLoRA (see the module docstring)
    else:
        weights, constants = shape.parameters * width, 0
    if plan.method in ("lora", "qlora"):
        adapter = shape.lora_width * plan.lora_rank
        trainable, gradients = adapter * 4, adapter * 4
    else:
        trainable, gradients = 0, shape.parameters * width  # the weights themselves are trained
    block = tokens * _block_activations(shape) * width
    outside = tokens * 3 * shape.hidden * width
    checkpoints = tokens * shape.layers * shape.hidden * width
    saved = (checkpoints if plan.checkpointing else shape.layers * block) + outside
    logits = int(tokens * shape.vocab * 4 * _logit_copies(shape, plan))
    persistent = [("weights", weights), ("quantisation constants", constants), ("trainable parameters", trainable)]
    # Gradients of earlier micro-batches stay while the next one runs forward.
    accumulated = gradients if plan.grad_accum > 1 else 0
    overhead = [("CUDA overhead", CUDA_OVERHEAD)] if plan.cuda else []
    loss = persistent + [("gradients", accumulated), ("optimizer states (AdamW)", 2 * gradients),
                         ("activations", saved), ("logits", logits)] + overhead
    rebuilt = checkpoints + outside + (block if plan.checkpointing else 0)
    backward = persistent + [("gradients", gradients), ("optimizer states (AdamW)", 2 * gradients),
                             ("activations", rebuilt), ("logits", 0)] + overhead
    return {"loss": tuple(loss), "backward": tuple(backward)}


def training_breakdown(shape: ModelShape, plan: TrainPlan) -> tuple[str, tuple[tuple[str, int], ...]]:
    """(moment, terms) of the predicted peak."""
    phases = training_phases(shape, plan)
    moment = max(phases, key=lambda name: sum(size for _, size in phases[name]))
    return moment, phases[moment]


def _verdicts(total: int) -> tuple[tuple[int, bool], ...]:
    return tuple((card, total <= card * GIB) for card in CARDS_GB)  # a "24 GB" card holds 24 GiB


def _smallest(total: int) -> int | None:
    return next((card for card, fits in _verdicts(total) if fits), None)


def _changes(plan: TrainPlan) -> list[tuple[str, TrainPlan]]:
    """Single changes, cheapest for the writer first: what costs only time, then precision,
    then a lighter method, then shorter pairs."""
    changes = []
    if not plan.checkpointing:
        changes.append(("checkpointing on", dataclasses.replace(plan, checkpointing=True)))
    if plan.batch_size > 1:
        half = plan.batch_size // 2
        changes.append((f"batch {half} × accumulation {plan.grad_accum * plan.batch_size // half}",
                        dataclasses.replace(plan, batch_size=half, grad_accum=plan.grad_accum * plan.batch_size // half)))
    if plan.dtype == "float32":
        changes.append(("bfloat16", dataclasses.replace(plan, dtype="bfloat16")))
    if plan.method in ("full", "diffusion"):
        changes.append(("method lora", dataclasses.replace(plan, method="lora")))
    if plan.method == "lora":
        changes.append(("method qlora", dataclasses.replace(plan, method="qlora")))
    if plan.max_length > 256:
        changes.append((f"max length {plan.max_length // 2}", dataclasses.replace(plan, max_length=plan.max_length // 2)))
    return changes


def estimate_training(shape: ModelShape, plan: TrainPlan) -> MemoryEstimate:
    moment, breakdown = training_breakdown(shape, plan)
    total = sum(size for _, size in breakdown)
    current = _smallest(total)
    advice = []
    for change, changed in _changes(plan):
        changed_total = sum(size for _, size in training_breakdown(shape, changed)[1])
        card = _smallest(changed_total)
        if card is not None and (current is None or card < current):
            advice.append(Advice(change, changed_total, card))
    return MemoryEstimate(plan=plan, parameters=shape.parameters, moment=moment, breakdown=breakdown,
                          total_bytes=total, verdicts=_verdicts(total), advice=tuple(advice))


def sampling_bytes(shape: ModelShape, dtype: str = "bfloat16", length: int = 1024, four_bit: bool = False) -> int:
    """Memory to sample: weights, one forward's largest activations and logits over `length`
    tokens (a diffusion canvas or a causal context), and the CUDA overhead."""
    width = DTYPE_BYTES[dtype]
    if four_bit:
        weights = (int(shape.block_linear * NF4_BYTES) + nf4_constant_bytes(shape)
                   + (shape.parameters - shape.block_linear) * width)
    else:
        weights = shape.parameters * width
    activations = length * (_block_activations(shape) + 3 * shape.hidden) * width
    logits = length * shape.vocab * 4
    return weights + activations + logits + CUDA_OVERHEAD


def plan_for(config: Any, *, cuda: bool = True) -> TrainPlan:
    """The estimate's plan for an `engine.train.config.TrainConfig` (GPU defaults: bfloat16)."""
    return TrainPlan(method=config.method, dtype=config.compute_dtype or ("bfloat16" if cuda else "float32"),
                     max_length=config.max_length, batch_size=config.batch_size, grad_accum=config.grad_accum,
                     checkpointing=config.gradient_checkpointing, lora_rank=config.lora_rank, cuda=cuda)


def estimate_for_config(workspace: Any, config: Any, *, quick: bool = False,
                        torch_free: bool = False) -> MemoryEstimate:
    """The estimate for a training config in a workspace: what `voicebench train --estimate`
    prints and what the Train screen shows before launch. Reads config.json only.

    `quick=True` (for a screen re-estimating as settings change) sizes Llama-style, GPT-2 and
    LLaDA configs from their keys without importing torch (engine.models.doctor.shape_from_config),
    and falls back to the meta device for other model types — or, with `torch_free=True` (a
    process that must never import torch, like the app), raises ShapeError for them."""
    from engine.models.loading import detect_family, resolve_model_path

    entry = workspace.model(config.model)
    folder = resolve_model_path(entry.path)
    shape = None
    if quick:
        from types import SimpleNamespace

        from engine.models.doctor import shape_from_config

        config_dict = read_config(folder)
        family = entry.family or detect_family(SimpleNamespace(**config_dict))
        shape = shape_from_config(config_dict, family, None)
        if shape is None and torch_free:
            raise ShapeError(f"{config_dict.get('model_type') or family} models are sized on the meta device, "
                             f"which needs torch; `voicebench train --estimate --model {config.model}` prints it.")
    return estimate_training(shape or model_shape(folder, entry.family), plan_for(config))
