"""How a contestant reads on screen and in reports: `demo-ar lora #3 @ step 20`.

The store labels a checkpoint's outputs `<run-id>/checkpoint-N` (unique, but two checkpoints of
one run read alike once cut to a column). Everything a writer reads goes through `display_name`:

    names = run_names(db)                               # {run id: "demo-ar lora #3", …}
    display_name("2026…-ab12/checkpoint-20", "2026…-ab12", 20, names)  # "demo-ar lora #3 @ step 20"

A run's name is the `label` in its `config.toml` (the writer sets it when starting a run);
without one it is `<model> <method> #<n>`, n counting that model's runs with that method in the
order they started. Base models and ad-hoc models keep their stored label.
"""

from __future__ import annotations

import tomllib
from collections import Counter
from pathlib import Path

from sqlite_utils import Database


def _config_label(out_dir: str | None) -> tuple[str | None, str | None]:
    """(label, model) from a run folder's config.toml; (None, None) when it cannot be read."""
    if not out_dir:
        return None, None
    try:
        config = tomllib.loads((Path(out_dir) / "config.toml").read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return None, None
    label = config.get("label")
    model = config.get("model")
    return (label.strip() if isinstance(label, str) and label.strip() else None,
            Path(model).name if isinstance(model, str) and model else None)


def _config_method(folder: Path) -> str | None:
    try:
        method = tomllib.loads((folder / "config.toml").read_text(encoding="utf-8")).get("method")
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return None
    return method if isinstance(method, str) else None


def default_run_name(model: str, method: str, ordinal: int) -> str:
    """The name a run gets when the writer did not give one."""
    return f"{model} {method} #{ordinal}"


def run_names(db: Database, runs_dir: str | Path | None = None) -> dict[str, str]:
    """{run id: short name} for every run the store knows (and every folder under `runs_dir`,
    which may hold runs the store has not heard of yet). Run ids start with their start time,
    so ordering by id numbers a model's runs in the order they began."""
    rows = {row["id"]: row for row in db.query(
        "select r.id, r.method, r.out_dir, m.name as model_name, m.path as model_path from runs r "
        "left join models m on m.id = r.model_id")}
    if runs_dir is not None and Path(runs_dir).is_dir():
        for folder in Path(runs_dir).iterdir():
            if folder.name not in rows and (folder / "config.toml").exists():
                rows[folder.name] = {"id": folder.name, "method": _config_method(folder), "out_dir": str(folder),
                                     "model_name": None, "model_path": None}
    counts: Counter[tuple[str, str]] = Counter()
    names: dict[str, str] = {}
    for _, row in sorted(rows.items()):
        label, config_model = _config_label(row["out_dir"])
        model = config_model or row["model_name"] or (Path(row["model_path"]).name if row["model_path"] else "run")
        method = row["method"] if row["method"] and row["method"] != "unknown" else "run"
        counts[(model, method)] += 1
        names[row["id"]] = label or default_run_name(model, method, counts[(model, method)])
    return names


def display_name(label: str, run_id: str | None, step: int | None, names: dict[str, str]) -> str:
    """`<run name> @ step N` for a checkpoint, `<run name>` for a run's final weights, else the label."""
    if not run_id or step == 0:  # step 0 is the base model, shared by every run of it
        return label
    name = names.get(run_id, run_id)
    if step is None:
        return name
    return f"{name} @ step {step}"
