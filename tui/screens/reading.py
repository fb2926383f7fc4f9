"""The reading view: one canary at a time, every contestant's full text side by side, with the
passages it copied from the training pairs highlighted.

Opened with ctrl+v from the Judge screen's reveal view, so only after a blind session has
ended (`engine.judge.session.revealed_texts` refuses an open one). Columns run base models
first, then checkpoints by step, each titled `demo-ar lora #3 @ step 20`; its foot names the
longest copied passage; its head gives the contestant's automatic voice score beside the rubric's
voice criterion and the pairwise score, and under the prompt their Spearman rank agreement with
any disagreement (`engine.judge.report.build_report`'s voice section, as on the leaderboard). The
copy search is `engine.judge.memorisation.CopyIndex` over the responses of the workspace's
training pairs (split "train"), built in a thread worker with the report.

Keys: → / n next canary, ← / p previous, escape / q back.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import HorizontalScroll, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Static

from engine.workspace import Workspace
from tui.widgets.voice_summary import agreement_lines, row_auc

COPIED_STYLE = "bold black on #e5c07b"  # the copied words, readable in both themes
MIN_COLUMN_WIDTH = 26  # three contestants fit at 80 columns; narrower reads as a word list, so scroll instead


def highlighted(text: str, spans: list[Any]) -> Text:
    """The text with every copied span styled."""
    rendered = Text(text)
    for span in spans:
        rendered.stylize(COPIED_STYLE, span.start, span.end)
    return rendered


class ReadingScreen(Screen):
    BINDINGS = [
        Binding("escape,q", "close", "Back", id="reading.close", tooltip="Back to the reveal"),
        Binding("right,n", "move(1)", "Next canary", id="reading.next"),
        Binding("left,p", "move(-1)", "Previous canary", id="reading.prev"),
    ]
    DEFAULT_CSS = """
    ReadingScreen { padding: 0 1; }
    ReadingScreen #reading-title { color: $accent; text-style: bold; height: auto; }
    ReadingScreen #reading-prompt { height: auto; max-height: 4; margin-bottom: 1; color: $text-muted; }
    ReadingScreen #reading-voice { height: auto; max-height: 5; margin-bottom: 1; }
    ReadingScreen #reading-columns { height: 1fr; }
    ReadingScreen .reading-verdict { color: $text-muted; border-bottom: hkey $accent 30%; }
    ReadingScreen .reading-column { height: 1fr; padding: 0 1;
        border: round $accent 50%; border-title-color: $accent; border-subtitle-color: $text-muted; }
    """

    class Ready(Message):
        def __init__(self, canaries: list[Any], names: dict[str, str], spans: dict[tuple[int, str], list[Any]],
                     corpus_size: int, error: str = "", voice: dict[str, Any] | None = None,
                     voice_error: str = "") -> None:
            super().__init__()
            self.voice_error = voice_error
            self.voice = voice or {"rows": [], "agreement": {}}  # report.voice_agreement
            self.canaries = canaries
            self.names = names
            self.spans = spans
            self.corpus_size = corpus_size
            self.error = error

    def __init__(self, workspace: Workspace, session_id: int) -> None:
        super().__init__()
        self.workspace = workspace
        self.session_id = session_id
        self.index = 0
        self.canaries: list[Any] = []
        self.names: dict[str, str] = {}
        self.spans: dict[tuple[int, str], list[Any]] = {}
        self.voice: dict[str, Any] = {"rows": [], "agreement": {}}

    def compose(self) -> ComposeResult:
        yield Static(f"Reading session #{self.session_id} — finding copied passages…", id="reading-title")
        yield Static(id="reading-prompt")
        yield Static(id="reading-voice")
        yield HorizontalScroll(id="reading-columns")
        yield Footer()

    def on_mount(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="reading")
    def load(self) -> None:
        """Texts, names and copied spans, on this thread's own store connection."""
        from engine.curate.pairs import load_pairs
        from engine.judge import session as judging
        from engine.judge.memorisation import CopyIndex
        from engine.judge.names import run_names
        from engine.judge.report import build_report
        from engine.judge.workspace_store import open_workspace_store

        db = open_workspace_store(self.workspace)
        try:
            canaries = judging.revealed_texts(db, self.session_id)
            names = {c.label: c.name for c in judging.contestants(db, run_names(db, self.workspace.runs_dir))}
            responses = [pair.response for pair in load_pairs(self.workspace.pairs_path).pairs if pair.split != "val"]
            index = CopyIndex(responses)
            spans = {(number, label): index.copied_spans(text)
                     for number, canary in enumerate(canaries) for label, text in canary.outputs}
            try:
                voice = build_report(db, seed=0)["voice"]  # the leaderboard's numbers, the same seed
                voice_error = ""
            except Exception as error:  # noqa: BLE001 — the texts are still worth reading
                voice, voice_error = None, f"Voice scores unavailable: {error}"
            self.post_message(self.Ready(canaries, names, spans, len(responses), voice=voice,
                                         voice_error=voice_error))
        except Exception as error:  # noqa: BLE001 — shown on screen; the app stays up
            self.post_message(self.Ready([], {}, {}, 0, f"Could not open the reading view: {error}"))
        finally:
            db.close()

    @on(Ready)
    def ready(self, message: Ready) -> None:
        if message.error:
            self.query_one("#reading-title", Static).update(Text(message.error, style="bold red"))
            return
        self.canaries, self.names, self.spans = message.canaries, message.names, message.spans
        self.corpus_size, self.voice = message.corpus_size, message.voice
        self.query_one("#reading-voice", Static).update(
            Text(message.voice_error, style="red") if message.voice_error else agreement_lines(self.voice, self.names))
        self.show()

    def action_move(self, step: int) -> None:
        if self.canaries:
            self.index = (self.index + step) % len(self.canaries)
            self.show()

    def action_close(self) -> None:
        self.dismiss()

    def show(self) -> None:
        title = self.query_one("#reading-title", Static)
        if not self.canaries:
            title.update("This session showed no canary outputs.")
            return
        canary = self.canaries[self.index]
        title.update(f"Canary {self.index + 1} of {len(self.canaries)}: {canary.canary_id} v{canary.version} · "
                     f"highlighted: passages copied from {self.corpus_size} training responses")
        self.query_one("#reading-prompt", Static).update(canary.prompt)
        columns = self.query_one("#reading-columns", HorizontalScroll)
        columns.remove_children()
        boxes = []
        # Share the width when every column gets MIN_COLUMN_WIDTH; beyond that, scroll sideways.
        width = max(MIN_COLUMN_WIDTH, (columns.size.width or self.size.width - 2) // max(1, len(canary.outputs)))
        hidden = len(canary.outputs) - max(1, (columns.size.width or self.size.width) // width)
        if hidden > 0:
            title.update(f"{title.render()}\n{hidden} more to the right: shift+scroll or click and →")
        for label, text in canary.outputs:
            spans = self.spans.get((self.index, label), [])
            box = VerticalScroll(Static(self._verdict(label), classes="reading-verdict"),
                                 Static(highlighted(text, spans), classes="reading-text"), classes="reading-column")
            box.styles.width = width
            box.border_title = self.names.get(label, label)
            box.border_subtitle = (f"copied: {spans[0].words} words" if spans
                                   else "nothing copied")
            boxes.append(box)
        columns.mount_all(boxes)

    def _verdict(self, label: str) -> str:
        """The contestant's voice score, rubric voice mean and pairwise score (store-wide)."""
        row = next((row for row in self.voice["rows"] if row["label"] == label), None)
        rubric = "–" if row is None or row["rubric_voice"] is None else f"{row['rubric_voice']:.2f}"
        pairwise = "–" if row is None or row["bt"] is None else f"{row['bt']:.2f}"
        return f"voice AUC {row_auc(row)}\nrubric voice {rubric} · pairwise {pairwise}"
