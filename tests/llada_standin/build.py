"""Write a tiny LLaDA stand-in model folder: remote code, config, random weights, tokenizer.

The folder looks like a LLaDA checkpoint to the engine: `config.json` says `model_type =
"llada"` and has an `auto_map`, so it loads only with `trust_remote_code=True` through
`engine.models.loading.load_model`; its tokenizer puts LLaDA's special tokens at LLaDA's ids
(mask 126336, EOS 126081, EOT 126348 …) above a small BPE vocabulary, and carries a
LLaDA-style (Llama-3 shaped) chat template.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
REMOTE_CODE_FILES = ("configuration_llada.py", "modeling_llada.py")

# LLaDA-8B-Instruct's special tokens and their ids.
SPECIAL_TOKEN_IDS = {
    "<|startoftext|>": 126080,
    "<|endoftext|>": 126081,
    "<|mdm_mask|>": 126336,
    "<|start_header_id|>": 126346,
    "<|end_header_id|>": 126347,
    "<|eot_id|>": 126348,
}

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.index0 == 0 %}{{ bos_token }}{% endif %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)

# Bias on LM-head rows the tokenizer cannot decode (and on the mask), so a random tiny model
# still samples real word pieces; EOS and EOT stay reachable for the EOS options.
UNUSED_ID_BIAS = -30.0


def build_tokenizer(folder: Path) -> int:
    """Save tokenizer files; return the size of the plain BPE vocabulary (ids below it)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from tests.tiny_models import TOKENIZER_TEXT

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
    spec["model"]["vocab"].update(SPECIAL_TOKEN_IDS)
    spec["added_tokens"] = [
        {"id": token_id, "content": text, "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": True}
        for text, token_id in SPECIAL_TOKEN_IDS.items()
    ]
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(json.dumps(spec)),
        bos_token="<|startoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        mask_token="<|mdm_mask|>",
        additional_special_tokens=["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(folder)
    return plain_vocab_size


def build_tiny_llada(folder: Path, *, seed: int = 0) -> Path:
    """Write the stand-in model folder and return it."""
    import torch

    from tests.llada_standin.configuration_llada import LLADA_EOS_ID, LLADA_EOT_ID, LLaDAConfig
    from tests.llada_standin.modeling_llada import LLaDAModelLM

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    plain_vocab_size = build_tokenizer(folder)
    torch.manual_seed(seed)
    config = LLaDAConfig(d_model=16, n_heads=2, n_layers=2, mlp_hidden_size=32, max_sequence_length=256)
    config.architectures = ["LLaDAModelLM"]
    config.auto_map = {
        "AutoConfig": "configuration_llada.LLaDAConfig",
        "AutoModel": "modeling_llada.LLaDAModelLM",
        "AutoModelForCausalLM": "modeling_llada.LLaDAModelLM",
    }
    model = LLaDAModelLM(config)
    with torch.no_grad():
        head = model.model.transformer["ff_out"]
        head.weight.normal_(0.0, 1.0)  # peakier than the init, so confidences differ visibly
        head.bias.fill_(UNUSED_ID_BIAS)
        head.bias[:plain_vocab_size] = 0.0
        head.bias[LLADA_EOS_ID] = 0.0
        head.bias[LLADA_EOT_ID] = 0.0
    model.save_pretrained(folder)
    for name in REMOTE_CODE_FILES:
        shutil.copy(HERE / name, folder / name)
    # save_pretrained may drop the auto_map of a class it did not register itself.
    config_path = folder / "config.json"
    saved = json.loads(config_path.read_text(encoding="utf-8"))
    saved["auto_map"] = config.auto_map
    saved["model_type"] = "llada"
    config_path.write_text(json.dumps(saved, indent=2), encoding="utf-8")
    return folder
