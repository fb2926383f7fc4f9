"""The two bars of every workbench screen: the screen names along the top (NavBar) and the
focused screen's keys along the bottom (KeyBar)."""

from __future__ import annotations

from dataclasses import dataclass

from rich.style import Style
from rich.text import Text
from textual import events
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Static

# (mode name, label, key) in the order they appear; the app binds the keys.
SCREENS = (
    ("pairs", "Pairs", "f1"),
    ("train", "Train", "f2"),
    ("canvas", "Canvas", "f3"),
    ("judge", "Judge", "f4"),
)
DIM = Style(dim=True)  # disabled keys, as Textual's Footer draws them


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


@dataclass(frozen=True)
class ShownKey:
    """One key on the key bar: what to press, what it does, and where it sits on the line."""

    key: str  # the key name Textual simulates when the key is clicked
    display: str  # how the key is drawn ("^s", "⏎")
    description: str
    enabled: bool
    tooltip: str


class KeyBar(Widget):
    """The key bar along the bottom: the focused screen's keys on one line, drawn by one widget.

    It shows what Textual's Footer shows, and looks the same (each action's first key and its
    description, the command palette's key at the right edge, disabled keys dimmed, a click on
    a key presses it), but as a single line of text rather than a widget per key: the Footer
    mounts and styles a dozen or more widgets at start-up and again at every focus change,
    which was a large share of the app's time to its first frame. A change of the screen's
    bindings only redraws this line.
    """

    ALLOW_SELECT = False
    COMPONENT_CLASSES = {"key-bar--key", "key-bar--description", "key-bar--edge", "key-bar--hover"}
    DEFAULT_CSS = """
    KeyBar {
        dock: bottom;
        height: 1;
        padding-right: 1;  /* after the palette's key, as the Footer draws it */
        color: $footer-foreground;
        background: $footer-background;
        .key-bar--key {
            color: $footer-key-foreground;
            background: $footer-key-background;
            text-style: bold;
        }
        .key-bar--description {
            color: $footer-description-foreground;
            background: $footer-description-background;
        }
        .key-bar--edge { color: $foreground 20%; }
        .key-bar--hover { background: $block-hover-background; }
    }
    """

    def __init__(self) -> None:
        super().__init__()
        self._hovered: str | None = None  # key under the mouse pointer
        self._spans: list[tuple[int, int, ShownKey]] = []  # (first cell, end cell, key) as last drawn

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, _screen: Screen) -> None:
        self.refresh()

    def shown_keys(self) -> tuple[list[ShownKey], ShownKey | None]:
        """The keys on show, in order (one per action, as the Footer shows them), and the
        command palette's key for the right edge (None when the palette is off)."""
        app = self.app
        active = self.screen.active_bindings
        by_action: dict[str, ShownKey] = {}
        for _node, binding, enabled, tooltip in active.values():
            if binding.show and binding.action not in by_action:
                by_action[binding.action] = ShownKey(binding.key, app.get_key_display(binding), binding.description,
                                                     enabled, tooltip)
        palette = None
        if app.ENABLE_COMMAND_PALETTE and app.COMMAND_PALETTE_BINDING in active:
            _node, binding, enabled, _tooltip = active[app.COMMAND_PALETTE_BINDING]
            palette = ShownKey(binding.key, app.get_key_display(binding), binding.description, enabled,
                               binding.tooltip or binding.description)
        return list(by_action.values()), palette

    def render(self) -> Text:
        keys, palette = self.shown_keys()
        width = self.content_size.width
        line = Text(no_wrap=True, overflow="crop", end="")
        spans = []
        for shown in keys:
            start = line.cell_len
            key_style, description_style = self._styles(shown)
            if shown.description:
                line.append(f" {shown.display} ", key_style)
                line.append(f"{shown.description} ", description_style)
            else:
                line.append(shown.display, key_style)
            spans.append((start, line.cell_len, shown))
        if palette is None:
            line.truncate(width, pad=True)
            self._spans = spans
            return line
        # The palette's key keeps its place at the right edge; the keys before it are cut.
        key_style, description_style = self._styles(palette)
        tail = Text.assemble(("▏", self.get_component_rich_style("key-bar--edge")), (palette.display, key_style),
                             (f" {palette.description}", description_style))
        room = max(0, width - tail.cell_len)
        line.truncate(room, pad=True)
        self._spans = [(start, min(end, room), shown) for start, end, shown in spans if start < room]
        self._spans.append((room, self.size.width, palette))  # the padding after it too
        return line + tail

    def _styles(self, shown: ShownKey) -> tuple[Style, Style]:
        key_style = self.get_component_rich_style("key-bar--key")
        description_style = self.get_component_rich_style("key-bar--description")
        if not shown.enabled:
            key_style, description_style = key_style + DIM, description_style + DIM
        if shown.key == self._hovered:
            hover = Style(bgcolor=self.get_component_rich_style("key-bar--hover").bgcolor)
            key_style, description_style = key_style + hover, description_style + hover
        return key_style, description_style

    def key_at(self, x: int) -> ShownKey | None:
        """The key drawn at column `x` of the bar (as last drawn), if any."""
        return next((shown for start, end, shown in self._spans if start <= x < end), None)

    def on_mouse_down(self, event: events.MouseDown) -> None:
        shown = self.key_at(event.x)
        if shown is None:
            return
        if shown.enabled:
            self.app.simulate_key(shown.key)
        else:
            self.app.bell()

    def on_mouse_move(self, event: events.MouseMove) -> None:
        shown = self.key_at(event.x)
        hovered = shown.key if shown else None
        if hovered != self._hovered:
            self._hovered = hovered
            self.tooltip = (shown.tooltip or None) if shown else None
            self.refresh()

    def on_leave(self, _event: events.Leave) -> None:
        if self._hovered is not None:
            self._hovered = None
            self.tooltip = None
            self.refresh()
