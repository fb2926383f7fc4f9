"""Canaries on a trained checkpoint, and filling the ones a cancelled run missed.

A run folder keeps `checkpoints/checkpoint-N/`, holding either a peft adapter
(`adapter_config.json`) or full weights (`config.json` + safetensors). Training answers the
canaries at every checkpoint with the model in memory and stores them labelled
`<run-id>/checkpoint-N`; a run cancelled mid-way leaves some of those missing.

    checkpoints = run_checkpoints(workspace)                 # every checkpoint of every run
    gaps = missing_canaries(db, workspace, run_id)           # [(RunCheckpoint, canary id), …]
    for event in fill_missing_canaries(db, workspace, run_id):
        print(event.to_json())                               # the training protocol's canary events

Answering goes through `engine.train.canaries.run_canaries` with a plan rebuilt from the run's
own config.toml (seed, temperature, length cap, sampler steps, template), so a filled output
is generated and stored exactly as training would have done it: same label, same identity.
What differs: a QLoRA run's checkpoints are answered on the full-precision base (the 4-bit
load needs a GPU-class setup, and the store records the settings either way).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from engine.events import Event
from engine.train.runs import read_config
from engine.workspace import Workspace

CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")


@dataclasses.dataclass(frozen=True)
class RunCheckpoint:
    """One checkpoint folder of a training run."""

    run_id: str
    step: int
    path: str  # the checkpoint-N folder
    weights: str  # "adapter" (peft) or "full"
    base_model: str  # the run's model, as its config.toml names it

    @property
    def label(self) -> str:
        """The store label training gives this checkpoint's outputs."""
        return f"{self.run_id}/checkpoint-{self.step}"


@dataclasses.dataclass(frozen=True)
class CheckpointCanaryStart(Event):
    kind = "checkpoint_canaries_start"
    run_id: str
    step: int
    canaries: int  # how many this checkpoint will answer
    checkpoint_index: int  # 1-based among the checkpoints being filled
    checkpoints: int


@dataclasses.dataclass(frozen=True)
class CheckpointCanaryProblem(Event):
    kind = "checkpoint_canaries_problem"
    run_id: str
    step: int
    message: str


def _weights_kind(folder: Path) -> str | None:
    if (folder / "adapter_config.json").exists():
        return "adapter"
    if (folder / "config.json").exists():
        return "full"
    return None  # a checkpoint still being written, or only optimizer state


def run_checkpoints(workspace: Workspace, run_id: str | None = None) -> list[RunCheckpoint]:
    """Every loadable checkpoint under runs/ (of one run when `run_id` is given), by run then step."""
    # Reads folder names and config.toml only (not events.jsonl), so the Judge screen can
    # rescan while a run is writing.
    found: list[RunCheckpoint] = []
    runs_dir = Path(workspace.runs_dir)
    run_folders = [runs_dir / run_id] if run_id is not None else (
        sorted(runs_dir.iterdir()) if runs_dir.is_dir() else [])
    for run_folder in run_folders:
        folder = run_folder / "checkpoints"
        if not folder.is_dir():
            continue
        config, _ = read_config(run_folder / "config.toml")
        for child in folder.iterdir():
            match = CHECKPOINT_PATTERN.match(child.name)
            kind = _weights_kind(child) if match and child.is_dir() else None
            if kind is None:
                continue
            found.append(RunCheckpoint(run_id=run_folder.name, step=int(match.group(1)), path=str(child),
                                       weights=kind, base_model=str(config.get("model", ""))))
    found.sort(key=lambda checkpoint: (checkpoint.run_id, checkpoint.step))
    return found


def _run_canary_ids(workspace: Workspace, config: dict[str, Any]) -> tuple[list[Any], str | None]:
    from engine.train.canaries import select

    return select(workspace, str(config.get("canaries", "all")))


def stored_pairs(db: Database, labels: list[str]) -> set[tuple[str, str]]:
    """(label, canary id) pairs that already have an output in the store."""
    if not labels:
        return set()
    rows = db.execute(
        "select distinct g.label, c.canary_id from generations g join canaries c on c.id = g.canary_id "
        f"where g.label in ({','.join('?' * len(labels))})", labels).fetchall()
    return {(label, canary_id) for label, canary_id in rows}


def missing_canaries(db: Database, workspace: Workspace, run_id: str) -> list[tuple[RunCheckpoint, str]]:
    """(checkpoint, canary id) for every canary the run asks for that a checkpoint has no output for."""
    checkpoints = run_checkpoints(workspace, run_id)
    if not checkpoints:
        return []
    config, _ = read_config(workspace.runs_dir / checkpoints[0].run_id / "config.toml")
    chosen, _ = _run_canary_ids(workspace, config)
    have = stored_pairs(db, [checkpoint.label for checkpoint in checkpoints])
    return [(checkpoint, canary.id) for checkpoint in checkpoints for canary in chosen
            if (checkpoint.label, canary.id) not in have]


def _load_checkpoint(workspace: Workspace, checkpoint: RunCheckpoint) -> Any:
    """The checkpoint as a LoadedModel: adapters merged into their base, full weights as they are."""
    from engine.models.loading import load_entry, load_model

    if checkpoint.weights == "full":
        return load_model(checkpoint.path)
    entry = workspace.model(checkpoint.base_model)
    loaded = load_entry(entry)
    from peft import PeftModel

    loaded.model = PeftModel.from_pretrained(loaded.model, checkpoint.path).merge_and_unload()
    loaded.model.eval()
    return loaded


def _plan(workspace: Workspace, checkpoint: RunCheckpoint, config: dict[str, Any], canaries: list[Any],
          loaded: Any) -> Any:
    """The CanaryPlan training would have used for this run (engine/train/run.py `_canary_plan`)."""
    from engine.train import canaries as train_canaries
    from engine.train.data import resolve_template

    model_type = str(getattr(loaded.model.config, "model_type", "") or "")
    template = resolve_template(str(config.get("template", "auto")), loaded.tokenizer, model_type)
    entry = workspace.model(checkpoint.base_model) if checkpoint.base_model else None
    return train_canaries.CanaryPlan(
        canaries=canaries, workspace=workspace, family=loaded.family, seed=int(config.get("canary_seed", 0)),
        temperature=config.get("canary_temperature"), max_new_tokens=config.get("canary_max_new_tokens"),
        steps=config.get("canary_steps"), use_template=template == "chat", quantised=False,
        run_id=checkpoint.run_id, run_dir=workspace.runs_dir / checkpoint.run_id,
        base_path=str(Path(entry.path).resolve()) if entry else checkpoint.path,
        model_name=entry.name if entry else checkpoint.run_id, method=str(config.get("method", "unknown")))


def answer_checkpoint(db: Database, workspace: Workspace, checkpoint: RunCheckpoint,
                      canary_ids: list[str] | None = None, *, checkpoint_index: int = 1,
                      checkpoints: int = 1) -> Iterator[Event]:
    """Answer the run's canaries (or `canary_ids` of them) on one checkpoint; stored as training would.

    `db` is only read here (which canaries are already answered); the outputs are written by
    the training recorder on its own connection to the workspace store."""
    config, problem = read_config(workspace.runs_dir / checkpoint.run_id / "config.toml")
    chosen, warning = _run_canary_ids(workspace, config)
    if canary_ids is not None:
        chosen = [canary for canary in chosen if canary.id in set(canary_ids)]
    else:
        have = stored_pairs(db, [checkpoint.label])
        chosen = [canary for canary in chosen if (checkpoint.label, canary.id) not in have]
    yield CheckpointCanaryStart(run_id=checkpoint.run_id, step=checkpoint.step, canaries=len(chosen),
                                checkpoint_index=checkpoint_index, checkpoints=checkpoints)
    if not chosen:
        if warning or problem:
            yield CheckpointCanaryProblem(run_id=checkpoint.run_id, step=checkpoint.step, message=warning or problem)
        return
    from engine.train.canaries import run_canaries

    loaded = _load_checkpoint(workspace, checkpoint)
    plan = _plan(workspace, checkpoint, config, chosen, loaded)
    yield from run_canaries(plan, loaded, checkpoint.step, checkpoint.path)


def fill_missing_canaries(db: Database, workspace: Workspace, run_id: str) -> Iterator[Event]:
    """Answer every (checkpoint, canary) of `run_id` the store lacks, checkpoint by checkpoint."""
    gaps = missing_canaries(db, workspace, run_id)
    by_checkpoint: dict[RunCheckpoint, list[str]] = {}
    for checkpoint, canary_id in gaps:
        by_checkpoint.setdefault(checkpoint, []).append(canary_id)
    for index, (checkpoint, canary_ids) in enumerate(by_checkpoint.items(), start=1):
        yield from answer_checkpoint(db, workspace, checkpoint, canary_ids, checkpoint_index=index,
                                     checkpoints=len(by_checkpoint))
