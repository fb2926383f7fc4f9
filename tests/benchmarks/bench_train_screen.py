"""Can the Train screen keep up with a fast training child?

    python tests/benchmarks/bench_train_screen.py [steps]

A fake child (tests/tui/fake_train_child.py, no sleeping) prints `steps` step events as
fast as it can. Baseline: the same child with its stdout going to a plain reader that only
parses the lines. Measured: the whole run inside the app (Pilot, 120x40), from ctrl+s until
the screen has handled the exit — every event parsed, posted, folded into the curves and
the plot re-rendered. Prints the ratio; the UI must not make training wait, since the child
writes into a pipe and a slow reader would eventually block it.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from engine.workspace import Workspace  # noqa: E402
from tests.tui.train_fixtures import write_workspace  # noqa: E402
from tests.tui.waiting import workers_done  # noqa: E402
from tui.app import make_app  # noqa: E402
from tui.screens.train import TrainScreen  # noqa: E402
from tui.train_process import parse_line  # noqa: E402

FAKE = REPO / "tests" / "tui" / "fake_train_child.py"


def baseline(steps: int) -> float:
    started = time.perf_counter()
    child = subprocess.run([sys.executable, str(FAKE), "steps", "--max-steps", str(steps)],
                           capture_output=True, text=True, env=dict(os.environ, FAKE_TRAIN_TICK="0"), check=True)
    parsed = [parse_line(line) for line in child.stdout.splitlines()]
    assert len(parsed) >= steps
    return time.perf_counter() - started


async def in_app(steps: int) -> tuple[float, float]:
    TrainScreen.child_command = (sys.executable, str(FAKE), "steps")
    root = write_workspace(Path(tempfile.mkdtemp()) / "ws")
    app = make_app(Workspace.open(root))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f2")
        await pilot.pause()
        await workers_done(app)
        screen = app.screen
        key_started = time.perf_counter()
        await pilot.press("f5")  # a tab switch before the flood: the key baseline
        await pilot.pause()
        key_before = time.perf_counter() - key_started
        screen.query_one("TrainForm").input("max_steps").value = str(steps)
        started = time.perf_counter()
        await pilot.press("ctrl+s")
        while screen.live is None or screen.live.exit_code is None:
            await pilot.pause(0.01)
        elapsed = time.perf_counter() - started
        assert len(screen.live.curves.train) == steps
        # Responsiveness after the flood: one key round trip.
        key_started = time.perf_counter()
        await pilot.press("f7")
        await pilot.pause()
        return elapsed, key_before, time.perf_counter() - key_started


def main() -> None:
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    os.environ["FAKE_TRAIN_TICK"] = "0"
    base = baseline(steps)
    elapsed, key_before, key_after = asyncio.run(in_app(steps))
    print(f"{steps} step events: child + plain parser {base:.2f} s; through the Train screen {elapsed:.2f} s "
          f"(ratio {elapsed / base:.2f}x); {steps / elapsed:.0f} events/s handled")
    print(f"tab switch: {key_before * 1000:.0f} ms before the flood, {key_after * 1000:.0f} ms after "
          f"(ratio {key_after / key_before:.2f}x)")


if __name__ == "__main__":
    main()
