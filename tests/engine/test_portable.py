"""Portable artefacts: base references, a moved workspace, exports that load without voicebench."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from engine.models.portable import (
    ArtefactError,
    base_reference,
    check_complete,
    export_artefact,
    load_artefact,
    model_card,
)
from engine.workspace import Workspace
from tests.engine.versions_data import demo_workspace, make_checkpoint, run_cli

REPO = Path(__file__).resolve().parents[2]
PROMPT = "Write a short note about the river."
NEW_TOKENS = 12


@pytest.fixture(scope="module")
def workspace_root(tmp_path_factory) -> Path:
    root = demo_workspace(tmp_path_factory.mktemp("ws"))
    make_checkpoint(root, "run-a", 10, seed=7, scale=0.2)
    return root


CHECKPOINT = "runs/run-a/checkpoints/checkpoint-10"


def greedy_ids(loaded) -> list[int]:
    import torch

    ids = loaded.tokenizer(PROMPT, return_tensors="pt").input_ids
    with torch.no_grad():
        out = loaded.model.generate(ids, max_new_tokens=NEW_TOKENS, do_sample=False,
                                    pad_token_id=loaded.tokenizer.pad_token_id)
    return out[0, ids.shape[1]:].tolist()


def test_base_reference_names_workspace_models_hub_ids_and_relative_folders(workspace_root, tmp_path):
    workspace = Workspace.open(workspace_root)
    assert base_reference(workspace, "demo-ar") == "demo-ar"
    assert base_reference(workspace, str(workspace_root / "data" / "models" / "demo-ar")) == "demo-ar"
    assert base_reference(workspace, "meta-llama/Llama-3.1-8B-Instruct") == "meta-llama/Llama-3.1-8B-Instruct"
    (workspace_root / "mine").mkdir(exist_ok=True)
    assert base_reference(workspace, str(workspace_root / "mine")) == "mine"
    assert base_reference(workspace, str(tmp_path)) == str(tmp_path)  # outside: nothing relative could find it


def test_checkpoints_name_their_base_portably_and_load_after_the_workspace_moves(workspace_root, tmp_path):
    config = json.loads((workspace_root / CHECKPOINT / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "demo-ar"
    before = greedy_ids(load_artefact(Workspace.open(workspace_root), workspace_root / CHECKPOINT))
    moved = tmp_path / "elsewhere"
    shutil.copytree(workspace_root, moved)
    after = greedy_ids(load_artefact(Workspace.open(moved), moved / CHECKPOINT))
    assert after == before
    base = greedy_ids(load_artefact(Workspace.open(moved), moved / "data" / "models" / "demo-ar"))
    assert base != before  # the adapter changes what the model says


def test_an_older_checkpoint_with_an_absolute_base_still_loads(workspace_root, tmp_path):
    moved = tmp_path / "old"
    shutil.copytree(workspace_root, moved)
    path = moved / CHECKPOINT / "adapter_config.json"
    config = json.loads(path.read_text())
    config["base_model_name_or_path"] = "/gone/workspace/data/models/demo-ar"
    path.write_text(json.dumps(config))
    load_artefact(Workspace.open(moved), moved / CHECKPOINT)  # resolved by the folder's name


# Plain transformers and peft, with every voicebench package made unimportable.
NO_VOICEBENCH = textwrap.dedent("""
    import importlib.abc, json, sys
    class Refuse(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("engine", "tui", "voicebench"):
                raise ImportError("voicebench is not installed here: " + name)
    sys.meta_path.insert(0, Refuse())
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from peft import PeftModel
    merged_dir, adapter_dir, base_dir, prompt, new = sys.argv[1:6]
    def greedy(model, tokenizer):
        ids = tokenizer(prompt, return_tensors="pt").input_ids
        out = model.generate(ids, max_new_tokens=int(new), do_sample=False, pad_token_id=tokenizer.pad_token_id)
        return out[0, ids.shape[1]:].tolist()
    merged = AutoModelForCausalLM.from_pretrained(merged_dir)
    adapter = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_dir), adapter_dir)
    try:
        import engine
        blocked = False
    except ImportError:
        blocked = True
    print(json.dumps({"merged": greedy(merged, AutoTokenizer.from_pretrained(merged_dir)),
                      "adapter": greedy(adapter, AutoTokenizer.from_pretrained(adapter_dir)),
                      "blocked": blocked}))
""")


def test_exports_load_with_plain_transformers_and_peft_and_give_the_same_greedy_tokens(workspace_root, tmp_path):
    workspace = Workspace.open(workspace_root)
    expected = greedy_ids(load_artefact(workspace, workspace_root / CHECKPOINT))
    adapter_out = export_artefact(workspace, CHECKPOINT, tmp_path / "adapter", provenance={"checkpoint": "x"})
    merged_out = export_artefact(workspace, CHECKPOINT, tmp_path / "merged", merged=True)
    assert (merged_out / "model.safetensors").exists() and (merged_out / "generation_config.json").exists()
    assert (merged_out / "tokenizer.json").exists() and (merged_out / "chat_template.jinja").exists()
    assert not (adapter_out / "optimizer.pt").exists()
    assert json.loads((adapter_out / "adapter_config.json").read_text())["base_model_name_or_path"] == "demo-ar"
    card = (adapter_out / "README.md").read_text()
    assert card.startswith("---\nbase_model: \"demo-ar\"\nlibrary_name: peft\npipeline_tag: text-generation\nlicense:")
    script = tmp_path / "load.py"
    script.write_text(NO_VOICEBENCH)
    result = subprocess.run(
        [sys.executable, "-I", str(script), str(merged_out), str(adapter_out),
         str(workspace_root / "data" / "models" / "demo-ar"), PROMPT, str(NEW_TOKENS)],
        capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded["blocked"] is True
    assert loaded["merged"] == expected and loaded["adapter"] == expected


def test_export_refuses_a_non_empty_folder_and_leaves_it_alone(workspace_root, tmp_path, capsys):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    result = run_cli(capsys, "-w", str(workspace_root), "export", CHECKPOINT, "--out", str(out))
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "not empty" in result.stderr
    assert [path.name for path in out.iterdir()] == ["notes.txt"]
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".taken")]  # no temp left


def test_incomplete_artefacts_are_named_precisely(workspace_root, tmp_path):
    broken = tmp_path / "checkpoint-3"
    shutil.copytree(workspace_root / CHECKPOINT, broken)
    (broken / "adapter_model.safetensors").unlink()
    with pytest.raises(ArtefactError, match="no adapter_model.safetensors"):
        check_complete(broken)
    with pytest.raises(ArtefactError, match="holds no model"):
        check_complete(tmp_path)


def test_model_card_leaves_the_license_to_the_writer_and_says_where_it_came_from():
    card = model_card(layout="merged", base="meta-llama/Llama-3.1-8B-Instruct", family="causal", dtype="bfloat16",
                      provenance={"version": "v3", "run": "r1"}, evaluation="Promotion gate: better.")
    header = card.split("---")[1]
    assert 'base_model: "meta-llama/Llama-3.1-8B-Instruct"' in header and "library_name: transformers" in header
    assert "license: #" in header
    assert "# v3" in card and "- run: r1" in card and "Promotion gate: better." in card
