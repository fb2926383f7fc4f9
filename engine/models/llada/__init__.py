"""LLaDA as a native model family: the published checkpoints load without remote code.

`register()` makes transformers' Auto classes (AutoConfig, AutoModel, AutoModelForMaskedLM)
resolve `model_type = "llada"` to the classes here; `engine.models.loading` calls it before
loading a LLaDA folder. It imports torch and transformers, so call it only where they are needed.
"""

from __future__ import annotations

MODEL_TYPE = "llada"


def register() -> None:
    """Register LLaDAConfig and LLaDAModelLM with transformers' Auto classes (idempotent)."""
    from transformers import AutoConfig, AutoModel, AutoModelForMaskedLM

    from engine.models.llada.configuration import LLaDAConfig
    from engine.models.llada.modeling import LLaDAModelLM

    AutoConfig.register(MODEL_TYPE, LLaDAConfig, exist_ok=True)
    AutoModel.register(LLaDAConfig, LLaDAModelLM, exist_ok=True)
    AutoModelForMaskedLM.register(LLaDAConfig, LLaDAModelLM, exist_ok=True)
