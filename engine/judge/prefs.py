"""Preference pairs from the writer's judgements, in TRL's preference format.

    rows = vote_preferences(db) + rubric_preferences(db, threshold=1.0)
    rows += list(drain(self_play_preferences(loaded, pairs)))          # needs a model
    write_preferences(rows, "data/prefs.jsonl")

Each row is `{"prompt", "chosen", "rejected", "split", "source", "origin"}`: the first three
are what TRL's DPOTrainer reads ("standard" preference format); `source` says where the
row came from and `origin` which store rows or pair made it.

Sources
- `pairwise`: every overall pairwise vote that was not a tie; the winner's text is chosen.
  A pair of outputs appears once per direction it was voted (A over B voted three times is
  one row; B over A as well is a second row: the writer was not sure, and DPO sees both).
- `rubric`: two outputs of the same canary version whose mean rubric scores (every
  criterion, first ratings only) differ by at least `threshold`; the higher one is chosen.
- `self-play`: for each pair, chosen = the writer's response, rejected = the model's own
  attempt at the same prompt (greedy) — no rating needed (the idea behind SPIN, Chen et
  al. 2024, used here as plain preference data).

Splits. Self-play rows take their pair's split. Canary rows have no pair, so every row of one
canary goes to the same split, chosen by a hash of the canary id (VAL_SHARE of canaries to
val): a canary never feeds both sides. Training on canary votes teaches the model the
canaries, so the gate's next verdict on those canaries flatters it; prefer self-play or
vote on fresh canaries after a DPO run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Generator, Iterable
from itertools import combinations
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from engine.atomic import write_atomic
from engine.events import Event

SOURCES = ("pairwise", "rubric", "self-play")
DEFAULT_THRESHOLD = 1.0  # rubric points between the two outputs' means
VAL_SHARE = 0.2  # share of canaries whose rows go to val
SELF_PLAY_MAX_NEW_TOKENS = 96


class PreferenceError(Exception):
    """Nothing to export, or a bad option; the message says what to do."""


@dataclasses.dataclass(frozen=True)
class SelfPlayProgress(Event):
    kind = "self_play"
    done: int
    total: int
    pair_id: str


def canary_split(canary_id: str) -> str:
    """A stable split for every row of one canary."""
    bucket = int(hashlib.sha256(canary_id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "val" if bucket < VAL_SHARE else "train"


def _row(prompt: str, chosen: str, rejected: str, split: str, source: str, origin: dict[str, Any]) -> dict[str, Any]:
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected, "split": split, "source": source,
            "origin": origin}


def vote_preferences(db: Database) -> list[dict[str, Any]]:
    """Rows from decided overall pairwise votes, one per (winner, loser) direction."""
    rows, seen = [], set()
    for vote in db.query(
            "select c.winner, c.left_generation_id as left_id, c.right_generation_id as right_id, "
            "gl.text as left_text, gr.text as right_text, gl.prompt, k.canary_id "
            "from comparisons c join generations gl on gl.id = c.left_generation_id "
            "join generations gr on gr.id = c.right_generation_id left join canaries k on k.id = gl.canary_id "
            "where c.criterion_id is null and c.winner != 'tie' order by c.id"):
        if vote["winner"] == "left":
            chosen, rejected = (vote["left_id"], vote["left_text"]), (vote["right_id"], vote["right_text"])
        else:
            chosen, rejected = (vote["right_id"], vote["right_text"]), (vote["left_id"], vote["left_text"])
        if (chosen[0], rejected[0]) in seen or chosen[1] == rejected[1]:
            continue
        seen.add((chosen[0], rejected[0]))
        canary = vote["canary_id"] or ""
        rows.append(_row(vote["prompt"], chosen[1], rejected[1], canary_split(canary), "pairwise",
                         {"canary": canary, "chosen_generation": chosen[0], "rejected_generation": rejected[0]}))
    return rows


def rubric_preferences(db: Database, threshold: float = DEFAULT_THRESHOLD) -> list[dict[str, Any]]:
    """Rows from rubric means of two outputs of the same canary that differ by ≥ threshold."""
    if threshold <= 0:
        raise PreferenceError(f"--threshold {threshold}: must be positive (rubric points between two outputs).")
    by_canary: dict[int, list[dict[str, Any]]] = {}
    for output in db.query(
            "select g.id, g.canary_id as canary_row, k.canary_id, g.prompt, g.text, avg(s.score) as mean "
            "from generations g join ratings r on r.generation_id = g.id "
            "join rating_scores s on s.rating_id = r.id join canaries k on k.id = g.canary_id "
            "where r.repeat_of_item_id is null group by g.id order by g.id"):
        by_canary.setdefault(output["canary_row"], []).append(output)
    rows = []
    for outputs in by_canary.values():
        for first, second in combinations(outputs, 2):
            if abs(first["mean"] - second["mean"]) < threshold or first["text"] == second["text"]:
                continue
            chosen, rejected = (first, second) if first["mean"] > second["mean"] else (second, first)
            rows.append(_row(chosen["prompt"], chosen["text"], rejected["text"], canary_split(chosen["canary_id"]),
                             "rubric", {"canary": chosen["canary_id"], "chosen_generation": chosen["id"],
                                        "rejected_generation": rejected["id"],
                                        "chosen_mean": round(chosen["mean"], 3),
                                        "rejected_mean": round(rejected["mean"], 3)}))
    return rows


def self_play_preferences(loaded: Any, pairs: Iterable[Any], *, max_new_tokens: int = SELF_PLAY_MAX_NEW_TOKENS,
                          use_template: bool = True) -> Generator[SelfPlayProgress, None, list[dict[str, Any]]]:
    """Rows with the writer's response chosen over the model's greedy attempt; yields progress."""
    from engine.sample.causal import stream_causal

    pairs = list(pairs)
    rows = []
    for done, pair in enumerate(pairs, start=1):
        stream = stream_causal(loaded, pair.prompt, max_new_tokens, 0.0, 0, use_template=use_template)
        while True:
            try:
                next(stream)
            except StopIteration as stop:
                attempt = stop.value.text
                break
        if attempt.strip() and attempt.strip() != pair.response.strip():
            rows.append(_row(pair.prompt, pair.response, attempt, pair.split, "self-play", {"pair": pair.id}))
        yield SelfPlayProgress(done=done, total=len(pairs), pair_id=pair.id)
    return rows


def write_preferences(rows: list[dict[str, Any]], path: str | Path) -> Path:
    """Write rows as JSONL atomically; no rows is an error (an empty file trains nothing)."""
    if not rows:
        raise PreferenceError("no preference pairs: no decided pairwise votes, no rubric ratings that differ "
                              "enough, and no self-play. Vote on the Judge screen (pairwise) or pass --self-play.")
    return write_atomic(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def load_preferences(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a preference file; a bad line is an error naming file and line."""
    path = Path(path)
    if not path.exists():
        raise PreferenceError(f"{path}: no preference file. Make one with `voicebench prefs export`.")
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise PreferenceError(f"{path}:{number}: not JSON ({error.msg}); fix or delete the line.") from None
        missing = [key for key in ("prompt", "chosen", "rejected") if not isinstance(row.get(key), str)]
        if missing:
            raise PreferenceError(f"{path}:{number}: needs string {', '.join(missing)}; each line is "
                                  "{\"prompt\", \"chosen\", \"rejected\"}.")
        row.setdefault("split", "train")
        rows.append(row)
    if not rows:
        raise PreferenceError(f"{path}: no rows. Make some with `voicebench prefs export`.")
    return rows
