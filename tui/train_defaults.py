"""What the Train form needs to know about a model before any run, without importing torch.

Reads the model folder's `config.json` (family, model_type) and the safetensors headers
(parameter count) and asks engine/train/config.py for the defaults it will use: learning
rate by objective and method (×5 under 50M parameters), LoRA targets by model_type, the
diffusion learning-rate reason. One source of defaults: the engine's.
"""

from __future__ import annotations

import dataclasses
import json
import struct
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from engine.models.loading import DIFFUSION_FAMILIES, FAMILY_CAUSAL, FAMILY_MASKED, detect_family
from engine.train.config import (
    DEFAULT_LORA_TARGETS,
    DIFFUSION_LR_REASON,
    METHODS,
    TINY_MODEL_PARAMETERS,
    TrainConfig,
    apply_workspace_defaults,
    default_lr,
)
from engine.workspace import ModelEntry, Workspace

DEMO_MODELS = ("demo-ar", "demo-diffusion")


@dataclasses.dataclass(frozen=True)
class ModelFacts:
    name: str
    path: Path | None  # local folder, None when the model is not on this machine
    family: str
    model_type: str
    parameters: int | None

    @property
    def objective(self) -> str:
        return "diffusion" if self.family in DIFFUSION_FAMILIES else "causal"


def ordered_models(workspace: Workspace) -> list[ModelEntry]:
    """The workspace's models, demo models first (they run anywhere), then the rest by name."""
    entries = [workspace.model(name) for name in workspace.models]
    demos = [entry for name in DEMO_MODELS for entry in entries if entry.name == name]
    return demos + sorted((entry for entry in entries if entry.name not in DEMO_MODELS), key=lambda e: e.name)


def safetensors_parameters(folder: Path) -> int | None:
    """Sum of tensor sizes in the folder's *.safetensors headers (8-byte length + JSON)."""
    total, found = 0, False
    for file in sorted(folder.glob("*.safetensors")):
        try:
            with file.open("rb") as handle:
                (length,) = struct.unpack("<Q", handle.read(8))
                header = json.loads(handle.read(length))
        except (OSError, ValueError, struct.error):
            return None
        for name, info in header.items():
            if name != "__metadata__":
                count = 1
                for dimension in info.get("shape", []):
                    count *= int(dimension)
                total += count
                found = True
    return total if found else None


def model_facts(entry: ModelEntry) -> ModelFacts:
    folder = Path(entry.path)
    config: dict[str, Any] = {}
    if folder.is_dir():
        try:
            config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            config = {}
    family = entry.family or (detect_family(SimpleNamespace(**config)) if config else FAMILY_CAUSAL)
    model_type = str(config.get("model_type") or ("llada" if family == "llada" else ""))
    parameters = safetensors_parameters(folder) if folder.is_dir() else None
    return ModelFacts(entry.name, folder if folder.is_dir() else None, family, model_type, parameters)


def methods_for(facts: ModelFacts) -> tuple[str, ...]:
    """Methods the engine accepts for this family: diffusion only for masked-diffusion models,
    dpo only for causal ones (engine.train.dpo.DIFFUSION_REASON says why)."""
    if facts.objective == "diffusion":
        return tuple(method for method in METHODS if method != "dpo")
    return tuple(method for method in METHODS if method != "diffusion")


def default_method(facts: ModelFacts) -> str:
    """Small bidirectional masked LMs train all weights; big ones (LLaDA 8B) and causal LMs use LoRA."""
    return "diffusion" if facts.family == FAMILY_MASKED else "lora"


def base_config(workspace: Workspace) -> TrainConfig:
    """TrainConfig defaults with the workspace's [train] table applied (what the engine starts from)."""
    return apply_workspace_defaults(TrainConfig(), workspace.section("train"), set())


def lr_default(facts: ModelFacts, method: str) -> float:
    return default_lr(facts.objective, method, facts.parameters)


def lr_note(facts: ModelFacts, method: str) -> str:
    """The sentence under the lr field: what the default is and why."""
    update = "all weights" if method in ("full", "diffusion") else "LoRA"
    note = f"empty = default {lr_default(facts, method):g} ({facts.objective}, {update})"
    if facts.parameters is not None and facts.parameters < TINY_MODEL_PARAMETERS:
        note += f"; ×5 because the model is tiny ({parameter_text(facts.parameters)} parameters)"
    elif facts.parameters is None:
        note += "; model size unknown"
    if facts.objective == "diffusion":
        note += f". Lower than causal: the {DIFFUSION_LR_REASON}"
    return note + "."


def parameter_text(count: int) -> str:
    """54K, 3.2M, 8.0B."""
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if count >= size:
            return f"{count / size:.1f}{suffix}".replace(".0", "")
    return str(count)


def lora_targets_default(facts: ModelFacts) -> tuple[str, ...]:
    return DEFAULT_LORA_TARGETS.get(facts.model_type, ())
