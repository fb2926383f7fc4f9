from __future__ import annotations

import json

import pytest

from engine.models.loading import (
    FAMILY_CAUSAL, FAMILY_MASKED, ModelNotFoundError, RemoteCodeRefused, load_model, resolve_model_path,
)


def test_families_are_detected_from_config(tiny_llama_dir, tiny_gpt2_dir, tiny_masked_dir):
    assert load_model(str(tiny_llama_dir)).family == FAMILY_CAUSAL
    assert load_model(str(tiny_gpt2_dir)).family == FAMILY_CAUSAL
    loaded = load_model(str(tiny_masked_dir))
    assert loaded.family == FAMILY_MASKED
    assert loaded.tokenizer.mask_token_id is not None


def test_missing_model_says_how_to_fetch(tmp_path):
    with pytest.raises(ModelNotFoundError, match="no such folder"):
        resolve_model_path(str(tmp_path / "nope"))
    with pytest.raises(ModelNotFoundError, match="huggingface-cli download some-org/some-model"):
        resolve_model_path("some-org/some-model")


def test_remote_code_needs_opt_in(tmp_path, tiny_llama_dir):
    folder = tmp_path / "remote"
    folder.mkdir()
    config = json.loads((tiny_llama_dir / "config.json").read_text())
    config["auto_map"] = {"AutoModel": "modeling_x.X"}
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(RemoteCodeRefused, match="trust_remote_code = true"):
        load_model(str(folder))
