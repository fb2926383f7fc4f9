"""The judging store: `judgments.db`, one SQLite file per workspace, through sqlite-utils.

    db = open_store(workspace.db_path)        # WAL, foreign keys on, migrations applied
    with db.atomic():                         # group writes that belong together
        model_id = ensure_model(db, path=..., content_hash=..., name=..., family=...)

Rules
- One connection per thread: `open_store` returns a new `sqlite_utils.Database` whose
  connection refuses use from another thread (sqlite3's `check_same_thread`). A TUI
  worker opens its own; `thread_store(path)` caches one per thread for convenience.
- The connection runs in driver autocommit mode: a single statement is committed when
  it returns, so "every action is committed at once"; `db.atomic()` groups several.
- Several processes write at once (the app rating, a training run recording canaries,
  `voicebench canary`). `db.atomic()` therefore opens `BEGIN IMMEDIATE`: the write lock is
  taken before the first read, so a transaction never has to upgrade a stale read snapshot
  (the "database is locked" SQLite cannot wait out), and taking it is retried while another
  writer holds it. Get-or-create (models, canary versions, generations) is
  `INSERT … ON CONFLICT DO NOTHING` and then a read, so two processes adding the same
  model both get its one row.
- A file that is not SQLite, or a judgments.db written by a newer voicebench (migrations
  this code does not know), is refused with `StoreError`, whose message says what to do;
  `open_store(path, read_only=True)` still reads a newer one.
- Migrations are append-only (`sqlite_utils.Migrations`, set "voicebench"): never edit
  one that has run on someone's disk; add `m00N_…` and change schema with
  `table.transform` or `ALTER TABLE`.

Schema (m001)
- models(id, name, path, content_hash UNIQUE, family, size_bytes, mtime, created_at)
- runs(id TEXT = run id, model_id→models, method, config_json, pairs_hash, status,
  out_dir, started_at, ended_at); run_metrics(id, run_id→runs, step, name, value, recorded_at)
- canaries(id, canary_id, version, kind, prompt, max_new_tokens, set_name, content_hash,
  created_at): UNIQUE(canary_id, version) and UNIQUE(canary_id, content_hash) — editing a
  canary's prompt or length makes a new version row; old generations keep theirs.
- generations(id, identity_key UNIQUE, model_id→models, canary_id→canaries (NULL for
  free prompts), run_id→runs, checkpoint, checkpoint_step, adapter_path, adapter_hash,
  label, family, settings_json, seed, prompt, text, token_count, seconds,
  forward_passes, trace_path, metrics_json, created_at). `label` is the contestant
  name shown on leaderboards ("demo-ar", "demo-ar+run-x/checkpoint-20").
- criteria(id, name UNIQUE, description, scale_min, scale_max, anchors_json, retired,
  position, created_at, updated_at); flags(id, name UNIQUE, key, description, retired).
- sessions(id, rater, mode "rubric"|"pairwise", shuffle_seed, repeat_share, cursor,
  started_at, ended_at)
- session_items(id, session_id→sessions, position, generation_id→generations,
  right_generation_id→generations (pairwise: the output shown on the right;
  generation_id is the left one), canary_id→canaries, repeat_of_item_id→session_items,
  status "pending"|"done"|"skipped", UNIQUE(session_id, position))
- ratings(id, session_id, item_id UNIQUE→session_items, generation_id→generations,
  rater, flags_json, note, repeat_of_item_id, rated_at)
  rating_scores(rating_id→ratings, criterion_id→criteria, score, PK(rating_id, criterion_id))
- comparisons(id, session_id, item_id→session_items, canary_id, left_generation_id,
  right_generation_id, winner "left"|"right"|"tie", criterion_id→criteria (NULL =
  overall), rater, decided_at; UNIQUE(item_id, criterion or 0))

Schema (m002: voice scores and sampler settings as contestants)
- voice_replies(id, identity_key UNIQUE, label, pair_id, source, prompt, text, settings_json,
  seed, model_hash, adapter_hash, token_count, forward_passes, seconds, created_at): a
  contestant's replies to the validation prompts, reused while the identity is unchanged.
- voice_scores(id, label, status "scored"|"too_little_text", message, auc, auc_low, auc_high,
  delta, delta_own, copied_words, copied_passage, writer_words, model_words, writer_chunks,
  model_chunks, calibration_json, settings_json, heldout_hash, seconds, created_at)
- contestant_settings(label PK, model_name, model_path, adapter_path, family, settings_json,
  varied_json, sweep_id, created_at): what a swept setting ("demo-ar · T=0.8") runs with.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlite_utils import Database, Migrations

MIGRATION_SET = "voicebench"
migrations = Migrations(MIGRATION_SET)

# How long a connection waits for another writer inside SQLite, and how long `atomic()`
# keeps retrying BEGIN IMMEDIATE after that (a long canary batch holds the lock a while).
BUSY_TIMEOUT_SECONDS = 30.0
WRITE_LOCK_PATIENCE_SECONDS = 300.0


class StoreError(Exception):
    """judgments.db cannot be used: not a SQLite file, or from a newer voicebench."""


class StoreDatabase(Database):
    """A sqlite-utils Database whose transactions take the write lock up front."""

    @contextlib.contextmanager
    def atomic(self) -> Iterator[Database]:
        if self.conn.in_transaction:  # nested: a savepoint inside the outer transaction
            with super().atomic():
                yield self
            return
        begin_immediate(self.conn)
        try:
            yield self
        except BaseException:
            self.rollback()
            raise
        try:
            self.conn.execute("COMMIT")
        except BaseException:
            self.rollback()
            raise


def begin_immediate(conn: sqlite3.Connection, patience: float = WRITE_LOCK_PATIENCE_SECONDS) -> None:
    """BEGIN IMMEDIATE, retried with growing pauses while another process holds the lock."""
    deadline = time.monotonic() + patience
    pause = 0.01
    while True:
        try:
            conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as error:
            if not _is_busy(error) or time.monotonic() >= deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 1.0)


def _is_busy(error: sqlite3.OperationalError) -> bool:
    message = str(error).lower()
    return "locked" in message or "busy" in message

# File names whose bytes define a model or adapter; hashing these (not the whole folder)
# keeps optimizer states and logs inside a checkpoint folder from changing its identity.
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
IDENTITY_FILES = ("config.json", "adapter_config.json", "generation_config.json")
SKIPPED_FILES = ("optimizer.pt", "scheduler.pt", "rng_state.pth", "training_args.bin")


def now() -> str:
    """UTC timestamp with microseconds; sorts as text."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="microseconds")


# Migrations --------------------------------------------------------------------------------
@migrations()
def m001_initial(db: Database) -> None:
    db["models"].create(
        {"id": int, "name": str, "path": str, "content_hash": str, "family": str,
         "size_bytes": int, "mtime": float, "created_at": str},
        pk="id", not_null={"path", "content_hash"},
    )
    db["models"].create_index(["content_hash"], unique=True)
    db["models"].create_index(["path"])

    db["runs"].create(
        {"id": str, "model_id": int, "method": str, "config_json": str, "pairs_hash": str,
         "status": str, "out_dir": str, "started_at": str, "ended_at": str},
        pk="id", foreign_keys=[("model_id", "models", "id")],
    )
    db["run_metrics"].create(
        {"id": int, "run_id": str, "step": int, "name": str, "value": float, "recorded_at": str},
        pk="id", foreign_keys=[("run_id", "runs", "id")], not_null={"run_id", "name"},
    )
    db["run_metrics"].create_index(["run_id", "step"])

    db["canaries"].create(
        {"id": int, "canary_id": str, "version": int, "kind": str, "prompt": str,
         "max_new_tokens": int, "set_name": str, "content_hash": str, "created_at": str},
        pk="id", not_null={"canary_id", "version", "prompt", "content_hash"},
    )
    db["canaries"].create_index(["canary_id", "version"], unique=True)
    db["canaries"].create_index(["canary_id", "content_hash"], unique=True)

    db["generations"].create(
        {"id": int, "identity_key": str, "model_id": int, "canary_id": int, "run_id": str,
         "checkpoint": str, "checkpoint_step": int, "adapter_path": str, "adapter_hash": str,
         "label": str, "family": str, "settings_json": str, "seed": int, "prompt": str,
         "text": str, "token_count": int, "seconds": float, "forward_passes": int,
         "trace_path": str, "metrics_json": str, "created_at": str},
        pk="id",
        foreign_keys=[("model_id", "models", "id"), ("canary_id", "canaries", "id"),
                      ("run_id", "runs", "id")],
        not_null={"identity_key", "model_id", "prompt", "text"},
    )
    db["generations"].create_index(["identity_key"], unique=True)
    db["generations"].create_index(["label", "canary_id"])
    db["generations"].create_index(["canary_id"])
    db["generations"].create_index(["run_id"])

    db["criteria"].create(
        {"id": int, "name": str, "description": str, "scale_min": int, "scale_max": int,
         "anchors_json": str, "retired": int, "position": int, "created_at": str, "updated_at": str},
        pk="id", not_null={"name", "scale_min", "scale_max"}, defaults={"retired": 0},
    )
    db["criteria"].create_index(["name"], unique=True)
    db["flags"].create(
        {"id": int, "name": str, "key": str, "description": str, "retired": int},
        pk="id", not_null={"name"}, defaults={"retired": 0},
    )
    db["flags"].create_index(["name"], unique=True)

    db["sessions"].create(
        {"id": int, "rater": str, "mode": str, "shuffle_seed": int, "repeat_share": float,
         "cursor": int, "started_at": str, "ended_at": str},
        pk="id", not_null={"mode", "shuffle_seed"}, defaults={"cursor": 0},
    )
    db["session_items"].create(
        {"id": int, "session_id": int, "position": int, "generation_id": int,
         "right_generation_id": int, "canary_id": int, "repeat_of_item_id": int, "status": str},
        pk="id",
        foreign_keys=[("session_id", "sessions", "id"), ("generation_id", "generations", "id"),
                      ("right_generation_id", "generations", "id"), ("canary_id", "canaries", "id"),
                      ("repeat_of_item_id", "session_items", "id")],
        not_null={"session_id", "position", "generation_id"}, defaults={"status": "pending"},
    )
    db["session_items"].create_index(["session_id", "position"], unique=True)
    db["session_items"].create_index(["session_id", "status", "position"])

    db["ratings"].create(
        {"id": int, "session_id": int, "item_id": int, "generation_id": int, "rater": str,
         "flags_json": str, "note": str, "repeat_of_item_id": int, "rated_at": str},
        pk="id",
        foreign_keys=[("session_id", "sessions", "id"), ("item_id", "session_items", "id"),
                      ("generation_id", "generations", "id"),
                      ("repeat_of_item_id", "session_items", "id")],
        not_null={"session_id", "item_id", "generation_id"},
    )
    db["ratings"].create_index(["item_id"], unique=True)
    db["ratings"].create_index(["generation_id"])
    db["rating_scores"].create(
        {"rating_id": int, "criterion_id": int, "score": int},
        pk=("rating_id", "criterion_id"),
        foreign_keys=[("rating_id", "ratings", "id"), ("criterion_id", "criteria", "id")],
        not_null={"score"},
    )
    db["rating_scores"].create_index(["criterion_id"])

    db["comparisons"].create(
        {"id": int, "session_id": int, "item_id": int, "canary_id": int,
         "left_generation_id": int, "right_generation_id": int, "winner": str,
         "criterion_id": int, "rater": str, "decided_at": str},
        pk="id",
        foreign_keys=[("session_id", "sessions", "id"), ("item_id", "session_items", "id"),
                      ("canary_id", "canaries", "id"), ("left_generation_id", "generations", "id"),
                      ("right_generation_id", "generations", "id"), ("criterion_id", "criteria", "id")],
        not_null={"session_id", "item_id", "left_generation_id", "right_generation_id", "winner"},
    )
    # One decision per item and criterion; NULL (overall) folded to 0 so it is unique too.
    db.execute(
        "CREATE UNIQUE INDEX idx_comparisons_item_criterion "
        "ON comparisons(item_id, coalesce(criterion_id, 0))"
    )


@migrations()
def m002_versions(db: Database) -> None:
    """Versions of the writer's model (engine/models/versions.py) and their history.

    versions(id, name UNIQUE "vN", number UNIQUE, path (relative to the workspace), kind
    "adapter"|"full", base_model (workspace name or Hub id), content_hash (of the copied
    weights), source_hash (of the checkpoint they came from; generations made at that
    checkpoint carry it as adapter_hash), run_id, checkpoint, step, pairs_hash,
    settings_json, note, verdict ("better"|"not distinguishable"|"worse"|"untested"),
    forced 0/1, gate_json, created_at);
    version_events(id, version_id→versions, action "promote"|"rollback", note, at): the
    newest event names the current version.
    """
    db["versions"].create(
        {"id": int, "name": str, "number": int, "path": str, "kind": str, "base_model": str,
         "content_hash": str, "source_hash": str, "run_id": str, "checkpoint": str, "step": int,
         "pairs_hash": str, "settings_json": str, "note": str, "verdict": str, "forced": int,
         "gate_json": str, "created_at": str},
        pk="id", not_null={"name", "number", "path", "kind", "content_hash"}, defaults={"forced": 0},
    )
    db["versions"].create_index(["name"], unique=True)
    db["versions"].create_index(["number"], unique=True)
    db["versions"].create_index(["content_hash"])
    db["version_events"].create(
        {"id": int, "version_id": int, "action": str, "note": str, "at": str},
        pk="id", foreign_keys=[("version_id", "versions", "id")], not_null={"version_id", "action"},
    )


@migrations()
def m003_voice_scores_and_settings(db: Database) -> None:
    """The automatic voice score (engine.judge.voice) and sampler settings as contestants
    (engine.sample.sweep): replies to the validation prompts, scores, and each swept
    setting's full settings."""
    db["voice_replies"].create(
        {"id": int, "identity_key": str, "label": str, "pair_id": str, "source": str, "prompt": str,
         "text": str, "settings_json": str, "seed": int, "model_hash": str, "adapter_hash": str,
         "token_count": int, "forward_passes": int, "seconds": float, "created_at": str},
        pk="id", not_null={"identity_key", "label", "prompt", "text"},
    )
    db["voice_replies"].create_index(["identity_key"], unique=True)
    db["voice_replies"].create_index(["label"])
    db["voice_scores"].create(
        {"id": int, "label": str, "status": str, "message": str, "auc": float, "auc_low": float,
         "auc_high": float, "delta": float, "delta_own": float, "copied_words": int, "copied_passage": str,
         "writer_words": int, "model_words": int, "writer_chunks": int, "model_chunks": int,
         "calibration_json": str, "settings_json": str, "heldout_hash": str, "seconds": float,
         "created_at": str},
        pk="id", not_null={"label", "status"},
    )
    db["voice_scores"].create_index(["label"])
    db["contestant_settings"].create(
        {"label": str, "model_name": str, "model_path": str, "adapter_path": str, "family": str,
         "settings_json": str, "varied_json": str, "sweep_id": str, "created_at": str},
        pk="label", not_null={"model_name", "settings_json"},
    )


# Opening -----------------------------------------------------------------------------------
def open_store(path: str | Path | None = None, *, memory: bool = False, read_only: bool = False) -> Database:
    """Open (creating if needed) the store at `path`, or an in-memory one.

    Order matters: WAL must be switched on before any transaction, and SQLite ignores
    `PRAGMA foreign_keys` inside one, so both happen before migrations run. Migrations
    run under the write lock, so two processes opening a new file do not both apply them.
    `read_only` opens an existing file without writing anything (no WAL switch, no
    migrations), which also works on a store from a newer voicebench.
    Raises StoreError for a file that is not SQLite or has a newer schema.
    """
    if memory:
        db = StoreDatabase(memory=True)
        db.conn.isolation_level = None
        db.execute("PRAGMA foreign_keys = ON")
        _apply_migrations(db, "(in memory)")
        return db
    if path is None:
        raise ValueError("open_store needs a path (the workspace's judgments.db) or memory=True")
    path = Path(path)
    if path.is_dir():
        raise StoreError(f"{path}: is a folder, not a judgments.db; move it aside so voicebench can create the store")
    conn = None
    try:
        if read_only:
            conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_SECONDS)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_SECONDS)
        db = StoreDatabase(conn)
        # Driver autocommit: every statement outside db.atomic() commits when it returns.
        db.conn.isolation_level = None
        db.execute("PRAGMA schema_version").fetchone()  # reads the header: fails on a file that is not SQLite
        if read_only:
            db.execute("PRAGMA foreign_keys = ON")
            return db
        _refuse_newer_schema(db, path)
        db.enable_wal()
        # WAL with synchronous=NORMAL stays consistent after a crash; a power cut can
        # lose the last commits, which is the trade every WAL app makes for speed.
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute("PRAGMA foreign_keys = ON")
        _apply_migrations(db, str(path))
    except StoreError:
        conn.close()
        raise
    except sqlite3.DatabaseError as error:
        if conn is not None:
            conn.close()
        if isinstance(error, sqlite3.OperationalError) and _is_busy(error):
            raise
        raise StoreError(
            f"{path}: cannot be opened as a SQLite database ({error}); if it is not voicebench's "
            "judgments.db, move it aside and voicebench will create a new one"
        ) from error
    return db


def known_migrations() -> list[str]:
    """The migration names this code knows, in order."""
    return [migration.name for migration in migrations._migrations]


def _refuse_newer_schema(db: Database, where: str | Path) -> None:
    applied = [migration.name for migration in migrations.applied(db)]
    unknown = [name for name in applied if name not in set(known_migrations())]
    if unknown:
        raise StoreError(
            f"{where}: written by a newer voicebench (schema steps {', '.join(unknown)} are unknown to this "
            f"version, which knows up to {known_migrations()[-1]}); upgrade voicebench to use it. "
            "Nothing was written to it."
        )


def _apply_migrations(db: Database, where: str) -> None:
    if not migrations.pending(db):
        return
    with db.atomic():  # the write lock first, then look again: another process may have migrated
        _refuse_newer_schema(db, where)
        migrations.apply(db)


_thread_local = threading.local()


def thread_store(path: str | Path) -> Database:
    """This thread's connection to `path`, opened on first use (one connection per thread)."""
    stores: dict[str, Database] = getattr(_thread_local, "stores", None) or {}
    _thread_local.stores = stores
    key = str(Path(path).resolve())
    if key not in stores:
        stores[key] = open_store(key)
    return stores[key]


# Hashing -----------------------------------------------------------------------------------
def _identity_files(folder: Path) -> list[Path]:
    files = []
    for file in sorted(folder.rglob("*")):
        if not file.is_file() or file.name in SKIPPED_FILES:
            continue
        if file.suffix in WEIGHT_SUFFIXES or file.name in IDENTITY_FILES:
            files.append(file)
    return files


def folder_fingerprint(folder: str | Path) -> tuple[int, float]:
    """(total bytes, newest mtime) of the files that define a model — cheap to compute."""
    files = _identity_files(Path(folder))
    return sum(f.stat().st_size for f in files), max((f.stat().st_mtime for f in files), default=0.0)


def content_hash(folder: str | Path) -> str:
    """SHA-256 over the relative names and bytes of a model's weight and config files."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder, so it cannot be hashed as a model")
    digest = hashlib.sha256()
    for file in _identity_files(root):
        digest.update(str(file.relative_to(root)).encode())
        with file.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def cached_content_hash(db: Database, folder: str | Path) -> str:
    """The folder's content hash, reusing the stored one when size and mtime are unchanged
    (an 8B model is 16 GB; re-hashing it on every canary run would take a while)."""
    folder = str(Path(folder).resolve())
    size, mtime = folder_fingerprint(folder)
    row = next(db.query(
        "select content_hash from models where path = ? and size_bytes = ? and mtime = ?",
        [folder, size, mtime]), None)
    return row["content_hash"] if row else content_hash(folder)


def json_hash(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


# Writers -----------------------------------------------------------------------------------
def ensure_model(db: Database, *, path: str | Path, name: str | None = None,
                 family: str | None = None, hash_: str | None = None) -> int:
    """The id of the model with this content, inserting it on first sight."""
    folder = str(Path(path).resolve()) if Path(path).exists() else str(path)
    digest = hash_ or cached_content_hash(db, folder)
    row = next(db.query("select id from models where content_hash = ?", [digest]), None)
    if row:
        return row["id"]
    size, mtime = folder_fingerprint(folder) if Path(folder).is_dir() else (0, 0.0)
    # Another process may add the same model between the read above and this insert:
    # the insert then does nothing and the read below finds that process's row.
    return _insert_or_get(db, "models", {
        "name": name or Path(folder).name, "path": folder, "content_hash": digest,
        "family": family, "size_bytes": size, "mtime": mtime, "created_at": now(),
    }, conflict="content_hash", key={"content_hash": digest})


def _insert_or_get(db: Database, table: str, record: dict[str, Any], *, conflict: str | None,
                   key: dict[str, Any]) -> int:
    """Insert `record` unless a row with the same unique value exists; the id of the row
    matching `key` either way. `conflict` names the unique column(s); None: any of them."""
    columns = ", ".join(f"[{column}]" for column in record)
    marks = ", ".join("?" for _ in record)
    target = f"({conflict})" if conflict else ""
    where = " and ".join(f"[{column}] = ?" for column in key)
    with db.atomic():
        db.execute(f"insert into [{table}] ({columns}) values ({marks}) on conflict{target} do nothing",
                   list(record.values()))
        return next(db.query(f"select id from [{table}] where {where}", list(key.values())))["id"]


def record_run(db: Database, *, run_id: str, method: str, config: dict[str, Any] | None = None,
               model_path: str | Path | None = None, pairs_hash: str | None = None,
               status: str | None = None, out_dir: str | Path | None = None) -> str:
    """Insert or update a training run (called by engine/train when the store exists).

    Fields left as None keep their stored value; a new run starts as "running"."""
    model_id = ensure_model(db, path=model_path) if model_path and Path(model_path).is_dir() else None
    record: dict[str, Any] = {"id": run_id, "method": method}
    if status is not None:
        record["status"] = status
    if config is not None:
        record["config_json"] = json.dumps(config, sort_keys=True, default=str)
    if model_id is not None:
        record["model_id"] = model_id
    if pairs_hash is not None:
        record["pairs_hash"] = pairs_hash
    if out_dir is not None:
        record["out_dir"] = str(out_dir)
    with db.atomic():  # the check and the write under one lock: two recorders never both insert
        if db["runs"].count_where("id = ?", [run_id]):
            db["runs"].update(run_id, record)
        else:
            record.setdefault("status", "running")
            record["started_at"] = now()
            db["runs"].insert(record)
    return run_id


def restart_run(db: Database, run_id: str, start_step: int) -> None:
    """A run (re)starts at `start_step`: it is running again, and the metrics it recorded
    after that step belong to the attempt that was cut short, so they go (the steps are
    about to be trained and recorded again)."""
    with db.atomic():
        db.execute("update runs set status = 'running', ended_at = null where id = ?", [run_id])
        db.execute("delete from run_metrics where run_id = ? and step > ?", [run_id, start_step])


def finish_run(db: Database, run_id: str, status: str) -> None:
    """Mark a run done/failed/cancelled with its end time."""
    db["runs"].update(run_id, {"status": status, "ended_at": now()})


def record_run_metrics(db: Database, run_id: str, step: int, metrics: dict[str, float]) -> None:
    """Store one step's scalar metrics (loss, val_loss, lr, tokens_per_s …) for a run.

    A step recorded again (a run resumed from a checkpoint before it redoes the steps after
    the checkpoint) replaces its earlier values: one row per run, step and metric."""
    stamp = now()
    rows = [{"run_id": run_id, "step": step, "name": name, "value": float(value), "recorded_at": stamp}
            for name, value in metrics.items() if isinstance(value, (int, float)) and not isinstance(value, bool)]
    if not rows:
        return
    with db.atomic():
        names = [row["name"] for row in rows]
        db.execute(f"delete from run_metrics where run_id = ? and step = ? and name in ({', '.join('?' for _ in names)})",
                   [run_id, step, *names])
        db["run_metrics"].insert_all(rows)


def ensure_canary_version(db: Database, *, canary_id: str, kind: str, prompt: str,
                          max_new_tokens: int, set_name: str | None = None) -> int:
    """The row id of this exact canary text; a changed prompt or length adds version N+1."""
    digest = json_hash({"prompt": prompt, "max_new_tokens": max_new_tokens})
    row = next(db.query("select id from canaries where canary_id = ? and content_hash = ?",
                        [canary_id, digest]), None)
    if row:
        return row["id"]
    # The write lock is held from the max(version) read to the insert, so two processes
    # adding a new text never pick the same version; the one that comes second finds the row.
    with db.atomic():
        latest = next(db.query("select max(version) as v from canaries where canary_id = ?", [canary_id]))["v"]
        return _insert_or_get(db, "canaries", {
            "canary_id": canary_id, "version": (latest or 0) + 1, "kind": kind, "prompt": prompt,
            "max_new_tokens": max_new_tokens, "set_name": set_name, "content_hash": digest,
            "created_at": now(),
        }, conflict=None, key={"canary_id": canary_id, "content_hash": digest})


def generation_identity(*, model_hash: str, adapter_hash: str | None, canary_row_id: int | None,
                        prompt: str, settings: dict[str, Any], seed: int) -> str:
    """What makes two generations "the same run": model bytes, adapter bytes, canary
    version, prompt, sampler settings and seed. Re-running with all equal is a no-op."""
    return json_hash({"model": model_hash, "adapter": adapter_hash, "canary": canary_row_id,
                      "prompt": prompt, "settings": settings, "seed": seed})


def find_generation(db: Database, identity_key: str) -> dict[str, Any] | None:
    return next(db.query("select * from generations where identity_key = ?", [identity_key]), None)


def record_generation(db: Database, record: dict[str, Any]) -> tuple[int, bool]:
    """Insert a generation unless one with the same identity_key exists.

    Returns (id, inserted). `record` uses the generations columns; dict values for
    settings/metrics may be given as `settings` / `metrics` and are stored as JSON. A
    record without metrics gets them from its text (engine.judge.metrics), so every stored
    generation has them — token-level ones only when the caller measured token ids.
    """
    record = dict(record)
    if "metrics" not in record and "metrics_json" not in record:
        record["metrics"] = _metrics_from_text(record.get("text") or "", record.get("prompt") or "",
                                               record.get("token_count"))
    if "settings" in record:
        record["settings_json"] = json.dumps(record.pop("settings"), sort_keys=True)
    if "metrics" in record:
        record["metrics_json"] = json.dumps(record.pop("metrics"), sort_keys=True)
    existing = find_generation(db, record["identity_key"])
    if existing:
        return existing["id"], False
    record.setdefault("created_at", now())
    with db.atomic():  # a process recording the same generation meanwhile: keep its row
        inserted_before = db.conn.total_changes
        row_id = _insert_or_get(db, "generations", record, conflict="identity_key",
                                key={"identity_key": record["identity_key"]})
        return row_id, db.conn.total_changes > inserted_before


def _metrics_from_text(text: str, prompt: str, token_count: int | None) -> dict[str, Any]:
    from engine.judge.metrics import text_metrics

    metrics = text_metrics(text, prompt=prompt)
    metrics.pop("eos_share", None)  # needs the generated ids, which this caller did not give
    if token_count is not None:
        metrics["length_tokens"] = token_count
    else:
        metrics.pop("length_tokens", None)
    return metrics
