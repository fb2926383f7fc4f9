"""The Judge screen (F4): build a blind rating session, rate it, then see who wrote what.

Three views share the screen:
- builder — choose contestants, canaries, mode (rubric or pairwise) and rater; start a
  session (ctrl+g; ctrl+t switches the mode), resume an open one (ctrl+o), run the canaries for a
  workspace model or a run's checkpoint (ctrl+r, in a thread worker), fill every canary a run's
  checkpoints are missing (ctrl+f: what a cancelled run skipped), edit the rubric (ctrl+b) or open
  the leaderboard (ctrl+l), or compute the highlighted contestant's automatic voice score (ctrl+s:
  `engine.judge.voice.voice_score` in a thread worker, progress "replies 3/44" then "scoring",
  then the AUC with its interval and calibration; escape cancels after the reply in hand, and the
  replies so far are stored and reused). The lists follow the store: a cheap poll (row count and
  newest id of the outputs and voice scores, and the run folders' checkpoint names) refreshes
  them as outputs arrive;
- rating — one blind item at a time, scored with number keys, flags with letters, a note,
  next/previous/skip; pairwise items choose left/right/tie overall or per criterion;
- reveal — after ctrl+e ends the session (asked once more: y/n), the table of sources and answers;
  ctrl+v opens the reading view (tui/screens/reading.py) on the revealed session's canaries.

Everything shown while rating comes from `engine.judge.session.BlindItem`, which carries no model
name, run id, path, timing or token count; the nav bar's workspace label and the toasts
(which other screens raise, e.g. a training run finishing) are hidden too.
Every action is one committed write through `BlindSession` on this (UI) thread's own
connection — a rating action is a single indexed write, fast enough for the UI thread —
so killing the app loses at most the key in flight, and ctrl+o resumes where it stopped.
"""

from __future__ import annotations

from collections.abc import Iterable

from textual import on, work
from textual.worker import Worker, get_current_worker
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widget import Widget
from textual.widgets import ContentSwitcher, Static

from engine.judge import rubric as rubric_store
from engine.judge import session as judging
from engine.judge.checkpoint_canaries import run_checkpoints, stored_pairs
from engine.judge.names import display_name, run_names
from engine.judge.voice import DEFAULT_REPLY_TOKENS, latest_voice_scores
from engine.judge.workspace_store import open_workspace_store
from engine.judge.rubric import Criterion, Flag
from tui.screens.base import WorkbenchScreen
from tui.widgets.judge_builder import CanaryTarget, JudgeBuilder
from tui.widgets.judge_item import BlindItemView
from tui.widgets.judge_note import ConfirmEndDialog, NoteDialog
from tui.widgets.judge_reveal import RevealTable
from tui.widgets.nav import NavBar
from tui.widgets.voice_summary import result_text

RATING_ACTIONS = {"score", "flag", "choose", "criterion_down", "criterion_up", "next", "prev", "skip",
                  "next_pending", "note", "leave", "end", "scroll_output"}
BUILDER_ACTIONS = {"start", "resume", "run_canaries", "fill_canaries", "toggle_mode", "voice_score"}
NO_OUTPUTS_HINT = ("No canary outputs yet. Pick a model or checkpoint in 'Canaries for' and press ctrl+r, "
                   "or run `voicebench canary --model NAME` in a shell.")
STORE_POLL_SECONDS = 2.0  # builder refresh while outputs arrive (two small queries and a folder scan)
MAX_SCORE_KEY = 9  # number keys 1–9; rubric scales have at most 10 scores, 1-based in practice


class JudgeScreen(WorkbenchScreen):
    SCREEN_NAME = "judge"
    CSS_PATH = "judge.tcss"
    BINDINGS = [
        # Builder
        Binding("ctrl+g", "start", "Start session", id="judge.start", tooltip="Build a new blind session from the choices"),
        Binding("ctrl+o", "resume", "Resume", id="judge.resume", tooltip="Resume the highlighted open session"),
        Binding("ctrl+t", "toggle_mode", "Mode", id="judge.mode", tooltip="Switch between rubric and pairwise"),
        Binding("ctrl+r", "run_canaries", "Run canaries", id="judge.run_canaries",
                tooltip="Answer the workspace canaries with the chosen model or checkpoint (thread worker)"),
        Binding("ctrl+f", "fill_canaries", "Fill run", id="judge.fill_canaries",
                tooltip="Answer every canary the chosen checkpoint's run is missing (after a cancel)"),
        Binding("ctrl+s", "voice_score", "Voice score", id="judge.voice",
                tooltip="Can a classifier tell the highlighted contestant's writing from yours? (thread worker)"),
        Binding("ctrl+b", "rubric", "Rubric", id="judge.rubric", tooltip="Add, edit or retire criteria"),
        Binding("ctrl+l", "leaderboard", "Leaderboard", id="judge.leaderboard",
                tooltip="Scores with intervals; never during a session"),
        Binding("ctrl+v", "read", "Read side by side", id="judge.read",
                tooltip="Every contestant's full text per canary, copied passages highlighted (after the reveal)"),
        # Rating: rubric mode
        *[Binding(str(n), f"score({n})", "Score" if n == 1 else f"Score {n}", id=f"judge.score.{n}",
                  show=n == 1, key_display="1–9" if n == 1 else None,
                  tooltip="Score the focused criterion") for n in range(1, MAX_SCORE_KEY + 1)],
        Binding("down,tab", "criterion_down", "Next criterion", id="judge.criterion.down", show=False),
        Binding("up,shift+tab", "criterion_up", "Previous criterion", id="judge.criterion.up", show=False),
        # Rating: pairwise mode
        Binding("a,l", "choose('left')", "Left", id="judge.choose.left", tooltip="Left is better (focused row)"),
        Binding("semicolon,r", "choose('right')", "Right", id="judge.choose.right",
                tooltip="Right is better (focused row)"),
        Binding("equals_sign,t", "choose('tie')", "Tie", id="judge.choose.tie", tooltip="Neither is better"),
        # Rating: both modes
        Binding("right,j", "next", "Next", id="judge.next", tooltip="Next item (answers are already saved)"),
        Binding("left,k", "prev", "Previous", id="judge.prev"),
        Binding("s", "skip", "Skip", id="judge.skip", tooltip="Mark skipped and move on"),
        Binding("space", "next_pending", "Next unanswered", id="judge.next_pending", show=False),
        Binding("n", "note", "Note", id="judge.note", tooltip="Write a note on this item"),
        Binding("pagedown", "scroll_output(1)", "Scroll output", id="judge.scroll.down", show=False),
        Binding("pageup", "scroll_output(-1)", "Scroll output up", id="judge.scroll.up", show=False),
        Binding("ctrl+e", "end", "End & reveal", id="judge.end", tooltip="Close the session and reveal who wrote what"),
        Binding("escape", "leave", "Pause", id="judge.leave",
                tooltip="Back to the builder; the session stays open to resume"),
        # The same key in the builder, only while a voice score runs (the first enabled binding wins).
        Binding("escape", "cancel_voice", "Cancel voice score", id="judge.voice.cancel",
                tooltip="Stop after the reply in hand; the replies so far are kept and reused"),
    ]

    class CanaryProgress(Message):
        """From the canary worker: a line for the builder's status."""

        def __init__(self, text: str, done: bool = False, error: bool = False) -> None:
            super().__init__()
            self.text = text
            self.done = done
            self.error = error

    class VoiceProgress(Message):
        """From the voice worker: progress text, or the end (a VoiceScored, an error, a cancel)."""

        def __init__(self, text: str, *, result=None, done: bool = False, error: bool = False) -> None:
            super().__init__()
            self.text = text
            self.result = result  # the VoiceScored at the end, when there is one
            self.done = done
            self.error = error

    # How the voice score is computed: the engine's generator, unless a test swaps in a fake
    # with the same events; and the reply length (the CLI's --reply-tokens).
    voice_scorer = None
    voice_reply_tokens = DEFAULT_REPLY_TOKENS

    def __init__(self) -> None:
        super().__init__()
        self.db = None
        self.voice_worker: Worker | None = None
        self.voice_label: str | None = None  # the contestant being scored, while its worker runs
        self._names: dict[str, str] = {}
        self.blind: judging.BlindSession | None = None
        self.criteria: list[Criterion] = []
        self.flags: list[Flag] = []
        self.focus_row = 0  # rubric: index into criteria; pairwise: 0 = overall, then criteria
        self.view = "builder"
        self._flag_keys: set[str] = set()
        self._status_text = ""
        self._store_signature: tuple = ()
        self.last_revealed_session: int | None = None

    # Layout ------------------------------------------------------------------------------
    def compose_body(self) -> Iterable[Widget]:
        with ContentSwitcher(initial="judge-builder", id="judge-views"):
            yield JudgeBuilder(id="judge-builder")
            with Vertical(id="judge-rating"):
                yield BlindItemView(id="judge-item")
                yield Static(id="judge-end")
            with Vertical(id="judge-reveal"):
                yield Static("Session ended — who wrote what (ctrl+v read side by side, ctrl+l leaderboard, "
                             "escape back)",
                             id="judge-reveal-title")
                yield RevealTable(id="judge-reveal-table")
        yield Static(id="judge-status")

    def on_mount(self) -> None:
        self.db = open_workspace_store(self.app.workspace)
        self._load_rubric()
        self.refresh_builder()
        self.set_interval(STORE_POLL_SECONDS, self.poll_store, name="judge-store-poll")

    def on_unmount(self) -> None:
        if self.db is not None:
            self.db.close()

    def _load_rubric(self) -> None:
        self.criteria = rubric_store.criteria(self.db)
        self.flags = rubric_store.flags(self.db)
        for flag in self.flags:
            if flag.key in self._flag_keys:
                continue
            # Flag letters come from the rubric, so their bindings are made here, not in BINDINGS.
            self._bindings.key_to_bindings.setdefault(flag.key, []).append(Binding(
                flag.key, f"flag('{flag.key}')", f"Flag {flag.name}", show=False, id=f"judge.flag.{flag.name}",
                tooltip=flag.description))
            self._flag_keys.add(flag.key)

    def _signature(self) -> tuple:
        """What the builder shows depends on: the outputs, the sessions and the checkpoint folders."""
        outputs = self.db.execute("select count(*), coalesce(max(id), 0) from generations").fetchone()
        sessions = self.db.execute("select count(*), coalesce(max(id), 0), "
                                   "coalesce(sum(ended_at is null), 0) from sessions").fetchone()
        checkpoints = tuple((c.run_id, c.step) for c in run_checkpoints(self.app.workspace))
        voices = self.db.execute("select count(*), coalesce(max(id), 0) from voice_scores").fetchone()
        return tuple(outputs), tuple(sessions), checkpoints, tuple(voices)

    def poll_store(self) -> None:
        """On a timer: refresh the builder when outputs, sessions or checkpoints changed."""
        if self.view != "builder" or self.db is None or not self.is_mounted:
            return
        if self._signature() != self._store_signature:
            self.refresh_builder()

    def refresh_builder(self) -> None:
        self._store_signature = self._signature()
        canary_ids = [row["canary_id"] for row in self.db.query(
            "select distinct c.canary_id from canaries c join generations g on g.canary_id = c.id order by c.canary_id")]
        names = run_names(self.db, self.app.workspace.runs_dir)
        contestants = judging.contestants(self.db, names)
        self._names = {c.label: c.name or c.label for c in contestants}
        voice = {label: row["auc"] for label, row in latest_voice_scores(self.db).items() if row["auc"] is not None}
        builder = self.query_one(JudgeBuilder)
        builder.fill(contestants, canary_ids, judging.open_sessions(self.db), self._canary_targets(names), voice)
        # The hint stays only while it is true: outputs stored by another process clear it.
        if not canary_ids:
            builder.set_status(NO_OUTPUTS_HINT)
        elif builder.status_text == NO_OUTPUTS_HINT:
            builder.set_status("")

    def _canary_targets(self, names: dict[str, str]) -> list[tuple[str, str]]:
        """'Canaries for' options: workspace models, then every run checkpoint with its canary count."""
        targets = [(f"{name} (model)", CanaryTarget("model", model=name).value())
                   for name in sorted(self.app.workspace.models)]
        checkpoints = run_checkpoints(self.app.workspace)
        have = stored_pairs(self.db, [c.label for c in checkpoints])
        answered = {c.label: sum(1 for label, _ in have if label == c.label) for c in checkpoints}
        for checkpoint in checkpoints:
            name = display_name(checkpoint.label, checkpoint.run_id, checkpoint.step, names)
            targets.append((f"{name} · {answered[checkpoint.label]} canaries",
                            CanaryTarget("checkpoint", run_id=checkpoint.run_id, step=checkpoint.step).value()))
        return targets

    def _switch(self, view: str) -> None:
        self.view = view
        self.query_one(ContentSwitcher).current = f"judge-{view}"
        # The workspace folder name is not a model path, but nothing outside the blind
        # item needs to be on screen while rating, so the label goes away.
        nav = self.query_one(NavBar)
        nav.workspace_label = "" if view == "rating" else f"workspace: {self.app.workspace.root.name}"
        nav.refresh()
        self._hide_toasts(view == "rating")
        if view == "rating":
            self.app.clear_notifications()
            self.set_focus(None)  # keys go to the screen's bindings, not a hidden list
        elif view == "reveal":
            self.query_one(RevealTable).focus()
        self.refresh_bindings()

    def _hide_toasts(self, hide: bool) -> None:
        """Toasts come from every screen (a training run finishing names its run id), so
        none are shown while rating — on this screen or a dialog over it (note, help). The
        class goes on the app because each screen has its own toast rack."""
        self.app.set_class(hide, "-blind-rating")
        if hide:
            self.app.clear_notifications()

    def on_screen_suspend(self) -> None:
        # Left for another mode (F1–F3): toasts there are fine. A dialog pushed over this
        # screen suspends it too, so only a mode switch clears the flag.
        if not any(screen is self for screen in self.app.screen_stack):
            self.app.set_class(False, "-blind-rating")

    def on_screen_resume(self) -> None:
        if self.view == "rating":
            self._hide_toasts(True)

    def _status(self, message: str, error: bool = False) -> None:
        if not message and not self._status_text:
            return  # nothing to clear: spare a re-render on every key
        self._status_text = message
        status = self.query_one("#judge-status", Static)
        status.update(message)
        status.set_class(error, "error")

    # Which keys work where ----------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in BUILDER_ACTIONS:
            return self.view == "builder"
        if action == "rubric":
            return self.view in ("builder", "rating")
        if action == "leaderboard":
            return self.view in ("builder", "reveal")  # identities: never while rating
        if action == "read":
            return self.view == "reveal" and self.last_revealed_session is not None
        if action == "leave":
            return self.view in ("rating", "reveal")
        if action == "cancel_voice":
            return self.view == "builder" and self.voice_label is not None
        if action in RATING_ACTIONS:
            if self.view != "rating" or self.blind is None:
                return False
            mode = self.blind.mode
            if action == "score":
                criterion = self._focused_criterion()
                return mode == "rubric" and criterion is not None and parameters[0] in criterion.scores
            if action == "flag":
                return mode == "rubric" and any(flag.key == parameters[0] for flag in self.flags)
            if action == "choose":
                return mode == "pairwise"
        return True

    # Builder actions ----------------------------------------------------------------------
    def action_start(self) -> None:
        choice = self.query_one(JudgeBuilder).choice()
        if not choice.labels:
            self.query_one(JudgeBuilder).set_status("Tick at least one contestant (two for pairwise).", error=True)
            return
        try:
            session_id = judging.build_session(self.db, labels=choice.labels, canary_ids=choice.canary_ids or None,
                                               mode=choice.mode, rater=choice.rater)
        except judging.SessionError as error:
            self.query_one(JudgeBuilder).set_status(str(error), error=True)
            return
        self.open_session(session_id)

    def action_toggle_mode(self) -> None:
        self.query_one(JudgeBuilder).toggle_mode()

    def action_resume(self) -> None:
        session_id = self.query_one(JudgeBuilder).chosen_session()
        if session_id is None:
            self.query_one(JudgeBuilder).set_status("Highlight an open session in the list first.", error=True)
            return
        self.open_session(session_id)

    def open_session(self, session_id: int) -> None:
        """Rate session `session_id` from where its stored cursor points."""
        self.blind = judging.BlindSession(self.db, session_id)
        self.criteria = rubric_store.criteria(self.db)
        self.focus_row = 0
        self._status("")
        self._switch("rating")
        self.show_item()

    def action_run_canaries(self) -> None:
        builder = self.query_one(JudgeBuilder)
        target = builder.canary_target()
        if target is None:
            builder.set_status("Choose a model or checkpoint in 'Canaries for' first.", error=True)
            return
        if target.kind == "model":
            builder.set_status(f"Running canaries for {target.model}…")
            self.run_canaries(target.model)
        else:
            builder.set_status(f"Running canaries for {self._checkpoint_name(target.run_id, target.step)}…")
            self.run_checkpoint_canaries(target.run_id, target.step)

    def action_fill_canaries(self) -> None:
        builder = self.query_one(JudgeBuilder)
        target = builder.canary_target()
        if target is None or target.kind != "checkpoint":
            builder.set_status("Choose one of a run's checkpoints in 'Canaries for' first; ctrl+f fills that run.",
                               error=True)
            return
        builder.set_status(f"Looking for canaries {self._run_name(target.run_id)} is missing…")
        self.run_checkpoint_canaries(target.run_id, None)

    def _run_name(self, run_id: str) -> str:
        return run_names(self.db, self.app.workspace.runs_dir).get(run_id, run_id)

    def _checkpoint_name(self, run_id: str, step: int) -> str:
        return f"{self._run_name(run_id)} @ step {step}"

    @work(thread=True, exclusive=True, exit_on_error=False, group="judge-canaries")
    def run_canaries(self, model: str) -> None:
        """Answer the canaries in this thread, on this thread's own store connection."""
        from engine.judge.canary import run_canaries

        db = open_workspace_store(self.app.workspace)
        try:
            done = total = 0
            for event in run_canaries(db, self.app.workspace, model):
                if event.kind == "canary_start":
                    total = event.total
                    self.post_message(self.CanaryProgress(f"{event.label}: {event.new} of {total} canaries to answer…"))
                elif event.kind == "canary":
                    done += 1
                    self.post_message(self.CanaryProgress(f"{model}: {done}/{total} ({event.canary_id})"))
                elif event.kind == "canary_done":
                    self.post_message(self.CanaryProgress(
                        f"{event.label}: {event.generated} new, {event.reused} already in the store.", done=True))
        except Exception as error:  # noqa: BLE001 — any failure is shown, the screen stays up
            self.post_message(self.CanaryProgress(f"Canaries for {model} failed: {error}", done=True, error=True))
        finally:
            db.close()

    @work(thread=True, exclusive=True, exit_on_error=False, group="judge-canaries")
    def run_checkpoint_canaries(self, run_id: str, step: int | None) -> None:
        """One checkpoint's missing canaries (`step`), or every checkpoint's of the run (None)."""
        from engine.judge.checkpoint_canaries import answer_checkpoint, fill_missing_canaries, run_checkpoints

        db = open_workspace_store(self.app.workspace)
        run_name = run_names(db, self.app.workspace.runs_dir).get(run_id, run_id)
        answered = warnings = 0
        try:
            if step is None:
                events = fill_missing_canaries(db, self.app.workspace, run_id)
            else:
                chosen = [c for c in run_checkpoints(self.app.workspace, run_id) if c.step == step]
                if not chosen:
                    raise FileNotFoundError(f"runs/{run_id}/checkpoints/checkpoint-{step} is gone or has no weights")
                events = answer_checkpoint(db, self.app.workspace, chosen[0])
            total = 0
            for event in events:
                if event.kind == "checkpoint_canaries_start":
                    total, done_here = event.canaries, 0
                    where = (f" (checkpoint {event.checkpoint_index}/{event.checkpoints})"
                             if event.checkpoints > 1 else "")
                    self.post_message(self.CanaryProgress(
                        f"{run_name} @ step {event.step}{where}: loading, {total} canaries to answer…"))
                elif event.kind == "canary":
                    answered += 1
                    done_here += 1
                    self.post_message(self.CanaryProgress(
                        f"{run_name} @ step {event.step}: canary {done_here}/{total} ({event.canary_id})"))
                elif event.kind in ("log", "checkpoint_canaries_problem"):
                    warnings += 1
                    self.post_message(self.CanaryProgress(f"{run_name}: {event.message}", error=True))
            summary = (f"{run_name}: {answered} canaries answered" if answered
                       else f"{run_name}: nothing missing — every checkpoint has its canaries")
            self.post_message(self.CanaryProgress(summary + (f", {warnings} problems (see above)" if warnings else "")
                                                  + ".", done=True, error=bool(warnings)))
        except Exception as error:  # noqa: BLE001 — any failure is shown, the screen stays up
            self.post_message(self.CanaryProgress(f"Canaries for {run_name} failed: {error}", done=True, error=True))
        finally:
            db.close()

    @on(CanaryProgress)
    def canary_progress(self, message: CanaryProgress) -> None:
        if self.view == "builder":
            self.poll_store()  # each stored output shows in the lists as it lands
        self.query_one(JudgeBuilder).set_status(message.text, error=message.error)

    # The voice score ------------------------------------------------------------------------
    def action_voice_score(self) -> None:
        builder = self.query_one(JudgeBuilder)
        if self.voice_label is not None:
            builder.set_voice(f"Already scoring {self._names.get(self.voice_label, self.voice_label)}: escape "
                              "cancels it, or wait for its result.", error=True)
            return
        label = builder.highlighted_contestant()
        if label is None:
            builder.set_voice("No contestant to score yet: answer the canaries first (ctrl+r), highlight a "
                              "contestant and press ctrl+s (or run `voicebench voice MODEL` in a shell).", error=True)
            return
        self.voice_label = label
        builder.set_voice(f"{self._names.get(label, label)}: voice score starting…")
        self.voice_worker = self.score_voice(label, self._names.get(label, label))
        self.refresh_bindings()  # escape now cancels

    def action_cancel_voice(self) -> None:
        if self.voice_worker is not None and self.voice_label is not None:
            self.voice_worker.cancel()
            self.query_one(JudgeBuilder).set_voice(
                f"{self._names.get(self.voice_label, self.voice_label)}: cancelling after the reply in hand…")

    @work(thread=True, exclusive=True, exit_on_error=False, group="judge-voice")
    def score_voice(self, label: str, name: str) -> None:
        """Run the voice score in this thread, on this thread's own store connection. The
        generator is closed at a cancel (or when the screen goes): stored replies stay."""
        from engine.judge.voice import VoiceError, VoiceReply, VoiceScored, VoiceStage, VoiceStarted, voice_score
        from engine.sample.service import describe
        from engine.sample.sweep import SweepError

        worker = get_current_worker()
        scorer = self.voice_scorer or voice_score
        db = open_workspace_store(self.app.workspace)
        replies = skipped = 0
        events = None
        try:
            events = scorer(db, self.app.workspace, label, reply_tokens=self.voice_reply_tokens)
            for event in events:
                if worker.is_cancelled:
                    events.close()
                    self.post_message(self.VoiceProgress(
                        f"{name}: voice score cancelled after {replies} replies; they are stored and reused "
                        "next time.", done=True))
                    return
                if isinstance(event, VoiceStarted):
                    reused = event.prompts - event.to_generate
                    self.post_message(self.VoiceProgress(
                        f"{name}: {event.to_generate} of {event.prompts} validation prompts to answer"
                        + (f" ({reused} replies stored)" if reused else "")
                        + f"; {event.writer_words:,} words of yours held out…"))
                elif isinstance(event, VoiceReply):
                    replies = event.done
                    skipped += bool(event.skipped)
                    self.post_message(self.VoiceProgress(
                        f"{name}: replies {event.done}/{event.total}"
                        + (f" ({skipped} did not fit the model)" if skipped else "") + " · escape cancels"))
                elif isinstance(event, VoiceStage):
                    self.post_message(self.VoiceProgress(f"{name}: {event.stage} (cross-validating by source, "
                                                         "then the calibration on your own text)…"))
                elif isinstance(event, VoiceScored):
                    self.post_message(self.VoiceProgress("", result=event, done=True,
                                                         error=event.status != "scored"))
                    return
            self.post_message(self.VoiceProgress(f"{name}: the voice score ended without a result.", done=True,
                                                 error=True))
        except (VoiceError, SweepError) as error:  # the engine's own words: they say what to do
            self.post_message(self.VoiceProgress(f"{name}: no voice score — {error}", done=True, error=True))
        except Exception as error:  # noqa: BLE001 — any failure is shown, the screen stays up
            self.post_message(self.VoiceProgress(f"{name}: the voice score failed — {describe(error)}", done=True,
                                                 error=True))
        finally:
            db.close()

    @on(VoiceProgress)
    def voice_progress(self, message: VoiceProgress) -> None:
        builder = self.query_one(JudgeBuilder)
        label = self.voice_label
        if message.result is not None:
            builder.set_voice(result_text(message.result, self._names.get(label, message.result.label)),
                              error=message.error)
        else:
            builder.set_voice(message.text, error=message.error)
        if message.done:
            self.voice_label = self.voice_worker = None
            self.refresh_bindings()
            if self.view == "builder":
                self.refresh_builder()  # the list shows the new score beside the contestant

    def action_rubric(self) -> None:
        from tui.screens.rubric_editor import RubricEditorScreen

        self.app.push_screen(RubricEditorScreen(self.db), lambda _: self._rubric_changed())

    def _rubric_changed(self) -> None:
        self._load_rubric()
        self.focus_row = min(self.focus_row, self._row_count() - 1) if self._row_count() else 0
        if self.view == "rating":
            self.show_item()

    def action_read(self) -> None:
        from tui.screens.reading import ReadingScreen

        self.app.push_screen(ReadingScreen(self.app.workspace, self.last_revealed_session))

    def action_leaderboard(self) -> None:
        from tui.screens.leaderboard import LeaderboardScreen

        self.app.push_screen(LeaderboardScreen(self.app.workspace))

    # Rating ---------------------------------------------------------------------------------
    def _row_count(self) -> int:
        pairwise = self.blind is not None and self.blind.mode == "pairwise"
        return len(self.criteria) + (1 if pairwise else 0)

    def _focused_criterion(self) -> Criterion | None:
        index = self.focus_row - (1 if self.blind is not None and self.blind.mode == "pairwise" else 0)
        return self.criteria[index] if 0 <= index < len(self.criteria) else None

    def show_item(self) -> None:
        item = self.blind.current()
        view = self.query_one(BlindItemView)
        end = self.query_one("#judge-end", Static)
        view.display = item is not None
        end.display = item is None
        if item is None:
            progress = self.blind.progress()
            end.update(f"End of the session: {progress['done']} answered, {progress['skipped']} skipped, "
                       f"{progress['pending']} unanswered.\n\nctrl+e ends it and reveals who wrote what · "
                       "← goes back · space jumps to the next unanswered item · escape pauses (resume later).")
        else:
            view.show(item, self.criteria, self.flags, self.focus_row, self.blind.progress())
        # No refresh_bindings() here: check_action is asked again at every key press anyway,
        # and the key bar need not redraw on every rating key.

    def _act(self, call, *args, then=None) -> bool:
        """Run one BlindSession call, then `then()`, then re-render once; a refused action
        is shown in the status line, never raised."""
        try:
            call(*args)
        except judging.SessionError as error:
            self._status(str(error), error=True)
            return False
        self._status("")
        if then is not None:
            then()
        self.show_item()
        return True

    def action_score(self, score: int) -> None:
        def advance() -> None:
            # On to the next criterion, so a whole item is scored with one key per criterion.
            self.focus_row = min(self.focus_row + 1, self._row_count() - 1)

        self._act(self.blind.rate, self._focused_criterion().name, score, then=advance)

    def action_criterion_down(self) -> None:
        self.focus_row = (self.focus_row + 1) % max(1, self._row_count())
        self.show_item()

    def action_criterion_up(self) -> None:
        self.focus_row = (self.focus_row - 1) % max(1, self._row_count())
        self.show_item()

    def action_flag(self, key: str) -> None:
        flag = next(flag for flag in self.flags if flag.key == key)
        self._act(self.blind.toggle_flag, flag.name)

    def action_choose(self, winner: str) -> None:
        criterion = self._focused_criterion()
        self._act(self.blind.choose, winner, None if criterion is None else criterion.name)

    def _move(self, call) -> None:
        self.focus_row = 0
        self._act(call)

    def action_next(self) -> None:
        self._move(self.blind.next)

    def action_prev(self) -> None:
        self._move(self.blind.prev)

    def action_skip(self) -> None:
        if self.blind.current() is None:
            return
        self._move(self.blind.skip)

    def action_next_pending(self) -> None:
        self.focus_row = 0
        if self.blind.next_pending() is None:
            self._status("Every item has an answer or was skipped; ctrl+e ends the session.")
        self.show_item()

    def action_scroll_output(self, direction: int) -> None:
        for box in self.query(".item-output"):
            box.scroll_page_down(animate=False) if direction > 0 else box.scroll_page_up(animate=False)

    def action_note(self) -> None:
        item = self.blind.current()
        if item is None:
            return

        def save(note: str | None) -> None:
            if note is not None and self.blind is not None:
                self._act(self.blind.set_note, note)

        self.app.push_screen(NoteDialog(item.note), save)

    def action_end(self) -> None:
        """Ask first: ending is final (no more rating in this session)."""
        progress = self.blind.progress()
        self.app.push_screen(ConfirmEndDialog(progress["pending"]),
                             lambda confirmed: self.end_session() if confirmed else None)

    def end_session(self) -> None:
        if self.blind is None:
            return
        criteria_names = [criterion.name for criterion in rubric_store.criteria(self.db, include_retired=True)]
        revealed = self.blind.end()
        self.last_revealed_session = self.blind.session_id
        self.blind = None
        names = {c.label: c.name for c in judging.contestants(self.db, run_names(self.db, self.app.workspace.runs_dir))}
        self.query_one(RevealTable).show(revealed, criteria_names, names)
        self._switch("reveal")

    def action_leave(self) -> None:
        """Back to the builder; an open session stays open (its cursor is stored)."""
        self.blind = None
        self._switch("builder")
        self.refresh_builder()
