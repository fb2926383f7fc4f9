"""The training child process as the Train screen sees it: launch, read, cancel, kill.

Training never runs in the UI process (no torch here). `TrainProcess` starts
`python -m engine.train … --json` in its own session, and two thread workers read its
pipes: stdout carries the JSON-lines protocol of engine/train/events.py, stderr is logs.
The workers turn what each read returns into one message (`ChildEvents` for stdout, a batch
of events and stray lines; `ChildOutput` for stderr) — batching, as Toolong does, so a fast
child cannot flood the UI. A third worker waits on the process handle itself
(`wait_for_exit`): the moment the child exits — done, crashed, OOM-killed or SIGKILLed —
it lets the stdout reader drain what is left (a grandchild holding the pipe open cannot
delay this more than `DRAIN_SECONDS`) and posts `ChildExited` with the exit code.

Cancel is two-stage and only the writer decides: `cancel()` sends SIGTERM (the engine
finishes its step, saves a checkpoint, skips canaries and reports `done` "cancelled");
`kill()` sends SIGKILL to the whole process group (forced; the step in flight is lost, the
last checkpoint stays). Nothing here kills on a timer.

Leaving a run behind: the child runs in its own session (no terminal SIGHUP reaches it) and
`leave_running()` hands its pipes to `cat` drains in their own sessions, so after the app
exits it keeps printing into them and writing runs/<id>/events.jsonl; the engine also
survives a stdout that breaks (engine/train/record.py). The next app start reads the run
folder, where status.json's pid shows it is alive.
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from textual.message import Message

from engine.events import Event
from engine.train.events import parse_event

ENGINE_COMMAND = (sys.executable, "-m", "engine.train")
# After the child exits, how long the stdout reader may take to deliver its last lines.
DRAIN_SECONDS = 2.0
# Readers wake this often to see whether they should stop (screen gone, app quitting), so
# a thread never blocks app exit on a child that is still writing.
POLL_SECONDS = 0.2


def flag_for(field: str) -> str:
    """The engine flag of a TrainConfig field: max_steps -> --max-steps."""
    return "--" + field.replace("_", "-")


def flag_value(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(str(item) for item in value)
    return str(value)


def launcher(processes: int, base: Sequence[str] = ENGINE_COMMAND) -> list[str]:
    """The engine command, under torchrun when several processes (GPUs, or CPU ranks on gloo)
    should train together; only rank 0 prints events, so the stream looks the same."""
    if processes <= 1 or tuple(base) != ENGINE_COMMAND:
        return list(base)
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
            "-m", "engine.train"]


def build_command(settings: dict[str, Any], *, workspace: Path, resume: str | None = None,
                  base: Sequence[str] = ENGINE_COMMAND) -> list[str]:
    """argv for one run. `settings` are TrainConfig fields the user set (None = engine default);
    with `resume` only the run folder is passed, so the run continues with its saved config."""
    command = [*base, "--workspace", str(workspace)]
    if resume is not None:
        return [*command, "--resume", resume, "--json"]
    for field, value in settings.items():
        if value is None or value == "" or value == []:
            continue
        if isinstance(value, bool):
            command.append(flag_for(field) if value else "--no-" + field.replace("_", "-"))
            continue
        command += [flag_for(field), flag_value(value)]
    return [*command, "--json"]


class ChildEvents(Message):
    """What one read of the child's stdout held: protocol events (engine/train/events.py
    dataclasses) and, as plain strings, lines that are not protocol."""

    def __init__(self, run_token: int, items: list[Event | str]) -> None:
        super().__init__()
        self.run_token = run_token
        self.items = items


class ChildOutput(Message):
    """Lines from the child's stderr: logs, warnings, tracebacks."""

    def __init__(self, run_token: int, lines: list[str]) -> None:
        super().__init__()
        self.run_token = run_token
        self.lines = lines


class ChildExited(Message):
    """The child's stdout closed and it has exited with `returncode` (negative: killed by a signal)."""

    def __init__(self, run_token: int, returncode: int, forced: bool) -> None:
        super().__init__()
        self.run_token = run_token
        self.returncode = returncode
        self.forced = forced


def parse_line(line: str) -> Event | str:
    """A protocol event, or the line itself when it is not one (garbage, or a newer kind)."""
    stripped = line.strip()
    if not stripped.startswith("{"):
        return line.rstrip("\n")
    try:
        event = parse_event(json.loads(stripped))
    except (ValueError, TypeError):
        return line.rstrip("\n")
    return event if event is not None else line.rstrip("\n")


class TrainProcess:
    """One child training process. Methods are safe to call from any thread."""

    def __init__(self, command: Sequence[str], cwd: Path, run_token: int) -> None:
        self.command = list(command)
        self.cwd = cwd
        self.run_token = run_token  # tells this run's messages from a previous run's
        self.popen: subprocess.Popen[str] | None = None
        self.cancel_requested = False
        self.forced = False
        self.detached = False  # the UI handed the pipes to drain processes (app quitting)
        self.stdout_closed = threading.Event()  # the stdout reader reached the end

    def start(self) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1", TOKENIZERS_PARALLELISM="false")
        self.popen = subprocess.Popen(
            self.command, cwd=self.cwd, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            # Its own session: Ctrl-C in the terminal does not reach it, and kill() can end
            # the whole group (torchrun and its ranks included).
            start_new_session=True,
        )

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stdout_batches(self, stop: Callable[[], bool] = lambda: False) -> Iterator[list[Event | str]]:
        """Parsed stdout lines, a batch per read, until the pipe closes or `stop()` turns true."""
        assert self.popen is not None and self.popen.stdout is not None
        try:
            for lines in _read_batches(self.popen.stdout, lambda: stop() or self.detached):
                yield [parse_line(line) for line in lines]
        finally:
            self.stdout_closed.set()

    def stderr_batches(self, stop: Callable[[], bool] = lambda: False) -> Iterator[list[str]]:
        assert self.popen is not None and self.popen.stderr is not None
        yield from _read_batches(self.popen.stderr, lambda: stop() or self.detached)

    def wait(self, timeout: float | None = None) -> int:
        assert self.popen is not None
        return self.popen.wait(timeout)

    def wait_for_exit(self, stop: Callable[[], bool] = lambda: False) -> int | None:
        """Block until the process exits (its handle, not a pid that could be reused), then give
        the stdout reader up to DRAIN_SECONDS to hand over the last lines; the exit code, or
        None when `stop()` turned true first (checked every POLL_SECONDS, so app exit never waits)."""
        assert self.popen is not None
        while True:
            try:
                code = self.popen.wait(POLL_SECONDS)
                break
            except subprocess.TimeoutExpired:
                if stop():
                    return None
        self.stdout_closed.wait(DRAIN_SECONDS)
        return code

    def cancel(self) -> None:
        """Graceful: SIGTERM to the engine, which checkpoints and stops after this step."""
        self.cancel_requested = True
        self._signal(signal.SIGTERM, group=False)

    def kill(self) -> None:
        """Forced: SIGKILL to the whole process group."""
        self.forced = True
        self._signal(signal.SIGKILL, group=True)

    def leave_running(self) -> None:
        """The writer chose to leave the run training after the app exits: stop reading and
        hand the pipes to `cat` drains (own sessions), so the child can keep printing."""
        if not self.running or self.detached:
            return
        assert self.popen is not None
        self.detached = True
        drain = [shutil.which("cat") or "cat"]
        for pipe in (self.popen.stdout, self.popen.stderr):
            if pipe is not None:
                subprocess.Popen(drain, stdin=pipe, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 start_new_session=True)

    def detach(self) -> None:
        """The UI is going away without the writer having chosen (the app closed from code):
        cancel gracefully, and let the child print its last events into drains."""
        if not self.running or self.detached:
            return
        self.cancel()
        self.leave_running()

    def _signal(self, signum: int, *, group: bool) -> None:
        if not self.running:
            return
        assert self.popen is not None
        try:
            if group:
                os.killpg(self.popen.pid, signum)
            else:
                self.popen.send_signal(signum)
        except ProcessLookupError:
            pass  # it exited between the check and the signal


def _read_batches(pipe: Any, stop: Callable[[], bool]) -> Iterator[list[str]]:
    """Non-blank lines of a binary pipe, decoded as UTF-8 (bad bytes replaced), one list per
    read that completed at least one line; polls `stop` while the pipe is quiet."""
    fd = pipe.fileno()
    pending = b""
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while not stop():
            if not selector.select(timeout=POLL_SECONDS):
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            *complete, pending = (pending + chunk).split(b"\n")
            lines = [line.decode("utf-8", errors="replace").rstrip("\r") for line in complete]
            lines = [line for line in lines if line.strip()]
            if lines:
                yield lines
    if pending.strip() and not stop():
        yield [pending.decode("utf-8", errors="replace")]
