"""Canaries: file errors that say where, settings the sampler accepts, idempotent runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from engine.judge import canary
from engine.judge import store
from engine.workspace import Workspace

ONE_CANARY = """\
[[canary]]
id = "river-short"
kind = "known-topic-short"
prompt = "Write about the river."
max_new_tokens = 8
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "canaries.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_bundled_canaries_load(repo_root):
    canaries = canary.load_canaries(repo_root / "data" / "canaries.toml")
    assert len(canaries) >= 3 and {c.kind for c in canaries} <= set(canary.CANARY_KINDS)


@pytest.mark.parametrize(("text", "message"), [
    (ONE_CANARY.replace('prompt = "Write about the river."\n', ""), r"canaries.toml:1: canary 'river-short': missing `prompt`"),
    (ONE_CANARY.replace("known-topic-short", "gossip"), r"canaries.toml:3: canary 'river-short': kind: must be one of"),
    (ONE_CANARY.replace("= 8", '= "eight"'), r"canaries.toml:5: canary 'river-short': max_new_tokens: must be a whole number, got \"eight\" \(a string\)"),
    (ONE_CANARY.replace('"river-short"', '"River Short"'), r"canaries.toml:2: canary 'River Short': id: must be kebab-case"),
    (ONE_CANARY + "\n" + ONE_CANARY, r"canaries.toml:8: canary 'river-short': id: 'river-short' is already used on line 1"),
    ("[[canary]\n", r"canaries.toml:1: not valid TOML .*Fix the TOML syntax"),
])
def test_canary_file_errors_name_file_line_and_entry(tmp_path, text, message):
    with pytest.raises(canary.CanaryFileError, match=message):
        canary.load_canaries(write(tmp_path, text))


def test_select_by_set_kind_or_id(tmp_path):
    text = ONE_CANARY + ONE_CANARY.replace("river-short", "airport").replace("known-topic-short", "novel-topic-short") \
        .replace("max_new_tokens = 8", 'max_new_tokens = 8\nset = "quick"')
    canaries = canary.load_canaries(write(tmp_path, text))
    assert [c.id for c in canary.select_canaries(canaries, "quick")] == ["airport"]
    assert [c.id for c in canary.select_canaries(canaries, "known-topic-short")] == ["river-short"]
    assert [c.id for c in canary.select_canaries(canaries, None)] == ["river-short", "airport"]
    with pytest.raises(canary.CanaryFileError, match="choose one of"):
        canary.select_canaries(canaries, "nope")


def test_diffusion_settings_are_always_valid_for_the_sampler(tmp_path):
    from engine.sample.diffusion import SamplerSettings

    workspace = Workspace.open(tmp_path)
    for length in (8, 96, 100, 256):
        item = canary.Canary(id="c", kind="known-topic-short", prompt="p", max_new_tokens=length)
        settings = canary.canary_settings(workspace, "masked", item, seed=3)
        assert settings["gen_length"] == length and settings["seed"] == 3
        SamplerSettings(**{k: v for k, v in settings.items() if k != "sampler"}).validate()
    causal = canary.canary_settings(workspace, "causal", item, seed=3)
    assert causal == {"sampler": "causal", "max_new_tokens": 256, "temperature": 0.7, "use_template": True, "seed": 3}


@pytest.fixture
def workspace(tmp_path) -> Workspace:
    (tmp_path / "data").mkdir()
    write(tmp_path / "data", ONE_CANARY)
    (tmp_path / "voicebench.toml").write_text("[sampler]\nsteps = 4\nblock_length = 8\n", encoding="utf-8")
    return Workspace.open(tmp_path)


def drain(generator):
    events = []
    while True:
        try:
            events.append(next(generator))
        except StopIteration as stop:
            return events, stop.value


def test_canary_runs_are_idempotent_on_a_diffusion_model(workspace, tiny_masked_dir):
    db = store.open_store(workspace.db_path)
    events, ids = drain(canary.run_canaries(db, workspace, str(tiny_masked_dir), seed=0,
                                            trace_dir=workspace.runs_dir / "traces"))
    assert [e.kind for e in events] == ["canary_start", "canary", "canary_done"]
    assert events[0].new == 1 and not events[1].reused
    row = db["generations"].get(ids[0])
    assert row["family"] == "masked" and row["seed"] == 0 and row["token_count"] == 8
    assert json.loads(row["settings_json"])["steps"] == 4
    metrics = json.loads(row["metrics_json"])
    assert {"distinct_1", "seq_rep_4", "repetition_cascade", "length_tokens", "empty"} <= set(metrics)
    assert row["label"] == Path(tiny_masked_dir).name
    from engine.sample.trace import load_trace

    trace = load_trace(row["trace_path"])  # replayable on the canvas without the model
    assert trace.final.text == row["text"] and trace.header.settings["gen_length"] == 8
    assert {token for frame in trace.frames for _, token, _ in frame.committed} <= set(trace.header.tokens)

    again, again_ids = drain(canary.run_canaries(db, workspace, str(tiny_masked_dir), seed=0))
    assert again[0].new == 0 and again[1].reused and again_ids == ids
    assert again[1].text == events[1].text
    assert db["generations"].count == 1

    drain(canary.run_canaries(db, workspace, str(tiny_masked_dir), seed=1))
    assert db["generations"].count == 2  # another seed is another generation
    write(workspace.data_dir, ONE_CANARY.replace("the river", "the flood"))
    drain(canary.run_canaries(db, workspace, str(tiny_masked_dir), seed=0))
    versions = [r["version"] for r in db.query("select version from canaries where canary_id = 'river-short'")]
    assert versions == [1, 2] and db["generations"].count == 3


def test_a_causal_model_and_an_adapter_checkpoint_are_told_apart(workspace, tiny_llama_dir):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    checkpoint = workspace.runs_dir / "run-a" / "checkpoint-2"
    base = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    get_peft_model(base, LoraConfig(r=2, target_modules=["q_proj", "v_proj"])).save_pretrained(checkpoint)
    model_dir = workspace.root / "tiny-llama"
    shutil.copytree(tiny_llama_dir, model_dir)
    db = store.open_store(workspace.db_path)
    base_events, _ = drain(canary.run_canaries(db, workspace, "tiny-llama", seed=0))
    tuned_events, tuned_ids = drain(canary.run_canaries(db, workspace, "tiny-llama", adapter=str(checkpoint), seed=0))
    assert base_events[0].label == "tiny-llama" and tuned_events[0].label == "run-a/checkpoint-2"
    row = db["generations"].get(tuned_ids[0])
    assert (row["run_id"], row["checkpoint"], row["checkpoint_step"]) == ("run-a", "checkpoint-2", 2)
    assert row["adapter_hash"] == store.content_hash(checkpoint) and row["family"] == "causal"
    assert db["runs"].count_where("id = 'run-a'") == 1
    again, _ = drain(canary.run_canaries(db, workspace, "tiny-llama", adapter=str(checkpoint), seed=0))
    assert again[0].new == 0 and db["generations"].count == 2


def test_an_adapter_folder_must_hold_an_adapter(workspace, tiny_masked_dir, tmp_path):
    db = store.open_store(workspace.db_path)
    with pytest.raises(FileNotFoundError, match="adapter_config.json"):
        drain(canary.run_canaries(db, workspace, str(tiny_masked_dir), adapter=str(tmp_path)))
