"""The validation panel: one `file:line: message` row per problem; choosing one jumps to it."""

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
        for problem in self.problems:
            text = Text(no_wrap=True, overflow="ellipsis")
            marker_style = "bold red" if problem.severity == "error" else "bold yellow"
            text.append("✗ " if problem.severity == "error" else "! ", style=marker_style)
            text.append(safe_text(f"{display_path(problem.path, self.root)}:{problem.line}: "), style="dim")
            text.append(safe_text(problem.message))
            options.append(Option(text))
        if not options:
            options = [Option(Text("No problems: every line is a well-formed pair.", style="dim"), disabled=True)]
        self.clear_options()
        self.add_options(options)
        if self.problems and highlighted is not None:
            self.highlighted = min(highlighted, len(self.problems) - 1)
        self.border_title = f"problems · {len(self.problems)}" if self.problems else "problems · none"

    def on_focus(self) -> None:
        # Enter should act at once: start on the first problem rather than on nothing.
        if self.highlighted is None and self.problems:
            self.highlighted = 0

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.post_message(self.Chosen(self.problems[event.option_index]))
