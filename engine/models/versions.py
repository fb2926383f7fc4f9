"""Versions of the writer's model: immutable snapshots promoted from checkpoints through a gate.

    outcome = promote(workspace, db, "runs/<id>/checkpoints/checkpoint-20", note="first keeper")
    outcome.version.name, outcome.gate.verdict         # "v1", "better"
    rollback(workspace, db, "v1")                      # v1 is current again
    workspace.model("voice")                           # the current version, for generate/canary/Canvas

A version lives in `models/versions/vN/` in the workspace: `adapter/` (peft adapter naming its
base by workspace name or Hub id) or `model/` (full weights), the tokenizer, and
`version.json` (what `versions show` prints). It is copied from a checkpoint into a temporary
sibling folder and renamed into place, then recorded in judgments.db (tables `versions` and
`version_events`, migration m002) with its content hash, the checkpoint's hash (the
`adapter_hash` of every canary output made at that checkpoint, so ratings link to the
version), the run, step, pairs-file hash, settings, the note and the gate's verdict. Nothing
in a version folder is ever rewritten; the newest `version_events` row names the current one.

The gate (engine.judge.gate) compares the candidate's canary outputs with the current
version's (the base model's before v1). Only "better" promotes on its own; "not
distinguishable", "worse" and "untested" need `force=True`, which is recorded.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from engine.judge import store
from engine.judge.gate import GateResult, Side, evaluate_gate, generation_ids
from engine.models.portable import (
    TRAINING_STATE,
    ArtefactError,
    artefact_base,
    artefact_in,
    base_reference,
    check_complete,
    make_portable,
    read_json_object,
)
from engine.workspace import VOICE_MODEL, ModelEntry, Workspace, WorkspaceError

VERSION_NAME = re.compile(r"^v(\d+)$")
VERSION_FILE = "version.json"


class VersionError(ArtefactError):
    """A promotion or rollback cannot happen; the message says why and what to do."""


class GateRefused(VersionError):
    """The gate did not find the candidate better and no force was given."""

    def __init__(self, message: str, gate: GateResult):
        super().__init__(message)
        self.gate = gate


@dataclasses.dataclass(frozen=True)
class Version:
    name: str
    number: int
    path: str  # relative to the workspace root
    kind: str  # "adapter" | "full"
    base_model: str | None
    content_hash: str
    source_hash: str | None
    run_id: str | None
    checkpoint: str | None
    step: int | None
    pairs_hash: str | None
    settings: dict[str, Any]
    note: str
    verdict: str
    forced: bool
    gate: dict[str, Any]
    created_at: str
    current: bool = False

    def folder(self, workspace: Workspace) -> Path:
        return workspace.root / self.path

    def weights_folder(self, workspace: Workspace) -> Path:
        return self.folder(workspace) / ("adapter" if self.kind == "adapter" else "model")


@dataclasses.dataclass(frozen=True)
class Promotion:
    version: Version
    gate: GateResult


def versions_dir(workspace: Workspace) -> Path:
    return workspace.root / "models" / "versions"


# Reading -------------------------------------------------------------------------------------
def _current_id(db: Database) -> int | None:
    row = db.execute("select version_id from version_events order by id desc limit 1").fetchone()
    return row[0] if row else None


def _version(row: dict[str, Any], current_id: int | None) -> Version:
    return Version(
        name=row["name"], number=row["number"], path=row["path"], kind=row["kind"], base_model=row["base_model"],
        content_hash=row["content_hash"], source_hash=row["source_hash"], run_id=row["run_id"],
        checkpoint=row["checkpoint"], step=row["step"], pairs_hash=row["pairs_hash"],
        settings=json.loads(row["settings_json"] or "{}"), note=row["note"] or "", verdict=row["verdict"] or "",
        forced=bool(row["forced"]), gate=json.loads(row["gate_json"] or "{}"), created_at=row["created_at"],
        current=row["id"] == current_id,
    )


def list_versions(db: Database) -> list[Version]:
    current = _current_id(db)
    return [_version(row, current) for row in db.query("select * from versions order by number")]


def get_version(db: Database, name: str) -> Version:
    row = next(db.query("select * from versions where name = ?", [name]), None)
    if row is None:
        known = ", ".join(version.name for version in list_versions(db)) or "none yet"
        raise VersionError(f"no version {name!r} in this workspace (versions: {known}). "
                           "See `voicebench versions list`.")
    return _version(row, _current_id(db))


def current_version(db: Database) -> Version | None:
    current = _current_id(db)
    row = next(db.query("select * from versions where id = ?", [current]), None) if current else None
    return _version(row, current) if row else None


def history(db: Database) -> list[dict[str, Any]]:
    """Every promotion and rollback, oldest first: version, action, note, at."""
    return list(db.query("select v.name as version, e.action, e.note, e.at from version_events e "
                         "join versions v on v.id = e.version_id order by e.id"))


def current_voice_entry(workspace: Workspace) -> ModelEntry:
    """The `voice` workspace model: the current version's weights (base + adapter, or full)."""
    if not workspace.db_path.exists():
        raise WorkspaceError(_NO_VERSION)
    db = store.open_store(workspace.db_path)
    try:
        version = current_version(db)
    finally:
        db.close()
    if version is None:
        raise WorkspaceError(_NO_VERSION)
    label = f"{VOICE_MODEL}@{version.name}"
    if version.kind == "full":
        return ModelEntry(name=label, path=str(version.weights_folder(workspace)))
    base = workspace.model(version.base_model or "")
    return dataclasses.replace(base, name=label, adapter=str(version.weights_folder(workspace)))


def voice_available(workspace: Workspace) -> bool:
    """Whether the workspace model `voice` resolves (a version is current), for model pickers."""
    try:
        current_voice_entry(workspace)
    except WorkspaceError:
        return False
    return True


_NO_VERSION = ("model 'voice' means your current version, and none is promoted yet. Promote a checkpoint: "
               "`voicebench versions promote runs/<id>/checkpoints/checkpoint-N`.")


# The gate's two sides ------------------------------------------------------------------------
def version_side(db: Database, version: Version) -> Side:
    ids = generation_ids(db, adapter_hashes={version.content_hash, version.source_hash or ""},
                         model_hash=version.content_hash if version.kind == "full" else None)
    return Side(version.name, ids)


def checkpoint_side(db: Database, name: str, checkpoint_hash: str) -> Side:
    return Side(name, generation_ids(db, adapter_hashes={checkpoint_hash}))


def base_side(db: Database, workspace: Workspace, base: ModelEntry) -> Side:
    from engine.models.loading import resolve_model_path

    model_hash = store.cached_content_hash(db, resolve_model_path(base.path))
    return Side(base.name, generation_ids(db, model_hash=model_hash, base_only=True))


def check_checkpoint(workspace: Workspace, checkpoint: str | Path) -> None:
    """ArtefactError when a checkpoint or its run folder's records are damaged, or its base model
    is unknown (nothing written)."""
    folder = artefact_in(workspace, str(checkpoint))
    artefact = check_complete(folder)
    _, _, record, settings = _run_record(folder)
    _base_entry(workspace, folder, artefact, record, settings)


def _base_entry(workspace: Workspace, folder: Path, artefact: Any, record: dict[str, Any],
                settings: dict[str, Any]) -> ModelEntry:
    """The model a checkpoint is compared with: an adapter's base, else the model its run trained."""
    base = artefact_base(workspace, artefact)
    if base is not None:
        return base
    base_name = record.get("model") or settings.get("model")
    if not isinstance(base_name, str) or not base_name:  # else workspace.model("") is the workspace root
        raise ArtefactError(f"{folder}: full weights outside a run folder, so the base model to compare them "
                            "with is unknown. Give a checkpoint under runs/<id>/checkpoints/ (its run records the "
                            "base model).")
    return workspace.model(base_name)


def _run_record(checkpoint: Path) -> tuple[str | None, Path | None, dict[str, Any], dict[str, Any]]:
    """(run id, run folder, run.json, config.toml) of runs/<id>/checkpoints/checkpoint-N."""
    run_dir = checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else None
    if run_dir is None:
        return None, None, {}, {}
    import tomllib

    run_json = run_dir / "run.json"
    config_toml = run_dir / "config.toml"
    record = read_json_object(run_json) if run_json.exists() else {}
    try:
        settings = tomllib.loads(config_toml.read_text(encoding="utf-8")) if config_toml.exists() else {}
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ArtefactError(f"{config_toml}: not readable TOML ({error}); the run folder is damaged — pick a "
                            "checkpoint of another run.") from None
    return run_dir.name, run_dir, record, settings


def training_texts(workspace: Workspace, settings: dict[str, Any]) -> list[str]:
    """The train-split responses of the pairs file a run trained on (for memorisation)."""
    from engine.train.data import DataError, load_training_pairs

    path = Path(settings.get("pairs") or workspace.pairs_path)
    path = path if path.is_absolute() else workspace.root / path
    try:
        pairs, _ = load_training_pairs(path)
    except DataError:
        return []
    return [pair.response for pair in pairs if pair.split != "val"]


def gate_for(workspace: Workspace, db: Database, checkpoint: str | Path) -> GateResult:
    """The gate's verdict on a checkpoint against the current version (the base before v1)."""
    folder = artefact_in(workspace, str(checkpoint))
    artefact = check_complete(folder)
    _, _, record, settings = _run_record(folder)
    candidate = checkpoint_side(db, _display(workspace, folder), store.content_hash(folder))
    current = current_version(db)
    if current is not None:
        incumbent = version_side(db, current)
    else:
        base = _base_entry(workspace, folder, artefact, record, settings)
        incumbent = base_side(db, workspace, base)
    return evaluate_gate(db, candidate, incumbent, training_texts(workspace, settings))


def _display(workspace: Workspace, folder: Path) -> str:
    try:
        relative = folder.resolve().relative_to(workspace.runs_dir.resolve())
        return f"{relative.parts[0]}/{relative.parts[-1]}"
    except ValueError:
        return folder.name


# Writing -------------------------------------------------------------------------------------
def promote(workspace: Workspace, db: Database, checkpoint: str | Path, *, note: str = "",
            force: bool = False) -> Promotion:
    """Snapshot a checkpoint as the next version and make it current (see the module docstring)."""
    folder = artefact_in(workspace, str(checkpoint))
    artefact = check_complete(folder)
    source_hash = store.content_hash(folder)
    existing = next(db.query("select name from versions where source_hash = ? or content_hash = ?",
                             [source_hash, source_hash]), None)
    if existing:
        raise VersionError(f"{folder}: already version {existing['name']}; "
                           f"`voicebench versions rollback {existing['name']}` makes it current again.")
    gate = gate_for(workspace, db, folder)
    if gate.verdict != "better" and not force:
        raise GateRefused(f"not promoted: {gate.message}. Rate more on the Judge screen, or pass --force "
                          "to promote anyway (recorded with the version).", gate)
    run_id, _, record, settings = _run_record(folder)
    base = artefact_base(workspace, artefact)
    reference = base_reference(workspace, base.name if base.name in workspace.models else base.path) if base \
        else record.get("model")
    number = (db.execute("select max(number) from versions").fetchone()[0] or 0) + 1
    name = f"v{number}"
    target = versions_dir(workspace) / name
    staging = _copy_snapshot(artefact, folder, target, reference)
    weights = staging / ("adapter" if artefact.kind == "adapter" else "model")
    content_hash = store.content_hash(weights)
    row = {
        "name": name, "number": number, "path": str(target.relative_to(workspace.root)), "kind": artefact.kind,
        "base_model": reference, "content_hash": content_hash, "source_hash": source_hash, "run_id": run_id,
        "checkpoint": folder.name, "step": _step(folder.name), "pairs_hash": record.get("pairs_sha256"),
        "settings_json": json.dumps(settings, sort_keys=True), "note": note, "verdict": gate.verdict,
        "forced": int(force and gate.verdict != "better"), "gate_json": json.dumps(gate.to_dict(), sort_keys=True),
        "created_at": store.now(),
    }
    description = {key: value for key, value in row.items() if key not in ("settings_json", "gate_json")}
    (staging / "version.json").write_text(json.dumps(
        {**description, "settings": settings, "gate": gate.to_dict()}, indent=2, sort_keys=True) + "\n",
        encoding="utf-8")
    try:
        staging.rename(target)
    except OSError as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise VersionError(f"{target}: cannot create the version folder ({error}); is another promotion "
                           "running? Try again.") from None
    try:
        with db.atomic():
            columns = ", ".join(row)
            # ON CONFLICT DO NOTHING, then read: a concurrent promotion that took this
            # number wins, and this one is reported instead of half-recorded.
            db.execute(f"insert into versions ({columns}) values ({', '.join('?' * len(row))}) "
                       "on conflict do nothing", list(row.values()))
            stored = next(db.query("select id, content_hash from versions where name = ?", [name]))
            if stored["content_hash"] != content_hash:
                raise VersionError(f"{name} was promoted by another process at the same time; try again.")
            db["version_events"].insert({"version_id": stored["id"], "action": "promote", "note": note,
                                         "at": store.now()})
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    return Promotion(version=get_version(db, name), gate=gate)


def _copy_snapshot(artefact: Any, folder: Path, target: Path, reference: str | None) -> Path:
    """Copy the checkpoint's weights and tokenizer into a temporary folder beside `target`."""
    if target.exists():
        raise VersionError(f"{target}: already exists but is not in judgments.db. Move it away and try again.")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        weights = staging / ("adapter" if artefact.kind == "adapter" else "model")
        weights.mkdir()
        for file in artefact.folder.iterdir():
            if file.is_file() and file.name not in TRAINING_STATE:
                shutil.copy2(file, weights / file.name)
        if artefact.kind == "adapter" and reference and artefact.base != reference:
            make_portable(weights, reference)  # an older checkpoint that named its base by absolute path
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return staging


def _step(checkpoint_name: str) -> int | None:
    match = re.search(r"(\d+)$", checkpoint_name)
    return int(match.group(1)) if match else None


def rollback(workspace: Workspace, db: Database, name: str, *, note: str = "") -> Version:
    """Make an earlier (or any) version current again; the history keeps the step."""
    version = get_version(db, name)
    if not version.folder(workspace).is_dir():
        raise VersionError(f"{version.folder(workspace)}: the folder of {name} is missing, so it cannot be "
                           "current. Restore it from a backup of the workspace.")
    if version.current:
        raise VersionError(f"{name} is already the current version.")
    db["version_events"].insert({"version_id": next(db.query("select id from versions where name = ?", [name]))["id"],
                                 "action": "rollback", "note": note, "at": store.now()})
    return get_version(db, name)


def provenance_of(workspace: Workspace, db: Database, folder: Path) -> tuple[dict[str, Any], str | None]:
    """What a model card says about a version or checkpoint: where it came from and its gate."""
    folder = Path(folder).resolve()
    version = None
    for candidate in list_versions(db):
        if candidate.folder(workspace).resolve() == folder:
            version = candidate
    if version is not None:
        provenance = {"version": version.name, "run": version.run_id, "checkpoint": version.checkpoint,
                      "step": version.step, "base model": version.base_model,
                      "pairs file sha256": version.pairs_hash, "content sha256": version.content_hash,
                      "promoted": version.created_at, "note": version.note or None}
        evaluation = f"Promotion gate: {version.gate.get('message', version.verdict)}."
        if version.forced:
            evaluation += " The writer promoted it past the gate (--force)."
        return provenance, evaluation
    run_id, _, record, settings = _run_record(folder)
    provenance = {"checkpoint": folder.name, "run": run_id, "base model": record.get("model") or settings.get("model"),
                  "method": settings.get("method"), "pairs file sha256": record.get("pairs_sha256")}
    return provenance, None
