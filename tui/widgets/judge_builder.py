"""The Judge screen's session builder: pick contestants and canaries, a mode and a rater,
then start (ctrl+g); or pick an open session and resume it (ctrl+o); or answer the canaries
with a workspace model or a run's checkpoint first (ctrl+r), or fill every canary a run's
checkpoints are missing (ctrl+f); or score the highlighted contestant's voice (ctrl+s), its
progress and result on a line of its own (hidden until used).

Identities are fine here: nothing is being rated yet. The widget only gathers choices; the
screen does the store work (and refreshes the lists as outputs arrive).
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Label, OptionList, Select, SelectionList, Static
from textual.widgets.option_list import Option

from engine.judge.session import ContestantSummary

MODE_CHOICES = [("rubric: score each", "rubric"), ("pairwise: pick better", "pairwise")]
SEPARATOR = "\x1f"  # between the parts of a canary target's value: never typed in a model name


@dataclass(frozen=True)
class BuilderChoice:
    labels: list[str]
    canary_ids: list[str]
    mode: str
    rater: str


@dataclass(frozen=True)
class CanaryTarget:
    """What 'Canaries for' points at: a workspace model, or one checkpoint of a run."""

    kind: str  # "model" | "checkpoint"
    model: str = ""
    run_id: str = ""
    step: int = 0

    def value(self) -> str:
        return SEPARATOR.join((self.kind, self.model, self.run_id, str(self.step)))

    @classmethod
    def parse(cls, value: str) -> "CanaryTarget":
        kind, model, run_id, step = value.split(SEPARATOR)
        return cls(kind=kind, model=model, run_id=run_id, step=int(step))


class JudgeBuilder(Vertical):
    """Choices for a new session, the open sessions, and the canary runner."""

    _targets: list[tuple[str, str]] = []  # the 'Canaries for' options, as last set

    def compose(self) -> ComposeResult:
        with Horizontal(id="builder-lists"):
            with Vertical(classes="builder-column", id="builder-contestants-column"):
                yield Label("Contestants (outputs) · space ticks", classes="builder-title")
                yield SelectionList[str](id="builder-contestants")
            with Vertical(classes="builder-column"):
                yield Label("Canaries (none = all)", classes="builder-title")
                yield SelectionList[str](id="builder-canaries")
            with Vertical(classes="builder-column"):
                yield Label("Open sessions", classes="builder-title")
                yield OptionList(id="builder-sessions")
        with Horizontal(id="builder-form"):
            yield Label("Mode", classes="builder-field")
            yield Select(MODE_CHOICES, value="rubric", allow_blank=False, id="builder-mode")
            yield Label("Rater", classes="builder-field")
            yield Input(placeholder="your name (for agreement between raters)", id="builder-rater")
        with Horizontal(id="builder-canary-row"):
            yield Label("Canaries for", classes="builder-field")
            yield Select([], prompt="a model or checkpoint (ctrl+r runs, ctrl+f fills a run)",
                         id="builder-canary-model")
        yield Static(id="builder-status")
        yield Static(id="builder-voice")

    def fill(self, contestants: list[ContestantSummary], canary_ids: list[str], sessions: list[dict],
             targets: list[tuple[str, str]], voice: dict[str, float] | None = None) -> None:
        """Refresh every list, keeping what was ticked (and highlighted) where it still exists.

        `targets` are (prompt, CanaryTarget value) pairs for 'Canaries for'; `voice` holds the
        latest voice AUC per scored label, shown beside it."""
        voice = voice or {}
        picked = self.query_one("#builder-contestants", SelectionList)
        known = {option.value for option in picked.options}
        # New contestants arrive ticked (as all are at first); ones the writer unticked stay unticked.
        kept = (set(picked.selected) | ({c.label for c in contestants} - known))
        highlighted = picked.highlighted
        picked.clear_options()
        picked.add_options([(f"{c.name or c.label} ({c.generations})"
                             + (f" · voice {voice[c.label]:.2f}" if c.label in voice else ""), c.label, c.label in kept)
                            for c in contestants])
        if contestants:  # a cursor from the start: ctrl+s scores the contestant under it
            picked.highlighted = 0 if highlighted is None else min(highlighted, len(contestants) - 1)
        canaries = self.query_one("#builder-canaries", SelectionList)
        kept_canaries = set(canaries.selected)
        canaries.clear_options()
        canaries.add_options([(canary_id, canary_id, canary_id in kept_canaries) for canary_id in canary_ids])
        options = self.query_one("#builder-sessions", OptionList)
        options.clear_options()
        options.add_options([Option(
            f"#{row['id']} {row['mode']} · {row['rater'] or 'no rater'} · {row['done']}/{row['total']}",
            id=str(row["id"])) for row in sessions])
        if sessions:
            options.highlighted = 0  # the newest: ctrl+o resumes it without a trip to the list
        select = self.query_one("#builder-canary-model", Select)
        if targets != self._targets:  # set_options resets the choice: keep it when it still exists
            chosen = None if select.is_blank() else select.value
            self._targets = list(targets)
            select.set_options(targets)
            if chosen is not None and any(value == chosen for _, value in targets):
                select.value = chosen

    def choice(self) -> BuilderChoice:
        return BuilderChoice(
            labels=list(self.query_one("#builder-contestants", SelectionList).selected),
            canary_ids=list(self.query_one("#builder-canaries", SelectionList).selected),
            mode=str(self.query_one("#builder-mode", Select).value),
            rater=self.query_one("#builder-rater", Input).value.strip(),
        )

    def toggle_mode(self) -> None:
        select = self.query_one("#builder-mode", Select)
        select.value = "pairwise" if select.value == "rubric" else "rubric"

    def chosen_session(self) -> int | None:
        options = self.query_one("#builder-sessions", OptionList)
        if options.highlighted is None:
            return None
        return int(options.get_option_at_index(options.highlighted).id)

    def highlighted_contestant(self) -> str | None:
        """The label under the Contestants list's cursor (ticked or not)."""
        picked = self.query_one("#builder-contestants", SelectionList)
        if picked.highlighted is None or not picked.option_count:
            return None
        return str(picked.get_option_at_index(picked.highlighted).value)

    def canary_target(self) -> CanaryTarget | None:
        select = self.query_one("#builder-canary-model", Select)
        return None if select.is_blank() else CanaryTarget.parse(str(select.value))

    status_text = ""  # what the status line says, so a screen can tell whether its hint still stands

    def set_status(self, message: str, error: bool = False) -> None:
        self.status_text = message
        status = self.query_one("#builder-status", Static)
        status.update(message)
        status.set_class(error, "error")

    def set_voice(self, message: str | Text, error: bool = False) -> None:
        """The voice score's progress or result (hidden while empty)."""
        line = self.query_one("#builder-voice", Static)
        line.update(message)
        line.set_class(bool(str(message)), "-shown")
        line.set_class(error, "error")
