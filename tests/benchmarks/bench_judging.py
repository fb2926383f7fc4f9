"""Judging speed with a big store: rating actions and the leaderboard, as ratios.

    python tests/benchmarks/bench_judging.py [--generations 10000 --ratings 100000 --votes 100000]

1. Fills a temporary judgments.db with N generations, M rated items (two criterion scores
   each) and V pairwise votes, through the real schema and indexes.
2. "Record a rating + fetch the next item" on a fresh blind session (what one key press
   on the Judge screen costs: rate → next → current) against a bare one-row SQLite insert
   committed on the same database — both measured in this run.
3. The leaderboard: the plain Bradley–Terry fit over V votes, the same with 200 bootstrap
   refits, and the whole report (`build_report`) from the store.
Prints per-operation times and ratios; asserts nothing about wall-clock time.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from engine.judge import rating, report, store  # noqa: E402
from engine.judge import session as judging  # noqa: E402
from tests.engine.judge_data import seed_rubric  # noqa: E402

CONTESTANTS = 20


def fill(db, generations: int, ratings: int, votes: int) -> None:
    rng = random.Random(0)
    canaries = generations // CONTESTANTS
    with db.atomic():
        for index in range(CONTESTANTS):
            store.ensure_model(db, path=f"/bench/model-{index}", name=f"model-{index}", hash_=f"hash-{index}")
        canary_rows = [store.ensure_canary_version(db, canary_id=f"canary-{i}", kind="known-topic-short",
                                                   prompt=f"Prompt {i}", max_new_tokens=64) for i in range(canaries)]
        db.conn.executemany(
            "insert into generations (identity_key, model_id, canary_id, label, prompt, text, token_count, "
            "seconds, metrics_json, created_at) values (?, ?, ?, ?, ?, ?, 64, 1.0, ?, '')",
            ((f"g{m}-{c}", m + 1, canary_rows[c], f"model-{m}", f"Prompt {c}", f"Output {c} of model {m}. " * 8,
              '{"distinct_1": 0.7, "seq_rep_4": 0.1}') for m in range(CONTESTANTS) for c in range(canaries)))
        generation_ids = [row["id"] for row in db.query("select id from generations")]
        session_id = db["sessions"].insert({"rater": "bench", "mode": "rubric", "shuffle_seed": 0,
                                            "cursor": 0, "started_at": "", "ended_at": "x"}).last_pk
        db.conn.executemany(
            "insert into session_items (session_id, position, generation_id, status) values (?, ?, ?, 'done')",
            ((session_id, position, rng.choice(generation_ids)) for position in range(ratings)))
        items = list(db.query("select id, generation_id from session_items where session_id = ?", [session_id]))
        db.conn.executemany(
            "insert into ratings (session_id, item_id, generation_id, rater, flags_json, note, rated_at) "
            "values (?, ?, ?, 'bench', '[]', '', '')",
            ((session_id, item["id"], item["generation_id"]) for item in items))
        criteria = [row["id"] for row in db.query("select id from criteria")]
        db.conn.executemany(
            "insert into rating_scores (rating_id, criterion_id, score) values (?, ?, ?)",
            ((rating_id, criterion, rng.randint(1, 5)) for (rating_id,) in
             db.execute("select id from ratings").fetchall() for criterion in criteria))
        pair_session = db["sessions"].insert({"rater": "bench", "mode": "pairwise", "shuffle_seed": 0,
                                              "cursor": 0, "started_at": "", "ended_at": "x"}).last_pk
        pairs = []
        for position in range(votes):
            canary = rng.randrange(canaries)
            left, right = rng.sample(range(CONTESTANTS), 2)
            pairs.append((pair_session, position, left * canaries + canary + 1, right * canaries + canary + 1))
        db.conn.executemany("insert into session_items (session_id, position, generation_id, right_generation_id, "
                            "status) values (?, ?, ?, ?, 'done')", pairs)
        db.conn.executemany(
            "insert into comparisons (session_id, item_id, left_generation_id, right_generation_id, winner, rater, "
            "decided_at) select session_id, id, generation_id, right_generation_id, ?, 'bench', '' "
            "from session_items where session_id = ? and position = ?",
            ((rng.choice(["left", "right", "left", "tie"]), pair_session, position) for position in range(votes)))


def per_call(function, repeats: int) -> float:
    started = time.perf_counter()
    for _ in range(repeats):
        function()
    return (time.perf_counter() - started) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generations", type=int, default=10_000)
    parser.add_argument("--ratings", type=int, default=100_000)
    parser.add_argument("--votes", type=int, default=100_000)
    parser.add_argument("--actions", type=int, default=300, help="rating actions to time")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "judgments.db"
        db = store.open_store(path)
        seed_rubric(db, Path(folder))
        started = time.perf_counter()
        fill(db, args.generations, args.ratings, args.votes)
        print(f"filled store: {db['generations'].count} generations, {db['ratings'].count} ratings, "
              f"{db['comparisons'].count} votes in {time.perf_counter() - started:.1f} s")

        # Bare insert baseline: one row, committed, same database and settings.
        db.execute("create table bench_bare (id integer primary key, a integer, b text)")
        bare = per_call(lambda: db.execute("insert into bench_bare (a, b) values (?, ?)", [1, "x"]), args.actions * 3)

        labels = [f"model-{index}" for index in range(4)]
        blind = judging.BlindSession(db, judging.build_session(db, labels=labels, seed=1, max_items=args.actions + 10))
        samples = []
        for _ in range(args.actions):
            started = time.perf_counter()
            blind.rate("voice", 4)
            item = blind.next()  # returns the next item, as the Judge screen uses it
            samples.append(time.perf_counter() - started)
            assert item is not None
        action = statistics.mean(samples)
        p95 = sorted(samples)[int(len(samples) * 0.95)]
        print(f"bare SQLite insert (committed):      {bare * 1e3:8.3f} ms")
        print(f"rate + next (fetches next item):     {action * 1e3:8.3f} ms (p95 {p95 * 1e3:.3f} ms)"
              f"  ratio {action / bare:6.1f}x bare insert")

        votes = [vote for vote, count in zip(*report._vote_cells(db)) for _ in range(count)]
        started = time.perf_counter()
        rating.bradley_terry(votes)
        plain = time.perf_counter() - started
        started = time.perf_counter()
        rating.bradley_terry_intervals(votes, samples=200, seed=0)
        boot = time.perf_counter() - started
        started = time.perf_counter()
        report.build_report(db, bt_samples=200)
        full = time.perf_counter() - started
        print(f"plain BT fit over {len(votes):,} votes:      {plain:8.3f} s")
        print(f"BT + 200 bootstrap refits:           {boot:8.3f} s  ratio {boot / plain:6.1f}x plain fit")
        print(f"whole report from the store:         {full:8.3f} s  ratio {full / plain:6.1f}x plain fit")
        db.close()


if __name__ == "__main__":
    main()
