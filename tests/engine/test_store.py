"""The judging store: schema, foreign keys, append-only migrations, versions, idempotence."""

from __future__ import annotations

import json
import sqlite3
import threading

import pytest
from sqlite_utils import Database, Migrations

from engine.judge import store

EXPECTED_COLUMNS = {
    "models": {"id", "name", "path", "content_hash", "family"},
    "runs": {"id", "model_id", "method", "config_json", "pairs_hash", "status", "out_dir", "started_at", "ended_at"},
    "run_metrics": {"run_id", "step", "name", "value"},
    "canaries": {"id", "canary_id", "version", "kind", "prompt", "max_new_tokens", "content_hash"},
    "generations": {"id", "identity_key", "model_id", "canary_id", "run_id", "checkpoint", "checkpoint_step",
                    "adapter_path", "adapter_hash", "label", "family", "settings_json", "seed", "prompt", "text",
                    "token_count", "seconds", "trace_path", "metrics_json"},
    "criteria": {"id", "name", "description", "scale_min", "scale_max", "anchors_json", "retired"},
    "flags": {"name", "key", "description", "retired"},
    "sessions": {"id", "rater", "mode", "shuffle_seed", "started_at", "ended_at", "cursor"},
    "session_items": {"id", "session_id", "position", "generation_id", "right_generation_id", "repeat_of_item_id", "status"},
    "ratings": {"id", "session_id", "item_id", "generation_id", "rater", "flags_json", "note", "repeat_of_item_id", "rated_at"},
    "rating_scores": {"rating_id", "criterion_id", "score"},
    "comparisons": {"id", "session_id", "item_id", "left_generation_id", "right_generation_id", "winner",
                    "criterion_id", "rater", "decided_at"},
}

EXPECTED_FOREIGN_KEYS = {
    ("runs", "model_id", "models"), ("run_metrics", "run_id", "runs"),
    ("generations", "model_id", "models"), ("generations", "canary_id", "canaries"), ("generations", "run_id", "runs"),
    ("session_items", "session_id", "sessions"), ("session_items", "generation_id", "generations"),
    ("session_items", "right_generation_id", "generations"), ("session_items", "repeat_of_item_id", "session_items"),
    ("ratings", "item_id", "session_items"), ("ratings", "generation_id", "generations"),
    ("rating_scores", "rating_id", "ratings"), ("rating_scores", "criterion_id", "criteria"),
    ("comparisons", "left_generation_id", "generations"), ("comparisons", "right_generation_id", "generations"),
    ("comparisons", "criterion_id", "criteria"),
}


@pytest.fixture
def db():
    return store.open_store(memory=True)


def test_migrations_create_every_table_and_column(db):
    for table, columns in EXPECTED_COLUMNS.items():
        assert columns <= set(db[table].columns_dict), table


def test_foreign_keys_are_declared_and_enforced(db):
    declared = {(fk.table, fk.column, fk.other_table) for table in EXPECTED_COLUMNS for fk in db[table].foreign_keys}
    assert EXPECTED_FOREIGN_KEYS <= declared
    assert db.execute("pragma foreign_keys").fetchone()[0] == 1
    with pytest.raises(sqlite3.IntegrityError):
        db["generations"].insert({"identity_key": "k", "model_id": 999, "prompt": "p", "text": "t"})
    with pytest.raises(sqlite3.IntegrityError):
        db["rating_scores"].insert({"rating_id": 1, "criterion_id": 1, "score": 3})


def test_migrations_are_idempotent_on_reopen(tmp_path):
    path = tmp_path / "judgments.db"
    first = store.open_store(path)
    schema = first.schema
    applied = [m.name for m in store.migrations.applied(first)]
    first.close()
    second = store.open_store(path)
    assert second.schema == schema
    assert [m.name for m in store.migrations.applied(second)] == applied == ["m001_initial", "m002_voice_scores_and_settings"]
    assert second.journal_mode == "wal"


def test_a_later_migration_applies_alone_on_an_existing_store(tmp_path):
    path = tmp_path / "judgments.db"
    store.open_store(path).close()
    extended = Migrations(store.MIGRATION_SET)
    extended()(store.m001_initial)  # already applied: must not run again (it would fail: tables exist)

    @extended()
    def m002_rating_seconds(db: Database) -> None:
        db["ratings"].add_column("seconds_on_item", float)

    db = store.open_store(path)
    extended.apply(db)
    assert "seconds_on_item" in db["ratings"].columns_dict
    applied = [m.name for m in extended.applied(db)]
    assert applied[0] == "m001_initial" and applied[-1] == "m002_rating_seconds"  # the store's own come between


def test_a_connection_refuses_other_threads_and_thread_store_gives_one_each(tmp_path):
    path = tmp_path / "judgments.db"
    db = store.open_store(path)
    errors, seen = [], []

    def use_from_thread() -> None:
        try:
            db.execute("select 1")
        except sqlite3.ProgrammingError as error:
            errors.append(error)
        seen.append(store.thread_store(path))

    worker = threading.Thread(target=use_from_thread)
    worker.start()
    worker.join()
    assert errors, "sqlite3 must refuse a connection used from another thread"
    mine = store.thread_store(path)
    assert mine is store.thread_store(path)
    assert seen[0] is not mine


def test_editing_a_canary_prompt_makes_a_new_version(db):
    first = store.ensure_canary_version(db, canary_id="river", kind="known-topic-short", prompt="A", max_new_tokens=8)
    again = store.ensure_canary_version(db, canary_id="river", kind="known-topic-short", prompt="A", max_new_tokens=8)
    edited = store.ensure_canary_version(db, canary_id="river", kind="known-topic-short", prompt="B", max_new_tokens=8)
    longer = store.ensure_canary_version(db, canary_id="river", kind="known-topic-short", prompt="B", max_new_tokens=9)
    assert first == again
    versions = {row["id"]: row["version"] for row in db.query("select id, version from canaries")}
    assert [versions[first], versions[edited], versions[longer]] == [1, 2, 3]
    reverted = store.ensure_canary_version(db, canary_id="river", kind="known-topic-short", prompt="A", max_new_tokens=8)
    assert reverted == first


def test_record_generation_is_idempotent_on_identity(db):
    model_id = store.ensure_model(db, path="/models/x", hash_="abc")
    assert store.ensure_model(db, path="/elsewhere/x", hash_="abc") == model_id
    key = store.generation_identity(model_hash="abc", adapter_hash=None, canary_row_id=None, prompt="p",
                                    settings={"temperature": 0.7}, seed=1)
    record = {"identity_key": key, "model_id": model_id, "prompt": "p", "text": "t", "label": "x",
              "settings": {"temperature": 0.7}, "metrics": {"distinct_1": 1.0}}
    first, inserted = store.record_generation(db, record)
    second, inserted_again = store.record_generation(db, record)
    assert first == second and inserted and not inserted_again
    assert db["generations"].count == 1
    other_seed = store.generation_identity(model_hash="abc", adapter_hash=None, canary_row_id=None, prompt="p",
                                           settings={"temperature": 0.7}, seed=2)
    assert other_seed != key


def test_record_run_keeps_status_unless_given(db):
    store.record_run(db, run_id="r1", method="lora", config={"lr": 1e-4})
    assert db["runs"].get("r1")["status"] == "running"
    store.finish_run(db, "r1", "done")
    store.record_run(db, run_id="r1", method="lora", pairs_hash="h")
    row = db["runs"].get("r1")
    assert (row["status"], row["pairs_hash"]) == ("done", "h")
    store.record_run_metrics(db, "r1", 3, {"loss": 2.5, "lr": 1e-4, "note": "ignored"})
    assert {r["name"] for r in db.query("select name from run_metrics")} == {"loss", "lr"}


def test_content_hash_follows_weights_not_optimizer_state(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"weights-1")
    first = store.content_hash(folder)
    (folder / "optimizer.pt").write_bytes(b"state")
    (folder / "trainer.log").write_text("log")
    assert store.content_hash(folder) == first
    (folder / "model.safetensors").write_bytes(b"weights-2")
    assert store.content_hash(folder) != first


def test_a_generation_stored_without_metrics_gets_them_from_its_text(db):
    model_id = store.ensure_model(db, path="/models/x", hash_="abc")
    generation_id, _ = store.record_generation(db, {
        "identity_key": "k", "model_id": model_id, "prompt": "Write.", "text": "the the the the",
        "token_count": 4, "label": "x"})
    metrics = json.loads(db["generations"].get(generation_id)["metrics_json"])
    assert metrics["distinct_1"] == 0.25 and metrics["length_tokens"] == 4 and "eos_share" not in metrics
