"""Train screen: the loss plot, run folders, the child process (fake and real), cancel, crashes."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
from textual.widgets import Select

from engine.workspace import Workspace
from tests.tui.train_fixtures import write_run, write_two_runs, write_workspace
from tests.tui.waiting import workers_done
from tui.app import make_app
from tui.screens.train import TrainScreen
from tui.train_process import ENGINE_COMMAND, build_command, launcher, parse_line
from tui.widgets.loss_plot import BRAILLE_BASE, Y_LABEL_WIDTH, Series, plot_lines
from tui.widgets.train_runs_list import RunsTable

pytestmark = pytest.mark.anyio
FAKE_CHILD = Path(__file__).with_name("fake_train_child.py")
WAIT_SECONDS = 120  # upper bound for a real run on a busy 2-core machine; never reached when all is well


@pytest.fixture
def anyio_backend():
    return "asyncio"


def fake_child(monkeypatch, mode: str, *, gates: tuple[str, ...] = (), control: Path | None = None,
               canaries: int = 1) -> None:
    """Launch the fake trainer; it waits at each of `gates` until a file of that name appears in
    `control` (see tests/tui/fake_train_child.py)."""
    monkeypatch.setattr(TrainScreen, "child_command", (sys.executable, str(FAKE_CHILD), mode))
    monkeypatch.setenv("FAKE_TRAIN_GATES", ",".join(gates))
    monkeypatch.setenv("FAKE_TRAIN_CANARIES", str(canaries))
    if control is not None:
        control.mkdir(parents=True, exist_ok=True)
        monkeypatch.setenv("FAKE_TRAIN_CONTROL", str(control))


async def wait_until(pilot, condition, seconds: float = WAIT_SECONDS) -> None:
    """Let the app process messages until `condition()` holds (fails the test on timeout)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the Train screen"
        await pilot.pause(0.05)


async def run_to_exit(pilot, screen) -> None:
    """Start a run with ctrl+s and let it end: the child has exited and the screen's workers
    (its reader and exit handler) are done."""
    await pilot.press("ctrl+s")
    await wait_until(pilot, lambda: screen.live.exit_code is not None)
    await workers_done(pilot.app)
    await pilot.pause()


async def open_train(pilot) -> TrainScreen:
    await pilot.press("f2")
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, TrainScreen)
    await workers_done(pilot.app)
    await pilot.pause()
    return screen


# The loss plot ----------------------------------------------------------------------------------
def _cell(line, column: int) -> int:
    return ord(line.plain[Y_LABEL_WIDTH + column]) - BRAILLE_BASE


def test_plot_draws_known_points_at_their_dots():
    # 5 cells x 2 rows = 10 x 8 dots; (0, 2) is the top-left dot, (10, 0) the bottom-right one.
    lines = plot_lines([Series("train", ((0.0, 2.0), (10.0, 0.0)), "cyan")], Y_LABEL_WIDTH + 5, 5, x_max=10)
    legend, top, bottom, axis, labels = lines
    assert "train" in legend.plain
    assert _cell(top, 0) & 0x01  # dot row 0, dot column 0
    assert _cell(bottom, 4) & 0x80  # dot row 7, dot column 9
    assert top.plain[Y_LABEL_WIDTH + 4] == " "  # the line descends: nothing top-right
    assert bottom.plain[Y_LABEL_WIDTH] == " "  # …and nothing bottom-left
    assert top.plain.startswith("     2┤") and bottom.plain.startswith("     0┤")
    assert labels.plain.split() == ["0", "10"]  # too narrow for "step 10"


def test_plot_scales_x_to_max_steps_and_handles_single_and_no_points():
    lines = plot_lines([Series("val", ((5.0, 3.0),), "yellow", marker=True)], Y_LABEL_WIDTH + 10, 6, x_max=10)
    dots = [(row, column) for row, line in enumerate(lines[1:4]) for column in range(10)
            if line.plain[Y_LABEL_WIDTH + column] != " "]
    # Step 5 of 10 lands mid-plot: dot column 10 of 0..19 is cell 5; a lone value sits mid-height.
    assert dots == [(1, 5)]
    empty = plot_lines([Series("train", (), "cyan")], 30, 6)
    assert "no loss points yet" in empty[-1].plain


# The child process protocol -------------------------------------------------------------------------
def test_command_carries_the_form_settings_or_only_the_run_to_resume(tmp_path):
    command = build_command({"model": "demo-ar", "max_steps": 6, "lr": None, "lora_targets": ["q_proj", "v_proj"]},
                            workspace=tmp_path, base=("python", "-m", "engine.train"))
    assert command == ["python", "-m", "engine.train", "--workspace", str(tmp_path), "--model", "demo-ar",
                       "--max-steps", "6", "--lora-targets", "q_proj,v_proj", "--json"]
    resume = build_command({"model": "x"}, workspace=tmp_path, resume="runs/a", base=("python",))
    assert resume == ["python", "--workspace", str(tmp_path), "--resume", "runs/a", "--json"]


def test_several_processes_launch_under_torchrun_and_one_runs_plain():
    assert launcher(1) == list(ENGINE_COMMAND)
    several = launcher(4)
    assert several[1:4] == ["-m", "torch.distributed.run", "--standalone"]
    assert "--nproc_per_node=4" in several and several[-2:] == ["-m", "engine.train"]
    assert launcher(4, ("python", "fake.py")) == ["python", "fake.py"]  # a test's fake child stays as is


def test_parse_line_keeps_garbage_as_text():
    assert parse_line('{"event":"eval","step":2,"val_loss":1.5}').val_loss == 1.5
    assert parse_line('{"event":"eval","step":2}') == '{"event":"eval","step":2}'  # missing field
    assert parse_line("Traceback (most recent call last):") == "Traceback (most recent call last):"
    assert parse_line('{"event":"future-kind"}') == '{"event":"future-kind"}'


# Pilot: the form ---------------------------------------------------------------------------------------
async def test_form_defaults_follow_the_model_family(tmp_path, tiny_masked_dir, monkeypatch):
    fake_child(monkeypatch, "steps")
    root = write_workspace(tmp_path / "ws", {"tiny-bert": tiny_masked_dir})
    app = make_app(Workspace.open(root))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_train(pilot)
        form = screen.query_one("TrainForm")
        assert form.model == "demo-ar" and form.method == "lora"  # demo models first
        form.query_one("#train-model", Select).value = "tiny-bert"
        await pilot.pause()
        assert form.method == "diffusion"
        note = str(screen.query_one("#train-lr-note").render())
        assert "1/p" in note and "×5" in note
        assert form.input("lr").placeholder == "default 5e-05"  # 1e-5 (full-weight diffusion) × 5 (tiny)
        await workers_done(app)
        await pilot.pause()
        preview = str(screen.query_one("#train-preview").render())
        assert "maskable" in preview and "never masked" in preview
        form.input("batch_size").value = "0"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert screen.live is None  # nothing launched
        assert app.focused is form.input("batch_size")


# Pilot: runs list and comparison -------------------------------------------------------------------------
async def test_marking_two_runs_overlays_curves_and_diffs_settings(tmp_path, monkeypatch):
    fake_child(monkeypatch, "steps")
    root = write_workspace(tmp_path / "ws")
    first, second = write_two_runs(root / "runs")
    app = make_app(Workspace.open(root))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_train(pilot)
        await pilot.press("f8")
        await workers_done(app)
        await pilot.pause()
        table = screen.query_one(RunsTable)
        assert [run.run_id for run in table.runs] == [second.name, first.name]
        assert screen.query_one("#train-plot").border_title == "loss: 20260102-090000"  # no label: the id
        await pilot.press("space", "down", "space")
        await workers_done(app)
        await pilot.pause()
        diff = str(screen.query_one("#train-diff").render())
        assert "lora_rank" in diff and "max_steps" in diff and "16  →  8" in diff
        assert "model" not in diff.split("\n", 1)[1]  # same model: not listed
        plot = screen.query_one("#train-plot")
        assert plot.border_title == "loss: A 20260102-090000 vs B 20260101-090000"
        assert [series.label for series in plot.series] == ["A train", "A val", "B train", "B val"]
        assert len(plot.series[2].points) == 8
        await pilot.press("ctrl+l")  # copy the highlighted run's settings into the form
        await pilot.pause()
        form = screen.query_one("TrainForm")
        assert form.input("max_steps").value == "8" and form.input("lora_rank").value == "8"


# Pilot: child processes -----------------------------------------------------------------------------------
async def test_fake_run_streams_events_into_plot_and_stats(tmp_path, monkeypatch):
    fake_child(monkeypatch, "steps")
    app = make_app(Workspace.open(write_workspace(tmp_path / "ws")))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_train(pilot)
        screen.query_one("TrainForm").input("max_steps").value = "6"
        await run_to_exit(pilot, screen)
        assert screen.live.exit_code == 0 and screen.live.view.status == "done"
        assert [step for step, _ in screen.live.curves.train] == [1, 2, 3, 4, 5, 6]
        assert screen.live.curves.val == [(2.0, 2.75), (4.0, 1.375), (6.0, 5.5 / 6)]
        stats = str(screen.query_one("#train-stats").render())
        assert "step 6/6" in stats and "done" in stats
        assert not screen.query_one("#train-error").display
        await pilot.press("f6")  # a RichLog lays out what it was given once it is shown
        await pilot.pause()
        canaries = [line.text for line in screen.query_one("#train-canary-log").lines]
        assert canaries[0].startswith("step 0 · river-short") and canaries[1] == "Text of river-short at step 0."
        log = "\n".join(line.text for line in screen.query_one("#train-log").lines)
        assert "may be memorising" in log


async def test_child_printing_garbage_and_crashing_shows_the_exit_code(tmp_path, monkeypatch):
    fake_child(monkeypatch, "garbage")
    app = make_app(Workspace.open(write_workspace(tmp_path / "ws")))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_train(pilot)
        await run_to_exit(pilot, screen)
        assert screen.live.view.status == "failed"
        error = screen.query_one("#train-error")
        assert error.display
        shown = str(error.render())
        assert "exit code 1" in shown and "the fake child fell over" in shown
        log = "\n".join(line.text for line in screen.query_one("#train-log").lines)
        assert "this is not json" in log
        assert app.is_running and app.screen is screen


async def test_error_event_advice_is_shown(tmp_path, monkeypatch):
    fake_child(monkeypatch, "error")
    app = make_app(Workspace.open(write_workspace(tmp_path / "ws")))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_train(pilot)
        await run_to_exit(pilot, screen)
        assert screen.live.view.status == "failed"
        shown = str(screen.query_one("#train-error").render())
        assert "exit code 1" in shown and "no-such-model" in shown and "Give a local model folder." in shown


async def test_cancel_is_graceful_then_forced(tmp_path, monkeypatch):
    fake_child(monkeypatch, "stubborn")
    app = make_app(Workspace.open(write_workspace(tmp_path / "ws")))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_train(pilot)
        screen.query_one("TrainForm").input("max_steps").value = "100000"  # runs until stopped
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: len(screen.live.curves.train) >= 2)
        await pilot.press("ctrl+t")
        await pilot.pause()
        assert screen.live.view.status == "cancelling" and screen.live.active  # it ignores SIGTERM
        await pilot.press("ctrl+t")
        await wait_until(pilot, lambda: screen.live.exit_code is not None)
        await pilot.pause()
        assert screen.live.exit_code == -9 and screen.live.view.status == "interrupted"
        assert "killed by your second ctrl+t" in str(screen.query_one("#train-error").render())
        assert app.is_running


async def test_graceful_cancel_reports_cancelled(tmp_path, monkeypatch):
    fake_child(monkeypatch, "steps")
    app = make_app(Workspace.open(write_workspace(tmp_path / "ws")))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_train(pilot)
        screen.query_one("TrainForm").input("max_steps").value = "100000"
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: len(screen.live.curves.train) >= 1)
        await pilot.press("ctrl+t")
        await wait_until(pilot, lambda: screen.live.exit_code is not None)
        await pilot.pause()
        assert screen.live.exit_code == 0 and screen.live.view.status == "cancelled"
        assert screen.live.done.resumable


async def test_real_run_on_a_tiny_model_moves_then_cancels(tmp_path, tiny_llama_dir):
    root = write_workspace(tmp_path / "ws", {"tiny": tiny_llama_dir})
    app = make_app(Workspace.open(root))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_train(pilot)
        form = screen.query_one("TrainForm")
        form.query_one("#train-model", Select).value = "tiny"
        await pilot.pause()
        for name, value in (("max_steps", "6"), ("batch_size", "2"), ("eval_every", "2"), ("save_every", "2"),
                            ("canaries", "none")):
            form.input(name).value = value
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: len(screen.live.curves.train) >= 1 or not screen.live.active)
        first_points = len(screen.live.curves.train)
        assert first_points >= 1, "\n".join(line.text for line in screen.query_one("#train-log").lines)
        assert "step 1/6" in str(screen.query_one("#train-stats").render()) or first_points > 1
        await pilot.press("ctrl+t")
        await wait_until(pilot, lambda: not screen.live.active)
        await workers_done(app)
        await pilot.pause()
        assert screen.live.exit_code == 0
        assert screen.live.view.status in ("cancelled", "done")
        status = json.loads((Path(screen.live.run_dir) / "status.json").read_text())
        assert status["status"] == screen.live.view.status
        assert screen.query_one("#train-plot").series[0].points  # the curve has points
        table = screen.query_one(RunsTable)
        assert [run.status for run in table.runs] == [status["status"]]
        assert app.is_running


async def test_resume_passes_the_run_folder_and_refuses_finished_runs(tmp_path, monkeypatch):
    fake_child(monkeypatch, "steps")
    root = write_workspace(tmp_path / "ws")
    finished, _ = write_two_runs(root / "runs")
    stopped = write_run(root / "runs", "20260105-stopped", status="cancelled", losses=[5.0, 4.0], val={},
                        updated_at="2026-01-05T00:00:00+00:00", model="demo-ar", max_steps=4)
    app = make_app(Workspace.open(root))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_train(pilot)
        await pilot.press("f8")
        await workers_done(app)
        await pilot.pause()
        table = screen.query_one(RunsTable)
        table.move_cursor(row=[run.run_id for run in table.runs].index(finished.name))
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert screen.live is None  # a finished run has nothing to resume
        table.move_cursor(row=0)
        assert table.highlighted_run.run_id == stopped.name
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: screen.live is not None and not screen.live.active)
        command = screen.live.process.command
        assert command[-3:] == ["--resume", str(stopped), "--json"]
        assert "--max-steps" not in command  # the run's own config.toml decides


async def test_leaving_from_another_screen_still_stops_the_child(tmp_path, monkeypatch):
    """Quit from the Pairs screen: the Train screen's question still comes up; stop waits."""
    fake_child(monkeypatch, "steps")
    app = make_app(Workspace.open(write_workspace(tmp_path / "ws")))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_train(pilot)
        screen.query_one("TrainForm").input("max_steps").value = "100000"
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: len(screen.live.curves.train) >= 1)
        process = screen.live.process
        await pilot.press("f1")
        await pilot.pause()
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert type(app.screen).__name__ == "QuitWhileTrainingDialog"
        await pilot.press("s")
        await wait_until(pilot, lambda: not app.is_running or not screen.live.active)
    assert process.wait(timeout=30) == 0 and process.cancel_requested
