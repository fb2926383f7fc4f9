"""The validation panel: one `file:line: message` row per problem; choosing one jumps to it.

Rows are cut to one line so many fit; the highlighted row, while the panel has focus, is
broken into lines to show its whole message."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rich.text import Text
from textual import on
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from engine.curate.pairs import Problem
from engine.display import safe_text


def display_path(path: str | Path, root: Path) -> str:
    """A path relative to the workspace root when it is inside it (short and stable)."""
    path = Path(path)
    try:
        return path.resolve().relative_to(root).as_posix()
    except ValueError:
        return str(path)


class ProblemList(OptionList):
    """Problems of the open pairs file, errors in red and warnings in yellow."""

    class Chosen(Message):
        def __init__(self, problem: Problem) -> None:
            super().__init__()
            self.problem = problem

    def __init__(self, root: Path, **kwargs) -> None:
        super().__init__(**kwargs)
        self.root = root
        self.problems: list[Problem] = []

    def set_problems(self, problems: Sequence[Problem]) -> None:
        highlighted = self.highlighted
        self.problems = list(problems)
        options = []
        self._expanded: int | None = None
        for problem in self.problems:
            options.append(Option(self._prompt(problem, whole=False)))
        if not options:
            options = [Option(Text("No problems: every line is a well-formed pair.", style="dim"), disabled=True)]
        self.clear_options()
        self.add_options(options)
        if self.problems and highlighted is not None:
            self.highlighted = min(highlighted, len(self.problems) - 1)
        self.border_title = f"problems · {len(self.problems)}" if self.problems else "problems · none"
        self._expand(self.highlighted if self.has_focus else None)

    def _prompt(self, problem: Problem, whole: bool) -> Text:
        text = Text()
        marker_style = "bold red" if problem.severity == "error" else "bold yellow"
        text.append("✗ " if problem.severity == "error" else "! ", style=marker_style)
        text.append(safe_text(f"{display_path(problem.path, self.root)}:{problem.line}: "), style="dim")
        text.append(safe_text(problem.message))
        if whole:
            # The panel cuts rows to one line (text-wrap: nowrap in pairs.tcss); the whole
            # message gets explicit line breaks at the panel's width instead.
            width = max(20, self.scrollable_content_region.width - 1)
            lines = text.wrap(self.app.console, width)
            text = Text("\n").join(lines)
        return text

    def _expand(self, index: int | None) -> None:
        """Show row `index` whole (None: every row on one line)."""
        if not self.problems:
            return
        index = index if index is not None and 0 <= index < len(self.problems) else None
        if index == getattr(self, "_expanded", None):
            return
        previous, self._expanded = getattr(self, "_expanded", None), index
        if previous is not None and previous < len(self.problems):
            self.replace_option_prompt_at_index(previous, self._prompt(self.problems[previous], whole=False))
        if index is not None:
            self.replace_option_prompt_at_index(index, self._prompt(self.problems[index], whole=True))
            self.call_after_refresh(self.scroll_to_highlight)  # every line of it, not just the first

    def on_focus(self) -> None:
        # Enter should act at once: start on the first problem rather than on nothing.
        if self.highlighted is None and self.problems:
            self.highlighted = 0
        self._expand(self.highlighted)

    def on_blur(self) -> None:
        self._expand(None)

    @on(OptionList.OptionHighlighted)
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if self.has_focus:
            self._expand(event.option_index)

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.post_message(self.Chosen(self.problems[event.option_index]))
