"""Hostile inputs the corpus in test_bad_inputs.py does not cover, one case per defect found.

Same contract: each case runs a command in-process through `engine.cli.main` on a small
workspace and asserts exit status 2, no traceback, a message naming what and where, and
no file in the workspace created or changed. The only model loaded is a tiny random GPT-2.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.cli import main
from tests.engine.test_bad_inputs import make_workspace, run_refused, snapshot

# train: flags and run config files -------------------------------------------------------------

BAD_TRAIN_FLAGS = {
    "epochs inf": (["--max-steps", "0", "--epochs", "inf"], "epochs = inf: must be a finite number"),
    "epochs nan": (["--max-steps", "0", "--epochs", "nan"], "epochs = nan: must be a finite number"),
    "lr inf": (["--lr", "inf"], "lr = inf: must be a finite number"),
    "weight decay nan": (["--weight-decay", "nan"], "weight_decay = nan: must be a finite number"),
    "weight decay negative": (["--weight-decay", "-1"], "weight_decay = -1.0: must be at least 0"),
    "save limit 0": (["--save-limit", "0"], "save_limit = 0: must be at least 1"),
    "lora alpha 0": (["--lora-alpha", "0"], "lora_alpha = 0: must be at least 1"),
    "canary tokens 0": (["--canary-max-new-tokens", "0"], "canary_max_new_tokens = 0: must be at least 1"),
    "canary temperature nan": (["--canary-temperature", "nan"], "canary_temperature = nan: must be a finite"),
    "canary steps negative": (["--canary-steps", "-5"], "canary_steps = -5: must be at least 1"),
    "seed negative": (["--seed", "-1"], "seed = -1: must be at least 0"),
    "no lora targets": (["--lora-targets", ","], "lora_targets = []: names no module"),
}


@pytest.mark.parametrize("case", BAD_TRAIN_FLAGS)
def test_train_refuses_out_of_range_flags_before_a_run_folder_exists(tmp_path, capsys, case):
    root = make_workspace(tmp_path)
    flags, message = BAD_TRAIN_FLAGS[case]
    run_refused(root, ["train", "--max-steps", "1", *flags], capsys, expect=[message])


def test_train_refuses_an_unknown_scheduler_as_a_flag_and_in_voicebench_toml(tmp_path, capsys):
    root = make_workspace(tmp_path)
    with pytest.raises(SystemExit) as exit_info:  # argparse's own choices check
        main(["-w", str(root), "train", "--scheduler", "bogus"])
    assert exit_info.value.code == 2 and "invalid choice: 'bogus'" in capsys.readouterr().err
    (root / "voicebench.toml").write_text('[train]\nscheduler = "cosine_with_min_lr"\n', encoding="utf-8")
    run_refused(root, ["train", "--max-steps", "1"], capsys,
                expect=["voicebench.toml:2: [train] scheduler: must be one of linear, cosine"])


BAD_RUN_CONFIGS = {
    "label a number": (b"max_steps = 1\nlabel = 5\n", "config.toml:2: label = 5: must be a string"),
    "batch size a word": (b'batch_size = "four"\n', "config.toml:1: batch_size = 'four': must be a whole number"),
    "batch size a fraction": (b"batch_size = 4.5\n", "config.toml:1: batch_size = 4.5: must be a whole number"),
    "targets a string": (b'lora_targets = "c_attn"\n', "config.toml:1: lora_targets = 'c_attn': must be a list"),
    "grad norm nan": (b"\n\nmax_grad_norm = nan\n", "config.toml:3: max_grad_norm = nan: must be a finite number"),
    "invalid utf-8": (b"max_steps = 1\nlabel = \"caf\xe9\"\n", "config.toml:2: not UTF-8 text"),
    "huge integer": (b"max_steps = 1" + b"0" * 5000 + b"\n", "config.toml: not usable TOML"),
}


@pytest.mark.parametrize("case", BAD_RUN_CONFIGS)
def test_train_refuses_a_bad_run_config_naming_its_line(tmp_path, capsys, case):
    root = make_workspace(tmp_path)
    content, message = BAD_RUN_CONFIGS[case]
    (root / "old-run").mkdir()
    (root / "old-run" / "config.toml").write_bytes(content)
    run_refused(root, ["train", "--config", "old-run/config.toml"], capsys, expect=[message])


def test_train_reads_a_run_config_with_a_byte_order_mark_and_refuses_a_folder(tmp_path, capsys):
    from engine.train.config import load_config

    path = tmp_path / "config.toml"
    path.write_bytes(b"\xef\xbb\xbfmax_steps = 3\r\nmethod = \"dpo\"\r\n")
    config = load_config(path)
    assert (config.max_steps, config.method) == (3, "dpo")
    root = make_workspace(tmp_path / "ws")
    (root / "old-run").mkdir()
    run_refused(root, ["train", "--config", "old-run"], capsys, expect=["old-run: is a folder"])



# Files the commands write: --out that is a folder or under a file --------------------------

def test_report_out_a_folder_names_that_folder_not_a_temporary_file(tmp_path, capsys):
    root = make_workspace(tmp_path)
    err = run_refused(root, ["report", "--out", str(root / "data")], capsys, expect=[f"{root / 'data'}: is a directory"])
    assert ".tmp" not in err


def test_report_out_under_a_file_names_the_file(tmp_path, capsys):
    root = make_workspace(tmp_path)
    run_refused(root, ["report", "--out", str(root / "data" / "pairs.jsonl" / "report.md")], capsys,
                expect=[f"{root / 'data' / 'pairs.jsonl'}: not a directory"])


# versions and export: damaged checkpoints, and no judgments.db made by a refusal ---------------

def _checkpoint(root, adapter_config: bytes, *, run_json: bytes | None = None, config_toml: bytes | None = None):
    import numpy
    from safetensors.numpy import save_file

    folder = root / "runs" / "r1" / "checkpoints" / "checkpoint-2"
    folder.mkdir(parents=True)
    save_file({"a": numpy.zeros(2, dtype=numpy.float32)}, str(folder / "adapter_model.safetensors"))
    (folder / "adapter_config.json").write_bytes(adapter_config)
    if run_json is not None:
        (root / "runs" / "r1" / "run.json").write_bytes(run_json)
    if config_toml is not None:
        (root / "runs" / "r1" / "config.toml").write_bytes(config_toml)
    return folder


GOOD_ADAPTER = b'{"base_model_name_or_path": "demo-ar", "peft_type": "LORA"}'
DAMAGED_CHECKPOINTS = {
    "adapter config a list": ({"adapter_config": b"[1]"}, "adapter_config.json: holds a JSON list, not an object"),
    "adapter config not utf-8": ({"adapter_config": b"\xff\xfe{}"}, "adapter_config.json:1: not UTF-8 text"),
    "adapter config without peft_type": ({"adapter_config": b'{"r": 4}'}, "adapter_config.json: no `peft_type`"),
    "run.json not json": ({"adapter_config": GOOD_ADAPTER, "run_json": b"{bad"}, "run.json:1: not valid JSON"),
    "run.json a list": ({"adapter_config": GOOD_ADAPTER, "run_json": b"[]"}, "run.json: holds a JSON list"),
    "config.toml not toml": ({"adapter_config": GOOD_ADAPTER, "config_toml": b"bad toml ["},
                             "config.toml: not readable TOML"),
}


@pytest.mark.parametrize("command", [["versions", "gate"], ["versions", "promote"], ["export", "--out", "{root}/out"]])
@pytest.mark.parametrize("case", DAMAGED_CHECKPOINTS)
def test_a_damaged_checkpoint_is_refused_by_name_and_no_store_is_made(tmp_path, capsys, command, case):
    root = make_workspace(tmp_path)
    files, message = DAMAGED_CHECKPOINTS[case]
    folder = _checkpoint(root, files["adapter_config"], run_json=files.get("run_json"),
                         config_toml=files.get("config_toml"))
    argv = [*command[:2], str(folder), *command[2:]] if command[0] == "versions" else ["export", str(folder),
                                                                                        *command[1:]]
    run_refused(root, argv, capsys, expect=[message])


def test_a_damaged_shard_index_is_refused_by_name(tmp_path, capsys):
    root = make_workspace(tmp_path)
    (root / "full").mkdir()
    (root / "full" / "config.json").write_text('{"model_type": "gpt2"}', encoding="utf-8")
    index = root / "full" / "model.safetensors.index.json"
    index.write_text('{"weight_map": 5}', encoding="utf-8")
    run_refused(root, ["versions", "gate", "full"], capsys, expect=["model.safetensors.index.json: no `weight_map`"])
    index.write_text("{bad", encoding="utf-8")
    run_refused(root, ["export", "full", "--out", "out"], capsys, expect=["model.safetensors.index.json:1: not valid"])


@pytest.mark.parametrize("argv", [["versions", "list"], ["versions", "show", "v1"], ["versions", "rollback", "v1"],
                                  ["versions", "show", "../../etc"]])
def test_versions_reading_an_unjudged_workspace_makes_no_judgments_db(tmp_path, capsys, argv):
    root = make_workspace(tmp_path)
    before = snapshot(root)
    code = main(["-w", str(root), *argv])
    out, err = capsys.readouterr()
    assert code == (0 if argv[1] == "list" else 2) and "Traceback" not in err
    assert "no version" in err or "no versions yet" in out
    assert snapshot(root) == before


# models: a model folder with a broken config.json ------------------------------------------

BROKEN_CONFIGS = {
    "a list": ("[]", "config.json: holds a JSON list, not an object"),
    "a size as text": ('{"model_type": "gpt2", "n_embd": "x", "n_layer": 2, "vocab_size": 5}',
                       "config.json: a size is not a whole number"),
    "a size null": ('{"model_type": "llama", "hidden_size": null, "intermediate_size": 2, "num_hidden_layers": 1, '
                    '"vocab_size": 3}', "config.json: a size is not a whole number"),
    "a size missing": ('{"model_type": "gpt2", "n_embd": 4}', "config.json: no `n_layer`"),
}


@pytest.mark.parametrize("case", BROKEN_CONFIGS)
def test_models_reports_a_broken_config_json_instead_of_failing_or_saying_nothing(tmp_path, capsys, case):
    root = make_workspace(tmp_path)
    content, message = BROKEN_CONFIGS[case]
    (root / "model" / "config.json").write_text(content, encoding="utf-8")
    run_refused(root, ["models", str(root / "model")], capsys, expect=[message])


@pytest.mark.parametrize("names", [["nosuch"], ["a b", "ü"], ["../../nowhere"]])
def test_voice_refuses_an_unknown_contestant_without_making_judgments_db(tmp_path, capsys, names):
    root = make_workspace(tmp_path)
    run_refused(root, ["voice", *names], capsys, expect=[f"{names[0]!r} is neither a contestant"])


# --out onto the workspace's own files: refused, the file kept ---------------------------------

OUT_ONTO_OWN_FILES = {
    "pairs export over its own input": (["pairs", "export", "--format", "text", "--out", "{root}/data/pairs.jsonl"],
                                        "is the pairs file being exported"),
    "report over the pairs": (["report", "--out", "{root}/data/pairs.jsonl"], "is the workspace's pairs file"),
    "report over voicebench.toml": (["report", "--out", "{root}/voicebench.toml"], "is the workspace's settings"),
    "prefs over the rubric": (["prefs", "export", "--out", "data/rubric.toml"], "is the workspace's rubric"),
    "prefs over the pairs": (["prefs", "export", "--out", "data/pairs.jsonl"], "is the workspace's pairs file"),
    "prefs over its self-play pairs": (["prefs", "export", "--self-play", "--pairs", "data/mine.jsonl",
                                        "--out", "data/mine.jsonl"], "is the pairs file self-play reads"),
}


@pytest.mark.parametrize("case", OUT_ONTO_OWN_FILES)
def test_out_never_replaces_the_workspaces_own_files(tmp_path, capsys, case):
    root = make_workspace(tmp_path)
    argv, message = OUT_ONTO_OWN_FILES[case]
    run_refused(root, argv, capsys, expect=[message, "Give --out another file"])


# prefs export: numbers checked before anything is read or made --------------------------------

@pytest.mark.parametrize("flags", [["--threshold", "nan"], ["--threshold", "inf"], ["--threshold", "-1"],
                                   ["--limit", "0"], ["--max-new-tokens", "-3"]])
def test_prefs_export_refuses_bad_numbers_and_makes_no_judgments_db(tmp_path, capsys, flags):
    root = make_workspace(tmp_path)
    run_refused(root, ["prefs", "export", *flags], capsys, expect=[f"{flags[0]} {flags[1]}"])


def test_prefs_export_with_nothing_judged_makes_no_judgments_db(tmp_path, capsys):
    root = make_workspace(tmp_path)
    run_refused(root, ["prefs", "export"], capsys, expect=["no preference pairs"])


# ingest flags, empty canaries, a dangling voicebench.toml --------------------------------------

@pytest.mark.parametrize("flags, message", [(["--tiers", ","], "--tiers ',': names no tier"),
                                            (["--tiers", " , "], "names no tier"),
                                            (["--budget", "0"], "--budget 0: must be at least 1 token"),
                                            (["--budget", "-5"], "--budget -5: must be at least 1 token")])
def test_ingest_refuses_no_tiers_and_a_budget_below_one(tmp_path, capsys, flags, message):
    root = make_workspace(tmp_path)
    run_refused(root, ["ingest", "--tokenizer", "none", *flags], capsys, expect=[message])


@pytest.mark.parametrize("content", ["", "# no canaries yet\n"], ids=["empty", "comments only"])
@pytest.mark.parametrize("argv", [["canary", "--model", "{root}/model"],
                                  ["sweep", "--model", "{root}/model", "--vary", "temperature=0,1"]],
                         ids=["canary", "sweep"])
def test_a_canaries_file_with_no_canaries_is_refused_not_run_as_nothing(tmp_path, capsys, content, argv):
    root = make_workspace(tmp_path)
    (root / "data" / "canaries.toml").write_text(content, encoding="utf-8")
    run_refused(root, argv, capsys, expect=["canaries.toml: no [[canary]] entries"])


def test_a_dangling_voicebench_toml_link_is_an_error_not_no_settings(tmp_path, capsys):
    root = make_workspace(tmp_path)
    (root / "voicebench.toml").unlink()
    (root / "voicebench.toml").symlink_to(tmp_path / "moved-away.toml")
    run_refused(root, ["report"], capsys, expect=["voicebench.toml: file not found", "a link to a file that is not"])


# generate: a prompt longer than a learned-position model's table ------------------------------

def test_a_prompt_past_gpt2s_position_table_is_refused_not_an_index_error(tmp_path, capsys):
    import shutil

    from transformers import GPT2Config, GPT2LMHeadModel

    root = make_workspace(tmp_path)
    demo = Path(__file__).resolve().parents[2] / "data" / "models" / "demo-ar"
    folder = root / "tiny-gpt2"
    folder.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(demo / name, folder / name)
    vocab = len(json.loads((demo / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"])
    config = GPT2Config(n_positions=32, n_embd=8, n_layer=1, n_head=2, vocab_size=vocab + 16,
                        bos_token_id=1, eos_token_id=1)
    GPT2LMHeadModel(config).save_pretrained(folder)
    run_refused(root, ["generate", "--model", str(folder), "--no-template", "--prompt", "word " * 40,
                       "--max-new-tokens", "4"], capsys,
                expect=["tiny-gpt2: prompt + max_new_tokens is", "the model takes at most 32"])


@pytest.mark.parametrize("flags, message", [(["--max-steps", "0"], "--max-steps 0: must be at least 1"),
                                            (["--max-steps", "-1"], "--max-steps -1: must be at least 1"),
                                            (["--seed", "-1"], "--seed -1: must be 0 or more")])
def test_demo_headless_refuses_bad_numbers_before_running_canaries(tmp_path, capsys, flags, message):
    root = make_workspace(tmp_path)
    run_refused(root, ["demo", "--headless", *flags], capsys, expect=[message])


# train: --out onto files that are not a new run's, --pairs a folder -----------------------------

def test_train_refuses_an_out_folder_that_already_holds_files(tmp_path, capsys):
    root = make_workspace(tmp_path)
    run_refused(root, ["train", "--max-steps", "1", "--out", "data"], capsys,
                expect=["data: already exists and is not empty", "new or empty --out folder"])
    (root / "runs" / "old").mkdir(parents=True)
    (root / "runs" / "old" / "config.toml").write_text("max_steps = 1\n", encoding="utf-8")
    run_refused(root, ["train", "--max-steps", "1", "--out", "runs/old"], capsys,
                expect=["runs/old: already exists", "use --resume runs/old"])


def test_train_refuses_a_pairs_folder_before_a_run_folder_exists(tmp_path, capsys):
    root = make_workspace(tmp_path)
    (root / "folder.jsonl").mkdir()
    run_refused(root, ["train", "--max-steps", "1", "--pairs", "folder.jsonl"], capsys,
                expect=["folder.jsonl: is a folder, not a pairs file"])


def test_training_pairs_from_a_folder_are_a_data_error_not_an_internal_one(tmp_path):
    from engine.train.data import DataError, load_training_pairs

    with pytest.raises(DataError, match="is a folder, not a pairs file"):
        load_training_pairs(tmp_path)


@pytest.mark.parametrize("action", ["gate", "promote"])
def test_full_weights_outside_a_run_name_the_unknown_base_not_the_workspace_root(tmp_path, capsys, action):
    import numpy
    from safetensors.numpy import save_file

    root = make_workspace(tmp_path)
    save_file({"a": numpy.zeros(2, dtype=numpy.float32)}, str(root / "model" / "model.safetensors"))
    err = run_refused(root, ["versions", action, "model", *(["--force"] if action == "promote" else [])], capsys,
                      expect=["model: full weights outside a run folder", "base model"])
    assert "has no config.json" not in err


def test_versions_list_and_show_print_a_note_with_terminal_escapes_visibly(tmp_path, capsys):
    import numpy
    from safetensors.numpy import save_file

    root = make_workspace(tmp_path)
    checkpoint = root / "runs" / "r1" / "checkpoints" / "checkpoint-1"
    checkpoint.mkdir(parents=True)
    (checkpoint / "config.json").write_text('{"model_type": "gpt2"}', encoding="utf-8")
    save_file({"a": numpy.zeros(2, dtype=numpy.float32)}, str(checkpoint / "model.safetensors"))
    (root / "runs" / "r1" / "config.toml").write_text('model = "model"\n', encoding="utf-8")
    note = "warmer\nopenings \x1b[2J\x07"
    assert main(["-w", str(root), "versions", "promote", "runs/r1/checkpoints/checkpoint-1", "--force",
                 "--note", note]) == 0
    capsys.readouterr()
    assert main(["-w", str(root), "versions", "list"]) == 0
    listed = capsys.readouterr().out
    assert "\x1b" not in listed and "\x07" not in listed and "warmer openings \\x1b[2J\\x07" in listed
    assert main(["-w", str(root), "versions", "show", "v1"]) == 0
    shown = capsys.readouterr().out
    assert "\x1b" not in shown and "\\x1b[2J" in shown


@pytest.mark.parametrize("argv", [["versions", "gate", "\x1b[2Jgone"], ["export", "\x1b[2Jgone", "--out", "o"],
                                  ["voice", "\x1b[2Jgone"], ["prefs", "export", "--self-play", "--model", "\x1b[2Jgone"]])
def test_a_name_with_terminal_escapes_is_shown_not_obeyed_in_command_errors(tmp_path, capsys, argv):
    root = make_workspace(tmp_path)
    err = run_refused(root, argv, capsys, expect=["gone"])
    assert "\x1b" not in err


@pytest.mark.parametrize("action", ["validate", "stats"])
def test_pairs_refuses_a_mistyped_model_instead_of_a_note_and_success(tmp_path, capsys, action):
    root = make_workspace(tmp_path)
    run_refused(root, ["pairs", action, "--model", "demo-arr"], capsys,
                expect=["--model demo-arr: not a workspace model", "demo-ar"])


# Labels that would break the leaderboard ------------------------------------------------------

@pytest.mark.parametrize("label", ["two\nlines", "   ", "bell\x07"])
def test_canary_refuses_a_label_that_is_not_one_line_of_text(tmp_path, capsys, label):
    root = make_workspace(tmp_path)
    run_refused(root, ["canary", "--model", "{root}/model", "--label", label], capsys,
                expect=["--label", "give one line of text"])


def test_the_markdown_leaderboard_keeps_one_row_per_contestant_whatever_its_label(tmp_path):
    from engine.judge import store
    from engine.judge.report import build_report, render
    from tests.engine.judge_data import add_generations, seed_rubric

    db = store.open_store(memory=True)
    seed_rubric(db, tmp_path)
    add_generations(db, ["two\nlines | pipe", "plain"], canary_count=2)
    text = render(build_report(db, bt_samples=20, seed=0), "markdown")
    rows = [line for line in text.splitlines() if line.startswith("| two")]
    assert len(rows) == 2 and all(r"two lines \| pipe" in row for row in rows)
    assert not any(line.startswith("lines |") for line in text.splitlines())


@pytest.mark.parametrize("model", ["demo-arr", "voice"])
def test_train_refuses_a_model_that_is_not_here_before_a_run_folder_exists(tmp_path, capsys, model):
    root = make_workspace(tmp_path)
    run_refused(root, ["train", "--max-steps", "1", "--model", model], capsys, expect=[model])


@pytest.mark.parametrize("config, message", [(b"{bad", "adapter_config.json:1: not valid JSON"),
                                             (b'{"r": 2}', "adapter_config.json: no `peft_type`"),
                                             (GOOD_ADAPTER, "no adapter_model.safetensors")])
@pytest.mark.parametrize("command", [["canary"], ["sweep", "--vary", "temperature=0,1"]], ids=["canary", "sweep"])
def test_a_damaged_adapter_is_refused_before_loading_anything(tmp_path, capsys, config, message, command):
    root = make_workspace(tmp_path)
    (root / "adapter").mkdir()
    (root / "adapter" / "adapter_config.json").write_bytes(config)
    run_refused(root, [*command, "--model", "{root}/model", "--adapter", "adapter"], capsys, expect=[message])


# A model folder whose config.json is not a model's settings, through the commands that load one

UNREADABLE_MODEL_CONFIGS = {  # refused before judgments.db is made: the JSON itself is unusable
    "not JSON": ("{bad", "config.json:1: not valid JSON"),
    "empty": ("", "config.json:1: not valid JSON"),
    "a list": ("[]", "config.json: holds a JSON list, not an object"),
}
MODEL_COMMANDS = {"canary": ["canary", "--model", "{root}/model"],
                  "generate": ["generate", "--model", "{root}/model", "--prompt", "hi"],
                  "sweep": ["sweep", "--model", "{root}/model", "--vary", "temperature=0,1"]}


@pytest.mark.parametrize("command", MODEL_COMMANDS)
@pytest.mark.parametrize("case", UNREADABLE_MODEL_CONFIGS)
def test_a_model_config_that_is_not_json_settings_is_refused_by_name(tmp_path, capsys, command, case):
    root = make_workspace(tmp_path)
    content, message = UNREADABLE_MODEL_CONFIGS[case]
    (root / "model" / "config.json").write_text(content, encoding="utf-8")
    run_refused(root, MODEL_COMMANDS[command], capsys, expect=[message, "Save the model again"])


@pytest.mark.parametrize("content", ['{"model_type": 5}', '{"model_type": "gpt2", "n_embd": "x"}'],
                         ids=["model_type a number", "a size as text"])
def test_a_model_config_transformers_cannot_read_is_refused_by_name(tmp_path, capsys, content):
    root = make_workspace(tmp_path)
    (root / "model" / "config.json").write_text(content, encoding="utf-8")
    run_refused(root, MODEL_COMMANDS["generate"], capsys,
                expect=["config.json: transformers cannot read it", "Save the model again"])


def test_an_adapter_for_another_base_is_refused_naming_both(tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import GPT2Config, GPT2LMHeadModel

    from engine.models.loading import ModelConfigError, load_model

    def tiny(width: int, folder: Path):
        model = GPT2LMHeadModel(GPT2Config(n_embd=width, n_layer=1, n_head=2, vocab_size=40, n_positions=16))
        model.save_pretrained(folder)
        return model

    adapter = tmp_path / "adapter"
    get_peft_model(tiny(8, tmp_path / "narrow"), LoraConfig(r=2, target_modules=["c_attn"])).save_pretrained(adapter)
    tiny(16, tmp_path / "wide")
    with pytest.raises(ModelConfigError, match=r"adapter: this adapter does not fit .*wide"):
        load_model(str(tmp_path / "wide"), adapter=str(adapter))


def test_generate_refuses_a_negative_seed_as_sampler_seed_is(tmp_path, capsys):
    root = make_workspace(tmp_path)
    run_refused(root, [*MODEL_COMMANDS["generate"], "--seed", "-1"], capsys, expect=["seed -1 must be 0 or more"])
