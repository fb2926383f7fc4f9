"""The blind item on the Judge screen: prompt, output (or left/right outputs), the rubric
with the focused criterion's anchors, flags and note.

It renders a `BlindItem` from `engine.judge.session` and nothing else, so it cannot show what the
engine does not hand it (no model name, run id, path, timing or token count).
"""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Static

from engine.display import safe_text
from engine.judge.rubric import Criterion, Flag
from engine.judge.session import BlindItem

OVERALL = "overall"  # the pairwise target that is not a criterion
CHOICE_WORDS = {"left": "◀ left", "right": "right ▶", "tie": "= tie"}


class OutputBox(VerticalScroll, can_focus=False):
    """An output pane; not focusable, so up/down stay with the criteria (page keys scroll)."""


class BlindItemView(Vertical):
    """Shows one item; the screen calls `show(...)` after every action."""

    def compose(self) -> ComposeResult:
        yield Static(id="item-header")
        yield Static(id="item-prompt")
        with Horizontal(id="item-outputs"):
            with OutputBox(id="item-left-box", classes="item-output"):
                yield Static(id="item-left")
            with OutputBox(id="item-right-box", classes="item-output"):
                yield Static(id="item-right")
        yield Static(id="item-rubric")
        yield Static(id="item-anchors")
        yield Static(id="item-marks")

    def show(self, item: BlindItem, criteria: list[Criterion], flags: list[Flag], focus: int,
             progress: dict[str, int]) -> None:
        """Render `item`; `focus` indexes the rows of the rubric panel (criteria, or in
        pairwise mode "overall" followed by the criteria)."""
        pairwise = item.mode == "pairwise"
        header = Text()
        header.append(f" Item {item.position + 1} of {item.total} ", style="bold reverse")
        header.append(f"  {progress.get('done', 0)} done · {progress.get('skipped', 0)} skipped · "
                      f"{progress.get('pending', 0)} pending", style="dim")
        if item.status != "pending":
            header.append(f"  [{item.status}]", style="bold")
        self.query_one("#item-header", Static).update(header)
        self.query_one("#item-prompt", Static).update(Text.assemble(("Prompt  ", "bold"), safe_text(item.prompt)))

        left_box = self.query_one("#item-left-box")
        right_box = self.query_one("#item-right-box")
        right_box.display = pairwise
        if pairwise:
            left_box.border_title = "Left (a / l)"
            right_box.border_title = "Right (; / r)"
            self.query_one("#item-left", Static).update(Text(safe_text(item.left_text or "(empty output)")))
            self.query_one("#item-right", Static).update(Text(safe_text(item.right_text or "(empty output)")))
        else:
            left_box.border_title = "Output"
            self.query_one("#item-left", Static).update(Text(safe_text(item.text or "(empty output)")))
        left_box.scroll_home(animate=False)
        right_box.scroll_home(animate=False)

        self.query_one("#item-rubric", Static).update(
            _choice_table(item, criteria, focus) if pairwise else _score_table(item, criteria, focus))
        anchors = self.query_one("#item-anchors", Static)
        anchors.display = not pairwise
        if not pairwise:
            focused = criteria[focus] if 0 <= focus < len(criteria) else None
            anchors.update(_anchors(focused, item.scores.get(focused.name) if focused else None))
        self.query_one("#item-marks", Static).update(_marks(item, flags, pairwise))


def _score_table(item: BlindItem, criteria: list[Criterion], focus: int) -> Table:
    table = Table(expand=True, show_edge=False, box=None, padding=(0, 1))
    table.add_column("", width=1)
    table.add_column("criterion", style="bold", no_wrap=True)
    table.add_column("score", no_wrap=True)
    table.add_column("1–9 score the focused criterion · ↑/↓ move", ratio=1, no_wrap=True, overflow="ellipsis")
    for index, criterion in enumerate(criteria):
        given = item.scores.get(criterion.name)
        scale = Text()
        for score in criterion.scores:
            scale.append(f"{score}", style="bold reverse" if score == given else "dim")
            scale.append(" ")
        table.add_row(Text("▶" if index == focus else "", style="bold"), criterion.name, scale,
                      Text(criterion.description, style="" if index == focus else "dim"))
    return table


def _anchors(criterion: Criterion | None, given: int | None) -> Text:
    """What each score of the focused criterion means, the given one highlighted."""
    if criterion is None:
        return Text()
    text = Text(criterion.description, style="italic")
    for score in criterion.scores:
        words = criterion.anchors.get(score)
        if words is None:
            continue
        text.append("\n")
        text.append(f" {score} ", style="bold reverse" if score == given else "bold")
        text.append(f" {words}", style="" if score == given else "dim")
    if not criterion.anchors:
        text.append("\n(no anchors for this criterion; add them in the rubric editor, ctrl+b)", style="dim")
    return text


def _choice_table(item: BlindItem, criteria: list[Criterion], focus: int) -> Table:
    table = Table(expand=True, show_edge=False, box=None, padding=(0, 1))
    table.add_column("", width=1)
    table.add_column("which is better?", style="bold", no_wrap=True)
    table.add_column("choice", no_wrap=True, width=9)
    table.add_column("a/l left · ;/r right · =/t tie · ↑/↓ move", ratio=1)
    targets = [(OVERALL, "Which sounds more like the writer, all things considered?")]
    targets += [(criterion.name, criterion.description) for criterion in criteria]
    for index, (name, description) in enumerate(targets):
        focused = index == focus
        choice = item.choices.get(name)
        table.add_row(Text("▶" if focused else "", style="bold"), name,
                      Text(CHOICE_WORDS.get(choice, "·"), style="bold" if choice else "dim"),
                      Text(description, style="italic" if focused else "dim", overflow="ellipsis",
                           no_wrap=not focused))
    return table


def _marks(item: BlindItem, flags: list[Flag], pairwise: bool) -> Text:
    text = Text()
    if not pairwise:
        text.append("Flags  ", style="bold")
        for flag in flags:
            on = flag.name in item.flags
            text.append(f"[{flag.key}] {flag.name}", style="bold reverse" if on else "dim")
            text.append("  ")
    text.append("Note (n) ", style="bold")
    text.append(safe_text(item.note or "—"), style="" if item.note else "dim")
    return text
