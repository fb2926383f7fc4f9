"""A tiny bidirectional transformer with LLaDA's module names (test stand-in, remote code).

Layout of the real checkpoint, so state-dict keys and LoRA target names match it:
`model.transformer.wte` (embeddings), `model.transformer.blocks[i]` with `q_proj`, `k_proj`,
`v_proj`, `attn_out`, `ff_proj` (gate), `up_proj`, `ff_out` (down), `attn_norm`, `ff_norm`,
then `model.transformer.ln_f` and the LM head `model.transformer.ff_out`. Attention is full
(no causal mask) with rotary positions, as in LLaDA. The one liberty: the LM head has a bias,
which the test builder uses to keep sampling on ids the tiny tokenizer can decode.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import CausalLMOutputWithPast

from .configuration_llada import LLaDAConfig


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    first, second = x.chunk(2, dim=-1)
    return torch.cat((-second, first), dim=-1)


def _apply_rope(x: torch.Tensor, theta: float) -> torch.Tensor:
    """Rotary position embedding (Su et al. 2021) on (batch, heads, length, head_dim)."""
    length, head_dim = x.shape[-2], x.shape[-1]
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, device=x.device, dtype=torch.float32) / head_dim))
    angles = torch.outer(torch.arange(length, device=x.device, dtype=torch.float32), inv_freq)
    angles = torch.cat((angles, angles), dim=-1).to(x.dtype)  # (length, head_dim)
    return x * angles.cos() + _rotate_half(x) * angles.sin()


class LLaDABlock(nn.Module):
    """Pre-norm block: bidirectional self-attention, then a SwiGLU feed-forward."""

    def __init__(self, config: LLaDAConfig):
        super().__init__()
        d_model, hidden = config.d_model, config.mlp_hidden_size
        self.n_heads = config.n_heads
        self.rope_theta = config.rope_theta
        self.attn_norm = nn.LayerNorm(d_model, eps=config.layer_norm_eps)
        self.q_proj = nn.Linear(d_model, d_model, bias=False)
        self.k_proj = nn.Linear(d_model, d_model, bias=False)
        self.v_proj = nn.Linear(d_model, d_model, bias=False)
        self.attn_out = nn.Linear(d_model, d_model, bias=False)
        self.ff_norm = nn.LayerNorm(d_model, eps=config.layer_norm_eps)
        self.ff_proj = nn.Linear(d_model, hidden, bias=False)
        self.up_proj = nn.Linear(d_model, hidden, bias=False)
        self.ff_out = nn.Linear(hidden, d_model, bias=False)

    def forward(self, hidden: torch.Tensor, attention_bias: torch.Tensor | None) -> torch.Tensor:
        batch, length, d_model = hidden.shape
        normed = self.attn_norm(hidden)

        def heads(projection: nn.Linear) -> torch.Tensor:  # -> (batch, heads, length, head_dim)
            return projection(normed).view(batch, length, self.n_heads, -1).transpose(1, 2)

        query = _apply_rope(heads(self.q_proj), self.rope_theta)
        key = _apply_rope(heads(self.k_proj), self.rope_theta)
        attended = F.scaled_dot_product_attention(query, key, heads(self.v_proj), attn_mask=attention_bias)
        hidden = hidden + self.attn_out(attended.transpose(1, 2).reshape(batch, length, d_model))
        normed = self.ff_norm(hidden)
        return hidden + self.ff_out(F.silu(self.ff_proj(normed)) * self.up_proj(normed))


class LLaDAModel(nn.Module):
    """The `model` attribute of LLaDAModelLM; holds the `transformer` ModuleDict."""

    def __init__(self, config: LLaDAConfig):
        super().__init__()
        self.transformer = nn.ModuleDict(
            {
                "wte": nn.Embedding(config.vocab_size, config.d_model),
                "blocks": nn.ModuleList(LLaDABlock(config) for _ in range(config.n_layers)),
                "ln_f": nn.LayerNorm(config.d_model, eps=config.layer_norm_eps),
                "ff_out": nn.Linear(config.d_model, config.vocab_size, bias=True),
            }
        )

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        hidden = self.transformer["wte"](input_ids)
        attention_bias = None
        if attention_mask is not None:  # padding only; every real position sees every other
            keep = attention_mask[:, None, None, :].to(torch.bool)
            attention_bias = torch.zeros(keep.shape, dtype=hidden.dtype, device=hidden.device)
            attention_bias = attention_bias.masked_fill(~keep, torch.finfo(hidden.dtype).min)
        for block in self.transformer["blocks"]:
            hidden = block(hidden, attention_bias)
        return self.transformer["ff_out"](self.transformer["ln_f"](hidden))


class LLaDAModelLM(PreTrainedModel):
    config_class = LLaDAConfig
    base_model_prefix = "model"
    _no_split_modules = ["LLaDABlock"]

    def __init__(self, config: LLaDAConfig):
        super().__init__(config)
        self.model = LLaDAModel(config)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)

    def get_input_embeddings(self) -> nn.Module:
        return self.model.transformer["wte"]

    def get_output_embeddings(self) -> nn.Module:
        return self.model.transformer["ff_out"]

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs,
    ) -> CausalLMOutputWithPast:
        logits = self.model(input_ids, attention_mask)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=-100)
        return CausalLMOutputWithPast(loss=loss, logits=logits)
