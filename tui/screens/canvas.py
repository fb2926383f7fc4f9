"""The Canvas screen: watch a masked-diffusion model paint its answer, step by step, live.

Pick a model and a prompt (typed, or a workspace canary), set the sampler, press enter.
The sampler runs in its own process (`engine.sample.service`, started when the screen
opens, models kept loaded between runs), so drawing never slows it down. A reader thread
appends every frame it streams to a `Timeline` and posts a "frames available" message
only when none is pending, so the UI is never flooded. A 30 Hz ticker draws the newest
frame; frames that arrive faster are drawn together (a frame's commits are never lost),
and every frame stays in the timeline for pausing, scrubbing and saving. Beside the
canvas, a causal model types the same prompt in a second such process.

Keys: enter start · escape cancel · space pause/resume · . step · ←/→ or [/] scrub ·
home/end first/last step · +/- speed · s save trace · o open trace · p prompt · ctrl+s save the
sampler settings as a named preset (presets.toml, for `voicebench sweep`/`canary --preset`).
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Input, Label, Select, Static

from engine.sample.diffusion import FinalFrame, SamplerSettings, SamplerSettingsError, StepFrame
from engine.models.loading import DIFFUSION_FAMILIES, FAMILY_CAUSAL
from engine.sample.trace import Timeline, TraceError, TraceHeader, default_trace_path, load_trace, save_trace
from engine.sample.service import describe
from engine.workspace import ModelEntry, looks_like_hub_id
from tui.sampler_client import SamplerProcess
from tui.screens.base import WorkbenchScreen
from tui.widgets.canvas_view import CanvasHeader, CanvasView, legend
from tui.widgets.sampler_settings import SamplerSettingsPanel
from tui.widgets.typewriter import Typewriter

TICK_SECONDS = 1 / 30  # display rate: faster frames are drawn together
SPEEDS = (1, 2, 5, 10, 20, 30, 60, 120, 240)  # replay speeds, steps per second
DEFAULT_SPEED = 20
TYPEWRITER_OFF = "__off__"
TRACES_FOLDER = "traces"  # under the workspace's runs/


@dataclasses.dataclass
class RunInfo:
    """What the canvas shows: enough to write a trace header."""

    model: str
    prompt: str
    settings: dict[str, Any]
    family: str = ""


@dataclasses.dataclass
class LiveRun:
    """State shared by the sampler process's reader thread (the only writer) and the screen."""

    info: RunInfo
    timeline: Timeline
    run_id: int = 0  # the sampler process's name for this run
    stamps: list[float] = dataclasses.field(default_factory=list)  # perf_counter at each frame
    sampling_started: float | None = None
    sampling_seconds: float | None = None  # the sampler loop alone, measured in its process
    notify_pending: bool = False


@dataclasses.dataclass
class TypingRun:
    model: str
    run_id: int = 0
    pieces: list[str] = dataclasses.field(default_factory=list)
    shown: int = 0
    started: float | None = None
    notify_pending: bool = False


class TracePathDialog(ModalScreen[str | None]):
    """Ask for a trace path (save or open); enter confirms, escape cancels."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel", id="trace_dialog.cancel")]
    DEFAULT_CSS = """
    TracePathDialog { align: center middle; }
    TracePathDialog > Vertical { width: 90; max-width: 100%; height: auto; border: round $accent; background: $surface; padding: 1 2; }
    TracePathDialog Label { text-style: bold; }
    TracePathDialog .hint { color: $text-muted; margin-top: 1; }
    """

    def __init__(self, title: str, default: str, hint: str) -> None:
        super().__init__()
        self.title_text, self.default, self.hint = title, default, hint

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.title_text)
            yield Input(self.default, id="trace-path", select_on_focus=False)
            yield Static(self.hint, classes="hint")

    def on_mount(self) -> None:
        path_input = self.query_one("#trace-path", Input)
        path_input.focus()
        path_input.cursor_position = len(path_input.value)

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip() or None)


NARROW_WIDTH = 100  # below this many columns the typewriter starts hidden (ctrl+t shows it)


class CanvasScreen(WorkbenchScreen):
    SCREEN_NAME = "canvas"
    CSS_PATH = "canvas.tcss"
    BINDINGS = [
        Binding("enter", "start", "Start", id="canvas.start", tooltip="Sample the prompt with these settings"),
        Binding("escape", "cancel", "Cancel", id="canvas.cancel", tooltip="Stop the run (frames so far are kept)"),
        Binding("space", "toggle_pause", "Pause", id="canvas.pause", tooltip="Pause or resume the display"),
        Binding("full_stop", "step_forward", "Step", id="canvas.step", tooltip="Pause and show the next step"),
        Binding("left,left_square_bracket", "scrub(-1)", "Back", id="canvas.scrub_back",
                tooltip="Pause and show the previous step"),
        Binding("right,right_square_bracket", "scrub(1)", "Forward", id="canvas.scrub_forward", show=False,
                tooltip="Pause and show the next step"),
        Binding("home", "jump('first')", "First step", id="canvas.first", show=False),
        Binding("end", "jump('last')", "Last step", id="canvas.last", show=False),
        Binding("plus,equals_sign", "speed(1)", "Faster", id="canvas.faster", show=False,
                tooltip="Replay more steps per second"),
        Binding("minus", "speed(-1)", "Slower", id="canvas.slower", show=False,
                tooltip="Replay fewer steps per second"),
        Binding("s", "save", "Save trace", id="canvas.save", tooltip="Save this run as JSON lines"),
        Binding("o", "open", "Open trace", id="canvas.open", tooltip="Replay a saved trace"),
        Binding("p", "focus_prompt", "Prompt", id="canvas.prompt", show=False, tooltip="Edit the prompt"),
        # ctrl keys, so they work while the prompt field has the focus.
        Binding("ctrl+t", "toggle_panel('typewriter')", "Typewriter", id="canvas.toggle_typewriter",
                tooltip="Show or hide the typewriter (hidden by default under 100 columns)"),
        Binding("ctrl+b", "toggle_panel('side')", "Run panel", id="canvas.toggle_side", show=False,
                tooltip="Show or hide the run settings, giving the painter their width"),
        Binding("ctrl+s", "save_preset", "Save preset", id="canvas.save_preset",
                tooltip="Save the sampler settings under a name, for `voicebench sweep` and `canary --preset`"),
    ]

    class FramesAvailable(Message):
        """The sampler appended frames; posted at most once until handled."""

        def __init__(self, run: LiveRun) -> None:
            super().__init__()
            self.run = run

    class RunLoaded(Message):
        def __init__(self, run: LiveRun, family: str) -> None:
            super().__init__()
            self.run, self.family = run, family

    class RunEnded(Message):
        def __init__(self, run: LiveRun, final: FinalFrame | None, error: str | None = None) -> None:
            super().__init__()
            self.run, self.final, self.error = run, final, error

    class TokensAvailable(Message):
        def __init__(self, typing: TypingRun) -> None:
            super().__init__()
            self.typing = typing

    class TypingEnded(Message):
        def __init__(self, typing: TypingRun, final: FinalFrame | None, error: str | None = None) -> None:
            super().__init__()
            self.typing, self.final, self.error = typing, final, error

    def __init__(self) -> None:
        super().__init__()
        self.timeline: Timeline | None = None
        self.info: RunInfo | None = None
        self.step = 0
        self.paused = False
        self.speed = DEFAULT_SPEED
        self.live_run: LiveRun | None = None  # set while the sampler process works on a run
        self.last_run: LiveRun | None = None
        self.typing: TypingRun | None = None
        self.ended = "idle"  # how the shown run ended: idle | done | cancelled | failed
        self.loading = False
        self._following = True
        self._budget = 0.0
        self._last_tick = time.monotonic()
        self._cascade_warned = False
        self._run_ids = itertools.count(1)
        # Two processes, so the typewriter never competes with the painter for a GIL.
        self.painter = SamplerProcess(self._painter_event)
        self.typist = SamplerProcess(self._typist_event)
        self.canaries: list[Any] = []

    # Layout -----------------------------------------------------------------------------
    def compose_body(self) -> Iterable[Widget]:
        workspace = self.app.workspace
        painters, typists = self._model_options()
        self.canaries, canary_error = self._load_canaries()
        with Horizontal(id="canvas-prompt-row"):
            yield Label("prompt", id="canvas-prompt-label")
            yield Input(placeholder="type a prompt and press enter — or pick a canary →", id="canvas-prompt",
                        compact=True)
            yield Select([(f"{canary.id}", canary.id) for canary in self.canaries],
                         prompt="canary prompts…" if not canary_error else "canaries unavailable",
                         id="canvas-canary", compact=True, tooltip=canary_error or "Use a workspace canary prompt")
        with Horizontal(id="canvas-body"):
            with Vertical(id="canvas-side"):
                yield Label("painter (diffusion)", classes="side-title")
                yield Select(painters, id="canvas-model", allow_blank=not painters, compact=True,
                             value=_default(painters, "demo-diffusion"), prompt="no diffusion model configured")
                yield Label("typewriter (causal)", classes="side-title")
                yield Select(typists + [("off", TYPEWRITER_OFF)], id="canvas-typist", allow_blank=False,
                             compact=True, value=_default(typists, "demo-ar") or TYPEWRITER_OFF)
                yield Label("sampler", classes="side-title")
                yield SamplerSettingsPanel(workspace.section("sampler"), id="canvas-settings")
            with Vertical(id="canvas-painter"):
                yield CanvasHeader(id="canvas-header")
                yield CanvasView(id="canvas-view")
                yield Static(legend(), id="canvas-legend")
            yield Typewriter(id="canvas-typewriter")
        yield Static("", id="canvas-status")

    def on_resize(self, event) -> None:
        # Under NARROW_WIDTH columns the painter gets the width: the typewriter hides until ctrl+t.
        self.set_class(event.size.width < NARROW_WIDTH, "-narrow")

    def action_toggle_panel(self, panel: str) -> None:
        """Show or hide a side panel; the choice holds at any width until pressed again."""
        widget = self.query_one("#canvas-typewriter" if panel == "typewriter" else "#canvas-side")
        shown = widget.display  # what the classes (and the width) make of it now
        self.set_class(shown, f"-hide-{panel}")
        self.set_class(not shown, f"-show-{panel}")

    def on_mount(self) -> None:
        # Drawn on every frame: look them up once, not per step.
        self._view = self.query_one(CanvasView)
        self._header = self.query_one(CanvasHeader)
        self.query_one("#canvas-painter").border_title = "painter"
        self.query_one("#canvas-side").border_title = "run"
        self._ticker = self.set_interval(TICK_SECONDS, self._tick, pause=True)
        self.painter.start()  # imports torch while the writer picks a prompt
        self._status("enter: start · space: pause · ←/→: scrub · s: save · o: open a trace · ?: every key")
        self._refresh_header()
        self.query_one("#canvas-prompt", Input).focus()

    def _model_options(self) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """Workspace models split by family, without loading weights."""
        from engine.models.loading import read_family
        from engine.models.versions import voice_available
        from engine.workspace import VOICE_MODEL

        painters, typists = [], []
        names = list(self.app.workspace.models)
        if VOICE_MODEL not in names and voice_available(self.app.workspace):
            names.append(VOICE_MODEL)  # the current version of the writer's model
        for name in names:
            entry = self.app.workspace.model(name)
            try:
                family = read_family(entry.path, entry.family)
            except Exception:  # noqa: BLE001 - not on disk yet: trust the configured family
                family = entry.family or FAMILY_CAUSAL
            # 0: a local folder; 1: a missing local folder (the demo models before they are
            # built: their error says how); 2: a Hugging Face id, big and maybe not cached.
            hub = looks_like_hub_id(entry.path)
            rank = 0 if Path(entry.path).is_dir() else 2 if hub else 1
            label = f"{name} (missing)" if rank == 1 else name
            # Local models first, so the default is one that can run here.
            (painters if family in DIFFUSION_FAMILIES else typists).append((rank, label, name))
        return ([(label, name) for _, label, name in sorted(painters, key=lambda item: item[0])],
                [(label, name) for _, label, name in sorted(typists, key=lambda item: item[0])])

    def _load_canaries(self) -> tuple[list[Any], str]:
        try:
            from engine.judge.canary import load_canaries

            return load_canaries(self.app.workspace.canaries_path), ""
        except Exception as error:  # noqa: BLE001 - a broken canaries file must not stop the screen
            return [], describe(error)

    # Starting and stopping ---------------------------------------------------------------
    def action_start(self) -> None:
        prompt = self.query_one("#canvas-prompt", Input).value.strip()
        if not prompt:
            self._status("Type a prompt first (or pick a canary), then press enter.", error=True)
            self.query_one("#canvas-prompt", Input).focus()
            return
        try:
            settings = self.query_one(SamplerSettingsPanel).settings()
        except SamplerSettingsError as error:
            self._status(f"Settings: {error}", error=True)
            self.app.notify(str(error), title="Sampler settings", severity="error")
            return
        model_name = self.query_one("#canvas-model", Select).value
        if model_name is Select.NULL:
            self._status("No diffusion model is configured: add one under [models] in voicebench.toml.", error=True)
            return
        entry = self.app.workspace.model(str(model_name))
        if not looks_like_hub_id(entry.path) and not Path(entry.path).is_dir():
            where = _relative(Path(entry.path), self.app.workspace.root)
            self._status(f"{where}: no such model folder in workspace {self.app.workspace.root.name}. "
                         "Build the demo models (`python -m engine.models.demo`) or point [models] at a folder.",
                         error=True)
            return
        self._stop_runs()
        info = RunInfo(model=str(model_name), prompt=prompt, settings=dataclasses.asdict(settings))
        run = LiveRun(info=info, timeline=Timeline(settings.gen_length), run_id=next(self._run_ids))
        self.live_run = self.last_run = run
        self.loading, self.ended = True, "idle"
        self._show_timeline(run.timeline, info, paused=False)
        self._status(f"loading {model_name}…" if self.painter.running else
                     f"starting the sampler process, then loading {model_name}…")
        self.painter.send({"op": "sample", "run": run.run_id, "model": _model_request(entry), "prompt": prompt,
                           "settings": info.settings})
        typist = self.query_one("#canvas-typist", Select).value
        if typist not in (TYPEWRITER_OFF, Select.NULL):
            self.typing = TypingRun(model=str(typist), run_id=next(self._run_ids))
            self.query_one(Typewriter).start(str(typist))
            self.typist.send({"op": "type", "run": self.typing.run_id,
                              "model": _model_request(self.app.workspace.model(str(typist))), "prompt": prompt,
                              "max_new_tokens": settings.gen_length, "temperature": settings.temperature,
                              "seed": settings.seed, "use_template": settings.use_template})
        self.query_one(CanvasView).focus()

    def action_cancel(self) -> None:
        if self.live_run is None and (self.typing is None or not self.query_one(Typewriter).typing):
            if not isinstance(self.focused, CanvasView):
                self.query_one(CanvasView).focus()
            return
        self._stop_runs()
        self._status("cancelled — the frames so far are kept: scrub them, or save with s")

    def _stop_runs(self) -> None:
        if self.live_run is not None:
            self.painter.send({"op": "cancel", "run": self.live_run.run_id})
            self.live_run = None
            self.loading, self.ended = False, "cancelled"
            self._refresh_header()
        if self.typing is not None and self.query_one(Typewriter).typing:
            self.typist.send({"op": "cancel", "run": self.typing.run_id})
            self.query_one(Typewriter).finish("cancelled")
        self.typing = None

    @property
    def busy(self) -> bool:
        """A run or the typewriter is still going (tests wait on this, not on the clock)."""
        return self.live_run is not None or (self.typing is not None and self.query_one(Typewriter).typing)

    def prepare_to_quit(self) -> bool:
        self._stop_runs()
        self.painter.close()
        self.typist.close()
        return True

    def on_unmount(self) -> None:
        self.painter.close()
        self.typist.close()

    # Events from the sampler processes (reader threads: never touch widgets) ----------------
    def _painter_event(self, payload: dict[str, Any]) -> None:
        run = self.live_run
        kind = payload.get("event")
        if kind == "exited":
            if run is not None:  # it died mid-run (a close we asked for has no live run)
                self.post_message(self.RunEnded(run, None, _exit_message(payload)))
            return
        if run is None or payload.get("run") != run.run_id:
            return  # a cancelled run's last frames, or "ready"
        if kind == "step":
            tokens = run.timeline.tokens
            for token_id, text in payload.get("pieces", {}).items():
                tokens[int(token_id)] = text  # pieces first: the UI may draw the frame at once
            frame = StepFrame(step=payload["step"], block=payload["block"],
                              committed=tuple(tuple(item) for item in payload["committed"]),
                              masked=payload["masked"], forward_passes=payload["forward_passes"],
                              signals=payload.get("signals", {}))
            if run.sampling_started is None:
                run.sampling_started = time.perf_counter()
            run.stamps.append(time.perf_counter())
            run.timeline.add(frame)
            if not run.notify_pending:
                run.notify_pending = True
                self.post_message(self.FramesAvailable(run))
        elif kind == "loaded":
            run.info.family = payload.get("family", "")
            self.post_message(self.RunLoaded(run, run.info.family))
        elif kind == "final":
            final = _final_frame(payload)
            run.sampling_seconds = payload.get("sampling_seconds")
            run.timeline.final = final
            self.post_message(self.RunEnded(run, final))
        elif kind == "error":
            self.post_message(self.RunEnded(run, None, payload.get("message", "the sampler failed")))

    def _typist_event(self, payload: dict[str, Any]) -> None:
        typing = self.typing
        kind = payload.get("event")
        if typing is None or (kind != "exited" and payload.get("run") != typing.run_id):
            return
        if kind == "token":
            if typing.started is None:
                typing.started = time.perf_counter()
            typing.pieces.append(payload["text"])
            if not typing.notify_pending:
                typing.notify_pending = True
                self.post_message(self.TokensAvailable(typing))
        elif kind == "final":
            self.post_message(self.TypingEnded(typing, _final_frame(payload)))
        elif kind in ("error", "exited"):
            message = payload.get("message") if kind == "error" else _exit_message(payload)
            self.post_message(self.TypingEnded(typing, None, message or "the typewriter failed"))

    # Messages from the reader threads -----------------------------------------------------
    @on(RunLoaded)
    def _run_loaded(self, message: RunLoaded) -> None:
        if message.run is self.live_run:
            self.loading = False
            self._status(f"sampling with {message.run.info.model} ({message.family})…")
            self._refresh_header()

    @on(FramesAvailable)
    def _frames_available(self, message: FramesAvailable) -> None:
        message.run.notify_pending = False
        if message.run is self.live_run:
            self.loading = False
            self._wake()

    @on(RunEnded)
    def _run_ended(self, message: RunEnded) -> None:
        if message.run is not self.live_run:
            return
        self.live_run, self.loading = None, False
        if message.error:
            self.ended = "failed"
            self._status(message.error, error=True)
            self.app.notify(message.error, title="Canvas run failed", severity="error", timeout=8)
        else:
            self.ended = "done"
            final = message.final
            assert final is not None
            self._status(f"done: {final.forward_passes} forward passes in {final.seconds:.2f}s — "
                         f"“{_shorten(final.text, 90)}”")
        self._wake()
        self._refresh_header()

    @on(TokensAvailable)
    def _tokens_available(self, message: TokensAvailable) -> None:
        typing = message.typing
        typing.notify_pending = False
        if typing is not self.typing:
            return
        new = typing.pieces[typing.shown:]
        typing.shown += len(new)
        elapsed = time.perf_counter() - typing.started if typing.started else 0
        self.query_one(Typewriter).extend(new, typing.shown / elapsed if elapsed > 0 else None)

    @on(TypingEnded)
    def _typing_ended(self, message: TypingEnded) -> None:
        if message.typing is not self.typing:
            return
        writer = self.query_one(Typewriter)
        if message.error:
            writer.fail(message.error)
        else:
            self._tokens_available(self.TokensAvailable(message.typing))
            final = message.final
            assert final is not None
            writer.finish(f"{len(final.token_ids)} tokens in {final.seconds:.2f}s")

    # Display ----------------------------------------------------------------------------
    def _show_timeline(self, timeline: Timeline, info: RunInfo, paused: bool) -> None:
        self.timeline, self.info = timeline, info
        self.step, self.paused, self._following, self._budget = 0, paused, True, 0.0
        self._cascade_warned = False
        self.query_one(CanvasView).load(timeline, int(info.settings.get("block_length", timeline.gen_length)))
        self._refresh_header()
        self._wake()

    def _wake(self) -> None:
        if not self.paused and self.timeline is not None:
            self._last_tick = time.monotonic()
            self._ticker.resume()

    def _tick(self) -> None:
        timeline = self.timeline
        now = time.monotonic()
        elapsed, self._last_tick = now - self._last_tick, now
        if timeline is None or self.paused:
            self._ticker.pause()
            return
        latest = timeline.steps
        running = self.live_run is not None
        if self.step >= latest:
            # Caught up: sleep until the sampler streams more frames (FramesAvailable wakes us).
            self._following = running
            self._ticker.pause()
            self._refresh_header()
            return
        if running and self._following:
            # Live: the newest frame, with every commit since the last paint highlighted.
            advance = latest - self.step
        else:
            self._budget = min(self._budget + elapsed * self.speed, latest - self.step)
            advance = int(self._budget)
            self._budget -= advance
            if not advance:
                return
        self.show_step(self.step + advance, follow=True, batch=True)

    def show_step(self, step: int, follow: bool = False, batch: bool = False) -> None:
        """Draw the canvas after `step` steps (clamped to what exists); `batch`: see CanvasView."""
        if self.timeline is None:
            return
        self.step = max(0, min(step, self.timeline.steps))
        self._view.show_step(self.step, follow=follow, batch=batch)
        frame = self.timeline.frame(self.step)
        if (frame is not None and frame.signals.get("cascade") and not self._cascade_warned
                and self.live_run is not None):
            self._cascade_warned = True
            self.app.notify(f"Repetition cascade from step {self.step}: the same tokens are being committed "
                            "over and over.", title="Degeneration", severity="warning")
        self._refresh_header()

    def _refresh_header(self) -> None:
        timeline = self.timeline
        blocks = 0
        if timeline is not None and self.info is not None:
            blocks = max(1, timeline.gen_length // max(1, int(self.info.settings.get("block_length", 1))))
        planned = None
        if self.info is not None and self.info.settings.get("threshold") is None:
            planned = self.info.settings.get("steps")
        self._header.show(timeline, self.step, self._view.current_block, blocks, self._state(),
                                          self.speed, self._tokens_per_second(), planned)

    def _state(self) -> str:
        if self.loading:
            return "loading"
        if self.timeline is None:
            return "idle"
        if self.paused:
            return "paused"
        if self.live_run is not None:
            return "live"
        if self.step < self.timeline.steps:
            return "replay"
        return self.ended if self.ended != "idle" else "done"

    def _tokens_per_second(self) -> float | None:
        timeline, run = self.timeline, self.last_run
        if timeline is None or self.step == 0:
            return None
        if run is not None and run.timeline is timeline and run.sampling_started and len(run.stamps) >= self.step:
            seconds = run.stamps[self.step - 1] - run.sampling_started
            committed = timeline.gen_length - timeline.frames[self.step - 1].masked
            return committed / seconds if seconds > 0 else None
        if timeline.final is not None and timeline.final.seconds > 0:
            return len(timeline.final.token_ids) / timeline.final.seconds
        return None

    # Playback keys ------------------------------------------------------------------------
    def action_toggle_pause(self) -> None:
        if self.timeline is None:
            return
        self.paused = not self.paused
        if not self.paused:
            if self.live_run is None and self.step >= self.timeline.steps:
                self.show_step(0)  # at the end of a finished run: play it again
            self._following, self._budget = False, 0.0
            self._wake()
        self._refresh_header()

    def action_step_forward(self) -> None:
        self.action_scrub(1)

    def action_scrub(self, delta: int) -> None:
        if self.timeline is None:
            return
        self.paused = True
        self.show_step(self.step + delta, follow=True)

    def action_jump(self, where: str) -> None:
        if self.timeline is None:
            return
        self.paused = True
        self.show_step(0 if where == "first" else self.timeline.steps, follow=True)

    def action_speed(self, direction: int) -> None:
        index = min(range(len(SPEEDS)), key=lambda i: abs(SPEEDS[i] - self.speed))
        self.speed = SPEEDS[max(0, min(len(SPEEDS) - 1, index + direction))]
        self._status(f"replay speed: {self.speed} steps/s")
        self._refresh_header()

    def action_focus_prompt(self) -> None:
        self.query_one("#canvas-prompt", Input).focus()

    # Traces -------------------------------------------------------------------------------
    def action_save(self) -> None:
        if self.timeline is None or not self.timeline.steps or self.info is None:
            self._status("Nothing to save yet: start a run (enter) or open a trace (o).", error=True)
            return
        root = self.app.workspace.root
        default = default_trace_path(self.app.workspace.runs_dir / TRACES_FOLDER, self.info.model, self.info.prompt)
        self.app.push_screen(
            TracePathDialog("Save this run's trace (JSON lines)", _relative(default, root),
                            "enter saves · escape cancels · relative paths are inside the workspace"),
            self.save_trace,
        )

    def save_trace(self, path: str | None) -> Path | None:
        """Save the shown run (as far as it got) to `path`; relative paths are in the workspace."""
        if not path or self.timeline is None or self.info is None:
            return None
        timeline, info = self.timeline, self.info
        used = {token_id for frame in timeline.frames[:] for _, token_id, _ in frame.committed}
        header = TraceHeader(model=info.model, prompt=info.prompt, settings=info.settings, family=info.family,
                             tokens={token_id: timeline.tokens.get(token_id, "") for token_id in used})
        target = self._workspace_path(path)
        try:
            saved = save_trace(target, header, list(timeline.frames), timeline.final)
        except OSError as error:
            self._status(f"Could not save {target}: {error.strerror or error}. Pick another path.", error=True)
            return None
        partial = "" if timeline.final is not None else " (partial: the run did not finish)"
        self._status(f"saved {_relative(saved, self.app.workspace.root)} — {timeline.steps} steps{partial}")
        return saved

    def action_open(self) -> None:
        folder = self.app.workspace.runs_dir / TRACES_FOLDER
        traces = sorted(folder.glob("*.jsonl"), key=lambda p: p.stat().st_mtime) if folder.is_dir() else []
        default = traces[-1] if traces else folder / ""
        self.app.push_screen(
            TracePathDialog("Replay a saved trace", _relative(default, self.app.workspace.root)
                            + ("" if traces else "/"),
                            "a file saved with s, or `voicebench generate --json` output · enter opens"),
            self.replay_trace,
        )

    def replay_trace(self, path: str | Path | None, play: bool = True) -> bool:
        """Load a trace and replay it from step 0 (paused when `play` is False)."""
        if not path:
            return False
        target = self._workspace_path(str(path))
        try:
            trace = load_trace(target)
        except TraceError as error:
            self._status(str(error), error=True)
            self.app.notify(str(error), title="Cannot replay this trace", severity="error", timeout=8)
            return False
        self._stop_runs()
        timeline = Timeline.from_trace(trace)
        missing = {token_id for frame in trace.frames for _, token_id, _ in frame.committed} - set(timeline.tokens)
        if missing:
            timeline.tokens.update(self._pieces_from_tokenizer(missing))
        header = trace.header
        info = RunInfo(model=header.model if header else "?", prompt=header.prompt if header else "",
                       settings=dict(header.settings) if header else {"gen_length": trace.gen_length,
                                                                        "block_length": trace.gen_length},
                       family=header.family if header else "")
        if header is not None:
            self.query_one("#canvas-prompt", Input).value = header.prompt
            self.query_one(SamplerSettingsPanel).load(header.settings)
        self.last_run, self.ended = None, ("done" if trace.final is not None else "cancelled")
        self.query_one(Typewriter).clear("idle while a trace replays")
        self._show_timeline(timeline, info, paused=not play)
        self._status(f"replaying {target.name} — {timeline.steps} steps · space pause · ←/→ scrub · +/- speed")
        self.query_one(CanvasView).focus()
        return True

    def _pieces_from_tokenizer(self, token_ids: set[int]) -> dict[int, str]:
        """Token text for header-less traces, from the selected model's tokenizer.json (no torch)."""
        model_name = self.query_one("#canvas-model", Select).value
        if model_name is Select.NULL:
            return {}
        tokenizer_file = Path(self.app.workspace.model(str(model_name)).path) / "tokenizer.json"
        try:
            from tokenizers import Tokenizer

            tokenizer = Tokenizer.from_file(str(tokenizer_file))
        except Exception:  # noqa: BLE001 - fall back to showing ids
            return {}
        return {token_id: tokenizer.decode([token_id], skip_special_tokens=False) for token_id in token_ids}

    def _workspace_path(self, path: str) -> Path:
        candidate = Path(path).expanduser()
        return candidate if candidate.is_absolute() else self.app.workspace.root / candidate

    # Presets ------------------------------------------------------------------------------
    def action_save_preset(self, name: str = "") -> None:
        """Ask for a name, then save the shown settings as a preset (asking before replacing one)."""
        from engine.sample.sweep import SweepError, load_presets
        from tui.widgets.preset_dialog import ConfirmOverwriteDialog, PresetNameDialog

        try:
            values = self.query_one(SamplerSettingsPanel).preset_values()
        except SamplerSettingsError as error:
            self._status(f"Settings: {error} — fix them before saving a preset.", error=True)
            return
        try:
            existing = load_presets(self.app.workspace)
        except SweepError as error:
            self._status(str(error), error=True)
            return

        def named(chosen: str | None) -> None:
            if chosen is None:
                self._status("preset not saved")
            elif chosen in existing:
                self.app.push_screen(ConfirmOverwriteDialog(chosen, existing[chosen], values),
                                     lambda yes: self.save_preset(chosen, values) if yes
                                     else self.action_save_preset(chosen))
            else:
                self.save_preset(chosen, values)

        self.app.push_screen(PresetNameDialog(values, sorted(existing), name), named)

    def save_preset(self, name: str, values: dict[str, Any]) -> Path | None:
        """Write the preset through the engine (the one writer of presets.toml)."""
        from engine.sample.sweep import SweepError, save_preset

        try:
            path = save_preset(self.app.workspace, name, values)
        except (SweepError, OSError) as error:
            self._status(f"Could not save preset {name!r}: {error}", error=True)
            return None
        self._status(f"saved preset {name!r} to {_relative(path, self.app.workspace.root)} — "
                     f"`--preset {name}` with sweep or canary")
        return path

    # Prompt and canaries ------------------------------------------------------------------
    @on(Input.Submitted, "#canvas-prompt")
    @on(Input.Submitted, "#canvas-settings Input")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_start()

    @on(Select.Changed, "#canvas-canary")
    def _canary_chosen(self, event: Select.Changed) -> None:
        canary = next((c for c in self.canaries if c.id == event.value), None)
        if canary is None:
            return
        self.query_one("#canvas-prompt", Input).value = canary.prompt
        self.query_one(SamplerSettingsPanel).fit_length(canary.max_new_tokens)
        self._status(f"canary {canary.id} ({canary.kind}): gen length {canary.max_new_tokens} — enter to start")

    def _status(self, message: str, error: bool = False) -> None:
        status = self.query_one("#canvas-status", Static)
        status.set_class(error, "error")
        status.update(message)


def _default(options: list[tuple[str, str]], preferred: str) -> str | Any:
    """The preferred model when it is on disk, else the first that is (options list those first)."""
    values = [value for _label, value in options]
    if (preferred, preferred) in options:
        return preferred
    return values[0] if values else Select.NULL


def _model_request(entry: ModelEntry) -> dict[str, Any]:
    return {"path": entry.path, "family": entry.family, "trust_remote_code": entry.trust_remote_code,
            "load_in_4bit": entry.load_in_4bit, "adapter": entry.adapter}


def _final_frame(payload: dict[str, Any]) -> FinalFrame:
    return FinalFrame(prompt_ids=tuple(payload["prompt_ids"]), token_ids=tuple(payload["token_ids"]),
                      text=payload["text"], forward_passes=payload["forward_passes"], seconds=payload["seconds"])


def _exit_message(payload: dict[str, Any]) -> str:
    last = next((line for line in reversed(payload.get("stderr", [])) if line.strip()), "")
    return f"the sampler process stopped (exit code {payload.get('code')})" + (f": {last}" if last else "")


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _shorten(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
