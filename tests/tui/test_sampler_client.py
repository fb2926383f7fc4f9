"""The app's end of the sampler process: a real `engine.sample.service` child streaming a
run, cancelled runs, and a child that dies (its exit and last stderr line are reported)."""

from __future__ import annotations

import queue
import signal

from engine.sample.diffusion import SamplerSettings
from tui.sampler_client import SamplerProcess

SETTINGS = vars(SamplerSettings(steps=4, gen_length=8, block_length=8))
TIMEOUT = 120  # seconds: the child imports torch first


def next_event(events: queue.Queue, kind: str) -> dict:
    while True:
        event = events.get(timeout=TIMEOUT)
        if event["event"] == kind:
            return event


def test_a_run_streams_from_the_child_and_closing_ends_it(tiny_masked_dir):
    events: queue.Queue = queue.Queue()
    process = SamplerProcess(events.put)
    try:
        process.send({"op": "sample", "run": 1, "model": {"path": str(tiny_masked_dir)}, "prompt": "The river",
                      "settings": SETTINGS})
        final = next_event(events, "final")
        assert final["run"] == 1 and len(final["token_ids"]) == 8
        assert process.running  # kept, with its model loaded, for the next run
    finally:
        process.close()
    exited = next_event(events, "exited")
    assert exited["code"] == 0 and not process.running


def test_a_child_that_dies_is_reported_and_the_next_request_starts_a_new_one(tiny_masked_dir):
    events: queue.Queue = queue.Queue()
    process = SamplerProcess(events.put)
    try:
        process.start()
        next_event(events, "ready")
        process._process.send_signal(signal.SIGKILL)
        exited = next_event(events, "exited")
        assert exited["code"] == -signal.SIGKILL
        assert not process.running

        process.send({"op": "sample", "run": 2, "model": {"path": str(tiny_masked_dir)}, "prompt": "x",
                      "settings": SETTINGS})
        assert next_event(events, "final")["run"] == 2
    finally:
        process.close()
