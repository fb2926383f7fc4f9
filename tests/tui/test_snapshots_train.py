"""Snapshots of the Train screen over hand-written run folders (no child process, no timing),
at 120×40 (comfortable) and 80×24 (an SSH default: the form narrows, the plot shrinks, the
status line stays; ctrl+b hides the form)."""

from __future__ import annotations

from engine.workspace import Workspace
from tests.tui.train_fixtures import write_two_runs, write_workspace
from tests.tui.waiting import workers_done
from tui.app import make_app

SIZE = (120, 40)
SMALL = (80, 24)


def _app(tmp_path):
    root = write_workspace(tmp_path / "ws")  # the nav bar shows the folder name only: "ws"
    write_two_runs(root / "runs")
    return make_app(Workspace.open(root))


async def _open_train(pilot, *keys: str) -> None:
    await pilot.press("f2")
    await pilot.pause()
    await workers_done(pilot.app)
    pilot.app.clear_notifications()  # the Pairs screen's start-up toasts (no demo model here)
    await pilot.pause()
    for key in keys:
        await pilot.press(key)
        await workers_done(pilot.app)
        await pilot.pause()


def test_train_screen_shows_the_latest_finished_run(snap_compare, tmp_path):
    async def run_before(pilot):
        await _open_train(pilot)

    assert snap_compare(_app(tmp_path), run_before=run_before, terminal_size=SIZE)


def test_train_screen_compares_two_runs(snap_compare, tmp_path):
    async def run_before(pilot):
        await _open_train(pilot, "f8", "space", "down", "space")

    assert snap_compare(_app(tmp_path), run_before=run_before, terminal_size=SIZE)


def test_train_screen_at_80x24_keeps_the_status_line(snap_compare, tmp_path):
    async def run_before(pilot):
        await _open_train(pilot)

    assert snap_compare(_app(tmp_path), run_before=run_before, terminal_size=SMALL)


def test_train_screen_at_80x24_with_the_form_hidden(snap_compare, tmp_path):
    async def run_before(pilot):
        await _open_train(pilot, "ctrl+b", "f8")

    assert snap_compare(_app(tmp_path), run_before=run_before, terminal_size=SMALL)


def _app_with_tiny_llama(tmp_path, tiny_llama_dir):
    root = write_workspace(tmp_path / "ws", {"tiny-llama": tiny_llama_dir})
    write_two_runs(root / "runs")
    return make_app(Workspace.open(root))


async def _pick_tiny_llama(pilot) -> None:
    from textual.widgets import Select

    await _open_train(pilot)
    pilot.app.screen.query_one("#train-model", Select).value = "tiny-llama"
    await pilot.pause()
    await workers_done(pilot.app)
    await pilot.pause()


def test_train_screen_shows_will_it_fit_and_its_breakdown(snap_compare, tmp_path, tiny_llama_dir):
    async def run_before(pilot):
        await _pick_tiny_llama(pilot)
        await pilot.press("f10")
        await pilot.pause()

    assert snap_compare(_app_with_tiny_llama(tmp_path, tiny_llama_dir), run_before=run_before, terminal_size=SIZE)


def test_train_screen_at_80x24_shows_will_it_fit(snap_compare, tmp_path, tiny_llama_dir):
    async def run_before(pilot):
        await _pick_tiny_llama(pilot)

    assert snap_compare(_app_with_tiny_llama(tmp_path, tiny_llama_dir), run_before=run_before, terminal_size=SMALL)
