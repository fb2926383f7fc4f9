"""LLaDA's configuration, read from the published config.json as it is.

LLaDA-8B-Base, -Instruct and LLaDA-1.5 ship one config layout (OLMo's field names): `d_model`,
`n_heads`, `n_kv_heads`, `n_layers`, `mlp_hidden_size`, `rope_theta`, `rms_norm_eps`,
`vocab_size`, `embedding_size`, `weight_tying`, `mask_token_id` and about thirty more. Every key
is a field here, so a published config loads without remote code and saves back with the same
keys. Defaults are LLaDA-8B-Instruct's values: `LLaDAConfig()` describes the 8B model (its
parameter count can be taken on the meta device without reading weights).

transformers' generic names (`hidden_size`, `num_hidden_layers`, `tie_word_embeddings`,
`max_position_embeddings` …) are aliases of LLaDA's own keys (`attribute_map`), so library code
that reads the generic names (weight tying, peft, memory estimates) sees LLaDA's values.
"""

from __future__ import annotations

from typing import Any

from transformers import PretrainedConfig

MODEL_TYPE = "llada"

# LLaDA-8B's published special-token ids and vocabulary (config.json and tokenizer.json).
LLADA_MASK_ID = 126336
LLADA_EOS_ID = 126081
LLADA_VOCAB_SIZE = 126464

# Values of the published keys that this implementation runs; anything else is refused with a
# message naming the key (see `LLaDAConfig.unsupported`).
SUPPORTED_BLOCK_TYPES = ("llama",)
SUPPORTED_ACTIVATIONS = ("silu", "gelu", "relu")
SUPPORTED_LAYER_NORMS = ("rms", "gemma_rms", "default", "low_precision")


class LLaDAConfig(PretrainedConfig):
    """The published LLaDA config keys, with LLaDA-8B-Instruct's values as defaults."""

    model_type = MODEL_TYPE
    attribute_map = {
        "hidden_size": "d_model",
        "num_attention_heads": "n_heads",
        "num_hidden_layers": "n_layers",
        "max_position_embeddings": "max_sequence_length",
        "tie_word_embeddings": "weight_tying",
        "initializer_range": "init_std",
    }

    # Sizes.
    d_model: int = 4096
    n_heads: int = 32
    n_kv_heads: int | None = 32  # None: as many as n_heads (or 1 with multi_query_attention)
    n_layers: int = 32
    mlp_ratio: int = 4
    mlp_hidden_size: int | None = 12288  # None: mlp_ratio * d_model
    vocab_size: int = LLADA_VOCAB_SIZE
    embedding_size: int | None = LLADA_VOCAB_SIZE  # rows of wte and of the head; >= vocab_size
    max_sequence_length: int = 4096
    # Block layout.
    block_type: str = "llama"  # q/k/v/attn_out + ff_proj (gate), up_proj, ff_out (down)
    block_group_size: int = 1
    activation_type: str = "silu"
    layer_norm_type: str = "rms"
    layer_norm_with_affine: bool = True
    bias_for_layer_norm: bool | None = None  # None: follow include_bias
    rms_norm_eps: float = 1e-5
    attention_layer_norm: bool = False
    attention_layer_norm_with_affine: bool = True
    include_bias: bool = False
    include_qkv_bias: bool | None = False
    multi_query_attention: bool | None = None
    weight_tying: bool = False  # True: the head is wte (no model.transformer.ff_out weight)
    input_emb_norm: bool = False  # multiply embeddings by sqrt(d_model)
    scale_logits: bool = False  # divide logits by sqrt(d_model)
    # Positions.
    rope: bool = True
    rope_theta: float = 500000.0
    rope_full_precision: bool = True  # rotate q and k in float32 whatever the model dtype
    alibi: bool = False
    alibi_bias_max: float = 8.0
    flash_attention: bool = False  # kept for the published key; attention here is PyTorch SDPA
    # Dropout (all 0.0 in the published checkpoints).
    attention_dropout: float = 0.0
    residual_dropout: float = 0.0
    embedding_dropout: float = 0.0
    # Special tokens.
    eos_token_id: int | None = LLADA_EOS_ID
    pad_token_id: int | None = LLADA_EOS_ID
    mask_token_id: int | None = LLADA_MASK_ID
    # Training-time keys of the original code base, kept so a saved config round-trips.
    init_device: str | None = "meta"
    init_fn: str = "mitchell"
    init_std: float = 0.02
    init_cutoff_factor: float | None = None
    precision: str | None = "amp_bf16"
    use_cache: bool = False  # a masked-diffusion model has no KV cache; kept for the key

    def __post_init__(self, **kwargs: Any) -> None:
        if self.architectures is None:
            self.architectures = ["LLaDAModelLM"]
        super().__post_init__(**kwargs)

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def effective_n_kv_heads(self) -> int:
        """Key/value heads, as the published code reads n_kv_heads and multi_query_attention."""
        if self.n_kv_heads is None:
            return 1 if self.multi_query_attention else self.n_heads
        return self.n_kv_heads

    @property
    def num_key_value_heads(self) -> int:
        return self.effective_n_kv_heads

    @property
    def effective_mlp_hidden_size(self) -> int:
        return self.mlp_hidden_size if self.mlp_hidden_size is not None else self.mlp_ratio * self.d_model

    @property
    def intermediate_size(self) -> int:
        return self.effective_mlp_hidden_size

    @property
    def effective_embedding_size(self) -> int:
        return self.embedding_size or self.vocab_size

    def unsupported(self) -> list[str]:
        """What in this config the native model cannot run, one phrase per key (empty: all fine)."""
        problems = []
        if self.block_type not in SUPPORTED_BLOCK_TYPES:
            problems.append(f"block_type {self.block_type!r} (supported: {', '.join(SUPPORTED_BLOCK_TYPES)})")
        if self.activation_type not in SUPPORTED_ACTIVATIONS:
            problems.append(f"activation_type {self.activation_type!r} (supported: {', '.join(SUPPORTED_ACTIVATIONS)})")
        if self.layer_norm_type not in SUPPORTED_LAYER_NORMS:
            problems.append(f"layer_norm_type {self.layer_norm_type!r} (supported: {', '.join(SUPPORTED_LAYER_NORMS)})")
        if self.block_group_size != 1:
            problems.append(f"block_group_size {self.block_group_size} (supported: 1)")
        if not self.rope or self.alibi:
            problems.append("positions other than RoPE (rope must be true, alibi false)")
        if self.attention_layer_norm:
            problems.append("attention_layer_norm true (supported: false)")
        if self.d_model % self.n_heads:
            problems.append(f"d_model {self.d_model} not divisible by n_heads {self.n_heads}")
        elif self.n_heads % self.effective_n_kv_heads:
            problems.append(f"n_heads {self.n_heads} not divisible by n_kv_heads {self.effective_n_kv_heads}")
        if self.effective_embedding_size < self.vocab_size:
            problems.append(f"embedding_size {self.embedding_size} smaller than vocab_size {self.vocab_size}")
        return problems
