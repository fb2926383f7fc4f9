"""Quitting while a run trains: the choice, and the wait for the run's checkpoint.

`QuitWhileTrainingDialog` asks: stop the run (it finishes its step, saves a checkpoint,
stays resumable; the app quits once it has) or leave it running (the trainer carries on
after the app exits, writing runs/<id>/events.jsonl; the next start shows it live).
`StoppingDialog` shows what the app is waiting for and for how long; the Train screen
calls `show()` as the run's phase changes and closes it when the child exits.
"""

from __future__ import annotations

import time

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from tui.widgets.train_stats import format_duration

DIALOG_CSS = """
{name} {{ align: center middle; }}
{name} > Vertical {{
    width: 72; max-width: 100%; height: auto; border: thick $warning; background: $surface; padding: 1 2;
}}
{name} .dialog--title {{ text-style: bold; }}
{name} Horizontal {{ height: auto; margin-top: 1; }}
{name} Button {{ margin-right: 1; }}
"""


class QuitWhileTrainingDialog(ModalScreen[str | None]):
    """Returns "stop", "leave" or None (stay)."""

    BINDINGS = [
        Binding("s", "choose('stop')", "Stop it (resumable)", id="quit_train.stop"),
        Binding("l", "choose('leave')", "Leave it running", id="quit_train.leave"),
        Binding("escape", "choose(None)", "Don't quit", id="quit_train.stay"),
    ]
    DEFAULT_CSS = DIALOG_CSS.format(name="QuitWhileTrainingDialog")

    def __init__(self, run_name: str) -> None:
        super().__init__()
        self.run_name = run_name

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"{self.run_name} is training", classes="dialog--title")
            yield Static(
                "s  Stop it: it finishes the step, saves a checkpoint and stays resumable; the app "
                "waits for that, then quits.\n"
                "l  Leave it running: training goes on after the app exits (its progress is in the "
                "run folder; the next start shows it on the runs list).\n"
                "esc  Don't quit.")
            with Horizontal():
                yield Button("Stop it (resumable)", id="quit-stop", variant="warning")
                yield Button("Leave it running", id="quit-leave", variant="primary")
                yield Button("Don't quit", id="quit-stay")

    def on_mount(self) -> None:
        self.query_one("#quit-stop", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss({"quit-stop": "stop", "quit-leave": "leave"}.get(event.button.id or ""))

    def action_choose(self, choice: str | None) -> None:
        self.dismiss(choice)


class StoppingDialog(ModalScreen[str | None]):
    """Waiting for the run to checkpoint before quitting. Returns "force" (kill now and quit)
    or "stay" (keep the app open; the run still stops); closed with None when the run exits."""

    BINDINGS = [
        Binding("ctrl+t,k", "choose('force')", "Force stop now", id="stopping.force"),
        Binding("escape", "choose('stay')", "Don't quit", id="stopping.stay"),
    ]
    DEFAULT_CSS = DIALOG_CSS.format(name="StoppingDialog")

    def __init__(self, run_name: str, waiting_for: str) -> None:
        super().__init__()
        self.run_name = run_name
        self.waiting_for = waiting_for
        self.started = time.monotonic()
        self.composed = False

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Stopping {self.run_name} before quitting", classes="dialog--title")
            yield Static("", id="stopping-progress")
            yield Static("k  force stop now (the step in flight is lost) and quit · esc  don't quit (it still stops)",
                         classes="dialog--hint")

    def on_mount(self) -> None:
        self.composed = True
        self.show(self.waiting_for)
        self.set_interval(1.0, self._tick)

    def show(self, waiting_for: str) -> None:
        self.waiting_for = waiting_for
        self._tick()

    def _tick(self) -> None:
        if not self.composed:
            return  # events can arrive between push_screen and mount; on_mount shows the latest
        elapsed = format_duration(time.monotonic() - self.started)
        self.query_one("#stopping-progress", Static).update(f"waiting for: {self.waiting_for}  ({elapsed})")

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice)
