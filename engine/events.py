"""Events that long-running engine work yields.

Every generator in the engine (sampling, training, ingest, canary runs) yields small
frozen dataclasses holding plain values only (no tensors), so the TUI can post them as
messages and the CLI can print them as JSON lines with the same code.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any, ClassVar


@dataclasses.dataclass(frozen=True)
class Event:
    """Base class: subclasses set `kind`, the value of the "event" key in JSON."""

    kind: ClassVar[str] = "event"

    def to_dict(self) -> dict[str, Any]:
        payload = {"event": self.kind}
        for field in dataclasses.fields(self):
            payload[field.name] = _plain(getattr(self, field.name))
        return payload

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))


def _plain(value: Any) -> Any:
    """Tuples become lists so JSON round-trips compare equal."""
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def event_from_dict(payload: dict[str, Any], registry: dict[str, type[Event]]) -> Event:
    """Rebuild an event from its JSON form; unknown keys are ignored (newer writers)."""
    kind = payload.get("event")
    if kind not in registry:
        raise ValueError(f"unknown event kind {kind!r}; expected one of {sorted(registry)}")
    cls = registry[kind]
    names = {field.name for field in dataclasses.fields(cls)}
    return cls(**{key: value for key, value in payload.items() if key in names})


def run_to_end(events: Iterator[Event]) -> tuple[list[Event], Any]:
    """Drain an event generator: every event it yielded, and the value it returned."""
    collected: list[Event] = []
    while True:
        try:
            collected.append(next(events))
        except StopIteration as stop:
            return collected, stop.value
