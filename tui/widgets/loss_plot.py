"""A terminal line plot of loss curves, drawn with braille dots (2×4 dots per cell).

`plot_lines(series, width, height)` is a pure function (tested on known points);
`LossPlot` is the widget that renders it at its own size. Each series is a list of
(step, value) points drawn as a line; the x axis runs from 0 to `x_max` (the run's
max steps, so a live curve grows across the plot), the y axis spans the data.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

BRAILLE_BASE = 0x2800
# Bit of each dot in a braille cell, indexed [dot row 0..3][dot column 0..1] (Unicode order).
BRAILLE_BITS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))
Y_LABEL_WIDTH = 7  # "12.345 " — the y labels and the axis line sit left of the plot area


@dataclasses.dataclass(frozen=True)
class Series:
    label: str
    points: tuple[tuple[float, float], ...]
    style: str
    marker: bool = False  # also draw a dot on every point (sparse series such as val loss)


def _label(value: float) -> str:
    if value == 0 or 0.01 <= abs(value) < 1000:
        return f"{value:.3g}" if abs(value) < 10 else f"{value:.4g}"
    return f"{value:.1e}"


def _bounds(series: Sequence[Series], x_max: float | None) -> tuple[float, float, float, float] | None:
    points = [point for item in series for point in item.points if math.isfinite(point[1])]
    if not points:
        return None
    x_high = max(x_max or 0.0, max(x for x, _ in points), 1.0)
    y_low = min(y for _, y in points)
    y_high = max(y for _, y in points)
    if y_high - y_low < 1e-9:  # one value: give it some room so the line sits mid-plot
        y_low, y_high = y_low - 0.5, y_high + 0.5
    return 0.0, x_high, y_low, y_high


def _line(x0: int, y0: int, x1: int, y1: int) -> list[tuple[int, int]]:
    """Dots of a straight line (Bresenham), both ends included."""
    dots = []
    dx, dy = abs(x1 - x0), -abs(y1 - y0)
    sx, sy = (1 if x0 < x1 else -1), (1 if y0 < y1 else -1)
    error = dx + dy
    while True:
        dots.append((x0, y0))
        if x0 == x1 and y0 == y1:
            return dots
        twice = 2 * error
        if twice >= dy:
            error += dy
            x0 += sx
        if twice <= dx:
            error += dx
            y0 += sy


def _thin(dots: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """One dot per dot column (the mean row of the points that fall in it): a 10,000-step run
    draws as fast as a 100-step one, and noisy training loss reads as its local average."""
    if len(dots) <= 1 or len(dots) <= len({column for column, _ in dots}):
        return dots
    rows: dict[int, list[int]] = {}
    for column, row in dots:
        rows.setdefault(column, []).append(row)
    return [(column, round(sum(values) / len(values))) for column, values in rows.items()]


def plot_lines(series: Sequence[Series], width: int, height: int, x_max: float | None = None) -> list[Text]:
    """`height` lines of `width` cells: y labels, braille plot area, x axis, x labels, legend.

    Layout: one legend line on top, `height - 3` plot rows, the axis line, the x labels.
    """
    plot_width = max(1, width - Y_LABEL_WIDTH)
    plot_rows = max(1, height - 3)
    legend = Text(" ", no_wrap=True)
    for item in series:
        legend.append("━━ " if not item.marker else "━•━ ", style=item.style)
        legend.append(f"{item.label}   ")
    bounds = _bounds(series, x_max)
    if bounds is None:
        empty = [Text(" " * width) for _ in range(max(0, height - 2))]
        return [legend, *empty, Text("  no loss points yet".ljust(width), style="dim")][:height]
    x_low, x_high, y_low, y_high = bounds
    dots_w, dots_h = plot_width * 2, plot_rows * 4
    cells: dict[tuple[int, int], int] = {}
    styles: dict[tuple[int, int], str] = {}

    def to_dot(x: float, y: float) -> tuple[int, int]:
        column = round((x - x_low) / (x_high - x_low) * (dots_w - 1))
        row = round((y_high - y) / (y_high - y_low) * (dots_h - 1))
        return min(max(column, 0), dots_w - 1), min(max(row, 0), dots_h - 1)

    def set_dot(column: int, row: int, style: str) -> None:
        cell = (column // 2, row // 4)
        cells[cell] = cells.get(cell, 0) | BRAILLE_BITS[row % 4][column % 2]
        styles[cell] = style

    for item in series:
        dots = _thin([to_dot(x, y) for x, y in item.points if math.isfinite(y)])
        for start, end in zip(dots, dots[1:]):
            for column, row in _line(*start, *end):
                set_dot(column, row, item.style)
        if len(dots) == 1 or item.marker:
            for column, row in dots:
                set_dot(column, row, item.style)

    lines = [legend]
    label_rows = {0: y_high, plot_rows - 1: y_low}
    if plot_rows >= 5:  # a middle label only where it does not crowd the ends
        label_rows[(plot_rows - 1) // 2] = y_low + (y_high - y_low) * (1 - ((plot_rows - 1) // 2) / (plot_rows - 1))
    for row in range(plot_rows):
        line = Text(no_wrap=True)
        label = _label(label_rows[row]) if row in label_rows else ""
        line.append(label.rjust(Y_LABEL_WIDTH - 1)[: Y_LABEL_WIDTH - 1] + "┤" if label else " " * (Y_LABEL_WIDTH - 1) + "│",
                    style="dim")
        for column in range(plot_width):
            bits = cells.get((column, row))
            if bits:
                line.append(chr(BRAILLE_BASE + bits), style=styles[(column, row)])
            else:
                line.append(" ")
        lines.append(line)
    lines.append(Text(" " * (Y_LABEL_WIDTH - 1) + "└" + "─" * plot_width, style="dim", no_wrap=True))
    left, right = f"{x_low:g}", f"step {x_high:g}"
    if len(left) + len(right) + 1 > plot_width:
        right = f"{x_high:g}"
    axis = " " * Y_LABEL_WIDTH + left + " " * max(1, plot_width - len(left) - len(right)) + right
    lines.append(Text(axis[:width], style="dim", no_wrap=True))
    return lines[:height]


class LossPlot(Widget):
    """Train/val loss curves of one run, or of two runs overlaid for comparison."""

    DEFAULT_CSS = """
    LossPlot { height: 1fr; min-height: 6; }
    """

    series: reactive[tuple[Series, ...]] = reactive(tuple, layout=False)
    x_max: reactive[float | None] = reactive(None)

    def set_series(self, series: Sequence[Series], x_max: float | None = None) -> None:
        self.series = tuple(series)
        self.x_max = x_max

    def render(self) -> Text:
        size = self.content_size
        lines = plot_lines(self.series, size.width, size.height, self.x_max)
        return Text("\n").join(lines)
