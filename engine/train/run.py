"""One training run end to end: settings, run folder, model, data, Trainer, events, status.

    python -m engine.train --model demo-ar --method lora --max-steps 30 --json
    torchrun --nproc_per_node 2 -m engine.train --model demo-ar --max-steps 10   # two CPU ranks
    accelerate launch --num_processes 4 -m engine.train --config runs/<id>/config.toml

`run_training(...)` returns the exit code: 0 done or cancelled, 1 failed. It never raises
for problems a user can meet (bad config, missing model, OOM): those become an `error`
event with advice, then `done` with status "failed".

Run folder `runs/<id>/`: config.toml (resolved settings), run.json (model, family, the
pairs file's sha256, versions), status.json, events.jsonl, canaries.jsonl and
checkpoints/checkpoint-N/ (adapter_model.safetensors or model.safetensors, optimizer,
scheduler and RNG state). Only rank 0 writes files or prints; all ranks train.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import re
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any, TextIO

from engine.atomic import write_atomic
from engine.library_noise import quiet_library_noise
from engine.train.config import (
    ConfigError,
    TrainConfig,
    apply_workspace_defaults,
    config_from_dict,
    config_to_dict,
    default_lr_with_reason,
    load_config,
    objective_for,
    save_config,
)
from engine.train.events import CanaryEvent, DoneEvent, ErrorEvent, LogEvent, PhaseEvent, StartEvent
from engine.train.record import RunLog, StoreLink, human_line, now_utc, sha256_file

OOM_ADVICE = (
    "Out of memory. Try, in this order: a smaller --batch-size (raise --grad-accum to keep the "
    "effective batch), a shorter --max-length, --gradient-checkpointing, --method qlora (4-bit base "
    "weights), or --compute-dtype bfloat16. Then resume with --resume RUN_DIR."
)
CUDA_ADVICE = (
    "The GPU reported an error. Check `nvidia-smi` (another process may hold the memory, or the driver "
    "may have reset), lower --batch-size / --max-length, and resume with --resume RUN_DIR. Set "
    "CUDA_LAUNCH_BLOCKING=1 to see which operation failed."
)

INTERNAL_ADVICE = (
    "Unexpected error; the traceback is on stderr. Resume with --resume RUN_DIR after fixing the cause, "
    "and report it if it looks like a bug in voicebench."
)


@dataclasses.dataclass
class Rank:
    """Where this process sits in a multi-process launch (torchrun / accelerate set the env)."""

    rank: int
    local_rank: int
    world_size: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls) -> Rank:
        return cls(int(os.environ.get("RANK", 0)), int(os.environ.get("LOCAL_RANK", 0)),
                   int(os.environ.get("WORLD_SIZE", 1)))


class CancelFlag:
    """SIGTERM/SIGINT ask the run to finish its step, checkpoint and stop; a second SIGINT forces."""

    def __init__(self) -> None:
        self.requested = False
        self.signal_name = ""

    def install(self) -> None:
        self._previous: dict[int, Any] = {}
        if threading_main():
            for signum in (signal.SIGTERM, signal.SIGINT):
                self._previous[signum] = signal.signal(signum, self._handle)

    def uninstall(self) -> None:
        """Give the handlers back (`voicebench train` runs in-process; so do tests)."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def _handle(self, signum: int, frame: Any) -> None:
        # Only set a flag: writing events from a signal handler could re-enter a buffered write.
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        self.signal_name = signal.Signals(signum).name

    def __call__(self) -> bool:
        return self.requested


def threading_main() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


# Settings -----------------------------------------------------------------------------------
def resolve_settings(workspace: Any, overrides: dict[str, Any], config_path: str | None,
                     resume: str | None) -> tuple[TrainConfig, Path | None, Path | None]:
    """The config for this run and, when resuming, the run folder to continue and the
    checkpoint asked for (None: its last one)."""
    resume_dir: Path | None = None
    resume_checkpoint: Path | None = None
    base: dict[str, Any] = {}
    source = "flags"
    if config_path:
        path = _in_workspace(workspace, config_path)
        base = config_to_dict(load_config(path))
        source = str(path)
        if resume is None:
            base.pop("out", None)  # same settings, new run folder (unless --out says otherwise)
    if resume is not None:
        if resume:
            resume_dir = _in_workspace(workspace, resume)
            if resume_dir.name.startswith("checkpoint-"):
                resume_checkpoint, resume_dir = resume_dir, resume_dir.parent.parent
        elif "out" in overrides:
            resume_dir = _in_workspace(workspace, overrides["out"])
        elif config_path:
            resume_dir = _in_workspace(workspace, config_path).parent
        else:
            raise ConfigError("--resume needs the run folder: --resume runs/<id> (or --out / --config of that run).")
        saved = resume_dir / "config.toml"
        if not saved.exists():
            raise ConfigError(f"{saved}: no config.toml, so {resume_dir} is not a run folder to resume.")
        if not config_path:
            base = config_to_dict(load_config(saved))
            source = str(saved)
        base["out"] = str(resume_dir)
    explicit = set(overrides) | set(base)
    config = apply_workspace_defaults(TrainConfig(), workspace.section("train"), explicit)
    merged = {**config_to_dict(config), **base, **overrides}
    config = config_from_dict(merged, source)
    if resume_dir is None and config.out:
        # A new run into a folder that holds files would mix its records and checkpoints with
        # theirs (another run's events, or the workspace's data): only a new or empty folder.
        out = _in_workspace(workspace, config.out)
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            again = (f" To continue that run, use --resume {config.out}." if (out / "config.toml").is_file() else "")
            raise ConfigError(f"{out}: already exists and is not empty; a new run needs a new or empty --out "
                              f"folder.{again}")
    return config, resume_dir, resume_checkpoint


def _in_workspace(workspace: Any, path: str) -> Path:
    candidate = Path(path).expanduser()
    return candidate if candidate.is_absolute() else (workspace.root / candidate)


def new_run_id(model_name: str, method: str) -> str:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    slug = re.sub(r"[^A-Za-z0-9.-]+", "-", model_name).strip("-").lower() or "model"
    return f"{stamp}-{slug}-{method}"


def _agree(value: Any, rank: Rank, use_cpu: bool) -> Any:
    """Rank 0's value on every rank (run folder names are made from the clock)."""
    if rank.world_size <= 1:
        return value
    import torch.distributed as dist
    from accelerate import PartialState

    PartialState(cpu=use_cpu)  # initialises the process group the Trainer will reuse
    holder = [value]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


# The run --------------------------------------------------------------------------------------
def run_training(workspace_dir: str | Path = ".", overrides: dict[str, Any] | None = None, *,
                 config_path: str | None = None, resume: str | None = None, json_mode: bool = False,
                 stdout: TextIO | None = None) -> int:
    """Train once; returns the exit code (0 done/cancelled, 1 failed). See the module docstring."""
    quiet_library_noise()
    cancel = CancelFlag()
    cancel.install()
    try:
        return _run_training(workspace_dir, overrides, config_path, resume, json_mode, stdout, cancel)
    finally:
        cancel.uninstall()


def _run_training(workspace_dir, overrides, config_path, resume, json_mode, stdout, cancel) -> int:
    from engine.workspace import Workspace, WorkspaceError

    started = time.perf_counter()
    _quiet_progress_bars()
    rank = Rank.from_env()
    out = stdout or sys.stdout
    try:
        workspace = Workspace.open(workspace_dir)
        config, resume_dir, resume_checkpoint = resolve_settings(workspace, dict(overrides or {}), config_path, resume)
    except (ConfigError, WorkspaceError) as error:
        return _early_failure(out, json_mode, rank, "config", str(error), "Fix the setting named above and run again.")

    import torch

    use_cpu = not torch.cuda.is_available()
    try:
        entry = workspace.model(config.model)  # `voice` with no version yet says so here
    except WorkspaceError as error:
        return _early_failure(out, json_mode, rank, "config", str(error), "Fix the setting named above and run again.")
    if resume_dir is not None:
        run_dir = resume_dir
    elif config.out:
        run_dir = _in_workspace(workspace, config.out)
    else:
        run_dir = workspace.runs_dir / new_run_id(entry.name, config.method)
    run_dir = Path(_agree(str(run_dir.resolve()), rank, use_cpu))
    run_id = run_dir.name
    config = _labelled(config, workspace, entry.name, rank, use_cpu)
    log = RunLog(run_dir, is_main=rank.is_main, json_mode=json_mode, stdout=out)
    session = _Session(workspace, config, entry, run_dir, run_id, rank, log, cancel, resume_dir, use_cpu)
    session.resume_checkpoint = resume_checkpoint
    try:
        return session.run(started)
    finally:
        log.close()


def _labelled(config: TrainConfig, workspace: Any, model_name: str, rank: Rank, use_cpu: bool) -> TrainConfig:
    """The config with its label: the writer's, or "<model> <method> #N" (rank 0 counts the runs)."""
    if config.label:
        return config
    from engine.train.runs import default_label

    label = default_label(workspace.runs_dir, config.model, config.method) if rank.is_main else ""
    return dataclasses.replace(config, label=_agree(label, rank, use_cpu) or model_name)


def _quiet_progress_bars() -> None:
    """Download/shard-writing progress bars would interleave with the event lines."""
    from huggingface_hub.utils import disable_progress_bars

    disable_progress_bars()


def _early_failure(out: TextIO, json_mode: bool, rank: Rank, kind: str, message: str, advice: str) -> int:
    """Errors before a run folder exists: print the events, write nothing."""
    if rank.is_main:
        for event in (ErrorEvent(error_kind=kind, message=message, advice=advice, step=0, resumable=False),
                      DoneEvent(status="failed", step=0, run_dir="", last_checkpoint=None, resumable=False, seconds=0.0)):
            out.write((event.to_json() if json_mode else human_line(event)) + "\n")
        out.flush()
    return 1


class _Session:
    """The state of one run while it executes (split from run_training to keep each part short)."""

    def __init__(self, workspace, config, entry, run_dir, run_id, rank, log, cancel, resume_dir, use_cpu):
        self.workspace, self.config, self.entry = workspace, config, entry
        self.run_dir, self.run_id, self.rank, self.log = run_dir, run_id, rank, log
        self.cancel, self.resume_dir, self.use_cpu = cancel, resume_dir, use_cpu
        self.callback = None
        self.step = 0
        self.resume_checkpoint: Path | None = None  # a specific checkpoint-N to resume from
        self.clock = None  # engine.train.progress.RunClock, once the Trainer is built
        self.canaries_skipped = 0  # canaries not answered because of a cancel

    def run(self, started: float) -> int:
        from engine.models.loading import ModelNotFoundError, RemoteCodeRefused
        from engine.train.data import DataError
        from engine.train.lora import LoraTargetError

        import torch

        status, error_event = "done", None
        try:
            trainer = self._prepare()
            if trainer is not None:
                checkpoint = self._checkpoint_to_resume()
                trainer.train(resume_from_checkpoint=checkpoint)
                self.step = trainer.state.global_step
                if self.callback.cancelled:
                    status = "cancelled"
            else:
                status = "cancelled"
        except torch.OutOfMemoryError as error:
            status, error_event = "failed", self._error("oom", error, OOM_ADVICE, resumable=True)
        except (ConfigError, LoraTargetError) as error:
            status, error_event = "failed", self._error("config", error, "Fix the setting named above and run again.")
        except (ModelNotFoundError, RemoteCodeRefused) as error:
            status, error_event = "failed", self._error("model", error, "See the message above for how to make the model available.")
        except DataError as error:
            status, error_event = "failed", self._error("data", error, "Fix the pairs file and run again.")
        except KeyboardInterrupt:
            status = "cancelled"  # forced (second Ctrl-C): no checkpoint for this step
        except Exception as error:  # noqa: BLE001 - the run must end with a status, whatever broke
            traceback.print_exc(file=sys.stderr)
            if "cuda" in str(error).lower():
                status, error_event = "failed", self._error("cuda", error, CUDA_ADVICE, resumable=True)
            else:
                status, error_event = "failed", self._error("internal", error, INTERNAL_ADVICE, resumable=True)
        if self.callback is not None and self.callback.trainer is not None:
            self.step = max(self.step, self.callback.trainer.state.global_step)  # last finished step
        last = self._last_checkpoint()
        if error_event is not None:
            if last is None and error_event.resumable:  # nothing to resume from: say so
                error_event = dataclasses.replace(error_event, resumable=False)
            self.log.emit(error_event)
        # Resumable only with a complete checkpoint to continue from: advising a resume that
        # would start again at step 0, or fail, helps nobody.
        resumable = status in ("cancelled", "failed") and (error_event is None or error_event.resumable) \
            and last is not None
        self.log.emit(DoneEvent(status=status, step=self.step, run_dir=str(self.run_dir),
                                last_checkpoint=last, resumable=resumable,
                                seconds=round(time.perf_counter() - started, 3),
                                canaries_skipped=self.canaries_skipped))
        return 1 if status == "failed" else 0

    def _error(self, kind: str, error: BaseException, advice: str, resumable: bool = False) -> ErrorEvent:
        if self.callback is not None and self.callback.trainer is not None:
            self.step = self.callback.trainer.state.global_step
        message = str(error).strip() or type(error).__name__
        return ErrorEvent(error_kind=kind, message=message, advice=advice, step=self.step, resumable=resumable)

    def _checkpoints_dir(self) -> Path:
        return self.run_dir / "checkpoints"

    def _last_checkpoint(self) -> str | None:
        """The newest complete checkpoint (see engine.train.runs.checkpoint_problem), or None."""
        from engine.train.runs import newest_complete_checkpoint

        chosen, _ = newest_complete_checkpoint(self._checkpoints_dir())
        return str(chosen) if chosen is not None else None

    def _checkpoint_to_resume(self) -> str | None:
        """The checkpoint this run continues from: the one asked for, else the newest complete
        one. Newer folders left half-written by a run killed while saving are passed over,
        with a warning the first time (the choice is made once per run)."""
        if self.resume_dir is None:
            return None
        if getattr(self, "_resume_choice", None) is not None:
            return self._resume_choice[0]
        from engine.train.runs import checkpoint_problem, newest_complete_checkpoint

        if self.resume_checkpoint is not None:
            problem = checkpoint_problem(self.resume_checkpoint) if self.resume_checkpoint.is_dir() else "no such folder"
            if problem:
                fallback = self._last_checkpoint()
                raise ConfigError(
                    f"{self.resume_checkpoint}: cannot resume from it: {problem}. "
                    + (f"Resume from {fallback} instead, or give the run folder to use its newest complete checkpoint."
                       if fallback else "The run has no complete checkpoint; start a new run."))
            self._resume_choice = (str(self.resume_checkpoint),)
            return self._resume_choice[0]
        chosen, skipped = newest_complete_checkpoint(self._checkpoints_dir())
        for folder, problem in skipped:
            fallback = f"resuming from {chosen.name} instead" if chosen else "no complete checkpoint before it"
            self.log.emit(LogEvent(level="warning", message=f"{folder}: incomplete, {problem}; {fallback}"))
        self._resume_choice = (str(chosen) if chosen is not None else None,)
        return self._resume_choice[0]

    # Preparation ---------------------------------------------------------------------------
    def _prepare(self) -> Any:
        """Load everything and build the Trainer; None when cancelled before training began."""
        from engine.models.loading import load_entry
        from engine.train import data as train_data

        if self.config.method == "dpo":  # preference training: its own data and trainer (engine/train/dpo.py)
            from engine.train.dpo import prepare

            return prepare(self)
        config, entry, log = self.config, self.entry, self.log
        if entry.adapter:  # `voice`: a base plus a version's adapter
            raise ConfigError(
                f"--model {config.model} is a version (base + adapter): continue it with --method dpo, or train "
                "SFT on its base model by name and promote the result.")
        log.emit(PhaseEvent(phase="loading", step=0, detail=entry.name))
        pairs_path = _in_workspace(self.workspace, config.pairs)
        pairs, problems = train_data.load_training_pairs(pairs_path)
        device = self._device()
        # The method decides quantisation: QLoRA loads 4-bit, full and diffusion training need
        # full-precision weights, and LoRA trains on what the method says, not the sampling setting.
        quantised = config.method == "qlora"
        loaded = load_entry(dataclasses.replace(entry, load_in_4bit=quantised),
                            dtype=config.compute_dtype, device=device)
        objective = objective_for(loaded.family)
        if config.method == "diffusion" and objective != "diffusion":
            raise ConfigError(
                f"method = \"diffusion\" needs a masked-diffusion model, but {entry.name} is a causal LM "
                "(family causal). Use --method lora, qlora or full.")
        model_type = str(getattr(loaded.model.config, "model_type", "") or "")
        template = train_data.resolve_template(config.template, loaded.tokenizer, model_type)
        train_pairs = [pair for pair in pairs if pair.split != "val"]
        val_pairs = [pair for pair in pairs if pair.split == "val"]
        if not train_pairs:
            raise train_data.DataError(f"{pairs_path}: no pairs with split \"train\"; nothing to train on.")
        train_examples, skipped = train_data.build_examples(loaded.tokenizer, train_pairs, template, config.max_length)
        val_examples, skipped_val = train_data.build_examples(loaded.tokenizer, val_pairs, template, config.max_length)
        if not train_examples:
            raise train_data.DataError(
                f"{pairs_path}: every train prompt is at least max_length = {config.max_length} tokens; raise --max-length.")

        lr, lr_note = self._learning_rate(objective, loaded.model)
        self.config = config = dataclasses.replace(config, lr=lr, out=str(self.run_dir))
        if self.rank.is_main:
            save_config(config, self.run_dir / "config.toml")
            self._write_run_json(loaded, objective, pairs_path)
        self._open_store(pairs_path)

        canary_plan = self._canary_plan(loaded, template, quantised)
        model = self._trainable_model(loaded, objective, quantised)
        loaded.model = model
        trainable, total = _parameter_counts(model)
        trainer, callback = self._build_trainer(loaded, objective, train_examples, val_examples, canary_plan)
        self.callback = callback
        start_step = _checkpoint_step(self._checkpoint_to_resume())
        max_steps = config.max_steps or _epoch_steps(len(train_examples), config, self.rank.world_size)
        log.emit(StartEvent(
            run_id=self.run_id, run_dir=str(self.run_dir), model=entry.name, family=loaded.family,
            objective=objective, method=config.method, max_steps=max_steps, start_step=start_step,
            resumed_from=self._checkpoint_to_resume(), world_size=self.rank.world_size,
            train_examples=len(train_examples), val_examples=len(val_examples),
            skipped_examples=skipped + skipped_val, trainable_parameters=trainable, total_parameters=total,
            lr=lr, lr_note=lr_note, label=config.label,
        ))
        self.step = start_step
        for problem in problems[:10]:
            log.emit(LogEvent(level="warning", message=f"{problem} (line skipped)"))
        if len(problems) > 10:
            log.emit(LogEvent(level="warning", message=f"{pairs_path}: {len(problems) - 10} more bad lines skipped"))
        if self.resume_dir is not None and start_step == 0:
            log.emit(LogEvent(level="warning", message=f"{self.run_dir}: no checkpoint yet, starting from step 0"))
        if val_pairs and not val_examples:
            log.emit(LogEvent(level="warning", message="every val prompt exceeds max_length; no evaluation"))
        elif not val_pairs and config.eval_every:
            log.emit(LogEvent(level="info", message=f"{pairs_path}: no pairs with split \"val\"; no evaluation"))
        if canary_plan is not None and self.resume_dir is None and self.rank.is_main:
            # Fresh LoRA adapters start at B = 0 and dropout is off in eval mode, so the
            # wrapped model answers exactly as the base model does.
            self._run_canaries(canary_plan, loaded, step=0)
        if self.cancel():
            return None
        self.callback.phase("training", start_step)
        return trainer

    def _device(self) -> str:
        import torch

        if torch.cuda.is_available():
            return f"cuda:{self.rank.local_rank}"
        return "cpu"

    def _learning_rate(self, objective: str, model: Any) -> tuple[float, str]:
        if self.config.lr is not None:
            return float(self.config.lr), "set by you"
        total = sum(parameter.numel() for parameter in model.parameters())
        return default_lr_with_reason(objective, self.config.method, total)

    def _write_run_json(self, loaded: Any, objective: str, pairs_path: Path) -> None:
        import peft
        import torch
        import transformers

        path = self.run_dir / "run.json"
        pairs_hash = sha256_file(pairs_path)
        previous = json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
        record = previous or {
            "run_id": self.run_id, "created_at": now_utc(), "model": self.entry.name, "model_path": loaded.path,
            "family": loaded.family, "objective": objective, "method": self.config.method,
            "pairs_path": str(pairs_path), "pairs_sha256": pairs_hash, "world_size": self.rank.world_size,
            "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__},
        }
        if previous is not None:
            record.setdefault("resumed_at", []).append(now_utc())
            if previous.get("pairs_sha256") != pairs_hash:
                self.log.emit(LogEvent(level="warning", message=(
                    f"{pairs_path} changed since this run started (sha256 differs); the resumed steps "
                    "train on the new pairs and the data order no longer matches the original")))
        write_atomic(path, json.dumps(record, indent=2) + "\n")
        self.pairs_hash = pairs_hash

    def _open_store(self, pairs_path: Path) -> None:
        if not self.rank.is_main:
            return
        link = StoreLink(self.workspace.db_path, self.run_id, self.log)
        link.call("record_run", run_id=self.run_id, method=self.config.method, config=config_to_dict(self.config),
                  model_path=self.entry.path if Path(self.entry.path).is_dir() else None,
                  pairs_hash=getattr(self, "pairs_hash", None), status="running", out_dir=str(self.run_dir))
        self.log.store = link

    def _canary_plan(self, loaded: Any, template: str, quantised: bool) -> Any:
        if self.config.canaries.strip().lower() == "none" or not self.rank.is_main:
            return None
        from engine.train import canaries

        chosen, warning = canaries.select(self.workspace, self.config.canaries)
        if warning:
            self.log.emit(LogEvent(level="warning", message=warning))
        if not chosen:
            return None
        return canaries.CanaryPlan(
            canaries=chosen, workspace=self.workspace, family=loaded.family, seed=self.config.canary_seed,
            temperature=self.config.canary_temperature, max_new_tokens=self.config.canary_max_new_tokens,
            steps=self.config.canary_steps, use_template=template == "chat", quantised=quantised,
            run_id=self.run_id, run_dir=self.run_dir, base_path=loaded.path, model_name=self.entry.name,
            method=self.config.method,
        )

    def _run_canaries(self, plan: Any, loaded: Any, step: int, checkpoint: str | None = None) -> None:
        """Answer the canaries, unless a cancel came first: a cancel must land in seconds, and
        the Judge screen can fill a checkpoint's missing canaries later. A cancel arriving
        mid-way stops them too; `canaries_skipped` counts what was left out."""
        from engine.train import canaries

        total = len(plan.canaries)
        if self.cancel():
            self.canaries_skipped = total
            where = Path(checkpoint).name if checkpoint else "the base model"
            self.log.emit(LogEvent(level="info", message=(
                f"cancelled: {total} canaries of {where} skipped (the Judge screen can fill them)")))
            return
        answered = 0
        for event in canaries.run_canaries(plan, loaded, step, checkpoint, should_stop=self.cancel):
            if isinstance(event, CanaryEvent):
                answered += 1
                if self.clock is not None:
                    self.clock.canary_seconds.append(event.seconds)
            elif isinstance(event, PhaseEvent) and self.clock is not None:
                left = (event.total or 0) - event.done
                event = dataclasses.replace(event, eta_s=self.clock.eta(step, canaries_left_now=left))
            self.log.emit(event)
        if self.cancel() and answered < total:
            self.canaries_skipped = total - answered

    def _trainable_model(self, loaded: Any, objective: str, quantised: bool) -> Any:
        config, model = self.config, loaded.model
        wants_checkpointing = config.gradient_checkpointing
        if wants_checkpointing and not getattr(model, "supports_gradient_checkpointing", False):
            self.log.emit(LogEvent(level="warning", message=(
                f"{self.entry.name} does not support gradient checkpointing; training without it")))
            wants_checkpointing = False
            self.config = dataclasses.replace(config, gradient_checkpointing=False)
        if wants_checkpointing and hasattr(model.config, "use_cache"):
            model.config.use_cache = False  # the KV cache is useless in training and clashes with recomputation
        if quantised:
            from peft import prepare_model_for_kbit_training

            # peft would turn checkpointing on through the deprecated gradient_checkpointing_enable;
            # do it with the current API (non-reentrant needs no input-grad hook).
            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
            if wants_checkpointing:
                model.activation_checkpointing_enable({"use_reentrant": False})
        if config.method in ("lora", "qlora"):
            from engine.models.portable import base_reference
            from engine.train.lora import apply_lora

            model, _ = apply_lora(model, family=loaded.family, rank=config.lora_rank, alpha=config.lora_alpha,
                                  dropout=config.lora_dropout, targets=config.lora_targets, source=self.entry.name,
                                  base_reference=base_reference(self.workspace, config.model))
        else:
            for parameter in model.parameters():
                parameter.requires_grad_(True)
        model.train()
        return model

    def _build_trainer(self, loaded, objective, train_examples, val_examples, canary_plan):
        from transformers import TrainingArguments
        from transformers.trainer_callback import PrinterCallback, ProgressCallback

        from engine.train.data import CausalCollator, DiffusionCollator, ExampleDataset, pad_token_for
        from engine.train.trainer import EventCallback, VoicebenchTrainer

        config = self.config
        dtype = config.compute_dtype or ("float32" if self.use_cpu else "bfloat16")
        evaluate = bool(val_examples) and config.eval_every > 0
        args = TrainingArguments(
            output_dir=str(self._checkpoints_dir()),
            per_device_train_batch_size=config.batch_size,
            per_device_eval_batch_size=config.batch_size,
            gradient_accumulation_steps=config.grad_accum,
            learning_rate=config.lr,
            max_steps=config.max_steps if config.max_steps > 0 else -1,
            num_train_epochs=config.epochs,
            lr_scheduler_type=config.scheduler,
            warmup_steps=config.warmup_steps,
            weight_decay=config.weight_decay,
            max_grad_norm=config.max_grad_norm,
            logging_strategy="steps",
            logging_steps=1,
            eval_strategy="steps" if evaluate else "no",
            eval_steps=config.eval_every if evaluate else None,
            save_strategy="steps",
            save_steps=config.save_every if config.save_every > 0 else 10**9,  # 10**9: only the end save
            save_total_limit=config.save_limit,
            seed=config.seed,
            data_seed=config.seed,
            report_to="none",
            disable_tqdm=True,
            remove_unused_columns=False,
            prediction_loss_only=True,
            dataloader_num_workers=0,
            use_cpu=self.use_cpu,
            bf16=dtype == "bfloat16" and not self.use_cpu and config.method != "qlora",
            fp16=dtype == "float16" and not self.use_cpu and config.method != "qlora",
            # QLoRA turned checkpointing on in prepare_model_for_kbit_training already.
            activation_checkpointing=config.gradient_checkpointing and config.method != "qlora",
            activation_checkpointing_kwargs={"use_reentrant": False},
            ddp_backend="gloo" if self.use_cpu and self.rank.world_size > 1 else None,
            ddp_find_unused_parameters=False,
            log_level="warning",
        )
        mask_id, eos_id = _diffusion_ids(loaded)
        if objective == "causal":
            collator = CausalCollator(pad_token_for(loaded.tokenizer))
        else:
            collator = DiffusionCollator(eos_id)
        from engine.train.progress import RunClock

        self.clock = RunClock(
            max_steps=config.max_steps or _epoch_steps(len(train_examples), config, self.rank.world_size),
            eval_every=config.eval_every if evaluate else 0, save_every=config.save_every,
            canaries_per_checkpoint=len(canary_plan.canaries) if canary_plan is not None else 0)
        callback = EventCallback(
            emit=self.log.emit, is_main=self.rank.is_main, world_size=self.rank.world_size,
            cancel_requested=self.cancel, early_stop=config.early_stop, patience=config.memorisation_patience,
            on_checkpoint=(lambda step, path, model: self._run_canaries(canary_plan, loaded, step, path))
            if canary_plan is not None else None, clock=self.clock,
        )
        trainer = VoicebenchTrainer(
            model=loaded.model, args=args, data_collator=collator,
            train_dataset=ExampleDataset(train_examples),
            eval_dataset=ExampleDataset(val_examples) if evaluate else None,
            processing_class=loaded.tokenizer, callbacks=[callback],
            objective=objective, family=loaded.family, mask_token_id=mask_id,
            diffusion_eps=config.diffusion_eps, eval_seed=config.seed,
        )
        for noisy in (PrinterCallback, ProgressCallback):
            trainer.remove_callback(noisy)  # they print dicts to stdout and would corrupt --json
        callback.trainer = trainer
        return trainer, callback


def _diffusion_ids(loaded: Any) -> tuple[int | None, int | None]:
    """(mask id, EOS id) for masked-diffusion training: the sampler's own special ids, so
    training and sampling agree (LLaDA's fixed ids, else the tokenizer's tokens)."""
    from engine.models.loading import DIFFUSION_FAMILIES

    if loaded.family not in DIFFUSION_FAMILIES:
        return None, None
    from engine.sample.diffusion import SamplerSettingsError, special_ids

    try:
        ids = special_ids(loaded)
    except SamplerSettingsError as error:
        raise ConfigError(str(error)) from error
    eos = ids.eos if ids.eos is not None else loaded.tokenizer.eos_token_id
    if eos is None:
        raise ConfigError(f"{loaded.path}: the tokenizer has no EOS token, which diffusion training pads with.")
    return int(ids.mask), int(eos)


def _parameter_counts(model: Any) -> tuple[int, int]:
    from engine.train.lora import parameter_counts

    return parameter_counts(model)


def _checkpoint_step(checkpoint: str | None) -> int:
    match = re.search(r"checkpoint-(\d+)$", checkpoint or "")
    return int(match.group(1)) if match else 0


def _epoch_steps(examples: int, config: TrainConfig, world_size: int) -> int:
    import math

    # Steps the Trainer will take for `epochs` passes: micro-batches per rank ÷ accumulation.
    return max(1, math.ceil(math.ceil(examples / (config.batch_size * world_size)) / config.grad_accum * config.epochs))
