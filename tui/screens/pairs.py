"""The Pairs screen: browse, filter, edit and validate the workspace's training pairs.

Layout: a filter line and the pair table on the left with the validation panel below it,
the editor of the selected pair on the right, a status line at the bottom. Edits go to an
in-memory `PairsSession` (with undo/redo) and are autosaved shortly after the last key
(saving, conflicts and outside changes: `pairs_disk.py`); reading the file, counting
tokens and validation run in thread workers that only post messages.
"""

from __future__ import annotations

import copy
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Input, Label, Static, TextArea
from textual.worker import Worker, WorkerState, get_current_worker

from engine.curate.pairs import (
    Pair,
    Problem,
    filter_pairs,
    load_pairs,
    pair_token_count,
    query_narrows,
    validate,
)
from tui.pairs_session import PairsSession, unknown_field_values
from tui.screens.base import WorkbenchScreen
from tui.screens.pairs_disk import PairsDiskMixin, when_loaded
from tui.widgets.pair_cells import COLUMNS, ID_WIDTH, TIER_SHORT, display_id, short_flag, source_label
from tui.widgets.pair_editor import PairEditor
from tui.widgets.pair_problems import ProblemList, display_path
from tui.widgets.pair_table import PairTable, middle_ellipsis

if TYPE_CHECKING:
    from tui.screens.pairs_io import ExportPlan, IngestOutcome

DEFAULT_TOKEN_MODEL = "demo-ar"  # whose tokenizer the tokens column uses; [pairs] model overrides
NARROW_WIDTH = 100  # below this many columns the list and the editor take turns (see pairs.tcss)
AUTOSAVE_SECONDS = 1.5  # quiet time after the last edit before the file is written
VALIDATE_SECONDS = 0.4  # quiet time after the last edit before validation runs again
DISK_CHECK_SECONDS = 2.0  # how often the file's size/mtime are checked for outside changes
# While the writer types a filter, the editor follows the cursor only after this quiet time:
# loading and wrapping an essay-length response on every key press would double the
# keystroke's cost, and the rows are what the writer is looking at.
FILTER_EDITOR_SECONDS = 0.15
FILTER_CACHE_SIZE = 32  # recent filter queries whose results are kept
TOKEN_BATCH = 256  # pairs counted per progress message

class PairsCommands(Provider):
    """Command palette: every Pairs key as a command ("Pairs: Ingest — Build pairs …")."""

    def _commands(self):
        screen = self.screen
        if not isinstance(screen, PairsScreen):
            return
        for binding in PairsScreen.BINDINGS:
            if binding.action == "leave_field":
                continue
            text = f"Pairs: {binding.description}"
            yield text, binding.tooltip or binding.description, binding.action

    async def discover(self) -> Hits:
        for text, help_text, action in self._commands():
            yield DiscoveryHit(text, partial(self.screen.run_action, action), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for text, help_text, action in self._commands():
            score = matcher.match(f"{text} {help_text}")
            if score > 0:
                yield Hit(score, matcher.highlight(text), partial(self.screen.run_action, action), help=help_text)


class PairsScreen(PairsDiskMixin, WorkbenchScreen):
    SCREEN_NAME = "pairs"
    DEFAULT_CSS = (Path(__file__).with_name("pairs.tcss")).read_text(encoding="utf-8")
    # The table has focus from the first frame (Textual would focus the filter, the first
    # focusable widget, and the footer would show the filter's keys until on_mount's focus).
    AUTO_FOCUS = "#pairs-table"
    COMMANDS = {PairsCommands}
    BINDINGS = [
        Binding("slash", "focus_filter", "Filter", id="pairs.filter", tooltip="Filter by words or tier:/split:/tag:/source:/id:"),
        Binding("escape", "leave_field", "Back to table", show=False, id="pairs.back"),
        Binding("n", "new_pair", "New", id="pairs.new", tooltip="Add an empty pair after this one"),
        Binding("c", "duplicate_pair", "Copy", id="pairs.duplicate", tooltip="Duplicate the selected pair"),
        Binding("d,delete", "delete_pair", "Delete", id="pairs.delete", tooltip="Delete the pair (ctrl+z undoes)"),
        Binding("t", "move_split('train')", "→train", id="pairs.to_train", show=False, tooltip="Move the pair to the train split"),
        Binding("v", "move_split('val')", "→val", id="pairs.to_val", show=False, tooltip="Move the pair to the val split"),
        Binding("ctrl+z", "undo", "Undo", id="pairs.undo", priority=True),
        Binding("ctrl+y", "redo", "Redo", id="pairs.redo", show=False, priority=True),
        Binding("ctrl+s", "save", "Save", id="pairs.save", priority=True, tooltip="Save now (autosave runs anyway)"),
        Binding("p", "focus_problems", "Problems", id="pairs.problems", show=False, tooltip="Go to the validation panel"),
        Binding("i", "ingest", "Ingest", id="pairs.ingest", tooltip="Build pairs from essays and notes"),
        Binding("e", "export", "Export", id="pairs.export", tooltip="Write the pairs in a training format"),
    ]

    class TokensCounted(Message):
        """Progress of the token-count worker."""

        def __init__(self, done: int, total: int, counter=None, budget: int | None = None, error: str = "") -> None:
            super().__init__()
            self.done, self.total, self.counter, self.budget, self.error = done, total, counter, budget, error

    class ProblemsFound(Message):
        def __init__(self, problems: list[Problem], version: int) -> None:
            super().__init__()
            self.problems, self.version = problems, version

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.session: PairsSession | None = None
        self.autosave_delay = AUTOSAVE_SECONDS
        self.problems: list[Problem] = []
        self._flags: dict[str, str] = {}
        self._counter = None  # engine.curate.tokens.TokenCounter once loaded
        self._token_state = "counting tokens…"
        self._token_model = DEFAULT_TOKEN_MODEL
        self._budget: int | None = None
        self._selected: str | None = None
        self._autosave_timer: Timer | None = None
        self._filter_cache: dict[str, list[Pair]] = {}  # query → matches, for pairs at _filter_version
        self._filter_version = -1
        self._disk_stat: tuple[int, int] | None = None  # (mtime, size) of the file as last seen
        self._validating = False  # a validation worker is running
        self._validate_again = False  # …and another was asked for meanwhile
        self._validate_timer: Timer | None = None
        self._save_state = "saved"  # saved | unsaved | conflict | error
        self._conflict_pending = False
        self._conflict_open = False
        self._token_error = ""  # why there are no token counts, for the help text
        self._load_failed = False
        self._editor_timer: Timer | None = None  # shows the selected pair once filter typing pauses
        self._status_shown: tuple[Text, Text] | None = None

    @property
    def busy(self) -> bool:
        """Background work pending: loading, counting, or a validation due or running
        (tests and benchmarks wait on this rather than on the clock)."""
        if self.session is None:
            return not self._load_failed
        counting = self._counter is None and not self._token_error
        return (counting or self._validate_timer is not None or self._validating or self._validate_again
                or self._editor_timer is not None)

    # Layout ----------------------------------------------------------------------------
    def compose_body(self) -> ComposeResult:
        with Horizontal(id="pairs-main"):
            with Vertical(id="pairs-left"):
                with Horizontal(id="pairs-filter-row"):
                    yield Label("/", id="pairs-filter-key")
                    yield Input(id="pairs-filter", compact=True,
                                placeholder="filter: words, or tier:note split:val tag:river source:essays id:…")
                yield PairTable(COLUMNS, self._cells, id="pairs-table")
                yield ProblemList(self.app.workspace.root, id="pairs-problems")
            yield PairEditor(id="pairs-editor")
        with Horizontal(id="pairs-status"):
            yield Static(id="pairs-status-left")
            yield Static(id="pairs-status-right")

    def on_mount(self) -> None:
        workspace = self.app.workspace
        settings = workspace.section("pairs")
        self._token_model = str(settings.get("model", DEFAULT_TOKEN_MODEL))
        self.autosave_delay = float(settings.get("autosave_seconds", self.autosave_delay))
        table = self.query_one(PairTable)
        table.border_title = "pairs"
        table.empty_message = f"Loading {display_path(workspace.pairs_path, workspace.root)}…"
        self.query_one(ProblemList).border_title = "problems · checking…"
        self.query_one(PairEditor).show(None)
        table.focus()
        # Watched rather than handled as Input.Changed: the watcher runs inside the key
        # press, so the new rows go out in the same frame as the typed letter instead of
        # waiting one or two frame periods behind it.
        self.watch(self.query_one("#pairs-filter", Input), "value", self._filter_changed, init=False)
        # Focus is watched too, not handled as a Blur message: that arrives in a later turn,
        # and keys queued behind a click could reach a lagging editor before it.
        self.watch(self, "focused", self._focus_moved, init=False)
        # Read in a worker so the screen paints at once, however big the file; started
        # after the first frame, so neither the read nor the table, editor and token
        # counting that follow it compete with the first paint for the interpreter.
        self.call_after_refresh(self._load_file, workspace.pairs_path)

    class Loaded(Message):
        def __init__(self, pair_file=None, error: str = "") -> None:
            super().__init__()
            self.pair_file, self.error = pair_file, error

    @work(thread=True, exclusive=True, exit_on_error=False, group="pairs-load")
    def _load_file(self, path: Path) -> None:
        try:
            self.post_message(self.Loaded(load_pairs(path)))
        except OSError as error:
            self.post_message(self.Loaded(error=f"{path}: cannot read ({error.strerror or error}); "
                                                "check its permissions, then reopen voicebench"))

    @on(Loaded)
    def _loaded(self, message: Loaded) -> None:
        if message.error:
            self._load_failed = True
            self.query_one(PairTable).empty_message = message.error
            self.query_one(PairTable).refresh()
            self.notify(message.error, severity="error", timeout=15, markup=False)
            return
        self.session = PairsSession(message.pair_file)
        self._refresh_rows()
        self._start_background_work()
        self._disk_stat = self._stat()
        self.set_interval(DISK_CHECK_SECONDS, self.check_disk, name="disk-check")

    def _start_background_work(self) -> None:
        self._counter = None
        self._token_error = ""
        self._token_state = "counting tokens…"
        self._count_tokens(list(self.session.pairs))
        # Structural problems at once; token budgets are checked again when the counts
        # are in (see _tokens_counted). Validations queue, they never cancel each other.
        self._validate_soon(0)

    # Table cells -----------------------------------------------------------------------
    def _cells(self, pair_id: str) -> list[tuple[str, str]]:
        pair = self.session.get(pair_id) if self.session else None
        if pair is None:
            return [(pair_id, "")] + [("", "")] * 5
        tokens = self._tokens(pair)
        too_long = tokens is not None and self._budget is not None and tokens > self._budget
        flags = self._flags.get(pair_id, "")
        if too_long and "too long" not in flags:
            flags = ", ".join(filter(None, ["too long", flags]))
        return [
            (middle_ellipsis(pair.id, ID_WIDTH), ""),
            (TIER_SHORT.get(pair.tier, pair.tier), "pair-table--dim"),
            (pair.split, "pair-table--val" if pair.split == "val" else ""),
            (source_label(pair.source), "pair-table--dim"),
            (self._token_placeholder() if tokens is None else str(tokens), "pair-table--flag" if too_long else ""),
            (flags, "pair-table--flag"),
        ]

    def _token_placeholder(self) -> str:
        return "–" if self._token_error else "…"  # no tokenizer here / still counting

    def _tokens(self, pair: Pair) -> int | None:
        if self._counter is None:
            return None
        return pair_token_count(pair, self._counter.count)

    # Rows, selection, status ---------------------------------------------------------------
    @when_loaded
    def _refresh_rows(self, select: str | None = None, ensure: str | None = None) -> None:
        """Re-apply the filter; keep (or move) the cursor; `ensure` shows a pair even if
        the filter would hide it (a new pair must be visible to be edited)."""
        query = self.query_one("#pairs-filter", Input).value
        keys = self.session.row_keys()
        ids = [keys[id(pair)] for pair in self._matches(query)]
        if ensure is not None and ensure not in ids:
            ids.append(ensure)
        table = self.query_one(PairTable)
        table.empty_message = (
            unknown_field_values(query) or f"No pair matches “{query.strip()}”. esc clears the filter."
            if query.strip() else "No pairs yet: i ingests your essays and notes, n adds one by hand."
        )
        table.set_rows(ids, keep=select if select is not None else self._selected)
        table.border_title = (
            f"pairs · {len(ids)} of {len(self.session.pairs)}" if query.strip() else f"pairs · {len(ids)}"
        )
        self._show_selected(table.cursor_id)
        self._update_status()

    def _matches(self, query: str) -> list[Pair]:
        """filter_pairs, with the results of recent queries kept until the pairs change:
        backspace finds its answer ready, and a longer query narrows the longest earlier
        query it extends (every term the same or stricter, a substring test)."""
        version = self.session.version
        if self._filter_version != version:
            self._filter_cache.clear()
            self._filter_version = version
        cached = self._filter_cache.get(query)
        if cached is not None:
            return cached
        base = self.session.pairs
        for previous in sorted(self._filter_cache, key=len, reverse=True):
            if query_narrows(previous, query):
                base = self._filter_cache[previous]
                break
        matches = filter_pairs(base, query)
        self._filter_cache[query] = matches
        if len(self._filter_cache) > FILTER_CACHE_SIZE:
            del self._filter_cache[next(iter(self._filter_cache))]  # the oldest query
        return matches

    @when_loaded
    def _show_selected(self, pair_id: str | None) -> None:
        if pair_id != self._selected:
            self.session.break_coalescing()
        self._selected = pair_id
        if self._editor_timer is not None:
            self._editor_timer.stop()
            self._editor_timer = None
        if self.focused is self.query_one("#pairs-filter", Input):
            self._editor_timer = self.set_timer(FILTER_EDITOR_SECONDS, self._show_in_editor, name="filter-editor")
        else:
            self._show_in_editor()

    def _focus_moved(self, old, _new) -> None:
        """Leaving the filter, by any key, click or command: a deferred editor update happens
        now, so the editor never holds focus while it shows a pair the cursor has left."""
        if self._editor_timer is not None and old is self.query_one("#pairs-filter", Input):
            self._show_in_editor()

    @when_loaded
    def _show_in_editor(self) -> None:
        if self._editor_timer is not None:
            self._editor_timer.stop()
            self._editor_timer = None
        self.query_one(PairEditor).show(self.session.get(self._selected), self._selected)

    @on(PairTable.Highlighted)
    def _highlighted(self, event: PairTable.Highlighted) -> None:
        self._show_selected(event.pair_id)

    @on(PairTable.Selected)
    def _selected_for_edit(self, event: PairTable.Selected) -> None:
        self.set_class(True, "-editing")  # narrow: the editor takes the width before it takes focus
        self.query_one("#pair-response", TextArea).focus()

    def on_resize(self, event) -> None:
        narrow = event.size.width < NARROW_WIDTH
        if narrow != self.has_class("-narrow"):
            self.set_class(narrow, "-narrow")
            self.query_one(PairTable).border_subtitle = "enter edits · esc back here" if narrow else ""

    def on_descendant_focus(self, event) -> None:
        # Narrow terminals show the list or the editor: whichever holds the focus.
        editing = any(node is self.query_one(PairEditor) for node in event.widget.ancestors_with_self)
        self.set_class(editing, "-editing")

    @when_loaded
    def _update_status(self) -> None:
        session = self.session
        root = self.app.workspace.root
        val = sum(1 for pair in session.pairs if pair.split == "val")
        left = Text(" ")
        left.append(display_path(session.path, root), style="bold")
        left.append(f"  {len(session.pairs)} pairs ({len(session.pairs) - val} train, {val} val)")
        bad = len(session.pair_file.bad_lines)
        if bad:
            left.append(f"  {bad} unreadable line{'s' if bad != 1 else ''}", style="bold red")
        errors = sum(1 for problem in self.problems if problem.severity == "error")
        warnings = len(self.problems) - errors
        left.append(f"  {errors} errors, {warnings} warnings", style="red" if errors else "dim")
        if self._budget is not None:
            left.append(f"  tokens: {self._token_model} ≤ {self._budget}", style="dim")
        if self._token_state:
            left.append(f"  {self._token_state}", style="dim italic")
        # Static.update re-lays out the screen; skip it when the line is the same (it
        # is, on almost every filter keystroke).
        if self._status_shown is None or self._status_shown[0] != left:
            self.query_one("#pairs-status-left", Static).update(left)
        state = self._save_state
        if state == "saved" and session.dirty:
            state = "unsaved"
        right = {
            "saved": Text("✓ saved ", style="green"),
            "unsaved": Text("● unsaved ", style="bold yellow"),
            "conflict": Text("⚠ changed on disk: not saved ", style="bold red"),
            "error": Text("⚠ save failed ", style="bold red"),
        }[state]
        if self._status_shown is None or self._status_shown[1] != right:
            self.query_one("#pairs-status-right", Static).update(right)
        self._status_shown = (left, right)

    # Filter ----------------------------------------------------------------------------
    def action_focus_filter(self) -> None:
        self.query_one("#pairs-filter", Input).focus()

    def _filter_changed(self) -> None:
        self._refresh_rows()

    @on(Input.Submitted, "#pairs-filter")
    def _filter_submitted(self) -> None:
        self.query_one(PairTable).focus()

    def action_leave_field(self) -> None:
        focused = self.focused
        filter_input = self.query_one("#pairs-filter", Input)
        if focused is filter_input and filter_input.value:
            filter_input.value = ""
            self._refresh_rows()
        self.query_one(PairTable).focus()

    # Editing ---------------------------------------------------------------------------
    @on(PairEditor.Edited)
    @when_loaded
    def _edited(self, event: PairEditor.Edited) -> None:
        before = self.session.get(event.pair_id)
        if before is None or getattr(before, event.field) == event.value:
            return
        self.session.edit(event.pair_id, **{event.field: event.value})
        self.query_one(PairTable).refresh()
        self._changed()

    def _changed(self) -> None:
        """After any change: show it, and schedule the autosave and a re-validation."""
        if self._save_state == "error":
            self._save_state = "saved"
        self._update_status()
        if self._autosave_timer is not None:
            self._autosave_timer.stop()
        self._autosave_timer = self._after(self.autosave_delay, self._autosave, "autosave")
        self._validate_soon(VALIDATE_SECONDS)

    def _current(self) -> str | None:
        if self.session is None:
            return None
        pair_id = self.query_one(PairTable).cursor_id
        return pair_id if self.session.get(pair_id) is not None else None

    @when_loaded
    def action_new_pair(self) -> None:
        pair = self.session.add_new(after=self._current())
        self._refresh_rows(select=pair.id, ensure=pair.id)
        self._changed()
        self.query_one("#pair-prompt", TextArea).focus()

    @when_loaded
    def action_duplicate_pair(self) -> None:
        pair_id = self._current()
        if pair_id is None:
            return
        copy_of = self.session.duplicate(pair_id)
        self._refresh_rows(select=copy_of.id, ensure=copy_of.id)
        self._changed()
        self.notify(f"Duplicated {display_id(pair_id)} as {copy_of.id}.", markup=False)

    @when_loaded
    def action_delete_pair(self) -> None:
        pair_id = self._current()
        if pair_id is None:
            return
        next_id = self.session.delete(pair_id)
        self._refresh_rows(select=next_id)
        self._changed()
        self.notify(f"Deleted {display_id(pair_id)}. ctrl+z brings it back.", markup=False)

    @when_loaded
    def action_move_split(self, split: str) -> None:
        pair_id = self._current()
        if pair_id is None or not self.session.set_split(pair_id, split):
            return
        self.query_one(PairTable).refresh()
        self.query_one(PairEditor).show(self.session.get(pair_id), pair_id)
        self._changed()

    @when_loaded
    def action_undo(self) -> None:
        self._travel(self.session.undo, "Undid")

    @when_loaded
    def action_redo(self) -> None:
        self._travel(self.session.redo, "Redid")

    @when_loaded
    def _travel(self, step_function, verb: str) -> None:
        step = step_function(self._current())
        if step is None:
            self.notify(f"Nothing to {verb.lower().removesuffix('id')}o.", severity="warning")
            return
        self._selected = None  # force the editor to reload the (restored) pair
        self._refresh_rows(select=step.selected, ensure=step.selected if self.session.get(step.selected) else None)
        self._changed()
        self.notify(f"{verb}: {step.label}.", markup=False)

    # Saving ----------------------------------------------------------------------------
    def _after(self, delay: float, callback, name: str) -> Timer:
        # Textual's Timer divides by its interval; a zero delay (tests) means "next tick".
        return self.set_timer(max(delay, 0.001), callback, name=name)

    # Background work -------------------------------------------------------------------
    @work(thread=True, exclusive=True, exit_on_error=False, group="pairs-tokens")
    def _count_tokens(self, pairs: list[Pair]) -> None:
        """Load the tokenizer and count every pair in batches (fills the tokens column)."""
        from engine.curate.tokens import TokenizerUnavailable, budgets_for, counter_for_model

        worker = get_current_worker()
        try:
            budget = budgets_for(self.app.workspace).get(self._token_model)
            counter = counter_for_model(self.app.workspace, self._token_model)
        except (TokenizerUnavailable, ValueError) as error:
            self.post_message(self.TokensCounted(0, len(pairs), error=str(error)))
            return
        for start in range(0, len(pairs), TOKEN_BATCH):
            if worker.is_cancelled:
                return
            batch = pairs[start:start + TOKEN_BATCH]
            counter.count_many([text for pair in batch for text in (pair.prompt, pair.response)])
            if start == 0 or start + TOKEN_BATCH >= len(pairs) or (start // TOKEN_BATCH) % 8 == 0:
                self.post_message(self.TokensCounted(min(start + TOKEN_BATCH, len(pairs)), len(pairs), counter, budget))
        if not pairs:
            self.post_message(self.TokensCounted(0, 0, counter, budget))

    @on(TokensCounted)
    def _tokens_counted(self, message: TokensCounted) -> None:
        if message.error:
            self._token_state = f"tokens: no tokenizer for {self._token_model}"
            self._token_error = message.error
            self.notify(message.error, title="No token counts", severity="warning", timeout=6, markup=False)
            self._validate_soon(0)
        else:
            self._counter = message.counter
            self._budget = message.budget
            done = message.done >= message.total
            self._token_state = "" if done else f"counting tokens {message.done}/{message.total}"
            if done:
                self._validate_soon(0)
        self.query_one(PairTable).refresh()
        self._update_status()

    @when_loaded
    def _validate_soon(self, delay: float) -> None:
        if self._validate_timer is not None:
            self._validate_timer.stop()
        self._validate_timer = self._after(delay, self._start_validation, "validate")

    @when_loaded
    def _start_validation(self) -> None:
        self._validate_timer = None
        if self._validating:
            # One validation at a time: a newer request runs when this one reports, so a
            # result is never thrown away half-way (and no worker ends "cancelled").
            self._validate_again = True
            return
        self._validating = True
        # The worker gets its own list: the UI may swap pairs while it runs.
        snapshot = copy.copy(self.session.pair_file)
        snapshot.pairs = list(self.session.pairs)
        self._validate(snapshot, self.session.version)

    @work(thread=True, exclusive=True, exit_on_error=False, group="pairs-validate")
    def _validate(self, snapshot, version: int) -> None:
        counter, budget = self._counter, self._budget
        budgets = {self._token_model: budget} if counter is not None and budget else None
        problems = validate(snapshot, budgets=budgets, counter=counter)
        if not get_current_worker().is_cancelled:
            self.post_message(self.ProblemsFound(problems, version))

    @on(Worker.StateChanged)
    def _worker_failed(self, event: Worker.StateChanged) -> None:
        if event.state != WorkerState.ERROR:
            return
        if event.worker.group == "pairs-validate":
            self._validating = False
        self.notify(f"{event.worker.group}: {event.worker.error}", title="Background task failed",
                    severity="error", timeout=10, markup=False)

    @on(ProblemsFound)
    @when_loaded
    def _problems_found(self, message: ProblemsFound) -> None:
        self._validating = False
        if self._validate_again:
            self._validate_again = False
            self._start_validation()
        self.problems = message.problems
        flags: dict[str, list[str]] = {}
        for problem in self.problems:
            if problem.pair_id is not None:
                # Keyed by row key, so two pairs sharing an id keep their own flags.
                key = self.session.key_at_line(problem.line, problem.pair_id) or problem.pair_id
                labels = flags.setdefault(key, [])
                label = short_flag(problem)
                if label not in labels:
                    labels.append(label)
        self._flags = {key: ", ".join(labels) for key, labels in flags.items()}
        self.query_one(ProblemList).set_problems(self.problems)
        self.query_one(PairTable).refresh()
        self._update_status()

    def action_focus_problems(self) -> None:
        self.query_one(ProblemList).focus()

    @on(ProblemList.Chosen)
    @when_loaded
    def _jump(self, event: ProblemList.Chosen) -> None:
        """Select the pair a problem is about (clearing a filter that hides it)."""
        problem = event.problem
        table = self.query_one(PairTable)
        if problem.pair_id is None:
            bad = next((bad for bad in self.session.pair_file.bad_lines if bad.line == problem.line), None)
            if bad is not None:
                self.query_one(PairEditor).show_bad_line(bad.line, bad.raw, bad.message)
                self._selected = None
            return
        key = self.session.key_at_line(problem.line, problem.pair_id)
        if key is None:
            self.notify(f"{problem.pair_id} is no longer in the file.", severity="warning", markup=False)
            return
        if table.index_of(key) is None:
            self.query_one("#pairs-filter", Input).value = ""
            self._refresh_rows(select=key)
        table.move_to(key)
        table.focus()

    # Ingest and export (dialogs in tui/screens/pairs_io.py, imported when first opened: their
    # widgets are not needed for the first frame) ---------------------------------------------
    @when_loaded
    def action_ingest(self) -> None:
        from tui.screens.pairs_io import IngestDialog

        workspace = self.app.workspace
        self.app.push_screen(
            IngestDialog(workspace.root, workspace.sources_dir, self._token_model, list(self.session.pairs)),
            self._apply_ingest,
        )

    def _apply_ingest(self, outcome: IngestOutcome | None) -> None:
        if outcome is None:
            return
        from tui.screens.pairs_io import merge_ingested

        merged, summary = merge_ingested(list(self.session.pairs), outcome.pairs, outcome.mode)
        self.session.replace_all(merged, f"ingest: {summary}", self._current())
        self._refresh_rows()
        self._changed()
        self._count_tokens(list(self.session.pairs))
        self.notify(f"Ingest {summary}. ctrl+z undoes it.", timeout=8, markup=False)

    @when_loaded
    def action_export(self) -> None:
        from tui.screens.pairs_io import ExportDialog

        counts = {"train": 0, "val": 0}
        for pair in self.session.pairs:
            counts[pair.split] = counts.get(pair.split, 0) + 1
        self.app.push_screen(ExportDialog(self.app.workspace.root, counts), self._export)

    def _export(self, plan: ExportPlan | None) -> None:
        if plan is None:
            return
        from engine.curate.export import export_pairs, export_splits

        root = self.app.workspace.root
        pairs = list(self.session.pairs)
        try:
            if plan.split == "both":
                written = export_splits(pairs, plan.out, plan.fmt, system=plan.system or None)
            else:
                written = {plan.out: export_pairs(pairs, plan.out, plan.fmt, plan.split, system=plan.system or None)}
        except (OSError, ValueError) as error:
            self.notify(f"Export failed: {error}", severity="error", timeout=10, markup=False)
            return
        files = ", ".join(f"{display_path(path, root)} ({count} pairs)" for path, count in written.items())
        errors = sum(1 for problem in self.problems if problem.severity == "error")
        warning = f" {errors} validation errors remain (see problems)." if errors else ""
        self.notify(f"Exported {plan.fmt}: {files}.{warning}", timeout=8, markup=False,
                    severity="warning" if errors else "information")
