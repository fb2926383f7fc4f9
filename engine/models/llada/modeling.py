"""LLaDA's network, written for this project: loads the published checkpoints without remote code.

The architecture (Nie et al. 2025, "Large Language Diffusion Models"; the published
LLaDA-8B config and safetensors) is a Llama-shaped transformer with *bidirectional* attention:
- embeddings `model.transformer.wte` (optionally × sqrt(d_model) with `input_emb_norm`);
- `n_layers` pre-norm blocks `model.transformer.blocks.N`: RMSNorm `attn_norm`, `q_proj`,
  `k_proj`, `v_proj` (grouped key/value heads when n_kv_heads < n_heads), rotary positions
  (RoPE with `rope_theta`, rotated in float32 when `rope_full_precision`), attention over every
  position (no causal mask), `attn_out`, residual; RMSNorm `ff_norm`,
  `ff_out(act(ff_proj(x)) * up_proj(x))` (SwiGLU with SiLU), residual;
- final RMSNorm `model.transformer.ln_f` and the head `model.transformer.ff_out`
  (the transposed `wte` when `weight_tying`; then no head weight is stored).
Parameter names are the published ones, so `from_pretrained` reads LLaDA-8B-Base, -Instruct and
LLaDA-1.5 folders, sharded or not. RMSNorm normalises in float32 and casts back before the
weight, as the published code does; logits keep the published `embedding_size` columns.

Beyond the published code: PyTorch SDPA attention, gradient (activation) checkpointing per
block through transformers' `GradientCheckpointingLayer`, bf16/fp16 and 4-bit loading through
the usual `from_pretrained` arguments, `get_input_embeddings`/`get_output_embeddings` (the head
is always a module, so peft and the sampler's block-rows trick can find it), and a padding
`attention_mask` that is honoured (the published code builds the padding bias but never passes
it to attention; with an all-ones mask — every diffusion batch here — the two agree exactly).
With `labels`, the loss is plain cross-entropy over labelled positions (the masked-diffusion
weighting lives in engine.train.objectives).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import MaskedLMOutput

from engine.models.llada.configuration import LLaDAConfig

IGNORE_INDEX = -100


class LLaDARMSNorm(nn.Module):
    """RMSNorm in float32, cast back to the input dtype, then scaled (Gemma style: by 1 + weight)."""

    def __init__(self, size: int, eps: float, affine: bool, bias: bool, gemma: bool = False):
        super().__init__()
        self.eps, self.gemma = eps, gemma
        self.weight = nn.Parameter(torch.ones(size)) if affine else None
        self.bias = nn.Parameter(torch.zeros(size)) if affine and bias else None

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        with torch.autocast(hidden.device.type, enabled=False):
            as_float = hidden.float()
            normed = (as_float * torch.rsqrt(as_float.pow(2).mean(-1, keepdim=True) + self.eps)).to(hidden.dtype)
        if self.weight is None:
            return normed
        scaled = normed * (1 + self.weight) if self.gemma else self.weight * normed
        return scaled + self.bias if self.bias is not None else scaled


class LLaDALayerNorm(nn.Module):
    """Plain LayerNorm (`layer_norm_type` "default" / "low_precision"); the published eps is fixed at 1e-5."""

    def __init__(self, size: int, affine: bool, bias: bool):
        super().__init__()
        self.size = (size,)
        self.weight = nn.Parameter(torch.ones(size)) if affine else None
        self.bias = nn.Parameter(torch.zeros(size)) if affine and bias else None

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(hidden, self.size, weight=self.weight, bias=self.bias, eps=1e-5)


def build_norm(config: LLaDAConfig) -> nn.Module:
    """The norm `layer_norm_type` names, with the published affine/bias rules."""
    bias = config.bias_for_layer_norm if config.bias_for_layer_norm is not None else config.include_bias
    affine = config.layer_norm_with_affine
    if config.layer_norm_type in ("rms", "gemma_rms"):
        return LLaDARMSNorm(config.d_model, config.rms_norm_eps, affine, bias, gemma=config.layer_norm_type == "gemma_rms")
    return LLaDALayerNorm(config.d_model, affine, bias)


def rotary_tables(config: LLaDAConfig, length: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(sin, cos) of shape (1, 1, length, head_dim) in float32 (RoPE, Su et al. 2021)."""
    head_dim = config.head_dim
    with torch.autocast(device.type, enabled=False):
        inverse_frequency = 1.0 / (config.rope_theta ** (torch.arange(0, head_dim, 2, device=device, dtype=torch.float) / head_dim))
        angles = torch.outer(torch.arange(length, device=device, dtype=torch.float), inverse_frequency)
        angles = torch.cat((angles, angles), dim=-1)[None, None]
        return angles.sin(), angles.cos()


def apply_rotary(x: torch.Tensor, sin: torch.Tensor, cos: torch.Tensor, full_precision: bool) -> torch.Tensor:
    """Rotate (batch, heads, length, head_dim) by position; in float32 when `full_precision`."""
    rotated = x.float() if full_precision else x
    first, second = rotated.chunk(2, dim=-1)
    half_turned = torch.cat((-second, first), dim=-1)
    return (rotated * cos.type_as(rotated) + half_turned * sin.type_as(rotated)).type_as(x)


_ACTIVATIONS = {"silu": F.silu, "relu": F.relu, "gelu": F.gelu}


class LLaDABlock(GradientCheckpointingLayer):
    """One pre-norm block: bidirectional attention, then the gated MLP (the published "llama" block)."""

    def __init__(self, config: LLaDAConfig, layer_index: int):
        super().__init__()
        self.config, self.layer_index = config, layer_index
        d_model, kv_width, hidden = config.d_model, config.effective_n_kv_heads * config.head_dim, config.effective_mlp_hidden_size
        qkv_bias = bool(config.include_bias or config.include_qkv_bias)
        bias = config.include_bias
        self.attn_norm = build_norm(config)
        self.q_proj = nn.Linear(d_model, d_model, bias=qkv_bias)
        self.k_proj = nn.Linear(d_model, kv_width, bias=qkv_bias)
        self.v_proj = nn.Linear(d_model, kv_width, bias=qkv_bias)
        self.attn_out = nn.Linear(d_model, d_model, bias=bias)
        self.ff_norm = build_norm(config)
        self.ff_proj = nn.Linear(d_model, hidden, bias=bias)  # the gate
        self.up_proj = nn.Linear(d_model, hidden, bias=bias)
        self.ff_out = nn.Linear(hidden, d_model, bias=bias)  # the down projection
        self.act = _ACTIVATIONS[config.activation_type]
        self.dropout = nn.Dropout(config.residual_dropout)

    def forward(self, hidden: torch.Tensor, sin: torch.Tensor, cos: torch.Tensor,
                attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        hidden = hidden + self.dropout(self.attention(self.attn_norm(hidden), sin, cos, attention_mask))
        normed = self.ff_norm(hidden)
        return hidden + self.dropout(self.ff_out(self.act(self.ff_proj(normed)) * self.up_proj(normed)))

    def attention(self, normed: torch.Tensor, sin: torch.Tensor, cos: torch.Tensor,
                  attention_mask: torch.Tensor | None) -> torch.Tensor:
        config = self.config
        batch, length, d_model = normed.shape
        # (batch, heads, length, head_dim)
        query = self.q_proj(normed).view(batch, length, config.n_heads, config.head_dim).transpose(1, 2)
        key = self.k_proj(normed).view(batch, length, config.effective_n_kv_heads, config.head_dim).transpose(1, 2)
        value = self.v_proj(normed).view(batch, length, config.effective_n_kv_heads, config.head_dim).transpose(1, 2)
        query = apply_rotary(query, sin, cos, config.rope_full_precision)
        key = apply_rotary(key, sin, cos, config.rope_full_precision)
        if key.shape[1] != query.shape[1]:  # grouped key/value heads serve several query heads each
            repeats = query.shape[1] // key.shape[1]
            key = key.repeat_interleave(repeats, dim=1)
            value = value.repeat_interleave(repeats, dim=1)
        attended = F.scaled_dot_product_attention(
            query, key, value, attn_mask=attention_mask,
            dropout_p=config.attention_dropout if self.training else 0.0, is_causal=False,
        )
        return self.attn_out(attended.transpose(1, 2).reshape(batch, length, d_model))


class LLaDAModel(nn.Module):
    """The `model` attribute of LLaDAModelLM: holds `transformer` (wte, blocks, ln_f, ff_out)."""

    def __init__(self, config: LLaDAConfig):
        super().__init__()
        self.config = config
        rows = config.effective_embedding_size
        self.transformer = nn.ModuleDict({
            "wte": nn.Embedding(rows, config.d_model),
            "emb_drop": nn.Dropout(config.embedding_dropout),
            "blocks": nn.ModuleList(LLaDABlock(config, index) for index in range(config.n_layers)),
            "ln_f": build_norm(config),
            # With weight_tying this weight is wte's (tied by transformers); the published tied head has no bias.
            "ff_out": nn.Linear(config.d_model, rows, bias=config.include_bias and not config.weight_tying),
        })

    def forward(self, input_ids: torch.Tensor | None, inputs_embeds: torch.Tensor | None,
                attention_mask: torch.Tensor | None, output_hidden_states: bool) -> tuple[torch.Tensor, tuple | None]:
        config = self.config
        hidden = self.transformer["wte"](input_ids) if inputs_embeds is None else inputs_embeds
        if config.input_emb_norm:
            hidden = hidden * (config.d_model ** 0.5)
        hidden = self.transformer["emb_drop"](hidden)
        sin, cos = rotary_tables(config, hidden.shape[1], hidden.device)
        keep = None
        if attention_mask is not None and not bool(attention_mask.all()):
            keep = attention_mask[:, None, None, :].to(torch.bool)  # padding keys are not attended
        states = []
        for block in self.transformer["blocks"]:
            if output_hidden_states:
                states.append(hidden)
            hidden = block(hidden, sin, cos, keep)
        hidden = self.transformer["ln_f"](hidden)
        if output_hidden_states:
            states.append(hidden)
        logits = self.transformer["ff_out"](hidden)
        if config.scale_logits:
            logits = logits * (1 / math.sqrt(config.d_model))
        return logits, tuple(states) if output_hidden_states else None


class LLaDAPreTrainedModel(PreTrainedModel):
    config_class = LLaDAConfig
    config: LLaDAConfig
    base_model_prefix = "model"
    supports_gradient_checkpointing = True
    _no_split_modules = ["LLaDABlock"]
    _supports_sdpa = True


class LLaDAModelLM(LLaDAPreTrainedModel):
    """LLaDA with its head: logits over every position of a (partly masked) canvas."""

    _tied_weights_keys = {"model.transformer.ff_out.weight": "model.transformer.wte.weight"}

    def __init__(self, config: LLaDAConfig):
        problems = config.unsupported()
        if problems:
            raise ValueError(
                "This LLaDA config asks for what the native implementation does not run: "
                + "; ".join(problems) + ". Fix those keys in config.json (the published LLaDA-8B values work)."
            )
        super().__init__(config)
        self.model = LLaDAModel(config)
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.model.transformer["wte"]

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.model.transformer["wte"] = value

    def get_output_embeddings(self) -> nn.Module:
        return self.model.transformer["ff_out"]

    def set_output_embeddings(self, value: nn.Module) -> None:
        self.model.transformer["ff_out"] = value

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **_ignored,
    ) -> MaskedLMOutput | tuple:
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("LLaDAModelLM.forward takes exactly one of input_ids and inputs_embeds.")
        logits, hidden_states = self.model(input_ids, inputs_embeds, attention_mask, bool(output_hidden_states))
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten().to(logits.device),
                                   ignore_index=IGNORE_INDEX)
        if return_dict is False:
            return tuple(value for value in (loss, logits, hidden_states) if value is not None)
        return MaskedLMOutput(loss=loss, logits=logits, hidden_states=hidden_states)
