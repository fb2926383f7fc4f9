"""Configuration of the tiny LLaDA stand-in (remote code copied next to its weights).

LLaDA-8B cannot run on a 2-core CPU, so the test suite writes a model folder whose config
says `model_type = "llada"` and whose `auto_map` points at this file and
`modeling_llada.py`, exactly the way the real checkpoint ships its own code. Field names
follow LLaDA's config (d_model, n_heads, n_layers, mlp_hidden_size, max_sequence_length,
rope_theta, mask_token_id …) so code that reads them works on both.
"""

from transformers import PretrainedConfig

# LLaDA-8B's special token ids; the stand-in's vocabulary is large enough to hold them.
LLADA_MASK_ID = 126336
LLADA_EOS_ID = 126081
LLADA_EOT_ID = 126348
LLADA_VOCAB_SIZE = 126464


class LLaDAConfig(PretrainedConfig):
    model_type = "llada"

    def __init__(
        self,
        d_model: int = 16,
        n_heads: int = 2,
        n_layers: int = 2,
        mlp_hidden_size: int = 32,
        vocab_size: int = LLADA_VOCAB_SIZE,
        max_sequence_length: int = 512,
        rope_theta: float = 10000.0,
        layer_norm_eps: float = 1e-5,
        mask_token_id: int = LLADA_MASK_ID,
        eos_token_id: int = LLADA_EOS_ID,
        pad_token_id: int = LLADA_EOS_ID,
        **kwargs,
    ):
        self.d_model = d_model
        self.n_heads = n_heads
        self.n_layers = n_layers
        self.mlp_hidden_size = mlp_hidden_size
        self.vocab_size = vocab_size
        self.max_sequence_length = max_sequence_length
        self.rope_theta = rope_theta
        self.layer_norm_eps = layer_norm_eps
        self.mask_token_id = mask_token_id
        # Generic names some transformers utilities look for.
        self.hidden_size = d_model
        self.num_attention_heads = n_heads
        self.num_hidden_layers = n_layers
        kwargs.setdefault("tie_word_embeddings", False)
        super().__init__(eos_token_id=eos_token_id, pad_token_id=pad_token_id, **kwargs)
