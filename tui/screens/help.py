"""`?`: every binding of the screen underneath and of the app, in one modal list."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close", id="help.close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 80; max-height: 90%; border: round $accent; background: $surface; padding: 0 1; }
    """

    def __init__(self, underneath: Screen) -> None:
        super().__init__()
        self.underneath = underneath

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(self._table())

    def _table(self) -> Table:
        name = type(self.underneath).__name__.removesuffix("Screen")
        table = Table(title=f"Keys · {name}", expand=True, show_edge=False)
        table.add_column("key", style="bold", no_wrap=True)
        table.add_column("what it does")
        table.add_column("where", style="dim", no_wrap=True)
        # One row per action: `d` and `delete` for the same thing share a row.
        rows: dict[tuple[str, str, str], list[str]] = {}
        tooltips: dict[tuple[str, str, str], str] = {}
        for active in self.underneath.active_bindings.values():
            binding = active.binding
            if not binding.description:
                continue
            where = "app" if active.node is self.app else type(active.node).__name__.removesuffix("Screen")
            row = (binding.action, binding.description, where)
            key = self.app.get_key_display(binding)
            if key not in rows.setdefault(row, []):
                rows[row].append(key)
            tooltips.setdefault(row, binding.tooltip)
        for row, keys in rows.items():
            _action, description, where = row
            what = Text(description)
            if tooltips[row]:
                what.append(f" — {tooltips[row]}", style="dim")
            table.add_row(" ".join(keys), what, where)
        return table
