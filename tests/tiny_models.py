"""Build tiny models from a config in a folder, for tests that must run offline on CPU.

Each builder saves a randomly initialised model plus a small BPE tokenizer, the same way
`save_pretrained` would for a real checkpoint, so the engine loads it through its normal path.
"""

from __future__ import annotations

from pathlib import Path

TOKENIZER_TEXT = [
    "The river keeps its own counsel, and the town keeps the river's.",
    "I wrote this in the kitchen, with the window open and the kettle going.",
    "Every essay is an argument with the person I was last year.",
    "Notes on walking, bread, weather, letters, small repairs and long winters.",
] * 20


def build_tokenizer(folder: Path) -> Path:
    from engine.models.demo_tokenizer import train_bpe_tokenizer

    return train_bpe_tokenizer(TOKENIZER_TEXT, folder, vocab_size=400)


def _save(model, folder: Path) -> Path:
    import torch

    torch.manual_seed(0)
    model.save_pretrained(folder)
    return folder


def build_tiny_llama(folder: Path) -> Path:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    build_tokenizer(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.eos_token_id, tie_word_embeddings=False,
    )
    return _save(LlamaForCausalLM(config), folder)


def build_tiny_gpt2(folder: Path) -> Path:
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    build_tokenizer(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=len(tokenizer), n_embd=32, n_layer=2, n_head=2, n_positions=256,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.eos_token_id,
    )
    return _save(GPT2LMHeadModel(config), folder)


def build_tiny_modernbert(folder: Path) -> Path:
    import torch
    from transformers import AutoTokenizer, ModernBertConfig, ModernBertForMaskedLM

    build_tokenizer(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    torch.manual_seed(0)
    config = ModernBertConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, max_position_embeddings=256, global_attn_every_n_layers=1,
        local_attention=256, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.eos_token_id, cls_token_id=tokenizer.eos_token_id,
        sep_token_id=tokenizer.eos_token_id, mask_token_id=tokenizer.mask_token_id,
    )
    return _save(ModernBertForMaskedLM(config), folder)
