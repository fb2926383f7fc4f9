"""The record of a run: events.jsonl, canaries.jsonl, status.json, stdout, and judgments.db.

`RunLog.emit(event)` is the one place events go. On rank 0 it appends the event's JSON
line to `runs/<id>/events.jsonl` (canary events also to canaries.jsonl), prints it on
stdout (the JSON line with --json, else `human_line`), keeps status.json current, and
mirrors metrics into the judging store through `StoreLink`. Other ranks emit nothing.
stdout is best effort: once it is gone (broken pipe) the run keeps writing its files.

The store follows the run: opening the link marks runs whose process is gone as
interrupted (engine.train.runs.mark_interrupted_runs); the start event sets this run
running again and drops metrics recorded after its start step by an attempt that was cut
short, so a resumed step has one row, not two.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from engine.atomic import write_atomic
from engine.train.events import LogEvent


class RunLog:
    """Sends every event to events.jsonl, stdout (JSON or a short line) and the store."""

    def __init__(self, run_dir: Path, *, is_main: bool, json_mode: bool, stdout: TextIO | None = None):
        self.run_dir = run_dir
        self.is_main = is_main
        self.json_mode = json_mode
        self.stdout = stdout or sys.stdout
        self.store: StoreLink | None = None
        self.status: dict[str, Any] = {"status": "running", "step": 0, "max_steps": None,
                                       "last_checkpoint": None, "resumable": False}
        if is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
            self._events = (run_dir / "events.jsonl").open("a", encoding="utf-8")
            self._canaries = (run_dir / "canaries.jsonl").open("a", encoding="utf-8")

    def emit(self, event: Any) -> None:
        if not self.is_main:
            return
        line = event.to_json()
        self._events.write(line + "\n")
        self._events.flush()
        if event.kind == "canary":
            self._canaries.write(line + "\n")
            self._canaries.flush()
        self._print(line if self.json_mode else human_line(event))
        self._track(event)
        if self.store is not None:
            self.store.on_event(event)

    def _print(self, text: str) -> None:
        """stdout is a convenience copy: when nobody reads it any more (the app that started
        the run quit and left it running), the run goes on writing events.jsonl."""
        if self.stdout is None:
            return
        try:
            self.stdout.write(text + "\n")
            self.stdout.flush()
        except (BrokenPipeError, OSError, ValueError):
            self.stdout = None

    def _track(self, event: Any) -> None:
        """Keep status.json in step with the events that change it."""
        if event.kind == "start":
            self.update_status(status="running", step=event.start_step, max_steps=event.max_steps,
                               run_id=event.run_id, world_size=event.world_size, label=event.label)
        elif event.kind == "checkpoint":
            self.update_status(step=event.step, last_checkpoint=event.path)
        elif event.kind == "done":
            self.update_status(status=event.status, step=event.step, last_checkpoint=event.last_checkpoint,
                               resumable=event.resumable)

    def update_status(self, **fields: Any) -> None:
        if not self.is_main:
            return
        self.status.update(fields, pid=os.getpid(), updated_at=now_utc())
        write_atomic(self.run_dir / "status.json", json.dumps(self.status, indent=2) + "\n")

    def close(self) -> None:
        if self.is_main:
            self._events.close()
            self._canaries.close()


def human_line(event: Any) -> str:
    """One readable line per event for people watching a terminal without --json."""
    kind = event.kind
    if kind == "start":
        resumed = f", resumed from {event.resumed_from}" if event.resumed_from else ""
        return (f"run {event.run_id}: {event.model} ({event.family}, {event.objective}) method={event.method} "
                f"steps={event.max_steps} lr={event.lr:g} world_size={event.world_size} "
                f"train={event.train_examples} val={event.val_examples}{resumed} -> {event.run_dir}")
    if kind == "step":
        eta = f"  eta {event.eta_s:.0f}s" if event.eta_s is not None else ""
        return (f"step {event.step}/{event.max_steps}  loss {event.loss:.4f}  lr {event.lr:.2e}  "
                f"{event.tokens_per_s:.0f} tok/s  mem {event.memory:.0f} MiB{eta}")
    if kind == "eval":
        return f"eval  step {event.step}  val_loss {event.val_loss:.4f}"
    if kind == "checkpoint":
        return f"checkpoint step {event.step} -> {event.path}"
    if kind == "canary":
        text = " ".join(event.text.split())
        return f"canary {event.canary_id} @ step {event.step}: {text[:160]}"
    if kind == "memorisation":
        action = " Stopping (early stop)." if event.stopping else ""
        return (f"warning: validation loss rose to {event.val_loss:.4f} (best {event.best_val_loss:.4f}) while "
                f"training loss fell to {event.train_loss:.4f} - the model may be memorising.{action}")
    if kind == "log":
        return f"[{event.level}] {event.message}"
    if kind == "phase":
        counted = f" {event.done}/{event.total}" if event.total else ""
        detail = f" ({event.detail})" if event.detail else ""
        return f"{event.phase}{counted}{detail} at step {event.step}"
    if kind == "error":
        return f"error ({event.to_dict()['kind']}): {event.message}\n  advice: {event.advice}"
    if kind == "preference":  # DPO's curves (engine/train/dpo.py)
        return (f"{event.split} preference  step {event.step}  accuracy {event.preference_accuracy:.2f}  "
                f"reward margin {event.reward_margin:.3f}")
    if kind == "done":
        checkpoint = f", last checkpoint {event.last_checkpoint}" if event.last_checkpoint else ""
        return f"{event.status}: step {event.step}{checkpoint} ({event.seconds:.1f}s)"
    return event.to_json()


class StoreLink:
    """Mirror the run into judgments.db; the first failure turns it off with one warning."""

    def __init__(self, db_path: Path, run_id: str, log: RunLog, runs_dir: Path | None = None):
        self.run_id = run_id
        self.log = log
        self.db = None
        try:
            from engine.judge import store
            from engine.train.runs import mark_interrupted_runs

            self.store = store
            self.db = store.open_store(db_path)
            mark_interrupted_runs(self.db, runs_dir or log.run_dir.parent)
        except Exception as error:  # noqa: BLE001 - the run folder is the record of last resort
            self.db = None
            self._warn(error)

    def _warn(self, error: Exception) -> None:
        self.db = None
        self.log.emit(LogEvent(level="warning", message=f"judgments.db not updated ({error!r}); the run folder has everything"))

    def call(self, name: str, *args: Any, **kwargs: Any) -> None:
        if self.db is None:
            return
        try:
            getattr(self.store, name)(self.db, *args, **kwargs)
        except Exception as error:  # noqa: BLE001
            self._warn(error)

    def on_event(self, event: Any) -> None:
        if event.kind == "start":
            self.call("restart_run", self.run_id, event.start_step)
        elif event.kind == "step":
            self.call("record_run_metrics", self.run_id, event.step,
                      {"loss": event.loss, "lr": event.lr, "tokens_per_s": event.tokens_per_s, "memory": event.memory})
        elif event.kind == "eval":
            self.call("record_run_metrics", self.run_id, event.step, {"val_loss": event.val_loss})
        elif event.kind == "done":
            self.call("finish_run", self.run_id, event.status)


def now_utc() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
