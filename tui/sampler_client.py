"""The app's end of `engine.sample.service`: start the process, send requests, read events.

Events are read on a thread of their own and handed to `on_event` there (never on the UI
thread: the callback stores frames and posts a message). When the process ends — asked
to, or crashed — `on_event` gets `{"event": "exited", "code", "stderr"}` with the last
lines it wrote to stderr, so the screen can say what went wrong.
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import engine

STDERR_LINES_KEPT = 20
QUIT_GRACE_SECONDS = 2.0  # after closing stdin, before the process is killed


class SamplerProcess:
    """One sampler process; `send` starts it on first use."""

    def __init__(self, on_event: Callable[[dict[str, Any]], None]) -> None:
        self.on_event = on_event
        self._process: subprocess.Popen[str] | None = None
        self._stderr: collections.deque[str] = collections.deque(maxlen=STDERR_LINES_KEPT)
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start the process (importing torch takes it a few seconds; runs queue meanwhile)."""
        with self._lock:
            if self.running:
                return
            env = dict(os.environ)
            # The engine package wherever it is, installed or not.
            package_root = str(Path(engine.__file__).resolve().parents[1])
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
            env.setdefault("TOKENIZERS_PARALLELISM", "false")
            self._stderr.clear()
            process = subprocess.Popen(
                [sys.executable, "-m", "engine.sample.service"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True, encoding="utf-8", bufsize=1, env=env,
            )
            self._process = process
        threading.Thread(target=self._read_errors, args=(process,), daemon=True, name="sampler-stderr").start()
        threading.Thread(target=self._read_events, args=(process,), daemon=True, name="sampler-events").start()

    def send(self, request: dict[str, Any]) -> None:
        """Send one request; a dead process is restarted first."""
        self.start()
        process = self._process
        assert process is not None and process.stdin is not None
        try:
            process.stdin.write(json.dumps(request, ensure_ascii=False) + "\n")
            process.stdin.flush()
        except (BrokenPipeError, ValueError):  # died just now: its reader reports "exited"
            pass

    def close(self) -> None:
        """Stop every run and the process (killed if it does not go within the grace time)."""
        with self._lock:
            process, self._process = self._process, None
        if process is None:
            return
        try:
            if process.stdin is not None:
                process.stdin.close()  # end of input: the service cancels its runs and exits
            process.wait(timeout=QUIT_GRACE_SECONDS)
        except (BrokenPipeError, subprocess.TimeoutExpired):
            process.kill()
            process.wait()

    # Reader threads ----------------------------------------------------------------------
    def _read_events(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            try:
                payload = json.loads(line)
            except json.JSONDecodeError:
                self._stderr.append(f"not an event: {line.strip()[:200]}")
                continue
            self.on_event(payload)
        code = process.wait()
        self.on_event({"event": "exited", "code": code, "stderr": list(self._stderr)})

    def _read_errors(self, process: subprocess.Popen[str]) -> None:
        assert process.stderr is not None
        for line in process.stderr:
            if line.strip():
                self._stderr.append(line.rstrip())
