"""The workspace: a folder holding sources, pairs, canaries, rubric, models, runs and the store.

`Workspace.open(path)` reads `voicebench.toml` when present and falls back to defaults,
so the repository root (which ships `data/`) is itself the demo workspace.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from pathlib import Path
from typing import Any

from engine.settings import Key, NamedTables, SettingsError, Table, read_settings

CONFIG_NAME = "voicebench.toml"
# The workspace model that always means "my current version" (engine/models/versions.py).
VOICE_MODEL = "voice"
# "owner/name" as the Hugging Face Hub spells a model id; "./x", "/x", "~/x" and deeper
# paths are folders.
HUB_ID = re.compile(r"[\w\-][\w.\-]*/[\w.\-]+")


class WorkspaceError(Exception):
    """A workspace or its config is unusable; the message says where and what to do."""


class WorkspaceSettingsError(WorkspaceError, SettingsError):
    """voicebench.toml is unusable; carries file, line and key (engine/settings.py)."""


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    """One model the workspace knows by name."""

    name: str
    path: str  # local folder, or a Hugging Face id resolved from the local cache only
    family: str | None = None  # "causal" | "masked" | "llada"; None = detect from config
    trust_remote_code: bool = False  # only ever True when the config says so
    context_length: int | None = None  # token budget for pairs; None = from model config
    load_in_4bit: bool = False  # QLoRA / memory-saving loads on a GPU box
    adapter: str | None = None  # a peft adapter folder applied on top (the `voice` model's current version)


# Shipped defaults: the demo models run anywhere; the real ones are configuration for a
# GPU box and are only used when their weights are already on disk or in the HF cache.
DEFAULT_MODELS: tuple[ModelEntry, ...] = (
    ModelEntry("demo-ar", "data/models/demo-ar", family="causal", context_length=512),
    ModelEntry("demo-diffusion", "data/models/demo-diffusion", family="masked", context_length=512),
    ModelEntry("gpt2-xl", "openai-community/gpt2-xl", family="causal", context_length=1024),
    ModelEntry(
        "llama-3.1-8b-instruct", "meta-llama/Llama-3.1-8B-Instruct", family="causal",
        context_length=8192, load_in_4bit=True,
    ),
    ModelEntry(  # runs on engine/models/llada: no remote code
        "llada-8b-instruct", "GSAI-ML/LLaDA-8B-Instruct", family="llada", context_length=4096,
    ),
)


@dataclasses.dataclass
class Workspace:
    """Paths and settings of one workspace folder."""

    root: Path
    models: dict[str, ModelEntry]
    settings: dict[str, Any]  # raw tables from voicebench.toml: [sampler], [train], [pairs] …

    @classmethod
    def open(cls, root: str | Path = ".") -> Workspace:
        root = Path(root).expanduser().resolve()
        if not root.is_dir():
            raise WorkspaceError(f"{root}: not a folder. Run `voicebench init {root}` to make a workspace.")
        settings: dict[str, Any] = {}
        config_path = root / CONFIG_NAME
        if config_path.exists() or config_path.is_symlink():  # a dangling link is an error, not "no settings"
            settings = read_settings(config_path, settings_schema(), error_type=WorkspaceSettingsError,
                                     what_is_it="It is a link to a file that is not there: fix the link or remove it"
                                     ).data
        models = {entry.name: entry for entry in DEFAULT_MODELS}
        for name, table in settings.get("models", {}).items():
            models[name] = ModelEntry(name=name, **table)
        return cls(root=root, models=models, settings=settings)

    # Paths -----------------------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def sources_dir(self) -> Path:
        return self.data_dir / "sources"

    @property
    def pairs_path(self) -> Path:
        return self.data_dir / "pairs.jsonl"

    @property
    def canaries_path(self) -> Path:
        return self.data_dir / "canaries.toml"

    @property
    def rubric_path(self) -> Path:
        return self.data_dir / "rubric.toml"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    @property
    def db_path(self) -> Path:
        return self.root / "judgments.db"

    def own_files(self) -> dict[Path, str]:
        """The workspace's own files, which no command's --out may replace, and what each is."""
        return {self.pairs_path: "the workspace's pairs file", self.canaries_path: "the workspace's canaries",
                self.rubric_path: "the workspace's rubric", self.root / CONFIG_NAME: "the workspace's settings",
                self.db_path: "the judgments store", self.root / "presets.toml": "the sampler presets"}

    def check_output(self, path: str | Path, *, flag: str = "--out", inputs: dict[Path, str] | None = None) -> None:
        """WorkspaceError when writing `path` would replace one of the workspace's own files, or a
        file this command reads (`inputs`: path → what it is): a mistyped --out is not data loss."""
        target = Path(path).expanduser().resolve()
        for own, what in {**self.own_files(), **(inputs or {})}.items():
            if target == Path(own).expanduser().resolve():
                raise WorkspaceError(f"{path}: is {what}; {flag} would replace it. Give {flag} another file.")

    def section(self, name: str) -> dict[str, Any]:
        """A settings table such as [sampler] or [train]; empty when absent."""
        return dict(self.settings.get(name, {}))

    def model(self, name_or_path: str) -> ModelEntry:
        """A configured model by name, or an ad-hoc entry for a path.

        A configured model's relative folder belongs to the workspace: its path comes back
        absolute under the root whether or not the folder exists yet (so a missing one is
        reported where it should be, never looked up in the current folder). Hub ids
        ("owner/name") stay as they are, unless the workspace has an `owner` folder. A path
        typed by hand may be relative to either: the workspace's folder when it exists, else
        as typed.
        """
        configured = name_or_path in self.models
        if name_or_path == VOICE_MODEL and not configured:
            from engine.models.versions import current_voice_entry

            return current_voice_entry(self)
        if configured:
            entry = self.models[name_or_path]
        else:
            entry = ModelEntry(name=Path(name_or_path).name or name_or_path, path=name_or_path)
        if Path(entry.path).expanduser().is_absolute():
            return entry
        local = self.root / entry.path
        if local.exists() or (configured and not self._hub_id(entry.path)):
            entry = dataclasses.replace(entry, path=str(local))
        return entry

    def _hub_id(self, path: str) -> bool:
        """Whether a configured path means a Hub id: "owner/name", unless the workspace has
        an `owner` folder (then it is a model folder not built yet)."""
        return looks_like_hub_id(path) and not (self.root / path).parent.is_dir()


def looks_like_hub_id(path: str) -> bool:
    """Whether a model path has the shape of a Hugging Face id ("owner/name") rather than a folder."""
    return HUB_ID.fullmatch(path) is not None


# The settings schema ----------------------------------------------------------------------
# Every table and key voicebench.toml may hold. [sampler] and [train] follow the dataclasses
# they fill (SamplerSettings, TrainConfig), so a new field there is a new key here; the limits
# below are the ones those classes' validation enforces, checked early with file and line.

MODEL_KEYS = {
    "path": Key("str", required=True, doc="local folder, or a Hugging Face id already in the local cache"),
    "family": Key("str", choices=("causal", "masked", "llada", "dream"), doc="how it is loaded and trained; read from config.json when absent"),
    "trust_remote_code": Key("bool", doc="run Python code shipped with the model (see \"When model code runs\")"),
    "context_length": Key("int", minimum=1, doc="token budget for pairs"),
    "load_in_4bit": Key("bool", doc="load quantised to 4 bits (QLoRA; needs a GPU and bitsandbytes)"),
}
SAMPLER_LIMITS = {
    "steps": Key("int", minimum=1), "gen_length": Key("int", minimum=1), "block_length": Key("int", minimum=1),
    "temperature": Key("float", minimum=0), "cfg_scale": Key("float", minimum=0),
    "remasking": Key("str", choices=("low_confidence", "random")), "seed": Key("int", minimum=0),
    "threshold": Key("float", above=0, maximum=1),
}
TRAIN_LIMITS = {
    "method": Key("str", choices=("lora", "qlora", "full", "diffusion")),
    "template": Key("str", choices=("auto", "chat", "plain")),
    "compute_dtype": Key("str", choices=("float32", "bfloat16", "float16")),
    **{name: Key("int", minimum=1) for name in ("batch_size", "grad_accum", "lora_rank", "lora_alpha",
                                                "max_length", "save_limit", "canary_max_new_tokens",
                                                "canary_steps")},
    **{name: Key("int", minimum=0) for name in ("max_steps", "eval_every", "save_every", "warmup_steps",
                                                "memorisation_patience", "seed", "canary_seed")},
    "epochs": Key("float", above=0), "lr": Key("float", above=0), "weight_decay": Key("float", minimum=0),
    "max_grad_norm": Key("float", above=0), "lora_dropout": Key("float", minimum=0, maximum=0.99),
    "diffusion_eps": Key("float", minimum=0, maximum=0.99), "canary_temperature": Key("float", minimum=0),
}
CANARY_KEYS = {
    "temperature": Key("float", minimum=0, doc="causal models' canary temperature (default 0.7; seeded)"),
    "use_template": Key("bool", doc="wrap canary prompts in the chat template (default true)"),
}
PAIRS_KEYS = {
    "model": Key("str", doc="model whose tokenizer counts tokens on the Pairs screen"),
    "autosave_seconds": Key("float", minimum=0, doc="seconds after the last edit before the Pairs screen saves"),
}
BUDGET_KEY = Key("int", minimum=1, doc="token budget of the model with this name")

# Type annotations of the dataclass fields (written as strings under `from __future__ import
# annotations`) → settings kinds.
_ANNOTATION_KINDS = {"int": "int", "float": "float", "str": "str", "bool": "bool", "list[str]": "str list"}


def _dataclass_keys(cls: type, limits: dict[str, Key]) -> dict[str, Key]:
    keys = {}
    for field in dataclasses.fields(cls):
        annotation = str(field.type).replace(" | None", "").strip()
        kind = _ANNOTATION_KINDS.get(annotation)
        if field.name in limits:
            keys[field.name] = limits[field.name]
        else:  # a field type the table cannot describe is checked by its class alone
            keys[field.name] = Key(kind or "any")
    return keys


@functools.cache
def settings_schema() -> dict[str, Table | NamedTables]:
    """The tables of voicebench.toml (imported late: the sampler and trainer import this module's neighbours)."""
    from engine.sample.diffusion import SamplerSettings
    from engine.sample.sweep import PRECISIONS
    from engine.train.config import SCHEDULERS, TrainConfig

    train_limits = {**TRAIN_LIMITS, "scheduler": Key("str", choices=SCHEDULERS)}
    return {
        "models": NamedTables(Table(MODEL_KEYS), doc="models by name"),
        "sampler": Table(_dataclass_keys(SamplerSettings, SAMPLER_LIMITS), doc="diffusion sampler defaults"),
        "train": Table(_dataclass_keys(TrainConfig, train_limits), doc="training defaults"),
        "canary": Table(CANARY_KEYS, doc="canary generation"),
        "pairs": Table(PAIRS_KEYS, doc="the Pairs screen"),
        "budgets": Table(any_key=BUDGET_KEY, doc="token budgets by model name"),
        # `voicebench sweep/canary --preset NAME` (engine/sample/sweep.py): sampler settings plus
        # `eos`, the sweep's name for the two EOS switches, and the precision `dtype`.
        "presets": NamedTables(Table({**_dataclass_keys(SamplerSettings, SAMPLER_LIMITS),
                                      "eos": Key("str", choices=("keep", "suppress", "deprioritise")),
                                      "dtype": Key("str", choices=PRECISIONS)}),
                               doc="named sampler settings"),
    }


def init_workspace(target: str | Path) -> Workspace:
    """Make an empty workspace: data/sources, an empty pairs file, a config with comments."""
    root = Path(target).expanduser().resolve()
    (root / "data" / "sources").mkdir(parents=True, exist_ok=True)
    (root / "data" / "models").mkdir(parents=True, exist_ok=True)
    pairs = root / "data" / "pairs.jsonl"
    if not pairs.exists():
        pairs.write_text("", encoding="utf-8")
    config = root / CONFIG_NAME
    if not config.exists():
        config.write_text(DEFAULT_CONFIG_TEXT, encoding="utf-8")
    return Workspace.open(root)


DEFAULT_CONFIG_TEXT = """\
# voicebench workspace settings. Every table is optional.

# Models by name. `path` is a local folder or a Hugging Face id already in your cache;
# nothing is downloaded for you. LLaDA runs on voicebench's own implementation: no
# `trust_remote_code` needed (set it to true only for a model whose own code you trust).
# [models.llada-8b-instruct]
# path = "GSAI-ML/LLaDA-8B-Instruct"
# family = "llada"
# context_length = 4096

# [sampler]
# steps = 64
# gen_length = 64
# block_length = 32

# [train]
# lr = 2e-4
"""
