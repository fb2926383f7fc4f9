"""Ingest and export dialogs of the Pairs screen.

Ingest reads essays and notes in a thread worker (progress per file) and shows a preview —
pairs per tier, the split, warnings, the sources it would copy and a few sample pairs — before
anything changes; only "Apply" acts: files read from outside the workspace are copied into
data/sources/ (the workspace keeps what it trains on; a file there with other text is replaced
only if the writer says so, in `SourceClashDialog`), then the pairs go to the screen, which merges
them in as one undoable step. A preview answers one set of inputs: once the form changes, a
preview of the old inputs arriving late is dropped, so Apply never acts on a stale preview.
Export writes the in-memory pairs (unsaved edits included) with engine/export.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, ProgressBar, RadioButton, RadioSet, Select, Static
from textual.worker import get_current_worker

from engine.curate.pairs import Pair
from engine.display import safe_text
from tui.screens.dialogs import CLASH_CANCEL, CLASH_KEEP, SourceClashDialog

INGEST_TIERS = ("continuation", "thesis", "paragraph", "note")
SAMPLE_PAIRS = 3  # sample pairs shown in the preview
MERGE_ADD = "add"  # keep every existing pair; add ingested pairs whose id is new
MERGE_REPLACE = "replace"  # keep manual pairs; everything else comes from this ingest


@dataclass(frozen=True)
class IngestOutcome:
    """What the writer applied: the ingested pairs and how to merge them."""

    pairs: list[Pair]
    mode: str
    copied: tuple[str, ...] = ()  # sources copied into data/sources (workspace-relative)
    kept: tuple[str, ...] = ()  # sources left as they were although the ingested file differs


def merge_ingested(existing: list[Pair], ingested: list[Pair], mode: str) -> tuple[list[Pair], str]:
    """The new pair list and a one-line summary. Manual pairs are never dropped."""
    if mode == MERGE_ADD:
        taken = {pair.id for pair in existing}
        added = [pair for pair in ingested if pair.id not in taken]
        return existing + added, f"added {len(added)} new pairs ({len(ingested) - len(added)} already there)"
    kept = [pair for pair in existing if pair.tier == "manual"]
    kept_ids = {pair.id for pair in kept}
    fresh = [pair for pair in ingested if pair.id not in kept_ids]
    return kept + fresh, f"replaced with {len(fresh)} ingested pairs, kept {len(kept)} manual pairs"


def _short(text: str, width: int) -> str:
    text = safe_text(" ".join(text.split()))
    return text if len(text) <= width else text[: width - 1] + "…"


class IngestDialog(ModalScreen[IngestOutcome | None]):
    """Choose sources, val share and tiers; preview; apply."""

    BINDINGS = [
        Binding("escape", "dismiss(None)", "Cancel", id="ingest.cancel"),
        Binding("ctrl+r", "preview", "Preview", id="ingest.preview", priority=True),
        Binding("ctrl+o", "apply", "Apply", id="ingest.apply", priority=True),
    ]
    DEFAULT_CSS = """
    IngestDialog { align: center middle; }
    IngestDialog > Vertical { width: 96; max-width: 100%; height: 34; max-height: 100%; border: thick $accent; background: $surface; padding: 0 1; }
    IngestDialog .io--row { height: 1; margin-top: 1; }
    IngestDialog .io--label { width: 11; color: $text-muted; text-style: bold; }
    IngestDialog Input { background: $boost; }
    IngestDialog #ingest-paths { width: 1fr; }
    IngestDialog #ingest-val-share, IngestDialog #ingest-seed { width: 10; margin-right: 4; }
    IngestDialog Checkbox, IngestDialog RadioSet, IngestDialog RadioButton { border: none; padding: 0; height: 1; background: $surface; margin-right: 2; }
    IngestDialog RadioSet { layout: horizontal; width: 1fr; }
    IngestDialog #ingest-mode > RadioButton { width: auto; }
    IngestDialog #ingest-buttons { height: 3; margin-top: 1; }
    IngestDialog Button { margin-right: 1; }
    IngestDialog ProgressBar { margin-top: 1; }
    IngestDialog #ingest-preview { height: 1fr; border: round $foreground 30%; margin-top: 1; }
    """

    class Progress(Message):
        def __init__(self, done: int, total: int, path: str, key: tuple = ()) -> None:
            super().__init__()
            self.done, self.total, self.path, self.key = done, total, path, key

    class Finished(Message):
        def __init__(self, result=None, error: str = "", key: tuple = (), copies=()) -> None:
            super().__init__()
            self.result, self.error, self.key = result, error, key
            self.copies = copies  # engine.curate.ingest.SourceCopy plan at preview time

    def __init__(self, root: Path, default_sources: Path, token_model: str, existing: list[Pair]) -> None:
        super().__init__()
        self.root = root
        self.default_sources = default_sources
        self.token_model = token_model
        self.existing = existing
        self.result = None  # engine.curate.ingest.IngestResult of the last preview
        self.copies: list = []  # its source copy plan (engine.curate.ingest.SourceCopy)
        # The inputs of the preview asked for last; () once the form changes after it. A
        # preview's messages count only while their key is this one.
        self._wanted_key: tuple = ()

    def compose(self) -> ComposeResult:
        try:
            sources = self.default_sources.relative_to(self.root).as_posix()
        except ValueError:
            sources = str(self.default_sources)
        with Vertical() as box:
            box.border_title = "Ingest essays and notes"
            with Horizontal(classes="io--row"):
                yield Label("sources", classes="io--label")
                yield Input(sources, id="ingest-paths", compact=True, placeholder="files or folders, separated by spaces")
            with Horizontal(classes="io--row"):
                yield Label("val share", classes="io--label")
                yield Input("0.15", id="ingest-val-share", type="number", compact=True)
                yield Label("seed", classes="io--label")
                yield Input("0", id="ingest-seed", type="integer", compact=True)
            with Horizontal(classes="io--row"):
                yield Label("tiers", classes="io--label")
                for tier in INGEST_TIERS:
                    yield Checkbox(tier, True, id=f"ingest-tier-{tier}")
            with Horizontal(classes="io--row"):
                yield Label("merge", classes="io--label")
                with RadioSet(id="ingest-mode"):
                    yield RadioButton("add new pairs", True, id="ingest-mode-add")
                    yield RadioButton("replace all but manual ones", id="ingest-mode-replace")
            with Horizontal(id="ingest-buttons"):
                yield Button("Preview ^r", id="ingest-preview-button", variant="primary")
                yield Button("Apply ^o", id="ingest-apply", variant="success", disabled=True)
                yield Button("Cancel esc", id="ingest-cancel")
            yield ProgressBar(id="ingest-progress", show_eta=False)
            with VerticalScroll(id="ingest-preview"):
                yield Static("Preview shows what ingest would build; nothing changes until Apply.",
                             id="ingest-preview-text")

    # Form ------------------------------------------------------------------------------
    def _form(self) -> tuple[list[Path], float, int, tuple[str, ...]]:
        """The form's values; raises ValueError with a message for the writer."""
        raw_paths = self.query_one("#ingest-paths", Input).value.split()
        if not raw_paths:
            raise ValueError("give at least one file or folder")
        paths = [Path(raw).expanduser() for raw in raw_paths]
        paths = [path if path.is_absolute() else self.root / path for path in paths]
        missing = [str(path) for path in paths if not path.exists()]
        if missing:
            raise ValueError(f"no such file or folder: {', '.join(missing)}")
        try:
            val_share = float(self.query_one("#ingest-val-share", Input).value)
        except ValueError:
            raise ValueError("val share must be a number such as 0.15") from None
        if not 0.0 <= val_share < 1.0:
            raise ValueError("val share must be at least 0 and below 1")
        try:
            seed = int(self.query_one("#ingest-seed", Input).value or "0")
        except ValueError:
            raise ValueError("seed must be a whole number") from None
        tiers = tuple(tier for tier in INGEST_TIERS if self.query_one(f"#ingest-tier-{tier}", Checkbox).value)
        if not tiers:
            raise ValueError("choose at least one tier")
        return paths, val_share, seed, tiers

    def _current_key(self) -> tuple:
        """The form's inputs as a preview's key; () while the form is not valid."""
        try:
            paths, val_share, seed, tiers = self._form()
        except ValueError:
            return ()
        return (tuple(paths), val_share, seed, tiers)

    def _mode(self) -> str:
        return MERGE_REPLACE if self.query_one("#ingest-mode-replace", RadioButton).value else MERGE_ADD

    @on(Input.Changed)
    @on(Checkbox.Changed)
    def _form_changed(self) -> None:
        # The preview no longer matches the form: it must be made again before applying, and
        # one still being made for the old inputs must not count when it arrives.
        if self._wanted_key and self._current_key() == self._wanted_key:
            return  # the same inputs (a change reported late, or typed and undone)
        if self._wanted_key or self.result is not None:
            self.query_one("#ingest-preview-text", Static).update(
                "The inputs changed; press ctrl+r to preview them (Apply waits for that preview).")
        self.result = None
        self._wanted_key = ()
        self.query_one("#ingest-apply", Button).disabled = True

    @on(RadioSet.Changed)
    def _mode_changed(self) -> None:
        if self.result is not None:
            self._show_preview()

    # Preview ---------------------------------------------------------------------------
    def action_preview(self) -> None:
        try:
            paths, val_share, seed, tiers = self._form()
        except ValueError as error:
            self.query_one("#ingest-preview-text", Static).update(Text(f"Cannot preview: {error}.", style="bold red"))
            return
        self.query_one("#ingest-apply", Button).disabled = True
        self.query_one("#ingest-preview-text", Static).update("Reading sources…")
        self.query_one(ProgressBar).update(total=None, progress=0)
        self.result = None
        self._wanted_key = (tuple(paths), val_share, seed, tiers)
        self._run_ingest(paths, val_share, seed, tiers, self._wanted_key)

    @work(thread=True, exclusive=True, exit_on_error=False, group="ingest")
    def _run_ingest(self, paths, val_share: float, seed: int, tiers, key: tuple) -> None:
        from engine.curate.ingest import FileIngested, FileSkipped, ingest, plan_source_copies
        from engine.curate.tokens import TokenizerUnavailable, budgets_for, counter_for_model

        worker = get_current_worker()
        counter, budget = None, 512
        try:
            counter = counter_for_model(self.app.workspace, self.token_model)
            budget = budgets_for(self.app.workspace).get(self.token_model, budget)
        except (TokenizerUnavailable, ValueError):
            pass  # ingest estimates lengths from word counts
        try:
            events = ingest(paths, tiers=tiers, val_share=val_share, seed=seed, budget_tokens=budget, counter=counter)
            while True:
                if worker.is_cancelled:
                    return
                try:
                    event = next(events)
                except StopIteration as stop:
                    copies = plan_source_copies(stop.value.pieces, self.app.workspace.sources_dir)
                    self.post_message(self.Finished(stop.value, key=key, copies=copies))
                    return
                if isinstance(event, FileIngested | FileSkipped):
                    self.post_message(self.Progress(event.index, event.total, event.path, key))
        except (OSError, ValueError) as error:
            self.post_message(self.Finished(error=str(error), key=key))

    @on(Progress)
    def _progress(self, message: Progress) -> None:
        if message.key != self._wanted_key:
            return  # a preview of inputs the form no longer holds
        self.query_one(ProgressBar).update(total=message.total, progress=message.done)
        self.query_one("#ingest-preview-text", Static).update(f"Reading {message.done}/{message.total}…")

    @on(Finished)
    def _finished(self, message: Finished) -> None:
        if not message.key or message.key != self._wanted_key:
            return  # made for inputs the form no longer holds: never shown, never applied
        if message.key != self._current_key():  # the form (or a source on disk) changed meanwhile
            self._wanted_key = ()
            self.query_one("#ingest-preview-text", Static).update(
                "The inputs changed while reading; press ctrl+r to preview them.")
            return
        if message.error:
            self.query_one("#ingest-preview-text", Static).update(Text(f"Ingest failed: {message.error}", style="bold red"))
            return
        self.result = message.result
        self.copies = list(message.copies)
        self._show_preview()
        self.query_one("#ingest-apply", Button).disabled = not self.result.pairs

    def _show_preview(self) -> None:
        result = self.result
        pairs = result.pairs
        if not pairs:
            self.query_one("#ingest-preview-text", Static).update(Text(self._nothing_built(), style="bold red"))
            return
        tiers = Counter(pair.tier for pair in pairs)
        val = sum(pair.split == "val" for pair in pairs)
        _, summary = merge_ingested(self.existing, pairs, self._mode())
        text = Text()
        text.append(f"{len(result.pieces)} pieces → {len(pairs)} pairs", style="bold")
        text.append(f"  ({len(pairs) - val} train, {val} val)\n")
        text.append("  " + ", ".join(f"{tier} {tiers[tier]}" for tier in INGEST_TIERS if tiers[tier]) + "\n")
        text.append(f"Apply would: {summary}.\n", style="bold")
        text.append(self._copies_line())
        for skipped in result.skipped:
            text.append(safe_text(f"skipped {self._display(skipped.path)}: {skipped.reason}\n"), style="yellow")
        for warning in result.warnings:
            text.append(safe_text(f"warning {self._display(warning.path)}: {warning.message}\n"), style="yellow")
        for pair in pairs[:SAMPLE_PAIRS]:
            text.append(f"\n{safe_text(pair.id)}", style="bold")
            text.append(f"  {pair.tier} · {pair.split}\n", style="dim")
            text.append(f"  prompt   {_short(pair.prompt, 70)}\n")
            text.append(f"  response {_short(pair.response, 70)}\n")
        self.query_one("#ingest-preview-text", Static).update(text)

    def _nothing_built(self) -> str:
        """Why Apply is refused when ingest built no pairs (as `voicebench ingest` refuses)."""
        result = self.result
        skipped = "; ".join(f"{self._display(event.path)}: {event.reason}" for event in result.skipped[:3])
        used = len(result.pieces)
        return safe_text(
            f"No pairs built from {used} usable of {used + len(result.skipped)} source files"
            f"{': ' + skipped if skipped else ''}. Nothing will change: ingest never replaces pairs with "
            "nothing. Add markdown or text files (.md, .markdown, .txt), or choose more tiers, and preview again."
        )

    def _copies_line(self) -> Text:
        """What Apply does to data/sources, as the preview's second summary line."""
        sources = self._display(str(self.app.workspace.sources_dir))
        new = sum(copy.state == "new" for copy in self.copies)
        different = sum(copy.state == "different" for copy in self.copies)
        if not new and not different:
            return Text(f"Sources: all already in {sources}/.\n", style="dim")
        line = Text(f"Apply would copy {new} new source{'s' if new != 1 else ''} into {sources}/")
        if different:
            line.append(f"; {different} already there with other text (you will be asked)", style="yellow")
        line.append(".\n")
        return line

    def _display(self, path: str) -> str:
        try:
            return Path(path).relative_to(self.root).as_posix()
        except ValueError:
            return path

    def action_apply(self) -> None:
        if self.result is None:
            return
        if not self.result.pairs:
            self.notify(self._nothing_built(), severity="error", timeout=8, markup=False)
            return
        from engine.curate.ingest import plan_source_copies

        # Planned again now: a file may have changed in data/sources since the preview.
        try:
            plan = plan_source_copies(self.result.pieces, self.app.workspace.sources_dir)
        except OSError as error:
            self._copy_failed(error)
            return
        clashes = [copy for copy in plan if copy.state == "different"]
        if not clashes:
            self._copy_and_apply(plan, overwrite=False)
            return
        listed = [(self._display(str(copy.target)), self._display(str(copy.source))) for copy in clashes]

        def decided(choice: str | None) -> None:
            if choice is None or choice == CLASH_CANCEL:
                self.query_one("#ingest-apply", Button).focus()  # nothing changed; still here
                return
            self._copy_and_apply(plan, overwrite=choice != CLASH_KEEP)

        self.app.push_screen(SourceClashDialog(listed), decided)

    def _copy_and_apply(self, plan: list, overwrite: bool) -> None:
        """Copy the new sources (and the differing ones if `overwrite`), then hand the pairs over."""
        from engine.curate.ingest import copy_sources

        chosen = [copy for copy in plan if copy.state == "new" or (overwrite and copy.state == "different")]
        kept = [copy for copy in plan if copy.state == "different" and not overwrite]
        try:
            written = copy_sources(chosen)
        except OSError as error:
            self._copy_failed(error)
            return
        copied = tuple(self._display(str(path)) for path in written)
        kept_names = tuple(self._display(str(copy.target)) for copy in kept)
        if copied or kept_names:
            sources = self._display(str(self.app.workspace.sources_dir))
            words = [f"copied {len(copied)} source{'s' if len(copied) != 1 else ''} into {sources}/"] if copied else []
            if kept_names:
                words.append(f"kept {len(kept_names)} existing source{'s' if len(kept_names) != 1 else ''} "
                             f"as {'it was' if len(kept_names) == 1 else 'they were'}")
            self.app.notify(safe_text("Ingest " + "; ".join(words) + "."), timeout=8, markup=False)
        self.dismiss(IngestOutcome(list(self.result.pairs), self._mode(), copied, kept_names))

    def _copy_failed(self, error: OSError) -> None:
        self.query_one("#ingest-preview-text", Static).update(Text(safe_text(
            f"Could not copy the sources into {self._display(str(self.app.workspace.sources_dir))}/: {error}. "
            "No pairs were applied; fix the folder (permissions, free space) and press Apply again."),
            style="bold red"))

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "ingest-preview-button":
            self.action_preview()
        elif event.button.id == "ingest-apply":
            self.action_apply()
        else:
            self.dismiss(None)


# Export ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class ExportPlan:
    """Format, split ("train" | "val" | "all" | "both") and output path, as chosen."""

    fmt: str
    split: str
    out: Path
    system: str = ""


def default_export_path(fmt: str) -> str:
    from engine.curate.export import FORMAT_SUFFIX

    return f"data/export/pairs.{fmt}{FORMAT_SUFFIX[fmt]}"


class ExportDialog(ModalScreen[ExportPlan | None]):
    """Choose the format, split and output path of an export."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel", id="export.cancel")]
    DEFAULT_CSS = """
    ExportDialog { align: center middle; }
    ExportDialog > Vertical { width: 80; height: auto; border: thick $accent; background: $surface; padding: 0 1; }
    ExportDialog .io--row { height: auto; margin-top: 1; }
    ExportDialog .io--label { width: 10; padding-top: 1; color: $text-muted; text-style: bold; }
    ExportDialog Input { margin-top: 0; }
    ExportDialog Select, ExportDialog Input { width: 1fr; }
    ExportDialog #export-buttons { height: 3; margin: 1 0; }
    ExportDialog Button { margin-right: 1; }
    ExportDialog #export-error { color: $text-error; }
    """

    def __init__(self, root: Path, counts: dict[str, int]) -> None:
        super().__init__()
        self.root = root
        self.counts = counts  # pairs per split, shown next to the split choices

    def compose(self) -> ComposeResult:
        from engine.curate.export import FORMATS

        splits = [
            (f"train ({self.counts.get('train', 0)} pairs)", "train"),
            (f"val ({self.counts.get('val', 0)} pairs)", "val"),
            (f"all ({sum(self.counts.values())} pairs)", "all"),
            ("train and val, two files", "both"),
        ]
        with Vertical() as box:
            box.border_title = "Export pairs"
            with Horizontal(classes="io--row"):
                yield Label("format", classes="io--label")
                yield Select([(fmt, fmt) for fmt in FORMATS], value=FORMATS[0], allow_blank=False, id="export-format")
            with Horizontal(classes="io--row"):
                yield Label("split", classes="io--label")
                yield Select(splits, value="train", allow_blank=False, id="export-split")
            with Horizontal(classes="io--row"):
                yield Label("output", classes="io--label")
                yield Input(default_export_path(FORMATS[0]), id="export-out")
            with Horizontal(classes="io--row"):
                yield Label("system", classes="io--label")
                yield Input(id="export-system", placeholder="optional system message (messages format only)")
            yield Static("", id="export-error")
            with Horizontal(id="export-buttons"):
                yield Button("Export", id="export-go", variant="primary")
                yield Button("Cancel", id="export-cancel")

    @on(Select.Changed, "#export-format")
    def _format_changed(self, event: Select.Changed) -> None:
        out = self.query_one("#export-out", Input)
        # Follow the format only while the path is still one of our defaults.
        from engine.curate.export import FORMATS

        if out.value in {default_export_path(fmt) for fmt in FORMATS}:
            out.value = default_export_path(str(event.value))
        self.query_one("#export-system", Input).disabled = event.value != "messages"

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        if event.button.id != "export-go":
            self.dismiss(None)
            return
        out_text = self.query_one("#export-out", Input).value.strip()
        if not out_text:
            self.query_one("#export-error", Static).update("Give an output path, e.g. data/export/pairs.jsonl.")
            return
        out = Path(out_text).expanduser()
        fmt = str(self.query_one("#export-format", Select).value)
        system = self.query_one("#export-system", Input).value.strip() if fmt == "messages" else ""
        self.dismiss(ExportPlan(fmt, str(self.query_one("#export-split", Select).value),
                                out if out.is_absolute() else self.root / out, system))

    @on(Input.Submitted, "#export-out")
    def _submitted(self) -> None:
        self.query_one("#export-go", Button).press()
