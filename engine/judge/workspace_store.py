"""Open a workspace's judging store ready for use: migrations applied, rubric seeded.

    db = open_workspace_store(workspace)       # judgments.db in the workspace root
    db = reading_store(workspace)              # for a command that only reads: never creates it

The Judge screen, `voicebench canary`, `voicebench report` and the headless demo all start
here, so the rubric in `data/rubric.toml` is in the store before anyone rates, and runs
whose process is gone are marked interrupted before anyone reads their status. Call it once
per thread (each call opens a new connection).
"""

from __future__ import annotations

from sqlite_utils import Database

from engine.judge.rubric import seed_rubric
from engine.judge.store import open_store
from engine.workspace import Workspace


def open_workspace_store(workspace: Workspace) -> Database:
    from engine.train.runs import mark_interrupted_runs

    db = open_store(workspace.db_path)
    seed_rubric(db, workspace.rubric_path)
    mark_interrupted_runs(db, workspace.runs_dir)
    return db


def reading_store(workspace: Workspace, *, rubric: bool = False) -> Database:
    """The store for a command that only reads it: judgments.db when it exists, else an empty
    in-memory store (holding the rubric when `rubric`), so reading never creates judgments.db."""
    if workspace.db_path.exists():
        return open_workspace_store(workspace)
    db = open_store(memory=True)
    if rubric:
        seed_rubric(db, workspace.rubric_path)
    return db
