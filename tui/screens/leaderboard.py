"""The leaderboard, pushed over the Judge screen (ctrl+l; never during a blind session).

It opens on "which is best?": one row per contestant (`demo-ar lora #3 @ step 20`) with its
headline score and interval, how many votes or ratings back it, and a `best` marker only when
that interval lies above every other (too few ratings read "not enough ratings yet").
Below it, `engine.judge.report.build_report` in full — the same dict `voicebench report` renders,
so the numbers always agree with the CLI: rubric means with bootstrap 95% intervals, the
Bradley–Terry score with its interval and win rates, flag shares and automatic metrics per
contestant; then position bias, test–retest and inter-rater agreement; then every canary's
outputs side by side (base versus fine-tuned), and each run's outputs across its checkpoints. The bootstrap runs in a thread worker on
that thread's own store connection.
"""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from engine.display import safe_text
from engine.judge.workspace_store import open_workspace_store
from engine.judge import report
from engine.judge.report import build_report
from engine.workspace import Workspace
from tui.widgets.voice_summary import NOT_SCORED, agreement_lines, row_auc

METRIC_COLUMNS = ("distinct_1", "seq_rep_4", "repetition_cascade", "length_words")
SIDE_BY_SIDE_CHARS = 240  # per output in the canary table; the full text is in `voicebench report`


def _num(value: Any, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _interval(centre: Any, low: Any, high: Any, count: int | None = None) -> str:
    return report._interval({"mean": centre, "low": low, "high": high}, count)


class LeaderboardScreen(Screen):
    BINDINGS = [
        Binding("escape,q", "close", "Back", id="leaderboard.close", tooltip="Back to the Judge screen"),
        Binding("ctrl+r", "reload", "Recompute", id="leaderboard.reload", tooltip="Recompute from the store"),
    ]
    DEFAULT_CSS = """
    LeaderboardScreen { padding: 0 1; }
    LeaderboardScreen .lb-title { color: $accent; text-style: bold; margin-top: 1; }
    LeaderboardScreen .lb-table { height: auto; max-height: 12; }
    LeaderboardScreen #lb-headline { height: auto; max-height: 16; }
    LeaderboardScreen #lb-caption { color: $text-muted; }
    LeaderboardScreen #lb-status { color: $text-muted; }
    """

    class Ready(Message):
        def __init__(self, data: dict[str, Any] | None, error: str = "") -> None:
            super().__init__()
            self.data = data
            self.error = error

    def __init__(self, workspace: Workspace, *, seed: int = 0) -> None:
        super().__init__()
        self.workspace = workspace
        self.seed = seed  # fixed bootstrap seed: the same store always shows the same intervals
        self.data: dict[str, Any] | None = None

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="lb-body"):
            yield Static("Which is best?", classes="lb-title")
            yield Static("Computing…", id="lb-status")
            yield DataTable(id="lb-headline", zebra_stripes=True, cursor_type="row")
            yield Static(id="lb-caption")
            yield Static("Does it sound like you? Voice score beside your verdict", classes="lb-title")
            yield DataTable(id="lb-voice", zebra_stripes=True, cursor_type="row", classes="lb-table")
            yield Static(id="lb-voice-agreement")
            yield Static("Rubric means with bootstrap 95% intervals", classes="lb-title")
            yield DataTable(id="lb-rubric", zebra_stripes=True, cursor_type="row", classes="lb-table")
            yield Static("Pairwise votes, flags and automatic metrics", classes="lb-title")
            yield DataTable(id="lb-pairwise", zebra_stripes=True, cursor_type="row", classes="lb-table")
            yield Static("Agreement and bias", classes="lb-title")
            yield Static(id="lb-agreement")
            yield Static("Canaries side by side", classes="lb-title")
            yield Static(id="lb-canaries")
            yield Static("Runs across their checkpoints", classes="lb-title")
            yield Static(id="lb-runs")
        yield Footer()

    def on_mount(self) -> None:
        self.compute()

    def action_close(self) -> None:
        self.dismiss()

    def action_reload(self) -> None:
        self.query_one("#lb-status", Static).update("Computing…")
        self.compute()

    @work(thread=True, exclusive=True, exit_on_error=False, group="leaderboard")
    def compute(self) -> None:
        db = open_workspace_store(self.workspace)
        try:
            self.post_message(self.Ready(build_report(db, seed=self.seed)))
        except Exception as error:  # noqa: BLE001 — shown on screen; the app stays up
            self.post_message(self.Ready(None, f"Could not build the leaderboard: {error}"))
        finally:
            db.close()

    @on(Ready)
    def show(self, message: Ready) -> None:
        status = self.query_one("#lb-status", Static)
        if message.data is None:
            status.update(Text(message.error, style="bold red"))
            return
        self.data = data = message.data
        status.update(f"{len(data['leaderboard'])} contestants · {data['votes']} pairwise votes")
        self.query_one("#lb-caption", Static).update(report.headline_caption(data))
        self._fill_table(data)
        self._fill_voice(data)
        self.query_one("#lb-agreement", Static).update(_agreement(data))
        self.query_one("#lb-canaries", Static).update(_canaries(data))
        self.query_one("#lb-runs", Static).update(_runs(data))

    def _fill_table(self, data: dict[str, Any]) -> None:
        headline = self.query_one("#lb-headline", DataTable)
        headline.clear(columns=True)
        headline.add_columns("contestant", "score", "votes" if data["votes"] else "ratings", "")
        for row in data["leaderboard"]:
            best = Text("★ best", style="bold green") if data["best"] == row["label"] else ""
            score = report.headline_text(row["headline"])
            headline.add_row(row["name"], Text(score, style="dim") if score == report.NOT_ENOUGH else score,
                             str(row["headline"]["n"]), best)
        rubric = self.query_one("#lb-rubric", DataTable)
        rubric.clear(columns=True)
        criteria = [c["name"] + (" (retired)" if c["retired"] else "") for c in data["criteria"]]
        rubric.add_columns("contestant", *criteria, "mean")
        pairwise = self.query_one("#lb-pairwise", DataTable)
        pairwise.clear(columns=True)
        metrics = [name for name in METRIC_COLUMNS if any(name in row["metrics"] for row in data["leaderboard"])]
        pairwise.add_columns("contestant", "BT score", "win rate", "games", "flags", *metrics)
        for row in data["leaderboard"]:
            cells = [_interval(s["mean"], s["low"], s["high"], s["n"]) for s in row["criteria"].values()]
            rubric.add_row(safe_text(row["name"]), *cells, _num(row["rubric_mean"]))
            bt = row["bt"]
            flags = ", ".join(f"{name} {share:.0%}" for name, share in sorted(row["flags"].items()) if share) or "–"
            pairwise.add_row(safe_text(row["name"]), _interval(bt["score"], bt["low"], bt["high"], row["pairwise"]["games"]),
                             _num(row["pairwise"]["win_rate"]), str(row["pairwise"]["games"]), flags,
                             *[_num(row["metrics"].get(name)) for name in metrics])


    def _fill_voice(self, data: dict[str, Any]) -> None:
        """The voice score beside the rubric's voice criterion and the pairwise score."""
        names = {row["label"]: row["name"] for row in data["leaderboard"]}
        table = self.query_one("#lb-voice", DataTable)
        table.clear(columns=True)
        table.add_columns("contestant", "voice AUC", "rubric voice", "pairwise", "copied")
        for row in data["voice"]["rows"]:
            auc = row_auc(row)
            table.add_row(safe_text(names.get(row["label"], row["label"])),
                          Text(auc, style="dim") if auc == NOT_SCORED else auc, _num(row["rubric_voice"]),
                          _num(row["bt"]), "–" if row["copied_words"] is None else f"{row['copied_words']} words")
        caption = Text("AUC: 0.5 = cannot be told from your writing, 1.0 = always can (lower is more like you)\n",
                       style="dim")
        caption.append_text(agreement_lines(data["voice"], names))
        self.query_one("#lb-voice-agreement", Static).update(caption)


def _agreement(data: dict[str, Any]) -> Table:
    table = Table(show_edge=False, box=None, padding=(0, 2))
    table.add_column("measure", style="bold")
    table.add_column("value")
    table.add_row("position bias (left wins)", _bias_text(data["position_bias"]))
    retest = dict(data["test_retest"])
    pairwise = retest.pop("pairwise_agreement", None)
    for name, entry in retest.items():
        table.add_row(f"test–retest · {name}", f"weighted κ {_num(entry.get('kappa'))} over {entry['pairs']} repeats")
    if pairwise:
        table.add_row("test–retest · pairwise", f"same winner in {pairwise['share']:.0%} of {pairwise['pairs']} repeats")
    if not data["test_retest"]:
        table.add_row("test–retest", "– (no repeated items answered yet)")
    for name, entry in data["inter_rater"].items():
        table.add_row(f"inter-rater · {name}",
                      f"Krippendorff α {_num(entry.get('alpha'))} ({entry['raters']} raters, {entry['units']} shared outputs)")
    if not data["inter_rater"]:
        table.add_row("inter-rater", "– (needs two raters scoring the same outputs)")
    return table


def _bias_text(bias: dict[str, Any]) -> str:
    share = bias.get("left_share")
    if share is None:
        return "– (no decided pairwise votes)"
    decided = (bias.get("left_wins") or 0) + (bias.get("right_wins") or 0)
    return (f"{_interval(share, bias.get('low'), bias.get('high'))} of {decided} decided votes, "
            f"{bias.get('ties') or 0} ties (0.50 = no bias)")


def _canaries(data: dict[str, Any]) -> Table:
    labels = [row["label"] for row in data["leaderboard"]]
    table = Table(expand=True, show_lines=True, padding=(0, 1))
    table.add_column("canary", style="bold", no_wrap=True)
    for row in data["leaderboard"]:
        table.add_column(safe_text(row["name"]), ratio=1)
    for canary in data["canaries"]:
        cells = []
        for label in labels:
            text = canary["outputs"].get(label)
            cells.append(Text("–", style="dim") if text is None else Text(_clip(text)))
        table.add_row(f"{canary['canary_id']} v{canary['version']}", *cells)
    return table


def _runs(data: dict[str, Any]) -> Group | Text:
    """One table per training run: canaries down, checkpoints across (in step order)."""
    if not data["runs"]:
        return Text("– (no canary outputs from training runs yet)", style="dim")
    tables = []
    for run in data["runs"]:
        losses = f"loss {_num(run['last_loss'])}, val {_num(run['last_val_loss'])}"
        table = Table(title=f"{run['name']} · {run['method'] or '?'} · {run['status'] or '?'} · {losses}",
                      title_justify="left", expand=True, show_lines=True, padding=(0, 1))
        table.add_column("canary", style="bold", no_wrap=True)
        for checkpoint in run["checkpoints"]:
            table.add_column(report.checkpoint_heading(run, checkpoint), ratio=1)
        canary_ids = sorted({canary for c in run["checkpoints"] for canary in c["outputs"]})
        for canary_id in canary_ids:
            table.add_row(canary_id, *[Text(_clip(c["outputs"][canary_id])) if canary_id in c["outputs"]
                                       else Text("–", style="dim") for c in run["checkpoints"]])
        tables.append(table)
    return Group(*tables)


def _clip(text: str) -> str:
    text = safe_text(" ".join(text.split()))
    return text if len(text) <= SIDE_BY_SIDE_CHARS else text[:SIDE_BY_SIDE_CHARS - 1] + "…"
