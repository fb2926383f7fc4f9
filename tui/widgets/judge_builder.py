"""The Judge screen's session builder: pick contestants and canaries, a mode and a rater,
then start (ctrl+g); or pick an open session and resume it (ctrl+o); or run the canaries
for a workspace model first (ctrl+r).

Identities are fine here: nothing is being rated yet. The widget only gathers choices; the
screen does the store work.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Label, OptionList, Select, SelectionList, Static
from textual.widgets.option_list import Option

from engine.judge.session import ContestantSummary

MODE_CHOICES = [("rubric: score each output", "rubric"), ("pairwise: the better of two", "pairwise")]


@dataclass(frozen=True)
class BuilderChoice:
    labels: list[str]
    canary_ids: list[str]
    mode: str
    rater: str


class JudgeBuilder(Vertical):
    """Choices for a new session, the open sessions, and the canary runner."""

    _models: list[str] = []  # the models offered in 'Run canaries for', as last set

    def compose(self) -> ComposeResult:
        with Horizontal(id="builder-lists"):
            with Vertical(classes="builder-column"):
                yield Label("Contestants (space to toggle)", classes="builder-title")
                yield SelectionList[str](id="builder-contestants")
            with Vertical(classes="builder-column"):
                yield Label("Canaries (none ticked = all)", classes="builder-title")
                yield SelectionList[str](id="builder-canaries")
            with Vertical(classes="builder-column"):
                yield Label("Open sessions (ctrl+o resumes)", classes="builder-title")
                yield OptionList(id="builder-sessions")
        with Horizontal(id="builder-form"):
            yield Label("Mode", classes="builder-field")
            yield Select(MODE_CHOICES, value="rubric", allow_blank=False, id="builder-mode")
            yield Label("Rater", classes="builder-field")
            yield Input(placeholder="your name (for agreement between raters)", id="builder-rater")
        with Horizontal(id="builder-canary-row"):
            yield Label("Run canaries for", classes="builder-field")
            yield Select([], prompt="a workspace model (ctrl+r)", id="builder-canary-model")
        yield Static(id="builder-status")

    def fill(self, contestants: list[ContestantSummary], canary_ids: list[str], sessions: list[dict],
             models: list[str]) -> None:
        """Refresh every list, keeping what was ticked where it still exists."""
        picked = self.query_one("#builder-contestants", SelectionList)
        kept = set(picked.selected) or {c.label for c in contestants}
        picked.clear_options()
        picked.add_options([(f"{c.label}  ({c.canaries} canaries)", c.label, c.label in kept) for c in contestants])
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
        model_select = self.query_one("#builder-canary-model", Select)
        if models != self._models:  # set_options resets the choice, so only when the list changed
            self._models = list(models)
            model_select.set_options([(name, name) for name in models])

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

    def canary_model(self) -> str | None:
        select = self.query_one("#builder-canary-model", Select)
        return None if select.is_blank() else str(select.value)

    def set_status(self, message: str, error: bool = False) -> None:
        status = self.query_one("#builder-status", Static)
        status.update(message)
        status.set_class(error, "error")
