"""A corpus of bad inputs, run through every command that reads them.

Each case writes one bad file (or passes one bad flag) into a small workspace and runs the
command in-process through `engine.cli.main`. Every case asserts: no traceback, exit status
2, a message that names the file and line (or the key/flag), and no file in the workspace
created or changed (names, sizes and modification times compared before and after).
The settings readers also get property tests over random text: only SettingsError, ever.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.cli import main
from engine.judge.canary import CANARIES_SCHEMA
from engine.judge.rubric import RUBRIC_SCHEMA
from engine.settings import SettingsError, read_settings
from engine.workspace import settings_schema

CANARIES = """\
[[canary]]
id = "river-short"
kind = "known-topic-short"
prompt = "Write about the river."
max_new_tokens = 8
"""
RUBRIC = """\
[[criterion]]
name = "voice"
description = "Sounds like the writer."
scale = [1, 5]

[[flag]]
name = "refusal"
key = "r"
"""
PAIR = {"id": "river-note", "prompt": "Write a note about the river.", "response": "The river rose.",
        "source": "river", "tier": "note", "split": "train", "tags": ["note"]}

# Every command that reads voicebench.toml, with the arguments that get it that far.
COMMANDS = {
    "pairs validate": ["pairs", "validate"],
    "pairs stats": ["pairs", "stats"],
    "pairs export": ["pairs", "export", "--format", "messages", "--out", "{root}/export.jsonl"],
    "ingest": ["ingest", "--tokenizer", "none"],
    "generate": ["generate", "--prompt", "hello"],
    "canary": ["canary", "--model", "{root}/model"],
    "report": ["report"],
    "train": ["train", "--max-steps", "1"],
    "demo": ["demo", "--headless"],
}


def make_workspace(root: Path) -> Path:
    (root / "data" / "sources").mkdir(parents=True)
    (root / "data" / "canaries.toml").write_text(CANARIES, encoding="utf-8")
    (root / "data" / "rubric.toml").write_text(RUBRIC, encoding="utf-8")
    (root / "data" / "pairs.jsonl").write_text(json.dumps(PAIR) + "\n", encoding="utf-8")
    (root / "data" / "sources" / "river.md").write_text("# The river\n\nThe river rose in March.\n", encoding="utf-8")
    (root / "model").mkdir()
    (root / "model" / "config.json").write_text('{"model_type": "gpt2"}', encoding="utf-8")
    (root / "voicebench.toml").write_text("[sampler]\nsteps = 4\n", encoding="utf-8")
    return root


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under the root with its size and modification time."""
    found = {}
    for folder, folders, files in os.walk(root):
        for name in folders + files:
            path = Path(folder) / name
            info = path.lstat()
            found[str(path.relative_to(root))] = (info.st_size, info.st_mtime_ns)
    return found


def run_refused(root: Path, argv: list[str], capsys, *, expect: list[str], code: int = 2) -> str:
    """Run a command that must refuse; return its stderr after the common checks."""
    before = snapshot(root)
    argv = [part.format(root=root) for part in argv]
    assert main(["-w", str(root), *argv]) == code, capsys.readouterr()
    out, err = capsys.readouterr()
    assert "Traceback" not in err + out
    for fragment in expect:
        assert fragment in err + out, (argv, err, out)
    assert snapshot(root) == before, f"{argv} changed the workspace"
    return err


# voicebench.toml -----------------------------------------------------------------------------

BAD_CONFIGS = {
    "bad toml": (b"[sampler\nsteps = 4\n", "voicebench.toml:1: not valid TOML"),
    "invalid utf-8": (b"[sampler]\nsteps = 4\n# caf\xe9\n", "voicebench.toml:3: not UTF-8"),
    "models = 5": (b"models = 5\n", "voicebench.toml:1: models: must be tables"),
    "context_length = 'big'": (b"[models.mine]\npath = \"x\"\ncontext_length = 'big'\n",
                               "voicebench.toml:3: [models.mine] context_length: must be a whole number"),
    "path = 5": (b"[models.mine]\npath = 5\n", "voicebench.toml:2: [models.mine] path: must be a string"),
    "trust_remote_code = 'false'": (b"[models.mine]\npath = \"x\"\ntrust_remote_code = \"false\"\n",
                                    "voicebench.toml:3: [models.mine] trust_remote_code: must be true or false"),
    "unknown key": (b"[sampler]\nsteps = 4\nremaskin = \"random\"\n",
                    "voicebench.toml:3: [sampler] remaskin: unknown key. Did you mean `remasking`?"),
    "unknown table": (b"[trian]\nlr = 0.1\n", "voicebench.toml:1: [trian]: unknown table. Did you mean `train`?"),
    "nan": (b"[sampler]\ntemperature = nan\n", "voicebench.toml:2: [sampler] temperature: must be a finite number"),
    "bool as number": (b"[train]\nmax_steps = true\n", "voicebench.toml:2: [train] max_steps: must be a whole number"),
    "out of range": (b"[budgets]\ngpt2 = 0\n", "voicebench.toml:2: [budgets] gpt2: must be at least 1"),
}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("case", BAD_CONFIGS)
def test_a_bad_voicebench_toml_stops_every_command(tmp_path, capsys, command, case):
    root = make_workspace(tmp_path)
    content, message = BAD_CONFIGS[case]
    (root / "voicebench.toml").write_bytes(content)
    run_refused(root, COMMANDS[command], capsys, expect=[message])


# rubric.toml and canaries.toml ---------------------------------------------------------------

BAD_RUBRICS = {
    "bad toml": (b"[[criterion]\n", "rubric.toml:1: not valid TOML"),
    "invalid utf-8": (b"[[criterion]]\nname = \"voice\xff\"\n", "rubric.toml:2: not UTF-8"),
    "wrong type": (RUBRIC.replace("scale = [1, 5]", "scale = \"1-5\"").encode(),
                   "rubric.toml:4: criterion 'voice': scale: must be a list of whole numbers"),
    "unknown key": (RUBRIC.replace("scale =", "scael =").encode(),
                    "rubric.toml:4: criterion 'voice': scael: unknown key. Did you mean `scale`?"),
    "unknown table": (RUBRIC.replace("[[flag]]", "[[flags]]").encode(),
                      "rubric.toml:6: flags: unknown table. Did you mean `flag`?"),
}


@pytest.mark.parametrize("command", ["canary", "report"])
@pytest.mark.parametrize("case", BAD_RUBRICS)
def test_a_bad_rubric_stops_the_commands_that_seed_it(tmp_path, capsys, command, case):
    root = make_workspace(tmp_path)
    content, message = BAD_RUBRICS[case]
    (root / "data" / "rubric.toml").write_bytes(content)
    run_refused(root, COMMANDS[command], capsys, expect=[message])


BAD_CANARIES = {
    "bad toml": (b"[[canary]\n", "canaries.toml:1: not valid TOML"),
    "invalid utf-8": (CANARIES.encode().replace(b"river.", b"river\xc3."), "canaries.toml:4: not UTF-8"),
    "wrong type": (CANARIES.replace("= 8", "= \"8\"").encode(),
                   "canaries.toml:5: canary 'river-short': max_new_tokens: must be a whole number"),
    "out of range": (CANARIES.replace("= 8", "= 0").encode(),
                     "canaries.toml:5: canary 'river-short': max_new_tokens: must be at least 1"),
    "unknown key": (CANARIES.replace("prompt =", "promt =").encode(),
                    "canaries.toml:4: canary 'river-short': promt: unknown key. Did you mean `prompt`?"),
    "unknown table": (b"[canaries]\nid = 1\n", "canaries.toml:1: [canaries]: unknown table. Did you mean `canary`?"),
}


@pytest.mark.parametrize("case", BAD_CANARIES)
def test_a_bad_canaries_file_stops_canary(tmp_path, capsys, case):
    root = make_workspace(tmp_path)
    content, message = BAD_CANARIES[case]
    (root / "data" / "canaries.toml").write_bytes(content)
    run_refused(root, COMMANDS["canary"], capsys, expect=[message])


# Flags, sources and other files ----------------------------------------------------------------

@pytest.mark.parametrize("flags", [["--cfg-scale", "nan"], ["--temperature", "nan"], ["--temperature", "inf"],
                                   ["--threshold", "nan"], ["--cfg-scale", "inf"]])
def test_generate_refuses_nan_and_infinity(tmp_path, capsys, flags):
    root = make_workspace(tmp_path)
    name = flags[0].removeprefix("--").replace("-", "_")
    run_refused(root, ["generate", "--prompt", "hello", *flags], capsys, expect=[f"{name} {flags[1]}", "finite"])


def test_ingest_refuses_a_binary_file_and_writes_no_pairs(tmp_path, capsys):
    root = make_workspace(tmp_path)
    binary = root / "data" / "sources" / "photo.md"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 40)
    run_refused(root, ["ingest", str(binary), "--tokenizer", "none", "--out", str(root / "new.jsonl")], capsys,
                expect=["photo.md", "not text: a NUL byte", "Nothing written"])


def test_ingest_skips_a_symlink_loop_and_writes_no_empty_pairs_file(tmp_path, capsys):
    root = make_workspace(tmp_path)
    folder = root / "looped"
    folder.mkdir()
    (folder / "again").symlink_to(folder, target_is_directory=True)
    (folder / "self.md").symlink_to(folder / "self.md")
    err = run_refused(root, ["ingest", str(folder), "--tokenizer", "none"], capsys,
                      expect=["looped", "Nothing written"])
    assert "again: symlink back to" in err and "self.md: symlink loop or broken link; skipped" in err


@pytest.mark.parametrize("command", ["pairs validate", "pairs stats", "pairs export"])
def test_a_pairs_path_that_is_a_folder(tmp_path, capsys, command):
    root = make_workspace(tmp_path)
    (root / "folder.jsonl").mkdir()
    argv = [*COMMANDS[command][:2], str(root / "folder.jsonl"), *COMMANDS[command][2:]]
    run_refused(root, argv, capsys, expect=["folder.jsonl"])


@pytest.mark.parametrize("command", ["canary", "report"])
def test_a_judgments_db_that_is_not_sqlite_is_refused(tmp_path, capsys, command):
    root = make_workspace(tmp_path)
    (root / "judgments.db").write_bytes(b"these are my notes, not a database\n" * 200)
    run_refused(root, COMMANDS[command], capsys, expect=["judgments.db"])


def test_an_unexpected_error_is_one_line_not_a_traceback(tmp_path, capsys, monkeypatch):
    import engine.cli.report_cmd as report_cmd

    def broken(args):
        raise KeyError("surprise")

    monkeypatch.setattr(report_cmd, "run", broken)  # registered afresh by main()
    assert main(["-w", str(make_workspace(tmp_path)), "report"]) == 3
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert err.startswith("voicebench report: internal error: KeyError") and "VOICEBENCH_TRACEBACK=1" in err


# Property tests: the readers raise SettingsError and nothing else ----------------------------

SCHEMAS = {"voicebench.toml": settings_schema(), "rubric.toml": RUBRIC_SCHEMA, "canaries.toml": CANARIES_SCHEMA}
FRAGMENTS = st.sampled_from([
    "[models.x]\n", "[sampler]\n", "[train]\n", "[[criterion]]\n", "[[canary]]\n", "[[flag]]\n", "[budgets]\n",
    "path = ", "name = ", "id = ", "steps = ", "scale = ", "anchors = ", "trust_remote_code = ", "kind = ",
    "max_new_tokens = ", "key = ", "description = ", "prompt = ", "temperature = ",
    '"x"', "'y'", "5", "-1", "0", "nan", "inf", "true", "1e400", "[1, 5]", "[5, 1]", "{ 1 = \"a\" }", '"""\nq\n"""',
    "\n", " ", "#", "=", "[", "]", ".", '"', "\x00", "\ud800", "é",
])


def _check_reader(tmp_path: Path, name: str, data: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    try:
        read_settings(path, SCHEMAS[name])
    except SettingsError as error:
        assert str(error).startswith(str(path)) and "\n" not in str(error)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(sorted(SCHEMAS)), parts=st.lists(FRAGMENTS, max_size=30))
def test_settings_readers_raise_only_settings_errors_on_toml_like_text(tmp_path, name, parts):
    _check_reader(tmp_path, name, "".join(parts).encode("utf-8", "surrogatepass"))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(sorted(SCHEMAS)), data=st.binary(max_size=200))
def test_settings_readers_raise_only_settings_errors_on_random_bytes(tmp_path, name, data):
    _check_reader(tmp_path, name, data)


def test_report_on_a_workspace_with_no_judgments_creates_no_store(tmp_path, capsys):
    root = make_workspace(tmp_path)
    before = snapshot(root)
    assert main(["-w", str(root), "report"]) == 0
    assert "# voicebench leaderboard" in capsys.readouterr().out
    assert snapshot(root) == before
