"""Sampler sweeps as contestants: planning, refusals before generation, presets, and a real
two-variable sweep on the demo diffusion model whose settings a blind session can rate."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from engine.judge import session as judging
from engine.judge.store import open_store
from engine.sample.sweep import (SweepError, apply_preset, load_presets, plan_sweep, render_table, run_sweep,
                                 save_preset, setting_label)
from engine.workspace import Workspace

REPO = Path(__file__).resolve().parents[2]

# Two short canaries keep a sweep to a few dozen forward passes of the demo model.
SHORT_CANARIES = """\
[[canary]]
id = "river-short"
kind = "known-topic-short"
prompt = "Write a short note about the river the morning after a flood."
max_new_tokens = 8

[[canary]]
id = "airport-night"
kind = "novel-topic-short"
prompt = "Write a short note about waiting in an airport late at night."
max_new_tokens = 8
"""


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    shutil.copytree(REPO / "data", tmp_path / "data", ignore=shutil.ignore_patterns("models"))
    (tmp_path / "data" / "models").symlink_to(REPO / "data" / "models")
    (tmp_path / "data" / "canaries.toml").write_text(SHORT_CANARIES, encoding="utf-8")
    return Workspace.open(tmp_path)


def test_one_variable_at_a_time_from_the_base(workspace):
    plan = plan_sweep(workspace, "demo-diffusion", {"temperature": ["0", "0.8"], "steps": ["4", "8"]})
    labels = [setting.label for setting in plan.settings]
    # temperature 0 and steps 8 are what the base already runs with (8-token canaries): one contestant.
    assert labels == ["demo-diffusion · base", "demo-diffusion · T=0.8", "demo-diffusion · steps=4"]
    assert dict(plan.settings[1].varied) == {"temperature": 0.8}


def test_grid_crosses_every_value(workspace):
    plan = plan_sweep(workspace, "demo-diffusion", {"temperature": ["0", "0.8"], "eos": ["keep", "suppress"]},
                      grid=True)
    assert [setting.label for setting in plan.settings] == [
        "demo-diffusion · T=0.0, eos=keep", "demo-diffusion · T=0.0, eos=suppress",
        "demo-diffusion · T=0.8, eos=keep", "demo-diffusion · T=0.8, eos=suppress"]


@pytest.mark.parametrize("vary, expected", [
    ({"block_length": ["8", "3"]}, "block_length=3 does not divide"),
    ({"steps": ["4", "64"]}, "steps=64 is more than that"),
    ({"remasking": ["sideways"]}, "remasking='sideways' is not one of"),
    ({"eos": ["maybe"]}, "eos='maybe' is not one of"),
    ({"temperature": ["warm"]}, "temperature='warm': not a number"),
    ({"dtype": ["float16", "int8"]}, "dtype='int8' is not one of float32, bfloat16, float16, 4bit"),
    ({"wobble": ["1"]}, "unknown variable 'wobble'"),
])
def test_bad_sweep_values_are_refused_naming_the_value(workspace, vary, expected):
    with pytest.raises(SweepError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        plan_sweep(workspace, "demo-diffusion", vary)


def test_causal_models_refuse_diffusion_variables(workspace):
    with pytest.raises(SweepError, match="block_length is a diffusion-sampler setting"):
        plan_sweep(workspace, "demo-ar", {"block_length": ["4"]})
    with pytest.raises(SweepError, match="eos is a diffusion-sampler setting"):
        plan_sweep(workspace, "demo-ar", {"eos": ["suppress"]})
    # Canaries sample causal models at T=0.7 by default, so T=0.7 is the base itself.
    plan = plan_sweep(workspace, "demo-ar", {"temperature": ["0.7", "1.0"]})
    assert [setting.label for setting in plan.settings] == ["demo-ar · base", "demo-ar · T=1.0"]


def test_cli_refuses_a_bad_block_length_before_generating(workspace, capsys):
    from engine.cli import main

    code = main(["--workspace", str(workspace.root), "sweep", "--model", "demo-diffusion",
                 "--vary", "block_length=4,16", "--vary", "temperature=0,0.8"])
    err = capsys.readouterr().err
    assert code == 2
    assert "block_length=16" in err and "river-short" in err and len(err.strip().splitlines()) == 1
    assert not workspace.db_path.exists()  # refused before the store was even opened


def test_presets_round_trip_and_feed_sweep_and_canary(workspace):
    path = save_preset(workspace, "calm", {"temperature": 0.0, "steps": 4, "remasking": "random", "threshold": None})
    save_preset(workspace, "warm", {"temperature": 0.9})
    assert path.name == "presets.toml"
    presets = load_presets(workspace)
    assert presets["calm"] == {"temperature": 0.0, "steps": 4, "remasking": "random"}
    assert presets["warm"] == {"temperature": 0.9}
    patched = apply_preset(workspace, "demo-diffusion", "calm")
    assert patched.section("sampler")["steps"] == 4 and workspace.section("sampler") == {}
    plan = plan_sweep(workspace, "demo-diffusion", {"temperature": ["0.5"]}, base=presets["calm"])
    assert dict(plan.settings[1].overrides) == {"temperature": 0.5, "steps": 4, "remasking": "random"}
    with pytest.raises(SweepError, match="unknown settings"):
        save_preset(workspace, "odd", {"colour": "blue"})
    with pytest.raises(SweepError, match="preset name"):
        save_preset(workspace, "no spaces", {"temperature": 0.1})


@pytest.mark.slow
def test_a_two_variable_sweep_yields_contestants_a_blind_session_can_rate(workspace, one_torch_thread):
    db = open_store(workspace.db_path)
    plan = plan_sweep(workspace, "demo-diffusion", {"temperature": ["0", "0.8"], "steps": ["4", "8"]})
    events = list(run_sweep(db, workspace, plan))
    rows = [event for event in events if event.kind == "sweep_setting"]
    labels = [row.label for row in rows]
    assert labels == ["demo-diffusion · base", "demo-diffusion · T=0.8", "demo-diffusion · steps=4"]
    assert [row.forward_passes for row in rows] == [16, 16, 8]  # 2 canaries × steps
    assert all(row.generations == 2 for row in rows)

    # Full settings are the provenance of each contestant.
    stored = {row["label"]: json.loads(row["settings_json"]) for row in db.query("select * from contestant_settings")}
    assert stored["demo-diffusion · T=0.8"] == {"temperature": 0.8}
    generation = next(db.query("select settings_json from generations where label = ?", ["demo-diffusion · steps=4"]))
    assert json.loads(generation["settings_json"])["steps"] == 4

    # A blind pairwise session compares the settings exactly as it compares models.
    assert {c.label for c in judging.contestants(db)} == set(labels)
    session_id = judging.build_session(db, labels=labels, mode="pairwise", rater="wren", seed=1, repeat_share=0)
    blind = judging.BlindSession(db, session_id)
    assert blind.progress()["total"] == 6  # 3 settings → 3 pairs per canary × 2 canaries
    item = blind.current()
    assert item.left_text is not None and item.right_text is not None
    assert not any(label in json.dumps(item.__dict__) for label in labels)
    blind.choose("left")
    revealed = blind.end()
    assert {revealed[0].left_label, revealed[0].right_label} <= set(labels)

    # Re-running the sweep generates nothing new, and the table has no ratings in it.
    again = [event for event in run_sweep(db, workspace, plan) if event.kind == "canary_start"]
    assert all(event.new == 0 for event in again)
    table = render_table(rows)
    assert "demo-diffusion · T=0.8" in table and "forward passes" in table and "rubric" not in table


def test_setting_labels_read_like_the_issue():
    assert setting_label("demo-ar", {"temperature": 0.8}) == "demo-ar · T=0.8"
    assert setting_label("m", {"block_length": 64, "steps": 256}) == "m · block=64, steps=256"


def test_a_precision_sweep_loads_each_setting_at_its_precision_and_records_it(workspace, one_torch_thread,
                                                                              monkeypatch):
    from engine.models import loading

    loads = []
    original = loading.load_entry

    def recording_load_entry(entry, **kwargs):
        loaded = original(entry, **kwargs)
        loads.append((kwargs.get("dtype"), entry.load_in_4bit, str(next(loaded.model.parameters()).dtype)))
        return loaded

    monkeypatch.setattr(loading, "load_entry", recording_load_entry)
    db = open_store(workspace.db_path)
    plan = plan_sweep(workspace, "demo-ar", {"dtype": ["fp32", "bfloat16", "4bit"]}, canaries=["river-short"])
    # float32 is what the CPU loads anyway: the base itself, one contestant.
    assert [s.label for s in plan.settings] == ["demo-ar · base", "demo-ar · dtype=bfloat16", "demo-ar · dtype=4bit"]
    rows = [event for event in run_sweep(db, workspace, plan) if event.kind == "sweep_setting"]
    assert [row.generations for row in rows] == [1, 1, 1]
    assert loads == [(None, False, "torch.float32"), ("bfloat16", False, "torch.bfloat16"), (None, True, "torch.float32")]
    stored = {row["label"]: json.loads(row["settings_json"]) for row in db.query("select * from contestant_settings")}
    assert stored["demo-ar · dtype=4bit"] == {"dtype": "4bit"}
    outputs = {row["label"]: json.loads(row["settings_json"]) for row in db.query("select * from generations")}
    assert outputs["demo-ar · dtype=bfloat16"]["dtype"] == "bfloat16" and "dtype" not in outputs["demo-ar · base"]
    # The voice score generates a swept precision's replies at that precision too.
    from engine.judge.voice import resolve_contestant

    assert dict(resolve_contestant(db, workspace, "demo-ar · dtype=4bit").overrides) == {"dtype": "4bit"}


def test_an_unusable_precision_is_refused_before_anything_loads(workspace, monkeypatch, capsys):
    import importlib.util

    from engine.cli import main

    code = main(["--workspace", str(workspace.root), "sweep", "--model", "demo-ar", "--vary", "dtype=float16,int8"])
    err = capsys.readouterr().err
    assert code == 2 and "dtype='int8'" in err and len(err.strip().splitlines()) == 1
    assert not workspace.db_path.exists()
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "bitsandbytes" else find_spec(name, *a))
    with pytest.raises(SweepError, match="dtype=4bit needs bitsandbytes"):
        plan_sweep(workspace, "demo-diffusion", {"dtype": ["4bit"]})
    import torch

    def no_half(tensor, *args, **kwargs):
        raise RuntimeError(f'"LayerNormKernelImpl" not implemented for {tensor.dtype}')

    monkeypatch.setattr(torch.nn.functional, "layer_norm", no_half)  # a CPU whose torch cannot compute in it
    with pytest.raises(SweepError, match=r"--vary dtype: dtype=float16 does not run on this cpu"):
        plan_sweep(workspace, "demo-diffusion", {"dtype": ["float16"]})


# Precision sweeps of a model with an adapter ---------------------------------------------------
@pytest.fixture(scope="module")
def lora_adapter(tmp_path_factory) -> Path:
    """A LoRA adapter for demo-ar whose B matrices are not zero (a fresh adapter changes nothing),
    large enough that 4-bit rounding cannot hide it."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(REPO / "data" / "models" / "demo-ar")
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"]))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.05)
    folder = tmp_path_factory.mktemp("adapter") / "lora"
    peft_model.save_pretrained(folder)
    return folder


def _record_loads(monkeypatch) -> list:
    """Every model the load path returns from now on, in order."""
    from engine.models import loading

    loads = []
    original = loading.load_entry

    def recording_load_entry(entry, **kwargs):
        loads.append(original(entry, **kwargs))
        return loads[-1]

    monkeypatch.setattr(loading, "load_entry", recording_load_entry)
    return loads


def _last_logits(loaded):
    import torch

    with torch.no_grad():
        return loaded.model(torch.tensor([[1, 40, 41, 42, 43, 44]])).logits[0, -1]


def test_a_precision_sweep_with_an_adapter_runs_the_adapter_at_each_precision(workspace, lora_adapter, tmp_path,
                                                                             one_torch_thread, monkeypatch):
    import torch
    from bitsandbytes.nn import Linear4bit
    from peft.tuners.lora import LoraLayer

    from engine.cli import main
    from engine.judge.canary import canary_settings, describe_contestant, load_canaries
    from engine.judge.store import content_hash
    from engine.judge.voice import resolve_contestant
    from engine.sample.sweep import workspace_with

    loads = _record_loads(monkeypatch)
    # Through the entry point the CLI uses, with the adapter inside the workspace given relative to it.
    shutil.copytree(lora_adapter, workspace.root / "adapters" / "lora")
    adapter = str((workspace.root / "adapters" / "lora").resolve())
    code = main(["--workspace", str(workspace.root), "sweep", "--model", "demo-ar", "--adapter", "adapters/lora",
                 "--vary", "dtype=float32,4bit", "--canaries", "river-short"])
    assert code == 0

    # Two contestants: float32 is what this CPU loads anyway, so it is the base setting.
    db = open_store(workspace.db_path)
    provenance = {row["label"]: row for row in db.query("select * from contestant_settings")}
    assert sorted(provenance) == ["demo-ar · base", "demo-ar · dtype=4bit"]
    assert {label: json.loads(row["settings_json"]) for label, row in provenance.items()} == {
        "demo-ar · base": {}, "demo-ar · dtype=4bit": {"dtype": "4bit"}}
    assert all(row["adapter_path"] == adapter for row in provenance.values())
    outputs = {row["label"]: row for row in db.query("select * from generations")}
    assert sorted(outputs) == sorted(provenance)
    assert {row["adapter_hash"] for row in outputs.values()} == {content_hash(adapter)}
    assert "dtype" not in json.loads(outputs["demo-ar · base"]["settings_json"])
    assert json.loads(outputs["demo-ar · dtype=4bit"]["settings_json"])["dtype"] == "4bit"

    # What generated: float32 with the adapter merged in; 4-bit layers with the adapter live on
    # top (merging into 4-bit weights would re-round them and lose most of the adapter).
    float32_model, four_bit_model = loads
    assert not any(isinstance(m, (LoraLayer, Linear4bit)) for m in float32_model.model.modules())
    assert next(float32_model.model.parameters()).dtype == torch.float32
    lora_layers = [m for m in four_bit_model.model.modules() if isinstance(m, LoraLayer)]
    assert len(lora_layers) == 3 * 4 and all(isinstance(m.base_layer, Linear4bit) for m in lora_layers)
    with_adapter = _last_logits(four_bit_model)
    with four_bit_model.model.disable_adapter():
        without_adapter = _last_logits(four_bit_model)
    assert (with_adapter - without_adapter).abs().max() > 0.1

    # float32 with the adapter is exactly what a plain canary run with that adapter gives.
    other = Workspace.open(_copy_workspace(workspace, tmp_path / "other"))
    assert main(["--workspace", str(other.root), "canary", "--model", "demo-ar", "--adapter", adapter,
                 "--set", "river-short"]) == 0
    plain = next(open_store(other.db_path).query("select * from generations"))
    assert (plain["text"], plain["identity_key"]) == (outputs["demo-ar · base"]["text"],
                                                      outputs["demo-ar · base"]["identity_key"])

    # The voice score generates a setting's replies with its adapter, at its precision.
    contestant = resolve_contestant(db, workspace, "demo-ar · dtype=4bit")
    assert contestant.adapter == adapter and dict(contestant.overrides) == {"dtype": "4bit"}
    who = describe_contestant(db, workspace, contestant.model, contestant.adapter, contestant.label)
    assert who.adapter_hash == content_hash(adapter)
    canary = load_canaries(workspace.canaries_path)[0]
    assert canary_settings(workspace_with(workspace, who.family, dict(contestant.overrides)), who.family, canary,
                           0)["dtype"] == "4bit"


def _copy_workspace(workspace: Workspace, root: Path) -> Path:
    shutil.copytree(workspace.root / "data", root / "data", symlinks=True)
    return root


def test_sweeping_the_voice_model_applies_its_adapter_once_and_keeps_it_in_the_provenance(
        workspace, lora_adapter, one_torch_thread, monkeypatch):
    import torch
    from peft.tuners.lora import LoraLayer

    from engine.cli import main
    from engine.judge.voice import resolve_contestant
    from engine.models import loading, versions
    from engine.workspace import ModelEntry

    # `voice` is the current version: the demo model with this adapter (as a promoted LoRA version is).
    demo_ar = str(workspace.model("demo-ar").path)
    monkeypatch.setattr(versions, "current_voice_entry",
                        lambda _: ModelEntry(name="voice@v1", path=demo_ar, adapter=str(lora_adapter)))
    loads = _record_loads(monkeypatch)
    assert main(["--workspace", str(workspace.root), "sweep", "--model", "voice", "--vary", "dtype=float32,4bit",
                 "--canaries", "river-short"]) == 0

    # Once, not twice: the float32 model is exactly the base with the adapter merged once, and
    # the 4-bit one carries one LoRA layer per adapted module, not a stack.
    float32_model, four_bit_model = loads
    reference = loading.load_model(demo_ar, adapter=str(lora_adapter))
    assert torch.equal(_last_logits(float32_model), _last_logits(reference))
    lora_layers = [m for m in four_bit_model.model.modules() if isinstance(m, LoraLayer)]
    assert len(lora_layers) == 3 * 4 and not any(isinstance(m.base_layer, LoraLayer) for m in lora_layers)

    # The provenance names the adapter, so the voice score of a setting is the version's, not the bare base.
    db = open_store(workspace.db_path)
    contestant = resolve_contestant(db, workspace, "voice@v1 · dtype=4bit")
    assert contestant.adapter == str(lora_adapter.resolve()) and dict(contestant.overrides) == {"dtype": "4bit"}


def test_precision_sweeps_that_cannot_mean_what_they_say_are_refused_before_anything_runs(workspace, capsys):
    from engine.cli import main

    # An entry that always quantises would run every dtype 4-bit: the labels would lie.
    (workspace.root / "voicebench.toml").write_text(
        '[models.demo-ar-4bit]\npath = "data/models/demo-ar"\nload_in_4bit = true\n', encoding="utf-8")
    code = main(["--workspace", str(workspace.root), "sweep", "--model", "demo-ar-4bit",
                 "--vary", "dtype=float32,4bit"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "--vary dtype: model 'demo-ar-4bit' has load_in_4bit = true" in err
    configured = Workspace.open(workspace.root)
    save_preset(configured, "wide", {"dtype": "float32"})
    with pytest.raises(SweepError, match="preset 'wide': model 'demo-ar-4bit' has load_in_4bit = true"):
        apply_preset(configured, "demo-ar-4bit", "wide")
    assert plan_sweep(configured, "demo-ar-4bit", {"temperature": ["0.7", "1.0"]}).settings  # other variables vary
    # A missing adapter folder is named before the store is opened.
    code = main(["--workspace", str(workspace.root), "sweep", "--model", "demo-ar", "--adapter", "runs/nowhere",
                 "--vary", "dtype=float32,4bit"])
    err = capsys.readouterr().err
    assert code == 2 and "runs/nowhere: no adapter_config.json" in err and len(err.strip().splitlines()) == 1
    assert not workspace.db_path.exists()
