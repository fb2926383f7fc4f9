"""The sampler service: the JSON-lines process the Canvas screen watches. Driven in-process
here (the protocol and the jobs); tests/tui/test_sampler_client.py runs the real process."""

from __future__ import annotations

import io
import json

from engine.sample.diffusion import SamplerSettings, sample
from engine.events import run_to_end
from engine.models.loading import load_model
from engine.sample.service import SamplerService

SETTINGS = SamplerSettings(steps=8, gen_length=16, block_length=8, seed=3)


def events_of(output: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in output.getvalue().splitlines()]


def run_requests(*requests: dict) -> list[dict]:
    output = io.StringIO()
    service = SamplerService(output)
    for request in requests:
        service.handle(request)
    service.join()
    return events_of(output)


def test_a_sample_streams_every_step_with_the_text_of_new_tokens_then_the_same_result(tiny_masked_dir):
    request = {"op": "sample", "run": 7, "model": {"path": str(tiny_masked_dir)}, "prompt": "The river",
               "settings": vars(SETTINGS)}
    events = run_requests(request)
    assert [event["event"] for event in events] == ["loaded"] + ["step"] * SETTINGS.steps + ["final"]
    assert all(event["run"] == 7 for event in events)
    assert events[0]["family"] == "masked"

    # Each committed token's text is sent once, with the first frame that commits it.
    sent: dict[int, str] = {}
    for event in events[1:-1]:
        for key, text in event["pieces"].items():
            assert int(key) not in sent
            sent[int(key)] = text
        assert all(token_id in sent for _pos, token_id, _confidence in event["committed"])

    # The same tokens as the sampler called directly: the service changes nothing.
    loaded = load_model(str(tiny_masked_dir))
    frames, final = run_to_end(sample(loaded, "The river", SETTINGS))
    assert events[-1]["token_ids"] == list(final.token_ids)
    assert [event["committed"] for event in events[1:-1]] == [[list(item) for item in frame.committed] for frame in frames]
    assert events[-1]["sampling_seconds"] > 0
    assert set(sent) == set(final.token_ids) and sent[final.token_ids[0]] == loaded.tokenizer.decode([final.token_ids[0]])


def test_the_typewriter_streams_tokens_then_its_result(tiny_llama_dir):
    events = run_requests({"op": "type", "run": 2, "model": {"path": str(tiny_llama_dir)}, "prompt": "Bread",
                           "max_new_tokens": 5})
    kinds = [event["event"] for event in events]
    assert kinds[0] == "loaded" and kinds[-1] == "final"
    tokens = [event for event in events if event["event"] == "token"]
    assert [event["index"] for event in tokens] == list(range(len(tokens))) and 0 < len(tokens) <= 5
    assert "".join(event["text"] for event in tokens).strip() == events[-1]["text"].strip()


def test_a_cancelled_run_stops_and_says_so(tiny_masked_dir):
    # The cancel arrives first (as it can when the writer presses escape at once).
    events = run_requests(
        {"op": "cancel", "run": 4},
        {"op": "sample", "run": 4, "model": {"path": str(tiny_masked_dir)}, "prompt": "x", "settings": vars(SETTINGS)},
    )
    assert [event["event"] for event in events] == ["loaded", "cancelled"]


def test_bad_requests_and_failing_runs_come_back_as_error_events(tmp_path, tiny_masked_dir):
    events = run_requests(
        {"op": "paint", "run": 1},
        {"op": "sample", "run": 2, "model": {"path": str(tmp_path / "nowhere")}, "prompt": "x", "settings": {}},
        {"op": "sample", "run": 3, "model": {"path": str(tiny_masked_dir)}, "prompt": "x",
         "settings": {"gen_length": 30, "block_length": 8}},
    )
    by_run = {event["run"]: event for event in events}
    assert by_run[1] == {"event": "error", "run": 1, "message": "unknown op 'paint'; expected sample, type or cancel"}
    assert by_run[2]["event"] == "error" and "nowhere" in by_run[2]["message"]
    assert by_run[3]["event"] == "error" and "not divisible by block_length" in by_run[3]["message"]


def test_models_stay_loaded_between_runs(tiny_masked_dir):
    output = io.StringIO()
    service = SamplerService(output)
    request = {"op": "sample", "model": {"path": str(tiny_masked_dir)}, "prompt": "x", "settings": vars(SETTINGS)}
    service.handle({**request, "run": 1})
    service.join()
    first = next(iter(service._models.values()))
    service.handle({**request, "run": 2})
    service.join()
    assert list(service._models.values()) == [first]
    finals = [event for event in events_of(output) if event["event"] == "final"]
    assert finals[0]["token_ids"] == finals[1]["token_ids"]
