"""A virtual table of pairs: one row per pair id, cells computed only for the rows on screen.

Textual's DataTable stores every cell up front; adding 10,000 rows took 1.6–2.4 s on the
2-core dev machine, and filtering rebuilds the rows on every key press. This Line-API
widget keeps only a list of ids and asks a `cells` callback for the visible rows, so
showing a new filter result costs the same for ten pairs or ten thousand.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from engine.display import safe_text


@dataclass(frozen=True)
class Column:
    """A column heading and its width; width 0 means "take the space that is left"."""

    title: str
    width: int
    justify: str = "left"


def middle_ellipsis(text: str, width: int) -> str:
    """Ingest ids share long prefixes (`2024-02-11-the-elbow-of-the-coat-paragraph-03`):
    keep both ends so rows stay tellable apart."""
    if len(text) <= width:
        return text
    tail = width // 2
    return text[: width - tail - 1] + "…" + text[-tail:]


def fit_cell(value: str, width: int, justify: str = "left") -> str:
    """`value` in exactly `width` cells: cut with an ellipsis when too long, else padded."""
    length = cell_len(value)
    if length > width:
        return set_cell_size(value, width - 1) + "…" if width > 0 else ""
    padding = " " * (width - length)
    return padding + value if justify == "right" else value + padding


# A row's cells as (text, style name) pairs; the style name picks a component class.
Cells = Sequence[tuple[str, str]]


class PairTable(ScrollView, can_focus=True, inherit_bindings=False):
    """Rows of pairs with a fixed header line and a cursor; posts Highlighted/Selected."""

    BINDINGS = [
        Binding("up,k", "cursor(-1)", "Up", show=False, id="pairs.table.up"),
        Binding("down,j", "cursor(1)", "Down", show=False, id="pairs.table.down"),
        Binding("pageup", "page(-1)", "Page up", show=False, id="pairs.table.page_up"),
        Binding("pagedown", "page(1)", "Page down", show=False, id="pairs.table.page_down"),
        Binding("home", "jump(0)", "First pair", show=False, id="pairs.table.first"),
        Binding("end", "jump(-1)", "Last pair", show=False, id="pairs.table.last"),
        Binding("enter", "select", "Edit pair", id="pairs.table.edit", tooltip="Move into the editor"),
    ]
    COMPONENT_CLASSES = {
        "pair-table--header",
        "pair-table--cursor",
        "pair-table--even",
        "pair-table--val",
        "pair-table--flag",
        "pair-table--dim",
    }
    DEFAULT_CSS = """
    PairTable { overflow-x: hidden; }
    PairTable > .pair-table--header { text-style: bold; color: $text-accent; background: $panel; }
    PairTable > .pair-table--cursor { background: $block-cursor-blurred-background; }
    PairTable:focus > .pair-table--cursor { background: $block-cursor-background; color: $block-cursor-foreground; text-style: bold; }
    PairTable > .pair-table--even { background: $surface-lighten-1 10%; }
    PairTable > .pair-table--val { color: $text-secondary; }
    PairTable > .pair-table--flag { color: $text-error; }
    PairTable > .pair-table--dim { color: $text-muted; }
    """

    cursor_row: reactive[int] = reactive(0, always_update=True)

    class Highlighted(Message):
        """The cursor moved onto a pair (None when the table is empty)."""

        def __init__(self, table: PairTable, pair_id: str | None) -> None:
            super().__init__()
            self.table = table
            self.pair_id = pair_id

        @property
        def control(self) -> PairTable:
            return self.table

    class Selected(Highlighted):
        """Enter was pressed on a pair."""

    def __init__(self, columns: Sequence[Column], cells: Callable[[str], Cells], **kwargs) -> None:
        super().__init__(**kwargs)
        self.columns = tuple(columns)
        self._cells = cells
        self.row_ids: list[str] = []
        self.empty_message = ""  # shown under the header when there are no rows
        self._last_highlighted: str | None | bool = False  # False = nothing posted yet
        self._paint_styles: dict[str, Style] = {}  # component styles of the paint in progress

    # Data ------------------------------------------------------------------------------
    def set_rows(self, row_ids: Sequence[str], keep: str | None = None) -> None:
        """Show these pair ids in this order; keep the cursor on `keep` when it is among them."""
        self.row_ids = list(row_ids)
        self.virtual_size = Size(self.size.width, len(self.row_ids) + 1)  # +1: the header line
        index = self.index_of(keep) if keep is not None else None
        self.cursor_row = index if index is not None else min(self.cursor_row, max(len(self.row_ids) - 1, 0))
        self.refresh()

    def index_of(self, pair_id: str) -> int | None:
        try:
            return self.row_ids.index(pair_id)
        except ValueError:
            return None

    @property
    def cursor_id(self) -> str | None:
        if 0 <= self.cursor_row < len(self.row_ids):
            return self.row_ids[self.cursor_row]
        return None

    def move_to(self, pair_id: str) -> bool:
        """Put the cursor on a pair; False when the pair is not among the rows."""
        index = self.index_of(pair_id)
        if index is None:
            return False
        self.cursor_row = index
        return True

    # Cursor ----------------------------------------------------------------------------
    def validate_cursor_row(self, row: int) -> int:
        return max(0, min(row, len(self.row_ids) - 1)) if self.row_ids else 0

    def watch_cursor_row(self, row: int) -> None:
        self._scroll_cursor_into_view()
        self.refresh()
        pair_id = self.cursor_id
        if pair_id != self._last_highlighted:
            self._last_highlighted = pair_id
            self.post_message(self.Highlighted(self, pair_id))

    def _scroll_cursor_into_view(self) -> None:
        visible_rows = max(self.scrollable_content_region.height - 1, 1)
        top = int(self.scroll_y)
        if self.cursor_row < top:
            self.scroll_to(y=self.cursor_row, animate=False, immediate=True)
        elif self.cursor_row >= top + visible_rows:
            self.scroll_to(y=self.cursor_row - visible_rows + 1, animate=False, immediate=True)

    def action_cursor(self, delta: int) -> None:
        self.cursor_row += delta

    def action_page(self, direction: int) -> None:
        self.cursor_row += direction * max(self.scrollable_content_region.height - 2, 1)

    def action_jump(self, index: int) -> None:
        self.cursor_row = index if index >= 0 else len(self.row_ids) - 1

    def action_select(self) -> None:
        if self.cursor_id is not None:
            self.post_message(self.Selected(self, self.cursor_id))

    def on_click(self, event: events.Click) -> None:
        if event.y == 0:
            return
        row = int(self.scroll_y) + event.y - 1
        if 0 <= row < len(self.row_ids):
            self.cursor_row = row
            if event.chain == 2:
                self.action_select()

    def on_resize(self, event: events.Resize) -> None:
        self.virtual_size = Size(event.size.width, len(self.row_ids) + 1)
        self._scroll_cursor_into_view()

    # Rendering -------------------------------------------------------------------------
    def _widths(self, total: int) -> list[int]:
        fixed = sum(column.width for column in self.columns) + len(self.columns)  # 1-cell gaps
        flexible = max(total - fixed, 8)
        return [column.width or flexible for column in self.columns]

    def render_lines(self, crop: Region) -> list[Strip]:
        # Styles are looked up once per paint, not per cell: a filter keystroke repaints
        # every visible row, and the lookups were most of that paint's cost.
        self._paint_styles = {}
        return super().render_lines(crop)

    def _style(self, name: str) -> Style:
        style = self._paint_styles.get(name)
        if style is None:
            style = self.rich_style if name == "" else self.get_component_rich_style(name)
            self._paint_styles[name] = style
        return style

    def _cell_style(self, name: str) -> Style:
        """A cell's colour and emphasis only, so the row's background (cursor, stripe) shows."""
        key = f"{name} (cell)"
        style = self._paint_styles.get(key)
        if style is None:
            full = self._style(name)
            style = Style(color=full.color, bold=full.bold, dim=full.dim, italic=full.italic)
            self._paint_styles[key] = style
        return style

    def _line(self, cells: Cells, base: Style, width: int, *, cell_styles: bool = True) -> Strip:
        # Plain segments rather than rich Text objects (cheaper per visible row).
        segments: list[Segment] = [Segment(" ", base)]
        for (value, style_name), column, column_width in zip(cells, self.columns, self._widths(width - 1)):
            style = base + self._cell_style(style_name) if style_name and cell_styles else base
            segments.append(Segment(fit_cell(safe_text(value), column_width, column.justify), style))
            segments.append(Segment(" ", base))
        return Strip(segments).adjust_cell_length(width, base)

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        if y == 0:
            header = self._style("pair-table--header")
            return self._line([(column.title, "") for column in self.columns], header, width)
        row = int(self.scroll_y) + y - 1
        if not self.row_ids and y == 2 and self.empty_message:
            message = Text(f" {self.empty_message}", style=self._style("pair-table--dim"))
            message.truncate(width, overflow="ellipsis", pad=True)
            return Strip(list(message.render(self.app.console))).adjust_cell_length(width, self._style(""))
        if row >= len(self.row_ids):
            return Strip.blank(width, self._style(""))
        base = self._style("")
        on_cursor = row == self.cursor_row
        if on_cursor:
            base = base + self._style("pair-table--cursor")
        elif row % 2:
            base = base + self._style("pair-table--even")
        # The cursor row is one colour, as in Textual's DataTable, so it reads at a glance.
        return self._line(self._cells(self.row_ids[row]), base, width, cell_styles=not on_cursor)
