"""Hostile inputs the corpus in test_bad_inputs.py does not cover, one case per defect found.

Same contract: each case runs a command in-process through `engine.cli.main` on a small
workspace and asserts exit status 2, no traceback, a message naming what and where, and
no file in the workspace created or changed. No model is loaded.
"""

from __future__ import annotations

import pytest

from tests.engine.test_bad_inputs import make_workspace, run_refused

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
        from engine.cli import main

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

