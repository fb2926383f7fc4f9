"""Every control can be seen, at 80×24 (an SSH default) and at 120×40, on every screen and dialog.

Each journey opens one app, walks by keyboard through a main screen and the dialogs a user
reaches from it, and on each stop checks the screen on top:

- every focusable widget (enabled, displayed) and every displayed Button, once scrolled into
  view as tabbing to it would, has a visible part inside the screen: the whole of it, or (when
  it is taller than three rows) at least three rows; and as wide as its viewport allows;
- that part is not under the key bar or footer, and the cell at its centre belongs to it (no
  other layer covers it);
- the key bar's (or footer's) first key is drawn in full.

A failure names the stop, the size and the widget (type and id), and every failure of the
journey is listed at once.
"""

from __future__ import annotations

import pytest
from textual.errors import NoWidget
from textual.geometry import Region
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Button, Footer, Input
from textual.widgets._footer import FooterKey

from engine.workspace import Workspace
from tests.tui.waiting import workers_done
from tui.app import make_app
from tui.widgets.nav import KeyBar

pytestmark = pytest.mark.anyio
SIZES = pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
MIN_ROWS = 3  # a taller widget may scroll inside itself; three rows of it must show


@pytest.fixture
def anyio_backend():
    return "asyncio"


def describe(widget: Widget) -> str:
    return f"{type(widget).__name__}#{widget.id}" if widget.id else type(widget).__name__


def is_displayed(widget: Widget) -> bool:
    return all(node.display and node.visible for node in widget.ancestors_with_self if isinstance(node, Widget))


def controls(screen: Screen) -> list[Widget]:
    """The widgets a user must be able to see: the focus chain and every displayed Button."""
    chosen = list(screen.focus_chain)
    chosen += [button for button in screen.query(Button) if button not in chosen and is_displayed(button)]
    return chosen


def visible_part(screen: Screen, widget: Widget) -> tuple[Region, Region] | None:
    """(the widget's region, the part of it drawn on screen), or None when it is not laid out."""
    try:
        geometry = screen._compositor.find_widget(widget)
    except NoWidget:
        return None
    return geometry.region, geometry.region.intersection(geometry.clip).intersection(screen.region)


def problem_with(screen: Screen, widget: Widget, bars: list[Region]) -> str | None:
    """Why a user cannot see `widget` (None when they can)."""
    placed = visible_part(screen, widget)
    if placed is None:
        return "is not laid out (no size)"
    region, shown = placed
    if not shown:
        return f"is off screen or clipped away (region {tuple(region)})"
    if shown.height < min(region.height, MIN_ROWS):
        return f"shows {shown.height} of its {region.height} rows (region {tuple(region)})"
    viewport = widget.parent.region.intersection(screen.region) if isinstance(widget.parent, Widget) else screen.region
    if shown.width < min(region.width, viewport.width):
        return f"shows {shown.width} of its {region.width} columns (region {tuple(region)})"
    if widget.content_size.height < 1 or widget.content_size.width < 1:
        return f"has no room inside its border and padding (region {tuple(region)})"
    for bar in bars:
        if shown.overlaps(bar):
            return f"lies under the key bar (region {tuple(region)}, bar {tuple(bar)})"
    x, y = shown.x + shown.width // 2, shown.y + shown.height // 2
    try:
        on_top, _ = screen.get_widget_at(x, y)
    except NoWidget:
        return f"has nothing drawn at its centre ({x}, {y})"
    if widget not in on_top.ancestors_with_self:
        return f"is covered at its centre ({x}, {y}) by {describe(on_top)}"
    return None


def key_bar_problem(screen: Screen) -> str | None:
    """Why the first key of the screen's key bar (or footer) is not fully shown, if it is not."""
    key_bars = [bar for bar in screen.query(KeyBar) if is_displayed(bar)]
    if key_bars:
        bar = key_bars[0]
        placed = visible_part(screen, bar)
        if placed is None or placed[1].height < 1 or placed[1].bottom != screen.region.bottom:
            return "the key bar is not on the bottom line"
        keys, _palette = bar.shown_keys()
        if not keys:
            return "the key bar shows no key"
        first = keys[0]
        drawn = bar.render().plain
        if f" {first.display} {first.description}" not in drawn:
            return f"the key bar's first key ({first.display} {first.description}) is cut: {drawn!r}"
        return None
    footers = [footer for footer in screen.query(Footer) if is_displayed(footer)]
    if footers:
        keys = [key for key in footers[0].query(FooterKey) if is_displayed(key)]
        if not keys:
            return "the footer shows no key"
        placed = visible_part(screen, keys[0])
        if placed is None or placed[1].width < placed[0].width or placed[1].height < 1:
            return f"the footer's first key ({keys[0].key_display} {keys[0].description}) is cut"
    return None  # a small dialog without a key bar: its keys are written in it (checked as text by its tests)


# Stops whose layout cannot be mended yet: (stop, (width, height)) → why. Empty: every stop passes.
KNOWN_HIDDEN: dict[tuple[str, tuple[int, int]], str] = {}


class Inspector:
    """Checks the screen on top at each stop of a journey; collects the failures."""

    def __init__(self, pilot, size: tuple[int, int]) -> None:
        self.pilot, self.size = pilot, size
        self.failures: list[tuple[str, str]] = []  # (stop, what is wrong)
        self.stops: list[str] = []

    async def check(self, stop: str, screen_type: str, *, wait_for_workers: bool = True) -> None:
        """Check the screen on top, which must be a `screen_type`. `wait_for_workers=False`
        while a child process streams (its reader worker runs until the child ends)."""
        app = self.pilot.app
        if wait_for_workers:
            await workers_done(app)
        app.clear_notifications()  # toasts come and go with timing; they are not controls
        await self.pilot.pause()
        screen = app.screen
        where = f"{stop} at {self.size[0]}x{self.size[1]}"
        assert type(screen).__name__ == screen_type, \
            f"{where}: expected {screen_type} on top, found {type(screen).__name__}"
        self.stops.append(stop)
        bars = [part[1] for bar in screen.query("KeyBar, Footer") if is_displayed(bar)
                if (part := visible_part(screen, bar)) is not None]
        problem = key_bar_problem(screen)
        if problem:
            self.failures.append((stop, f"{where}: {problem}"))
        for widget in controls(screen):
            if screen.scroll_to_widget(widget, animate=False, immediate=True):
                await self.pilot.pause()  # let the compositor place the scrolled widgets
            problem = problem_with(screen, widget, bars)
            if problem:
                self.failures.append((stop, f"{where}: {describe(widget)} {problem}"))

    def report(self, expected_stops: int) -> None:
        assert len(self.stops) == expected_stops, f"the journey stopped at {self.stops}"
        known = {stop: why for (stop, size), why in KNOWN_HIDDEN.items() if size == self.size and stop in self.stops}
        unexpected = [message for stop, message in self.failures if stop not in known]
        assert not unexpected, "controls a user cannot see:\n" + "\n".join(unexpected)
        failed = {stop for stop, _ in self.failures}
        mended = [stop for stop in known if stop not in failed]
        assert not mended, f"{mended} now pass at {self.size}: take them out of KNOWN_HIDDEN"
        if known:
            pytest.xfail("; ".join(sorted(set(known.values()))))


async def press(pilot, *keys: str) -> None:
    for key in keys:
        await pilot.press(key)
        await workers_done(pilot.app)
        await pilot.pause()


# Pairs (F1) -------------------------------------------------------------------------------
@SIZES
async def test_pairs_and_its_dialogs(tmp_path, size):
    from tests.tui.pairs_fixtures import make_workspace, settle
    from tests.tui.test_pairs import _edit_then_change_on_disk, outside_sources

    workspace = make_workspace(tmp_path / "demo")
    outside = tmp_path / "elsewhere"
    outside_sources(outside)
    app = make_app(workspace)
    async with app.run_test(size=size) as pilot:
        inspector = Inspector(pilot, size)
        await settle(pilot)
        await inspector.check("Pairs", "PairsScreen")
        await press(pilot, "enter")  # into the editor of the selected pair
        await inspector.check("Pairs editing a pair", "PairsScreen")
        await press(pilot, "escape", "question_mark")
        await inspector.check("Help (from Pairs)", "HelpScreen")
        await press(pilot, "escape", "f12")
        await inspector.check("Versions (F12)", "VersionsScreen")
        await press(pilot, "escape", "e")
        await inspector.check("Export dialog", "ExportDialog")
        await press(pilot, "escape", "i")
        await inspector.check("Ingest dialog", "IngestDialog")
        app.screen.query_one("#ingest-paths", Input).value = str(outside)
        await press(pilot, "ctrl+r")
        await settle(pilot)
        await inspector.check("Ingest dialog with its preview", "IngestDialog")
        await press(pilot, "ctrl+o")
        await inspector.check("Source clash dialog", "SourceClashDialog")
        await press(pilot, "escape", "escape")
        await _edit_then_change_on_disk(app, pilot, workspace)
        await inspector.check("Save conflict dialog", "SaveConflictDialog")
        await press(pilot, "ctrl+o")  # overwrite: nothing is left to ask about on exit
        await settle(pilot)
        inspector.report(9)


# Train (F2) -------------------------------------------------------------------------------
def write_unrated_adapter(folder) -> None:
    """A LoRA checkpoint as far as promotion's checks read it (config and a readable
    safetensors file), written without torch."""
    import json

    import numpy
    from safetensors.numpy import save_file

    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "demo-ar",
                                                            "peft_type": "LORA"}), encoding="utf-8")
    save_file({"lora_B": numpy.zeros((2, 2), dtype=numpy.float32)}, str(folder / "adapter_model.safetensors"))


@SIZES
async def test_train_its_tabs_and_the_quit_dialogs(tmp_path, size, monkeypatch):
    from tests.tui.test_train import fake_child, wait_until
    from tests.tui.test_train_lifecycle import start_until_evaluating
    from tests.tui.train_fixtures import write_two_runs, write_workspace

    fake_child(monkeypatch, "steps", gates=("eval-2",), control=tmp_path / "control")
    base = tmp_path / "base-model"  # a model folder to hash; nothing loads it
    base.mkdir()
    (base / "config.json").write_text("{}", encoding="utf-8")
    root = write_workspace(tmp_path / "ws", {"demo-ar": base})
    _, newest = write_two_runs(root / "runs")
    write_unrated_adapter(newest / "checkpoints" / "checkpoint-6")
    app = make_app(Workspace.open(root))
    async with app.run_test(size=size) as pilot:
        inspector = Inspector(pilot, size)
        await press(pilot, "f2")
        await inspector.check("Train", "TrainScreen")
        for key, tab in (("f5", "log"), ("f6", "canaries"), ("f7", "mask"), ("f10", "memory"), ("f8", "runs")):
            await press(pilot, key)
            await inspector.check(f"Train, {tab} tab", "TrainScreen")
        await press(pilot, "p")  # promote the newest run's checkpoint: never rated, so the gate asks
        await inspector.check("Promote anyway? dialog", "ForceDialog")
        await press(pilot, "n", "ctrl+b")
        await inspector.check("Train with the form hidden", "TrainScreen")
        await press(pilot, "ctrl+b")
        screen = app.screen
        await start_until_evaluating(pilot, screen, "100")
        await inspector.check("Train while a run trains", "TrainScreen", wait_for_workers=False)
        process = screen.live.process
        await pilot.press("ctrl+q")
        await pilot.pause()
        await inspector.check("Quit while training dialog", "QuitWhileTrainingDialog", wait_for_workers=False)
        await pilot.press("s")
        await pilot.pause()
        await inspector.check("Stopping dialog", "StoppingDialog", wait_for_workers=False)
        await pilot.press("k")  # kill it now: the app quits
        await wait_until(pilot, lambda: not app.is_running)
    process.wait(timeout=30)
    inspector.report(11)


# Canvas (F3) ------------------------------------------------------------------------------
@SIZES
async def test_canvas_and_its_dialogs(tmp_path, size, repo_root):
    import shutil

    from engine.sample.trace import save_trace
    from tests.tui.test_snapshots_canvas import fixed_trace_events

    root = tmp_path / "demo"
    (root / "data").mkdir(parents=True)
    shutil.copy(repo_root / "data" / "canaries.toml", root / "data" / "canaries.toml")
    save_trace(root / "runs" / "traces" / "flood.jsonl", *fixed_trace_events())
    app = make_app(Workspace.open(root))
    async with app.run_test(size=size) as pilot:
        inspector = Inspector(pilot, size)
        await press(pilot, "f3")
        await inspector.check("Canvas", "CanvasScreen")
        await press(pilot, "ctrl+s")
        await inspector.check("Preset name dialog", "PresetNameDialog")
        await press(pilot, *"calm", "enter", "ctrl+s", *"calm", "enter")
        await inspector.check("Preset overwrite dialog", "ConfirmOverwriteDialog")
        await press(pilot, "n", "escape")
        app.screen.query_one("#canvas-model").focus()  # off the prompt field, where o and s are letters
        await press(pilot, "o")
        await inspector.check("Open trace dialog", "TracePathDialog")
        await press(pilot, "enter")  # the newest trace, replayed
        await inspector.check("Canvas replaying a trace", "CanvasScreen")
        await press(pilot, "s")
        await inspector.check("Save trace dialog", "TracePathDialog")
        await press(pilot, "escape", "ctrl+b")
        await inspector.check("Canvas with the run panel hidden", "CanvasScreen")
        inspector.report(7)


# Judge (F4) -------------------------------------------------------------------------------
def judge_app(tmp_path, repo_root, mode: str):
    """The app on a judge workspace holding one open session of `mode` ("rubric" or "pairwise")."""
    from tests.tui.test_judge import make_workspace
    from tests.tui.test_snapshots_judge import seeded_session

    workspace = make_workspace(tmp_path / "workspace", repo_root)
    seeded_session(workspace, mode)
    return make_app(workspace)


@SIZES
async def test_judge_a_rubric_session_and_its_dialogs(tmp_path, size, repo_root):
    app = judge_app(tmp_path, repo_root, "rubric")
    async with app.run_test(size=size) as pilot:
        inspector = Inspector(pilot, size)
        await press(pilot, "f4")
        await inspector.check("Judge builder", "JudgeScreen")
        await press(pilot, "ctrl+b")
        await inspector.check("Rubric editor", "RubricEditorScreen")
        await press(pilot, "escape", "ctrl+l")
        await inspector.check("Leaderboard", "LeaderboardScreen")
        await press(pilot, "escape", "ctrl+o")
        await inspector.check("Judge rating (rubric)", "JudgeScreen")
        await press(pilot, "question_mark")  # the longest list of keys
        await inspector.check("Help (from a rating session)", "HelpScreen")
        await press(pilot, "escape", "n")
        await inspector.check("Note dialog", "NoteDialog")
        await press(pilot, "escape", "ctrl+e")
        await inspector.check("End session dialog", "ConfirmEndDialog")
        await press(pilot, "y")
        await inspector.check("Judge reveal", "JudgeScreen")
        await press(pilot, "ctrl+v")
        await inspector.check("Reading view", "ReadingScreen")
        inspector.report(9)


@SIZES
async def test_judge_a_pairwise_session(tmp_path, size, repo_root):
    app = judge_app(tmp_path, repo_root, "pairwise")
    async with app.run_test(size=size) as pilot:
        inspector = Inspector(pilot, size)
        await press(pilot, "f4", "ctrl+o")
        await inspector.check("Judge rating (pairwise)", "JudgeScreen")
        inspector.report(1)
