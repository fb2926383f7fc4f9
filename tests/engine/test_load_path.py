"""One load path: every consumer loads a workspace model through `load_entry` with its entry.

One entry asks for 4-bit weights and allows remote code; each consumer (generate, the canary
command and the Judge screen's canary runs — both `engine.judge.canary.run_canaries` —, training
and its canaries, the sampler process) is run and the entry it passed is recorded. The spy
calls the real loader with the entry as given, so every consumer gets NF4 linear layers
(bitsandbytes' CPU backend samples and trains them; engine.models.loading keeps their
training layout on CPU).
"""

from __future__ import annotations

import dataclasses
import io
import json
import shutil
from pathlib import Path

import pytest

from engine.models import loading
from engine.workspace import ModelEntry, Workspace

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py

CANARY = '[[canary]]\nid = "c1"\nkind = "known-topic-short"\nprompt = "Write about bread."\nmax_new_tokens = 3\n'


@pytest.fixture()
def workspace(tmp_path, tiny_llama_dir) -> Path:
    (tmp_path / "data").mkdir()
    pairs = [{"id": f"p{i}", "prompt": f"Write note {i}.", "response": "Bread, weather and small repairs.",
              "split": "train"} for i in range(2)]
    (tmp_path / "data" / "pairs.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs))
    (tmp_path / "data" / "canaries.toml").write_text(CANARY)
    (tmp_path / "voicebench.toml").write_text(
        f'[models.tiny]\npath = "{tiny_llama_dir}"\nfamily = "causal"\n'
        "trust_remote_code = true\nload_in_4bit = true\n")
    return tmp_path


@pytest.fixture()
def loads(monkeypatch) -> list[tuple[ModelEntry, object]]:
    """Every (entry, loaded model) that went through load_entry."""
    seen: list[tuple[ModelEntry, object]] = []
    real = loading.load_entry

    def spy(entry, **kwargs):
        loaded = real(entry, **kwargs)
        seen.append((entry, loaded.model))
        return loaded

    monkeypatch.setattr(loading, "load_entry", spy)
    return seen


def quantised(model) -> bool:
    return any(type(module).__name__ == "Linear4bit" for module in model.modules())


def assert_entry_settings(entry: ModelEntry, tiny_llama_dir: Path, *, four_bit: bool) -> None:
    assert Path(entry.path).resolve() == Path(tiny_llama_dir).resolve()
    assert entry.trust_remote_code is True and entry.family == "causal"
    assert entry.load_in_4bit is four_bit


def test_generate_loads_the_entry_as_configured(workspace, tiny_llama_dir, loads, capsys):
    from engine.cli import main

    code = main(["-w", str(workspace), "generate", "--model", "tiny", "--prompt", "Bread", "--max-new-tokens", "2",
                 "--json"])
    assert code == 0
    [(entry, model)] = loads
    assert entry.name == "tiny"
    assert_entry_settings(entry, tiny_llama_dir, four_bit=True)
    assert quantised(model)


def test_canary_command_and_judge_runs_load_the_entry_as_configured(workspace, tiny_llama_dir, loads, capsys):
    from engine.cli import main

    assert main(["-w", str(workspace), "canary", "--model", "tiny", "--json"]) == 0
    [(entry, model)] = loads
    assert_entry_settings(entry, tiny_llama_dir, four_bit=True)
    assert quantised(model)


def test_the_sampler_process_loads_the_entry_the_screen_sends(tiny_llama_dir, loads):
    from engine.sample.service import SamplerService

    output = io.StringIO()
    service = SamplerService(output)
    request = {"path": str(tiny_llama_dir), "family": "causal", "trust_remote_code": True, "load_in_4bit": True}
    for run in (1, 2):  # the same entry twice: loaded once
        service.handle({"op": "type", "run": run, "model": request, "prompt": "Bread", "max_new_tokens": 2})
        service.join()
    events = [json.loads(line) for line in output.getvalue().splitlines()]
    assert [e["event"] for e in events if e["event"] in ("loaded", "final")] == ["loaded", "final"] * 2
    [(entry, model)] = loads
    assert_entry_settings(entry, tiny_llama_dir, four_bit=True)
    assert quantised(model)


@pytest.mark.parametrize("method, four_bit", [("lora", False), ("qlora", True)])
def test_training_and_its_canaries_load_once_through_the_entry(workspace, tiny_llama_dir, loads, method, four_bit):
    """Training derives the entry for its method (QLoRA quantises, LoRA does not); its canaries
    answer with the model already in memory (no second load)."""
    from engine.train.run import run_training

    out = io.StringIO()
    code = run_training(workspace, {"model": "tiny", "method": method, "max_steps": 1, "batch_size": 2,
                                    "eval_every": 0, "save_every": 0, "canaries": "all",
                                    "canary_max_new_tokens": 2}, json_mode=True, stdout=out)
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert code == 0, events[-3:]
    answered = [e for e in events if e["event"] == "canary"]
    assert answered  # the canary was answered on the model in memory, 4-bit included
    [(entry, model)] = loads
    assert_entry_settings(entry, tiny_llama_dir, four_bit=four_bit)
    assert quantised(model) is four_bit


def test_a_4bit_entry_loads_nf4_weights_on_cpu(tiny_llama_dir):
    loaded = loading.load_entry(ModelEntry("tiny", str(tiny_llama_dir), load_in_4bit=True, trust_remote_code=True))
    assert quantised(loaded.model) and loaded.family == "causal"
    assert not quantised(loading.load_entry(ModelEntry("tiny", str(tiny_llama_dir))).model)


def test_remote_code_runs_only_when_the_entry_says_so(tmp_path, tiny_llama_dir, tiny_llada_dir):
    folder = tmp_path / "remote"
    shutil.copytree(tiny_llama_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_x.X"}  # code the entry did not allow
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(loading.RemoteCodeRefused, match="trust_remote_code = true"):
        loading.load_entry(ModelEntry("remote", str(folder), family="causal", trust_remote_code=False))
    # LLaDA's published folder names its remote code too; the native family never runs it.
    loaded = loading.load_entry(ModelEntry("llada", str(tiny_llada_dir), family="llada", trust_remote_code=False))
    assert loaded.family == "llada" and type(loaded.model).__module__.startswith("engine.models.llada")


def test_a_request_names_the_same_entry_as_the_workspace(workspace, tiny_llama_dir):
    configured = Workspace.open(workspace).model("tiny")
    sent = {"path": configured.path, "family": configured.family, "trust_remote_code": configured.trust_remote_code,
            "load_in_4bit": configured.load_in_4bit}
    received = loading.entry_from_request(sent)
    assert dataclasses.replace(received, name="tiny") == configured
