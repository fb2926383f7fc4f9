"""How a pair shows in the Pairs table: the columns, short tier and source names, and the
few-word flags that stand for validation problems (the panel has the full message)."""

from __future__ import annotations

import re
from pathlib import Path

from engine.curate.pairs import Problem
from tui.pairs_session import DUPLICATE_MARK
from tui.widgets.pair_table import Column

ID_WIDTH = 26
COLUMNS = (
    Column("id", ID_WIDTH),
    Column("tier", 6),
    Column("split", 5),
    Column("source", 0),
    Column("tokens", 6, justify="right"),
    Column("flags", 12),
)
# Short tier names keep the table narrow; the editor's title shows the full name.
TIER_SHORT = {"continuation": "cont", "paragraph": "para"}
DATE_PREFIX = re.compile(r"^\d{4}-\d{2}-\d{2}-")


def display_id(key: str) -> str:
    """A row key without the marker that tells pairs sharing an id apart."""
    return key.partition(DUPLICATE_MARK)[0]


def source_label(source: str) -> str:
    """`essays/2024-02-11-the-elbow-of-the-coat` → `the-elbow-of-the-coat` (the id has the date)."""
    stem = Path(source).stem if source else ""
    return DATE_PREFIX.sub("", stem) or stem


def short_flag(problem: Problem) -> str:
    """A few characters for the table's flags column; the panel has the full message."""
    message = problem.message
    if problem.field == "tokens":
        return "too long"
    if problem.field in ("prompt", "response"):
        return f"no {problem.field}"
    if problem.field == "id":
        return "dup id"
    if problem.field == "split":
        return "leak" if "both splits" in message else "bad split"
    if "near-duplicate" in message:
        return "near-dup"
    if "same prompt and response" in message:
        return "dup"
    return problem.field or problem.severity
