"""judgments.db shared by several processes, and files it must refuse.

- Three raters and two canary writers in real processes for a few seconds: no error
  surfaces, no row is lost, and two processes adding the same new model or canary text
  get its one row (tests/engine/store_race.py; the full minute is
  tests/benchmarks/bench_store_race.py).
- A file that is not SQLite, and a store from a newer voicebench, are refused with
  StoreError and left untouched.
"""

from __future__ import annotations

import sqlite3

import pytest

from engine.judge import store
from tests.engine import store_race

RACE_SECONDS = 6.0


def test_raters_and_canary_writers_lose_nothing_and_surface_no_error(tmp_path):
    counts = store_race.check(store_race.race(tmp_path / "judgments.db", RACE_SECONDS))
    assert counts["errors"] == 0 and counts["lost_scores"] == 0 and counts["lost_generations"] == 0


def test_two_connections_adding_the_same_model_get_one_row(tmp_path):
    path = tmp_path / "judgments.db"
    first, second = store.open_store(path), store.open_store(path)
    # The second connection checked before the first inserted: it must not crash on the insert.
    assert next(second.query("select count(*) as n from models"))["n"] == 0
    model_id = store.ensure_model(first, path="/models/x", name="x", hash_="same-bytes")
    assert store._insert_or_get(second, "models", {"name": "x", "path": "/models/x", "content_hash": "same-bytes"},
                                conflict="content_hash", key={"content_hash": "same-bytes"}) == model_id
    assert store.ensure_model(second, path="/models/x", name="x", hash_="same-bytes") == model_id
    assert next(first.query("select count(*) as n from models"))["n"] == 1


def test_atomic_takes_the_write_lock_before_reading(tmp_path):
    path = tmp_path / "judgments.db"
    first, second = store.open_store(path), store.open_store(path)
    with first.atomic():
        # Another writer cannot start a transaction while this one is open (it would wait, then retry).
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            second.conn.execute("PRAGMA busy_timeout = 0")
            store.begin_immediate(second.conn, patience=0.0)
    second.conn.execute("PRAGMA busy_timeout = 30000")
    with second.atomic():
        pass


def test_a_file_that_is_not_sqlite_is_refused_and_untouched(tmp_path):
    path = tmp_path / "judgments.db"
    path.write_bytes(b"these are my notes, not a database\n" * 20)
    before = path.read_bytes()
    with pytest.raises(store.StoreError, match="cannot be opened as a SQLite database.*move it aside"):
        store.open_store(path)
    assert path.read_bytes() == before
    assert sorted(item.name for item in tmp_path.iterdir()) == ["judgments.db"]


def test_a_folder_in_place_of_the_store_is_refused(tmp_path):
    (tmp_path / "judgments.db").mkdir()
    with pytest.raises(store.StoreError, match="is a folder"):
        store.open_store(tmp_path / "judgments.db")


def test_a_store_from_a_newer_voicebench_is_refused_read_write_but_readable(tmp_path):
    path = tmp_path / "judgments.db"
    db = store.open_store(path)
    store.ensure_model(db, path="/models/x", name="x", hash_="h")
    db["_sqlite_migrations"].insert({"migration_set": store.MIGRATION_SET, "name": "m999_from_the_future",
                                     "applied_at": "2030-01-01"})
    db.conn.close()
    before = path.read_bytes()
    with pytest.raises(store.StoreError, match="newer voicebench.*m999_from_the_future.*upgrade voicebench"):
        store.open_store(path)
    assert path.read_bytes() == before
    reader = store.open_store(path, read_only=True)
    assert [row["name"] for row in reader.query("select name from models")] == ["x"]
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        reader.execute("delete from models")


def test_a_resumed_step_replaces_its_earlier_metric_rows(tmp_path):
    db = store.open_store(tmp_path / "judgments.db")
    store.record_run(db, run_id="run-1", method="lora")
    for step, loss in ((1, 3.0), (2, 2.5), (3, 2.4)):
        store.record_run_metrics(db, "run-1", step, {"loss": loss, "lr": 0.001})
    for step, loss in ((3, 2.2), (4, 2.0)):  # resumed from checkpoint-2: step 3 again
        store.record_run_metrics(db, "run-1", step, {"loss": loss, "lr": 0.001})
    rows = list(db.query("select step, value from run_metrics where name = 'loss' order by step"))
    assert [(row["step"], row["value"]) for row in rows] == [(1, 3.0), (2, 2.5), (3, 2.2), (4, 2.0)]
    assert next(db.query("select count(*) as n from run_metrics where name = 'lr'"))["n"] == 4
