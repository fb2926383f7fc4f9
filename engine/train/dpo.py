"""`--method dpo`: preference training (DPO, Rafailov et al. 2023) on TRL's DPOTrainer.

    voicebench prefs export --self-play                      # data/prefs.jsonl
    voicebench train --method dpo --model voice --max-steps 40

The run is an ordinary voicebench run (engine/train/run.py calls `prepare` instead of its
own SFT set-up): same run folder, events, checkpoints, resume, canaries and store records,
plus a `preference` event per logged step and evaluation with DPO's own curves
(reward margin and preference accuracy, train and val).

What is trained and against what
- A LoRA adapter on a causal model; a model configured with `load_in_4bit` trains as QLoRA.
- `--model voice` (or any workspace model with an adapter) continues that adapter; any
  other model gets a fresh adapter. `ref_model=None` either way: TRL keeps a frozen copy of
  the starting adapter as the reference ("ref" adapter) — for a fresh adapter (B = 0) that
  is exactly the base with the adapter disabled — so no second copy of the model is held.
- Data: `--pairs` is a preference file (`{"prompt", "chosen", "rejected", "split"}`,
  `voicebench prefs export`); the default pairs path means `data/prefs.jsonl`. With a chat
  template the rows are given to TRL as conversations, so prompts are formatted the way
  SFT formatted them.
- Masked-diffusion models refuse DPO (`refusal`): DPO's loss needs each sequence's exact
  log-likelihood under the policy and the reference, and a masked-diffusion model only gives
  a bound on it (its ELBO), so the DPO objective does not apply as written.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar

from engine.events import Event
from engine.train.config import ConfigError

DEFAULT_PREFS = "data/prefs.jsonl"
DEFAULT_PAIRS = "data/pairs.jsonl"  # TrainConfig's default `pairs`: for DPO it means DEFAULT_PREFS
BETA = 0.1  # DPO temperature: how far the policy may move from the reference (TRL's default)
DIFFUSION_REASON = (
    "DPO needs each answer's exact log-likelihood, which a masked-diffusion model does not give (only a "
    "bound), so {model} ({family}) trains with --method diffusion (SFT) only."
)


@dataclasses.dataclass(frozen=True)
class PreferenceEvent(Event):
    """DPO's curves at one logged step (split "train") or evaluation (split "val")."""

    kind: ClassVar[str] = "preference"
    step: int
    split: str  # "train" | "val"
    reward_margin: float  # mean β·(policy/ref log-ratio of chosen − of rejected)
    preference_accuracy: float  # share of pairs whose chosen reward exceeds the rejected one
    chosen_reward: float
    rejected_reward: float


def refusal(workspace: Any, model: str) -> str | None:
    """Why DPO cannot train this model (one line), or None. Reads config.json only."""
    from engine.models.loading import DIFFUSION_FAMILIES, ModelNotFoundError, read_family

    entry = workspace.model(model)
    try:
        family = read_family(entry.path, entry.family)
    except (ModelNotFoundError, FileNotFoundError):
        return None  # the run reports a missing model itself
    if family in DIFFUSION_FAMILIES:
        return DIFFUSION_REASON.format(model=entry.name, family=family)
    return None


def prefs_path(workspace: Any, pairs: str) -> Path:
    path = Path(DEFAULT_PREFS if pairs == DEFAULT_PAIRS else pairs).expanduser()
    return path if path.is_absolute() else workspace.root / path


def _rows(path: Path) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    from engine.judge.prefs import PreferenceError, load_preferences
    from engine.train.data import DataError

    try:
        rows = load_preferences(path)
    except PreferenceError as error:
        raise DataError(str(error)) from None
    keep = ("prompt", "chosen", "rejected")
    train = [{key: row[key] for key in keep} for row in rows if row.get("split") != "val"]
    val = [{key: row[key] for key in keep} for row in rows if row.get("split") == "val"]
    if not train:
        raise DataError(f"{path}: no rows with split \"train\"; nothing to train on.")
    return train, val


def _as_dataset(rows: list[dict[str, str]], conversational: bool) -> Any:
    from datasets import Dataset

    if conversational:
        rows = [{"prompt": [{"role": "user", "content": row["prompt"]}],
                 "chosen": [{"role": "assistant", "content": row["chosen"]}],
                 "rejected": [{"role": "assistant", "content": row["rejected"]}]} for row in rows]
    return Dataset.from_list(rows)


def prepare(session: Any) -> Any:
    """Load the model and preferences and build the DPO trainer for a run (see run.py)."""
    from engine.models.loading import load_entry
    from engine.models.portable import base_reference
    from engine.train import data as train_data
    from engine.train.config import save_config
    from engine.train.events import LogEvent, StartEvent

    config, entry, log, workspace = session.config, session.entry, session.log, session.workspace
    reason = refusal(workspace, config.model)
    if reason:
        raise ConfigError(reason)
    path = prefs_path(workspace, config.pairs)
    train_rows, val_rows = _rows(path)
    quantised = bool(entry.load_in_4bit)
    # The base alone: a version's adapter (`voice`) is trained on, not merged away.
    loaded = load_entry(dataclasses.replace(entry, adapter=None, load_in_4bit=quantised),
                        dtype=config.compute_dtype, device=session._device())
    model_type = str(getattr(loaded.model.config, "model_type", "") or "")
    template = train_data.resolve_template(config.template, loaded.tokenizer, model_type)
    lr, lr_note = session._learning_rate("causal", loaded.model)
    session.config = config = dataclasses.replace(config, lr=lr, out=str(session.run_dir))
    if session.rank.is_main:
        save_config(config, session.run_dir / "config.toml")
        session._write_run_json(loaded, "dpo", path)
    session._open_store(path)
    canary_plan = session._canary_plan(loaded, template, quantised)
    loaded.model = _policy(session, loaded, quantised, base_reference(workspace, entry.path))
    trainable, total = _parameter_counts(loaded.model)
    trainer, callback = _build_trainer(session, loaded, template, train_rows, val_rows, canary_plan)
    session.callback = callback
    from engine.train.run import _checkpoint_step

    start_step = _checkpoint_step(session._checkpoint_to_resume())
    log.emit(StartEvent(
        run_id=session.run_id, run_dir=str(session.run_dir), model=entry.name, family=loaded.family,
        objective="dpo", method=config.method, max_steps=config.max_steps or trainer.args.max_steps,
        start_step=start_step, resumed_from=session._checkpoint_to_resume(), world_size=session.rank.world_size,
        train_examples=len(train_rows), val_examples=len(val_rows), skipped_examples=0,
        trainable_parameters=trainable, total_parameters=total, lr=lr, lr_note=lr_note,
    ))
    session.step = start_step
    if not val_rows:
        log.emit(LogEvent(level="info", message=f"{path}: no rows with split \"val\"; no val preference accuracy"))
    if canary_plan is not None and session.resume_dir is None and not entry.adapter and session.rank.is_main:
        session._run_canaries(canary_plan, loaded, step=0)  # a fresh adapter answers as the base does
    return None if session.cancel() else trainer


def _policy(session: Any, loaded: Any, quantised: bool, reference: str) -> Any:
    """The trainable LoRA policy: the entry's adapter continued, or a fresh one."""
    config, entry = session.config, session.entry
    model = loaded.model
    if quantised:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=config.gradient_checkpointing,
                                                gradient_checkpointing_kwargs={"use_reentrant": False})
    if entry.adapter:
        from peft import PeftModel

        from engine.train.lora import name_base_portably

        model = PeftModel.from_pretrained(model, entry.adapter, is_trainable=True)
        name_base_portably(model, reference)
    else:
        from engine.train.lora import apply_lora

        model, _ = apply_lora(model, family=loaded.family, rank=config.lora_rank, alpha=config.lora_alpha,
                              dropout=config.lora_dropout, targets=config.lora_targets, source=entry.name,
                              base_reference=reference)
    model.train()
    return model


def _parameter_counts(model: Any) -> tuple[int, int]:
    from engine.train.lora import parameter_counts

    return parameter_counts(model)


def _build_trainer(session: Any, loaded: Any, template: str, train_rows: list, val_rows: list,
                   canary_plan: Any) -> tuple[Any, Any]:
    from transformers.trainer_callback import PrinterCallback, ProgressCallback
    from trl import DPOConfig

    from engine.train.trainer import EventCallback

    config = session.config
    evaluate = bool(val_rows) and config.eval_every > 0
    args = DPOConfig(
        output_dir=str(session._checkpoints_dir()),
        per_device_train_batch_size=config.batch_size, per_device_eval_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum, learning_rate=config.lr,
        max_steps=config.max_steps if config.max_steps > 0 else -1, num_train_epochs=config.epochs,
        lr_scheduler_type=config.scheduler, warmup_steps=config.warmup_steps, weight_decay=config.weight_decay,
        max_grad_norm=config.max_grad_norm, logging_strategy="steps", logging_steps=1,
        eval_strategy="steps" if evaluate else "no", eval_steps=config.eval_every if evaluate else None,
        save_strategy="steps", save_steps=config.save_every if config.save_every > 0 else 10**9,
        save_total_limit=config.save_limit, seed=config.seed, data_seed=config.seed, report_to="none",
        disable_tqdm=True, dataloader_num_workers=0, use_cpu=session.use_cpu, log_level="warning",
        activation_checkpointing=config.gradient_checkpointing and not session.entry.load_in_4bit,
        activation_checkpointing_kwargs={"use_reentrant": False},
        ddp_backend="gloo" if session.use_cpu and session.rank.world_size > 1 else None,
        beta=BETA, max_length=config.max_length, precompute_ref_log_probs=False, dataset_num_proc=None,
    )
    callback = EventCallback(
        emit=session.log.emit, is_main=session.rank.is_main, world_size=session.rank.world_size,
        cancel_requested=session.cancel, early_stop=config.early_stop, patience=config.memorisation_patience,
        on_checkpoint=(lambda step, path, model: session._run_canaries(canary_plan, loaded, step, path))
        if canary_plan is not None else None,
    )
    conversational = template == "chat"
    trainer = _trainer_class()(
        model=loaded.model, ref_model=None, args=args, processing_class=loaded.tokenizer,
        train_dataset=_as_dataset(train_rows, conversational),
        eval_dataset=_as_dataset(val_rows, conversational) if evaluate else None,
        callbacks=[callback, _preference_callback(session)],
    )
    for noisy in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(noisy)  # they print dicts to stdout and would corrupt --json
    callback.trainer = trainer
    return trainer, callback


def _trainer_class() -> type:
    """DPOTrainer counting trained tokens, which the shared EventCallback reports as tokens/s."""
    from trl import DPOTrainer

    class VoicebenchDPOTrainer(DPOTrainer):
        trained_tokens = 0

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if model.training and "attention_mask" in inputs:
                self.trained_tokens += int(inputs["attention_mask"].sum())
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)

    return VoicebenchDPOTrainer


def _preference_callback(session: Any) -> Any:
    """A callback that turns TRL's logged rewards into `preference` events and store metrics."""
    from transformers import TrainerCallback

    class PreferenceCallback(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = logs or {}
            for split, prefix in (("train", ""), ("val", "eval_")):
                if f"{prefix}rewards/margins" not in logs or not session.rank.is_main:
                    continue
                event = PreferenceEvent(
                    step=state.global_step, split=split, reward_margin=float(logs[f"{prefix}rewards/margins"]),
                    preference_accuracy=float(logs[f"{prefix}rewards/accuracies"]),
                    chosen_reward=float(logs[f"{prefix}rewards/chosen"]),
                    rejected_reward=float(logs[f"{prefix}rewards/rejected"]),
                )
                session.log.emit(event)
                store = getattr(session.log, "store", None)
                if store is not None:
                    store.call("record_run_metrics", session.run_id, state.global_step, {
                        f"{split}_reward_margin": event.reward_margin,
                        f"{split}_preference_accuracy": event.preference_accuracy})

    return PreferenceCallback()
