"""What is on this machine for each workspace model — from files alone, offline, in well under
two seconds (no torch, no transformers).

`check_model(entry)` finds the folder (a local path, or the Hugging Face cache's snapshot for
a Hub id), then reads config.json, the tokenizer files, the weight files (safetensors headers
only: names and shapes, never tensors), the chat template and the special tokens a sampler
needs (EOS, end of turn, the diffusion mask). It returns a `ModelReport`: the pieces found,
the family, the parameter count (exact from safetensors headers, else from the config's
sizes), the memory needed to sample, and one line per problem:
- `missing`: the model is not downloaded here — what to run (`huggingface-cli download …`);
- `problems`: the files are there but wrong (missing shards, another family's config, a
  diffusion tokenizer without a mask token) — what, which file, what to do.
"""

from __future__ import annotations

import dataclasses
import json
import os
import struct
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from engine.models.loading import DIFFUSION_FAMILIES, FAMILY_LLADA, FAMILY_MASKED, detect_family
from engine.models.memory import FAMILY_BERT, FAMILY_GPT2, FAMILY_LLAMA, GIB, ModelShape, ShapeError, sampling_bytes
from engine.workspace import ModelEntry, looks_like_hub_id

END_OF_TURN_TOKENS = ("<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endofturn|>")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "vocab.txt")
SAMPLE_TOKENS = 1024


@dataclasses.dataclass(frozen=True)
class ModelReport:
    name: str
    path: str  # as configured
    folder: str | None  # where the files are on this machine (None: not here)
    family: str | None
    pieces: tuple[tuple[str, bool], ...]  # (config | tokenizer | weights | chat template, found)
    special_ids: tuple[tuple[str, int | None], ...]  # (EOS | end of turn | mask, id or None)
    parameters: int | None
    sampling_bytes: int | None
    missing: tuple[str, ...]  # what is not downloaded, and the command that fetches it
    problems: tuple[str, ...]  # broken input: what, which file, what to do

    def lines(self) -> list[str]:
        head = f"{self.name}  {self.family or '?'}  {self.path}"
        out = [head]
        if self.folder is None:
            return out + [f"  {line}" for line in self.missing + self.problems]
        out.append("  " + "  ".join(f"{piece} {'yes' if found else 'MISSING'}" for piece, found in self.pieces))
        out.append("  special ids: " + ", ".join(f"{name} {'-' if value is None else value}"
                                                  for name, value in self.special_ids))
        if self.parameters is not None:
            need = f"; sampling needs ~{self.sampling_bytes / GIB:.1f} GB (bfloat16, {SAMPLE_TOKENS:,} tokens)" \
                if self.sampling_bytes else ""
            out.append(f"  {self.parameters:,} parameters{need}")
        return out + [f"  {line}" for line in self.missing + self.problems]


# Finding the files --------------------------------------------------------------------------
def hub_cache_dir() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface"))
    return home / "hub"


def cached_snapshot(hub_id: str) -> Path | None:
    """The cache's snapshot folder for a Hub id (refs/main, else the newest), or None."""
    repo = hub_cache_dir() / ("models--" + hub_id.replace("/", "--"))
    snapshots = repo / "snapshots"
    ref = repo / "refs" / "main"
    if ref.exists():
        folder = snapshots / ref.read_text(encoding="utf-8").strip()
        if folder.is_dir():
            return folder
    if snapshots.is_dir():
        folders = sorted(snapshots.iterdir(), key=lambda path: path.stat().st_mtime, reverse=True)
        return folders[0] if folders else None
    return None


def _read_json(path: Path, problems: list[str], what_to_do: str) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        problems.append(f"{path}: not valid JSON ({error}); {what_to_do}")
        return None
    if not isinstance(data, dict):
        problems.append(f"{path}: holds a JSON {type(data).__name__}, not an object; {what_to_do}")
        return None
    return data


def safetensors_parameters(path: Path) -> int:
    """Elements in one safetensors file from its header (8-byte length, then JSON)."""
    with path.open("rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(length))
    total = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        count = 1
        for size in info["shape"]:
            count *= int(size)
        total += count
    return total


def _weights(folder: Path, fetch: str, problems: list[str]) -> tuple[bool, int | None]:
    """(weights complete, parameters from their headers when safetensors)."""
    index = folder / "model.safetensors.index.json"
    if index.exists():
        data = _read_json(index, problems, f"download it again: {fetch}")
        if data is None:
            return False, None
        shards = sorted(set((data.get("weight_map") or {}).values()))
        absent = [shard for shard in shards if not (folder / shard).exists()]
        if absent:
            problems.append(f"{index}: lists {len(shards)} shards but {', '.join(absent)} "
                            f"{'is' if len(absent) == 1 else 'are'} missing from {folder}; download again: {fetch}")
            return False, None
        return True, sum(safetensors_parameters(folder / shard) for shard in shards)
    single = folder / "model.safetensors"
    if single.exists():
        return True, safetensors_parameters(single)
    if (folder / "pytorch_model.bin").exists() or (folder / "pytorch_model.bin.index.json").exists():
        return True, None
    return False, None


def _added_tokens(folder: Path) -> dict[str, int]:
    tokens: dict[str, int] = {}
    data = _read_json(folder / "tokenizer.json", [], "")
    for token in (data or {}).get("added_tokens", []):
        tokens[str(token.get("content"))] = int(token.get("id"))
    config = _read_json(folder / "tokenizer_config.json", [], "") or {}
    for index, token in (config.get("added_tokens_decoder") or {}).items():
        if isinstance(token, dict) and "content" in token:
            tokens.setdefault(str(token["content"]), int(index))
    return tokens


def _token_text(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


def _first_id(value: Any) -> int | None:
    if isinstance(value, list):
        value = value[0] if value else None
    return int(value) if isinstance(value, int) else None


# Sizes without torch --------------------------------------------------------------------------
def shape_from_config(config: dict[str, Any], family: str, parameters: int | None) -> ModelShape | None:
    """A ModelShape from config keys (Llama-style, GPT-2, ModernBERT, LLaDA), for sampling memory;
    `parameters` from safetensors headers when known, else the config formula (Llama-style,
    GPT-2 and LLaDA). None when the config's keys are none of these."""
    if family == FAMILY_LLADA:
        from engine.models.memory import llada_parameter_count

        sizes = llada_parameter_count(config)
        if parameters is not None:
            sizes["parameters"] = parameters
        return ModelShape(model_type="llada", block=FAMILY_LLAMA, diffusion=True, **sizes)
    model_type = str(config.get("model_type", ""))
    if model_type == "gpt2" and "n_embd" in config:
        h, layers, vocab = int(config["n_embd"]), int(config["n_layer"]), int(config["vocab_size"])
        formula = vocab * h + int(config.get("n_positions", 1024)) * h + layers * (12 * h * h + 13 * h) + 2 * h
        return ModelShape(model_type, FAMILY_GPT2, parameters or formula, layers * 12 * h * h, layers * 16 * h,
                          vocab, h, h, 4 * h, layers)
    keys = ("hidden_size", "intermediate_size", "num_hidden_layers", "vocab_size")
    if not all(key in config for key in keys):
        return None
    h, inner, layers, vocab = (int(config[key]) for key in keys)
    heads = int(config.get("num_attention_heads") or 1)
    kv = h // heads * int(config.get("num_key_value_heads") or heads)
    linear = layers * (2 * h * h + 2 * h * kv + 3 * h * inner)
    formula = None
    if family not in DIFFUSION_FAMILIES:  # Llama-style: embeddings, blocks with two norms, final norm, head
        tied = bool(config.get("tie_word_embeddings", False))
        formula = vocab * h * (1 if tied else 2) + linear + layers * 2 * h + h
    count = parameters or formula
    if count is None:
        return None
    block = FAMILY_BERT if family in DIFFUSION_FAMILIES else FAMILY_LLAMA
    lora_width = layers * (9 * h + 2 * kv + 3 * inner) if block == FAMILY_LLAMA else 0  # q,k,v,o,gate,up,down
    return ModelShape(model_type, block, count, linear, lora_width, vocab, h, kv, inner, layers,
                      family in DIFFUSION_FAMILIES)


# The check ------------------------------------------------------------------------------------
def check_model(entry: ModelEntry) -> ModelReport:
    hub = looks_like_hub_id(entry.path) and not Path(entry.path).expanduser().exists()
    fetch = f"huggingface-cli download {entry.path}" if hub else f"copy the model's files into {entry.path}"
    folder = cached_snapshot(entry.path) if hub else Path(entry.path).expanduser()
    report = dict(name=entry.name, path=entry.path, family=entry.family, parameters=None, sampling_bytes=None)
    if folder is None or not folder.is_dir():
        where = "not in the Hugging Face cache" if hub else "no such folder"
        return ModelReport(**report, folder=None, pieces=(), special_ids=(),
                           missing=(f"not on this machine ({where}): {fetch}",), problems=())
    problems: list[str] = []
    missing: list[str] = []
    config = _read_json(folder / "config.json", problems, f"download it again: {fetch}")
    family = size_family = entry.family
    if config is not None:
        found = detect_family(SimpleNamespace(**config))
        if entry.family and found != entry.family and not (entry.family == FAMILY_MASKED and found in DIFFUSION_FAMILIES):
            problems.append(
                f"{folder / 'config.json'}: model_type {config.get('model_type')!r} is a {found} model, but the "
                f"workspace says family = \"{entry.family}\" for {entry.name}; fix `family` in voicebench.toml "
                "or point `path` at the right model.")
        family = entry.family or found
        size_family = found  # sizes follow the config that is there
    elif not (folder / "config.json").exists():
        missing.append(f"{folder / 'config.json'}: missing; {fetch}")
    complete, parameters = _weights(folder, fetch, problems)
    if not complete and not any("shards" in line for line in problems):
        missing.append(f"{folder}: no weights (model.safetensors); {fetch}")
    tokenizer = any((folder / name).exists() for name in TOKENIZER_FILES)
    if not tokenizer:
        missing.append(f"{folder}: no tokenizer files (tokenizer.json); {fetch}")
    tokenizer_config = _read_json(folder / "tokenizer_config.json", problems, f"download it again: {fetch}") or {}
    template = (folder / "chat_template.jinja").exists() or bool(tokenizer_config.get("chat_template"))
    added = _added_tokens(folder)
    eos_text = _token_text(tokenizer_config.get("eos_token"))
    eos = added.get(eos_text) if eos_text else None
    if eos is None and config is not None:
        eos = _first_id(config.get("eos_token_id"))
    end_of_turn = next((added[text] for text in END_OF_TURN_TOKENS if text in added), None)
    mask_text = _token_text(tokenizer_config.get("mask_token"))
    mask = added.get(mask_text) if mask_text else None
    if family == FAMILY_LLADA:  # LLaDA's tokenizer_config names no mask_token; its mask is <|mdm_mask|>
        mask = added.get("<|mdm_mask|>", mask)
    if family in DIFFUSION_FAMILIES and tokenizer and mask is None:
        token = "<|mdm_mask|>" if family == FAMILY_LLADA else "a mask token"
        problems.append(f"{folder / 'tokenizer_config.json'}: no mask token, and {entry.name} is a diffusion "
                        f"model ({family}) that samples by filling masks; add \"mask_token\" ({token}) to it "
                        "or use the tokenizer the model was trained with.")
    shape = None
    if config is not None and size_family:
        try:
            shape = shape_from_config(config, size_family, parameters)
        except ShapeError as error:
            problems.append(f"{folder / 'config.json'}: {error}")
        except KeyError as error:
            problems.append(f"{folder / 'config.json'}: no `{error.args[0]}`, which sizes the model; download it "
                            f"again: {fetch}")
        except (ValueError, TypeError) as error:  # a size written as text, a list, null…
            problems.append(f"{folder / 'config.json'}: a size is not a whole number ({error}); download it "
                            f"again: {fetch}")
    need = sampling_bytes(shape, "bfloat16", SAMPLE_TOKENS, four_bit=entry.load_in_4bit) if shape else None
    return ModelReport(
        name=entry.name, path=entry.path, folder=str(folder), family=family,
        pieces=(("config", config is not None), ("tokenizer", tokenizer), ("weights", complete),
                ("chat template", template)),
        special_ids=(("EOS", eos), ("end of turn", end_of_turn), ("mask", mask)),
        parameters=shape.parameters if shape else parameters, sampling_bytes=need,
        missing=tuple(missing), problems=tuple(problems),
    )
