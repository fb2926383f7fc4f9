"""The Train screen: set up a fine-tuning run, launch it as a child process, watch it, compare runs.

Layout: the settings form on the left; on the right the run's status line, the loss plot
(train and val curves; two marked runs overlaid), and tabs for the log tail, canary
outputs, the loss-mask preview and the runs list with the settings diff.

Training runs in `python -m engine.train … --json` (tui/train_process.py). Thread workers
read its pipes and wait on its process handle and post messages; the handlers here own all
widget state. The UI process never imports torch: the preview tokenises with `tokenizers`,
the form reads config.json.

Behaviour the writer relies on (README, Train):
- ctrl+t asks the run to stop (finish the step, checkpoint, skip canaries); only a second
  ctrl+t kills it. The exit is seen at once and shown as cancelled / interrupted / failed
  with its cause (the trainer's error event; library warnings on stderr are never a cause).
- ctrl+r resumes a stopped run in the same session; its curve keeps the points before the
  checkpoint, and the status line says where it resumed.
- ctrl+q while a run trains asks: stop it (wait for the checkpoint, then quit) or leave it
  running (it keeps training after the app exits; the runs list shows it live next time).
- Every long phase shows in the status line: loading, canary 3/5, evaluating, saving.
- While a blind judging session is open, the Canaries tab hides the texts until ctrl+g.
- Before launch, a line under the status predicts the run's peak GPU memory and the smallest
  card it fits (engine.models.memory, re-estimated as the form changes, in a worker that
  never imports torch); F10 shows the breakdown, and a run's measured peak beside it.
- The runs list shows each run's best-judged checkpoint; p on it promotes a checkpoint through
  the gate (tui/screens/train_promote.py), asking before forcing past a verdict other than better.
- At 80 columns the form narrows and ctrl+b hides it; below 32 rows the plot shrinks.
"""

from __future__ import annotations

import dataclasses
import re
import shlex
import signal
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Input, RichLog, Select, Static, TabbedContent, TabPane
from textual.worker import get_current_worker

from engine.curate.file_tokenizer import FileTokenizer
from engine.curate.tokens import TokenizerUnavailable
from engine.display import safe_text
from engine.train.config import ConfigError, TrainConfig, config_from_dict
from engine.train.data import DataError, MaskPreview, loss_mask_preview
from engine.train.runs import Curves, RunSummary, checkpoint_label, list_runs, next_label, read_curves
from tui.screens.base import WorkbenchScreen
from tui.train_defaults import ModelFacts, base_config, default_method, model_facts, ordered_models
from tui.screens.train_promote import ForceDialog, checkpoint_to_promote, gate_checkpoint, promote_checkpoint, read_best
from tui.screens.train_quit import QuitWhileTrainingDialog, StoppingDialog, WorkTimer
from tui.train_process import (
    ENGINE_COMMAND,
    ChildEvents,
    ChildExited,
    ChildOutput,
    TrainProcess,
    build_command,
    launcher,
)
from tui.widgets.loss_plot import LossPlot, Series
from tui.widgets.train_fit import FitLine, fit_report
from tui.widgets.train_form import FormError, TrainForm
from tui.widgets.train_preview import MaskPreviewView
from tui.widgets.train_runs_list import RunsTable, best_text, diff_text
from tui.widgets.train_stats import RunView, TrainStats, phase_text

LOG_LINES = 2000  # log tail kept in memory
STDERR_TAIL = 40  # stderr lines kept to find a cause when the child dies without reporting
RESUMABLE_STATUSES = ("cancelled", "failed", "interrupted")
ESTIMATE_DEBOUNCE_S = 0.3  # typing "1024" re-estimates once, not four times
NARROW_WIDTH = 100  # below this many columns the form narrows
SHORT_HEIGHT = 32  # below this many rows the plot shrinks
# Curve styles: the run on show (or A when comparing) and B.
STYLES = (("cyan", "yellow"), ("magenta", "green"))


@dataclasses.dataclass
class LiveRun:
    """The child process this screen launched, and what it has reported so far."""

    process: TrainProcess
    curves: Curves = dataclasses.field(default_factory=Curves)
    view: RunView = dataclasses.field(default_factory=lambda: RunView(status="starting"))
    run_dir: str | None = None
    done: Any = None  # the DoneEvent
    error: Any = None  # the ErrorEvent
    exit_code: int | None = None
    stderr_tail: deque[str] = dataclasses.field(default_factory=lambda: deque(maxlen=STDERR_TAIL))
    quit_when_stopped: bool = False  # the writer chose "stop it" in the quit dialog
    timer: WorkTimer = dataclasses.field(default_factory=WorkTimer)  # times work for the stop countdown

    @property
    def active(self) -> bool:
        return self.exit_code is None


def cause_from_stderr(lines: list[str]) -> str:
    """What stderr says went wrong: the last traceback, else the last line that is not a
    library warning (a FutureWarning and its source line are noise, not a cause); "" if none."""
    kept: list[str] = []
    skipping = False
    for line in lines:
        if "Warning:" in line or line.lstrip().startswith("warnings.warn"):
            skipping = True
            continue
        if skipping and line[:1].isspace():
            continue  # the source line Python prints under a warning
        skipping = False
        kept.append(line)
    starts = [index for index, line in enumerate(kept) if line.startswith("Traceback (most recent call last)")]
    if starts:
        return "\n".join(kept[starts[-1]:][-8:])
    return kept[-1].strip() if kept else ""


def checkpoint_step(path: str | None) -> int | None:
    match = re.search(r"checkpoint-(\d+)$", path or "")
    return int(match.group(1)) if match else None


def run_detail(run: RunSummary) -> Text:
    """One line about a run: its name, status, last checkpoint ("label @ step 20"), resumable."""
    text = Text()
    text.append(run.label, style="bold")
    text.append(f"  {run.status}")
    step = checkpoint_step(run.last_checkpoint)
    if step is not None:
        text.append(f"  last checkpoint: {checkpoint_label(run, step)}")
    if run.status in RESUMABLE_STATUSES and run.resumable:
        text.append("  resumable: ctrl+r", style="yellow")
    if run.status == "running" and run.pid:
        text.append(f"  (pid {run.pid})", style="dim")
    return text


def curve_series(curves: Curves, name: str, styles: tuple[str, str]) -> list[Series]:
    prefix = f"{name} " if name else ""
    return [Series(f"{prefix}train", tuple(curves.train), styles[0]),
            Series(f"{prefix}val", tuple(curves.val), styles[1], marker=True)]


def view_from(curves: Curves, run_id: str, status: str, label: str = "") -> RunView:
    last = curves.last_step or {}
    return RunView(
        run_id=run_id, status=status, label=label, step=int(last.get("step", 0)), max_steps=curves.max_steps,
        loss=curves.train[-1][1] if curves.train else None, val_loss=curves.val[-1][1] if curves.val else None,
        lr=last.get("lr"), tokens_per_s=last.get("tokens_per_s"), memory=last.get("memory"),
        eta_s=last.get("eta_s") if status == "running" else None, world_size=last.get("world_size"),
    )


def short_command(command: list[str]) -> str:
    shown = ["python" if part == sys.executable else part for part in command]
    return shlex.join(shown)


class TrainScreen(WorkbenchScreen):
    SCREEN_NAME = "train"
    CSS_PATH = "train.tcss"
    AUTO_FOCUS = "#train-model"
    BINDINGS = [
        Binding("ctrl+s", "start", "Start", id="train.start", priority=True,
                tooltip="Start a run with these settings (a child process)"),
        Binding("ctrl+t", "cancel", "Cancel", id="train.cancel", priority=True,
                tooltip="Cancel the run: finish the step and checkpoint (no canaries); press again to force (kill)"),
        Binding("ctrl+r", "resume", "Resume", id="train.resume", priority=True,
                tooltip="Resume the stopped run (or the one highlighted on the runs list) from its last checkpoint"),
        Binding("ctrl+b", "toggle_form", "Form", id="train.form", priority=True,
                tooltip="Hide or show the settings form (more room for the plot and tabs)"),
        Binding("ctrl+g", "show_canaries", "Show canaries", id="train.show_canaries", priority=True,
                tooltip="Show canary texts although a blind judging session is open"),
        Binding("ctrl+l", "use_settings", "Use settings", id="train.use_settings", priority=True,
                tooltip="Copy the highlighted run's settings into the form"),
        Binding("ctrl+n", "defaults", "Defaults", id="train.defaults", priority=True,
                tooltip="Reset the form to the defaults for this model and method"),
        Binding("f5", "tab('log')", "Log", id="train.tab.log", tooltip="Show the log tail"),
        Binding("f6", "tab('canaries')", "Canaries", id="train.tab.canaries", tooltip="Show canary outputs"),
        Binding("f7", "tab('mask')", "Mask", id="train.tab.mask", tooltip="Show the loss-mask preview"),
        Binding("f8", "tab('runs')", "Runs", id="train.tab.runs", tooltip="Show (and re-read) the runs list"),
        Binding("f9", "next_pair", "Next pair", id="train.next_pair", tooltip="Preview the next pair's loss mask"),
        Binding("f10", "tab('memory')", "Memory", id="train.tab.memory",
                tooltip="Will it fit? The predicted peak GPU memory, term by term, per card"),
    ]

    # Tests swap this for a fake child.
    child_command: tuple[str, ...] = ENGINE_COMMAND

    class RunsLoaded(Message):
        def __init__(self, runs: list[RunSummary]) -> None:
            super().__init__()
            self.runs = runs

    class CurvesLoaded(Message):
        """Curves read from run folders: one run on show, or the two compared."""

        def __init__(self, runs: tuple[RunSummary, ...], curves: tuple[Curves, ...]) -> None:
            super().__init__()
            self.runs = runs
            self.curves = curves

    class BlindState(Message):
        """Open blind judging sessions (ids), read from judgments.db in a worker."""

        def __init__(self, session_ids: tuple[int, ...]) -> None:
            super().__init__()
            self.session_ids = session_ids

    class BestLoaded(Message):
        """Each run's best-judged checkpoint (tui/screens/train_promote.read_best)."""

        def __init__(self, best: dict[str, Any], error: str = "") -> None:
            super().__init__()
            self.best = best
            self.error = error

    class GateReady(Message):
        def __init__(self, run: RunSummary, folder: Path | None, gate: Any = None, error: str = "") -> None:
            super().__init__()
            self.run, self.folder, self.gate, self.error = run, folder, gate, error

    class Promoted(Message):
        def __init__(self, run: RunSummary, promotion: Any = None, error: str = "") -> None:
            super().__init__()
            self.run, self.promotion, self.error = run, promotion, error

    class EstimateReady(Message):
        def __init__(self, key: int, estimate: Any, message: str = "") -> None:
            super().__init__()
            self.key, self.estimate, self.message = key, estimate, message

    class PreviewReady(Message):
        def __init__(self, key: tuple[Any, ...], preview: MaskPreview | None, label: str, message: str = "") -> None:
            super().__init__()
            self.key = key
            self.preview = preview
            self.label = label
            self.message = message

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.live: LiveRun | None = None
        self.run_token = 0
        self.facts: ModelFacts | None = None
        self.pair_index = 0
        self.preview_key: tuple[Any, ...] = ()
        self.preview_pairs: tuple[Any, list[Any]] = (None, [])  # (file version, pairs to preview)
        self.shown_runs: tuple[RunSummary, ...] = ()  # runs whose curves the plot shows when no live run
        self.shown_curves: tuple[Curves, ...] = ()
        self.quit_ready = False  # the writer has decided about the live run; quitting may proceed
        self.blind_sessions: tuple[int, ...] | None = None  # None: not checked yet (hide meanwhile)
        self.canaries_unblinded: tuple[int, ...] | None = None  # the sessions "show anyway" was pressed for
        self.stopping: StoppingDialog | None = None
        self.best_checkpoints: dict[str, Any] = {}  # run id -> BestCheckpoint (from judgments.db)
        self.estimate_key = 0  # the newest estimate asked for; older answers are dropped
        self.estimate: tuple[Any, str] = (None, "")  # (MemoryEstimate | None, why not) for the form
        self.launch_estimate: Any = None  # the estimate of the settings the live run was launched with

    # Layout ---------------------------------------------------------------------------------
    def compose_body(self):
        workspace = self.app.workspace
        models = [(entry.name, entry.name) for entry in ordered_models(workspace)]
        with Horizontal(id="train-body"):
            with Vertical(id="train-left"):
                yield TrainForm(models, id="train-form")
            with Vertical(id="train-right"):
                yield TrainStats(id="train-stats")
                yield FitLine("", id="train-fit")
                yield Static("", id="train-error")
                yield LossPlot(id="train-plot")
                with TabbedContent(id="train-tabs", initial="runs"):
                    with TabPane("Log F5", id="log"):
                        yield RichLog(id="train-log", max_lines=LOG_LINES, wrap=True, markup=False)
                    with TabPane("Canaries F6", id="canaries"):
                        yield Static("", id="train-canary-blind")
                        yield RichLog(id="train-canary-log", max_lines=LOG_LINES, wrap=True, markup=False)
                    with TabPane("Mask F7", id="mask"):
                        with VerticalScroll(id="train-preview-scroll"):
                            yield MaskPreviewView("", id="train-preview")
                    with TabPane("Runs F8", id="runs"):
                        yield RunsTable(id="train-runs")
                        yield Static("", id="train-diff")
                    with TabPane("Memory F10", id="memory"):
                        with VerticalScroll(id="train-fit-scroll"):
                            yield Static("", id="train-fit-report")

    def on_mount(self) -> None:
        self.query_one("#train-plot").border_title = "loss"
        self.query_one("#train-error").display = False
        self.query_one(TrainStats).show(RunView())
        form = self.query_one(TrainForm)
        if form.model:
            self._apply_model_defaults(form.model, reset_all=True)
        self._apply_size()
        self._show_canaries_or_blind()
        self.refresh_runs()
        self.check_blind()
        # A run left training by an earlier session (or another terminal) moves on the runs list.
        self.set_interval(2.0, self._follow_detached_runs)

    # Size -----------------------------------------------------------------------------------
    def on_resize(self) -> None:
        self._apply_size()

    def _apply_size(self) -> None:
        self.set_class(self.size.width < NARROW_WIDTH, "-narrow")
        self.set_class(self.size.height < SHORT_HEIGHT, "-short")

    def action_toggle_form(self) -> None:
        left = self.query_one("#train-left")
        left.display = not left.display
        if not left.display and self.focused is not None and left in self.focused.ancestors:
            self.query_one(RunsTable).focus()

    # Form -----------------------------------------------------------------------------------
    def _defaults_for(self, model: str, method: str | None = None) -> tuple[TrainConfig, ModelFacts]:
        workspace = self.app.workspace
        entry = workspace.model(model)
        facts = model_facts(entry)
        config = base_config(workspace)
        method = method or default_method(facts)
        max_length = min(config.max_length, entry.context_length) if entry.context_length else config.max_length
        config = dataclasses.replace(config, model=model, method=method, max_length=max_length)
        return config, facts

    def _apply_model_defaults(self, model: str, *, reset_all: bool) -> None:
        """A new model: method, lr, LoRA targets and max length follow its family; with
        `reset_all` every field returns to its default."""
        form = self.query_one(TrainForm)
        config, facts = self._defaults_for(model)
        if reset_all or self.facts is None:
            form.fill(config, facts, config.method)
        else:
            form.set_method_options(facts, default_method(facts))
            form.input("lr").value = ""
            form.input("lora_targets").value = ""
            form.input("max_length").value = str(config.max_length)
            form.update_hints()
        self.facts = facts
        self._update_label_placeholder()
        self.request_preview()
        self.request_estimate()

    @on(Select.Changed, "#train-model")
    def _model_changed(self, event: Select.Changed) -> None:
        if self.facts is not None and event.value != self.facts.name and event.value is not Select.NULL:
            self._apply_model_defaults(str(event.value), reset_all=False)

    @on(Select.Changed, "#train-method")
    def _method_changed(self) -> None:
        self.query_one(TrainForm).update_hints()
        self._update_label_placeholder()
        self.request_preview()

    def _update_label_placeholder(self) -> None:
        """The label a run gets when the field stays empty (the engine's own rule)."""
        form = self.query_one(TrainForm)
        if form.model:
            form.input("label").placeholder = next_label(self.query_one(RunsTable).runs, form.model, form.method)

    @on(Select.Changed, "#train-template")
    def _template_changed(self) -> None:
        self.request_preview()

    @on(Input.Changed, "#train-max_length")
    def _max_length_changed(self) -> None:
        self.request_preview()

    # Will it fit? -------------------------------------------------------------------------------
    @on(Input.Changed, "#train-form Input")
    @on(Select.Changed, "#train-form Select")
    def _form_changed(self) -> None:
        self.request_estimate()

    def request_estimate(self) -> None:
        """Estimate the run the form would launch (as ctrl+s builds it); debounced in the worker."""
        form = self.query_one(TrainForm)
        self.estimate_key += 1
        if not form.model:
            self._show_estimate(None, "")
            return
        try:
            settings = form.settings()
        except FormError as error:
            self._show_estimate(None, f"memory estimate waits for the form: {error}")
            return
        if self.facts is not None and self.facts.name == form.model and self.facts.path is None:
            self._show_estimate(None, f"memory estimate needs {form.model}'s config.json, which is not on this "
                                      "machine")
            return
        if settings["method"] == "dpo":
            self._show_estimate(None, "memory estimate unavailable for dpo (the estimator covers lora, qlora, "
                                      "full and diffusion)")
            return
        config = dataclasses.replace(base_config(self.app.workspace), **settings)
        self.estimate_memory(self.estimate_key, config)

    @work(thread=True, exclusive=True, exit_on_error=False, group="train-estimate")
    def estimate_memory(self, key: int, config: TrainConfig) -> None:
        time.sleep(ESTIMATE_DEBOUNCE_S)  # a newer keystroke cancels this worker meanwhile
        if get_current_worker().is_cancelled:
            return
        from engine.models.memory import estimate_for_config

        try:
            estimate = estimate_for_config(self.app.workspace, config, quick=True, torch_free=True)
        except Exception as error:  # noqa: BLE001 - a model not on this machine or an odd config: say why, inline
            self.post_message(self.EstimateReady(key, None, f"memory estimate unavailable: {error}"))
            return
        self.post_message(self.EstimateReady(key, estimate))

    @on(EstimateReady)
    def _estimate_ready(self, message: EstimateReady) -> None:
        if message.key == self.estimate_key:
            self._show_estimate(message.estimate, message.message)

    def _show_estimate(self, estimate: Any, message: str) -> None:
        self.estimate = (estimate, message)
        self._show_fit()

    def _show_fit(self) -> None:
        """The form's estimate; while a run trains, its launch estimate against its measured peak
        (after it ends, the breakdown keeps that comparison under the form's estimate)."""
        live = self.live
        measured = live.view.memory if live is not None and live.view.memory else None
        label = live.view.label or "the run" if live is not None else ""
        fit = self.query_one(FitLine)
        panel = self.query_one("#train-fit-report", Static)
        if live is not None and live.active and self.launch_estimate is not None:
            fit.show(self.launch_estimate, "", measured)
            panel.update(fit_report(self.launch_estimate, "", measured, label))
            return
        estimate, message = self.estimate
        fit.show(estimate, message)
        text = fit_report(estimate, message)
        if live is not None and measured is not None and self.launch_estimate is not None:
            text.append(f"\n\nLast run, {label}: measured {measured / 1024:.1f} GB peak against "
                        f"{self.launch_estimate.total_bytes / 1024**3:.1f} GB predicted.", style="bold")
        panel.update(text)

    def action_defaults(self) -> None:
        form = self.query_one(TrainForm)
        config, facts = self._defaults_for(form.model, form.method)
        form.fill(config, facts, config.method)
        self.facts = facts
        self.request_preview()
        self.notify(f"Defaults for {facts.name} ({facts.family}, {config.method}).", timeout=3)

    def action_use_settings(self) -> None:
        run = self.query_one(RunsTable).highlighted_run
        if run is None:
            self.notify("No run highlighted: open the runs list (F8) and pick one.", severity="warning")
            return
        try:
            config = config_from_dict(dict(run.config), str(run.path / "config.toml"))
        except (ConfigError, TypeError) as error:
            self.notify(f"Cannot use that run's settings: {error}", severity="error")
            return
        if config.model not in self.app.workspace.models:
            self.notify(f"{run.run_id} trained {config.model!r}, which is not a workspace model; "
                        "add it under [models] in voicebench.toml.", severity="warning")
            return
        form = self.query_one(TrainForm)
        facts = model_facts(self.app.workspace.model(config.model))
        self.facts = facts
        form.query_one("#train-model", Select).value = config.model
        form.fill(config, facts, config.method)
        form.input("label").value = ""  # a new run gets its own name
        self._update_label_placeholder()
        self.request_preview()
        self.notify(f"Settings of {run.run_id} loaded into the form.", timeout=3)

    # Loss-mask preview ------------------------------------------------------------------------
    def request_preview(self) -> None:
        form = self.query_one(TrainForm)
        if self.facts is None:
            return
        try:
            max_length = int(form.input("max_length").value)
        except ValueError:
            return
        template = str(form.query_one("#train-template", Select).value)
        key = (self.facts.name, template, max_length, self.pair_index)
        self.preview_key = key
        self.build_preview(key, self.facts, template, max_length, self.pair_index)

    def action_next_pair(self) -> None:
        self.pair_index += 1
        self.request_preview()
        self.action_tab("mask")

    @work(thread=True, exclusive=True, exit_on_error=False, group="train-preview")
    def build_preview(self, key: tuple[Any, ...], facts: ModelFacts, template: str, max_length: int,
                      pair_index: int) -> None:
        from engine.curate.pairs import load_pairs

        path = self.app.workspace.pairs_path
        if not path.exists():
            self.post_message(self.PreviewReady(key, None, "", f"{path}: no pairs file yet (make pairs on F1)."))
            return
        stamp = path.stat()
        version = (stamp.st_mtime_ns, stamp.st_size)
        if self.preview_pairs[0] != version:  # read the file again only when it changed
            pairs = load_pairs(path).pairs
            usable = [pair for pair in pairs if pair.split == "train" and pair.prompt and pair.response] or pairs
            self.preview_pairs = (version, usable)
        usable = self.preview_pairs[1]
        if not usable:
            self.post_message(self.PreviewReady(key, None, "", f"{path}: no pairs to preview."))
            return
        pair = usable[pair_index % len(usable)]
        label = f"pair {pair.id} ({pair_index % len(usable) + 1}/{len(usable)})"
        if facts.path is None:
            self.post_message(self.PreviewReady(
                key, None, label, f"{facts.name}: the model is not on this machine, so there is no tokenizer to preview with."))
            return
        try:
            preview = loss_mask_preview(FileTokenizer(facts.path), pair.prompt, pair.response, template, max_length,
                                        model_type=facts.model_type)
        except (TokenizerUnavailable, ConfigError, DataError) as error:
            self.post_message(self.PreviewReady(key, None, label, f"{facts.name}: {error}"))
            return
        except Exception as error:  # noqa: BLE001 - a broken tokenizer file must not take the screen down
            self.post_message(self.PreviewReady(key, None, label, f"{facts.name}: preview failed: {error!r}"))
            return
        self.post_message(self.PreviewReady(key, preview, label))

    @on(PreviewReady)
    def _preview_ready(self, message: PreviewReady) -> None:
        if message.key != self.preview_key:
            return  # settings changed since; a newer preview is on its way
        view = self.query_one(MaskPreviewView)
        if message.preview is None:
            view.show_message(message.message)
        else:
            objective = self.facts.objective if self.facts else "causal"
            view.show(message.preview, objective, message.label)

    # Runs list, curves, compare -----------------------------------------------------------------
    @work(thread=True, exclusive=True, exit_on_error=False, group="train-runs")
    def refresh_runs(self) -> None:
        # Only a child still running counts as live: once it exits, a "running" status.json
        # left behind (killed before it could write) reads as interrupted, and resumable.
        live = self.live
        live_pids = {live.process.pid} if live and live.active and live.process.pid else set()
        self.post_message(self.RunsLoaded(list_runs(self.app.workspace.runs_dir, live_pids=live_pids)))

    @on(RunsLoaded)
    def _runs_loaded(self, message: RunsLoaded) -> None:
        table = self.query_one(RunsTable)
        table.set_runs(message.runs)
        self._show_live_row()
        self._update_label_placeholder()
        self._show_selected_runs()
        self.load_best([run.run_id for run in message.runs])

    # Best checkpoints and promotion ---------------------------------------------------------------
    @work(thread=True, exclusive=True, exit_on_error=False, group="train-best")
    def load_best(self, run_ids: list[str]) -> None:
        try:
            best = read_best(self.app.workspace, run_ids)
        except Exception as error:  # noqa: BLE001 - an unreadable store must not take the list down
            self.post_message(self.BestLoaded({}, f"{self.app.workspace.db_path}: {error}"))
            return
        if not get_current_worker().is_cancelled:
            self.post_message(self.BestLoaded(best))

    @on(BestLoaded)
    def _best_loaded(self, message: BestLoaded) -> None:
        table = self.query_one(RunsTable)
        table.set_best({run_id: best_text(item.best, item.has_outputs) for run_id, item in message.best.items()})
        self.best_checkpoints = message.best
        if message.error:
            self._log(f"best checkpoints unavailable: {message.error}", "yellow")

    @on(RunsTable.PromoteRequested)
    def _promote_requested(self, message: RunsTable.PromoteRequested) -> None:
        run = message.run
        known = self.best_checkpoints.get(run.run_id)
        best_step = known.best["step"] if known is not None and known.best is not None else None
        self.notify(f"Gate for {run.label}: comparing with the current version on the canaries…", timeout=3)
        self.gate_run(run, best_step)

    @work(thread=True, exclusive=True, exit_on_error=False, group="train-promote")
    def gate_run(self, run: RunSummary, best_step: int | None) -> None:
        from engine.models.portable import ArtefactError
        from engine.workspace import WorkspaceError

        folder = None
        try:
            folder = checkpoint_to_promote(run, best_step)
            self.post_message(self.GateReady(run, folder, gate_checkpoint(self.app.workspace, folder)))
        except (ArtefactError, WorkspaceError) as error:
            self.post_message(self.GateReady(run, folder, error=str(error)))
        except Exception as error:  # noqa: BLE001 - a broken store says so instead of crashing the screen
            self.post_message(self.GateReady(run, folder, error=f"gate failed: {error!r}"))

    @on(GateReady)
    def _gate_ready(self, message: GateReady) -> None:
        if message.error:
            self._log(f"promote {message.run.label}: {message.error}", "red")
            self.notify(message.error, title="Not promoted", severity="error", timeout=8)
            return
        gate, folder = message.gate, message.folder
        name = checkpoint_label(message.run, checkpoint_step(str(folder)))
        self._log(f"gate for {name}: {gate.message}", "bold")
        if gate.verdict == "better":
            self.promote_run(message.run, folder, False)
            return

        def decided(force: bool | None) -> None:
            if force:
                self.promote_run(message.run, folder, True)
            else:
                self._log(f"{name} not promoted (gate: {gate.verdict})", "yellow")
                self.notify(f"{name} not promoted (gate: {gate.verdict}).", timeout=4)

        self.app.push_screen(ForceDialog(name, gate.verdict, gate.message), decided)

    @work(thread=True, exclusive=True, exit_on_error=False, group="train-promote")
    def promote_run(self, run: RunSummary, folder: Path, force: bool) -> None:
        from engine.models.portable import ArtefactError
        from engine.workspace import WorkspaceError

        try:
            self.post_message(self.Promoted(run, promote_checkpoint(self.app.workspace, folder, force=force)))
        except (ArtefactError, WorkspaceError) as error:
            self.post_message(self.Promoted(run, error=str(error)))
        except Exception as error:  # noqa: BLE001
            self.post_message(self.Promoted(run, error=f"promotion failed: {error!r}"))

    @on(Promoted)
    def _promoted(self, message: Promoted) -> None:
        if message.error:
            self._log(f"promote {message.run.label}: {message.error}", "red")
            self.notify(message.error, title="Not promoted", severity="error", timeout=8)
            return
        version = message.promotion.version
        forced = " (forced past the gate)" if version.forced else ""
        text = f"{version.name} is now current{forced}: {message.run.label} @ step {version.step}"
        self._log(f"{text}; the Versions view lists it", "bold green")
        self.notify(text + ". v on the runs list opens the Versions view.", title="Promoted", timeout=6)

    def _show_live_row(self) -> None:
        """The live run's row says what the status line says (no waiting for status.json)."""
        live = self.live
        if live is not None and live.view.run_id:
            view = live.view
            self.query_one(RunsTable).show_live(view.run_id, view.status, view.step, view.max_steps, view.loss)

    def _follow_detached_runs(self) -> None:
        """Re-read the runs list while a run this screen did not start is training."""
        runs = self.query_one(RunsTable).runs
        own = self.live.view.run_id if self.live is not None and self.live.active else None
        if any(run.status == "running" and run.run_id != own for run in runs):
            self.refresh_runs()

    @on(DataTable.RowHighlighted, "#train-runs")
    def _run_highlighted(self) -> None:
        self._show_selected_runs()

    @on(RunsTable.MarksChanged)
    def _marks_changed(self) -> None:
        self._show_selected_runs()

    def _show_selected_runs(self) -> None:
        """Two marked runs: compare them. Otherwise the highlighted run (under any live run)."""
        table = self.query_one(RunsTable)
        marked = [run for run in (table.run_by_id(run_id) for run_id in table.marked) if run is not None]
        diff = self.query_one("#train-diff", Static)
        if len(marked) == 2:
            diff.update(diff_text(marked[0], marked[1]))
            self.load_curves(tuple(marked))
            return
        hint = "space marks a run; mark two to overlay their curves and diff their settings"
        highlighted = table.highlighted_run
        text = Text()
        if highlighted is not None:
            text.append_text(run_detail(highlighted))
            text.append("\n")
        text.append(hint + (f" (marked: {marked[0].label})" if marked else ""), style="dim")
        diff.update(text)
        if highlighted is not None:
            self.load_curves((highlighted,))
        else:
            self.shown_runs, self.shown_curves = (), ()
            self.update_plot()

    @work(thread=True, exclusive=True, exit_on_error=False, group="train-curves")
    def load_curves(self, runs: tuple[RunSummary, ...]) -> None:
        curves = tuple(read_curves(run.path / "events.jsonl") for run in runs)
        if not get_current_worker().is_cancelled:
            self.post_message(self.CurvesLoaded(runs, curves))

    @on(CurvesLoaded)
    def _curves_loaded(self, message: CurvesLoaded) -> None:
        self.shown_runs, self.shown_curves = message.runs, message.curves
        self.update_plot()

    def update_plot(self) -> None:
        """Compare (two marked runs) > the live run > the highlighted run."""
        plot = self.query_one(LossPlot)
        stats = self.query_one(TrainStats)
        if len(self.shown_runs) == 2:
            series = [*curve_series(self.shown_curves[0], "A", STYLES[0]),
                      *curve_series(self.shown_curves[1], "B", STYLES[1])]
            x_max = max(curves.max_steps or 0 for curves in self.shown_curves) or None
            plot.set_series(series, x_max)
            plot.border_title = f"loss: A {self.shown_runs[0].label} vs B {self.shown_runs[1].label}"
        elif self.live is not None and (self.live.active or not self.shown_runs):
            plot.set_series(curve_series(self.live.curves, "", STYLES[0]), self.live.curves.max_steps)
            plot.border_title = f"loss: {self.live.view.label or self.live.view.run_id or 'new run'}"
        elif self.shown_runs:
            run, curves = self.shown_runs[0], self.shown_curves[0]
            plot.set_series(curve_series(curves, "", STYLES[0]), curves.max_steps or run.max_steps)
            plot.border_title = f"loss: {run.label}"
        else:
            plot.set_series([], None)
            plot.border_title = "loss"
        if self.live is not None and (self.live.active or not self.shown_runs):
            stats.show(self.live.view)
        elif self.shown_runs:
            run = self.shown_runs[0]
            view = view_from(self.shown_curves[0], run.run_id, run.status, run.label)
            view.step = max(view.step, run.step)
            view.max_steps = view.max_steps or run.max_steps
            stats.show(view)
        else:
            stats.show(RunView())

    # Starting and stopping runs -------------------------------------------------------------------
    def action_start(self) -> None:
        if self.live is not None and self.live.active:
            self.notify("A run is already training: cancel it first (ctrl+t).", severity="warning")
            return
        form = self.query_one(TrainForm)
        try:
            settings = form.settings()
            processes = form.processes
        except FormError as error:
            self.notify(str(error), title="Check the form", severity="error")
            if error.field:
                form.input(error.field).focus()
            return
        if not settings.get("label"):
            settings["label"] = form.input("label").placeholder  # the name the form showed
        base = launcher(processes, self.child_command)
        command = build_command(settings, workspace=self.app.workspace.root, base=base)
        ranks = f" · {processes} processes" if processes > 1 else ""
        self.launch(command, f"{settings['label']}: {settings['model']} · {settings['method']}{ranks}",
                    RunView(status="starting", label=settings["label"]))

    def _run_to_resume(self) -> RunSummary | None:
        """The run highlighted on the runs list when that list is on show, else the run this
        screen last trained (so ctrl+r right after a cancel resumes it)."""
        table = self.query_one(RunsTable)
        on_list = self.query_one(TabbedContent).active == "runs"
        if self.live is not None and self.live.view.run_id and not (on_list and table.has_focus):
            own = table.run_by_id(self.live.view.run_id)
            if own is not None:
                return own
        return table.highlighted_run

    def action_resume(self) -> None:
        if self.live is not None and self.live.active:
            self.notify("A run is already training: cancel it first (ctrl+t).", severity="warning")
            return
        run = self._run_to_resume()
        if run is None:
            self.notify("No run to resume: open the runs list (F8) and pick one.", severity="warning")
            return
        if run.status not in RESUMABLE_STATUSES:
            self.notify(f"{run.label} is {run.status}; only cancelled, failed or interrupted runs resume.",
                        severity="warning")
            return
        step = checkpoint_step(run.last_checkpoint)
        if step is None:
            self.notify(f"{run.label} has no checkpoint yet; it will start again from step 0.", timeout=4)
        # The same number of processes as before, so the restored data order matches.
        base = launcher(run.world_size, self.child_command)
        command = build_command({}, workspace=self.app.workspace.root, resume=str(run.path), base=base)
        # Earlier points stay on the curve: the run's own history, trimmed at the checkpoint
        # when the new start line arrives.
        history = read_curves(run.path / "events.jsonl")
        view = view_from(history, run.run_id, "resuming", run.label)
        view.step, view.eta_s = step or 0, None
        where = f"checkpoint-{step}" if step is not None else "step 0"
        self.launch(command, f"resume {run.label} from {where}", view, history, resume=True)

    def launch(self, command: list[str], label: str, view: RunView | None = None,
               history: Curves | None = None, resume: bool = False) -> None:
        self.run_token += 1
        self.launch_estimate = self.estimate[0] if not resume else None
        process = TrainProcess(command, self.app.workspace.root, self.run_token)
        self.live = live = LiveRun(process, curves=history or Curves(), view=view or RunView(status="starting"))
        self.shown_runs, self.shown_curves = (), ()
        self._hide_error()
        log = self.query_one("#train-log", RichLog)
        log.write(Text(f"── {label}: $ {short_command(command)}", style="bold"))
        self.query_one("#train-canary-log", RichLog).clear()
        try:
            process.start()
        except OSError as error:
            live.exit_code = -1
            live.view.status = "failed"
            self._show_error(f"Could not start the training process: {error}",
                             "Check that Python and the voicebench package are installed in this environment.")
            self.update_plot()
            return
        self.update_plot()
        self.action_tab("log")
        if self.size.width < NARROW_WIDTH:
            self.query_one("#train-left").display = False  # the run needs the room; ctrl+b brings it back
        self.read_stdout(process)
        self.read_stderr(process)
        self.watch_exit(process)

    @work(thread=True, exit_on_error=False, group="train-stdout")
    def read_stdout(self, process: TrainProcess) -> None:
        worker = get_current_worker()
        token = process.run_token
        for items in process.stdout_batches(lambda: worker.is_cancelled):
            self.post_message(ChildEvents(token, items))

    @work(thread=True, exit_on_error=False, group="train-exit")
    def watch_exit(self, process: TrainProcess) -> None:
        """Wait on the process handle: the screen hears of the exit however the child ended."""
        worker = get_current_worker()
        code = process.wait_for_exit(lambda: worker.is_cancelled or process.detached)
        if code is not None and not worker.is_cancelled:
            self.post_message(ChildExited(process.run_token, code, process.forced))

    @work(thread=True, exit_on_error=False, group="train-stderr")
    def read_stderr(self, process: TrainProcess) -> None:
        worker = get_current_worker()
        for lines in process.stderr_batches(lambda: worker.is_cancelled):
            self.post_message(ChildOutput(process.run_token, lines))

    def action_cancel(self) -> None:
        live = self.live
        if live is None or not live.active:
            self.notify("No run is training.", severity="warning")
            return
        if live.process.cancel_requested:
            self._force_stop()
            return
        live.process.cancel()
        live.view.status = "cancelling"
        self._log("cancel requested (SIGTERM): the run finishes its step, saves a checkpoint (no canaries) and "
                  "stops; ctrl+t again kills it at once (the step in flight is lost)", "yellow")
        self.update_plot()

    def _force_stop(self) -> None:
        live = self.live
        if live is None or not live.active:
            return
        live.process.kill()
        live.view.status = "killing"
        self._log("forced stop (SIGKILL): the step in flight is lost; the last checkpoint stays", "red")
        self.update_plot()

    # Child messages ------------------------------------------------------------------------------
    def _current(self, token: int) -> LiveRun | None:
        return self.live if self.live is not None and token == self.run_token else None

    @on(ChildOutput)
    def _child_output(self, message: ChildOutput) -> None:
        live = self._current(message.run_token)
        if live is None:
            return
        live.stderr_tail.extend(message.lines)
        for line in message.lines:
            self._log(line, "dim")

    @on(ChildEvents)
    def _child_events(self, message: ChildEvents) -> None:
        live = self._current(message.run_token)
        if live is None:
            return
        for item in message.items:
            if isinstance(item, str):
                self._log(item)  # not protocol: stray prints, or a newer event kind
                continue
            live.curves.add(item.to_dict())
            live.timer.observe(item)
            handler = getattr(self, f"_on_{item.kind}", None)
            if handler is not None:
                handler(live, item)
        self.update_plot()  # once per batch, however many steps it held
        self._show_live_row()
        self._show_fit()
        if self.stopping is not None:
            self.stopping.show(self._waiting_for(live))

    def _on_phase(self, live: LiveRun, event: Any) -> None:
        view = live.view
        view.phase, view.phase_done, view.phase_total = event.phase, event.done, event.total
        view.phase_detail = event.detail
        if event.eta_s is not None:
            view.eta_s = event.eta_s

    def _on_start(self, live: LiveRun, event: Any) -> None:
        live.run_dir = event.run_dir
        live.view.run_id, live.view.max_steps = event.run_id, event.max_steps
        live.view.step, live.view.world_size = event.start_step, event.world_size
        live.view.label = event.label or live.view.label
        if live.view.status in ("starting", "resuming"):
            live.view.status = "running"
        live.view.phase = ""
        resumed = ""
        if event.resumed_from:
            live.view.resumed_at = event.start_step
            resumed = f", resumed at step {event.start_step} from {Path(event.resumed_from).name}"
        kind = event.family if event.family == event.objective else f"{event.family}, {event.objective}"
        self._log(f"run {event.run_id}: {event.model} ({kind}) {event.method}, "
                  f"{event.train_examples} train / {event.val_examples} val examples, "
                  f"{event.trainable_parameters:,} of {event.total_parameters:,} parameters trained{resumed}")
        self._log(f"lr {event.lr:g}: {event.lr_note}", "dim")
        if event.skipped_examples:
            self._log(f"{event.skipped_examples} pairs skipped: their prompt alone fills max length", "yellow")
        self.refresh_runs()

    def _on_step(self, live: LiveRun, event: Any) -> None:
        view = live.view
        view.step, view.max_steps, view.loss, view.lr = event.step, event.max_steps, event.loss, event.lr
        view.tokens_per_s, view.memory, view.eta_s = event.tokens_per_s, event.memory, event.eta_s
        view.world_size = event.world_size
        view.phase = "training"

    def _on_eval(self, live: LiveRun, event: Any) -> None:
        live.view.val_loss = event.val_loss
        self._log(f"eval at step {event.step}: val loss {event.val_loss:.4f}", "yellow")

    def _on_checkpoint(self, live: LiveRun, event: Any) -> None:
        name = f"{live.view.label} @ step {event.step}" if live.view.label else f"step {event.step}"
        self._log(f"checkpoint {name}: {self._relative(event.path)}", "green")

    def _on_canary(self, live: LiveRun, event: Any) -> None:
        canaries = self.query_one("#train-canary-log", RichLog)
        title = Text(safe_text(f"step {event.step} · {event.canary_id}"), style="bold")
        title.append(f"  ({event.seconds:.1f} s, seed {event.seed})", style="dim")
        canaries.write(title)
        canaries.write(Text(safe_text(event.text.strip() or "(empty output)")))
        self._log(f"canary {event.canary_id} at step {event.step} (F6 shows it)", "dim")

    def _on_memorisation(self, live: LiveRun, event: Any) -> None:
        stop = " Early stop: the run ends here." if event.stopping else ""
        message = (f"Validation loss rose to {event.val_loss:.4f} (best {event.best_val_loss:.4f}) while training "
                   f"loss fell to {event.train_loss:.4f}: the model may be memorising the pairs.{stop}")
        self._log(message, "bold yellow")
        self.notify(message, title="Memorisation?", severity="warning", timeout=8)

    def _on_log(self, live: LiveRun, event: Any) -> None:
        self._log(event.message, "yellow" if event.level == "warning" else "")

    def _on_error(self, live: LiveRun, event: Any) -> None:
        live.error = event
        kind = event.to_dict().get("kind", "error")
        self._log(f"error ({kind}): {event.message}", "bold red")
        self._log(f"advice: {event.advice}", "red")

    def _on_done(self, live: LiveRun, event: Any) -> None:
        live.done = event
        live.view.status = event.status
        live.view.eta_s = None
        live.view.phase = ""
        live.view.step = event.step or live.view.step
        if event.canaries_skipped:
            self._log(f"{event.canaries_skipped} canaries of the last checkpoint were skipped by the cancel "
                      "(the Judge screen can fill them)", "yellow")
        checkpoint = f"; last checkpoint {self._relative(event.last_checkpoint)}" if event.last_checkpoint else ""
        resumable = " (resumable: ctrl+r on the runs list)" if event.resumable else ""
        style = {"done": "bold green", "cancelled": "bold yellow"}.get(event.status, "bold red")
        self._log(f"{event.status} at step {event.step} after {event.seconds:.0f} s{checkpoint}{resumable}", style)

    @on(ChildExited)
    def _child_exited(self, message: ChildExited) -> None:
        live = self._current(message.run_token)
        if live is None:
            return
        live.exit_code = message.returncode
        live.view.eta_s = None
        live.view.phase = ""
        if live.done is None:
            # No `done` line: killed (by the writer's second ctrl+t, or by the system) or crashed.
            cause = self._exit_cause(live, message)
            live.view.status = "interrupted" if message.forced or message.returncode < 0 else "failed"
            self._show_error(f"{live.view.label or 'The run'} {live.view.status} at step {live.view.step} "
                             f"(exit code {message.returncode}): {cause}",
                             live.error.advice if live.error else "It can be resumed from its last checkpoint "
                             "with ctrl+r.")
        elif live.done.status == "failed":
            error = live.error
            self._show_error(f"Run failed (exit code {message.returncode}): "
                             f"{error.message if error else cause_from_stderr(list(live.stderr_tail)) or 'see the log'}",
                             error.advice if error else "")
        self._log(f"training process exited with code {message.returncode}", "dim")
        self.update_plot()
        self._show_fit()
        self.refresh_runs()
        if live.quit_when_stopped:
            self._quit_now()

    def _exit_cause(self, live: LiveRun, message: ChildExited) -> str:
        """The trainer's own error event if it sent one; else how it ended; stderr only for a
        traceback or a real last line (library warnings are not causes)."""
        if live.error is not None:
            return live.error.message
        if message.forced:
            return "killed by your second ctrl+t (the step in flight is lost)"
        if message.returncode < 0:
            name = signal.Signals(-message.returncode).name if -message.returncode in signal.valid_signals() else ""
            return f"killed by {name or f'signal {-message.returncode}'} from outside the app (out of memory?)"
        return cause_from_stderr(list(live.stderr_tail)) or "it exited without reporting why"

    # Helpers --------------------------------------------------------------------------------------
    def _relative(self, path: str | None) -> str:
        if not path:
            return ""
        try:
            return str(Path(path).relative_to(self.app.workspace.root))
        except ValueError:
            return path

    def _log(self, line: str, style: str = "") -> None:
        self.query_one("#train-log", RichLog).write(Text(line, style=style))

    def _show_error(self, message: str, advice: str) -> None:
        panel = self.query_one("#train-error", Static)
        text = Text(f"✗ {message}", style="bold")
        if advice:
            text.append(f"\n{advice}")
        panel.update(text)
        panel.display = True
        self.notify(message, title="Training stopped", severity="error", timeout=8)

    def _hide_error(self) -> None:
        self.query_one("#train-error", Static).display = False

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab
        if tab == "runs":
            self.refresh_runs()
            self.query_one(RunsTable).focus()

    # Blind judging: canary texts stay hidden ------------------------------------------------------
    @on(TabbedContent.TabActivated, "#train-tabs")
    def _tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if event.pane.id == "canaries":
            self.check_blind()

    @work(thread=True, exclusive=True, exit_on_error=False, group="train-blind")
    def check_blind(self) -> None:
        """Open blind sessions in judgments.db (a connection of this thread's own)."""
        path = self.app.workspace.db_path
        ids: tuple[int, ...] = ()
        if Path(path).exists():
            from engine.judge import session as judging
            from engine.judge.store import open_store

            try:
                db = open_store(path)
                try:
                    ids = tuple(int(row["id"]) for row in judging.open_sessions(db))
                finally:
                    db.close()
            except Exception:  # noqa: BLE001 - an unreadable store cannot hide anything; say so below
                ids = (-1,)
        self.post_message(self.BlindState(ids))

    @on(BlindState)
    def _blind_state(self, message: BlindState) -> None:
        self.blind_sessions = message.session_ids
        self._show_canaries_or_blind()

    def _canaries_hidden(self) -> bool:
        if self.blind_sessions is None:
            return True  # not checked yet
        return bool(self.blind_sessions) and self.canaries_unblinded != self.blind_sessions

    def _show_canaries_or_blind(self) -> None:
        hidden = self._canaries_hidden()
        notice = self.query_one("#train-canary-blind", Static)
        self.query_one("#train-canary-log", RichLog).display = not hidden
        notice.display = hidden
        if self.blind_sessions is None:
            notice.update(Text("Checking for open blind judging sessions…", style="dim"))
        elif hidden:
            count = len(self.blind_sessions)
            notice.update(Text(
                f"A blind judging session is open ({count} on the Judge screen), so canary texts are hidden here: "
                "reading them could tell you who wrote what. End the session to see them, or press ctrl+g to "
                "show them anyway.", style="yellow"))
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "show_canaries":
            return self._canaries_hidden() and bool(self.blind_sessions)
        return True

    def action_show_canaries(self) -> None:
        if not self._canaries_hidden():
            return
        self.canaries_unblinded = self.blind_sessions
        self._show_canaries_or_blind()
        self.notify("Canary texts shown although a blind session is open.", severity="warning", timeout=4)

    # Quitting ---------------------------------------------------------------------------------------
    def prepare_to_quit(self) -> bool:
        """A live run: ask whether to stop it (wait for its checkpoint) or leave it running."""
        live = self.live
        if self.quit_ready or live is None or not live.active or not live.process.running:
            return True
        if live.quit_when_stopped:
            if self.stopping is not None:
                self.stopping.nudge()  # already stopping: say which key kills
            return False
        if not isinstance(self.app.screen, QuitWhileTrainingDialog):
            self.app.push_screen(QuitWhileTrainingDialog(live.view.label or live.view.run_id or "A run"),
                                 self._quit_choice)
        return False

    def _quit_choice(self, choice: str | None) -> None:
        live = self.live
        if choice is None or live is None or not live.active:
            if live is not None and not live.active and choice is not None:
                self._quit_now()  # it ended while the dialog was open
            return
        if choice == "leave":
            live.process.leave_running()
            self._log("left running: training continues after the app exits", "yellow")
            self._quit_now()
            return
        live.quit_when_stopped = True
        if not live.process.cancel_requested:
            self.action_cancel()
        self.stopping = StoppingDialog(live.view.label or live.view.run_id or "the run", self._waiting_for(live),
                                       live.timer)
        self.app.push_screen(self.stopping, self._stopping_choice)

    def _waiting_for(self, live: LiveRun) -> str:
        """What the stop is waiting for, as the status line would say it."""
        phase = phase_text(live.view)
        if live.view.phase == "saving" or not phase:
            return f"step {live.view.step} to finish and its checkpoint to be saved"
        return f"{phase} (then the checkpoint)"

    def _stopping_choice(self, choice: str | None) -> None:
        self.stopping = None
        live = self.live
        if choice == "force":
            if live is not None and live.active:
                self._force_stop()  # ChildExited then quits
            else:
                self._quit_now()
        elif choice == "stay" and live is not None:
            live.quit_when_stopped = False
            self.notify("Not quitting; the run still stops after its checkpoint.", timeout=4)

    def _quit_now(self) -> None:
        self.quit_ready = True
        if self.stopping is not None:
            stopping, self.stopping = self.stopping, None
            stopping.dismiss(None)
        self.call_later(self.app.action_quit)

    def on_unmount(self) -> None:
        # The app is closing without the writer having chosen (closed from code): stop the
        # child gracefully rather than orphan it; a run the writer left running stays.
        if self.live is not None and self.live.process.running and not self.live.process.detached:
            self.live.process.detach()
