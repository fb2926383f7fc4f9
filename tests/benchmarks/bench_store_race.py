"""Stress: three raters and two canary writers on one judgments.db for a minute.

Run: python tests/benchmarks/bench_store_race.py [SECONDS]   (default 60)

Prints the writes each kind of process made, the errors surfaced and the rows lost (both
must be 0; the script exits 1 otherwise). The workload and the checks are
tests/engine/store_race.py, which the test suite runs for a few seconds.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.engine import store_race  # noqa: E402


def main() -> int:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 60.0
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        outcome = store_race.race(Path(folder) / "judgments.db", seconds)
        elapsed = time.perf_counter() - started
        try:
            counts = store_race.check(outcome)
        except AssertionError as failure:
            print(f"FAILED after {elapsed:.1f}s: {failure}")
            return 1
    print(f"{store_race.RATERS} raters + {store_race.CANARY_WRITERS} canary writers for {seconds:.0f}s "
          f"({elapsed:.1f}s with setup):")
    for name, value in counts.items():
        print(f"  {name}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
