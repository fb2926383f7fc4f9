"""Reading run folders back: the runs list, one run's events, and how two configs differ.

No torch here: the Train screen lists runs and draws curves from these files alone.

    for summary in list_runs(workspace.runs_dir):
        print(summary.run_id, summary.status, summary.step)
    events = read_events(run_dir)              # engine.train.events dataclasses, in order
    config_diff(config_a, config_b)            # [("lr", 2e-4, 1e-4), …]
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from engine.train.config import ConfigError, TrainConfig, config_to_dict, load_config
from engine.train.events import parse_event


@dataclasses.dataclass(frozen=True)
class RunSummary:
    run_id: str
    run_dir: Path
    status: str  # running | done | failed | cancelled (as status.json says)
    stale: bool  # status says running but its process is gone (killed): treat as failed, resumable
    step: int
    max_steps: int | None
    last_checkpoint: str | None
    resumable: bool
    model: str
    method: str
    created_at: str
    config: TrainConfig | None  # None when config.toml is missing or unreadable


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def process_alive(pid: Any) -> bool:
    """Whether a process with this id exists (a run's status.json records its pid)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def summarise_run(run_dir: Path) -> RunSummary | None:
    """A run folder's summary; None when the folder has neither status.json nor config.toml."""
    status = _read_json(run_dir / "status.json")
    meta = _read_json(run_dir / "run.json")
    config = None
    if (run_dir / "config.toml").exists():
        try:
            config = load_config(run_dir / "config.toml")
        except ConfigError:
            config = None
    if not status and config is None:
        return None
    state = status.get("status", "running")
    stale = state == "running" and not process_alive(status.get("pid"))
    return RunSummary(
        run_id=run_dir.name, run_dir=run_dir, status=state, stale=stale, step=int(status.get("step", 0) or 0),
        max_steps=status.get("max_steps"), last_checkpoint=status.get("last_checkpoint"),
        resumable=bool(status.get("resumable")) or stale,
        model=meta.get("model") or (config.model if config else ""),
        method=meta.get("method") or (config.method if config else ""),
        created_at=meta.get("created_at", ""), config=config,
    )


def list_runs(runs_dir: str | Path) -> list[RunSummary]:
    """Every run under `runs_dir`, newest first (run ids start with their start time)."""
    folder = Path(runs_dir)
    if not folder.is_dir():
        return []
    summaries = [summarise_run(child) for child in folder.iterdir() if child.is_dir()]
    return sorted((s for s in summaries if s is not None), key=lambda s: (s.created_at, s.run_id), reverse=True)


def read_events(run_dir: str | Path) -> list[Any]:
    """The run's events in order; a torn last line (the run is still writing) is skipped."""
    path = Path(run_dir) / "events.jsonl"
    if not path.exists():
        return []
    events = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            event = parse_event(line)
        except (ValueError, TypeError):
            continue
        if event is not None:
            events.append(event)
    return events


def config_diff(a: TrainConfig, b: TrainConfig, *, ignore: tuple[str, ...] = ("out",)) -> list[tuple[str, Any, Any]]:
    """(field, value in a, value in b) for every setting that differs, in field order."""
    left, right = config_to_dict(a), config_to_dict(b)
    names = [field.name for field in dataclasses.fields(TrainConfig) if field.name not in ignore]
    return [(name, left.get(name), right.get(name)) for name in names if left.get(name) != right.get(name)]
