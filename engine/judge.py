"""Open a workspace's judging store ready for use: migrations applied, rubric seeded.

    db = open_workspace_store(workspace)       # judgments.db in the workspace root

The Judge screen, `voicebench canary`, `voicebench report` and the headless demo all start
here, so the rubric in `data/rubric.toml` is in the store before anyone rates. Call it once
per thread (each call opens a new connection).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from sqlite_utils import Database

from engine.rubric import seed_rubric
from engine.store import open_store
from engine.workspace import Workspace


def open_workspace_store(workspace: Workspace) -> Database:
    db = open_store(workspace.db_path)
    seed_rubric(db, workspace.rubric_path)
    return db


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write a report file via a temp file in the same folder, fsync and os.replace."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=target.parent, delete=False, encoding="utf-8",
                                     suffix=".tmp", newline="") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(handle.name, target)
    return target
