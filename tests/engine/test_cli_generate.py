"""`voicebench generate`: the JSON-lines protocol, plain text, --watch, and exit-2 errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.cli import main
from engine.sample.diffusion import LLADA_MASK_ID

SMALL = ["--steps", "4", "--gen-length", "8", "--block-length", "4"]


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_json_protocol_for_a_diffusion_model(tmp_path, tiny_masked_dir, capsys):
    code = main(["-w", str(tmp_path), "generate", "--model", str(tiny_masked_dir), "--prompt", "The river",
                 *SMALL, "--temperature", "1", "--seed", "3", "--json"])
    assert code == 0
    events = json_lines(capsys.readouterr().out)
    steps, final = events[:-1], events[-1]
    assert [event["event"] for event in steps] == ["step"] * 4
    assert [event["step"] for event in steps] == [1, 2, 3, 4]
    assert [event["block"] for event in steps] == [0, 0, 1, 1]
    assert [event["masked"] for event in steps] == [6, 4, 2, 0]
    for event in steps:
        assert {"step", "block", "committed", "masked"} <= set(event)
        assert all(len(entry) == 3 and 0 <= entry[0] < 8 for entry in event["committed"])
    assert final["event"] == "final"
    assert set(final) >= {"prompt_ids", "token_ids", "text", "forward_passes", "seconds"}
    assert len(final["token_ids"]) == 8 and final["forward_passes"] == 4
    committed = {pos: token for event in steps for pos, token, _ in event["committed"]}
    assert final["token_ids"] == [committed[pos] for pos in range(8)]


def test_plain_output_is_the_text_and_seeds_repeat(tmp_path, tiny_masked_dir, capsys):
    args = ["-w", str(tmp_path), "generate", "--model", str(tiny_masked_dir), "--prompt", "The river",
            *SMALL, "--temperature", "1", "--seed", "5"]
    assert main([*args, "--json"]) == 0
    final = json_lines(capsys.readouterr().out)[-1]
    assert main(args) == 0
    assert capsys.readouterr().out == final["text"] + "\n"


def test_workspace_sampler_table_and_flags(tmp_path, tiny_masked_dir, capsys):
    (tmp_path / "voicebench.toml").write_text(
        f'[models.tiny]\npath = "{tiny_masked_dir}"\n[sampler]\nsteps = 2\ngen_length = 4\nblock_length = 2\n'
    )
    assert main(["-w", str(tmp_path), "generate", "--model", "tiny", "--prompt", "x", "--json"]) == 0
    events = json_lines(capsys.readouterr().out)
    assert len(events) == 3 and len(events[-1]["token_ids"]) == 4  # steps and length from the table
    assert main(["-w", str(tmp_path), "generate", "--model", "tiny", "--prompt", "x", "--steps", "4", "--json"]) == 0
    assert len(json_lines(capsys.readouterr().out)) == 5  # the flag wins


def test_a_default_model_is_the_workspace_s_whatever_the_current_folder(tmp_path, tiny_masked_dir, capsys, monkeypatch):
    import shutil

    workspace, elsewhere = tmp_path / "ws", tmp_path / "elsewhere"
    workspace.mkdir()
    relative = Path("data") / "models" / "demo-diffusion"  # the default entry's path
    shutil.copytree(tiny_masked_dir, elsewhere / relative)  # a decoy in the current folder
    monkeypatch.chdir(elsewhere)
    command = ["-w", str(workspace), "generate", "--model", "demo-diffusion", "--prompt", "x", *SMALL, "--json"]
    assert main(command) == 2  # not built in the workspace: the decoy is not used…
    assert f"{workspace / relative}: no such folder" in capsys.readouterr().err  # …and the error says where
    shutil.copytree(tiny_masked_dir, workspace / relative)
    assert main(command) == 0
    assert len(json_lines(capsys.readouterr().out)[-1]["token_ids"]) == 8


def test_llada_through_a_workspace_entry_without_remote_code(tmp_path, tiny_llada_dir, capsys):
    (tmp_path / "voicebench.toml").write_text(f'[models.llada-tiny]\npath = "{tiny_llada_dir}"\n')
    assert main(["-w", str(tmp_path), "generate", "--model", "llada-tiny", "--prompt", "The river", *SMALL,
                 "--cfg-scale", "1", "--json"]) == 0
    final = json_lines(capsys.readouterr().out)[-1]
    assert final["prompt_ids"][0] == 126080 and LLADA_MASK_ID not in final["token_ids"]
    # The folder's auto_map (LLaDA's published code) is never needed: a bare path loads natively too.
    assert main(["-w", str(tmp_path), "generate", "--model", str(tiny_llada_dir), "--prompt", "x", *SMALL]) == 0


def test_causal_model_streams_tokens(tmp_path, tiny_llama_dir, capsys):
    assert main(["-w", str(tmp_path), "generate", "--model", str(tiny_llama_dir), "--prompt", "The river",
                 "--max-new-tokens", "5", "--json"]) == 0
    events = json_lines(capsys.readouterr().out)
    assert {event["event"] for event in events[:-1]} == {"token"} and events[-1]["event"] == "final"
    assert 1 <= len(events[-1]["token_ids"]) <= 5
    assert [event["index"] for event in events[:-1]] == list(range(len(events) - 1))


def test_watch_draws_the_canvas(tmp_path, tiny_masked_dir, capsys):
    assert main(["-w", str(tmp_path), "generate", "--model", str(tiny_masked_dir), "--prompt", "The river",
                 *SMALL, "--watch"]) == 0
    out = capsys.readouterr().out
    assert "step 4/4" in out and "block 2/2" in out and "masked 0" in out and "forward passes in" in out


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--gen-length", "10", "--block-length", "4"], "not divisible by block_length"),
        (["--steps", "3", "--gen-length", "8", "--block-length", "4"], "not a positive multiple"),
        (["--threshold", "2"], "threshold"),
    ],
)
def test_bad_settings_exit_2(tmp_path, tiny_masked_dir, capsys, extra, message):
    assert main(["-w", str(tmp_path), "generate", "--model", str(tiny_masked_dir), "--prompt", "x", *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("voicebench generate: error:") and message in err


def test_missing_model_exits_2_with_a_hint(tmp_path, capsys):
    assert main(["-w", str(tmp_path), "generate", "--prompt", "x"]) == 2
    err = capsys.readouterr().err
    assert "data/models/demo-diffusion" in err and "python -m engine.models.demo" in err  # the -w workspace has none
    assert main(["-w", str(tmp_path), "generate", "--model", str(tmp_path / "nope"), "--prompt", "x"]) == 2
    assert "no such folder" in capsys.readouterr().err
