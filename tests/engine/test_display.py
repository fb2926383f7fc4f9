"""No control characters reach a terminal: safe_text, and the CLI printers that use it."""

from __future__ import annotations

import json

import pytest

from engine.cli import main
from engine.display import safe_text, terminal_json
from engine.judge import store
from tests.engine.judge_data import add_generations

OSC_TITLE = "\x1b]0;pwned\x07"
OSC_TITLE_ST = "\x1b]2;pwned\x1b\\"
CSI_CLEAR = "\x1b[2J\x1b[H"
C1_CSI = "\x9b2J"
HOSTILE = f"river{OSC_TITLE}{CSI_CLEAR}{OSC_TITLE_ST}{C1_CSI}\r\x7f\x00end"
RAW = ("\x1b", "\x07", "\x9b", "\x7f", "\x00", "\r")


def assert_no_raw_controls(text: str) -> None:
    assert not any(char in text for char in RAW), repr(text)


def test_safe_text_shows_controls_as_escapes_and_keeps_the_rest():
    assert safe_text("plain — “quoted”, tab\tand\nnewline") == "plain — “quoted”, tab\tand\nnewline"
    assert safe_text(CSI_CLEAR) == "\\x1b[2J\\x1b[H"
    assert safe_text(OSC_TITLE) == "\\x1b]0;pwned\\x07"
    assert safe_text(OSC_TITLE_ST) == "\\x1b]2;pwned\\x1b\\"
    assert safe_text("\x9b\x85\x7f\r\x00") == "\\x9b\\x85\\x7f\\x0d\\x00"
    assert safe_text("lone \ud800 surrogate") == "lone \ufffd surrogate"
    assert_no_raw_controls(safe_text(HOSTILE))
    safe_text(HOSTILE).encode("utf-8")  # printable on any UTF-8 terminal


def test_terminal_json_is_the_same_value_without_raw_controls():
    value = {"text": HOSTILE, "surrogate": "\udcff"}
    line = terminal_json(value)
    assert_no_raw_controls(line)
    line.encode("utf-8")
    assert json.loads(line) == value


def write_hostile_pairs(root):
    (root / "data").mkdir()
    hostile = HOSTILE.replace("\x00", "")  # a NUL makes the line a problem line, not a pair (test_pairs_hardening)
    pairs = [
        {"id": f"note-{index}{CSI_CLEAR}", "prompt": f"Write {hostile}", "response": f"The river {hostile}",
         "source": f"src{hostile}", "tier": "note", "split": "train", "tags": [hostile]}
        for index in range(2)
    ]
    pairs.append(dict(pairs[0]))  # a duplicate id, so validate prints problems naming it
    (root / "data" / "pairs.jsonl").write_text("".join(json.dumps(pair) + "\n" for pair in pairs), encoding="utf-8")
    return root


@pytest.mark.parametrize("argv", [["pairs", "stats"], ["pairs", "stats", "--json"], ["pairs", "validate"]])
def test_pairs_printers_show_no_raw_escapes(tmp_path, capsys, argv):
    root = write_hostile_pairs(tmp_path)
    (root / "none-here").mkdir()  # a model folder with no tokenizer: stats counts no tokens
    main(["-w", str(root), *argv, "--no-budgets" if argv[1] == "validate" else f"--model={root / 'none-here'}"])
    out, err = capsys.readouterr()
    assert ("note-" if argv[1] == "validate" else "src") in out + err
    assert_no_raw_controls(out + err)


def test_report_shows_no_raw_escapes_in_labels_or_outputs(tmp_path, capsys):
    (tmp_path / "data").mkdir()
    db = store.open_store(tmp_path / "judgments.db")
    add_generations(db, [f"base{OSC_TITLE}", f"tuned{CSI_CLEAR}"], canary_count=1,
                    text_of=lambda label, index: f"output {HOSTILE}")
    db.close()
    for fmt in ("markdown", "json", "csv"):
        assert main(["-w", str(tmp_path), "report", "--format", fmt]) == 0
        out, err = capsys.readouterr()
        assert "base" in out and ("output" in out or fmt == "csv")  # csv holds the leaderboard only
        assert_no_raw_controls(out + err)


@pytest.mark.parametrize("as_json", [False, True])
def test_canary_printer_shows_no_raw_escapes(tmp_path, capsys, monkeypatch, as_json):
    from engine.judge import canary
    from tests.engine.test_bad_inputs import make_workspace

    def hostile_run(db, workspace, model, **options):
        yield canary.CanaryStart(label=f"base{OSC_TITLE}", total=1, new=1)
        yield canary.CanaryResult(canary_id="river-short", version=1, generation_id=1, reused=False,
                                  text=f"output {HOSTILE}", token_count=3, seconds=0.1)
        yield canary.CanaryDone(label=f"base{OSC_TITLE}", generated=1, reused=0)

    monkeypatch.setattr(canary, "run_canaries", hostile_run)
    root = make_workspace(tmp_path)
    argv = ["-w", str(root), "canary", "--model", str(root / "model"), *(["--json"] if as_json else [])]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert "output river" in out
    assert_no_raw_controls(out + err)
    if as_json:
        assert [json.loads(line)["event"] for line in out.splitlines()] == ["canary_start", "canary", "canary_done"]
        assert json.loads(out.splitlines()[1])["text"] == f"output {HOSTILE}"  # the value itself is exact
