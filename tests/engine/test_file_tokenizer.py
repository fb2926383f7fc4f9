"""FileTokenizer (tokenizer.json + chat template, no transformers) lays out pairs exactly as training does.

Training calls `engine.train.data.encode_pair` with a transformers tokenizer; the Train
screen's loss-mask preview calls the same function with a FileTokenizer. Both must give the
same ids, prompt lengths and token texts on every model shape the workbench ships or tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.curate.file_tokenizer import FileTokenizer
from engine.curate.tokens import TokenizerUnavailable
from engine.train.config import ConfigError
from engine.train.data import encode_pair, loss_mask_preview, resolve_template

REPO = Path(__file__).resolve().parents[2]
DEMO_MODELS = [REPO / "data" / "models" / name for name in ("demo-ar", "demo-diffusion")]
# Prompts that stress the template: special-token text typed by a writer, HTML characters
# (jinja's own tojson would escape them), a newline at the boundary, and an empty response.
PAIRS = [
    ("Write about the river.", "The river keeps its own counsel."),
    ("Say <|end|> & <b>mend</b> — “plainly”.", "Tend it.\n\nThen\tstop."),
    ("Ends with a newline\n", ""),
]


def _model_dirs(request) -> list[Path]:
    folders = [request.getfixturevalue(name) for name in ("tiny_llama_dir", "tiny_gpt2_dir", "tiny_masked_dir")]
    return folders + [folder for folder in DEMO_MODELS if (folder / "tokenizer.json").exists()]


def test_file_tokenizer_gives_training_s_ids_prompt_lengths_and_preview(request):
    from transformers import AutoTokenizer

    folders = _model_dirs(request)
    assert len(folders) == 5, "data/models/demo-ar and demo-diffusion (committed) are missing"
    for folder in folders:
        model_type = json.loads((folder / "config.json").read_text())["model_type"]
        training, preview = AutoTokenizer.from_pretrained(folder), FileTokenizer(folder)
        assert preview.eos_token_id == training.eos_token_id and preview.pad_token_id == training.pad_token_id
        templates = ["plain"] + (["chat"] if training.chat_template else [])
        assert resolve_template("auto", preview, model_type) == resolve_template("auto", training, model_type)
        for template in templates:
            for prompt, response in PAIRS:
                where = f"{folder.name} {template} {prompt!r}"
                assert encode_pair(preview, prompt, response, template) == encode_pair(training, prompt, response, template), where
                for max_length in (512, 12):
                    assert (loss_mask_preview(preview, prompt, response, template, max_length, model_type)
                            == loss_mask_preview(training, prompt, response, template, max_length, model_type)), where


def test_chat_template_renders_as_transformers_renders_it(tiny_llama_dir):
    from transformers import AutoTokenizer

    training, preview = AutoTokenizer.from_pretrained(tiny_llama_dir), FileTokenizer(tiny_llama_dir)
    conversation = [{"role": "user", "content": PAIRS[1][0]}, {"role": "assistant", "content": PAIRS[1][1]}]
    for generation_prompt in (True, False):
        turns = conversation[:1] if generation_prompt else conversation
        assert (preview.apply_chat_template(turns, add_generation_prompt=generation_prompt, tokenize=False)
                == training.apply_chat_template(turns, add_generation_prompt=generation_prompt, tokenize=False))
    assert preview.apply_chat_template(conversation, return_dict=True)["input_ids"] == preview.apply_chat_template(conversation)


def test_missing_tokenizer_or_template_says_what_is_wrong(tmp_path, tiny_llama_dir):
    with pytest.raises(TokenizerUnavailable, match="no tokenizer.json"):
        FileTokenizer(tmp_path)
    (tmp_path / "tokenizer.json").write_bytes((tiny_llama_dir / "tokenizer.json").read_bytes())
    bare = FileTokenizer(tmp_path)  # no tokenizer_config.json, no chat template
    assert bare.chat_template is None and bare.eos_token_id is None
    assert resolve_template("auto", bare, "llama") == "plain"
    with pytest.raises(ConfigError, match='no chat template; use template = "plain"'):
        loss_mask_preview(bare, "a", "b", "chat", 512)


def test_importing_it_loads_neither_torch_nor_transformers():
    code = ("import sys, engine.curate.file_tokenizer, engine.train.data; "
            "print(sorted({'torch', 'transformers'} & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert result.stdout.strip() == "[]"
