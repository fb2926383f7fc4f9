"""Open a workspace's judging store ready for use: migrations applied, rubric seeded.

    db = open_workspace_store(workspace)       # judgments.db in the workspace root

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
