"""TrainConfig: every setting of one training run, saved as `runs/<id>/config.toml`.

Values left as None are resolved when the model is known (`resolve_defaults`), and the
resolved config is what gets saved, so a run folder always says exactly what ran.

    config = TrainConfig(model="demo-ar", method="lora")
    save_config(config, "runs/x/config.toml")
    assert load_config("runs/x/config.toml") == config
"""

from __future__ import annotations

import dataclasses
import functools
import re
from pathlib import Path
from typing import Any

from engine.atomic import write_atomic
from engine.settings import Key, SettingsError, check_value, read_toml, toml_value

METHODS = ("lora", "qlora", "full", "diffusion", "dpo")
TEMPLATES = ("auto", "chat", "plain")
COMPUTE_DTYPES = ("float32", "bfloat16", "float16")
# transformers' lr_scheduler_type values that need no extra arguments (the others, such as
# reduce_lr_on_plateau or cosine_with_min_lr, fail inside the run without them).
SCHEDULERS = ("linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup",
              "inverse_sqrt")
MAX_LABEL_LENGTH = 40  # run labels are shown in table columns and leaderboard headers

# Learning rates by (objective, how weights are updated). LoRA trains a few small matrices
# from zero, so it wants a much larger step than full fine-tuning of pretrained weights.
# The masked-diffusion loss weights each masked token's CE by 1/p; sequences drawn with a
# small t (p near eps) contribute terms up to 1/eps = 1000x larger, which inflates gradient
# variance, so diffusion defaults are half the causal ones.
DEFAULT_LR = {
    ("causal", "lora"): 2e-4,
    ("causal", "full"): 2e-5,
    ("diffusion", "lora"): 1e-4,
    ("diffusion", "full"): 1e-5,
}
# Models this small (the demo models, tests' tiny models) were trained from scratch at
# ~1e-3 and barely move at the rates above within a one-minute run.
TINY_MODEL_PARAMETERS = 50_000_000
TINY_MODEL_LR_FACTOR = 5.0
DIFFUSION_LR_REASON = (
    "masked-diffusion loss weights each masked token by 1/p (up to 1/eps), which inflates "
    "gradient variance, so its default learning rate is half the causal one"
)

# Default LoRA targets by model_type (module-name suffixes inside the repeated blocks).
DEFAULT_LORA_TARGETS = {
    "llama": ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
    "mistral": ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
    "qwen2": ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
    "qwen3": ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
    "gemma": ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
    "gpt2": ("c_attn", "c_proj", "c_fc"),
    "llada": ("q_proj", "k_proj", "v_proj", "attn_out", "ff_proj", "up_proj", "ff_out"),
    "modernbert": ("Wqkv", "Wo", "Wi"),
}


class ConfigError(Exception):
    """A config file or flag value is unusable; the message names the file/field and the fix."""


@dataclasses.dataclass
class TrainConfig:
    """One training run. Field comments are the documentation; `--help` repeats them."""

    # What to train on -------------------------------------------------------------------
    label: str = ""  # the run's short name ("demo-ar lora #3"); "": named when the run starts
    model: str = "demo-ar"  # workspace model name or a local folder / cached HF id
    method: str = "lora"  # lora | qlora | full | diffusion (full weights, masked-diffusion objective) | dpo (LoRA, preference pairs)
    pairs: str = "data/pairs.jsonl"  # pairs file, relative to the workspace
    template: str = "auto"  # auto (chat template if the tokenizer has one, plain for GPT-2) | chat | plain

    # Optimisation -----------------------------------------------------------------------
    lr: float | None = None  # None: DEFAULT_LR for the objective and method (see above)
    max_steps: int = 60  # optimizer steps; 0 = run `epochs` epochs instead
    epochs: float = 1.0  # used only when max_steps is 0
    batch_size: int = 4  # sequences per device per micro-batch
    grad_accum: int = 1  # micro-batches per optimizer step
    max_length: int = 512  # tokens per sequence (prompt + response); longer responses are cut
    warmup_steps: int = 0  # linear warm-up steps
    weight_decay: float = 0.0
    scheduler: str = "linear"  # transformers lr_scheduler_type, one of SCHEDULERS
    max_grad_norm: float = 1.0
    seed: int = 0  # model init of adapters, data order and diffusion masks
    gradient_checkpointing: bool = False  # trade compute for memory where the model supports it
    compute_dtype: str | None = None  # float32 | bfloat16 | float16; None: float32 on CPU, bfloat16 on GPU
    diffusion_eps: float = 1e-3  # minimum masking probability p = (1-eps)t + eps

    # LoRA -------------------------------------------------------------------------------
    lora_rank: int = 8
    lora_alpha: int = 16  # scale = alpha / rank
    lora_dropout: float = 0.05
    lora_targets: list[str] | None = None  # module-name suffixes; None: DEFAULT_LORA_TARGETS for the family

    # Evaluation, checkpoints ------------------------------------------------------------
    eval_every: int = 20  # evaluate on the val split every N steps (0: never)
    save_every: int = 20  # checkpoint every N steps (and always at the end)
    save_limit: int | None = None  # keep only the newest N checkpoints (None: keep all)
    memorisation_patience: int = 2  # consecutive evals with val up while train down before warning
    early_stop: bool = False  # stop the run when the memorisation warning fires

    # Canaries ---------------------------------------------------------------------------
    canaries: str = "all"  # all | none | comma-separated canary ids from data/canaries.toml
    canary_max_new_tokens: int | None = None  # cap each canary's length (None: the canary's own)
    canary_seed: int = 0  # fixed sampling seed so outputs compare across checkpoints and runs
    canary_temperature: float | None = None  # None: the workspace [canary] temperature (seeded, so repeatable)
    canary_steps: int | None = None  # diffusion sampler steps (None: the sampler's default)

    # Where ------------------------------------------------------------------------------
    out: str | None = None  # run folder; None: runs/<timestamp>-<model>-<method>


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def config_to_dict(config: TrainConfig) -> dict[str, Any]:
    """Plain dict of the non-None fields (TOML has no null)."""
    return {key: _plain(value) for key, value in dataclasses.asdict(config).items() if value is not None}


def config_from_dict(data: dict[str, Any], source: str = "<dict>",
                     lines: dict[tuple[str | int, ...], int] | None = None) -> TrainConfig:
    """Build and validate a config; unknown keys are an error naming them and the allowed ones.
    `lines` (key → line in `source`) lets a message say where a bad value was written."""
    fields = {field.name: field for field in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{source}: unknown keys {unknown}; allowed: {sorted(fields)}")
    config = TrainConfig(**data)
    validate_config(config, source, lines)
    return config


@functools.cache
def _field_keys() -> dict[str, Key]:
    """Each field's kind and limits: the workspace's [train] keys (one definition of the limits),
    except that a run may also be a DPO run."""
    from engine.workspace import settings_schema

    keys = dict(settings_schema()["train"].keys)  # type: ignore[union-attr]
    keys["method"] = Key("str", choices=METHODS)
    return keys


def validate_config(config: TrainConfig, source: str = "<config>",
                    lines: dict[tuple[str | int, ...], int] | None = None) -> None:
    def bad(field: str, message: str) -> ConfigError:
        line = (lines or {}).get((field,))
        where = f"{source}:{line}" if line else source
        return ConfigError(f"{where}: {field} = {getattr(config, field)!r}: {message}")

    if config.method not in METHODS:
        raise bad("method", f"expected one of {', '.join(METHODS)}")
    # Kinds and limits first, so a string where a number belongs, NaN or a negative count from a
    # config file or a flag is refused here with its name, not deep inside a run.
    for name, spec in _field_keys().items():
        value = getattr(config, name)
        problem = None if value is None else check_value(value, spec)  # None: "use the default"
        if problem:
            raise bad(name, re.sub(r", got .*$", "", problem[0]) + f". {problem[1]}.")
    if "\n" in config.label or len(config.label) > MAX_LABEL_LENGTH:
        raise bad("label", f"one line of at most {MAX_LABEL_LENGTH} characters")
    if config.template not in TEMPLATES:
        raise bad("template", f"expected one of {', '.join(TEMPLATES)}")
    if config.compute_dtype is not None and config.compute_dtype not in COMPUTE_DTYPES:
        raise bad("compute_dtype", f"expected one of {', '.join(COMPUTE_DTYPES)}")
    for name in ("batch_size", "grad_accum", "lora_rank", "max_length"):
        if int(getattr(config, name)) < 1:
            raise bad(name, "must be at least 1")
    for name in ("max_steps", "eval_every", "save_every", "warmup_steps", "memorisation_patience"):
        if int(getattr(config, name)) < 0:
            raise bad(name, "must be 0 or more")
    if config.max_steps == 0 and config.epochs <= 0:
        raise bad("epochs", "must be positive when max_steps is 0")
    if config.lr is not None and not config.lr > 0:
        raise bad("lr", "must be positive")
    if not 0.0 <= config.lora_dropout < 1.0:
        raise bad("lora_dropout", "must be in [0, 1)")
    if not 0.0 <= config.diffusion_eps < 1.0:
        raise bad("diffusion_eps", "must be in [0, 1)")
    if config.lora_targets is not None and not config.lora_targets:
        raise bad("lora_targets", "names no module. Give module-name suffixes, e.g. c_attn,c_proj")


def load_config(path: str | Path) -> TrainConfig:
    try:
        parsed = read_toml(path, what_is_it="Give the config.toml of a run folder")
    except SettingsError as error:
        raise ConfigError(str(error)) from None
    return config_from_dict(parsed.data, str(path), parsed.lines)


def config_to_toml(config: TrainConfig) -> str:
    lines = ["# voicebench training run. Re-run with: voicebench train --config <this file>"]
    lines += [f"{key} = {toml_value(value)}" for key, value in config_to_dict(config).items()]
    return "\n".join(lines) + "\n"


def save_config(config: TrainConfig, path: str | Path) -> None:
    write_atomic(path, config_to_toml(config))


def objective_for(family: str) -> str:
    """"causal" for decoder LMs, "diffusion" for every masked-diffusion family."""
    from engine.models.loading import DIFFUSION_FAMILIES

    return "diffusion" if family in DIFFUSION_FAMILIES else "causal"


def default_lr(objective: str, method: str, parameter_count: int | None = None) -> float:
    update = "full" if method in ("full", "diffusion") else "lora"
    lr = DEFAULT_LR[(objective, update)]
    if parameter_count is not None and parameter_count < TINY_MODEL_PARAMETERS:
        lr *= TINY_MODEL_LR_FACTOR
    return lr


def default_lr_with_reason(objective: str, method: str, parameter_count: int | None = None) -> tuple[float, str]:
    """The default learning rate and a sentence saying why (shown on the Train screen)."""
    lr = default_lr(objective, method, parameter_count)
    update = "full" if method in ("full", "diffusion") else "lora"
    note = f"default for {objective} {update} training"
    if objective == "diffusion":
        note += f": {DIFFUSION_LR_REASON}"
    if parameter_count is not None and parameter_count < TINY_MODEL_PARAMETERS:
        note += f"; x{TINY_MODEL_LR_FACTOR:g} for a model under {TINY_MODEL_PARAMETERS // 1_000_000}M parameters"
    return lr, note


def apply_workspace_defaults(config: TrainConfig, section: dict[str, Any], explicit: set[str]) -> TrainConfig:
    """Fill fields the user did not set from the workspace's [train] table."""
    fields = {field.name for field in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(section) - fields)
    if unknown:
        raise ConfigError(f"voicebench.toml: [train] has unknown keys {unknown}; allowed: {sorted(fields)}")
    updates = {key: value for key, value in section.items() if key not in explicit}
    return dataclasses.replace(config, **updates)
