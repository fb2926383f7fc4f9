"""Snapshot of the Canvas screen mid-run, made deterministic by replaying a fixed trace to a
fixed step (no live timing, no model).

Regenerate (only these) with `pytest tests/tui/test_snapshots_canvas.py --snapshot-update`
and look at the SVG before committing it.
"""

from __future__ import annotations

import dataclasses
import shutil

import pytest

from engine.sample.diffusion import FinalFrame, SamplerSettings, StepFrame
from engine.sample.trace import TraceHeader, save_trace
from engine.workspace import Workspace
from tests.tui.waiting import workers_done
from tui.app import make_app

SIZES = pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])  # SSH default, comfortable
PROMPT = "Write a short note about the river the morning after a flood."
REPLY = (
    "The river came down brown and fast, and by morning it had taken the bottom step of the ferry "
    "stairs. You learn to read it the way you read a face: plainly, without hurry. I went out with "
    "the bucket and the broom, the way my mother did."
)
GEN_LENGTH, BLOCK_LENGTH, STEPS = 64, 16, 32
EOS = 0


def fixed_trace_events() -> tuple[TraceHeader, list[StepFrame], FinalFrame]:
    """A made-up but plausible run: words as tokens, EOS padding at the end, two commits a
    step in an order that mixes confident early words with hesitant ones."""
    words = REPLY.split(" ")
    pieces = [words[0]] + [" " + word for word in words[1:]]
    token_ids = [100 + index for index in range(len(pieces))][:GEN_LENGTH]
    token_ids += [EOS] * (GEN_LENGTH - len(token_ids))
    tokens = {100 + index: piece for index, piece in enumerate(pieces)}
    tokens[EOS] = "<|endoftext|>"
    frames: list[StepFrame] = []
    masked = GEN_LENGTH
    step = 0
    for block in range(GEN_LENGTH // BLOCK_LENGTH):
        offsets = sorted(range(BLOCK_LENGTH), key=lambda offset: (offset * 7) % BLOCK_LENGTH)
        for pair in range(0, BLOCK_LENGTH, 2):
            step += 1
            positions = sorted(block * BLOCK_LENGTH + offset for offset in offsets[pair:pair + 2])
            committed = tuple((pos, token_ids[pos], round(0.95 - 0.06 * ((pos * 5) % 16), 3)) for pos in positions)
            masked -= len(committed)
            frames.append(StepFrame(
                step=step, block=block, committed=committed, masked=masked, forward_passes=step,
                signals={"repeated_ngram_share": 0.0 if step < 12 else 0.04, "longest_run": 1,
                         "other_script_share": 0.0, "eos_share": round(0.02 * max(0, step - 20), 4),
                         "cascade": False},
            ))
    final = FinalFrame(prompt_ids=(1, 2, 3), token_ids=tuple(token_ids), text=REPLY, forward_passes=STEPS,
                       seconds=2.5)
    settings = SamplerSettings(steps=STEPS, gen_length=GEN_LENGTH, block_length=BLOCK_LENGTH)
    header = TraceHeader(model="demo-diffusion", prompt=PROMPT, settings=dataclasses.asdict(settings),
                         family="masked", tokens=tokens)
    return header, frames, final


@pytest.fixture
def app(tmp_path, repo_root):
    # A workspace without models: the model pickers read "(missing)" whatever is built in data/.
    root = tmp_path / "demo"
    (root / "data").mkdir(parents=True)
    shutil.copy(repo_root / "data" / "canaries.toml", root / "data" / "canaries.toml")
    save_trace(root / "runs" / "traces" / "flood.jsonl", *fixed_trace_events())
    return make_app(Workspace.open(root))


async def _quiet(pilot) -> None:
    """Drop toasts from other screens (the Pairs screen warns about the model-less workspace
    with its temp path), which would make the snapshot depend on the machine and on timing."""
    await workers_done(pilot.app)
    await pilot.pause()
    pilot.app.clear_notifications()
    await pilot.pause()


@SIZES
def test_canvas_mid_run_from_a_fixed_trace(snap_compare, size, app):
    async def run_before(pilot) -> None:
        await pilot.press("f3")
        await pilot.pause()
        screen = pilot.app.screen
        assert screen.replay_trace("runs/traces/flood.jsonl", play=False)
        screen.show_step(13)
        await _quiet(pilot)

    assert snap_compare(app, run_before=run_before, terminal_size=size)


@SIZES
def test_canvas_idle(snap_compare, size, app):
    async def run_before(pilot) -> None:
        await pilot.press("f3")
        for _ in range(3):  # let the app's other screens settle too
            await pilot.pause()
            await workers_done(pilot.app)
        pilot.app.screen.query_one("#canvas-prompt").cursor_blink = False  # a blink is a coin toss
        await _quiet(pilot)

    assert snap_compare(app, run_before=run_before, terminal_size=size)
