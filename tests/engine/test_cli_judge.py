"""`voicebench canary` and `voicebench report` through the real argument parser."""

from __future__ import annotations

import csv
import io
import json

from engine.judge import store
from engine.cli import main
from tests.engine.judge_data import add_generations

ONE_CANARY = """\
[[canary]]
id = "river-short"
kind = "known-topic-short"
prompt = "Write about the river."
max_new_tokens = 8
"""


def make_workspace(tmp_path, repo_root):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "canaries.toml").write_text(ONE_CANARY, encoding="utf-8")
    (tmp_path / "data" / "rubric.toml").write_text((repo_root / "data" / "rubric.toml").read_text(encoding="utf-8"),
                                                   encoding="utf-8")
    (tmp_path / "voicebench.toml").write_text("[sampler]\nsteps = 4\nblock_length = 8\n", encoding="utf-8")
    return tmp_path


def test_report_prints_markdown_and_writes_csv_and_json(tmp_path, repo_root, capsys):
    root = make_workspace(tmp_path, repo_root)
    db = store.open_store(root / "judgments.db")
    add_generations(db, ["base", "tuned"], canary_count=2)
    db.close()
    assert main(["-w", str(root), "report"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# voicebench leaderboard") and "| base |" in out
    assert "voice" in out  # the rubric was seeded from data/rubric.toml on first open
    assert main(["-w", str(root), "report", "--format", "csv", "--out", str(root / "board.csv")]) == 0
    rows = list(csv.DictReader(io.StringIO((root / "board.csv").read_text(encoding="utf-8"))))
    assert [row["label"] for row in rows] == ["base", "tuned"]
    assert main(["-w", str(root), "report", "--format", "json", "--out", str(root / "out" / "report.json")]) == 0
    data = json.loads((root / "out" / "report.json").read_text(encoding="utf-8"))
    assert {c["name"] for c in data["criteria"]} >= {"voice", "coherence"}
    assert not list((root / "out").glob("*.tmp"))  # the atomic write left no temp file


def test_canary_command_stores_once_and_prints_json_events(tmp_path, repo_root, tiny_masked_dir, capsys):
    root = make_workspace(tmp_path, repo_root)
    args = ["-w", str(root), "canary", "--model", str(tiny_masked_dir), "--json"]
    assert main(args) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["event"] for e in events] == ["canary_start", "canary", "canary_done"]
    assert events[1]["reused"] is False and events[1]["canary_id"] == "river-short"
    assert main(args[:-1]) == 0  # text mode, second run
    out = capsys.readouterr().out
    assert "river-short v1 (stored already)" in out and "0 generated, 1 reused" in out
    db = store.open_store(root / "judgments.db")
    assert db["generations"].count == 1


def test_canary_command_reports_file_errors_with_exit_code_2(tmp_path, repo_root, tiny_masked_dir, capsys):
    root = make_workspace(tmp_path, repo_root)
    (root / "data" / "canaries.toml").write_text(ONE_CANARY.replace("known-topic-short", "gossip"), encoding="utf-8")
    assert main(["-w", str(root), "canary", "--model", str(tiny_masked_dir)]) == 2
    err = capsys.readouterr().err
    assert "canaries.toml:3: canary 'river-short': kind: must be one of" in err
    (root / "data" / "canaries.toml").write_text(ONE_CANARY, encoding="utf-8")
    assert main(["-w", str(root), "canary", "--model", str(root / "no-such-model")]) == 2
    assert "no such folder" in capsys.readouterr().err
