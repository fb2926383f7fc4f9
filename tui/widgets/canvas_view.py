"""The diffusion canvas: a Line-API widget that draws a `Timeline` at any step.

Each canvas row holds a fixed run of positions (rows never span blocks), so a commit only
changes its own row: `show_step` works out which rows differ between the old and new step
(`Timeline.changed_positions` plus the rows whose block outline moved), drops their cached
`Strip`s and refreshes just those lines. A 1,024-token canvas re-rendered as one rich Text a
frame ran at ~10 fps here; this way it keeps up with the sampler (see bench_canvas.py).

Cells: `░░` a mask in a later block, `▒▒` a mask in the block being filled, a token on a
bright background when committed at the shown step, else coloured by the confidence it was
committed with (`CONFIDENCE_EDGES`, shown in `legend()`). Also here: `CanvasHeader`, the
step / block / passes / tokens-per-second line with the live degeneration signals.
"""

from __future__ import annotations

import re
from bisect import bisect_right

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widget import Widget

from engine.display import safe_text
from engine.sample.trace import Timeline

# Confidence buckets: < 0.2, < 0.4, < 0.6, < 0.8, ≥ 0.8 — low is warm, high is green.
CONFIDENCE_EDGES = (0.2, 0.4, 0.6, 0.8)
CONFIDENCE_STYLES = tuple(Style.parse(colour) for colour in ("#e06c6c", "#e5955b", "#d9c36a", "#a8d46f", "#5fd38d"))
NEW_STYLE = Style.parse("bold #101010 on #7fd4ff")
MASK_STYLE = Style.parse("#4a4a4a")
MASK_CURRENT_STYLE = Style.parse("#9a9aa8")
SPECIAL_STYLE = Style.parse("#6a6a6a")
GUTTER_STYLE = Style.parse("#5a5a5a")
GUTTER_CURRENT_STYLE = Style.parse("bold #7fd4ff")
MASK = "░░"
MASK_CURRENT = "▒▒"
SPECIAL = "·"  # EOS / end-of-turn padding: a quiet dot, not "<|endoftext|>" a hundred times
GUTTER_WIDTH = 6
CELL_ESTIMATE = 5  # typical cells per token, to pick how many positions share a row
_SPECIAL_PATTERN = re.compile(r"<\|[^|>]*\|>|<[a-z_]+>|\[[A-Z]+\]")


def _tokens_per_row(block_length: int, fit: int) -> int:
    """The largest divisor of the block length that fits, so a block's rows are even."""
    fit = max(4, fit)
    divisors = [size for size in range(1, min(block_length, fit) + 1) if block_length % size == 0]
    return divisors[-1] if divisors and divisors[-1] >= 4 else min(block_length, fit)


def confidence_style(confidence: float) -> Style:
    return CONFIDENCE_STYLES[bisect_right(CONFIDENCE_EDGES, confidence)]


def display_piece(piece: str) -> tuple[str, bool]:
    """What a token looks like on the canvas, and whether it is a special token."""
    if _SPECIAL_PATTERN.fullmatch(piece.strip()):
        return SPECIAL, True
    return safe_text(piece.replace("\r", "").replace("\n", "↵").replace("\t", "→")), False


def legend() -> Text:
    """One line explaining the cells, drawn under the canvas."""
    text = Text(" ")
    text.append(MASK, MASK_STYLE).append(" mask ", "dim")
    text.append(MASK_CURRENT, MASK_CURRENT_STYLE).append(" block ", "dim")
    text.append("new", NEW_STYLE).append(" step  conf ", "dim")
    labels = ("<.2", ".2", ".4", ".6", ".8+")
    for label, style in zip(labels, CONFIDENCE_STYLES):
        text.append("■", style).append(label + " ", "dim")
    return text


class CanvasView(ScrollView, can_focus=True, inherit_bindings=False):
    """The painter's canvas. Call `load(timeline, block_length)`, then `show_step(step)`.

    It does not inherit the scroll bindings: left/right/home/end scrub through the steps
    (the screen binds them); up/down/page keys scroll.
    """

    BINDINGS = [
        Binding("up", "scroll_up", "Scroll up", id="canvas.scroll_up", show=False),
        Binding("down", "scroll_down", "Scroll down", id="canvas.scroll_down", show=False),
        Binding("pageup", "page_up", "Page up", id="canvas.page_up", show=False),
        Binding("pagedown", "page_down", "Page down", id="canvas.page_down", show=False),
    ]

    DEFAULT_CSS = """
    CanvasView { background: $surface; scrollbar-size-vertical: 1; }
    CanvasView:focus { background-tint: $foreground 3%; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.timeline: Timeline | None = None
        self.block_length = 1
        self.step = 0
        # Cells committed after this step (up to `step`) are highlighted as new: one step
        # when scrubbing, every frame since the last paint when a live run is drawn in batches.
        self.new_after = -1
        self.shown: list[tuple[int, int]] = []  # (new_after, step) of each show_step (bench)
        self.current_block = 0
        self.rows: list[tuple[int, int]] = []  # (first pos, end pos) of each row
        self.row_of: list[int] = []  # pos → row
        self._strips: dict[int, Strip] = {}
        self._laid_out_width = -1

    # State ------------------------------------------------------------------------------
    def load(self, timeline: Timeline | None, block_length: int) -> None:
        self.timeline = timeline
        self.block_length = max(1, min(block_length, timeline.gen_length if timeline else block_length))
        self.step, self.new_after = 0, -1
        self.shown = []
        self.current_block = 0
        self._layout(force=True)
        self.scroll_to(0, 0, animate=False)
        self.refresh()

    def show_step(self, step: int, follow: bool = False, batch: bool = False) -> None:
        """Draw the canvas after `step` steps, refreshing only the rows that change. `batch`
        (playing, live or replay): every commit since the step shown before is new, so
        frames that arrive faster than the display are all seen; otherwise (scrubbing,
        jumping) only the commits of `step` itself."""
        if self.timeline is None:
            return
        timeline = self.timeline
        step = max(0, min(step, timeline.steps))
        block = self._block_at(step)
        new_after = self.step if batch and step > self.step else step - 1
        positions = timeline.changed_positions(self.step, step)
        for earlier in range(max(self.new_after + 1, 1), min(self.step, timeline.steps) + 1):
            positions.update(pos for pos, _, _ in timeline.frames[earlier - 1].committed)  # highlighted until now
        changed = {self.row_of[pos] for pos in positions if pos < len(self.row_of)}
        if block != self.current_block:
            changed.update(self._rows_of_block(self.current_block))
            changed.update(self._rows_of_block(block))
        self.step, self.new_after, self.current_block = step, new_after, block
        self.shown.append((new_after, step))
        for row in changed:
            self._strips.pop(row, None)
            self.refresh_line(row)
        if follow:
            self.scroll_to_current_block()

    def scroll_to_current_block(self) -> None:
        rows = list(self._rows_of_block(self.current_block))
        if rows:
            self.scroll_to_region(Region(0, rows[0], 1, len(rows)), animate=False, immediate=True)

    def _block_at(self, step: int) -> int:
        """The block being filled at `step`: the one holding the first position still masked
        (-1 once the canvas is full)."""
        assert self.timeline is not None
        commit_step = self.timeline.commit_step
        for pos in range(self.timeline.gen_length):
            if not 0 < commit_step[pos] <= step:
                return pos // self.block_length
        return -1  # the canvas is full: no block is being filled

    def _rows_of_block(self, block: int) -> range:
        start = block * self.block_length
        if block < 0 or not self.row_of or start >= len(self.row_of):
            return range(0)
        end = min(start + self.block_length, len(self.row_of)) - 1
        return range(self.row_of[start], self.row_of[end] + 1)

    # Layout -----------------------------------------------------------------------------
    def on_resize(self) -> None:
        self._layout()

    def _layout(self, force: bool = False) -> None:
        width = self.scrollable_content_region.width or self.size.width or 80
        if not force and width == self._laid_out_width:
            return
        self._laid_out_width = width
        self._strips.clear()
        self.rows, self.row_of = [], []
        if self.timeline is None:
            self.virtual_size = Size(width, 0)
            return
        per_row = _tokens_per_row(self.block_length, (width - GUTTER_WIDTH) // CELL_ESTIMATE)
        for block_start in range(0, self.timeline.gen_length, self.block_length):
            block_end = min(block_start + self.block_length, self.timeline.gen_length)
            for start in range(block_start, block_end, per_row):
                end = min(start + per_row, block_end)
                self.row_of.extend([len(self.rows)] * (end - start))
                self.rows.append((start, end))
        self.virtual_size = Size(width, len(self.rows))
        self.refresh()

    # Drawing ----------------------------------------------------------------------------
    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        row = y + scroll_y
        width = self.scrollable_content_region.width
        if self.timeline is None or row >= len(self.rows):
            return Strip.blank(width, self.rich_style)
        strip = self._strips.get(row)
        if strip is None:
            strip = self._strips[row] = self._render_row(row)
        return strip.crop_extend(scroll_x, scroll_x + width, self.rich_style)

    def _render_row(self, row: int) -> Strip:
        assert self.timeline is not None
        timeline, step = self.timeline, self.step
        start, end = self.rows[row]
        block = start // self.block_length
        current = block == self.current_block
        first_of_block = start % self.block_length == 0
        label = f"b{block}" if first_of_block else ""
        segments = [
            Segment(f"{label:>4}", GUTTER_CURRENT_STYLE if current else GUTTER_STYLE),
            Segment(" ┃ " if current else " │ ", GUTTER_CURRENT_STYLE if current else GUTTER_STYLE),
        ]
        for pos in range(start, end):
            token_id = timeline.token_at(pos, step)
            if token_id is None:
                segments.append(Segment(MASK_CURRENT, MASK_CURRENT_STYLE) if current else Segment(MASK, MASK_STYLE))
                continue
            piece, special = display_piece(timeline.tokens.get(token_id, f"⟨{token_id}⟩"))
            if timeline.commit_step[pos] > self.new_after:  # (and ≤ step: it is on the canvas)
                style = NEW_STYLE
            elif special:
                style = SPECIAL_STYLE
            else:
                style = confidence_style(timeline.confidence[pos])
            segments.append(Segment(piece or "∅", style))
        return Strip(segments).simplify()


class CanvasHeader(Widget):
    """Two lines over the canvas: where the run is, and how degenerate it looks so far."""

    DEFAULT_CSS = """
    CanvasHeader { height: 2; padding: 0 1; background: $panel; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.timeline: Timeline | None = None
        self.step = 0
        self.block = 0
        self.blocks = 0
        self.state = "idle"  # idle | loading | live | paused | replay | done | cancelled | failed
        self.speed = 0.0
        self.tokens_per_second: float | None = None
        self.planned_steps: int | None = None  # steps the run will take (None: fast mode)
        self.drawn_steps: set[int] = set()  # steps that actually reached the screen (bench)
        self.last_drawn_step = -1

    def show(self, timeline: Timeline | None, step: int, block: int, blocks: int, state: str,
             speed: float, tokens_per_second: float | None, planned_steps: int | None = None) -> None:
        self.timeline, self.step, self.block, self.blocks = timeline, step, block, blocks
        self.planned_steps = planned_steps
        self.state, self.speed, self.tokens_per_second = state, speed, tokens_per_second
        self.refresh()

    def render(self) -> Text:
        self.drawn_steps.add(self.step)
        self.last_drawn_step = self.step
        timeline = self.timeline
        total = timeline.steps if timeline else 0
        frame = timeline.frame(self.step) if timeline else None
        text = Text(no_wrap=True, overflow="ellipsis")
        badge = {
            "live": (" ● LIVE ", "bold #101010 on #5fd38d"), "paused": (" ❚❚ PAUSED ", "bold #101010 on #d9c36a"),
            "replay": (f" ▶ ×{self.speed:g} ", "bold #101010 on #7fd4ff"),
            "loading": (" … LOADING ", "bold #101010 on #9a9aa8"), "done": (" ■ DONE ", "bold #101010 on #9a9aa8"),
            "cancelled": (" ✕ CANCELLED ", "bold #101010 on #e5955b"), "failed": (" ✕ FAILED ", "bold white on #b03030"),
        }.get(self.state, (" IDLE ", "bold #101010 on #4a4a4a"))
        text.append(*badge)
        total = max(total, self.planned_steps or 0)
        text.append(f" step {self.step}/{total or '–'}", "bold")
        if self.blocks:
            block = self.blocks if self.block < 0 else self.block + 1
            text.append(f"  block {block}/{self.blocks}")
        if frame is not None and frame.forward_passes != self.step:  # equal in this sampler; shown only if one differs
            text.append(f"  passes {frame.forward_passes}")
        if self.tokens_per_second is not None:
            text.append(f"  {self.tokens_per_second:.1f} tok/s")
        text.append("\n")
        signals = frame.signals if frame is not None else {}
        if not signals:
            text.append("degeneration signals appear as tokens commit", "dim")
            return text
        text.append("repeat ", "dim").append(_percent(signals.get("repeated_ngram_share")))
        text.append("  run ", "dim").append(str(signals.get("longest_run", "–")))
        text.append("  script ", "dim").append(_percent(signals.get("other_script_share")))
        text.append("  EOS ", "dim").append(_percent(signals.get("eos_share")))
        if signals.get("cascade"):
            text.append("  ⚠ CASCADE ", "bold white on #b03030")
        return text


def _percent(value: object) -> str:
    return f"{value:.0%}" if isinstance(value, (int, float)) else "–"
