"""`voicebench demo --headless` end to end: pairs, canaries, a short training run, report."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from engine.cli import main
from engine.cli.demo_cmd import DemoError, run_headless

PAIR_TEXTS = [
    "The river keeps its own counsel, and the town keeps the river's.",
    "I wrote this in the kitchen, with the window open and the kettle going.",
    "Every essay is an argument with the person I was last year.",
    "Notes on walking, bread, weather, letters, small repairs and long winters.",
]
ONE_CANARY = """\
[[canary]]
id = "river-short"
kind = "known-topic-short"
prompt = "Write a short note about the river."
max_new_tokens = 12
"""


def small_workspace(root: Path, model_dir: Path, repo_root: Path) -> Path:
    """A workspace shaped like the demo: tiny model as demo-ar, a dozen pairs, one canary."""
    (root / "data" / "models").mkdir(parents=True)
    shutil.copytree(model_dir, root / "data" / "models" / "demo-ar")
    shutil.copy(repo_root / "data" / "rubric.toml", root / "data" / "rubric.toml")
    (root / "data" / "canaries.toml").write_text(ONE_CANARY, encoding="utf-8")
    with (root / "data" / "pairs.jsonl").open("w", encoding="utf-8") as handle:
        for index in range(12):
            handle.write(json.dumps({
                "id": f"p{index}", "prompt": f"Write note {index}.", "response": PAIR_TEXTS[index % 4],
                "source": f"note-{index % 4}.md", "tier": "manual", "split": "val" if index % 4 == 3 else "train",
                "tags": [], "notes": "",
            }) + "\n")
    return root


@pytest.mark.slow
def test_headless_demo_trains_and_reports_on_a_small_workspace(tmp_path, tiny_llama_dir, repo_root):
    root = small_workspace(tmp_path / "ws", tiny_llama_dir, repo_root)
    lines: list[str] = []
    data = run_headless(root, max_steps=2, say=lines.append)
    text = "\n".join(lines)
    for stage in ("[1/5] pairs", "[2/5] canaries", "[3/5] training", "[4/5] canaries", "[5/5] report"):
        assert stage in text
    assert "12 pairs (9 train, 3 val)" in text
    labels = [row["label"] for row in data["leaderboard"]]
    assert labels[0] == "demo-ar" and len(labels) == 2 and labels[1].endswith("/checkpoint-2")
    assert all(row["metrics"] for row in data["leaderboard"])  # automatic metrics for both
    assert "# voicebench leaderboard" in text
    assert (root / "judgments.db").exists() and any((root / "runs").iterdir())


def test_headless_demo_explains_a_missing_demo_model(tmp_path):
    (tmp_path / "data").mkdir()
    with pytest.raises(DemoError, match="python -m engine.models.demo"):
        run_headless(tmp_path, say=lambda line: None)
    assert main(["-w", str(tmp_path), "demo", "--headless"]) == 2


@pytest.mark.slow
def test_headless_demo_on_the_bundled_workspace(repo_root, tmp_path):
    if not (repo_root / "data" / "models" / "demo-ar" / "config.json").exists():
        pytest.skip("data/models/demo-ar is not built yet (python -m engine.models.demo builds it)")
    if not (repo_root / "data" / "pairs.jsonl").exists():
        pytest.skip("data/pairs.jsonl is not made yet (voicebench ingest makes it)")
    # A copy, so the repo's runs/ and judgments.db stay as the user left them.
    root = tmp_path / "demo"
    (root / "data").mkdir(parents=True)
    for name in ("pairs.jsonl", "canaries.toml", "rubric.toml"):
        shutil.copy(repo_root / "data" / name, root / "data" / name)
    shutil.copytree(repo_root / "data" / "models" / "demo-ar", root / "data" / "models" / "demo-ar")
    lines: list[str] = []
    data = run_headless(root, max_steps=1, set_name="river-short", evaluate=False, say=lines.append)
    assert len(data["leaderboard"]) == 2
    assert {len(c["outputs"]) for c in data["canaries"]} == {2}  # base and trained side by side
