"""Writers racing on one judgments.db in real processes: raters beside canary writers.

`race(db_path, seconds)` seeds a store, then runs RATERS rater processes (each working
through its own blind session, scoring every item again and again) and CANARY_WRITERS
processes that keep adding the same new models, canary versions and generations at the
same moments (as `voicebench canary` does beside a training run's step-0 canaries). It
returns what each process saw and what the store holds, for `check(...)`:

- no error surfaced in any process (no "database is locked", no IntegrityError);
- no lost row: each rater's last score per item and criterion is what the store holds,
  and every generation a writer was told it recorded is there;
- one row per model and per canary text, versions 1, 2, 3… without gaps or repeats.

Used by tests/engine/test_store_race.py (a few seconds) and
tests/benchmarks/bench_store_race.py (a full minute).
"""

from __future__ import annotations

import multiprocessing
import time
import traceback
from pathlib import Path
from typing import Any

from engine.judge import session as judging
from engine.judge import store
from tests.engine.judge_data import add_generations, seed_rubric

RATERS = 3
CANARY_WRITERS = 2
LABELS = ["model-a", "model-b", "model-c"]
CANARIES = 8


def _setup(db_path: Path) -> list[int]:
    db = store.open_store(db_path)
    seed_rubric(db, db_path.parent)
    add_generations(db, LABELS, CANARIES)
    sessions = [judging.build_session(db, labels=LABELS, mode="rubric", rater=f"rater-{number}", seed=number)
                for number in range(RATERS)]
    db.conn.close()
    return sessions


def _rater(db_path: str, session_id: int, deadline: float, results: Any) -> None:
    """Score every item, round after round, remembering the last score given each."""
    last: dict[tuple[int, str], int] = {}
    errors: list[str] = []
    writes = 0
    try:
        db = store.open_store(db_path)
        blind = judging.BlindSession(db, session_id)
        round_number = 0
        while time.time() < deadline:
            for position in range(blind.total):
                item = blind.goto(position)
                for criterion in ("voice", "coherence"):
                    score = 1 + (round_number + position + len(criterion)) % 5
                    try:
                        blind.rate(criterion, score)
                        last[(item.item_id, criterion)] = score
                        writes += 1
                    except Exception as error:  # noqa: BLE001 - every failure is counted, none may happen
                        errors.append(repr(error))
                if time.time() >= deadline:
                    break
            round_number += 1
    except Exception:  # noqa: BLE001
        errors.append(traceback.format_exc())
    results.put(("rater", writes, errors, {f"{item}:{criterion}": score for (item, criterion), score in last.items()}))


def _canary_writer(db_path: str, writer: int, deadline: float, results: Any) -> None:
    """Add model after model and canary text after canary text; both writers add the same
    ones at about the same time, and each records one generation of its own and one shared."""
    recorded: list[str] = []
    errors: list[str] = []
    writes = 0
    try:
        db = store.open_store(db_path)
        number = 0
        while time.time() < deadline:
            try:
                model_id = store.ensure_model(db, path=f"/models/new-{number}", name=f"new-{number}",
                                              family="causal", hash_=f"new-model-{number}")
                canary_row = store.ensure_canary_version(db, canary_id="race-canary", kind="known-topic-short",
                                                         prompt=f"Write about race {number}.", max_new_tokens=16)
                for key in (f"writer-{writer}/{number}", f"shared/{number}"):
                    store.record_generation(db, {
                        "identity_key": key, "model_id": model_id, "canary_id": canary_row, "label": f"new-{number}",
                        "family": "causal", "settings": {}, "seed": 0, "prompt": f"Write about race {number}.",
                        "text": f"Text {number} by writer {writer}.", "token_count": 5,
                    })
                    recorded.append(key)
                writes += 1
            except Exception as error:  # noqa: BLE001
                errors.append(repr(error))
            number += 1
    except Exception:  # noqa: BLE001
        errors.append(traceback.format_exc())
    results.put(("writer", writes, errors, recorded))


def race(db_path: Path, seconds: float) -> dict[str, Any]:
    """Run the race; returns per-process reports and the store's contents afterwards."""
    sessions = _setup(db_path)
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    deadline = time.time() + seconds
    processes = [context.Process(target=_rater, args=(str(db_path), session_id, deadline, results))
                 for session_id in sessions]
    processes += [context.Process(target=_canary_writer, args=(str(db_path), writer, deadline, results))
                  for writer in range(CANARY_WRITERS)]
    for process in processes:
        process.start()
    reports = [results.get(timeout=seconds + 120) for _ in processes]
    for process in processes:
        process.join(timeout=30)
    db = store.open_store(db_path)
    scores = {f"{row['item_id']}:{row['name']}": row["score"] for row in db.query(
        "select r.item_id, c.name, s.score from rating_scores s join ratings r on r.id = s.rating_id "
        "join criteria c on c.id = s.criterion_id")}
    generations = {row["identity_key"] for row in db.query("select identity_key from generations")}
    models = list(db.query("select content_hash, count(*) as n from models group by content_hash"))
    versions = [row["version"] for row in db.query(
        "select version from canaries where canary_id = 'race-canary' order by version")]
    texts = list(db.query("select content_hash, count(*) as n from canaries group by canary_id, content_hash"))
    return {"reports": reports, "exit_codes": [process.exitcode for process in processes], "scores": scores,
            "generations": generations, "models": models, "versions": versions, "texts": texts}


def check(outcome: dict[str, Any]) -> dict[str, int]:
    """Assert the guarantees; returns counts (writes, errors, lost rows) for printing."""
    errors = [error for _, _, report_errors, _ in outcome["reports"] for error in report_errors]
    lost_scores = lost_generations = 0
    for kind, _, _, data in outcome["reports"]:
        if kind == "rater":
            lost_scores += sum(outcome["scores"].get(key) != score for key, score in data.items())
        else:
            lost_generations += sum(key not in outcome["generations"] for key in data)
    counts = {
        "rater_writes": sum(writes for kind, writes, _, _ in outcome["reports"] if kind == "rater"),
        "canary_batches": sum(writes for kind, writes, _, _ in outcome["reports"] if kind == "writer"),
        "errors": len(errors), "lost_scores": lost_scores, "lost_generations": lost_generations,
        "duplicate_models": sum(row["n"] - 1 for row in outcome["models"]),
        "duplicate_canary_texts": sum(row["n"] - 1 for row in outcome["texts"]),
    }
    assert outcome["exit_codes"] == [0] * (RATERS + CANARY_WRITERS), outcome["exit_codes"]
    assert not errors, errors[:5]
    assert lost_scores == 0 and lost_generations == 0, counts
    assert counts["duplicate_models"] == 0 and counts["duplicate_canary_texts"] == 0, counts
    assert outcome["versions"] == list(range(1, len(outcome["versions"]) + 1)), outcome["versions"][:20]
    assert counts["rater_writes"] > 0 and counts["canary_batches"] > 0, counts
    return counts
