"""Portable model artefacts: base references that survive a moved workspace, and exports
that load with plain transformers/peft (no voicebench installed).

    reference = base_reference(workspace, "demo-ar")          # "demo-ar" (workspace name)
    entry = resolve_base(workspace, reference)                # the base's ModelEntry, wherever the workspace is
    loaded = load_artefact(workspace, "runs/x/checkpoints/checkpoint-20")   # base + adapter, merged
    export_artefact(workspace, "models/versions/v1", "out/v1", merged=True, dtype="bfloat16")

Base references. An adapter (`adapter_config.json`'s `base_model_name_or_path`) names its
base by the workspace model name ("demo-ar"), a Hugging Face id ("meta-llama/…"), or a path
relative to the workspace root — never an absolute path, which breaks as soon as the
workspace is moved or copied. Older checkpoints that still hold an absolute path are read by
trying the path, then the workspace model whose name is the folder's name.

Artefacts. A checkpoint or version folder holds either a peft adapter
(`adapter_config.json` + `adapter_model.safetensors`) or full weights (`config.json` +
`model.safetensors` or an index and its shards). `check_complete` reads every safetensors
header, so a truncated copy is refused before it becomes a version or an export.

Exports are written to a temporary sibling folder and renamed into place, so a failed
export leaves nothing behind, and never write over a non-empty folder:
- adapter: the adapter files with a portable base reference, the tokenizer, a model card;
- merged (`merged=True`): LoRA folded into the base (`merge_and_unload`), safetensors
  shards, tokenizer, chat template and generation config — the standard layout that
  `AutoModelForCausalLM.from_pretrained`, the Hub and llama.cpp's converter read.
The model card (README.md) opens with YAML metadata (base_model, library_name,
pipeline_tag, tags; `license` is left for the writer to fill) and says in prose where the
weights came from and how they were evaluated.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from engine.atomic import write_atomic
from engine.workspace import ModelEntry, Workspace, looks_like_hub_id

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")
FULL_WEIGHTS = ("model.safetensors", "pytorch_model.bin")
SHARD_INDEX = "model.safetensors.index.json"
# Files a Trainer checkpoint carries that belong to training, not to the model.
TRAINING_STATE = ("optimizer.pt", "scheduler.pt", "rng_state.pth", "training_args.bin", "trainer_state.json",
                  "README.md")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja",
                   "tokenizer.model", "vocab.json", "merges.txt")
EXPORT_DTYPES = ("float32", "bfloat16", "float16")
MAX_SHARD_SIZE = "2GB"
PIPELINE_TAGS = {"causal": "text-generation", "masked": "fill-mask"}


class ArtefactError(Exception):
    """A checkpoint, version or export target is unusable; the message says which file and what to do."""


# Base references -----------------------------------------------------------------------------
def base_reference(workspace: Workspace, model: str) -> str:
    """How an adapter should name its base: the workspace name when `model` is one, a Hub id
    as given, else the folder relative to the workspace root (absolute only when the folder
    lies outside the workspace, where nothing relative could find it)."""
    if model in workspace.models:
        return model
    local = Path(model).expanduser()
    if not local.is_absolute():
        local = workspace.root / local
    if not local.exists() and looks_like_hub_id(model):
        return model
    resolved = local.resolve()
    for name, entry in workspace.models.items():  # a configured model given by its folder
        if Path(workspace.model(name).path).resolve() == resolved:
            return name
    try:
        return str(resolved.relative_to(workspace.root))
    except ValueError:
        return str(resolved)


def resolve_base(workspace: Workspace, reference: str) -> ModelEntry:
    """The base model an adapter names, as a workspace ModelEntry (see the module docstring)."""
    if reference in workspace.models:
        return workspace.model(reference)
    path = Path(reference).expanduser()
    if path.is_absolute() and not path.exists() and path.name in workspace.models:
        return workspace.model(path.name)  # an older checkpoint written before the workspace moved
    return workspace.model(reference)


# Artefacts -------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Artefact:
    """A checkpoint or version folder and what it holds."""

    folder: Path
    kind: str  # "adapter" | "full"
    base: str | None  # adapter: the base reference as written in adapter_config.json


def artefact_in(workspace: Workspace, name_or_path: str) -> Path:
    """A folder given relative to the workspace (or absolute); versions may be named "v3"."""
    path = Path(name_or_path).expanduser()
    if not path.is_absolute():
        candidates = [workspace.root / path, workspace.root / "models" / "versions" / name_or_path]
        path = next((candidate for candidate in candidates if candidate.exists()), candidates[0])
    return path


def _safetensors_ok(file: Path) -> str | None:
    """None when every tensor of a safetensors file can be located, else why not. Only the
    header is read, so numpy serves as the framework: "pt" would import torch into the app
    (the Train screen checks checkpoints before promoting them)."""
    from safetensors import safe_open

    try:
        with safe_open(str(file), framework="numpy") as handle:
            handle.keys()
    except Exception as error:  # noqa: BLE001 - any failure to read the header means unusable
        return str(error).splitlines()[0] if str(error) else type(error).__name__
    return None


def check_complete(folder: str | Path) -> Artefact:
    """The artefact in `folder`, or ArtefactError naming the missing or damaged file."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ArtefactError(f"{folder}: no such folder. Give a checkpoint (runs/<id>/checkpoints/checkpoint-N) "
                            "or a version (v1, models/versions/v1).")
    model_folder = folder / "model" if (folder / "model" / "config.json").exists() else folder
    adapter_folder = folder / "adapter" if (folder / "adapter" / ADAPTER_CONFIG).exists() else folder
    if (adapter_folder / ADAPTER_CONFIG).exists():
        config = read_json_object(adapter_folder / ADAPTER_CONFIG)
        if not isinstance(config.get("peft_type"), str):  # peft cannot load an adapter without it
            raise ArtefactError(f"{adapter_folder / ADAPTER_CONFIG}: no `peft_type`, so it is not a peft adapter's "
                                "config; the checkpoint is damaged — pick another one.")
        weights = [adapter_folder / name for name in ADAPTER_WEIGHTS if (adapter_folder / name).exists()]
        if not weights:
            raise ArtefactError(f"{adapter_folder}: adapter_config.json but no adapter_model.safetensors; the "
                                "checkpoint is incomplete (was the run killed while saving?) — pick another one.")
        _check_weights(weights)
        return Artefact(folder=adapter_folder, kind="adapter", base=config.get("base_model_name_or_path"))
    if (model_folder / "config.json").exists():
        weights = [model_folder / name for name in FULL_WEIGHTS if (model_folder / name).exists()]
        index = model_folder / SHARD_INDEX
        if index.exists():
            weight_map = read_json_object(index).get("weight_map")
            if not isinstance(weight_map, dict) or not all(isinstance(name, str) for name in weight_map.values()):
                raise ArtefactError(f"{index}: no `weight_map` of tensor names to shard files; the checkpoint is "
                                    "damaged — pick another one.")
            shards = sorted(set(weight_map.values()))
            missing = [name for name in shards if not (model_folder / name).exists()]
            if missing:
                raise ArtefactError(f"{model_folder}: shard {missing[0]} named in {SHARD_INDEX} is missing; "
                                    "the checkpoint is incomplete — pick another one.")
            weights = [model_folder / name for name in shards]
        if not weights:
            raise ArtefactError(f"{model_folder}: config.json but no model.safetensors; the checkpoint is "
                                "incomplete (was the run killed while saving?) — pick another one.")
        _check_weights(weights)
        return Artefact(folder=model_folder, kind="full", base=None)
    raise ArtefactError(f"{folder}: neither adapter_config.json nor config.json, so it holds no model. Give a "
                        "checkpoint folder (runs/<id>/checkpoints/checkpoint-N) or a version.")


def read_json_object(path: Path) -> dict[str, Any]:
    """A checkpoint's JSON file as a dict, or ArtefactError naming the file, line and problem."""
    from engine.models.loading import read_json_object as read_object

    return read_object(path, ArtefactError, "The checkpoint is damaged: pick another one.")


def _check_weights(files: list[Path]) -> None:
    for file in files:
        if file.suffix != ".safetensors":
            continue
        problem = _safetensors_ok(file)
        if problem:
            raise ArtefactError(f"{file}: unreadable ({problem}); the file is truncated or damaged — pick "
                                "another checkpoint.")


def make_portable(adapter_folder: str | Path, reference: str) -> None:
    """Rewrite an adapter's base reference in place (atomically)."""
    path = Path(adapter_folder) / ADAPTER_CONFIG
    config = json.loads(path.read_text(encoding="utf-8"))
    if config.get("base_model_name_or_path") != reference:
        config["base_model_name_or_path"] = reference
        write_atomic(path, json.dumps(config, indent=2, sort_keys=True) + "\n")


def artefact_base(workspace: Workspace, artefact: Artefact) -> ModelEntry | None:
    """The base model entry of an adapter artefact (None for full weights)."""
    if artefact.kind != "adapter":
        return None
    if not artefact.base:
        raise ArtefactError(f"{artefact.folder / ADAPTER_CONFIG}: `base_model_name_or_path` is empty, so the base "
                            "model is unknown. Set it to the workspace model name the run trained.")
    return resolve_base(workspace, artefact.base)


def load_artefact(workspace: Workspace, folder: str | Path, *, dtype: str | None = None,
                  merge: bool = True) -> Any:
    """Load a checkpoint or version as a LoadedModel (adapter merged into its base)."""
    from engine.models.loading import load_entry, load_model

    artefact = check_complete(folder)
    if artefact.kind == "full":
        return load_model(str(artefact.folder), dtype=dtype, device="cpu")
    entry = artefact_base(workspace, artefact)
    loaded = load_entry(dataclasses.replace(entry, adapter=None), dtype=dtype, device="cpu")
    from peft import PeftModel

    try:
        model = PeftModel.from_pretrained(loaded.model, str(artefact.folder))
    except (ValueError, RuntimeError, KeyError) as error:  # targets or tensor shapes that are not the base's
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ArtefactError(f"{artefact.folder}: the adapter does not fit its base model {entry.name} ({reason}); "
                            "pick a checkpoint trained on that model.") from None
    loaded.model = model.merge_and_unload() if merge else model
    loaded.model.eval()
    return loaded


# Exports ---------------------------------------------------------------------------------------
def _fresh_target(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ArtefactError(f"{out}: already exists and is not empty; exports never write over files. "
                            "Choose a new --out folder or empty this one.")


def export_artefact(workspace: Workspace, source: str | Path, out: str | Path, *, merged: bool = False,
                    dtype: str | None = None, provenance: dict[str, Any] | None = None,
                    evaluation: str | None = None) -> Path:
    """Write an adapter or merged export of a checkpoint/version to `out`; returns `out`."""
    if dtype is not None and dtype not in EXPORT_DTYPES:
        raise ArtefactError(f"--dtype {dtype}: expected one of {', '.join(EXPORT_DTYPES)}.")
    out = Path(out).expanduser()
    if not out.is_absolute():
        out = Path.cwd() / out
    _fresh_target(out)
    artefact = check_complete(artefact_in(workspace, str(source)))
    base = artefact_base(workspace, artefact)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        if merged or artefact.kind == "full":
            family = _write_merged(workspace, artefact, staging, dtype)
            layout = "merged"
        else:
            family = _write_adapter(workspace, artefact, base, staging)
            layout = "adapter"
        card = model_card(layout=layout, base=_card_base(workspace, artefact, base), family=family,
                          dtype=dtype or "float32", provenance=provenance or {}, evaluation=evaluation)
        (staging / "README.md").write_text(card, encoding="utf-8")
        if out.exists():
            out.rmdir()  # empty, checked above
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def _card_base(workspace: Workspace, artefact: Artefact, base: ModelEntry | None) -> str | None:
    """The base model as the Hub would name it: a Hub id when the base is one, else its
    workspace name (a local model the card describes in prose)."""
    if base is None:
        return None
    return base.path if looks_like_hub_id(base.path) and not Path(base.path).exists() else base.name


def _write_adapter(workspace: Workspace, artefact: Artefact, base: ModelEntry, staging: Path) -> str:
    from engine.models.loading import load_tokenizer, read_family, resolve_model_path

    for file in artefact.folder.iterdir():
        if file.is_file() and file.name not in TRAINING_STATE:
            shutil.copy2(file, staging / file.name)
    make_portable(staging, _card_base(workspace, artefact, base) or artefact.base or "")
    if not (staging / "tokenizer_config.json").exists():
        load_tokenizer(base.path, trust_remote_code=base.trust_remote_code).save_pretrained(str(staging))
    return read_family(resolve_model_path(base.path), base.family)


def _write_merged(workspace: Workspace, artefact: Artefact, staging: Path, dtype: str | None) -> str:
    import torch

    loaded = load_artefact(workspace, artefact.folder, dtype=dtype)  # an 8B base in float32 would need 32 GB
    model = loaded.model
    if dtype:
        model = model.to(getattr(torch, dtype))  # the LoRA deltas were float32
    model.save_pretrained(str(staging), safe_serialization=True, max_shard_size=MAX_SHARD_SIZE)
    loaded.tokenizer.save_pretrained(str(staging))
    generation_config = getattr(model, "generation_config", None)
    if generation_config is not None and not (staging / "generation_config.json").exists():
        generation_config.save_pretrained(str(staging))
    return loaded.family


def model_card(*, layout: str, base: str | None, family: str, dtype: str, provenance: dict[str, Any],
               evaluation: str | None) -> str:
    """README.md with YAML metadata the Hub reads, then provenance and evaluation in prose."""
    library = "peft" if layout == "adapter" else "transformers"
    lines = ["---"]
    if base:
        lines.append(f"base_model: {json.dumps(base)}")
    lines += [f"library_name: {library}", f"pipeline_tag: {PIPELINE_TAGS.get(family, 'text-generation')}",
              "license: # fill in: the base model's license and your own terms for your writing",
              "tags:", "  - voicebench", "  - lora" if layout == "adapter" else "  - merged", "---", ""]
    title = provenance.get("version") or provenance.get("checkpoint") or "voicebench export"
    lines += [f"# {title}", "",
              "A model fine-tuned with voicebench on one writer's own prose.", ""]
    if layout == "adapter":
        lines += [f"This folder is a LoRA adapter for `{base}`. Load it with peft:", "", "```python",
                  "from transformers import AutoModelForCausalLM, AutoTokenizer",
                  "from peft import PeftModel",
                  f"base = AutoModelForCausalLM.from_pretrained(\"{base}\")  # or the base model's folder",
                  "model = PeftModel.from_pretrained(base, \"path/to/this/folder\")", "```", ""]
    else:
        lines += [f"This folder is a complete model ({dtype} safetensors"
                  + (f"; LoRA folded into `{base}`" if base else "") + "). Load it with transformers:", "",
                  "```python", "from transformers import AutoModelForCausalLM, AutoTokenizer",
                  "model = AutoModelForCausalLM.from_pretrained(\"path/to/this/folder\")",
                  "tokenizer = AutoTokenizer.from_pretrained(\"path/to/this/folder\")", "```", ""]
    lines += ["## Provenance", ""]
    if provenance:
        lines += [f"- {key.replace('_', ' ')}: {value}" for key, value in provenance.items() if value is not None]
    else:
        lines.append("- exported from a training checkpoint; no version record.")
    lines += ["", "## Evaluation", "", evaluation or "Not evaluated against an earlier version before export.", ""]
    return "\n".join(lines)
