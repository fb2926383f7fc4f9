"""Benchmark: `voicebench pairs validate` and `stats` on a 50,000-pair file (~77 MB).

Run: python tests/benchmarks/bench_pairs_scale.py [PAIR_COUNT] [--against OTHER_CHECKOUT]

Generates the file in a temporary folder (the same generator as bench_pairs.py) and runs
each command as its own process in the repo's demo workspace, so the demo models'
tokenizer counts tokens for the budgets. For each it prints wall time, CPU time (user +
system) and peak resident memory, and the ratio of its CPU time to a baseline measured in
the same run: a process that only `json.loads` every line of the same file.
Both commands stream the file (engine.curate.pairs.validate_file, engine.cli.pairs_cmd.file_stats);
the demo tokenizer (byte-level BPE) counts tokens per pre-token (engine.curate.tokens._PieceCounts);
duplicate detection hashes words, trigrams and MinHash signatures in numpy batches
(engine/curate/duplicates.py).

`--against` runs each command also with another checkout of the repo (e.g. an older commit
from `git worktree add` or `git archive | tar -x`), alternating with this one, so before and
after are measured in the same run under the same load.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_pairs import generate  # noqa: E402

BASELINE = "import json, sys\nfor line in open(sys.argv[1], 'rb'):\n    json.loads(line)\n"


def measure(command: list[str], root: Path = ROOT) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, peak RSS in MB) of one child process run from `root`."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    errors = child.stderr.read().decode(errors="replace") if child.stderr else ""
    if child.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(command)} exited {child.returncode}:\n{errors}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def main() -> None:
    arguments = sys.argv[1:]
    other = None
    if "--against" in arguments:
        at = arguments.index("--against")
        other = Path(arguments[at + 1]).resolve()
        del arguments[at:at + 2]
    count = int(arguments[0]) if arguments else 50_000
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "pairs.jsonl"
        generate(path, count)
        print(f"{count} pairs, {path.stat().st_size / 1e6:.0f} MB")
        python = sys.executable
        runs = {
            "baseline (json.loads per line)": [python, "-c", BASELINE, str(path)],
            "pairs validate": [python, "-m", "engine.cli", "pairs", "validate", str(path)],
            "pairs validate --no-budgets": [python, "-m", "engine.cli", "pairs", "validate", "--no-budgets", str(path)],
            "pairs stats": [python, "-m", "engine.cli", "pairs", "stats", str(path)],
        }
        baseline_cpu = None
        for name, command in runs.items():
            for label, root in [("", ROOT)] + ([(" [against]", other)] if other and baseline_cpu else []):
                wall, cpu, rss = measure(command, root)
                baseline_cpu = baseline_cpu or cpu
                print(f"  {name + label:<42} wall {wall:6.1f} s   cpu {cpu:6.1f} s ({cpu / baseline_cpu:4.1f}x baseline)   "
                      f"peak RSS {rss:6.0f} MB")


if __name__ == "__main__":
    main()
