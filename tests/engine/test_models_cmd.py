"""`voicebench models`: what of each model is on this machine, from files alone, and one clear
line (exit 2) for each kind of broken input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli import main
from tests.engine.test_memory import LLADA_8B_CONFIG

LLADA_TOKENS = {"126081": "<|endoftext|>", "126336": "<|mdm_mask|>", "126346": "<|start_header_id|>",
                "126347": "<|end_header_id|>", "126348": "<|eot_id|>"}


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def write_safetensors(path: Path, shapes: dict[str, tuple[int, ...]]) -> None:
    import torch
    from safetensors.torch import save_file

    save_file({name: torch.zeros(shape) for name, shape in shapes.items()}, str(path))


def llada_snapshot(cache: Path, *, shards_present: int = 2, mask: bool = True) -> Path:
    folder = cache / "models--GSAI-ML--LLaDA-8B-Instruct" / "snapshots" / "abc123"
    (cache / "models--GSAI-ML--LLaDA-8B-Instruct" / "refs").mkdir(parents=True)
    (cache / "models--GSAI-ML--LLaDA-8B-Instruct" / "refs" / "main").write_text("abc123")
    write_json(folder / "config.json", LLADA_8B_CONFIG)
    tokens = {key: value for key, value in LLADA_TOKENS.items() if mask or value != "<|mdm_mask|>"}
    write_json(folder / "tokenizer_config.json", {
        "eos_token": "<|endoftext|>", "chat_template": "{{ messages }}",
        "added_tokens_decoder": {key: {"content": value, "special": True} for key, value in tokens.items()}})
    write_json(folder / "tokenizer.json", {"added_tokens": [{"id": int(k), "content": v} for k, v in tokens.items()]})
    write_json(folder / "model.safetensors.index.json", {"metadata": {}, "weight_map": {
        "model.transformer.wte.weight": "model-00001-of-00002.safetensors",
        "model.transformer.ln_f.weight": "model-00002-of-00002.safetensors"}})
    write_safetensors(folder / "model-00001-of-00002.safetensors", {"model.transformer.wte.weight": (8, 4)})
    if shards_present == 2:
        write_safetensors(folder / "model-00002-of-00002.safetensors", {"model.transformer.ln_f.weight": (4,)})
    return folder


@pytest.fixture()
def cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "hub"
    folder.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(folder))
    return folder


def models(workspace: Path, capsys, *names: str) -> tuple[int, str, str]:
    code = main(["-w", str(workspace), "models", *names])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_demo_models_are_complete_and_the_real_ones_say_how_to_fetch_them(repo_root, cache, capsys):
    code, out, _ = models(repo_root, capsys)
    assert code == 0
    demo = out.split("demo-diffusion")[0]
    assert "config yes  tokenizer yes  weights yes  chat template yes" in demo
    assert "special ids: EOS 1, end of turn 3, mask 2" in demo and "3,148,032 parameters" in demo
    assert "huggingface-cli download GSAI-ML/LLaDA-8B-Instruct" in out
    assert "huggingface-cli download meta-llama/Llama-3.1-8B-Instruct" in out


def test_a_cached_llada_reports_its_pieces_ids_and_size(tmp_path, cache, capsys):
    llada_snapshot(cache)
    code, out, _ = models(tmp_path, capsys, "llada-8b-instruct")
    assert code == 0, out
    assert "llada-8b-instruct  llada" in out and "weights yes" in out
    assert "special ids: EOS 126081, end of turn 126348, mask 126336" in out
    assert "36 parameters" in out  # counted from the shards' safetensors headers: 8×4 + 4
    assert "sampling needs" in out


def test_broken_input_gets_one_line_each_and_exit_2(tmp_path, cache, capsys):
    llada_snapshot(cache, shards_present=1, mask=False)
    code, out, _ = models(tmp_path, capsys, "llada-8b-instruct")
    problems = [line.strip() for line in out.splitlines() if "download again" in line or "no mask token" in line]
    assert code == 2 and len(problems) == 2 and "Traceback" not in out
    shards, mask = sorted(problems, key=lambda line: "mask" in line)
    assert "model.safetensors.index.json" in shards and "model-00002-of-00002.safetensors is missing" in shards
    assert shards.endswith("huggingface-cli download GSAI-ML/LLaDA-8B-Instruct")
    assert "tokenizer_config.json: no mask token" in mask and "<|mdm_mask|>" in mask


def test_a_config_of_another_family_is_named(tmp_path, capsys, tiny_llama_dir):
    (tmp_path / "voicebench.toml").write_text(f'[models.mine]\npath = "{tiny_llama_dir}"\nfamily = "llada"\n')
    code, out, _ = models(tmp_path, capsys, "mine")
    [line] = [line.strip() for line in out.splitlines() if "family" in line]
    assert code == 2
    assert "config.json: model_type 'llama' is a causal model" in line and 'family = "llada"' in line


def test_it_reads_files_only_fast_and_without_torch(repo_root):
    code = ("import sys, time; from engine.cli import main; t = time.perf_counter(); "
            f"main(['-w', {str(repo_root)!r}, 'models']); "
            "print('SECONDS', time.perf_counter() - t, 'torch' in sys.modules, 'transformers' in sys.modules)")
    env = {**os.environ, "PYTHONPATH": str(repo_root)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    seconds, torch_loaded, transformers_loaded = done.stdout.split("SECONDS")[1].split()
    assert float(seconds) < 2.0 and torch_loaded == "False" and transformers_loaded == "False"


def test_sizes_from_config_keys_match_the_published_counts():
    from engine.models.doctor import shape_from_config
    from tests.engine.test_memory import GPT2_XL_CONFIG, LLADA_8B_PARAMETERS, LLAMA_31_8B_CONFIG

    assert shape_from_config(LLAMA_31_8B_CONFIG, "causal", None).parameters == 8_030_261_248
    assert shape_from_config(GPT2_XL_CONFIG, "causal", None).parameters == 1_557_611_200
    assert shape_from_config(LLADA_8B_CONFIG, "llada", None).parameters == LLADA_8B_PARAMETERS


def test_quick_sizes_give_the_meta_device_estimate(tmp_path):
    """The Train screen's torch-free estimate equals the meta-device one for Llama-style models."""
    from engine.models.doctor import shape_from_config
    from engine.models.memory import TrainPlan, estimate_training, model_shape
    from tests.engine.test_memory import LLAMA_31_8B_CONFIG

    (tmp_path / "config.json").write_text(json.dumps(LLAMA_31_8B_CONFIG))
    plan = TrainPlan(method="lora", max_length=1024, batch_size=2)
    quick = shape_from_config(LLAMA_31_8B_CONFIG, "causal", None)
    assert estimate_training(quick, plan) == estimate_training(model_shape(tmp_path), plan)
