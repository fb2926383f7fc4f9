"""Canaries during training: the workspace's fixed prompts answered by the model in memory.

Before the first step (step 0, the base model) and at every checkpoint, each selected
canary is generated with the settings `engine.judge.canary.canary_settings` fixes for it (seeded,
so outputs compare across checkpoints and runs) through the shared samplers
(`engine.sample.causal.stream_causal`, `engine.sample.diffusion.sample`). The model already in memory
is used — reloading an 8B model per checkpoint would double its memory.

Results go to `runs/<id>/canaries.jsonl` (one `canary` event a line) and, when the judging
store is available, into judgments.db as generations labelled `<run-id>/checkpoint-N`, so
the Judge screen can rate them blind against other runs.

Progress and cancel: `run_canaries` yields a `phase` event ("canaries", done/total) before
each canary and one when it is through, so a reader can show "canary 3/5". Its
`should_stop` is polled before each canary and at every token/sampler step inside one, so
a cancel during a minutes-long canary stops it at once (the unanswered ones are left for
the Judge screen to fill) instead of making the cancel wait.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from engine.train.events import CanaryEvent, LogEvent, PhaseEvent


@dataclasses.dataclass
class CanaryPlan:
    """What a run needs to answer canaries: which, with what seed, and where to record."""

    canaries: list[Any]  # engine.judge.canary.Canary
    workspace: Any
    family: str
    seed: int
    temperature: float | None  # None: the workspace's canary temperature
    max_new_tokens: int | None  # cap on each canary's length (fast runs, tests)
    steps: int | None  # diffusion sampler steps override
    use_template: bool
    quantised: bool  # 4-bit base: outputs are not those of the full-precision model
    run_id: str
    run_dir: Path
    base_path: str
    model_name: str
    method: str


def select(workspace: Any, selection: str) -> tuple[list[Any], str | None]:
    """The canaries a run answers, and a warning when canaries cannot run."""
    if selection.strip().lower() == "none":
        return [], None
    from engine.judge.canary import CanaryFileError, load_canaries

    if not Path(workspace.canaries_path).exists():
        return [], f"{workspace.canaries_path}: no canaries file, so no canaries run during training."
    try:
        canaries = load_canaries(workspace.canaries_path)
    except CanaryFileError as error:
        return [], f"{error} (canaries skipped for this run)"
    if selection.strip().lower() == "all":
        return canaries, None
    wanted = [part.strip() for part in selection.split(",") if part.strip()]
    chosen = [canary for canary in canaries if canary.id in wanted]
    missing = sorted(set(wanted) - {canary.id for canary in chosen})
    warning = None
    if missing:
        warning = (f"{workspace.canaries_path}: no canary with id {missing}; "
                   f"known ids: {[canary.id for canary in canaries]}")
    return chosen, warning


def _settings(plan: CanaryPlan, canary: Any) -> dict[str, Any]:
    from engine.judge.canary import canary_settings

    if plan.max_new_tokens is not None and canary.max_new_tokens > plan.max_new_tokens:
        canary = dataclasses.replace(canary, max_new_tokens=plan.max_new_tokens)
    settings = canary_settings(plan.workspace, plan.family, canary, plan.seed)
    if plan.temperature is not None:
        settings["temperature"] = float(plan.temperature)
    if settings.get("sampler") == "causal":
        settings["use_template"] = plan.use_template
    else:
        settings["use_template"] = plan.use_template
        if plan.steps is not None:
            blocks = settings["gen_length"] // settings["block_length"]
            settings["steps"] = max(blocks, min(plan.steps, settings["gen_length"]) // blocks * blocks)
    if plan.quantised:
        settings["load_in_4bit"] = True  # a different model than the full-precision base
    return settings


class CanaryStopped(Exception):
    """`should_stop` turned true while a canary was being generated."""


def _generate(loaded: Any, settings: dict[str, Any], prompt: str,
              should_stop: Callable[[], bool] = lambda: False) -> Any:
    """Drain one shared-sampler generator and return its FinalFrame (CanaryStopped when
    `should_stop()` turns true between two frames)."""
    if settings["sampler"] == "causal":
        from engine.sample.causal import stream_causal

        stream = stream_causal(loaded, prompt, settings["max_new_tokens"], settings["temperature"],
                               settings["seed"], use_template=settings["use_template"])
    else:
        from engine.sample.diffusion import SamplerSettings, sample

        known = {field.name for field in dataclasses.fields(SamplerSettings)}
        stream = sample(loaded, prompt, SamplerSettings(**{k: v for k, v in settings.items() if k in known}))
    while True:
        if should_stop():
            stream.close()
            raise CanaryStopped
        try:
            next(stream)
        except StopIteration as stop:
            return stop.value


class _Recorder:
    """The judging store, when it opens; every failure here only costs the store copy."""

    def __init__(self, plan: CanaryPlan):
        self.plan = plan
        self.db = None
        try:
            from engine.judge import store

            self.store = store
            self.db = store.open_store(plan.workspace.db_path)
            self.model_hash = store.cached_content_hash(self.db, plan.base_path)
            self.model_id = store.ensure_model(self.db, path=plan.base_path, name=plan.model_name,
                                               family=plan.family, hash_=self.model_hash)
        except Exception:  # noqa: BLE001 - no store means run-folder records only
            self.db = None

    def identity(self, canary: Any, settings: dict[str, Any], adapter_hash: str | None) -> tuple[int, str] | None:
        if self.db is None:
            return None
        row = self.store.ensure_canary_version(self.db, canary_id=canary.id, kind=canary.kind, prompt=canary.prompt,
                                               max_new_tokens=canary.max_new_tokens, set_name=canary.set)
        key = self.store.generation_identity(model_hash=self.model_hash, adapter_hash=adapter_hash,
                                             canary_row_id=row, prompt=canary.prompt, settings=settings,
                                             seed=self.plan.seed)
        return row, key

    def existing(self, key: str) -> dict[str, Any] | None:
        return self.store.find_generation(self.db, key) if self.db is not None else None

    def record(self, *, identity: tuple[int, str], canary: Any, settings: dict[str, Any], final: Any,
               seconds: float, step: int, checkpoint: str | None, adapter_path: str | None,
               adapter_hash: str | None) -> None:
        if self.db is None:
            return
        row, key = identity
        label = self.plan.model_name if step == 0 else f"{self.plan.run_id}/checkpoint-{step}"
        if self.plan.quantised and step == 0:
            label += " (4-bit)"
        self.store.record_run(self.db, run_id=self.plan.run_id, method=self.plan.method,
                              model_path=self.plan.base_path, out_dir=self.plan.run_dir)
        self.store.record_generation(self.db, {
            "identity_key": key, "model_id": self.model_id, "canary_id": row,
            "run_id": self.plan.run_id, "checkpoint": None if checkpoint is None else Path(checkpoint).name,
            "checkpoint_step": step, "adapter_path": adapter_path, "adapter_hash": adapter_hash,
            "label": label, "family": self.plan.family, "settings": settings, "seed": self.plan.seed,
            "prompt": canary.prompt, "text": final.text, "token_count": len(list(final.token_ids)),
            "seconds": seconds, "forward_passes": int(getattr(final, "forward_passes", 0) or 0),
        })


def run_canaries(plan: CanaryPlan, loaded: Any, step: int, checkpoint: str | None = None,
                 should_stop: Callable[[], bool] = lambda: False) -> Iterator[Any]:
    """Answer every canary with the in-memory model; yields PhaseEvent before each canary and
    at the end, CanaryEvent per answer (LogEvent on trouble). Stops early when `should_stop()`."""
    if not plan.canaries:
        return
    total = len(plan.canaries)
    detail = "base" if checkpoint is None else Path(checkpoint).name
    import torch

    recorder = _Recorder(plan)
    adapter_hash = adapter_path = None
    if checkpoint is not None and recorder.db is not None:
        adapter_path = str(Path(checkpoint).resolve())
        adapter_hash = recorder.store.content_hash(checkpoint)
    model = loaded.model
    was_training = model.training
    model.eval()
    answered = 0
    try:
        for index, canary in enumerate(plan.canaries):
            if should_stop():
                break
            yield PhaseEvent(phase="canaries", step=step, done=index, total=total, detail=detail)
            try:
                settings = _settings(plan, canary)
                identity = recorder.identity(canary, settings, adapter_hash)
                stored = recorder.existing(identity[1]) if identity else None
                if stored is not None:  # same model bytes, canary, settings, seed: reuse the text
                    text, seconds = stored["text"], float(stored["seconds"] or 0.0)
                else:
                    started = time.perf_counter()
                    with torch.no_grad():
                        final = _generate(loaded, settings, canary.prompt, should_stop)
                    seconds = time.perf_counter() - started
                    text = final.text
                    if identity:
                        recorder.record(identity=identity, canary=canary, settings=settings, final=final,
                                        seconds=seconds, step=step, checkpoint=checkpoint,
                                        adapter_path=adapter_path, adapter_hash=adapter_hash)
            except CanaryStopped:
                yield LogEvent(level="info", message=f"canary {canary.id} at step {step} stopped by the cancel")
                break
            except Exception as error:  # noqa: BLE001 - a canary failure must not end training
                yield LogEvent(level="warning", message=f"canary {canary.id} at step {step} failed: {error!r}")
                continue
            answered += 1
            yield CanaryEvent(step=step, canary_id=canary.id, prompt=canary.prompt, text=text,
                              seed=plan.seed, settings=settings, seconds=round(seconds, 3))
        yield PhaseEvent(phase="canaries", step=step, done=answered, total=total, detail=detail)
    finally:
        if was_training:
            model.train()
