"""Sampler traces: save a diffusion run as JSON lines, load it back, and replay it step by step.

A trace file is what `voicebench generate --json` prints, with one header line in front:

    {"event": "trace", "version": 1, "model": "demo-diffusion", "prompt": "…",
     "settings": {…SamplerSettings…}, "family": "masked", "tokens": {"417": " river", …}}
    {"event": "step", "step": 1, "block": 0, "committed": [[pos, token_id, confidence], …], …}
    …
    {"event": "final", "prompt_ids": […], "token_ids": […], "text": "…", …}

`tokens` maps every token id the run committed to its text, so a trace replays without the
model (or its tokenizer) on disk. The header is optional when loading, so plain
`generate --json` output and canary traces replay too (their pieces come from elsewhere);
the final line is optional so a cancelled run can be saved and replayed as far as it got.

`Timeline` is the replay model the Canvas screen draws: for every position, the step that
committed it, so the canvas at any step (and which rows change between two steps) is O(1)
per cell — scrubbing never re-runs frames.

    trace = load_trace("runs/traces/x.jsonl")        # TraceError names file:line and field
    timeline = Timeline.from_trace(trace)
    timeline.token_at(pos, step=12)                   # None while still masked at step 12
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from engine.atomic import write_atomic
from engine.sample.diffusion import FinalFrame, SamplerSettings, StepFrame

TRACE_VERSION = 1
HEADER_KIND = "trace"


class TraceError(ValueError):
    """A trace file is unusable; the message says file:line, the field and what to do."""


@dataclasses.dataclass(frozen=True)
class TraceHeader:
    """What was run: the first line of a trace file."""

    model: str  # the workspace's model name, or the folder it was loaded from
    prompt: str
    settings: dict[str, Any]  # SamplerSettings as a dict
    family: str = ""
    tokens: dict[int, str] = dataclasses.field(default_factory=dict)  # token id → its text
    version: int = TRACE_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {
            "event": HEADER_KIND, "version": self.version, "model": self.model, "family": self.family,
            "prompt": self.prompt, "settings": dict(self.settings),
            # JSON keys are strings; sorted so the same run saves byte-identical files.
            "tokens": {str(token_id): self.tokens[token_id] for token_id in sorted(self.tokens)},
        }

    @property
    def sampler_settings(self) -> SamplerSettings:
        known = {field.name for field in dataclasses.fields(SamplerSettings)}
        return SamplerSettings(**{key: value for key, value in self.settings.items() if key in known})


@dataclasses.dataclass
class Trace:
    header: TraceHeader | None
    frames: list[StepFrame]
    final: FinalFrame | None
    path: Path | None = None

    @property
    def gen_length(self) -> int:
        return _gen_length(self.header, self.final, self.frames)


def _gen_length(header: TraceHeader | None, final: FinalFrame | None, frames: Sequence[StepFrame]) -> int:
    if header is not None and isinstance(header.settings.get("gen_length"), int):
        return header.settings["gen_length"]
    if final is not None:
        return len(final.token_ids)
    return 1 + max((pos for frame in frames for pos, _, _ in frame.committed), default=-1)


# Saving ---------------------------------------------------------------------------------
def trace_lines(header: TraceHeader | None, frames: Iterable[StepFrame], final: FinalFrame | None) -> list[str]:
    """The JSON lines of a trace: header, then each event exactly as `generate --json` prints it."""
    lines = [json.dumps(header.to_dict(), ensure_ascii=False, separators=(",", ":"))] if header else []
    lines.extend(frame.to_json() for frame in frames)
    if final is not None:
        lines.append(final.to_json())
    return lines


def save_trace(path: str | Path, header: TraceHeader | None, frames: Iterable[StepFrame],
               final: FinalFrame | None) -> Path:
    """Write a trace atomically (temp file in the same folder, fsync, rename); returns the path."""
    target = Path(path)
    text = "\n".join(trace_lines(header, frames, final)) + "\n"
    write_atomic(target, text)
    return target


def default_trace_path(traces_dir: str | Path, model: str, prompt: str, now: float | None = None) -> Path:
    """runs/traces/<date-time>-<model>-<first words of the prompt>.jsonl"""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    slug = re.sub(r"[^a-z0-9]+", "-", prompt.lower()).strip("-")[:32].rstrip("-") or "prompt"
    model_slug = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(model).name or model)
    return Path(traces_dir) / f"{stamp}-{model_slug}-{slug}.jsonl"


# Loading --------------------------------------------------------------------------------
def load_trace(path: str | Path) -> Trace:
    """Parse and check a trace file; every problem raises TraceError naming file:line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TraceError(f"{path}: no such trace file. Save one with `s` on the Canvas screen, "
                         "or `voicebench generate --json > trace.jsonl`.") from None
    except (OSError, UnicodeDecodeError) as error:
        raise TraceError(f"{path}: cannot read it as UTF-8 text ({error}).") from None
    header: TraceHeader | None = None
    frames: list[StepFrame] = []
    final: FinalFrame | None = None
    committed_at: dict[int, int] = {}  # pos → line that committed it
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        where = f"{path}:{number}"
        payload = _json_object(raw, where)
        kind = payload.get("event")
        if final is not None:
            raise TraceError(f"{where}: a {kind!r} event after the final event; the final line must be last.")
        if kind == HEADER_KIND:
            if header is not None or frames:
                raise TraceError(f"{where}: the trace header must be the first line, and only one.")
            header = _header(payload, where)
        elif kind == "step":
            frame = _step(payload, where, expected_step=len(frames) + 1)
            limit = _gen_length(header, None, []) if header else None
            for pos, _token_id, _confidence in frame.committed:
                if limit is not None and not 0 <= pos < limit:
                    raise TraceError(f"{where}: committed position {pos} is outside the canvas "
                                     f"(gen_length {limit}).")
                if pos in committed_at:
                    raise TraceError(f"{where}: position {pos} was already committed on line "
                                     f"{committed_at[pos]}; a position is committed once.")
                committed_at[pos] = number
            frames.append(frame)
        elif kind == "final":
            final = _final(payload, where)
        else:
            raise TraceError(f"{where}: unknown event {kind!r}; a trace holds 'trace', 'step' and 'final' lines.")
    if header is None and not frames and final is None:
        raise TraceError(f"{path}: the trace is empty; nothing to replay.")
    if final is not None and committed_at and max(committed_at) >= len(final.token_ids):
        raise TraceError(f"{path}:{committed_at[max(committed_at)]}: position {max(committed_at)} is past "
                         f"the end of the final token_ids ({len(final.token_ids)} tokens).")
    return Trace(header=header, frames=frames, final=final, path=path)


def _json_object(raw: str, where: str) -> dict[str, Any]:
    try:
        payload = json.loads(raw)
    except json.JSONDecodeError as error:
        raise TraceError(f"{where}: not valid JSON ({error.msg}, column {error.colno}); "
                         "a trace holds one JSON object a line.") from None
    if not isinstance(payload, dict):
        raise TraceError(f"{where}: expected a JSON object with an \"event\" key, got {type(payload).__name__}.")
    return payload


def _field(payload: dict[str, Any], name: str, kind: type | tuple[type, ...], where: str) -> Any:
    if name not in payload:
        raise TraceError(f"{where}: missing field {name!r} in the {payload.get('event')!r} event.")
    value = payload[name]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        expected = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise TraceError(f"{where}: field {name!r} should be {expected}, got {value!r}.")
    return value


def _header(payload: dict[str, Any], where: str) -> TraceHeader:
    version = _field(payload, "version", int, where)
    if version > TRACE_VERSION:
        raise TraceError(f"{where}: trace version {version} is newer than this voicebench reads "
                         f"({TRACE_VERSION}); update voicebench.")
    settings = _field(payload, "settings", dict, where)
    tokens = payload.get("tokens", {})
    if not isinstance(tokens, dict) or not all(
        isinstance(key, str) and key.lstrip("-").isdigit() and isinstance(value, str) for key, value in tokens.items()
    ):
        raise TraceError(f"{where}: field 'tokens' should map token ids (as strings) to their text.")
    header = TraceHeader(
        model=_field(payload, "model", str, where), prompt=_field(payload, "prompt", str, where),
        settings=settings, family=str(payload.get("family", "")),
        tokens={int(key): value for key, value in tokens.items()}, version=version,
    )
    try:
        header.sampler_settings.validate()
    except (TypeError, ValueError) as error:
        raise TraceError(f"{where}: field 'settings' is not usable: {error}") from None
    return header


def _step(payload: dict[str, Any], where: str, expected_step: int) -> StepFrame:
    step = _field(payload, "step", int, where)
    if step != expected_step:
        raise TraceError(f"{where}: step {step} where step {expected_step} was expected; steps count 1, 2, 3 …")
    committed = _field(payload, "committed", list, where)
    cells: list[tuple[int, int, float]] = []
    for item in committed:
        if (not isinstance(item, list) or len(item) != 3 or not all(isinstance(v, int) for v in item[:2])
                or not isinstance(item[2], (int, float))):
            raise TraceError(f"{where}: each 'committed' item should be [pos, token_id, confidence], got {item!r}.")
        cells.append((item[0], item[1], float(item[2])))
    signals = payload.get("signals", {})
    return StepFrame(
        step=step, block=_field(payload, "block", int, where), committed=tuple(cells),
        masked=_field(payload, "masked", int, where),
        forward_passes=int(payload.get("forward_passes", step)),
        signals=signals if isinstance(signals, dict) else {},
    )


def _final(payload: dict[str, Any], where: str) -> FinalFrame:
    token_ids = _field(payload, "token_ids", list, where)
    prompt_ids = payload.get("prompt_ids", [])
    if not all(isinstance(v, int) for v in token_ids) or not all(isinstance(v, int) for v in prompt_ids):
        raise TraceError(f"{where}: 'token_ids' and 'prompt_ids' should be lists of integers.")
    return FinalFrame(
        prompt_ids=tuple(prompt_ids), token_ids=tuple(token_ids), text=str(payload.get("text", "")),
        forward_passes=int(payload.get("forward_passes", 0)), seconds=float(payload.get("seconds", 0.0)),
    )


# Replay ---------------------------------------------------------------------------------
class Timeline:
    """The canvas at every step of a run, growing as frames arrive (live) or all at once (replay).

    Each position is committed exactly once, so `commit_step[pos]` (0 = never yet) answers
    "is it filled at step s" without replaying frames. Appending is single-writer; readers
    (the UI thread) only ever see a prefix of complete frames.
    """

    def __init__(self, gen_length: int, tokens: dict[int, str] | None = None) -> None:
        self.gen_length = gen_length
        self.frames: list[StepFrame] = []
        self.final: FinalFrame | None = None
        self.tokens: dict[int, str] = dict(tokens or {})  # token id → text piece
        self.commit_step = [0] * gen_length
        self.token_id: list[int | None] = [None] * gen_length
        self.confidence = [0.0] * gen_length

    @classmethod
    def from_trace(cls, trace: Trace) -> Timeline:
        timeline = cls(trace.gen_length, trace.header.tokens if trace.header else None)
        for frame in trace.frames:
            timeline.add(frame)
        timeline.final = trace.final
        return timeline

    @property
    def steps(self) -> int:
        return len(self.frames)

    def add(self, frame: StepFrame) -> None:
        for pos, token_id, confidence in frame.committed:
            if 0 <= pos < self.gen_length:
                self.token_id[pos] = token_id
                self.confidence[pos] = confidence
                self.commit_step[pos] = frame.step
        self.frames.append(frame)  # last: a reader that sees the frame sees its cells

    def frame(self, step: int) -> StepFrame | None:
        return self.frames[step - 1] if 1 <= step <= len(self.frames) else None

    def token_at(self, pos: int, step: int) -> int | None:
        """The token at `pos` on the canvas after `step` steps (None: still a mask)."""
        committed = self.commit_step[pos]
        return self.token_id[pos] if 0 < committed <= step else None

    def ids_at(self, step: int) -> list[int | None]:
        return [self.token_at(pos, step) for pos in range(self.gen_length)]

    def changed_positions(self, step_a: int, step_b: int) -> set[int]:
        """Positions drawn differently at step_a and step_b: filled in between, plus the
        ones highlighted as "committed this step" at either end."""
        low, high = sorted((step_a, step_b))
        changed: set[int] = set()
        for step in range(max(low, 1), high + 1):
            changed.update(pos for pos, _, _ in self.frames[step - 1].committed)
        frame = self.frame(low)
        if frame is not None:
            changed.update(pos for pos, _, _ in frame.committed)
        return changed

