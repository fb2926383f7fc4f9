"""Synthetic judging data for tests and benchmarks: contestants, canaries, generations and a
seeded rubric, written straight into a store (no model needed)."""

from __future__ import annotations

from engine.judge import store

RUBRIC_TOML = """\
[[criterion]]
name = "voice"
description = "Sounds like the writer."
scale = [1, 5]
anchors = { 1 = "Not at all", 3 = "In places", 5 = "Could be theirs" }

[[criterion]]
name = "coherence"
description = "Holds together."
scale = [1, 5]

[[flag]]
name = "degenerate"
key = "d"
description = "Loops or word salad."

[[flag]]
name = "refusal"
key = "r"
description = "Declines to write."
"""

SECRET_PATH = "/secret/models/hidden-model-path"


def seed_rubric(db, tmp_path) -> None:
    from engine.judge.rubric import seed_rubric as seed

    path = tmp_path / "rubric.toml"
    path.write_text(RUBRIC_TOML, encoding="utf-8")
    seed(db, path)


def add_generations(db, labels: list[str], canary_count: int, *, text_of=None) -> dict[tuple[str, str], int]:
    """One generation per (label, canary); returns {(label, canary_id): generation id}."""
    ids = {}
    with db.atomic():
        for label_index, label in enumerate(labels):
            model_id = store.ensure_model(db, path=f"{SECRET_PATH}/{label}", name=label, family="causal",
                                          hash_=f"hash-{label}")
            for canary_index in range(canary_count):
                canary_id = f"canary-{canary_index}"
                row = store.ensure_canary_version(db, canary_id=canary_id, kind="known-topic-short",
                                                  prompt=f"Write about thing {canary_index}.", max_new_tokens=32)
                text = text_of(label, canary_index) if text_of else f"Output {canary_index} number {label_index}."
                generation_id, _ = store.record_generation(db, {
                    "identity_key": f"{label}/{canary_id}", "model_id": model_id, "canary_id": row,
                    "label": label, "family": "causal", "settings": {"temperature": 0.7}, "seed": 0,
                    "prompt": f"Write about thing {canary_index}.", "text": text, "token_count": 7,
                    "seconds": 1.25, "metrics": {"distinct_1": 0.5 + label_index / 10, "empty": False},
                })
                ids[(label, canary_id)] = generation_id
    return ids
