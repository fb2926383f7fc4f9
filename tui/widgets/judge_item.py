"""The blind item on the Judge screen: prompt, output (or left/right outputs), the rubric
with the focused criterion's anchors, flags and note.

It renders a `BlindItem` from `engine.judge.session` and nothing else, so it cannot show what the
engine does not hand it (no model name, run id, path, timing or token count).

Every control of a rating stays on screen at any terminal size from 80×24 up: the output panes
take what is left (`1fr`) and scroll on their own (pgup/pgdn), while criteria, anchors, flags
and note keep their rows. Under `COMPACT_HEIGHT` rows the view tightens itself — no blank
margins, the prompt, each anchor and the note on one line each (cut with an ellipsis). The
roomy layout's spacing comes from the screen's stylesheet (judge.tcss), which outranks any
widget CSS, so the compact overrides are set as the widgets' own inline styles.
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

COMPACT_HEIGHT = 32  # terminal rows below which the rating tightens (80×24 is the SSH default)
# Inline overrides under COMPACT_HEIGHT (widget id -> style attribute -> value); None restores
# what the stylesheet says.
COMPACT_STYLES: dict[str, dict[str, object]] = {
    "#item-header": {"margin": (0, 0, 0, 0)},
    "#item-prompt": {"margin": (0, 0, 0, 0), "max_height": 1},
    "#item-outputs": {"min_height": 4},  # two lines of text inside the border
    "#item-rubric": {"margin": (0, 0, 0, 0)},
    "#item-anchors": {"max_height": 5},
    "#item-marks": {"margin": (0, 0, 0, 0)},
}
OVERALL = "overall"  # the pairwise target that is not a criterion
CHOICE_WORDS = {"left": "◀ left", "right": "right ▶", "tie": "= tie"}


class OutputBox(VerticalScroll, can_focus=False):
    """An output pane; not focusable, so up/down stay with the criteria (page keys scroll)."""


class BlindItemView(Vertical):
    """Shows one item; the screen calls `show(...)` after every action."""

    DEFAULT_CSS = """
    BlindItemView #item-marks { height: auto; }
    BlindItemView #item-flags, BlindItemView #item-note { height: auto; }
    BlindItemView.-compact #item-note { max-height: 1; }
    /* one line per anchor, note and prompt: a line break would cost a row the output needs */
    BlindItemView.-compact #item-anchors, BlindItemView.-compact #item-note, BlindItemView.-compact #item-prompt {
        text-wrap: nowrap; text-overflow: ellipsis;
    }
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._shown: tuple | None = None  # the last show() arguments, to redraw on a size change
        self._styled = False  # compact styles applied (or cleared) at least once

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
        with Vertical(id="item-marks"):
            yield Static(id="item-flags")
            yield Static(id="item-note")

    @property
    def compact(self) -> bool:
        return self.has_class("-compact")

    def on_mount(self) -> None:
        self._fit_to_terminal()

    def on_resize(self) -> None:
        self._fit_to_terminal()

    def _fit_to_terminal(self) -> None:
        """Switch between the roomy and the compact layout by the terminal's height."""
        compact = self.app.size.height < COMPACT_HEIGHT
        if compact == self.compact and self._styled:
            return
        self._styled = True
        self.set_class(compact, "-compact")
        for selector, styles in COMPACT_STYLES.items():
            widget = self.query_one(selector)
            for name, value in styles.items():
                setattr(widget.styles, name, value if compact else None)
        if self._shown is not None:
            self.show(*self._shown)  # compact anchors leave out the description

    def show(self, item: BlindItem, criteria: list[Criterion], flags: list[Flag], focus: int,
             progress: dict[str, int]) -> None:
        """Render `item`; `focus` indexes the rows of the rubric panel (criteria, or in
        pairwise mode "overall" followed by the criteria)."""
        self._shown = (item, criteria, flags, focus, progress)
        pairwise = item.mode == "pairwise"
        compact = self.compact
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
            anchors.update(_anchors(focused, item.scores.get(focused.name) if focused else None, compact))
        flag_line = self.query_one("#item-flags", Static)
        flag_line.display = not pairwise
        if not pairwise:
            flag_line.update(_flags(item, flags))
        self.query_one("#item-note", Static).update(_note(item))


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


def _anchors(criterion: Criterion | None, given: int | None, compact: bool = False) -> Text:
    """What each score of the focused criterion means, the given one highlighted. Compact: the
    scores alone (the rubric table above shows the description)."""
    if criterion is None:
        return Text()
    text = Text() if compact else Text(criterion.description, style="italic")
    for score in criterion.scores:
        words = criterion.anchors.get(score)
        if words is None:
            continue
        if text:
            text.append("\n")
        text.append(f" {score} ", style="bold reverse" if score == given else "bold")
        text.append(f" {words}", style="" if score == given else "dim")
    if not criterion.anchors:
        text.append(("\n" if text else "") + "(no anchors for this criterion; add them in the rubric editor, ctrl+b)",
                    style="dim")
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


def _flags(item: BlindItem, flags: list[Flag]) -> Text:
    text = Text()
    text.append("Flags  ", style="bold")
    for flag in flags:
        on = flag.name in item.flags
        text.append(f"[{flag.key}] {flag.name}", style="bold reverse" if on else "dim")
        text.append("  ")
    return text


def _note(item: BlindItem) -> Text:
    text = Text()
    text.append("Note (n) ", style="bold")
    text.append(safe_text(item.note or "—"), style="" if item.note else "dim")
    return text
