"""Trace files: a real sampler run round-trips through save/load, bad files name file:line,
and the replay timeline answers "what was on the canvas at step s"."""

from __future__ import annotations

import dataclasses
import json

import pytest

from engine.sample.diffusion import FinalFrame, SamplerSettings, StepFrame
from engine.sample.trace import (
    Timeline, TraceError, TraceHeader, default_trace_path, load_trace, save_trace, trace_lines,
)

SETTINGS = SamplerSettings(steps=4, gen_length=8, block_length=4)


def _frames() -> tuple[list[StepFrame], FinalFrame]:
    """A hand-made 4-step run over 8 positions: two commits per step, block by block."""
    order = [(0, 1), (2, 3), (4, 5), (6, 7)]
    frames = [
        StepFrame(step=index + 1, block=index // 2, committed=((a, 10 + a, 0.9), (b, 10 + b, 0.4)),
                  masked=8 - 2 * (index + 1), forward_passes=index + 1, signals={"cascade": False})
        for index, (a, b) in enumerate(order)
    ]
    final = FinalFrame(prompt_ids=(1, 2), token_ids=tuple(range(10, 18)), text="x", forward_passes=4, seconds=0.1)
    return frames, final


def _header() -> TraceHeader:
    return TraceHeader(model="demo", prompt="Hi", settings=dataclasses.asdict(SETTINGS),
                       family="masked", tokens={10 + i: f"t{i}" for i in range(8)})


def test_real_run_round_trips(tiny_masked_dir, tmp_path):
    from engine.sample.diffusion import sample
    from engine.models.loading import load_model

    loaded = load_model(str(tiny_masked_dir))
    stream = sample(loaded, "The river", SETTINGS)
    frames = []
    while True:
        try:
            frames.append(next(stream))
        except StopIteration as stop:
            final = stop.value
            break
    header = TraceHeader(model="tiny", prompt="The river", settings=dataclasses.asdict(SETTINGS), family="masked")
    path = save_trace(tmp_path / "traces" / "run.jsonl", header, frames, final)

    lines = path.read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0])["event"] == "trace"
    # After the header, the lines are exactly what `generate --json` prints.
    assert lines[1:] == [frame.to_json() for frame in frames] + [final.to_json()]

    trace = load_trace(path)
    assert trace.frames == frames
    assert trace.final == final
    assert trace.header.sampler_settings == SETTINGS
    timeline = Timeline.from_trace(trace)
    assert timeline.ids_at(timeline.steps) == list(final.token_ids)
    assert [leftover for leftover in path.parent.iterdir() if leftover.suffix == ".tmp"] == []


def test_header_is_optional_and_final_too(tmp_path):
    frames, _final = _frames()
    path = tmp_path / "partial.jsonl"
    path.write_text("\n".join(trace_lines(None, frames[:2], None)) + "\n", encoding="utf-8")
    trace = load_trace(path)
    assert trace.header is None and trace.final is None
    assert len(trace.frames) == 2
    assert trace.gen_length == 4  # positions 0..3 were committed


def test_timeline_steps_and_changes():
    frames, final = _frames()
    timeline = Timeline(8)
    for frame in frames:
        timeline.add(frame)
    assert timeline.ids_at(0) == [None] * 8
    assert timeline.ids_at(1) == [10, 11] + [None] * 6
    assert timeline.token_at(7, 3) is None and timeline.token_at(7, 4) == 17
    assert timeline.ids_at(4) == list(final.token_ids)
    # Moving 1 → 3 redraws what filled in steps 2..3 and step 1's highlighted cells.
    assert timeline.changed_positions(3, 1) == {0, 1, 2, 3, 4, 5}
    assert timeline.changed_positions(2, 2) == {2, 3}


def test_header_tokens_round_trip(tmp_path):
    frames, final = _frames()
    path = save_trace(tmp_path / "t.jsonl", _header(), frames, final)
    trace = load_trace(path)
    assert trace.header.tokens[13] == "t3"
    assert Timeline.from_trace(trace).tokens == trace.header.tokens


def _write(tmp_path, lines):
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda lines: lines.__setitem__(2, "{not json"), r"bad\.jsonl:3: not valid JSON"),
        (lambda lines: lines.__setitem__(2, lines[2].replace('"step":2', '"step":5')), r":3: step 5 where step 2"),
        (lambda lines: lines.__setitem__(3, lines[3].replace("[4,14,", "[0,14,")), r":4: position 0 was already committed on line 2"),
        (lambda lines: lines.__setitem__(1, lines[1].replace("[0,10,", "[99,10,")), r":2: committed position 99 is outside"),
        (lambda lines: lines.append(lines[1]), r":7: a 'step' event after the final"),
        (lambda lines: lines.insert(2, lines[0]), r":3: the trace header must be the first line"),
        (lambda lines: lines.__setitem__(1, '{"event": "bogus"}'), r":2: unknown event 'bogus'"),
        (lambda lines: lines.__setitem__(1, lines[1].replace('"masked":6,', "")), r":2: missing field 'masked'"),
        (lambda lines: lines.__setitem__(0, lines[0].replace('"block_length":4', '"block_length":3')),
         r":1: field 'settings' is not usable: gen_length 8 is not divisible"),
    ],
)
def test_bad_traces_name_file_and_line(tmp_path, mutate, message):
    frames, final = _frames()
    lines = trace_lines(_header(), frames, final)
    mutate(lines)
    with pytest.raises(TraceError, match=message):
        load_trace(_write(tmp_path, lines))


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(TraceError, match="no such trace file"):
        load_trace(tmp_path / "nope.jsonl")
    with pytest.raises(TraceError, match="empty"):
        load_trace(_write(tmp_path, [""]))


def test_default_path_is_readable(tmp_path):
    path = default_trace_path(tmp_path, "data/models/demo-diffusion", "Write a short note, please!", now=0)
    assert path.parent == tmp_path
    assert path.name.endswith("-demo-diffusion-write-a-short-note-please.jsonl")
