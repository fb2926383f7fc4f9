"""Hand-written run folders and small workspaces for the Train screen tests."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from engine.train.config import TrainConfig, config_to_toml

PAIRS = [
    {"id": f"river-{index}", "prompt": f"Write a short note about the river, part {index}.",
     "response": "The river keeps its own counsel, and the town keeps the river's. Mend what you can.",
     "source": f"note-{index}", "tier": "manual", "split": "val" if index >= 6 else "train", "tags": [], "notes": ""}
    for index in range(8)
]


def write_workspace(root: Path, models: dict[str, Path] | None = None) -> Path:
    """A workspace with a handful of pairs and, optionally, extra models by name."""
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "data" / "pairs.jsonl").write_text("".join(json.dumps(pair) + "\n" for pair in PAIRS), encoding="utf-8")
    lines = []
    for name, path in (models or {}).items():
        lines += [f'[models.{name}]', f'path = "{path}"', ""]
    (root / "voicebench.toml").write_text("\n".join(lines), encoding="utf-8")
    return root


def write_run(runs_dir: Path, run_id: str, *, status: str = "done", losses: list[float], val: dict[int, float],
              updated_at: str, pid: int | None = None, **config: Any) -> Path:
    """A finished (or interrupted) run folder: config.toml, status.json, events.jsonl."""
    folder = runs_dir / run_id
    folder.mkdir(parents=True)
    resolved = dataclasses.replace(TrainConfig(lr=1e-3, out=f"runs/{run_id}"), **config)
    (folder / "config.toml").write_text(config_to_toml(resolved), encoding="utf-8")
    max_steps = resolved.max_steps
    checkpoint = f"runs/{run_id}/checkpoints/checkpoint-{len(losses)}"
    (folder / "status.json").write_text(json.dumps({
        "status": status, "step": len(losses), "max_steps": max_steps, "last_checkpoint": checkpoint,
        "resumable": status in ("cancelled", "failed"), "run_id": run_id, "world_size": 1, "pid": pid,
        "updated_at": updated_at,
    }), encoding="utf-8")
    events = [{"event": "start", "run_id": run_id, "max_steps": max_steps, "start_step": 0}]
    for step, loss in enumerate(losses, start=1):
        events.append({"event": "step", "step": step, "max_steps": max_steps, "loss": loss, "lr": resolved.lr,
                       "tokens_per_s": 250.0, "memory": 812.0, "world_size": 1, "eta_s": None})
        if step in val:
            events.append({"event": "eval", "step": step, "val_loss": val[step]})
    if status != "running":
        events.append({"event": "done", "status": status, "step": len(losses)})
    (folder / "events.jsonl").write_text("".join(json.dumps(event) + "\n" for event in events), encoding="utf-8")
    return folder


def write_two_runs(runs_dir: Path) -> tuple[Path, Path]:
    """Two finished runs of demo-ar that differ in lr, max_steps and lora_rank."""
    first = write_run(runs_dir, "20260101-090000-demo-ar-lora", losses=[5.0, 4.2, 3.7, 3.4, 3.2, 3.1, 3.05, 3.0],
                      val={4: 3.6, 8: 3.3}, updated_at="2026-01-01T09:10:00+00:00", model="demo-ar",
                      method="lora", max_steps=8, lr=1e-3, lora_rank=8)
    second = write_run(runs_dir, "20260102-090000-demo-ar-lora", losses=[5.1, 4.6, 4.1, 3.9, 3.7, 3.6],
                       val={3: 4.3, 6: 3.8}, updated_at="2026-01-02T09:10:00+00:00", model="demo-ar",
                       method="lora", max_steps=6, lr=5e-4, lora_rank=16)
    return first, second
