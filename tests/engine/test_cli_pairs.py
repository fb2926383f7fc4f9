"""The curation CLI: ingest, pairs validate / stats / export — exit codes and output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.cli import main
from engine.curate.pairs import load_pairs


def essay(title: str, place: str) -> str:
    paragraphs = [
        f"Paragraph {i} of {title} walks down to {place} in the rain, and counts the boats, and "
        f"notices the {['heron', 'kettle', 'gate', 'ledger', 'lamp', 'rope'][i % 6]} number {i}. It ends plainly."
        for i in range(16)
    ]
    return f"# {title}\n\n*A subtitle about {place}*\n\nJan 2, 2025\n\n" + "\n\n".join(paragraphs) + "\n\nShare\n"


@pytest.fixture
def workspace(tmp_path) -> Path:
    """An empty workspace with a few sources in data/sources."""
    sources = tmp_path / "data" / "sources"
    for number, place in enumerate(["the weir", "the ferry", "the mill", "the library"]):
        (sources / "essays").mkdir(parents=True, exist_ok=True)
        (sources / "essays" / f"2025-01-0{number + 1}-essay-{number}.md").write_text(
            essay(f"Essay {place}", place), encoding="utf-8")
    (sources / "notes").mkdir()
    for number in range(6):
        (sources / "notes" / f"2025-02-0{number + 1}-note-{number}.md").write_text(
            f"# Note {number}\n\nA note about the frost on window {number} and the cat, who disapproves.\n",
            encoding="utf-8")
    (sources / "notes" / "2025-03-01-windows.md").write_bytes(
        "# Quotes\n\nIt’s “cold” today, and the river’s grey.\n".encode("cp1252"))
    (sources / "notes" / "2025-03-02-blank.md").write_text("", encoding="utf-8")
    return tmp_path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_ingest_defaults_to_the_workspace_and_reports(workspace, capsys):
    code, out, err = run(capsys, "-w", str(workspace), "ingest")
    assert code == 0
    pairs_path = workspace / "data" / "pairs.jsonl"
    assert out.startswith(f"wrote {pairs_path}: 11 pieces → ")
    assert "no model tokenizer here; lengths estimated at 1.5 tokens a word, budget 512" in err
    assert "2025-03-01-windows.md: not UTF-8" in err  # the warning names the file
    assert "2025-03-02-blank.md: empty file; skipped" in err
    pair_file = load_pairs(pairs_path)
    assert {pair.tier for pair in pair_file.pairs} == {"thesis", "continuation", "paragraph", "note"}
    assert {pair.split for pair in pair_file.pairs} == {"train", "val"}


def test_ingest_refuses_to_overwrite_edits_without_force(workspace, capsys):
    out_path = workspace / "pairs.jsonl"
    sources = str(workspace / "data" / "sources")
    assert run(capsys, "ingest", sources, "--out", str(out_path))[0] == 0
    assert run(capsys, "ingest", sources, "--out", str(out_path))[0] == 0  # unchanged: fine to rewrite

    lines = out_path.read_text(encoding="utf-8").splitlines()
    record = json.loads(lines[2])
    record["response"] += " My own edit."
    lines[2] = json.dumps(record, ensure_ascii=False)
    out_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    edited = out_path.read_bytes()

    code, _, err = run(capsys, "ingest", sources, "--out", str(out_path))
    assert code == 1
    assert f"{out_path}:3: '{record['id']}' differ from what ingest builds now" in err
    assert "--force" in err
    assert out_path.read_bytes() == edited  # untouched

    code, _, _ = run(capsys, "ingest", sources, "--out", str(out_path), "--force")
    assert code == 0
    assert (workspace / "pairs.jsonl.bak").read_bytes() == edited  # the edit is still recoverable
    assert "My own edit." not in out_path.read_text(encoding="utf-8")


def test_ingest_options(workspace, capsys):
    out_path = workspace / "notes-only.jsonl"
    code, out, _ = run(capsys, "ingest", str(workspace / "data" / "sources" / "notes"), "--out", str(out_path),
                       "--tiers", "note", "--val-share", "0", "--dry-run")
    assert code == 0 and out.startswith("dry run: would write") and not out_path.exists()
    code, _, _ = run(capsys, "ingest", str(workspace / "data" / "sources" / "notes"), "--out", str(out_path),
                     "--tiers", "note", "--val-share", "0")
    assert code == 0
    assert {(pair.tier, pair.split) for pair in load_pairs(out_path).pairs} == {("note", "train")}
    assert run(capsys, "ingest", "--tiers", "haiku", "--out", str(out_path))[0] == 2
    assert run(capsys, "ingest", str(workspace / "missing"), "--out", str(out_path))[0] == 2
    assert run(capsys, "ingest", "--val-share", "1.5", "--out", str(out_path))[0] == 2


def test_validate_reports_file_line_problems_and_leaves_the_file(workspace, capsys):
    path = workspace / "bad.jsonl"
    good = {"id": "a", "prompt": "p", "response": "r", "source": "s", "split": "train"}
    path.write_text(
        json.dumps(good) + "\n"
        + "{oops\n"
        + json.dumps({**good, "prompt": "other", "split": "val"}) + "\n",
        encoding="utf-8",
    )
    before = path.read_bytes()
    code, out, err = run(capsys, "-w", str(workspace), "pairs", "validate", str(path), "--no-budgets")
    assert code == 1
    assert out.splitlines() == [
        f"{path}:2: not valid JSON: Expecting property name enclosed in double quotes (column 2)",
        f"{path}:3: duplicate id 'a' (first on line 1)",
        f"{path}:3: source 's' is in both splits (1 train, 1 val pairs): move its pairs to one split "
        "so validation never sees training text",
    ]
    assert "3 errors" in err
    assert path.read_bytes() == before


def test_validate_clean_file_exits_zero_with_summary(workspace, capsys):
    assert run(capsys, "-w", str(workspace), "ingest")[0] == 0
    code, out, _ = run(capsys, "-w", str(workspace), "pairs", "validate")
    assert code == 0
    [summary] = out.splitlines()
    assert summary.startswith(f"{workspace / 'data' / 'pairs.jsonl'}: ") and "no problems" in summary


def test_validate_checks_budgets_with_a_models_tokenizer(workspace, capsys):
    from tests.engine.test_tokens import make_tokenizer_folder

    make_tokenizer_folder(workspace / "data" / "models" / "demo-ar")
    path = workspace / "long.jsonl"
    path.write_text(json.dumps({"id": "long", "prompt": "the river " * 200, "response": "bread " * 400}) + "\n",
                    encoding="utf-8")
    code, out, _ = run(capsys, "-w", str(workspace), "pairs", "validate", str(path))
    assert code == 1
    # 800 words; a tokenizer without chat template or EOS lays a pair out with nothing around it.
    assert out.splitlines() == [
        f"{path}:1: pair 'long' is 800 tokens, over demo-ar's budget of 512; shorten it or truncate it at a sentence"
    ]
    code, out, _ = run(capsys, "-w", str(workspace), "pairs", "validate", str(path), "--no-budgets")
    assert code == 0


def test_validate_warnings_pass_unless_strict(workspace, capsys):
    path = workspace / "near.jsonl"
    text = "the river came up over the third step and the fifth and nobody slept much at all that week"
    path.write_text(
        json.dumps({"id": "a", "prompt": "Write about the flood.", "response": text}) + "\n"
        + json.dumps({"id": "b", "prompt": "Write about the flood!", "response": text + " again"}) + "\n",
        encoding="utf-8",
    )
    code, out, _ = run(capsys, "-w", str(workspace), "pairs", "validate", str(path), "--no-budgets")
    assert code == 0
    assert out.splitlines()[0].startswith(f"{path}:2: warning: pair 'b' is a near-duplicate of 'a'")
    assert run(capsys, "-w", str(workspace), "pairs", "validate", str(path), "--no-budgets", "--strict")[0] == 1


def test_validate_missing_file(workspace, capsys):
    code, _, err = run(capsys, "-w", str(workspace), "pairs", "validate", str(workspace / "nope.jsonl"))
    assert code == 2 and "no such file" in err and "voicebench ingest" in err


def test_stats_counts_and_tokens(workspace, capsys):
    from tests.engine.test_tokens import make_tokenizer_folder

    make_tokenizer_folder(workspace / "data" / "models" / "demo-ar")
    code, _, err = run(capsys, "-w", str(workspace), "ingest")
    assert code == 0 and "lengths counted with demo-ar's tokenizer, budget 512" in err  # --tokenizer auto
    code, out, _ = run(capsys, "-w", str(workspace), "pairs", "stats", "--json")
    assert code == 0
    stats = json.loads(out)
    pair_file = load_pairs(workspace / "data" / "pairs.jsonl")
    assert stats["pairs"] == len(pair_file.pairs)
    assert sum(stats["tiers"].values()) == sum(stats["splits"].values()) == len(pair_file.pairs)
    assert stats["tiers"]["note"] == 7
    assert len(stats["sources"]) == 11
    assert stats["tokens"]["demo-ar"]["budget"] == 512
    assert stats["tokens"]["demo-ar"]["over_budget"] == 0
    assert stats["tokens"]["demo-ar"]["total"] > 0
    code, out, _ = run(capsys, "-w", str(workspace), "pairs", "stats")
    assert code == 0
    assert "tiers:" in out and "demo-ar:" in out and "0 over the budget of 512" in out


def test_export_command(workspace, capsys):
    assert run(capsys, "-w", str(workspace), "ingest")[0] == 0
    out = workspace / "out" / "train.jsonl"
    code, printed, _ = run(capsys, "-w", str(workspace), "pairs", "export", "--format", "messages",
                           "--out", str(out), "--split", "train")
    assert code == 0 and "pairs (messages, split train)" in printed
    train = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    pair_file = load_pairs(workspace / "data" / "pairs.jsonl")
    assert len(train) == sum(pair.split == "train" for pair in pair_file.pairs)
    assert train[0]["messages"][1]["role"] == "assistant"

    code, _, _ = run(capsys, "-w", str(workspace), "pairs", "export", "--format", "text",
                     "--out", str(workspace / "out" / "wren.txt"), "--split", "both")
    assert code == 0
    assert (workspace / "out" / "wren.val.txt").read_text(encoding="utf-8").count("<|endoftext|>") == sum(
        pair.split == "val" for pair in pair_file.pairs)


def test_export_refuses_a_file_with_unreadable_lines(workspace, capsys):
    path = workspace / "bad.jsonl"
    path.write_text('{"id": "a", "prompt": "p", "response": "r"}\n{oops\n', encoding="utf-8")
    out = workspace / "out.jsonl"
    code, _, err = run(capsys, "-w", str(workspace), "pairs", "export", str(path), "--format", "prompt-completion",
                       "--out", str(out))
    assert code == 1 and f"{path}:2: not valid JSON" in err and not out.exists()
    assert run(capsys, "-w", str(workspace), "pairs", "export", str(path), "--format", "prompt-completion",
               "--out", str(out), "--allow-errors")[0] == 0
    assert len(out.read_text(encoding="utf-8").splitlines()) == 1


def test_every_flag_has_help():
    from engine.cli import build_parser

    parser = build_parser()
    stack = [parser]
    seen = 0
    while stack:
        current = stack.pop()
        for action in current._actions:
            if action.dest == "help":
                continue
            if hasattr(action, "choices") and isinstance(action.choices, dict):
                if current is parser:
                    stack.extend(action.choices[name] for name in ("ingest", "pairs"))
                else:
                    stack.extend(action.choices.values())
                continue
            if current is not parser:
                seen += 1
                assert action.help, f"{current.prog}: {action.dest} has no help"
    assert seen >= 15


def test_ingest_with_a_models_tokenizer_and_budget(workspace, capsys):
    from engine.curate.pairs import pair_token_count
    from engine.curate.tokens import token_counter
    from tests.engine.test_tokens import make_tokenizer_folder

    folder = make_tokenizer_folder(workspace / "data" / "models" / "demo-ar")
    out = workspace / "tight.jsonl"
    code, _, _ = run(capsys, "-w", str(workspace), "ingest", "--tokenizer", "demo-ar", "--budget", "90", "--out", str(out))
    assert code == 0
    counter = token_counter(folder)
    lengths = [pair_token_count(pair, counter.count) for pair in load_pairs(out).pairs]
    assert lengths and max(lengths) <= 90
    code, _, err = run(capsys, "-w", str(workspace), "ingest", "--tokenizer", "no-such-model", "--out", str(out))
    assert code == 2 and "no-such-model" in err
