"""Sampler settings as contestants: sweeps, presets, and what a setting's label stands for.

    plan = plan_sweep(workspace, "demo-diffusion", {"temperature": ["0", "0.8"], "block_length": ["16", "32"]})
    for event in run_sweep(db, workspace, plan):        # canary runs per setting, then a table
        print(event.to_json())
    save_preset(workspace, "calm", {"temperature": 0.0, "steps": 64})   # presets.toml

A *setting* is a set of overrides of the workspace's sampler tables — `[sampler]` for
diffusion models, `[canary]` (temperature, use_template) for causal ones. A sweep starts
from a base setting (the workspace's, or a preset) and changes one variable at a time, or
every combination with `grid=True`. Each setting runs the canaries through
`engine.judge.canary.run_canaries`, so its outputs carry the same identity (model bytes,
adapter, canary version, full settings, seed) as any canary run, and are stored under the
setting's own label, `M · T=0.8`; `contestant_settings` in judgments.db keeps the label's
model, adapter and full overrides, so the voice score (engine.judge.voice) can generate
with exactly that setting. Blind sessions, the leaderboard and the report then treat
settings as they treat models. A setting whose outputs are already stored under another
label (same identity) keeps that label: identical outputs are one contestant.

Every value is checked before anything is generated: a block length that does not divide a
canary's length, steps the sampler would silently change, an unknown remasking or EOS mode,
or a variable this model family's sampler does not have — each refused naming the value.
Precision is a variable like the others: `dtype` (float32 | bfloat16 | float16 | 4bit)
goes into a `[load]` table that canary runs and the voice score pass to the one load path
(engine.models.loading.load_entry; 4bit sets the entry's load_in_4bit), and into the
output's settings, so a float16 output never shares an identity with a float32 one. A
precision this machine cannot run (4bit without bitsandbytes, a dtype its torch cannot
compute in) is refused before anything loads, and so is any dtype for a model whose entry
says load_in_4bit (it would load 4-bit whatever the label says). An adapter (--adapter, or
the `voice` model's own) loads with the model at every precision through that same path.

Variables: temperature, steps, block_length, cfg_scale, remasking, threshold, eos
(keep | suppress | deprioritise), use_template, dtype; causal models: temperature,
use_template, dtype (they always stop at EOS).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
from collections.abc import Generator, Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from engine.atomic import write_atomic
from engine.events import Event
from engine.settings import toml_value
from engine.workspace import ModelEntry, Workspace

PRESETS_NAME = "presets.toml"
EOS_MODES = ("keep", "suppress", "deprioritise")
DIFFUSION_VARIABLES = ("temperature", "steps", "block_length", "cfg_scale", "remasking", "threshold", "eos",
                       "use_template", "dtype")
CAUSAL_VARIABLES = ("temperature", "use_template", "dtype")
PRECISIONS = ("float32", "bfloat16", "float16", "4bit")
PRECISION_ALIASES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16", "half": "float16", "nf4": "4bit",
                     "int4": "4bit"}
LOAD_SECTION = "load"  # the workspace table a setting's precision travels in
# How a variable is written in a label: "demo-ar · T=0.8".
SHORT_NAMES = {"temperature": "T", "block_length": "block", "cfg_scale": "cfg"}
LABEL_SEPARATOR = " · "
PRESET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


class SweepError(ValueError):
    """A sweep, setting or preset that cannot run; the message names the value and what to do."""


# Settings ------------------------------------------------------------------------------------
def parse_value(variable: str, text: str) -> Any:
    """A typed value from the command line ("0.8" → 0.8, "true" → True, "none" → None)."""
    text = text.strip()
    if variable == "dtype":
        return PRECISION_ALIASES.get(text.lower(), text.lower())
    try:
        if variable in ("steps", "block_length"):
            return int(text)
        if variable in ("temperature", "cfg_scale"):
            return float(text)
        if variable == "threshold":
            return None if text.lower() in ("none", "off", "") else float(text)
        if variable == "use_template":
            if text.lower() in ("true", "yes", "1", "on"):
                return True
            if text.lower() in ("false", "no", "0", "off"):
                return False
            raise ValueError(text)
    except ValueError:
        kind = {"steps": "a whole number", "block_length": "a whole number", "use_template": "true or false"}
        raise SweepError(f"{variable}={text!r}: not {kind.get(variable, 'a number')}.") from None
    return text


def _sections(family: str, overrides: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Overrides as workspace tables: which table each variable lives in."""
    from engine.models.loading import FAMILY_CAUSAL

    sections: dict[str, dict[str, Any]] = {}
    if "dtype" in overrides:
        # The machine's default precision loads exactly as no setting does: one identity, one contestant.
        precision = overrides["dtype"]
        sections[LOAD_SECTION] = {"dtype": None if precision == default_precision() else precision}
    overrides = {key: value for key, value in overrides.items() if key != "dtype"}
    if family == FAMILY_CAUSAL:
        return {**sections, "canary": dict(overrides)}
    sampler: dict[str, Any] = {}
    for key, value in overrides.items():
        if key == "eos":
            sampler["suppress_eos"] = value == "suppress"
            sampler["deprioritise_eos"] = value == "deprioritise"
        else:
            sampler[key] = value
    return {**sections, "sampler": sampler}


def default_precision() -> str:
    """What load_model uses when no dtype is given: bfloat16 on a GPU, float32 on CPU."""
    import torch

    return "bfloat16" if torch.cuda.is_available() else "float32"


def check_precision(value: str, where: str) -> None:
    """Refuse a precision this machine cannot load or compute in, before anything loads."""
    import importlib.util

    if value not in PRECISIONS:
        raise SweepError(f"{where}: dtype={value!r} is not one of {', '.join(PRECISIONS)}.")
    if value == "4bit":
        if importlib.util.find_spec("bitsandbytes") is None:
            raise SweepError(f"{where}: dtype=4bit needs bitsandbytes, which is not installed here "
                             "(`pip install bitsandbytes`), or sweep float32/bfloat16/float16 instead.")
        return
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    try:  # the operations every model here runs: a matmul, a softmax, a layer norm
        probe = torch.ones(4, 4, dtype=getattr(torch, value), device=device)
        torch.nn.functional.layer_norm(torch.softmax(probe @ probe, dim=-1), (4,))
    except (RuntimeError, TypeError) as error:
        raise SweepError(f"{where}: dtype={value} does not run on this {device} ({error}); "
                         "sweep a precision it supports.") from None


def workspace_with(workspace: Workspace, family: str, overrides: Mapping[str, Any]) -> Workspace:
    """A copy of the workspace whose sampler tables carry `overrides` (the original is untouched)."""
    settings = {name: (dict(table) if isinstance(table, dict) else table) for name, table in workspace.settings.items()}
    for section, values in _sections(family, overrides).items():
        settings[section] = {**settings.get(section, {}), **values}
    return dataclasses.replace(workspace, settings=settings)


def check_variables(family: str, overrides: Mapping[str, Any], where: str) -> None:
    """Refuse variables this family's sampler does not have, and bad enum values."""
    from engine.models.loading import FAMILY_CAUSAL
    from engine.sample.diffusion import REMASKING_CHOICES

    allowed = CAUSAL_VARIABLES if family == FAMILY_CAUSAL else DIFFUSION_VARIABLES
    for variable, value in overrides.items():
        if variable not in allowed:
            if family == FAMILY_CAUSAL and variable in DIFFUSION_VARIABLES:
                raise SweepError(
                    f"{where}: {variable} is a diffusion-sampler setting; causal models generate token by token "
                    f"and stop at EOS, so they can vary only {', '.join(CAUSAL_VARIABLES)}.")
            raise SweepError(f"{where}: unknown variable {variable!r}; this model can vary {', '.join(allowed)}.")
        if variable == "dtype":
            check_precision(value, where)
        if variable == "eos" and value not in EOS_MODES:
            raise SweepError(f"{where}: eos={value!r} is not one of {', '.join(EOS_MODES)}.")
        if variable == "remasking" and value not in REMASKING_CHOICES:
            raise SweepError(f"{where}: remasking={value!r} is not one of {', '.join(REMASKING_CHOICES)}.")


def check_precision_applies(entry: ModelEntry, overrides: Mapping[str, Any], where: str) -> None:
    """Refuse a precision for a model whose workspace entry always quantises: with
    `load_in_4bit = true` every setting would load 4-bit whatever its dtype says, so the
    labels would lie (float32 would be the 4-bit base, 4bit a copy of it)."""
    if "dtype" in overrides and entry.load_in_4bit:
        raise SweepError(f"{where}: model {entry.name!r} has load_in_4bit = true in voicebench.toml, so it loads "
                         "4-bit whatever dtype says; give dtype only for a model entry without load_in_4bit "
                         "(4bit is one of its values).")


def _short(variable: str, value: Any) -> str:
    return f"{SHORT_NAMES.get(variable, variable)}={value}"


def setting_label(model_name: str, varied: Mapping[str, Any]) -> str:
    """"demo-ar · T=0.8" (one variable), "demo-ar · T=0.8, block=64" (grid), "demo-ar · base"."""
    if not varied:
        return f"{model_name}{LABEL_SEPARATOR}base"
    return model_name + LABEL_SEPARATOR + ", ".join(_short(key, value) for key, value in varied.items())


# Presets -------------------------------------------------------------------------------------
def presets_path(workspace: Workspace) -> Path:
    return workspace.root / PRESETS_NAME


def load_presets(workspace: Workspace) -> dict[str, dict[str, Any]]:
    """Named settings from `[presets.NAME]` in voicebench.toml, then presets.toml (which wins)."""
    presets = {name: dict(table) for name, table in workspace.settings.get("presets", {}).items()
               if isinstance(table, dict)}
    presets.update(_file_presets(workspace))
    return presets


def preset(workspace: Workspace, name: str) -> dict[str, Any]:
    presets = load_presets(workspace)
    if name not in presets:
        known = ", ".join(sorted(presets)) or "none saved yet"
        raise SweepError(f"no preset named {name!r} (known: {known}); save one with save_preset or in {PRESETS_NAME}.")
    return presets[name]


def apply_preset(workspace: Workspace, model: str, name: str) -> Workspace:
    """The workspace as `canary --preset NAME` runs it: the preset's settings over its tables."""
    from engine.models.loading import read_family

    entry = workspace.model(model)
    family = read_family(entry.path, entry.family)
    values = preset(workspace, name)
    check_variables(family, values, f"preset {name!r}")
    check_precision_applies(entry, values, f"preset {name!r}")
    return workspace_with(workspace, family, values)


def _toml_value(value: Any) -> str:
    if isinstance(value, list):  # a preset holds single settings
        raise SweepError(f"a preset value must be text, a number or true/false, got {value!r}.")
    try:
        return toml_value(value)
    except TypeError:
        raise SweepError(f"a preset value must be text, a number or true/false, got {value!r}.") from None


def save_preset(workspace: Workspace, name: str, settings: Mapping[str, Any]) -> Path:
    """Save named sampler settings to the workspace's presets.toml (atomically, others kept).

    `settings` holds sweep variables (temperature, steps, block_length, cfg_scale, remasking,
    threshold, eos, use_template); None values are left out. The Canvas screen calls this to
    save what it is showing; `sweep --preset` and `canary --preset` read it back.
    """
    if not PRESET_NAME.match(name):
        raise SweepError(f"preset name {name!r}: use letters, digits, '-' and '_' (like \"calm-64\").")
    unknown = sorted(set(settings) - set(DIFFUSION_VARIABLES))
    if unknown:
        raise SweepError(f"preset {name!r}: unknown settings {unknown}; allowed: {', '.join(DIFFUSION_VARIABLES)}.")
    presets = _file_presets(workspace)
    presets[name] = {key: value for key, value in settings.items() if value is not None}
    lines = ["# Named sampler settings: `voicebench sweep --preset NAME`, `voicebench canary --preset NAME`.", ""]
    for preset_name, values in presets.items():
        lines.append(f"[presets.{preset_name}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in values.items()]
        lines.append("")
    return write_atomic(presets_path(workspace), "\n".join(lines))


def _file_presets(workspace: Workspace) -> dict[str, dict[str, Any]]:
    """presets.toml's presets, checked as [presets] in voicebench.toml is (names, kinds, limits)."""
    from engine.settings import SettingsError, read_settings
    from engine.workspace import settings_schema

    path = presets_path(workspace)
    if not (path.exists() or path.is_symlink()):
        return {}
    try:
        data = read_settings(path, {"presets": settings_schema()["presets"]}).data
    except SettingsError as error:
        raise SweepError(str(error)) from None
    return {name: dict(table) for name, table in data.get("presets", {}).items()}


# Planning ------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Setting:
    """One contestant of a sweep: the model, the base overrides and this setting's changes."""

    label: str
    model: str  # workspace model name or folder
    adapter: str | None
    family: str
    overrides: tuple[tuple[str, Any], ...]  # full overrides: base plus varied
    varied: tuple[tuple[str, Any], ...]  # what differs from the base

    @property
    def settings(self) -> dict[str, Any]:
        return dict(self.overrides)


@dataclasses.dataclass(frozen=True)
class SweepPlan:
    model: str
    adapter: str | None
    family: str
    settings: tuple[Setting, ...]
    canary_ids: tuple[str, ...]
    seed: int


def plan_sweep(workspace: Workspace, model: str, vary: Mapping[str, Sequence[str]], *, grid: bool = False,
               base: Mapping[str, Any] | None = None, adapter: str | None = None,
               canaries: Sequence[str] | None = None, seed: int = 0) -> SweepPlan:
    """Every setting of the sweep, checked against every chosen canary before anything runs."""
    from engine.judge.canary import adapter_folder, canary_settings, load_canaries, select_canaries
    from engine.models.loading import read_family

    entry = workspace.model(model)
    family = read_family(entry.path, entry.family)
    model_name = entry.name
    if adapter:
        adapter_folder(workspace, adapter)  # FileNotFoundError naming the folder, before anything runs
    base = dict(base or {})
    check_variables(family, base, "base setting")
    check_precision_applies(entry, base, "base setting")
    typed = {variable: [parse_value(variable, text) for text in values] for variable, values in vary.items()}
    for variable, values in typed.items():
        for value in values:
            check_variables(family, {variable: value}, f"--vary {variable}")
            check_precision_applies(entry, {variable: value}, f"--vary {variable}")
        if not values:
            raise SweepError(f"--vary {variable}: give at least one value, like {variable}=0,0.8.")
    all_canaries = load_canaries(workspace.canaries_path)
    chosen = []
    for name in canaries or [None]:
        chosen += [c for c in select_canaries(all_canaries, name) if c not in chosen]

    changes: list[dict[str, Any]] = [{}]
    if grid:
        names = list(typed)
        changes = [dict(zip(names, combination)) for combination in itertools.product(*typed.values())]
    else:
        for variable, values in typed.items():
            changes += [{variable: value} for value in values if base.get(variable, _MISSING) != value]
    settings: list[Setting] = []
    seen: dict[str, str] = {}
    for change in changes:
        overrides = {**base, **change}
        label = setting_label(model_name, change)
        patched = workspace_with(workspace, family, overrides)
        effective = []
        for canary in chosen:
            _check_against_canary(family, overrides, canary, label)
            effective.append(canary_settings(patched, family, canary, seed))
        key = json.dumps(effective, sort_keys=True)
        if key in seen:  # e.g. the base value repeated in a grid: one contestant, not two
            continue
        seen[key] = label
        settings.append(Setting(label=label, model=model, adapter=adapter, family=family,
                                overrides=tuple(overrides.items()), varied=tuple(change.items())))
    return SweepPlan(model=model, adapter=adapter, family=family, settings=tuple(settings),
                     canary_ids=tuple(c.id for c in chosen), seed=seed)


_MISSING = object()


def _check_against_canary(family: str, overrides: Mapping[str, Any], canary: Any, label: str) -> None:
    """The sampler's own rules for this canary's length; canary runs would otherwise bend a
    bad value silently (one block, fewer steps), and the label would lie."""
    from engine.models.loading import FAMILY_CAUSAL
    from engine.sample.diffusion import SamplerSettings, SamplerSettingsError

    if family == FAMILY_CAUSAL:
        if overrides.get("temperature", 0) < 0:
            raise SweepError(f"{label}: temperature={overrides['temperature']} must be 0 or more.")
        return
    where = f"{label}: canary {canary.id!r} generates {canary.max_new_tokens} tokens"
    block_length = overrides.get("block_length")
    if block_length is not None and (block_length <= 0 or canary.max_new_tokens % block_length):
        raise SweepError(f"{where}, which block_length={block_length} does not divide; "
                         "choose a block length that divides every canary's max_new_tokens.")
    steps = overrides.get("steps")
    if steps is not None and steps > canary.max_new_tokens:
        raise SweepError(f"{where}; steps={steps} is more than that and would run as {canary.max_new_tokens}: "
                         f"choose steps ≤ {canary.max_new_tokens} (or --canaries with longer ones).")
    sampler_values = {key: value for key, value in _sections(family, overrides)["sampler"].items()
                      if key in {field.name for field in dataclasses.fields(SamplerSettings)}}
    sampler_values.setdefault("block_length", min(SamplerSettings.block_length, canary.max_new_tokens))
    if canary.max_new_tokens % sampler_values["block_length"]:
        sampler_values["block_length"] = canary.max_new_tokens
    sampler_values.setdefault("steps", canary.max_new_tokens)
    try:
        SamplerSettings(**{**sampler_values, "gen_length": canary.max_new_tokens}).validate()
    except SamplerSettingsError as error:
        raise SweepError(f"{where}: {error}") from None


# Running -------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class SweepPlanned(Event):
    kind = "sweep_planned"
    model: str
    labels: tuple[str, ...]
    canaries: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class SweepSettingDone(Event):
    """One setting's row of the sweep table (no ratings: numbers the machine measured)."""

    kind = "sweep_setting"
    label: str  # the contestant its outputs are stored under
    requested_label: str  # the setting's own name (differs when identical outputs already had a label)
    settings: dict[str, Any]
    generations: int
    forward_passes: int
    seconds: float
    distinct_2: float | None
    cascade_share: float | None
    eos_share: float | None
    voice_auc: float | None  # the latest stored voice score for the label, if any


@dataclasses.dataclass(frozen=True)
class SweepDone(Event):
    kind = "sweep_done"
    labels: tuple[str, ...]


def record_setting(db: Database, setting: Setting, label: str, workspace: Workspace, sweep_id: str | None) -> None:
    """Keep what a label runs with, so the voice score and the report can reproduce it.

    The adapter is kept as the folder it resolved to, and a `voice` model's own adapter is kept
    too: the stored path alone must name the weights that generated (the base path without its
    adapter would be another model)."""
    from engine.judge.canary import adapter_folder
    from engine.judge.store import now

    entry = workspace.model(setting.model)
    adapter = setting.adapter or entry.adapter
    adapter_path = str(adapter_folder(workspace, adapter).resolve()) if adapter else None
    db["contestant_settings"].upsert({
        "label": label, "model_name": setting.model, "model_path": entry.path, "adapter_path": adapter_path,
        "family": setting.family, "settings_json": json.dumps(setting.settings, sort_keys=True),
        "varied_json": json.dumps(dict(setting.varied), sort_keys=True), "sweep_id": sweep_id, "created_at": now(),
    }, pk="label")


def run_sweep(db: Database, workspace: Workspace, plan: SweepPlan) -> Generator[Event, None, list[SweepSettingDone]]:
    """Run the canaries for every setting (reusing stored outputs); yields canary events and a
    `SweepSettingDone` per setting; returns the table rows."""
    from engine.judge.canary import load_canaries, run_canaries
    from engine.judge.store import now

    canaries = [c for c in load_canaries(workspace.canaries_path) if c.id in plan.canary_ids]
    sweep_id = f"sweep-{now()}"
    yield SweepPlanned(model=plan.model, labels=tuple(s.label for s in plan.settings), canaries=plan.canary_ids)
    rows = []
    for setting in plan.settings:
        patched = workspace_with(workspace, setting.family, setting.settings)
        ids = yield from run_canaries(db, patched, setting.model, adapter=setting.adapter, seed=plan.seed,
                                      label=setting.label, canaries=canaries)
        label = _stored_label(db, ids, setting.label)
        record_setting(db, setting, label, workspace, sweep_id)
        row = setting_row(db, ids, label, setting)
        rows.append(row)
        yield row
    yield SweepDone(labels=tuple(row.label for row in rows))
    return rows


def _stored_label(db: Database, ids: Sequence[int], wanted: str) -> str:
    labels = [row["label"] for row in db.query(
        f"select label from generations where id in ({','.join('?' * len(ids))})", list(ids))] if ids else []
    return wanted if not labels or wanted in labels else max(set(labels), key=labels.count)


def setting_row(db: Database, ids: Sequence[int], label: str, setting: Setting) -> SweepSettingDone:
    """Machine-measured numbers over a setting's canary outputs."""
    rows = list(db.query(f"select forward_passes, seconds, metrics_json from generations "
                         f"where id in ({','.join('?' * len(ids))})", list(ids))) if ids else []
    metrics = [json.loads(row["metrics_json"] or "{}") for row in rows]

    def mean(name: str) -> float | None:
        values = [float(m[name]) for m in metrics if isinstance(m.get(name), (int, float, bool))]
        return sum(values) / len(values) if values else None

    from engine.judge.voice import latest_voice_scores

    voice = latest_voice_scores(db).get(label)
    return SweepSettingDone(
        label=label, requested_label=setting.label, settings=setting.settings, generations=len(rows),
        forward_passes=sum(row["forward_passes"] or 0 for row in rows),
        seconds=round(sum(row["seconds"] or 0.0 for row in rows), 3),
        distinct_2=mean("distinct_2"), cascade_share=mean("repetition_cascade"), eos_share=mean("eos_share"),
        voice_auc=voice["auc"] if voice else None)


def render_table(rows: Sequence[SweepSettingDone]) -> str:
    """The sweep table: per setting, what the machine measured (no ratings)."""
    header = ("setting", "outputs", "forward passes", "seconds", "distinct-2", "cascade", "EOS share", "voice AUC")

    def number(value: float | None, digits: int = 2) -> str:
        return "–" if value is None else f"{value:.{digits}f}"

    lines = [" | ".join(header), " | ".join("---" for _ in header)]
    for row in rows:
        name = row.label if row.label == row.requested_label else f"{row.requested_label} (= {row.label})"
        lines.append(" | ".join((name, str(row.generations), str(row.forward_passes), number(row.seconds, 1),
                                 number(row.distinct_2), number(row.cascade_share), number(row.eos_share),
                                 number(row.voice_auc))))
    return "\n".join(lines)
