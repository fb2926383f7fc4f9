"""Export pairs for training elsewhere: prompt/completion JSONL, OpenAI `messages` JSONL,
or plain text for GPT-2-style models (prompt, response, `<|endoftext|>` between examples).

Each export is written atomically; `export_pairs` can write one split or all pairs, and
`export_splits` writes `<stem>.train<ext>` and `<stem>.val<ext>` side by side.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from engine.atomic import write_atomic
from engine.curate.pairs import Pair

FORMATS = ("prompt-completion", "messages", "text")
SPLIT_CHOICES = ("train", "val", "all")
END_OF_TEXT = "<|endoftext|>"  # GPT-2's document separator (also the demo tokenizer's EOS)
FORMAT_SUFFIX = {"prompt-completion": ".jsonl", "messages": ".jsonl", "text": ".txt"}


def select_split(pairs: Iterable[Pair], split: str) -> list[Pair]:
    if split not in SPLIT_CHOICES:
        raise ValueError(f"split must be one of {', '.join(SPLIT_CHOICES)}, not {split!r}")
    return [pair for pair in pairs if split == "all" or pair.split == split]


def render(pairs: Iterable[Pair], fmt: str, *, system: str | None = None) -> str:
    """The export's text. `system` adds a system message to the `messages` format."""
    pairs = list(pairs)
    if fmt == "prompt-completion":
        lines = [{"prompt": pair.prompt, "completion": pair.response} for pair in pairs]
        return "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
    if fmt == "messages":
        head = [{"role": "system", "content": system}] if system else []
        lines = [
            {"messages": [*head, {"role": "user", "content": pair.prompt},
                          {"role": "assistant", "content": pair.response}]}
            for pair in pairs
        ]
        return "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
    if fmt == "text":
        # Prompt and response as one running text, so a base model learns the whole
        # document; the separator marks where one example ends and the next begins.
        return "".join(f"{pair.prompt}\n\n{pair.response}\n{END_OF_TEXT}\n" for pair in pairs)
    raise ValueError(f"unknown export format {fmt!r}; choose from {', '.join(FORMATS)}")


def export_pairs(pairs: Iterable[Pair], out: str | Path, fmt: str, split: str = "all",
                 *, system: str | None = None) -> int:
    """Write one split (or all pairs) to `out`; returns how many pairs were written."""
    chosen = select_split(pairs, split)
    write_atomic(out, render(chosen, fmt, system=system).encode("utf-8"))
    return len(chosen)


def split_paths(out: str | Path, fmt: str) -> dict[str, Path]:
    """`data/export.jsonl` → {"train": data/export.train.jsonl, "val": data/export.val.jsonl}."""
    out = Path(out)
    suffix = out.suffix or FORMAT_SUFFIX[fmt]
    stem = out.name[: -len(out.suffix)] if out.suffix else out.name
    return {split: out.with_name(f"{stem}.{split}{suffix}") for split in ("train", "val")}


def export_splits(pairs: Iterable[Pair], out: str | Path, fmt: str, *, system: str | None = None) -> dict[Path, int]:
    """Write the train and val splits to two files next to `out`; returns counts per file."""
    pairs = list(pairs)
    return {
        path: export_pairs(pairs, path, fmt, split, system=system)
        for split, path in split_paths(out, fmt).items()
    }
