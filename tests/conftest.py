"""Shared fixtures: the repo root (the demo workspace) and tiny models built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import tiny_models

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory) -> Path:
    return tiny_models.build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_gpt2_dir(tmp_path_factory) -> Path:
    return tiny_models.build_tiny_gpt2(tmp_path_factory.mktemp("tiny-gpt2"))


@pytest.fixture(scope="session")
def tiny_masked_dir(tmp_path_factory) -> Path:
    return tiny_models.build_tiny_modernbert(tmp_path_factory.mktemp("tiny-modernbert"))


@pytest.fixture(scope="session")
def tiny_llada_dir(tmp_path_factory) -> Path:
    """A tiny native LLaDA folder: published config keys and parameter names, LLaDA's token ids."""
    return tiny_models.build_tiny_llada(tmp_path_factory.mktemp("tiny-llada"))


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module that trains or samples: on a shared 2-core machine two
    OpenMP threads per process spin against each other (steps measured ~30x slower)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
