"""The Judge screen with a big store: what one rating key costs on screen, as ratios.

    python tests/benchmarks/bench_judge_screen.py [--generations 10000 --ratings 100000 --items 60]

1. Fills a temporary workspace's judgments.db with N generations, M rated items and M
   pairwise votes (the same filler as bench_judging.py), then builds a rubric session.
2. Drives the real app headless (Pilot): resumes the session and, per item, presses the
   four score keys and `j` (next). Each press is timed until the app is idle again — the
   handler, the store write, the re-render of the item.
3. Baselines measured in the same run: a key with no binding (the floor Pilot and Textual
   cost), and a bare one-row committed SQLite insert on the same database.
Prints times and ratios; asserts nothing about wall-clock time.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_judging import fill  # noqa: E402

from engine.judge import session as judging  # noqa: E402
from engine.judge.workspace_store import open_workspace_store  # noqa: E402
from engine.workspace import Workspace  # noqa: E402
from tui.app import make_app  # noqa: E402


async def timed_presses(pilot, keys: list[str]) -> list[float]:
    samples = []
    for key in keys:
        started = time.perf_counter()
        await pilot.press(key)
        samples.append(time.perf_counter() - started)
    return samples


async def drive(workspace: Workspace, items: int) -> tuple[list[float], list[float], list[float]]:
    app = make_app(workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f4")
        await pilot.pause()
        await pilot.press("ctrl+o")  # the session built below is the newest open one
        await pilot.pause()
        floor = await timed_presses(pilot, ["f12"] * items)  # unbound: Textual's own cost
        scores, moves = [], []
        for _ in range(items):
            scores += await timed_presses(pilot, ["4", "3", "2", "1"])
            moves += await timed_presses(pilot, ["j"])
        return floor, scores, moves


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generations", type=int, default=10_000)
    parser.add_argument("--ratings", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=60, help="items to rate through the screen")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "workspace"
        (root / "data").mkdir(parents=True)
        shutil.copy(ROOT / "data" / "rubric.toml", root / "data" / "rubric.toml")
        workspace = Workspace.open(root)
        db = open_workspace_store(workspace)
        started = time.perf_counter()
        fill(db, args.generations, args.ratings, args.ratings)
        print(f"filled store: {db['generations'].count:,} generations, {db['ratings'].count:,} ratings, "
              f"{db['comparisons'].count:,} votes in {time.perf_counter() - started:.1f} s")
        db.execute("create table bench_bare (id integer primary key, a integer, b text)")
        started = time.perf_counter()
        for _ in range(300):
            db.execute("insert into bench_bare (a, b) values (?, ?)", [1, "x"])
        bare = (time.perf_counter() - started) / 300
        judging.build_session(db, labels=[f"model-{index}" for index in range(4)], seed=1,
                              max_items=args.items + 10)
        db.close()

        floor, scores, moves = asyncio.run(drive(workspace, args.items))
        floor_mean = statistics.mean(floor)
        for name, samples in (("score key (rate, re-render)", scores), ("next key (move, re-render)", moves)):
            mean = statistics.mean(samples)
            p95 = sorted(samples)[int(len(samples) * 0.95)]
            print(f"{name:30s} {mean * 1e3:8.2f} ms (p95 {p95 * 1e3:.2f} ms)  "
                  f"{mean / floor_mean:5.2f}x an unbound key  {mean / bare:7.1f}x a bare insert")
        print(f"{'unbound key (floor)':30s} {floor_mean * 1e3:8.2f} ms")
        print(f"{'bare SQLite insert (committed)':30s} {bare * 1e3:8.3f} ms")


if __name__ == "__main__":
    main()
