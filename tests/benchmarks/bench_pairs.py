"""Benchmark: a generated 10,000-pair workspace — load, filter, edit, save, validate.

Run: python tests/benchmarks/bench_pairs.py [PAIR_COUNT]

Each step is printed as a ratio against a plain `json.loads` of every line of the same
file, measured in the same run (best of several repeats), so the numbers compare across
machines. Filtering is also shown in milliseconds: it runs on every keystroke in the
Pairs screen and must stay well under 100 ms.
"""

from __future__ import annotations

import dataclasses
import json
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from engine.curate.pairs import filter_pairs, load_pairs, save_pairs, validate

WORDS = (
    "river mend tend plain stubborn bread flour water salt letter library walk weather town "
    "memory hands kettle lamp ferry weir mill lane heron gate ledger rope frost rain wool thread "
    "needle window winter summer morning evening slow small quiet careful honest kitchen table"
).split()


def generate(path: Path, count: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    tiers = ("continuation", "thesis", "paragraph", "note")
    with path.open("w", encoding="utf-8") as out:
        for index in range(count):
            source = f"essays/source-{index // 12:04d}"
            prompt = "Write the next paragraph of the essay. " + " ".join(rng.choices(WORDS, k=rng.randint(30, 120)))
            response = " ".join(rng.choices(WORDS, k=rng.randint(60, 220))) + "."
            record = {
                "id": f"pair-{index:05d}", "prompt": prompt, "response": response, "source": source,
                "tier": tiers[index % 4], "split": "val" if (index // 12) % 7 == 0 else "train",
                "tags": ["essay"], "notes": "",
            }
            out.write(json.dumps(record, ensure_ascii=False) + "\n")


def best_of(repeats: int, action: Callable[[], object]) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "pairs.jsonl"
        generate(path, count)
        size_mb = path.stat().st_size / 1e6

        def baseline() -> None:
            with path.open(encoding="utf-8") as handle:
                for line in handle:
                    json.loads(line)

        base = best_of(5, baseline)
        load = best_of(5, lambda: load_pairs(path))
        pair_file = load_pairs(path)
        pairs = pair_file.pairs

        # First keystroke builds each pair's search text; later keystrokes reuse it.
        filter_cold = best_of(1, lambda: filter_pairs(pairs, "heron"))
        filter_warm = best_of(5, lambda: filter_pairs(pairs, "heron kettle"))
        filter_field = best_of(5, lambda: filter_pairs(pairs, "tier:note split:val"))

        def edit() -> None:  # as the Pairs screen edits: a new pair in the old one's place
            pair = pairs[count // 2]
            pairs[count // 2] = dataclasses.replace(pair, response=pair.response + " A small edit.")
            pair_file.line_of(pair.id)

        edit_time = best_of(5, edit)
        save = best_of(3, lambda: save_pairs(pair_file))
        validate_time = best_of(1, lambda: validate(pair_file))  # first run hashes every text
        validate_again = best_of(3, lambda: validate(pair_file))  # text features cached
        validate_budget = best_of(1, lambda: validate(pair_file, budgets={"words": 400}, counter=lambda t: len(t.split())))
        after_edit = best_of(3, lambda: filter_pairs(pairs, "heron kettle"))

    print(f"{count} pairs, {size_mb:.1f} MB; baseline json.loads of every line: {base * 1000:.1f} ms")
    rows = [
        ("load_pairs", load),
        ("filter, first query (builds search text)", filter_cold),
        ("filter, next query (2 words)", filter_warm),
        ("filter, field terms (tier:/split:)", filter_field),
        ("filter, after one edit", after_edit),
        ("edit one pair", edit_time),
        ("save_pairs (atomic, backup)", save),
        ("validate, first run (no budgets)", validate_time),
        ("validate again (features cached)", validate_again),
        ("validate + one budget (word counter)", validate_budget),
    ]
    for name, seconds in rows:
        print(f"  {name:<42} {seconds / base:7.2f}x baseline  ({seconds * 1000:8.1f} ms)")


if __name__ == "__main__":
    main()
