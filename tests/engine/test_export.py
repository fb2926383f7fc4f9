"""Exports: each format's exact shape, split selection, per-split files, atomic writes."""

from __future__ import annotations

import json

import pytest

from engine.curate import pairs as pairs_module
from engine.curate.export import END_OF_TEXT, export_pairs, export_splits, render, split_paths
from engine.curate.pairs import Pair

PAIRS = [
    Pair("a", "Write about “rivers”.", "The river — stubborn.", split="train"),
    Pair("b", "Write about bread.", "Flour.\nWater.", split="val"),
    Pair("c", "Write about weather.", "Rain.", split="train"),
]


def test_prompt_completion_jsonl():
    lines = render(PAIRS, "prompt-completion").splitlines()
    assert [json.loads(line) for line in lines] == [
        {"prompt": "Write about “rivers”.", "completion": "The river — stubborn."},
        {"prompt": "Write about bread.", "completion": "Flour.\nWater."},
        {"prompt": "Write about weather.", "completion": "Rain."},
    ]
    assert "“rivers”" in lines[0]  # smart quotes written as text, not \\u escapes


def test_messages_jsonl_with_and_without_system():
    first = json.loads(render(PAIRS[:1], "messages"))
    assert first == {"messages": [
        {"role": "user", "content": "Write about “rivers”."},
        {"role": "assistant", "content": "The river — stubborn."},
    ]}
    with_system = json.loads(render(PAIRS[:1], "messages", system="You are Wren."))
    assert with_system["messages"][0] == {"role": "system", "content": "You are Wren."}


def test_plain_text_for_gpt2_style_models():
    text = render(PAIRS[:2], "text")
    assert text == (
        f"Write about “rivers”.\n\nThe river — stubborn.\n{END_OF_TEXT}\n"
        f"Write about bread.\n\nFlour.\nWater.\n{END_OF_TEXT}\n"
    )
    assert text.count(END_OF_TEXT) == 2


def test_unknown_format_and_split():
    with pytest.raises(ValueError, match="unknown export format"):
        render(PAIRS, "csv")
    with pytest.raises(ValueError, match="split must be one of"):
        export_pairs(PAIRS, "x.jsonl", "messages", split="test")


def test_export_one_split_and_both(tmp_path):
    out = tmp_path / "export.jsonl"
    assert export_pairs(PAIRS, out, "prompt-completion", "val") == 1
    assert json.loads(out.read_text(encoding="utf-8"))["completion"] == "Flour.\nWater."
    assert export_pairs(PAIRS, out, "prompt-completion", "all") == 3
    counts = export_splits(PAIRS, tmp_path / "wren.txt", "text")
    assert {path.name: count for path, count in counts.items()} == {"wren.train.txt": 2, "wren.val.txt": 1}
    assert "Write about bread." in (tmp_path / "wren.val.txt").read_text(encoding="utf-8")
    assert split_paths(tmp_path / "noext", "messages")["train"].name == "noext.train.jsonl"


def test_export_is_atomic(tmp_path, monkeypatch):
    out = tmp_path / "export.jsonl"
    out.write_text("previous export\n", encoding="utf-8")

    def crash(*args):
        raise OSError("no space left")

    monkeypatch.setattr(pairs_module.os, "replace", crash)
    with pytest.raises(OSError):
        export_pairs(PAIRS, out, "messages")
    assert out.read_text(encoding="utf-8") == "previous export\n"
    assert [path.name for path in tmp_path.iterdir()] == ["export.jsonl"]
