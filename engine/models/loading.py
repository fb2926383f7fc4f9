"""Load tokenizers and models from local paths (or the local Hugging Face cache) and
tell which family a model belongs to.

Families decide how a model trains and generates:
- "causal": decoder-only LMs (Llama, Qwen, GPT-2, the demo AR model);
- "masked": bidirectional masked LMs used as masked-diffusion models (ModernBERT-style,
  the demo diffusion model) — the mask token comes from the tokenizer;
- "llada": LLaDA checkpoints (fixed special-token ids), run by the project's own implementation
  (engine.models.llada) whatever their auto_map says — their remote code is never imported;
- "dream": Dream-style diffusion models whose logits are shifted by one position.

Every consumer (generate, canary, training and its canaries, the sampler process, the Judge
screen) loads through `load_entry`, which takes the workspace's `ModelEntry`: its family,
`trust_remote_code` and `load_in_4bit` mean the same everywhere. Remote code runs only when
the entry says `trust_remote_code = true`. Training passes the entry it derived for its method
(QLoRA quantises; full and diffusion training never do), so what it loads is still said by an entry.

Nothing here downloads: a missing model raises ModelNotFoundError saying how to fetch it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from engine.workspace import ModelEntry, looks_like_hub_id

FAMILY_CAUSAL = "causal"
FAMILY_MASKED = "masked"
FAMILY_LLADA = "llada"
FAMILY_DREAM = "dream"
FAMILIES = (FAMILY_CAUSAL, FAMILY_MASKED, FAMILY_LLADA, FAMILY_DREAM)
DIFFUSION_FAMILIES = (FAMILY_MASKED, FAMILY_LLADA, FAMILY_DREAM)

# Architectures that are bidirectional masked LMs even when the config says little else.
_MASKED_MODEL_TYPES = {"modernbert", "bert", "roberta", "distilbert", "deberta-v2", "electra", "xlm-roberta"}


class ModelNotFoundError(Exception):
    """The model is neither a local folder nor in the local Hugging Face cache."""


class ModelConfigError(ModelNotFoundError):
    """A model on disk that cannot be used as it is: a config.json that is not a model's
    settings, or an adapter that does not fit the base it is loaded onto. (A ModelNotFoundError,
    so every command that reports a missing model reports this the same way.)"""


class RemoteCodeRefused(Exception):
    """The model needs `trust_remote_code` and the workspace config did not allow it."""


@dataclasses.dataclass
class LoadedModel:
    model: Any  # a transformers PreTrainedModel (possibly wrapped by peft)
    tokenizer: Any
    family: str
    path: str


def resolve_model_path(name_or_path: str) -> str:
    """Return a local folder for a model, looking in the HF cache without the network."""
    local = Path(name_or_path).expanduser()
    if local.is_dir():
        if not (local / "config.json").exists():
            raise ModelNotFoundError(
                f"{local}: folder has no config.json, so it is not a saved model. "
                "Point --model at the folder `save_pretrained` wrote."
            )
        return str(local)
    if looks_like_hub_id(name_or_path):
        from huggingface_hub import snapshot_download

        try:
            return snapshot_download(name_or_path, local_files_only=True)
        except Exception as error:  # noqa: BLE001 - any cache miss means "not on disk"
            raise ModelNotFoundError(
                f"{name_or_path}: not in the local Hugging Face cache. Fetch it once on a machine "
                f"with network access: `huggingface-cli download {name_or_path}` "
                "(then point the model's `path` at the cache or a copied folder)."
            ) from error
    raise ModelNotFoundError(
        f"{name_or_path}: no such folder. Give a local model folder or a Hugging Face id "
        "(org/name) that is already in your cache."
    )


_DAMAGED_ADVICE = "Save the model again with save_pretrained, or download it again."


def read_json_object(path: Path, error_type: type[Exception], advice: str) -> dict[str, Any]:
    """A JSON file that must hold an object (a model's or adapter's config, a run record), or
    `error_type` naming the file, the line and the problem, then `advice`."""
    import json

    raw = path.read_bytes()
    try:
        value = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise error_type(f"{path}:{line}: not UTF-8 text. {advice}") from None
    except json.JSONDecodeError as error:
        raise error_type(f"{path}:{error.lineno}: not valid JSON ({error.msg}). {advice}") from None
    if not isinstance(value, dict):
        raise error_type(f"{path}: holds a JSON {type(value).__name__}, not an object. {advice}")
    return value


def read_model_config(folder: str | Path) -> dict[str, Any]:
    """A model folder's config.json as a dict, or ModelConfigError naming the file, line and problem."""
    return read_json_object(Path(folder) / "config.json", ModelConfigError, _DAMAGED_ADVICE)


def read_family(model_path: str | Path, configured: str | None = None) -> str:
    """The model family without loading weights or transformers (config.json through detect_family)."""
    from types import SimpleNamespace

    if configured:
        return configured
    return detect_family(SimpleNamespace(**read_model_config(resolve_model_path(str(model_path)))))


def detect_family(config: Any) -> str:
    """The family of a transformers config (see module docstring)."""
    model_type = str(getattr(config, "model_type", "") or "").lower()
    architectures = [str(name) for name in (getattr(config, "architectures", None) or [])]
    if model_type == "llada" or any("LLaDA" in name for name in architectures):
        return FAMILY_LLADA
    if model_type == "dream" or any(name.startswith("Dream") for name in architectures):
        return FAMILY_DREAM
    if model_type in _MASKED_MODEL_TYPES or any(name.endswith("ForMaskedLM") for name in architectures):
        return FAMILY_MASKED
    return FAMILY_CAUSAL


def needs_remote_code(config_dict: dict[str, Any]) -> bool:
    return bool(config_dict.get("auto_map"))


def load_tokenizer(path: str, *, trust_remote_code: bool = False) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(resolve_model_path(path), trust_remote_code=trust_remote_code)


def load_entry(entry: ModelEntry, *, dtype: str | None = None, device: str | None = None) -> LoadedModel:
    """Load a workspace model as its entry says: the one load path of every consumer.

    `dtype` and `device` are how to run (training's compute dtype, a rank's GPU), not what
    to load; the entry alone decides family, remote code and 4-bit quantisation.
    """
    return load_model(entry.path, family=entry.family, trust_remote_code=entry.trust_remote_code,
                      load_in_4bit=entry.load_in_4bit, dtype=dtype, device=device, adapter=entry.adapter)


def entry_from_request(model: dict[str, Any]) -> ModelEntry:
    """The entry a sampler-process request names ({path, family, trust_remote_code, load_in_4bit, adapter})."""
    return ModelEntry(name=str(model.get("name") or model["path"]), path=str(model["path"]),
                      family=model.get("family"), trust_remote_code=bool(model.get("trust_remote_code")),
                      load_in_4bit=bool(model.get("load_in_4bit")), adapter=model.get("adapter"))


def _keep_4bit_layers_trainable_on_cpu(model: Any) -> None:
    """bitsandbytes (0.50) repacks a Linear4bit's weight on a CPU with AVX512-BF16 at its first
    no-grad forward in eval mode, into a layout only its inference kernel reads, and keeps it:
    training after an evaluation or a canary then runs that kernel, which has no backward, and
    the gradient through every 4-bit layer's input is silently dropped. Keep the training layout
    (the dequantise-and-matmul path serves inference too, and also takes rows narrower than 64)."""
    for module in model.modules():
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False


def load_model(
    path: str,
    *,
    family: str | None = None,
    trust_remote_code: bool = False,
    load_in_4bit: bool = False,
    dtype: str | None = None,
    device: str | None = None,
    adapter: str | None = None,
) -> LoadedModel:
    """Load model and tokenizer from a local folder (or the HF cache).

    `adapter` is a peft adapter folder (a version's or a checkpoint's) merged into the
    weights after loading, so sampling runs as fast as the base model.

    `dtype` is "float32", "bfloat16" or "float16" (None: float32 on CPU, bfloat16 on GPU).
    `load_in_4bit` quantises linear layers to NF4 with bitsandbytes (QLoRA).
    """
    import torch
    from huggingface_hub.errors import StrictDataclassError
    from transformers import (
        AutoConfig,
        AutoModel,
        AutoModelForCausalLM,
        AutoModelForMaskedLM,
    )
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # progress bars would garble --json output and the TUI
    folder = resolve_model_path(path)
    config_dict = read_model_config(folder)
    tokenizer_trust = trust_remote_code
    if config_dict.get("model_type") == FAMILY_LLADA:
        from engine.models.llada import register

        register()  # the native classes answer for model_type "llada"
        trust_remote_code = False  # so the published auto_map is never followed
    elif needs_remote_code(config_dict) and not trust_remote_code:
        raise RemoteCodeRefused(
            f"{folder}: this model ships its own Python code (auto_map in config.json). "
            "Set `trust_remote_code = true` for it in voicebench.toml if you trust its source."
        )
    try:
        config = AutoConfig.from_pretrained(folder, trust_remote_code=trust_remote_code)
    except (ValueError, TypeError, KeyError, StrictDataclassError) as error:  # a key of the wrong kind, an unknown model_type
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelConfigError(f"{Path(folder) / 'config.json'}: transformers cannot read it ({reason}). "
                               f"{_DAMAGED_ADVICE}") from None
    family = family or detect_family(config)
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}; expected one of {FAMILIES}")

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    torch_dtype = getattr(torch, dtype) if dtype else (torch.bfloat16 if device.startswith("cuda") else torch.float32)
    kwargs: dict[str, Any] = {"dtype": torch_dtype, "trust_remote_code": trust_remote_code}
    if load_in_4bit:
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_compute_dtype=torch_dtype,
            bnb_4bit_use_double_quant=True,
        )
        if device.startswith("cuda"):
            # Quantised weights cannot be moved after loading; place them on this process's GPU
            # (each rank of a multi-GPU launch passes its own cuda:N).
            kwargs["device_map"] = {"": device}

    if family == FAMILY_CAUSAL:
        model = AutoModelForCausalLM.from_pretrained(folder, **kwargs)
    elif family == FAMILY_MASKED:
        model = AutoModelForMaskedLM.from_pretrained(folder, **kwargs)
    else:  # LLaDA (native, registered above) and Dream (remote code) register their LM class under AutoModel
        model = AutoModel.from_pretrained(folder, **kwargs)
    if not load_in_4bit:
        model.to(device)
    elif not device.startswith("cuda"):
        _keep_4bit_layers_trainable_on_cpu(model)
    if adapter:
        from peft import PeftModel

        try:
            model = PeftModel.from_pretrained(model, adapter)
        except (ValueError, RuntimeError) as error:  # no target module matches; tensor shapes differ
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ModelConfigError(f"{adapter}: this adapter does not fit {folder} ({reason}). Load it onto the "
                                   "base model it was trained from (adapter_config.json names it).") from None
        model = model.merge_and_unload() if not load_in_4bit else model  # 4-bit weights cannot absorb it
    model.eval()
    tokenizer = load_tokenizer(folder, trust_remote_code=tokenizer_trust)
    return LoadedModel(model=model, tokenizer=tokenizer, family=family, path=folder)
