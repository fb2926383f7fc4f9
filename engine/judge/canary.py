"""Canaries: the fixed prompts every model and checkpoint answers, with fixed settings.

    canaries = load_canaries(workspace.canaries_path)           # CanaryFileError names file:line
    for event in run_canaries(db, workspace, "data/models/demo-ar", seed=0):
        print(event.to_json())

`run_canaries` is a generator of events (`canary_start`, `canary`, `canary_done`). It
works out each canary's generation identity (model content hash, adapter hash, canary
version, settings, seed) first and skips the ones already in the store, so re-running
the same model, settings and seed adds no rows — and loads no model when nothing is new.
Causal models generate with `engine.sample.causal.stream_causal`, diffusion families with
`engine.sample.diffusion.sample`; automatic metrics from `engine.judge.metrics` are stored with every
generation. An optional adapter folder (peft) is applied on top of the base model.

Settings come from the workspace: `[canary] temperature` (causal, default 0.7) and
`[sampler]` (diffusion: steps, block_length, remasking, …); `gen_length` is always the
canary's `max_new_tokens`.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from engine.judge import store
from engine.events import Event
from engine.settings import Key, SettingsError, Table, TableArray, read_settings
from engine.workspace import ModelEntry, Workspace

CANARY_KINDS = ("known-topic-short", "novel-topic-short", "known-topic-long")
ID_PATTERN = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
DEFAULT_CAUSAL_TEMPERATURE = 0.7  # some sampling, so voice shows; the seed makes it repeatable
MAX_NEW_TOKENS_LIMIT = 4096


class CanaryFileError(SettingsError):
    """canaries.toml is unusable; the message names the file, line and canary."""


CANARIES_SCHEMA = {
    "canary": TableArray(Table({
        "id": Key("str", required=True, doc="stable kebab-case id"),
        "kind": Key("str", required=True, choices=CANARY_KINDS),
        "prompt": Key("str", required=True, doc="the instruction the model answers"),
        "max_new_tokens": Key("int", required=True, minimum=1, maximum=MAX_NEW_TOKENS_LIMIT),
        "set": Key("str", doc="optional named set, chosen with --set"),
    })),
}


@dataclasses.dataclass(frozen=True)
class Canary:
    id: str  # stable kebab-case id; the store versions its prompt text
    kind: str  # one of CANARY_KINDS
    prompt: str
    max_new_tokens: int  # generation length (diffusion: gen_length)
    set: str | None = None  # optional named set, selected with --set


# Events ------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class CanaryStart(Event):
    kind = "canary_start"
    label: str  # how the leaderboard will name this model / checkpoint
    total: int  # canaries to answer
    new: int  # of which not yet in the store


@dataclasses.dataclass(frozen=True)
class CanaryResult(Event):
    kind = "canary"
    canary_id: str
    version: int
    generation_id: int
    reused: bool  # True: identical generation already stored, nothing was run
    text: str
    token_count: int
    seconds: float


@dataclasses.dataclass(frozen=True)
class CanaryDone(Event):
    kind = "canary_done"
    label: str
    generated: int
    reused: int


# Loading -----------------------------------------------------------------------------------
def load_canaries(path: str | Path) -> list[Canary]:
    """Parse canaries.toml; every problem names the file, line and canary id."""
    settings = read_settings(path, CANARIES_SCHEMA, error_type=CanaryFileError,
                             what_is_it="Create it with [[canary]] entries (see the README), or copy the demo's data/canaries.toml")
    canaries: list[Canary] = []
    seen: dict[str, int] = {}
    for key_path, entry in settings.entries("canary"):
        canary_id = entry["id"]
        line = settings.line(*key_path)
        if not ID_PATTERN.match(canary_id):
            raise settings.error((*key_path, "id"), f"must be kebab-case (like \"river-short\"), got {canary_id!r}",
                                 "Use lower-case letters and digits joined by -")
        if canary_id in seen:
            raise settings.error((*key_path, "id"), f"{canary_id!r} is already used on line {seen[canary_id]}",
                                 "Ids must be unique; rename one")
        if not entry["prompt"].strip():
            raise settings.error((*key_path, "prompt"), "is empty", "Write the instruction the model answers")
        seen[canary_id] = line
        canaries.append(Canary(id=canary_id, kind=entry["kind"], prompt=entry["prompt"],
                               max_new_tokens=entry["max_new_tokens"], set=entry.get("set")))
    return canaries


def select_canaries(canaries: list[Canary], set_name: str | None) -> list[Canary]:
    """`--set NAME` matches a canary's `set`, its `kind`, or its id; None keeps all."""
    if not set_name:
        return list(canaries)
    chosen = [c for c in canaries if set_name in (c.set, c.kind, c.id)]
    if not chosen:
        sets = sorted({c.set for c in canaries if c.set} | {c.kind for c in canaries})
        raise CanaryFileError(f"no canary matches --set {set_name!r}; choose one of: {', '.join(sets)}.")
    return chosen


# Settings ----------------------------------------------------------------------------------
def canary_settings(workspace: Workspace, family: str, canary: Canary, seed: int) -> dict[str, Any]:
    """The exact settings a canary generates with; stored with (and identifying) the output."""
    from engine.models.loading import FAMILY_CAUSAL

    dtype = load_precision(workspace)
    precision = {"dtype": dtype} if dtype else {}
    if family == FAMILY_CAUSAL:
        section = workspace.section("canary")
        return {
            "sampler": "causal", "max_new_tokens": canary.max_new_tokens,
            "temperature": float(section.get("temperature", DEFAULT_CAUSAL_TEMPERATURE)),
            "use_template": bool(section.get("use_template", True)), "seed": seed, **precision,
        }
    from engine.sample.diffusion import SamplerSettings

    section = workspace.section("sampler")
    known = {field.name for field in dataclasses.fields(SamplerSettings)}
    values = {key: value for key, value in section.items() if key in known}
    gen_length = canary.max_new_tokens
    block_length = int(values.get("block_length", SamplerSettings.block_length))
    if block_length <= 0 or gen_length % block_length:
        block_length = gen_length  # one block when the canary length does not divide evenly
    blocks = gen_length // block_length
    steps = min(int(values.get("steps", SamplerSettings.steps)), gen_length)
    steps = max(blocks, steps - steps % blocks)  # the sampler spends steps evenly per block
    values.update(gen_length=gen_length, block_length=block_length, steps=steps, seed=seed)
    settings = dataclasses.asdict(SamplerSettings(**values))
    settings["sampler"] = "diffusion"
    return {**settings, **precision}


def load_precision(workspace: Workspace) -> str | None:
    """A swept precision (float32, bfloat16, float16, 4bit) from the `[load]` table that
    engine.sample.sweep puts it in; None loads at the model's default."""
    return workspace.section("load").get("dtype") or None


# Identity ----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Contestant:
    """Who answered: the model bytes plus the adapter or checkpoint, and a display label."""

    model_path: str
    model_hash: str
    model_name: str
    family: str
    adapter_path: str | None
    adapter_hash: str | None
    run_id: str | None
    checkpoint: str | None
    checkpoint_step: int | None
    label: str


def _run_location(path: Path, runs_dir: Path) -> tuple[str | None, str | None]:
    """(run id, checkpoint folder name) when `path` lies under the workspace's runs/
    (runs/<id>/checkpoints/checkpoint-N → ("<id>", "checkpoint-N"), as training names it)."""
    try:
        parts = path.resolve().relative_to(runs_dir.resolve()).parts
    except ValueError:
        return None, None
    if not parts:
        return None, None
    return parts[0], (parts[-1] if len(parts) > 1 else None)


def _step_of(checkpoint: str | None) -> int | None:
    match = re.search(r"(\d+)$", checkpoint or "")
    return int(match.group(1)) if match else None


def adapter_folder(workspace: Workspace, adapter: str) -> Path:
    """The adapter folder (relative paths are inside the workspace); FileNotFoundError when
    it holds no peft adapter."""
    adapter_dir = Path(adapter).expanduser()
    if not adapter_dir.is_absolute():
        adapter_dir = workspace.root / adapter_dir
    if not (adapter_dir / "adapter_config.json").exists():
        raise FileNotFoundError(
            f"{adapter_dir}: no adapter_config.json, so it is not a peft adapter folder. "
            "Point --adapter at a checkpoint folder that holds adapter_model.safetensors."
        )
    return adapter_dir


def describe_contestant(db: Database, workspace: Workspace, model: str, adapter: str | None = None,
                        label: str | None = None) -> Contestant:
    """Resolve a model name/path (and optional adapter folder) into a Contestant."""
    from engine.models.loading import read_family, resolve_model_path

    entry = workspace.model(model)
    if entry.adapter and not adapter:  # the `voice` model: its current version's adapter
        adapter = entry.adapter
        label = label or entry.name
    model_path = str(Path(resolve_model_path(entry.path)).resolve())
    family = read_family(model_path, entry.family)
    model_hash = store.cached_content_hash(db, model_path)
    adapter_path = adapter_hash = None
    run_id, checkpoint = _run_location(Path(model_path), workspace.runs_dir)
    if adapter:
        adapter_dir = adapter_folder(workspace, adapter)
        adapter_path = str(adapter_dir.resolve())
        adapter_hash = store.content_hash(adapter_path)
        run_id, checkpoint = _run_location(adapter_dir, workspace.runs_dir)
    if label is None:
        if run_id:  # the same "<run-id>/checkpoint-N" label training gives its checkpoints
            label = f"{run_id}/{checkpoint}" if checkpoint else run_id
        else:
            label = entry.name if not adapter else f"{entry.name}+{Path(adapter_path).name}"
    return Contestant(model_path=model_path, model_hash=model_hash, model_name=entry.name, family=family,
                      adapter_path=adapter_path, adapter_hash=adapter_hash, run_id=run_id,
                      checkpoint=checkpoint, checkpoint_step=_step_of(checkpoint), label=label)


# Running -----------------------------------------------------------------------------------
def run_canaries(
    db: Database,
    workspace: Workspace,
    model: str,
    *,
    adapter: str | None = None,
    set_name: str | None = None,
    seed: int = 0,
    label: str | None = None,
    canaries: list[Canary] | None = None,
    trace_dir: str | Path | None = None,
) -> Generator[Event, None, list[int]]:
    """Answer every selected canary once per identity; returns the generation ids."""
    chosen = select_canaries(canaries if canaries is not None else load_canaries(workspace.canaries_path), set_name)
    who = describe_contestant(db, workspace, model, adapter, label)
    model_id = store.ensure_model(db, path=who.model_path, name=who.model_name, family=who.family,
                                  hash_=who.model_hash)
    if who.run_id and not db["runs"].count_where("id = ?", [who.run_id]):
        store.record_run(db, run_id=who.run_id, method="unknown", status="unknown",
                         out_dir=workspace.runs_dir / who.run_id)
    plans = []
    for canary in chosen:
        version_row = store.ensure_canary_version(db, canary_id=canary.id, kind=canary.kind, prompt=canary.prompt,
                                                  max_new_tokens=canary.max_new_tokens, set_name=canary.set)
        settings = canary_settings(workspace, who.family, canary, seed)
        key = store.generation_identity(model_hash=who.model_hash, adapter_hash=who.adapter_hash,
                                        canary_row_id=version_row, prompt=canary.prompt, settings=settings, seed=seed)
        plans.append((canary, version_row, settings, key, store.find_generation(db, key)))
    new_count = sum(1 for plan in plans if plan[4] is None)
    yield CanaryStart(label=who.label, total=len(plans), new=new_count)

    loaded = _load(workspace.model(model), who, load_precision(workspace)) if new_count else None
    ids: list[int] = []
    generated = 0
    for canary, version_row, settings, key, existing in plans:
        version = next(db.query("select version from canaries where id = ?", [version_row]))["version"]
        if existing is not None:
            ids.append(existing["id"])
            yield CanaryResult(canary_id=canary.id, version=version, generation_id=existing["id"], reused=True,
                               text=existing["text"], token_count=existing["token_count"] or 0,
                               seconds=existing["seconds"] or 0.0)
            continue
        output = _generate(loaded, who.family, canary.prompt, settings, trace_dir, key, who.label)
        record = {
            "identity_key": key, "model_id": model_id, "canary_id": version_row, "run_id": who.run_id,
            "checkpoint": who.checkpoint, "checkpoint_step": who.checkpoint_step,
            "adapter_path": who.adapter_path, "adapter_hash": who.adapter_hash, "label": who.label,
            "family": who.family, "settings": settings, "seed": seed, "prompt": canary.prompt,
            "text": output["text"], "token_count": output["token_count"], "seconds": output["seconds"],
            "forward_passes": output["forward_passes"], "trace_path": output["trace_path"],
            "metrics": output["metrics"],
        }
        generation_id, _ = store.record_generation(db, record)
        ids.append(generation_id)
        generated += 1
        yield CanaryResult(canary_id=canary.id, version=version, generation_id=generation_id, reused=False,
                           text=output["text"], token_count=output["token_count"], seconds=output["seconds"])
    yield CanaryDone(label=who.label, generated=generated, reused=len(plans) - generated)
    return ids


def _load(entry: ModelEntry, who: Contestant, precision: str | None = None) -> Any:
    """The contestant's model through the one load path, with its workspace entry's settings
    (remote code, 4-bit), at the folder, family and adapter `describe_contestant` resolved, and
    at a swept `precision` ("4bit" quantises as the entry's load_in_4bit does; others are the dtype).

    The adapter goes through the load path too, which merges it into full-precision weights
    but keeps it as live LoRA layers over 4-bit ones (re-quantising merged weights would round
    most of a small adapter away), and applies it once: a `voice` entry's adapter is the one
    `describe_contestant` resolved, not a second copy on top."""
    from engine.models.loading import load_entry

    entry = dataclasses.replace(entry, path=who.model_path, family=who.family, adapter=who.adapter_path)
    if precision == "4bit":
        entry, precision = dataclasses.replace(entry, load_in_4bit=True), None
    return load_entry(entry, dtype=precision)


def _generate(loaded: Any, family: str, prompt: str, settings: dict[str, Any],
              trace_dir: str | Path | None, key: str, label: str) -> dict[str, Any]:
    """Run one canary through the shared sampler; text, counts, timing and metrics.

    With `trace_dir`, a diffusion run is also saved as a replayable trace (engine.sample.trace)
    named after the generation's identity, so the Canvas screen can replay any canary.
    """
    from engine.models.loading import FAMILY_CAUSAL

    started = time.perf_counter()
    frames: list[Any] = []
    if family == FAMILY_CAUSAL:
        from engine.sample.causal import stream_causal

        stream = stream_causal(loaded, prompt, settings["max_new_tokens"], settings["temperature"],
                               settings["seed"], use_template=settings["use_template"])
    else:
        from engine.sample.diffusion import SamplerSettings, sample

        sampler_settings = SamplerSettings(**{k: v for k, v in settings.items() if k not in ("sampler", "dtype")})
        stream = sample(loaded, prompt, sampler_settings)
    while True:
        try:
            frame = next(stream)
        except StopIteration as stop:
            final = stop.value
            break
        if trace_dir is not None and family != FAMILY_CAUSAL:
            frames.append(frame)
    trace_path = None
    if trace_dir is not None and family != FAMILY_CAUSAL:
        trace_path = str(_save_trace(Path(trace_dir) / f"canary-{key[:16]}.jsonl", loaded, label, prompt,
                                     settings, frames, final))
    token_ids = list(final.token_ids)
    return {
        "text": final.text, "token_count": len(token_ids),
        "seconds": float(getattr(final, "seconds", None) or time.perf_counter() - started),
        "forward_passes": int(getattr(final, "forward_passes", 0) or 0), "trace_path": trace_path,
        "metrics": text_metrics(loaded, prompt, final.text, token_ids),
    }


def _save_trace(path: Path, loaded: Any, label: str, prompt: str, settings: dict[str, Any],
                frames: list[Any], final: Any) -> Path:
    from engine.sample.trace import TraceHeader, save_trace

    committed = {token_id for frame in frames for _, token_id, _ in frame.committed}
    tokens = {token_id: loaded.tokenizer.decode([token_id]) for token_id in committed}
    header = TraceHeader(model=label, prompt=prompt, family=loaded.family, tokens=tokens,
                         settings={k: v for k, v in settings.items() if k != "sampler"})
    return save_trace(path, header, frames, final)


def text_metrics(loaded: Any, prompt: str, text: str, token_ids: list[int]) -> dict[str, Any]:
    """Every automatic metric for one output, from engine.judge.metrics (one implementation)."""
    from engine.judge.metrics import text_metrics as measure

    return measure(text, prompt=prompt, token_ids=token_ids, end_ids=end_token_ids(loaded))


def end_token_ids(loaded: Any) -> tuple[int, ...]:
    """EOS and end-of-turn ids of a loaded model, from each sampler's own lookup."""
    from engine.models.loading import FAMILY_CAUSAL

    if loaded.family == FAMILY_CAUSAL:
        from engine.sample.causal import stop_ids

        return tuple(sorted(stop_ids(loaded)))
    from engine.sample.diffusion import special_ids

    return special_ids(loaded).end_ids
