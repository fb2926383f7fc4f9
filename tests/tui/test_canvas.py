"""The Canvas screen, driven with Pilot: a real sampler run on a tiny masked model, pausing,
scrubbing, saving and replaying the trace, the typewriter, and the error paths."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from textual.widgets import Input, Select, Static

from engine.workspace import Workspace
from tui.app import make_app
from tui.screens.canvas import CanvasScreen
from tui.widgets.canvas_view import MASK, MASK_CURRENT, CanvasHeader, CanvasView
from tui.widgets.typewriter import Typewriter

pytestmark = pytest.mark.anyio
STEPS, GEN_LENGTH, BLOCK_LENGTH = 8, 16, 8


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def workspace(tmp_path, repo_root, tiny_masked_dir, tiny_llama_dir) -> Workspace:
    root = tmp_path / "workspace"
    (root / "data").mkdir(parents=True)
    shutil.copy(repo_root / "data" / "canaries.toml", root / "data" / "canaries.toml")
    (root / "broken-model").mkdir()  # a folder with no config.json: loading it fails in the worker
    (root / "voicebench.toml").write_text(
        f'[models.tiny-masked]\npath = "{tiny_masked_dir}"\nfamily = "masked"\n'
        f'[models.broken]\npath = "broken-model"\nfamily = "masked"\n'
        f'[models.tiny-llama]\npath = "{tiny_llama_dir}"\nfamily = "causal"\n'
        f"[sampler]\nsteps = {STEPS}\ngen_length = {GEN_LENGTH}\nblock_length = {BLOCK_LENGTH}\n",
        encoding="utf-8",
    )
    return Workspace.open(root)


def canvas_text(screen: CanvasScreen) -> str:
    view = screen.query_one(CanvasView)
    return "\n".join(view.render_line(y).text for y in range(view.size.height))


def status(screen: CanvasScreen) -> str:
    return str(screen.query_one("#canvas-status", Static).render())


async def finish_run(pilot, screen: CanvasScreen, timeout: float = 120.0) -> None:
    """Wait until the sampler processes have streamed the run to its end."""
    waited = 0.0
    while screen.busy and waited < timeout:
        await pilot.pause(0.05)
        waited += 0.05
    assert not screen.busy, f"the run did not finish within {timeout} s"
    await pilot.pause()


async def open_canvas(app, pilot) -> CanvasScreen:
    await pilot.press("f3")
    await pilot.pause()
    screen = app.screen
    assert isinstance(screen, CanvasScreen)
    return screen


async def test_live_run_then_pause_scrub_save_and_replay(workspace):
    app = make_app(workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_canvas(app, pilot)
        screen.query_one("#canvas-model", Select).value = "tiny-masked"
        screen.query_one("#canvas-typist", Select).value = "tiny-llama"
        screen.query_one("#canvas-prompt", Input).value = "The river"
        await pilot.press("enter")
        await finish_run(pilot, screen)

        timeline = screen.timeline
        assert timeline is not None and timeline.final is not None
        assert timeline.steps == STEPS
        await pilot.press("end")
        assert screen.step == STEPS
        text = canvas_text(screen)
        assert MASK not in text and MASK_CURRENT not in text
        assert f"step {STEPS}/{STEPS}" in str(screen.query_one(CanvasHeader).render())

        # Scrubbing pauses and brings the masks of earlier steps back.
        await pilot.press("left", "left", "left", "left", "left")
        assert screen.paused and screen.step == STEPS - 5
        assert MASK_CURRENT in canvas_text(screen) or MASK in canvas_text(screen)
        masks_back = canvas_text(screen).count("▒") + canvas_text(screen).count("░")
        await pilot.press("right_square_bracket", "full_stop")
        assert screen.step == STEPS - 3
        assert canvas_text(screen).count("▒") + canvas_text(screen).count("░") < masks_back
        await pilot.press("home")
        assert screen.step == 0
        assert canvas_text(screen).count("▒") == 2 * BLOCK_LENGTH  # block 0, all masked, 2 cells each

        # The typewriter typed the same prompt beside the canvas.
        assert len(screen.query_one(Typewriter).pieces) > 0

        # s → dialog with a default path under runs/traces → enter saves.
        final_ids = list(timeline.final.token_ids)
        await pilot.press("s")
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        traces = list((workspace.runs_dir / "traces").glob("*.jsonl"))
        assert len(traces) == 1
        assert "saved runs/traces/" in status(screen)

        # o → dialog proposes the newest trace → enter replays it: same final tokens.
        await pilot.press("o")
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        assert screen.timeline is not timeline
        await pilot.press("end")
        assert screen.timeline.ids_at(screen.step) == final_ids
        assert MASK not in canvas_text(screen)
        assert screen.query_one("#canvas-prompt", Input).value == "The river"


async def test_replay_plays_forward_at_speed_and_pause_toggles(workspace):
    app = make_app(workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_canvas(app, pilot)
        screen.query_one("#canvas-model", Select).value = "tiny-masked"
        screen.query_one("#canvas-typist", Select).value = "__off__"
        screen.query_one("#canvas-prompt", Input).value = "Bread"
        await pilot.press("enter")
        await finish_run(pilot, screen)
        saved = screen.save_trace("runs/traces/bread.jsonl")
        assert saved is not None and saved.exists()

        assert screen.replay_trace("runs/traces/bread.jsonl", play=False)
        assert screen.paused and screen.step == 0
        await pilot.press("plus", "plus")
        assert screen.speed > 20
        await pilot.press("space")  # play
        assert not screen.paused
        while screen.step < STEPS:  # the ticker advances the replay; no sleeping on wall time
            await pilot.pause()
        assert screen._state() == "done"


async def test_bad_settings_show_a_message_and_start_nothing(workspace):
    app = make_app(workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_canvas(app, pilot)
        screen.query_one("#canvas-prompt", Input).value = "The river"
        screen.query_one("#setting-gen_length", Input).value = "30"
        await pilot.pause()
        assert "not divisible by block_length" in str(screen.query_one("#settings-error", Static).render())
        screen.query_one(CanvasView).focus()
        await pilot.press("enter")
        await pilot.pause()
        assert "gen_length 30 is not divisible by block_length 8" in status(screen)
        assert screen.live_run is None and screen.timeline is None

        screen.query_one("#setting-gen_length", Input).value = "16"
        screen.query_one("#setting-temperature", Input).value = "warm"
        await pilot.press("enter")
        assert "temperature: 'warm' is not a number" in status(screen)


async def test_missing_model_and_bad_trace_are_shown_not_raised(workspace, tmp_path):
    app = make_app(workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_canvas(app, pilot)
        assert screen.query_one("#canvas-model", Select).value == "tiny-masked"  # on disk: the default
        screen.query_one("#canvas-model", Select).value = "demo-diffusion"  # not in this workspace
        screen.query_one("#canvas-typist", Select).value = "__off__"
        screen.query_one("#canvas-prompt", Input).value = "The river"
        await pilot.press("enter")
        await finish_run(pilot, screen)
        assert "data/models/demo-diffusion: no such model folder in workspace" in status(screen)
        assert screen.live_run is None and screen._state() == "idle"

        screen.query_one("#canvas-model", Select).value = "broken"
        await pilot.press("enter")
        await finish_run(pilot, screen)
        assert "broken-model: folder has no config.json" in status(screen)
        assert screen._state() == "failed"

        bad = tmp_path / "bad.jsonl"
        bad.write_text('{"event":"step","step":1,"block":0,"committed":[[0,5,0.5]],"masked":3}\n{oops\n',
                       encoding="utf-8")
        assert not screen.replay_trace(str(bad))
        assert f"{bad}:2: not valid JSON" in status(screen)
        assert app.is_running


async def test_canary_fills_prompt_and_fits_length(workspace):
    app = make_app(workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_canvas(app, pilot)
        canary = screen.canaries[0]
        screen.query_one("#canvas-canary", Select).value = canary.id
        await pilot.pause()
        assert screen.query_one("#canvas-prompt", Input).value == canary.prompt
        assert screen.query_one("#setting-gen_length", Input).value == str(canary.max_new_tokens)
        settings = screen.query_one("#canvas-settings").settings()  # valid after fitting
        assert settings.gen_length == canary.max_new_tokens
        assert settings.gen_length % settings.block_length == 0


async def test_settings_save_as_a_preset_that_sweep_and_canary_read_back(workspace):
    from textual.widgets import Checkbox

    from engine.sample.sweep import apply_preset, plan_sweep, preset, presets_path
    from tui.widgets.preset_dialog import ConfirmOverwriteDialog, PresetNameDialog

    app = make_app(workspace)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_canvas(app, pilot)
        screen.query_one("#canvas-canary", Select).value = "river-short"  # 96 tokens: block 8, 12 steps
        screen.query_one("#setting-temperature", Input).value = "0.7"
        screen.query_one("#setting-deprioritise_eos", Checkbox).value = True
        await pilot.pause()
        await pilot.press("ctrl+s")  # from the prompt field, as a writer would
        await pilot.pause()
        assert isinstance(app.screen, PresetNameDialog)
        await pilot.press(*"calm 64", "enter")  # a space: refused, the dialog stays
        await pilot.pause()
        assert isinstance(app.screen, PresetNameDialog)
        assert "'calm 64' cannot name a preset" in str(app.screen.query_one("#preset-error", Static).render())
        assert not presets_path(workspace).exists()
        await pilot.press("ctrl+u", *"river-calm", "enter")
        await pilot.pause()
        assert app.screen is screen
        assert "saved preset 'river-calm' to presets.toml" in status(screen)

        # What `voicebench sweep --preset` and `voicebench canary --preset` read back.
        saved = {"temperature": 0.7, "steps": 12, "block_length": 8, "cfg_scale": 0.0, "remasking": "low_confidence",
                 "eos": "deprioritise", "use_template": True}
        assert preset(workspace, "river-calm") == saved
        sampler = apply_preset(workspace, "tiny-masked", "river-calm").section("sampler")
        assert (sampler["temperature"], sampler["steps"], sampler["block_length"]) == (0.7, 12, 8)
        assert sampler["deprioritise_eos"] is True and sampler["suppress_eos"] is False
        plan = plan_sweep(workspace, "tiny-masked", {"temperature": ["0", "0.7"]}, base=preset(workspace, "river-calm"),
                          canaries=["river-short"])
        assert [setting.label for setting in plan.settings] == ["tiny-masked · base", "tiny-masked · T=0.0"]

        # The same name again: asked first; "n" keeps the old one and goes back to the name.
        screen.query_one("#setting-temperature", Input).value = "0.2"
        await pilot.press("ctrl+s", *"river-calm", "enter")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmOverwriteDialog)
        await pilot.press("n")
        await pilot.pause()
        assert isinstance(app.screen, PresetNameDialog)
        assert app.screen.query_one("#preset-name", Input).value == "river-calm"
        assert preset(workspace, "river-calm")["temperature"] == 0.7
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is screen and "preset not saved" in status(screen)
        await pilot.press("ctrl+s", *"river-calm", "enter", "y")
        await pilot.pause()
        assert preset(workspace, "river-calm") == {**saved, "temperature": 0.2}

        # Settings the sampler refuses are not saved.
        screen.query_one("#setting-block_length", Input).value = "7"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.screen is screen and "fix them before saving a preset" in status(screen)


def test_screen_module_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, tui.screens.canvas; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=Path(__file__).resolve().parents[2])
    assert result.stdout.strip() == "False"


DEMO_DIFFUSION = Path(__file__).resolve().parents[2] / "data" / "models" / "demo-diffusion"
DEMO_AR = DEMO_DIFFUSION.parent / "demo-ar"


@pytest.mark.skipif(not (DEMO_DIFFUSION / "config.json").exists(), reason="demo models not built")
async def test_demo_models_paint_type_and_show_their_signals(tmp_path):
    # The real demo models: the canvas fills with words, the header's cascade warning follows
    # the frame's live signals, and demo-ar types beside it.
    root = tmp_path / "demo"
    root.mkdir()
    (root / "voicebench.toml").write_text(
        f'[models.demo-diffusion]\npath = "{DEMO_DIFFUSION}"\nfamily = "masked"\n'
        f'[models.demo-ar]\npath = "{DEMO_AR}"\nfamily = "causal"\n'
        "[sampler]\nsteps = 8\ngen_length = 16\nblock_length = 16\n",
        encoding="utf-8",
    )
    app = make_app(Workspace.open(root))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_canvas(app, pilot)
        assert screen.query_one("#canvas-model", Select).value == "demo-diffusion"
        assert screen.query_one("#canvas-typist", Select).value == "demo-ar"
        screen.query_one("#canvas-prompt", Input).value = "Write a short note about the river."
        await pilot.press("enter")
        await finish_run(pilot, screen)
        await pilot.press("end")
        assert screen.timeline.steps == 8 and MASK not in canvas_text(screen)
        assert any(character.isalpha() for character in canvas_text(screen))
        signals = screen.timeline.frame(8).signals
        assert ("CASCADE" in str(screen.query_one(CanvasHeader).render())) == bool(signals["cascade"])
        assert screen.query_one(Typewriter).text.strip()


def frames_for(gen_length: int, per_step: int) -> list:
    from engine.sample.diffusion import StepFrame

    frames, pos = [], 0
    for step in range(1, gen_length // per_step + 1):
        committed = tuple((p, 100 + p, 0.5) for p in range(pos, pos + per_step))
        pos += per_step
        frames.append(StepFrame(step=step, block=0, committed=committed, masked=gen_length - pos, forward_passes=step))
    return frames


def new_cells(view: CanvasView) -> set[int]:
    """Positions drawn in the "committed just now" style (the pieces are `w<pos>`)."""
    import re

    from tui.widgets.canvas_view import NEW_STYLE

    return {int(number) for row in range(len(view.rows)) for segment in view._render_row(row)
            if segment.style == NEW_STYLE for number in re.findall(r"w(\d+)", segment.text)}


async def test_frames_drawn_together_all_show_as_new_and_scrubbing_shows_one_step(workspace):
    from engine.sample.trace import Timeline
    from tui.screens.canvas import RunInfo

    app = make_app(workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_canvas(app, pilot)
        timeline = Timeline(16, {100 + pos: f"w{pos}" for pos in range(16)})
        for frame in frames_for(16, 2):
            timeline.add(frame)
        screen._show_timeline(timeline, RunInfo("tiny-masked", "x", {"block_length": 16}), paused=True)
        view = screen.query_one(CanvasView)
        view.show_step(3, batch=True)  # a paint that covers frames 1-3 (a live run outpacing the display)
        assert new_cells(view) == set(range(6))
        view.show_step(4, batch=True)
        assert new_cells(view) == {6, 7}
        view.show_step(2)  # scrubbing back: that step's commits
        assert new_cells(view) == {2, 3}
        view.show_step(8)  # jumping to the end: the last step's commits only
        assert new_cells(view) == {14, 15}


async def test_a_sampler_process_that_dies_mid_run_fails_the_run_with_its_last_words(workspace):
    app = make_app(workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_canvas(app, pilot)
        screen.query_one("#canvas-typist", Select).value = "__off__"
        screen.query_one("#canvas-prompt", Input).value = "The river"
        await pilot.press("enter")
        assert screen.live_run is not None
        # What the reader thread reports when the child is killed (e.g. out of memory).
        screen._painter_event({"event": "exited", "code": -9, "stderr": ["loading weights", "Killed"]})
        await pilot.pause()
        assert screen._state() == "failed" and not screen.busy
        assert "the sampler process stopped (exit code -9): Killed" in status(screen)


async def test_at_80_columns_the_painter_gets_the_width_and_panels_toggle(workspace):
    app = make_app(workspace)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_canvas(app, pilot)
        painter, typewriter = screen.query_one("#canvas-painter"), screen.query_one("#canvas-typewriter")
        side = screen.query_one("#canvas-side")
        assert not typewriter.display and painter.size.width >= 46  # was 14 beside a 30-column typewriter
        await pilot.press("ctrl+t")  # the writer wants the typewriter after all
        await pilot.pause()
        assert typewriter.display and typewriter.size.width > 0
        await pilot.press("ctrl+b")  # and hides the run panel to make room
        await pilot.pause()
        assert not side.display and painter.size.width >= 40
        await pilot.press("ctrl+t", "ctrl+b")
        await pilot.pause()
        assert not typewriter.display and side.display
        await pilot.resize_terminal(120, 40)  # comfortable: a toggle holds, the width shows the rest
        await pilot.pause()
        assert not typewriter.display and painter.size.width >= 50
        await pilot.press("ctrl+t")
        await pilot.pause()
        assert typewriter.display
