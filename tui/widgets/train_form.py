"""The Train screen's settings form: one row per TrainConfig field the writer is likely to touch.

Defaults come from the engine (TrainConfig, the workspace's [train] table, the learning
rate and LoRA targets per family); tooltips are the engine's own `--help` text. Two fields
may stay empty on purpose — lr and LoRA targets — meaning "the engine's default for this
model", which the placeholder and the note under lr spell out.

`TrainForm.settings()` returns the TrainConfig fields to pass as flags, or raises
`FormError` naming the field and what to type.

Numeric fields are `NumberInput`s (focus selects the value, so typing replaces it); text
fields (label, LoRA targets, canaries) never select on focus. The LoRA rows are disabled
(skipped by tab, dimmed) for methods that train all weights.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Input, Label, Select, Static

from engine.train.config import TEMPLATES, ConfigError, TrainConfig, config_from_dict, config_to_dict
from tui.train_defaults import ModelFacts, lora_targets_default, lr_default, lr_note, methods_for
from tui.widgets.number_input import NumberInput


class FormError(Exception):
    """A form value is unusable; `field` is the TrainConfig field, the message says what to type."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclasses.dataclass(frozen=True)
class Field:
    name: str  # TrainConfig field
    label: str
    kind: type  # int, float, str or list (comma-separated)
    optional: bool = False  # empty means "engine default"
    lora: bool = False  # only used by the LoRA methods


FIELDS = (
    Field("label", "label", str, optional=True),  # empty: "<model> <method> #N", shown as the placeholder
    Field("max_steps", "max steps", int),
    Field("epochs", "epochs", float),
    Field("lr", "lr", float, optional=True),
    Field("batch_size", "batch size", int),
    Field("grad_accum", "grad accum", int),
    Field("max_length", "max length", int),
    Field("eval_every", "eval every", int),
    Field("save_every", "save every", int),
    Field("seed", "seed", int),
    Field("lora_rank", "LoRA rank", int, lora=True),
    Field("lora_alpha", "LoRA alpha", int, lora=True),
    Field("lora_dropout", "LoRA dropout", float, lora=True),
    Field("lora_targets", "LoRA targets", list, optional=True, lora=True),
    Field("canaries", "canaries", str),
    Field("processes", "processes", int),  # not a TrainConfig field: how many ranks to launch
)
LAUNCH_FIELDS = ("processes",)
PROCESSES_HELP = ("training processes: 1 runs `python -m engine.train`; more launch it under torchrun "
                  "(one per GPU, or CPU ranks on gloo); only rank 0 reports")
LORA_METHODS = ("lora", "qlora")
LABEL_HELP = "the run's short name, shown in the runs list and when judging; empty: the placeholder"


def _flag_help() -> dict[str, str]:
    """The engine's --help text per TrainConfig field, used as tooltips."""
    from engine.train.__main__ import build_parser

    return {action.dest: action.help or "" for action in build_parser()._actions}


def _shown(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ",".join(str(item) for item in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


class TrainForm(VerticalScroll):
    """Model, method, template and every numeric setting, one compact row each."""

    def __init__(self, models: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.models = models  # (label, name) in display order
        self.facts: ModelFacts | None = None

    def compose(self) -> ComposeResult:
        help_text = _flag_help()
        with Horizontal(classes="train-field"):
            yield Label("model", classes="train-label")
            yield Select(self.models, allow_blank=False, value=self.models[0][1] if self.models else Select.NULL,
                         id="train-model", compact=True, tooltip=help_text.get("model"))
        with Horizontal(classes="train-field"):
            yield Label("method", classes="train-label")
            yield Select([(m, m) for m in ("lora", "qlora", "full")], allow_blank=False, value="lora",
                         id="train-method", compact=True, tooltip=help_text.get("method"))
        with Horizontal(classes="train-field"):
            yield Label("template", classes="train-label")
            yield Select([(t, t) for t in TEMPLATES], allow_blank=False, value="auto",
                         id="train-template", compact=True, tooltip=help_text.get("template"))
        for field in FIELDS:
            classes = "train-field train-lora" if field.lora else "train-field"
            with Horizontal(classes=classes, id=f"train-row-{field.name}"):
                yield Label(field.label, classes="train-label")
                tooltip = LABEL_HELP if field.name == "label" else help_text.get(field.name, PROCESSES_HELP)
                if field.kind in (int, float):
                    yield NumberInput(id=f"train-{field.name}", integer=field.kind is int, compact=True,
                                      tooltip=tooltip)
                else:
                    yield Input(id=f"train-{field.name}", compact=True, tooltip=tooltip, select_on_focus=False)
            if field.name == "lr":
                yield Static("", id="train-lr-note")

    # Defaults --------------------------------------------------------------------------
    def input(self, name: str) -> Input:
        return self.query_one(f"#train-{name}", Input)

    def fill(self, config: TrainConfig, facts: ModelFacts, method: str) -> None:
        """Put `config`'s values in every field (lr / targets stay empty when None)."""
        self.facts = facts
        self.set_method_options(facts, method)
        self.query_one("#train-template", Select).value = config.template
        for field in FIELDS:
            if field.name not in LAUNCH_FIELDS:
                self.input(field.name).value = _shown(getattr(config, field.name))
        if not self.input("processes").value:
            self.input("processes").value = "1"
        self.update_hints()

    def set_method_options(self, facts: ModelFacts, method: str) -> None:
        self.facts = facts
        select = self.query_one("#train-method", Select)
        methods = methods_for(facts)
        select.set_options([(m, m) for m in methods])
        select.value = method if method in methods else methods[0]
        self._method_help = getattr(self, "_method_help", None) or str(select.tooltip or "")
        select.tooltip = self._method_help
        if "dpo" not in methods:  # masked-diffusion models: say why preference training is not offered
            from engine.train.dpo import DIFFUSION_REASON

            select.tooltip += "\n\nNo dpo here: " + DIFFUSION_REASON.format(model=facts.name, family=facts.family)

    @property
    def method(self) -> str:
        value = self.query_one("#train-method", Select).value
        return str(value) if value is not Select.NULL else "lora"

    @property
    def model(self) -> str:
        value = self.query_one("#train-model", Select).value
        return str(value) if value is not Select.NULL else ""

    def update_hints(self) -> None:
        """lr placeholder and note, LoRA targets placeholder, LoRA rows dimmed for other methods."""
        if self.facts is None:
            return
        method = self.method
        self.input("lr").placeholder = f"default {lr_default(self.facts, method):g}"
        self.query_one("#train-lr-note", Static).update(lr_note(self.facts, method))
        targets = lora_targets_default(self.facts)
        self.input("lora_targets").placeholder = ",".join(targets) if targets else "default for the family"
        unused = method not in LORA_METHODS
        for row in self.query(".train-lora"):
            row.set_class(unused, "-unused")
            for field_input in row.query(Input):
                field_input.disabled = unused

    # Reading ----------------------------------------------------------------------------
    @property
    def processes(self) -> int:
        text = self.input("processes").value.strip() or "1"
        try:
            count = int(text)
        except ValueError:
            raise FormError("processes", f"processes: {text!r} is not a whole number.") from None
        if count < 1:
            raise FormError("processes", "processes: must be at least 1.")
        return count

    def settings(self) -> dict[str, Any]:
        """TrainConfig fields for the run; validated by the engine's own `config_from_dict`."""
        values: dict[str, Any] = {"model": self.model, "method": self.method,
                                  "template": str(self.query_one("#train-template", Select).value)}
        for field in FIELDS:
            if field.name in LAUNCH_FIELDS:
                continue
            text = self.input(field.name).value.strip()
            if not text:
                if field.optional:
                    continue
                raise FormError(field.name, f"{field.label}: empty; type a value (the default is in the tooltip).")
            try:
                if field.kind is list:
                    values[field.name] = [part.strip() for part in text.split(",") if part.strip()]
                else:
                    values[field.name] = field.kind(text)
            except ValueError:
                kind = "a whole number" if field.kind is int else "a number"
                raise FormError(field.name, f"{field.label}: {text!r} is not {kind}.") from None
        try:
            config = config_from_dict(values, "the Train form")
        except ConfigError as error:
            raise FormError(_field_in(str(error)), str(error)) from None
        settings = {key: value for key, value in config_to_dict(config).items() if key in values}
        if self.method not in LORA_METHODS:
            for field in FIELDS:
                if field.lora:
                    settings.pop(field.name, None)
        return settings


def _field_in(message: str) -> str:
    """The field a validate_config message names ("<source>: field = value: …")."""
    for field in FIELDS:
        if f": {field.name} = " in message:
            return field.name
    return ""
