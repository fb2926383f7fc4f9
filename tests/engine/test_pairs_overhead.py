"""Pair token counts use the model's own layout: `pairs stats`, `pairs validate` and the Pairs
screen's count equal the length training's `encode_pair` gives, per model.

Three layouts on tiny tokenizers (the demo tokenizer plus each family's special tokens, read
with the `tokenizers` library, no transformers): LLaDA-8B-Instruct's real chat template (it
always appends the assistant header, which training leaves out), Meta-Llama-3-8B-Instruct's
template (EOS is its <|eot_id|>), and GPT-2 without a template (the plain layout: text, EOS).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from engine.cli import main
from engine.cli.pairs_cmd import file_stats
from engine.curate import tokens
from engine.curate.file_tokenizer import FileTokenizer
from engine.curate.pairs import load_pairs, pair_token_count, validate_file
from engine.train.data import encode_pair, resolve_template
from tests.engine.test_sft_layout import LLADA_CHAT_TEMPLATE

# Meta-Llama-3-8B-Instruct's chat template, as published in its tokenizer_config.json (data).
LLAMA3_CHAT_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    "+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
HEADER_TOKENS = ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
LAYOUTS = {
    # name: (special tokens added, tokenizer_config.json, chat template, config.json model_type)
    "llada": (["<|startoftext|>", *HEADER_TOKENS], {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>"},
              LLADA_CHAT_TEMPLATE, "llada"),
    "llama3": (["<|begin_of_text|>", *HEADER_TOKENS], {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
               LLAMA3_CHAT_TEMPLATE, "llama"),
    "gpt2": ([], {"eos_token": "<|endoftext|>"}, None, "gpt2"),
}
# Prompts and responses without leading or trailing whitespace (the templates trim it).
PAIRS = [
    ("Write about the river.", "The river kept its counsel."),
    ("Two lines:\nfirst, then second", "Café naïve — “quoted” and done."),
    ("Numbers 1984 and 3.14!", "A reply with\n\nparagraphs inside it, and an <|endoftext|> in the text."),
    ("short", "x"),
]


def make_model(root: Path, name: str) -> Path:
    from tokenizers import AddedToken, Tokenizer

    added, config, template, model_type = LAYOUTS[name]
    demo = Path(__file__).resolve().parents[2] / "data" / "models" / "demo-ar"
    tokenizer = Tokenizer.from_file(str(demo / "tokenizer.json"))
    tokenizer.add_special_tokens([AddedToken(text, special=True) for text in added])
    folder = root / name
    folder.mkdir(parents=True)
    tokenizer.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    (folder / "config.json").write_text(json.dumps({"model_type": model_type}), encoding="utf-8")
    if template:
        (folder / "chat_template.jinja").write_text(template, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("layouts")
    return {name: make_model(root, name) for name in LAYOUTS}


@pytest.fixture
def pairs_path(tmp_path) -> Path:
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps({"id": f"p{index}", "prompt": prompt, "response": response}) + "\n"
                            for index, (prompt, response) in enumerate(PAIRS)), encoding="utf-8")
    return path


def trained_lengths(folder: Path, setting: str = "auto") -> list[int]:
    """What training lays out: encode_pair with the template it picks for `setting`."""
    tokenizer = FileTokenizer(folder)
    template = resolve_template(setting, tokenizer, json.loads((folder / "config.json").read_text())["model_type"])
    return [len(encode_pair(tokenizer, prompt, response, template)[0]) for prompt, response in PAIRS]


@pytest.fixture(autouse=True)
def fresh_counters(monkeypatch):
    monkeypatch.setattr(tokens, "_COUNTERS", {})


def test_each_layout_adds_its_own_tokens(models):
    overheads = {name: tokens.token_counter(folder).pair_overhead for name, folder in models.items()}
    assert overheads["gpt2"] == 1  # the plain layout adds only EOS
    # LLaDA: BOS, two headers and two <|eot_id|> (its appended header is left out) and EOS;
    # Llama 3: the same without the extra EOS, since its EOS is the <|eot_id|> ending the reply.
    assert overheads["llada"] == overheads["llama3"] + 1
    assert overheads["llama3"] > 5


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_stats_validate_and_the_pairs_screen_count_what_training_lays_out(models, pairs_path, name):
    folder = models[name]
    expected = trained_lengths(folder)
    counter = tokens.token_counter(folder)
    pairs = load_pairs(pairs_path).pairs

    # The Pairs screen's column: pair_token_count with the counter's count.
    assert [pair_token_count(pair, counter.count) for pair in pairs] == expected

    stats = file_stats(pairs_path, {name: max(expected) - 1}, {name: counter})
    assert stats["tokens"][name] == {"budget": max(expected) - 1, "total": sum(expected), "max": max(expected),
                                     "over_budget": expected.count(max(expected))}

    # A budget of one token: every pair is reported with its length.
    report = validate_file(pairs_path, budgets={name: 1}, counter={name: counter})
    reported = [int(re.search(r"is (\d+) tokens", problem.message).group(1))
                for problem in report.problems if problem.field == "tokens"]
    assert reported == expected


def test_the_cli_counts_each_model_with_its_own_layout(models, pairs_path, tmp_path, capsys):
    """Models sharing a tokenizer.json but not a layout (GPT-2 plain, the demo's chat template)
    are not merged into one count."""
    demo = Path(__file__).resolve().parents[2] / "data" / "models" / "demo-ar"
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / "voicebench.toml").write_text(
        "".join(f'[models.{name}]\npath = "{path}"\ncontext_length = 4096\n\n'
                for name, path in {**models, "demo": demo}.items()), encoding="utf-8")
    code = main(["-w", str(workspace), "pairs", "stats", "--json", str(pairs_path),
                 *[option for name in [*LAYOUTS, "demo"] for option in ("--model", name)]])
    assert code == 0
    counted = json.loads(capsys.readouterr().out)["tokens"]
    for name, folder in models.items():
        assert counted[name]["total"] == sum(trained_lengths(folder))
    demo_lengths = [len(encode_pair(FileTokenizer(demo), prompt, response, "chat")[0]) for prompt, response in PAIRS]
    assert counted["demo"]["total"] == sum(demo_lengths) != counted["gpt2"]["total"]


def test_the_workspace_training_template_decides_the_layout_counted(models, pairs_path, tmp_path, capsys):
    """`[train] template = "plain"` makes runs lay a chat model's pairs out without its chat
    template, so `pairs stats` counts them that way too."""
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    settings = f'[models.llama3]\npath = "{models["llama3"]}"\ncontext_length = 4096\n'
    (workspace / "voicebench.toml").write_text(settings, encoding="utf-8")
    assert main(["-w", str(workspace), "pairs", "stats", "--json", str(pairs_path), "--model", "llama3"]) == 0
    chat_total = json.loads(capsys.readouterr().out)["tokens"]["llama3"]["total"]
    (workspace / "voicebench.toml").write_text(settings + '\n[train]\ntemplate = "plain"\n', encoding="utf-8")
    assert main(["-w", str(workspace), "pairs", "stats", "--json", str(pairs_path), "--model", "llama3"]) == 0
    plain_total = json.loads(capsys.readouterr().out)["tokens"]["llama3"]["total"]
    assert chat_total == sum(trained_lengths(models["llama3"]))
    assert plain_total == sum(trained_lengths(models["llama3"], "plain")) < chat_total


def test_without_a_model_layout_the_documented_default_is_used():
    counter = tokens.TokenCounter("bytes", lambda texts: [len(text.encode()) for text in texts])
    assert counter.pair_overhead == tokens.DEFAULT_PAIR_OVERHEAD_TOKENS
    assert tokens.pair_overhead(tokens.word_counter) == tokens.DEFAULT_PAIR_OVERHEAD_TOKENS


def test_a_template_training_cannot_use_falls_back_to_the_default(models, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    for file in ("tokenizer.json", "tokenizer_config.json", "config.json"):
        (broken / file).write_bytes((models["llama3"] / file).read_bytes())
    (broken / "chat_template.jinja").write_text("{{ raise_exception('no plain chats') }}", encoding="utf-8")
    assert tokens.token_counter(broken).pair_overhead == tokens.DEFAULT_PAIR_OVERHEAD_TOKENS


def test_a_hub_model_in_the_cache_is_counted_with_its_layout_and_a_missing_one_needs_no_hub_import(
        models, tmp_path, monkeypatch):
    """A Hub id found in the local cache (the snapshot layout huggingface_hub writes) gets its
    tokenizer and its layout; an id that is not cached is refused before huggingface_hub is
    even imported (a 0.2 s import `pairs validate` and `stats` paid for every built-in model)."""
    import subprocess
    import sys

    cache = tmp_path / "hub"
    snapshot = cache / "models--someone--tiny-llama3" / "snapshots" / "0123abc"
    snapshot.mkdir(parents=True)
    (cache / "models--someone--tiny-llama3" / "refs").mkdir()
    (cache / "models--someone--tiny-llama3" / "refs" / "main").write_text("0123abc", encoding="utf-8")
    for file in ("tokenizer.json", "tokenizer_config.json", "config.json", "chat_template.jinja"):
        (snapshot / file).write_bytes((models["llama3"] / file).read_bytes())
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    counter = tokens.token_counter("someone/tiny-llama3")
    assert counter.pair_overhead == tokens.token_counter(models["llama3"]).pair_overhead

    probe = ("import sys\nfrom engine.curate import tokens\n"
             "try:\n    tokens.token_counter('someone/not-here')\nexcept tokens.TokenizerUnavailable as error:\n"
             "    print('refused', 'huggingface_hub' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                            env={**os.environ, "HF_HUB_CACHE": str(cache)})
    assert result.stdout.strip() == "refused False"
