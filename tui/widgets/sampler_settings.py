"""The sampler settings panel of the Canvas screen: one compact field per `SamplerSettings`
option, validated as you type (the message says which field and what to do). `preset_values()`
gives the shown settings as a named preset holds them (engine.sample.sweep's variables)."""

from __future__ import annotations

import dataclasses
from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Checkbox, Input, Label, Select, Static

from engine.sample.diffusion import REMASKING_CHOICES, SamplerSettings, SamplerSettingsError

# (field, label, kind) for the text fields, in panel order; kind parses the text.
NUMBER_FIELDS = (
    ("steps", "steps", int),
    ("gen_length", "gen length", int),
    ("block_length", "block length", int),
    ("temperature", "temperature", float),
    ("cfg_scale", "cfg scale", float),
    ("seed", "seed", int),
    ("threshold", "fast ≥ conf", float),  # blank = exact mode
)
SWITCHES = (
    ("suppress_eos", "suppress EOS"),
    ("deprioritise_eos", "EOS last"),
    ("use_template", "chat template"),
)


class SamplerSettingsPanel(VerticalScroll):
    """Fields for every sampler option; `settings()` returns them or raises SamplerSettingsError."""

    DEFAULT_CSS = """
    SamplerSettingsPanel { height: auto; }
    SamplerSettingsPanel .setting { height: 1; margin-bottom: 0; }
    SamplerSettingsPanel .setting Label { width: 13; color: $text-muted; }
    SamplerSettingsPanel .setting Input { width: 1fr; }
    /* In the narrow run panel (80x24) a choice's label is cut with an ellipsis, not wrapped under the row. */
    SamplerSettingsPanel .setting Select { width: 1fr; height: 1; }
    SamplerSettingsPanel .setting SelectCurrent #label { text-wrap: nowrap; text-overflow: ellipsis; }
    SamplerSettingsPanel Checkbox { height: 1; }
    SamplerSettingsPanel #settings-error { color: $text-error; height: auto; margin-top: 1; }
    SamplerSettingsPanel #settings-error.ok { color: $text-success; }
    """

    def __init__(self, defaults: dict[str, Any] | None = None, *, id: str | None = None) -> None:
        super().__init__(id=id)
        known = {field.name for field in dataclasses.fields(SamplerSettings)}
        self.defaults = dataclasses.asdict(SamplerSettings())
        self.defaults.update({key: value for key, value in (defaults or {}).items() if key in known})

    def compose(self) -> ComposeResult:
        for name, label, _kind in NUMBER_FIELDS:
            with Horizontal(classes="setting"):
                yield Label(label)
                value = self.defaults[name]
                yield Input("" if value is None else str(value), id=f"setting-{name}", compact=True,
                            placeholder="off" if name == "threshold" else "",
                            tooltip=_TOOLTIPS.get(name))
            if name == "cfg_scale":
                with Horizontal(classes="setting"):
                    yield Label("remasking")
                    yield Select([(_REMASKING_LABELS.get(choice, choice), choice) for choice in REMASKING_CHOICES],
                                 value=self.defaults["remasking"], allow_blank=False, compact=True,
                                 id="setting-remasking")
        for name, label in SWITCHES:
            yield Checkbox(label, bool(self.defaults[name]), id=f"setting-{name}", compact=True)
        yield Static("", id="settings-error")

    def on_mount(self) -> None:
        self.check()

    def on_input_changed(self) -> None:
        self.check()

    def check(self) -> bool:
        """Validate and show the message; True when the settings are usable."""
        message = self.query_one("#settings-error", Static)
        try:
            settings = self.settings()
        except SamplerSettingsError as error:
            message.update(f"⚠ {error}")
            message.remove_class("ok")
            return False
        mode = f"fast mode, threshold {settings.threshold:g}" if settings.threshold else \
            f"{settings.steps // settings.blocks} steps per block"
        message.update(f"✓ {settings.blocks} block(s), {mode}")
        message.add_class("ok")
        return True

    def settings(self) -> SamplerSettings:
        values: dict[str, Any] = {}
        for name, label, kind in NUMBER_FIELDS:
            raw = self.query_one(f"#setting-{name}", Input).value.strip()
            if name == "threshold" and raw in ("", "off", "none"):
                values[name] = None
                continue
            try:
                values[name] = kind(raw)
            except ValueError:
                what = "a whole number" if kind is int else "a number"
                raise SamplerSettingsError(f"{label}: {raw!r} is not {what}.") from None
        values["remasking"] = self.query_one("#setting-remasking", Select).value
        for name, _label in SWITCHES:
            values[name] = self.query_one(f"#setting-{name}", Checkbox).value
        return SamplerSettings(**values).validate()

    def preset_values(self) -> dict[str, Any]:
        """The shown settings as `engine.sample.sweep.save_preset` takes them (raises
        SamplerSettingsError when they are not valid). Gen length and seed are left out: a
        sweep or canary run takes both from each canary. The two EOS switches become `eos`."""
        settings = self.settings()
        eos = "suppress" if settings.suppress_eos else "deprioritise" if settings.deprioritise_eos else "keep"
        values: dict[str, Any] = {
            "temperature": settings.temperature, "steps": settings.steps, "block_length": settings.block_length,
            "cfg_scale": settings.cfg_scale, "remasking": settings.remasking, "eos": eos,
            "use_template": settings.use_template,
        }
        if settings.threshold is not None:  # exact mode has no threshold (TOML has no "none")
            values["threshold"] = settings.threshold
        return values

    def load(self, settings: dict[str, Any]) -> None:
        """Show saved settings (a replayed trace's), ignoring unknown keys."""
        for name, _label, _kind in NUMBER_FIELDS:
            if name in settings:
                value = settings[name]
                self.query_one(f"#setting-{name}", Input).value = "" if value is None else str(value)
        if settings.get("remasking") in REMASKING_CHOICES:
            self.query_one("#setting-remasking", Select).value = settings["remasking"]
        for name, _label in SWITCHES:
            if name in settings:
                self.query_one(f"#setting-{name}", Checkbox).value = bool(settings[name])
        self.check()

    def fit_length(self, gen_length: int) -> None:
        """Set gen_length (a canary's max_new_tokens) and adjust block length and steps to fit."""
        block_input = self.query_one("#setting-block_length", Input)
        steps_input = self.query_one("#setting-steps", Input)
        try:
            block_length, steps = int(block_input.value), int(steps_input.value)
        except ValueError:
            block_length, steps = SamplerSettings.block_length, SamplerSettings.steps
        if block_length <= 0 or gen_length % block_length:
            block_length = gen_length  # one block when the length does not divide evenly
        blocks = gen_length // block_length
        steps = max(blocks, min(steps, gen_length) // blocks * blocks)
        self.query_one("#setting-gen_length", Input).value = str(gen_length)
        block_input.value = str(block_length)
        steps_input.value = str(steps)
        self.check()


_REMASKING_LABELS = {"low_confidence": "confidence", "random": "random"}
_TOOLTIPS = {
    "steps": "Model calls in exact mode; a multiple of the number of blocks",
    "gen_length": "Tokens to generate (the masked canvas)",
    "block_length": "Semi-autoregressive block size; divides gen length",
    "temperature": "0 = argmax; above 0 = Gumbel-max sampling",
    "cfg_scale": "Classifier-free guidance weight; 0 = off",
    "seed": "Same seed, same tokens",
    "threshold": "Fast mode: commit every token above this confidence (blank = exact mode)",
}
