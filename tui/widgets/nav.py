"""The bar along the top that names every screen and its key, highlighting the active one."""

from __future__ import annotations

from rich.text import Text
from textual.screen import Screen
from textual.widgets import Footer, Static
from textual.widgets._footer import FooterKey

# (mode name, label, key) in the order they appear; the app binds the keys.
SCREENS = (
    ("pairs", "Pairs", "f1"),
    ("train", "Train", "f2"),
    ("canvas", "Canvas", "f3"),
    ("judge", "Judge", "f4"),
)


class NavBar(Static):
    """One line: `voicebench  F1 Pairs  F2 Train  F3 Canvas  F4 Judge   <workspace>`."""

    DEFAULT_CSS = """
    NavBar { height: 1; background: $panel; color: $text-muted; }
    """

    def __init__(self, active: str, workspace_label: str = "") -> None:
        super().__init__()
        self.active = active
        self.workspace_label = workspace_label

    def render(self) -> Text:
        text = Text(" voicebench ", style="bold")
        for mode, label, key in SCREENS:
            style = "bold reverse" if mode == self.active else ""
            text.append(f" {key.upper()} {label} ", style=style)
            text.append(" ")
        if self.workspace_label:
            text.append(f"  {self.workspace_label}", style="dim")
        return text


class KeyFooter(Footer):
    """Textual's Footer, rebuilt only when the keys it shows change.

    The stock Footer recomposes (unmounts and mounts a widget per key, then styles each)
    at every bindings signal: every focus change, screen stack change and refresh_bindings
    call, five times while the Pairs screen starts, most of them with the same keys. Here
    signals arriving before the rebuild are coalesced into one, and a rebuild is skipped
    when the shown keys, their enabled state and tooltips are what is already on show.
    The rebuild runs as soon as the footer's queue gets to it rather than after the next
    refresh, so the first frame already shows the keys (not a blank bar, then the keys).
    """

    def __init__(self) -> None:
        super().__init__()
        self._rebuild_pending = False
        self._keys_on_show: tuple | None = None

    def compose(self):
        # Each key starts in the footer's compact state: a FooterKey is born compact and
        # bound to the footer's (not compact) state after mounting, which styles every
        # key twice more at each rebuild. (The command palette's key is not bound: it
        # stays compact, as Textual draws it.)
        for widget in super().compose():
            if isinstance(widget, FooterKey) and not widget.has_class("-command-palette"):
                widget.set_reactive(FooterKey.compact, self.compact)
            yield widget

    def bindings_changed(self, screen: Screen) -> None:
        self._bindings_ready = True
        if not screen.app.app_focus or self._rebuild_pending:
            return
        if self.is_attached and screen is self.screen:
            self._rebuild_pending = True
            self.call_later(self._rebuild_if_changed)

    def _keys_to_show(self) -> tuple:
        # Everything Footer.compose reads from the bindings (the command palette's key
        # has show=False, so every active binding is compared, shown or not).
        return tuple(
            (binding, enabled, tooltip) for _node, binding, enabled, tooltip in self.screen.active_bindings.values()
        )

    async def _rebuild_if_changed(self) -> None:
        self._rebuild_pending = False
        if not self.is_attached:
            return
        keys = self._keys_to_show()
        if keys != self._keys_on_show:
            self._keys_on_show = keys
            await self.recompose()
