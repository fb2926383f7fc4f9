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


# LLaDA-8B-Instruct's special tokens and their ids.
LLADA_SPECIAL_TOKEN_IDS = {
    "<|startoftext|>": 126080,
    "<|endoftext|>": 126081,
    "<|mdm_mask|>": 126336,
    "<|start_header_id|>": 126346,
    "<|end_header_id|>": 126347,
    "<|eot_id|>": 126348,
}

LLADA_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.index0 == 0 %}{{ bos_token }}{% endif %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)

# Bias on LM-head rows the tokenizer cannot decode (and on the mask), so a random tiny model
# still samples real word pieces; EOS and EOT stay reachable for the EOS options.
LLADA_UNUSED_ID_BIAS = -30.0


def build_llada_tokenizer(folder: Path) -> int:
    """Save a small BPE tokenizer with LLaDA's special tokens at LLaDA's ids and a LLaDA-style
    (Llama-3 shaped) chat template; return the size of the plain BPE vocabulary (ids below it)."""
    import json

    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    bpe.train_from_iterator(TOKENIZER_TEXT, trainer)
    plain_vocab_size = bpe.get_vocab_size()
    # Special tokens go in at LLaDA's ids, far above the trained pieces. They must sit in the
    # model vocabulary as well: `added_tokens` alone would be renumbered to follow the pieces.
    spec = json.loads(bpe.to_str())
    spec["model"]["vocab"].update(LLADA_SPECIAL_TOKEN_IDS)
    spec["added_tokens"] = [
        {"id": token_id, "content": text, "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": True}
        for text, token_id in LLADA_SPECIAL_TOKEN_IDS.items()
    ]
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(json.dumps(spec)),
        bos_token="<|startoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        mask_token="<|mdm_mask|>",
        additional_special_tokens=["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
    )
    tokenizer.chat_template = LLADA_CHAT_TEMPLATE
    tokenizer.save_pretrained(folder)
    return plain_vocab_size


def tiny_llada_config(**overrides):
    """A tiny config of the native LLaDA model: LLaDA-8B's keys and vocabulary, toy sizes."""
    from engine.models.llada.configuration import LLaDAConfig

    sizes = {"d_model": 16, "n_heads": 2, "n_kv_heads": 2, "n_layers": 2, "mlp_hidden_size": 32,
             "max_sequence_length": 256}
    return LLaDAConfig(**{**sizes, **overrides})


def build_tiny_llada(folder: Path, *, seed: int = 0) -> Path:
    """A tiny LLaDA folder for the native implementation: published config keys and parameter names,
    LLaDA's token ids, and (as the published folder has) an `auto_map` the engine must not follow.
    Its head has a bias (`include_bias`, a published key) that keeps sampling on decodable ids."""
    import json

    import torch

    from engine.models.llada.configuration import LLADA_EOS_ID
    from engine.models.llada.modeling import LLaDAModelLM

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    plain_vocab_size = build_llada_tokenizer(folder)
    torch.manual_seed(seed)
    model = LLaDAModelLM(tiny_llada_config(include_bias=True))
    with torch.no_grad():
        head = model.get_output_embeddings()
        head.weight.normal_(0.0, 1.0)  # peakier than the init, so confidences differ visibly
        head.bias.fill_(LLADA_UNUSED_ID_BIAS)
        head.bias[:plain_vocab_size] = 0.0
        head.bias[LLADA_EOS_ID] = 0.0
        head.bias[LLADA_SPECIAL_TOKEN_IDS["<|eot_id|>"]] = 0.0
    model.save_pretrained(folder)
    config_path = folder / "config.json"
    saved = json.loads(config_path.read_text(encoding="utf-8"))
    saved["auto_map"] = {  # the published folder's, pointing at code this folder does not even have
        "AutoConfig": "configuration_llada.LLaDAConfig",
        "AutoModelForCausalLM": "modeling_llada.LLaDAModelLM",
        "AutoModel": "modeling_llada.LLaDAModelLM",
    }
    config_path.write_text(json.dumps(saved, indent=2), encoding="utf-8")
    return folder


def build_llada_64(folder: Path, **overrides) -> Path:
    """A native LLaDA 64 wide (the narrowest bitsandbytes' CPU 4-bit kernels take) with LLaDA's
    tokenizer ids and full 126,464-row vocabulary, default init, seed 0."""
    import torch

    from engine.models.llada.modeling import LLaDAModelLM

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    build_llada_tokenizer(folder)
    torch.manual_seed(0)
    sizes = {"d_model": 64, "n_heads": 4, "n_kv_heads": 4, "mlp_hidden_size": 128}
    LLaDAModelLM(tiny_llada_config(**{**sizes, **overrides})).save_pretrained(folder)
    return folder
