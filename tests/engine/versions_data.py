"""Fixtures for the versions/export/prefs/DPO tests: a small copy of the demo workspace,
LoRA checkpoints made without training (random adapter weights, so they differ from the
base), canary outputs written straight into the store, and blind votes and ratings cast
through the real session API."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from engine.judge import store
from engine.judge.session import BlindSession, build_session

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "data"


def demo_workspace(root: Path) -> Path:
    """data/ with the demo-ar model, pairs, canaries and rubric (no diffusion model)."""
    (root / "data" / "models").mkdir(parents=True)
    shutil.copytree(DEMO / "models" / "demo-ar", root / "data" / "models" / "demo-ar")
    for name in ("pairs.jsonl", "canaries.toml", "rubric.toml"):
        shutil.copy2(DEMO / name, root / "data" / name)
    return root


def make_checkpoint(workspace_root: Path, run_id: str, step: int, seed: int, *, scale: float = 0.05) -> Path:
    """runs/<run_id>/checkpoints/checkpoint-<step> holding a LoRA adapter on demo-ar."""
    import torch

    from engine.models.loading import load_model
    from engine.models.portable import base_reference
    from engine.train.lora import apply_lora
    from engine.workspace import Workspace

    workspace = Workspace.open(workspace_root)
    loaded = load_model(workspace.model("demo-ar").path, family="causal", device="cpu")
    model, _ = apply_lora(loaded.model, family="causal", rank=4, alpha=8, dropout=0.0, targets=None,
                          base_reference=base_reference(workspace, "demo-ar"))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * scale)
    run_dir = workspace_root / "runs" / run_id
    folder = run_dir / "checkpoints" / f"checkpoint-{step}"
    model.save_pretrained(str(folder))
    loaded.tokenizer.save_pretrained(str(folder))
    (run_dir / "config.toml").write_text(f'model = "demo-ar"\nmethod = "lora"\nmax_steps = {step}\n')
    (run_dir / "run.json").write_text(json.dumps({"run_id": run_id, "model": "demo-ar", "pairs_sha256": "abc"}))
    return folder


def add_outputs(db, workspace_root: Path, label: str, texts: list[str], *, adapter_hash: str | None,
                run_id: str | None = None) -> list[int]:
    """One stored canary output per text for canaries c0, c1, … (demo-ar's model row)."""
    from engine.workspace import Workspace

    base = Workspace.open(workspace_root).model("demo-ar").path
    model_hash = store.cached_content_hash(db, base)
    model_id = store.ensure_model(db, path=base, name="demo-ar", family="causal", hash_=model_hash)
    if run_id:
        store.record_run(db, run_id=run_id, method="lora")
    ids = []
    for index, text in enumerate(texts):
        row = store.ensure_canary_version(db, canary_id=f"c{index}", kind="known-topic-short",
                                          prompt=f"Write a note about thing {index}.", max_new_tokens=32)
        generation_id, _ = store.record_generation(db, {
            "identity_key": f"{label}/{index}/{adapter_hash}", "model_id": model_id, "canary_id": row,
            "run_id": run_id, "adapter_hash": adapter_hash, "label": label, "family": "causal",
            "settings": {}, "seed": 0, "prompt": f"Write a note about thing {index}.", "text": text,
            "token_count": len(text.split()),
        })
        ids.append(generation_id)
    return ids


def vote(db, winner_label: str, loser_label: str, *, wins: int, losses: int = 0, ties: int = 0) -> None:
    """A pairwise session between two labels; the first `wins` items go to winner_label,
    the next `losses` to loser_label, then `ties` ties."""
    session_id = build_session(db, labels=[winner_label, loser_label], mode="pairwise", seed=3, repeat_share=0)
    session = BlindSession(db, session_id)
    outcomes = ["win"] * wins + ["loss"] * losses + ["tie"] * ties
    labels = {row["id"]: row["label"] for row in db.query("select id, label from generations")}
    items = list(db.query("select position, generation_id from session_items where session_id = ? "
                          "order by position", [session_id]))
    assert len(items) >= len(outcomes), "not enough canaries for that many votes"
    for item, outcome in zip(items, outcomes):
        session.goto(item["position"])
        left_is_winner = labels[item["generation_id"]] == winner_label
        if outcome == "tie":
            session.choose("tie")
        elif (outcome == "win") == left_is_winner:
            session.choose("left")
        else:
            session.choose("right")


def rate(db, scores: dict[str, int]) -> None:
    """A rubric session over the given labels; every criterion of a label's outputs gets its score."""
    session_id = build_session(db, labels=list(scores), mode="rubric", seed=5, repeat_share=0)
    session = BlindSession(db, session_id)
    labels = {row["id"]: row["label"] for row in db.query("select id, label from generations")}
    criteria = [row["name"] for row in db.query("select name from criteria where retired = 0")]
    for item in db.query("select position, generation_id from session_items where session_id = ?", [session_id]):
        session.goto(item["position"])
        for criterion in criteria:
            session.rate(criterion, scores[labels[item["generation_id"]]])


def run_cli(capsys, *argv: str):
    """`voicebench ARGV` in this process (no interpreter start-up); returncode, stdout, stderr."""
    from types import SimpleNamespace

    from engine.cli import main

    capsys.readouterr()  # drop earlier output
    code = main(list(argv))
    captured = capsys.readouterr()
    return SimpleNamespace(returncode=code, stdout=captured.out, stderr=captured.err)
