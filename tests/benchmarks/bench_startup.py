"""Start-up benchmark: `voicebench --help` and the app's cold start to a painted Pairs screen.

Run: `python tests/benchmarks/bench_startup.py [--runs N]`. Every time is printed as a ratio
against `python -c pass` measured in the same run (the interpreter's own start-up), so the
numbers mean the same on a fast or a slow machine. Also measured, on a generated workspace
of 10,000 pairs: the cold start, and filter key presses on the Pairs screen (from the key
press to the frame that paints the new rows) against a plain `json.loads` of the file.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

from tests.tui.pairs_fixtures import make_workspace, write_word_tokenizer  # noqa: E402

# "Painted" is the first frame that shows the whole screen, its keys included (Textual
# fills its Footer one frame after the screen; the app's KeyBar draws its keys in its first
# frame): the time the frame is handed to the terminal, wall clock and the process's CPU
# time, for the app and the bare app alike.
# (Pilot's "pause" is not the measure: it waits until the process goes idle, which
# includes whatever background work follows the first frame.)
PAINT_HOOK = textwrap.dedent("""
    from textual.app import App as _App

    times = {}
    _display = _App._display

    def _timed_display(self, screen, renderable):
        _display(self, screen, renderable)
        if renderable is not None and "painted" not in times and screen.query("FooterKey, KeyBar"):
            times["painted"] = time.perf_counter() - start
            times["painted_cpu"] = time.process_time() - cpu_start

    _App._display = _timed_display
""")

# Opens the app headless, waits for the first paint of the Pairs screen (and, for
# "ready", for token counting and validation), prints both times and whether torch loaded.
APP_SCRIPT = textwrap.dedent("""
    import time
    start, cpu_start = time.perf_counter(), time.process_time()
    import sys
    from engine.workspace import Workspace
    from tui.app import make_app
    from tests.tui.pairs_fixtures import settle
    """) + PAINT_HOOK + textwrap.dedent("""
    app = make_app(Workspace.open(sys.argv[1]))

    async def auto_pilot(pilot):
        while "painted" not in times:
            await pilot.pause()
        table = app.screen.query_one("#pairs-table")
        while not table.row_ids:  # the file is read in a worker
            await pilot.pause()
        times["rows"] = time.perf_counter() - start
        await settle(pilot)
        times["ready"] = time.perf_counter() - start
        app.exit()

    app.run(headless=True, size=(120, 40), auto_pilot=auto_pilot)
    print(times["painted"], times["painted_cpu"], times["rows"], times["ready"], "torch" in sys.modules)
""")

# The same measurement for a bare Textual app (a Static and a Footer): Textual's own floor.
HELLO_SCRIPT = textwrap.dedent("""
    import time
    start, cpu_start = time.perf_counter(), time.process_time()
    from textual.app import App
    from textual.widgets import Footer, Static
    """) + PAINT_HOOK + textwrap.dedent("""
    class Hello(App):
        def compose(self):
            yield Static("hello")
            yield Footer()

    async def auto_pilot(pilot):
        while "painted" not in times:
            await pilot.pause()
        pilot.app.exit()

    Hello().run(headless=True, size=(120, 40), auto_pilot=auto_pilot)
    print(times["painted"], times["painted_cpu"])
""")

# Types filter queries into the Pairs screen a letter at a time and times each key press
# to the end of the first frame that paints the table with the new rows (what the writer
# sees), by hooking the screen's compositor refresh. (Pilot's own "until idle" wait is not
# the measure: it also waits out unrelated timers and idle checks.)
FILTER_SCRIPT = textwrap.dedent("""
    import asyncio, json, statistics, sys, time
    from engine.workspace import Workspace
    from tui.app import make_app
    from tests.tui.pairs_fixtures import settle

    async def main():
        app = make_app(Workspace.open(sys.argv[1]))
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            screen = app.screen
            table = screen.query_one("#pairs-table")
            frames, painting = [], [False]
            render_line = table.render_line
            def hooked_render_line(y):
                painting[0] = True
                return render_line(y)
            table.render_line = hooked_render_line
            compositor_refresh = screen._compositor_refresh
            def hooked_compositor_refresh():
                painting[0] = False
                compositor_refresh()
                frames.append((time.perf_counter(), id(table.row_ids), painting[0]))
            screen._compositor_refresh = hooked_compositor_refresh
            await pilot.press("slash")
            await pilot.pause()
            painted = []
            for word in ("river", "mend", "bread", "stubborn", "xq"):
                for letter in [*word, *["backspace"] * len(word)]:
                    frames.clear()
                    start = time.perf_counter()
                    await pilot.press(letter)
                    await pilot.pause()
                    rows = id(table.row_ids)
                    shown = next((at for at, shown_rows, drawn in frames if shown_rows == rows and drawn), None)
                    if shown is not None:
                        painted.append(shown - start)
            print(json.dumps({"painted": painted}))

    asyncio.run(main())
""")



def run_times(command: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, cwd=REPO_ROOT)
        times.append(time.perf_counter() - start)
    return times


def app_run(workspace: Path) -> dict:
    """One cold start of the app on `workspace`: painted (wall, CPU), rows, ready, wall, torch."""
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", APP_SCRIPT, str(workspace)], check=True,
                            capture_output=True, text=True, cwd=REPO_ROOT)
    wall = time.perf_counter() - start
    painted, painted_cpu, rows, ready, torch = result.stdout.split()
    return {"painted": float(painted), "painted_cpu": float(painted_cpu), "rows": float(rows),
            "ready": float(ready), "wall": wall, "torch": torch == "True"}


def hello_run() -> dict:
    """One cold start of the bare Textual app: painted (wall, CPU)."""
    result = subprocess.run([sys.executable, "-c", HELLO_SCRIPT], check=True, capture_output=True, text=True)
    painted, painted_cpu = result.stdout.split()
    return {"painted": float(painted), "painted_cpu": float(painted_cpu)}


def app_times(workspace: Path, runs: int) -> tuple[list[float], list[float], list[float], list[float], bool]:
    measured = [app_run(workspace) for _ in range(runs)]
    return ([run["painted"] for run in measured], [run["rows"] for run in measured],
            [run["ready"] for run in measured], [run["wall"] for run in measured],
            any(run["torch"] for run in measured))


def big_workspace(folder: Path, count: int = 10_000) -> Path:
    """A workspace of `count` generated pairs, essay-length responses, word tokenizer."""
    words = ("river mend plain stubborn bread tend attention letters weather hands library "
             "walking ferry kettle coat elbow thread winter").split()
    lines = []
    for number in range(count):
        response = " ".join(words[(number * 7 + i) % len(words)] for i in range(120 + number % 80)) + "."
        lines.append(json.dumps({
            "id": f"pair-{number:05d}", "prompt": f"Continue the essay number {number} about {words[number % len(words)]}.",
            "response": response, "source": f"essays/2024-01-01-piece-{number // 20}", "tier": "paragraph",
            "split": "val" if (number // 20) % 7 == 0 else "train", "tags": [words[number % 5]], "notes": "",
        }))
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "pairs.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    write_word_tokenizer(folder / "data" / "models" / "demo-ar")
    return folder


def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="repetitions of each measurement (default: 5)")
    args = parser.parse_args()

    baseline = median(run_times([sys.executable, "-c", "pass"], args.runs))
    help_time = median(run_times([sys.executable, "-m", "engine.cli", "--help"], args.runs))
    print(f"python -c pass            {baseline * 1000:8.0f} ms   1.0x (baseline)")
    print(f"voicebench --help         {help_time * 1000:8.0f} ms  {help_time / baseline:5.1f}x")

    with tempfile.TemporaryDirectory() as temp:
        small = make_workspace(Path(temp) / "small").root
        demo = REPO_ROOT if (REPO_ROOT / "data" / "pairs.jsonl").exists() else small
        label = "repo demo" if demo == REPO_ROOT else "small test workspace"
        # Cold starts with compiled bytecode, as an installed app runs: the child processes
        # may write .pyc files (into the temporary folder, never the repo), and one unmeasured
        # start of each fills them. Otherwise a PYTHONDONTWRITEBYTECODE environment recompiles
        # every project module at every start while Textual's own bytecode is cached.
        os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
        os.environ["PYTHONPYCACHEPREFIX"] = str(Path(temp) / "pycache")
        hello_run()
        app_run(demo)
        # Interleaved, so that a busy neighbour on a shared machine slows both alike.
        hello, app = [], []
        for _ in range(args.runs):
            hello.append(hello_run())
            app.append(app_run(demo))

        def row(label: str, runs: list[dict], key: str) -> float:
            value = median([run[key] for run in runs])
            print(f"{label:<38}{value * 1000:8.0f} ms  {value / baseline:5.1f}x")
            return value

        hello_painted = row("bare Textual app painted (floor)", hello, "painted")
        hello_cpu = median([run["painted_cpu"] for run in hello])
        painted = row(f"app → Pairs painted ({label})", app, "painted")
        painted_cpu = median([run["painted_cpu"] for run in app])
        print(f"  → app / bare app: {painted / hello_painted:.1f}x wall clock, "
              f"{painted_cpu / hello_cpu:.1f}x CPU ({painted_cpu * 1000:.0f} ms against {hello_cpu * 1000:.0f} ms)")
        row("app → pair rows shown", app, "rows")
        row("app → tokens + validation done", app, "ready")
        row("app process wall time (incl. exit)", app, "wall")
        print(f"torch imported by the app: {any(run['torch'] for run in app)}")

        big = big_workspace(Path(temp) / "big")
        data = (big / "data" / "pairs.jsonl").read_text(encoding="utf-8")
        start = time.perf_counter()
        for line in data.splitlines():
            json.loads(line)
        json_time = time.perf_counter() - start
        painted, rows, ready, _wall, _torch = app_times(big, max(1, args.runs // 2))
        print(f"\n10,000 pairs ({len(data) / 1e6:.1f} MB); json.loads of every line: {json_time * 1000:.0f} ms")
        print(f"app → Pairs painted             {median(painted) * 1000:8.0f} ms  {median(painted) / baseline:5.1f}x python -c pass")
        print(f"app → pair rows shown           {median(rows) * 1000:8.0f} ms  {median(rows) / baseline:5.1f}x python -c pass")
        print(f"app → tokens + validation done  {median(ready) * 1000:8.0f} ms  {median(ready) / baseline:5.1f}x python -c pass")
        result = subprocess.run([sys.executable, "-c", FILTER_SCRIPT, str(big)], check=True,
                                capture_output=True, text=True, cwd=REPO_ROOT)
        filtering = json.loads(result.stdout)
        shown = filtering["painted"]
        print(f"filter key press → table painted: median {median(shown) * 1000:.0f} ms, "
              f"90th percentile {statistics.quantiles(shown, n=10)[-1] * 1000:.0f} ms, worst {max(shown) * 1000:.0f} ms "
              f"over {len(shown)} key presses  ({median(shown) / json_time:.2f}x json.loads of the file)")

if __name__ == "__main__":
    main()
