"""LLaDA's SFT layout with LLaDA-8B-Instruct's real chat template.

The template (copied as data from the published tokenizer_config.json of GSAI-ML/LLaDA-8B-Instruct)
always appends the assistant header, with no add_generation_prompt guard. Following
GUIDELINES.md in ML-GSAI/LLaDA, the prompt with that header is never masked; the reply, its
<|eot_id|> and EOS padding are trained; the header the template appends after the reply is not.
The tokenizer is the demo tokenizer plus LLaDA's special tokens, saved and read back both by
transformers (training) and by FileTokenizer (the Train screen's Mask tab).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.curate.file_tokenizer import FileTokenizer
from engine.train.data import encode_pair, loss_mask_preview, template_trailer

LLADA_CHAT_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    "+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}"
)
HEADER = "<|start_header_id|>assistant<|end_header_id|>\n\n"
PROMPT, RESPONSE = "Write about the river.", "The river kept its counsel."


@pytest.fixture(scope="module")
def llada_tokenizer_dir(tmp_path_factory, repo_root) -> Path:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(repo_root / "data" / "models" / "demo-ar")
    tokenizer.add_special_tokens({"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>",
                                  "pad_token": "<|endoftext|>", "mask_token": "<|mdm_mask|>"})
    tokenizer.add_tokens(["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"], special_tokens=True)
    tokenizer.chat_template = LLADA_CHAT_TEMPLATE
    folder = tmp_path_factory.mktemp("llada-tokenizer")
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tokenizers(llada_tokenizer_dir):
    from transformers import AutoTokenizer

    return {"training": AutoTokenizer.from_pretrained(llada_tokenizer_dir),
            "mask tab": FileTokenizer(llada_tokenizer_dir)}


@pytest.mark.parametrize("who", ["training", "mask tab"])
def test_llada_trains_reply_end_of_turn_and_eos_never_the_appended_header(tokenizers, who):
    tokenizer = tokenizers[who]
    assert template_trailer(tokenizer) == HEADER
    ids, prompt_length = encode_pair(tokenizer, PROMPT, RESPONSE, "chat")
    prompt_text = tokenizer.decode(ids[:prompt_length])
    trained_text = tokenizer.decode(ids[prompt_length:])
    assert prompt_text == f"<|startoftext|><|start_header_id|>user<|end_header_id|>\n\n{PROMPT}<|eot_id|>{HEADER}"
    assert trained_text == f"{RESPONSE}<|eot_id|><|endoftext|>"


def test_the_mask_tab_shows_training_s_layout(tokenizers):
    training = loss_mask_preview(tokenizers["training"], PROMPT, RESPONSE, "chat", 512)
    shown = loss_mask_preview(tokenizers["mask tab"], PROMPT, RESPONSE, "chat", 512)
    assert shown == training
    trained = "".join(text for text, in_region in shown.tokens if in_region)
    assert trained == f"{RESPONSE}<|eot_id|><|endoftext|>" and "assistant" not in trained


def test_templates_that_append_nothing_keep_their_layout(repo_root):
    """The demo template (and Llama/ChatML-style ones) end the reply's turn and append nothing."""
    demo = FileTokenizer(repo_root / "data" / "models" / "demo-ar")
    assert template_trailer(demo) == ""
    ids, prompt_length = encode_pair(demo, PROMPT, RESPONSE, "chat")
    assert demo.decode(ids[prompt_length:]) == f"{RESPONSE}<|end|>\n<|endoftext|>"


@pytest.mark.parametrize("template, trailer", [
    # Llama-3-style: the reply's turn ends with <|eot_id|>; the header comes only on request.
    ("{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n{{ m['content'] }}<|eot_id|>"
     "{% endfor %}{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}", ""),
    # LLaDA-style with a newline after each turn: the newline before the appended header goes with it.
    ("{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n{{ m['content'] }}<|eot_id|>\n"
     "{% endfor %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}", "\n" + HEADER),
])
def test_any_template_s_trailer_is_found_by_rendering(tokenizers, template, trailer):
    import copy

    tokenizer = copy.copy(tokenizers["training"])
    tokenizer.chat_template = template
    assert template_trailer(tokenizer) == trailer
    ids, prompt_length = encode_pair(tokenizer, PROMPT, RESPONSE, "chat")
    assert tokenizer.decode(ids[prompt_length:]) == f"{RESPONSE}<|eot_id|><|endoftext|>"
