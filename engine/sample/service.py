"""A sampler in its own process, driven by JSON lines: what the Canvas screen watches.

    python -m engine.sample.service     # reads requests on stdin, writes events on stdout

Why a process: the sampler's Python work (one forward pass per step, dispatching many
small torch ops) and the UI's drawing both need the GIL. In one process on a 2-core
machine, watching a run made it 1.13-1.2x slower; in its own process the sampler keeps
its pace whatever the screen does, a crash or an out-of-memory error cannot take the app
down, and the app itself never imports torch. Models stay loaded between runs.

Requests, one JSON object a line (`run` is the caller's id for the job):
    {"op": "sample", "run": 1, "model": {path, family, trust_remote_code, load_in_4bit},
     "prompt": "…", "settings": {SamplerSettings fields}}
    {"op": "type", "run": 2, "model": {…}, "prompt": "…", "max_new_tokens": 64,
     "temperature": 0.0, "seed": 0, "use_template": true}
    {"op": "cancel", "run": 1}
End of input stops every job and the process.

Events, one JSON object a line, each with the request's `run`:
    {"event": "ready"}                                   once, when imports are done
    {"event": "loaded", "run", "family"}
    {"event": "step", …StepFrame fields…, "pieces": {token_id: text}}   text of ids not sent before
    {"event": "token", …TokenFrame fields…}
    {"event": "final", …FinalFrame fields…, "sampling_seconds"}        the sampling loop alone
    {"event": "cancelled", "run"}   {"event": "error", "run", "message"}
"""

from __future__ import annotations

import io
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, Any

from engine.sample.diffusion import SamplerSettings
from engine.library_noise import quiet_library_noise

# Leave a core to the app drawing the frames (on a GPU the forward pass barely uses the CPU).
CPU_THREADS = max(1, (os.cpu_count() or 2) - 1)


class SamplerService:
    """Runs each request in its own thread; one lock keeps output lines whole."""

    def __init__(self, output: IO[str]) -> None:
        self.output = output
        self._write_lock = threading.Lock()
        self._load_lock = threading.Lock()  # one load at a time: transformers' lazy imports race
        self._models: dict[tuple[Any, ...], Any] = {}
        self._cancelled: dict[Any, threading.Event] = {}
        self._threads: list[threading.Thread] = []

    def emit(self, payload: dict[str, Any]) -> None:
        line = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        with self._write_lock:
            self.output.write(line + "\n")
            self.output.flush()

    def handle(self, request: dict[str, Any]) -> None:
        op, run = request.get("op"), request.get("run")
        if op == "cancel":
            self._cancelled.setdefault(run, threading.Event()).set()
            return
        jobs: dict[str, Callable[[dict[str, Any], threading.Event], None]] = {"sample": self._sample, "type": self._type}
        if op not in jobs:
            self.emit({"event": "error", "run": run, "message": f"unknown op {op!r}; expected sample, type or cancel"})
            return
        cancelled = self._cancelled.setdefault(run, threading.Event())
        thread = threading.Thread(target=self._guarded, args=(jobs[op], request, cancelled), daemon=True)
        self._threads.append(thread)
        thread.start()

    def stop_all(self) -> None:
        for event in self._cancelled.values():
            event.set()
        self.join()

    def join(self) -> None:
        """Wait for every job to end."""
        for thread in self._threads:
            thread.join()

    def _guarded(self, job: Callable[[dict[str, Any], threading.Event], None], request: dict[str, Any],
                 cancelled: threading.Event) -> None:
        try:
            job(request, cancelled)
        except Exception as error:  # noqa: BLE001 - reported to the app, never kills the service
            self.emit({"event": "error", "run": request.get("run"), "message": describe(error)})

    def _load(self, model: dict[str, Any]) -> Any:
        from engine.models.loading import entry_from_request, load_entry

        entry = entry_from_request(model)
        with self._load_lock:
            if entry not in self._models:
                self._models[entry] = load_entry(entry)
            return self._models[entry]

    def _sample(self, request: dict[str, Any], cancelled: threading.Event) -> None:
        from engine.sample.diffusion import sample

        run = request.get("run")
        settings = SamplerSettings(**request.get("settings", {}))
        loaded = self._load(request["model"])
        stream = sample(loaded, request["prompt"], settings)
        self.emit({"event": "loaded", "run": run, "family": loaded.family})
        sent: set[int] = set()
        started = time.perf_counter()
        while not cancelled.is_set():
            try:
                frame = next(stream)
            except StopIteration as stop:
                seconds = time.perf_counter() - started
                self.emit({**stop.value.to_dict(), "run": run, "sampling_seconds": seconds})
                return
            pieces = {}
            for _pos, token_id, _confidence in frame.committed:
                if token_id not in sent:
                    sent.add(token_id)
                    pieces[token_id] = loaded.tokenizer.decode([token_id], skip_special_tokens=False)
            self.emit({**frame.to_dict(), "run": run, "pieces": pieces})
        self.emit({"event": "cancelled", "run": run})

    def _type(self, request: dict[str, Any], cancelled: threading.Event) -> None:
        from engine.sample.causal import stream_causal

        run = request.get("run")
        loaded = self._load(request["model"])
        stream = stream_causal(loaded, request["prompt"], int(request.get("max_new_tokens", 64)),
                               float(request.get("temperature", 0.0)), int(request.get("seed", 0)),
                               use_template=bool(request.get("use_template", True)))
        self.emit({"event": "loaded", "run": run, "family": loaded.family})
        while not cancelled.is_set():
            try:
                frame = next(stream)
            except StopIteration as stop:
                self.emit({**stop.value.to_dict(), "run": run})
                return
            self.emit({**frame.to_dict(), "run": run})
        self.emit({"event": "cancelled", "run": run})


def describe(error: BaseException) -> str:
    """A user-facing message: our own errors already say what to do."""
    message = str(error) or type(error).__name__
    known = ("ModelNotFoundError", "RemoteCodeRefused", "SamplerSettingsError", "TraceError")
    return message if type(error).__name__ in known else f"{type(error).__name__}: {message}"


def serve(requests: IO[str], output: IO[str]) -> None:
    """Answer requests until end of input."""
    import torch

    quiet_library_noise()
    if not torch.cuda.is_available():
        torch.set_num_threads(min(torch.get_num_threads(), CPU_THREADS))
    import engine.sample.diffusion  # noqa: F401 - imported here, before "ready", so a first run starts at once
    import engine.sample.causal  # noqa: F401

    service = SamplerService(output)
    service.emit({"event": "ready"})
    for line in requests:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
        except json.JSONDecodeError as error:
            service.emit({"event": "error", "run": None, "message": f"bad request line: {error}"})
            continue
        service.handle(request)
    service.stop_all()


def main() -> None:
    # The protocol gets its own copy of stdout; file descriptor 1 then points at stderr, so
    # a stray print (remote model code, a C library) can never corrupt an event line.
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    serve(io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8"), protocol)
    # Stdin closed: every run has ended and its events are written. Skip the interpreter's
    # teardown of torch (seconds on a busy machine), which would outlast the app's grace time.
    protocol.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
