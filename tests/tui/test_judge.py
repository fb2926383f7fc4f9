"""The Judge screen, driven with Pilot on a tmp workspace whose store is filled through the
engine API (three fake contestants with recognisable names, run ids and paths; no model
runs): a whole blind rubric session that scans every rendered screen for identifying
strings, a pairwise session, ratings surviving an abrupt exit, the rubric editor, and the
leaderboard."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from textual.widgets import Input, OptionList, Select, SelectionList, TextArea

from engine.judge import rubric as rubric_store
from engine.judge import session as judging
from engine.judge import store
from engine.judge.workspace_store import open_workspace_store
from engine.workspace import Workspace
from tests.tui.waiting import workers_done
from tui.app import make_app
from tui.screens.judge import JudgeScreen
from tui.screens.leaderboard import LeaderboardScreen
from tui.screens.rubric_editor import RubricEditorScreen, parse_anchors
from tui.widgets.judge_builder import CanaryTarget, JudgeBuilder
from tui.widgets.judge_reveal import RevealTable

pytestmark = pytest.mark.anyio

# Recognisable identities: any of these on screen during a session is a leak.
CONTESTANTS = (
    # (label, model name, run id, checkpoint)
    ("zebra-base", "zebra-base", None, None),
    ("run-ocelot/checkpoint-40", "zebra-base", "run-ocelot", "checkpoint-40"),
    ("quokka-large", "quokka-large", None, None),
)
CANARIES = (
    ("river-short", "Write a short note about the river in spring."),
    ("bread-short", "Write a short note about bread that did not rise."),
    ("letters-short", "Write a short note about a letter that came late."),
    ("weather-short", "Write a short note about the first frost."),
)


@pytest.fixture
def anyio_backend():
    return "asyncio"


def make_workspace(root: Path, repo_root: Path) -> Workspace:
    """A workspace with the bundled rubric and a store holding canary outputs of three
    contestants. Model paths live under the workspace, as demo models do, so a leak of
    either the path or the workspace label would show up in the scan."""
    (root / "data").mkdir(parents=True)
    shutil.copy(repo_root / "data" / "rubric.toml", root / "data" / "rubric.toml")
    workspace = Workspace.open(root)
    store_outputs(workspace)
    return workspace


def store_outputs(workspace: Workspace) -> None:
    """The three contestants' canary outputs, written through a connection of their own."""
    root = workspace.root
    db = open_workspace_store(workspace)
    with db.atomic():
        for index, (label, model_name, run_id, checkpoint) in enumerate(CONTESTANTS):
            model_path = root / "data" / "models" / model_name
            model_id = store.ensure_model(db, path=str(model_path), name=model_name, family="causal",
                                          hash_=f"hash-{model_name}")
            if run_id:
                store.record_run(db, run_id=run_id, method="lora", status="done")
            for canary_index, (canary_id, prompt) in enumerate(CANARIES):
                row = store.ensure_canary_version(db, canary_id=canary_id, kind="known-topic-short", prompt=prompt,
                                                  max_new_tokens=64)
                store.record_generation(db, {
                    "identity_key": f"{label}/{canary_id}", "model_id": model_id, "canary_id": row,
                    "label": label, "run_id": run_id, "checkpoint": checkpoint,
                    "adapter_path": str(root / "runs" / run_id / checkpoint) if run_id else None,
                    "family": "causal", "settings": {"temperature": 0.7}, "seed": 0, "prompt": prompt,
                    "text": f"Reply {canary_index + 1} in hand {'ABC'[index]}: the river kept its own counsel.",
                    "token_count": 17, "seconds": 3.25,
                    "metrics": {"distinct_1": 0.6 + index / 10, "seq_rep_4": 0.0, "length_words": 9},
                })
    db.close()


@pytest.fixture
def workspace(tmp_path, repo_root) -> Workspace:
    return make_workspace(tmp_path / "workspace", repo_root)


def screen_text(app) -> str:
    """Every character the terminal shows right now (modals and toasts included)."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def assert_no_leak(app, secrets: set[str], step: str) -> None:
    text = screen_text(app)
    leaked = sorted(secret for secret in secrets if secret in text)
    assert not leaked, f"after {step}: {leaked} on screen:\n{text}"


async def open_judge(pilot) -> JudgeScreen:
    await pilot.press("f4")
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, JudgeScreen)
    return screen


def only_session(workspace: Workspace) -> int:
    db = open_workspace_store(workspace)
    try:
        return next(db.query("select max(id) as id from sessions"))["id"]
    finally:
        db.close()


async def test_blind_rubric_session_never_shows_identities_then_reveals(workspace):
    app = make_app(workspace)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:  # toasts are a leak path too
        screen = await open_judge(pilot)
        builder_text = screen_text(app)
        assert "zebra-base" in builder_text  # the picker names contestants: nothing is blind yet
        app.screen.query_one("#builder-rater", Input).value = "wren"
        for canary_id in ("river-short", "bread-short"):  # 6 outputs, enough for one repeat
            app.screen.query_one("#builder-canaries", SelectionList).select(canary_id)
        await pilot.press("ctrl+g")
        await pilot.pause()
        assert screen.view == "rating"
        session_id = only_session(workspace)
        db = open_workspace_store(workspace)
        secrets = judging.identifying_strings(db, session_id)
        assert {"zebra-base", "run-ocelot", "checkpoint-40", "quokka-large"} <= secrets
        assert any("/data/models/" in secret for secret in secrets)
        total = screen.blind.total
        assert total == len(CONTESTANTS) * 2 + 1  # 6 outputs and one unannounced repeat
        repeats = db["session_items"].count_where("session_id = ? and repeat_of_item_id is not null", [session_id])
        assert repeats == 1
        assert "workspace:" not in screen_text(app)
        assert_no_leak(app, secrets, "start")
        criteria = [c.name for c in rubric_store.criteria(db)]

        for position in range(total):
            assert f"Item {position + 1} of {total}" in screen_text(app)
            # One key per criterion: the focus moves on after each score.
            for offset, _ in enumerate(criteria):
                await pilot.press(str(1 + (position + offset) % 5))
                assert_no_leak(app, secrets, f"item {position} score {offset}")
            if position == 0:
                app.notify("run-ocelot finished: checkpoint-40 saved")  # as the Train screen might
                await pilot.pause()
                assert_no_leak(app, secrets, "a toast from another screen")
                await pilot.press("d")  # flag degenerate
                await pilot.press("n")
                await pilot.pause()
                assert_no_leak(app, secrets, "note dialog")
                await pilot.press(*"plain", "enter")
                await pilot.pause()
                assert "plain" in screen_text(app)
                await pilot.press("down", "up", "tab", "question_mark")
                await pilot.pause()
                assert_no_leak(app, secrets, "help")
                await pilot.press("escape")
            await pilot.press("right")
            await pilot.pause()
            assert_no_leak(app, secrets, f"after item {position}")
        assert "End of the session" in screen_text(app)
        await pilot.press("left")
        assert_no_leak(app, secrets, "back one")

        # Everything the keys did is in the store already, before the session ends.
        first = next(db.query("select flags_json, note from ratings r join session_items i on i.id = r.item_id "
                              "where i.session_id = ? and i.position = 0", [session_id]))
        assert first == {"flags_json": '["degenerate"]', "note": "plain"}
        statuses = {row["status"] for row in db.query("select status from session_items where session_id = ?",
                                                      [session_id])}
        assert statuses == {"done"}

        await pilot.press("ctrl+e", "n")  # asked first; "n" keeps the session open
        await pilot.pause()
        assert screen.view == "rating" and not screen.blind.ended
        await pilot.press("ctrl+e")
        await pilot.pause()
        assert_no_leak(app, secrets, "end dialog")
        await pilot.press("y")
        await pilot.pause()
        assert screen.view == "reveal"
        assert not app.has_class("-blind-rating")  # toasts are allowed again
        reveal = app.screen.query_one(RevealTable)
        assert reveal.row_count == total
        text = screen_text(app)
        assert "zebra-base" in text and "quokka-large" in text  # identities only now
        scores = [reveal.get_row_at(row_index) for row_index in range(total)]
        assert scores[0][3] == "1" and scores[0][-1] == "plain"  # item 1: voice 1, the note
        assert next(db.query("select ended_at from sessions where id = ?", [session_id]))["ended_at"]
        db.close()


async def test_leaderboard_is_not_reachable_during_a_session(workspace):
    app = make_app(workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_judge(pilot)
        await pilot.press("ctrl+g")
        await pilot.pause()
        await pilot.press("ctrl+l")
        await pilot.pause()
        assert app.screen is screen  # no leaderboard (it names every contestant)
        await pilot.press("escape")  # pause: back to the builder, session still open
        await pilot.pause()
        assert screen.view == "builder"
        await pilot.press("ctrl+l")
        await workers_done(app)
        await pilot.pause()
        assert isinstance(app.screen, LeaderboardScreen)
        assert "quokka-large" in screen_text(app)


async def test_pairwise_session_records_choices_overall_and_per_criterion(workspace):
    app = make_app(workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_judge(pilot)
        await pilot.press("ctrl+t")  # rubric → pairwise
        canaries = app.screen.query_one("#builder-canaries", SelectionList)
        canaries.select("river-short")  # one canary: 3 pairs of contestants
        await pilot.pause()
        await pilot.press("ctrl+g")
        await pilot.pause()
        assert screen.blind.mode == "pairwise"
        session_id = only_session(workspace)
        db = open_workspace_store(workspace)
        secrets = judging.identifying_strings(db, session_id)
        assert screen.blind.total == 3
        assert_no_leak(app, secrets, "pairwise start")
        assert "Left (a / l)" in screen_text(app) and "Right (; / r)" in screen_text(app)

        await pilot.press("a")  # overall: left
        await pilot.press("down", "t")  # voice: tie
        await pilot.press("down", "semicolon")  # coherence: right
        assert_no_leak(app, secrets, "pairwise choices")
        await pilot.press("j", "r", "j", "equals_sign")
        await pilot.pause()
        assert_no_leak(app, secrets, "pairwise end")

        rows = list(db.query(
            "select i.position, coalesce(cr.name, 'overall') as target, c.winner from comparisons c "
            "join session_items i on i.id = c.item_id left join criteria cr on cr.id = c.criterion_id "
            "where c.session_id = ? order by i.position, c.id", [session_id]))
        assert [(r["position"], r["target"], r["winner"]) for r in rows] == [
            (0, "overall", "left"), (0, "voice", "tie"), (0, "coherence", "right"),
            (1, "overall", "right"), (2, "overall", "tie")]
        # Choosing again replaces the earlier answer.
        await pilot.press("k", "k", "l")
        winners = [r["winner"] for r in db.query(
            "select winner from comparisons c join session_items i on i.id = c.item_id "
            "where c.session_id = ? and i.position = 0 and c.criterion_id is null", [session_id])]
        assert winners == ["left"]
        await pilot.press("ctrl+e", "y")
        await pilot.pause()
        reveal = app.screen.query_one(RevealTable)
        assert [str(cell) for cell in reveal.get_row_at(1)[4:5]] == ["overall: right"]
        db.close()


async def test_ratings_survive_an_abrupt_exit_and_the_session_resumes(workspace):
    app = make_app(workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_judge(pilot)
        await pilot.press("ctrl+g")
        await pilot.pause()
        await pilot.press("4", "3", "j", "5", "j")
        # A second connection sees the scores while the app is still up: each key committed.
        db = open_workspace_store(workspace)
        saved = list(db.query("select count(*) as n from rating_scores"))[0]["n"]
        db.close()
        assert saved == 3
    # The app went away without ending the session (no ctrl+e, no quit hook): reopen.
    app = make_app(workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_judge(pilot)
        sessions = app.screen.query_one("#builder-sessions", OptionList)
        assert sessions.option_count == 1
        assert str(sessions.get_option_at_index(0).prompt).endswith(" 0/13")  # not done: 4 criteria each
        sessions.highlighted = 0
        await pilot.press("ctrl+o")
        await pilot.pause()
        assert screen.view == "rating"
        item = screen.blind.current()
        assert item.position == 2  # the stored cursor
        await pilot.press("k", "k")
        assert screen.blind.current().scores == {"voice": 4, "coherence": 3}
        assert "Item 1 of" in screen_text(app)
        await pilot.press("j")
        assert screen.blind.current().scores == {"voice": 5}


async def test_rubric_editor_adds_edits_and_retires(workspace):
    app = make_app(workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_judge(pilot)
        await pilot.press("ctrl+b")
        await pilot.pause()
        editor = app.screen
        assert isinstance(editor, RubricEditorScreen)
        await pilot.press("ctrl+n")
        await pilot.press(*"warmth")
        editor.query_one("#rubric-description", Input).value = "Warm but unsentimental."
        editor.query_one("#rubric-anchors", TextArea).text = "1: cold\n5: warm"
        await pilot.press("ctrl+s")
        await pilot.pause()
        added = rubric_store.criterion(screen.db, "warmth")
        assert (added.description, added.anchors, added.retired) == ("Warm but unsentimental.", {1: "cold", 5: "warm"},
                                                                      False)
        # A bad anchor line is refused with a message that names the line.
        editor.query_one("#rubric-anchors", TextArea).text = "1: cold\nwarm"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "anchors line 2" in screen_text(app)
        assert rubric_store.criterion(screen.db, "warmth").anchors == {1: "cold", 5: "warm"}
        editor.query_one("#rubric-anchors", TextArea).text = "1: cold\n3: tepid\n5: warm"
        await pilot.press("ctrl+s")
        assert rubric_store.criterion(screen.db, "warmth").anchors == {1: "cold", 3: "tepid", 5: "warm"}
        # Retire "voice", which has a rating: the rating stays, new sessions skip it.
        await pilot.press("escape")
        await pilot.pause()
        session_id = judging.build_session(screen.db, mode="rubric", seed=1, repeat_share=0)
        judging.BlindSession(screen.db, session_id).rate("voice", 4)
        await pilot.press("ctrl+b")
        await pilot.pause()
        table = app.screen.query_one("#rubric-table")
        table.move_cursor(row=table.get_row_index("voice"))
        await pilot.press("ctrl+t")
        await pilot.pause()
        assert rubric_store.criterion(screen.db, "voice").retired
        assert "Retired 'voice'" in screen_text(app)
        assert screen.db["rating_scores"].count == 1
        await pilot.press("escape")
        await pilot.pause()
        assert [c.name for c in screen.criteria] == ["coherence", "originality", "craft", "warmth"]


def test_parse_anchors_names_the_bad_line():
    assert parse_anchors("1: no\n\n 5 : yes ") == {1: "no", 5: "yes"}
    with pytest.raises(rubric_store.RubricError, match="anchors line 2"):
        parse_anchors("1: no\nfive: yes")


async def test_run_canaries_for_a_model_in_a_worker_then_offer_it(tmp_path, repo_root, tiny_llama_dir):
    root = tmp_path / "fresh"
    (root / "data").mkdir(parents=True)
    shutil.copy(repo_root / "data" / "rubric.toml", root / "data" / "rubric.toml")
    (root / "data" / "canaries.toml").write_text(
        '[[canary]]\nid = "river-short"\nkind = "known-topic-short"\nprompt = "Write about the river."\n'
        'max_new_tokens = 4\n', encoding="utf-8")
    (root / "voicebench.toml").write_text(f'[models.tiny-llama]\npath = "{tiny_llama_dir}"\nfamily = "causal"\n'
                                          '[models.missing]\npath = "no/such/folder"\nfamily = "causal"\n',
                                          encoding="utf-8")
    app = make_app(Workspace.open(root))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_judge(pilot)
        assert "No canary outputs yet" in screen_text(app)
        await pilot.press("ctrl+r")  # no model chosen: says what to do, starts nothing
        assert "Choose a model or checkpoint" in screen_text(app)
        screen.query_one("#builder-canary-model", Select).value = CanaryTarget("model", model="missing").value()
        await pilot.press("ctrl+r")  # a failure in the worker is shown; the app stays up
        await workers_done(app)
        await pilot.pause()
        assert "Canaries for missing failed" in screen_text(app)
        screen.query_one("#builder-canary-model", Select).value = CanaryTarget("model", model="tiny-llama").value()
        await pilot.press("ctrl+r")
        await workers_done(app)
        await pilot.pause()
        assert "tiny-llama: 1 new, 0 already in the store." in screen_text(app)
        contestants = screen.query_one("#builder-contestants", SelectionList)
        assert [str(contestants.get_option_at_index(0).prompt)] == ["tiny-llama (1)"]
        assert screen.db["generations"].count == 1  # written by the worker's own connection


async def test_the_no_outputs_hint_goes_when_another_process_stores_outputs(tmp_path, repo_root):
    """`voicebench canary` in a shell while the Judge screen is open: the builder lists the new
    outputs and the "no canary outputs yet" hint stops claiming otherwise; a later message stays."""
    root = tmp_path / "fresh"
    (root / "data").mkdir(parents=True)
    shutil.copy(repo_root / "data" / "rubric.toml", root / "data" / "rubric.toml")
    app = make_app(Workspace.open(root))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_judge(pilot)
        assert "No canary outputs yet" in screen_text(app)
        store_outputs(Workspace.open(root))  # as `voicebench canary` in a shell would
        screen.poll_store()  # what the timer does every STORE_POLL_SECONDS
        await pilot.pause()
        assert "No canary outputs yet" not in screen_text(app)
        contestants = screen.query_one("#builder-contestants", SelectionList)
        assert contestants.option_count == len(CONTESTANTS)
        screen.query_one(JudgeBuilder).set_status("a later message")
        screen.refresh_builder()  # a refresh clears only the hint, never another message
        await pilot.pause()
        assert "a later message" in screen_text(app)


def test_the_rubric_refuses_flag_letters_the_judge_screen_uses_while_rating():
    # `choose` (a/l, r, t) only works in pairwise mode, where flags are off.
    letters = {key for binding in JudgeScreen.BINDINGS for key in binding.key.split(",")
               if len(key) == 1 and key.isalpha() and not binding.action.startswith("choose")}
    assert letters == set(rubric_store.JUDGE_RUBRIC_KEYS)


def make_adapter_checkpoint(root: Path, base: Path, run_id: str, step: int, model: str = "tiny-llama") -> Path:
    """A run folder with one LoRA checkpoint of workspace model `model` at `base` (an untrained
    adapter: the weights do not matter here)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    run = root / "runs" / run_id
    folder = run / "checkpoints" / f"checkpoint-{step}"
    adapted = get_peft_model(AutoModelForCausalLM.from_pretrained(str(base)),
                             LoraConfig(r=2, target_modules=["q_proj"], task_type="CAUSAL_LM"))
    adapted.save_pretrained(str(folder))
    (run / "config.toml").write_text(f'model = "{model}"\nmethod = "lora"\ncanaries = "all"\n'
                                     'canary_max_new_tokens = 4\n', encoding="utf-8")
    return folder


async def test_checkpoints_are_offered_and_a_runs_missing_canaries_fill_from_the_builder(
        tmp_path, repo_root, tiny_llama_dir):
    root = tmp_path / "fresh"
    (root / "data").mkdir(parents=True)
    shutil.copy(repo_root / "data" / "rubric.toml", root / "data" / "rubric.toml")
    (root / "data" / "canaries.toml").write_text("".join(
        f'[[canary]]\nid = "{name}"\nkind = "known-topic-short"\nprompt = "Write about the {name}."\n'
        'max_new_tokens = 8\n\n' for name in ("river", "bread")), encoding="utf-8")
    (root / "voicebench.toml").write_text(f'[models.tiny-llama]\npath = "{tiny_llama_dir}"\nfamily = "causal"\n',
                                          encoding="utf-8")
    app = make_app(Workspace.open(root))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_judge(pilot)
        # A run's checkpoint appears (as a cancelled run leaves it: no canaries stored) while the screen is open.
        make_adapter_checkpoint(root, tiny_llama_dir, "20261130-101010-ab12", 2)
        screen.poll_store()  # what the timer does every STORE_POLL_SECONDS
        await pilot.pause()
        select = screen.query_one("#builder-canary-model", Select)
        prompts = [str(prompt) for prompt, _ in select._options]
        assert "tiny-llama lora #1 @ step 2 · 0 canaries" in prompts
        select.value = CanaryTarget("checkpoint", run_id="20261130-101010-ab12", step=2).value()
        await pilot.press("ctrl+f")
        await workers_done(app)
        await pilot.pause()
        assert "tiny-llama lora #1: 2 canaries answered." in screen_text(app)
        contestants = screen.query_one("#builder-contestants", SelectionList)
        assert [str(contestants.get_option_at_index(0).prompt)] == ["tiny-llama lora #1 @ step 2 (2)"]
        assert list(contestants.selected) == ["20261130-101010-ab12/checkpoint-2"]
        assert "tiny-llama lora #1 @ step 2 · 2 canaries" in [str(prompt) for prompt, _ in select._options]
        await pilot.press("ctrl+f")  # again: nothing missing, nothing loads
        await workers_done(app)
        await pilot.pause()
        assert "nothing missing" in screen_text(app)


async def test_builder_refreshes_as_outputs_arrive(workspace):
    app = make_app(workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_judge(pilot)
        contestants = screen.query_one("#builder-contestants", SelectionList)
        assert contestants.option_count == len(CONTESTANTS)
        contestants.deselect("quokka-large")  # the writer's choice survives a refresh
        db = open_workspace_store(workspace)  # another process (a training run) stores outputs
        model_id = store.ensure_model(db, path=str(workspace.root / "m"), name="late", family="causal", hash_="h-late")
        row = store.ensure_canary_version(db, canary_id="river-short", kind="known-topic-short",
                                          prompt=CANARIES[0][1], max_new_tokens=64)
        store.record_generation(db, {"identity_key": "late/river", "model_id": model_id, "canary_id": row,
                                     "label": "late-arrival", "family": "causal", "settings": {}, "seed": 0,
                                     "prompt": CANARIES[0][1], "text": "Late words.", "token_count": 2,
                                     "seconds": 1.0})
        db.close()
        screen.poll_store()
        await pilot.pause()
        prompts = [str(contestants.get_option_at_index(i).prompt) for i in range(contestants.option_count)]
        assert prompts[-1] == "late-arrival (1)" and "zebra-base (4)" in prompts
        assert "late-arrival" in contestants.selected and "quokka-large" not in contestants.selected


async def test_reading_view_only_after_the_reveal_with_copied_passages_highlighted(workspace):
    from tui.screens.reading import COPIED_STYLE, ReadingScreen

    (workspace.root / "data" / "pairs.jsonl").write_text(
        '{"id": "p1", "prompt": "Write.", "response": "Long ago the river kept its own counsel, they said.", '
        '"split": "train"}\n', encoding="utf-8")
    app = make_app(workspace)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_judge(pilot)
        app.screen.query_one("#builder-canaries", SelectionList).select("river-short")
        await pilot.press("ctrl+g")
        await pilot.pause()
        await pilot.press("ctrl+v")  # while rating: nothing opens
        await pilot.pause()
        assert app.screen is screen and screen.view == "rating"
        await pilot.press("ctrl+e", "y")
        await pilot.pause()
        assert screen.view == "reveal"
        await pilot.press("ctrl+v")
        await workers_done(app)
        await pilot.pause()
        assert isinstance(app.screen, ReadingScreen)
        text = screen_text(app)
        assert "Canary 1 of 1: river-short" in text
        assert "zebra-base" in text and "quokka-large" in text and "run lora #1" in text  # run-ocelot, named
        assert text.count("copied: 6 words") == len(CONTESTANTS)
        bodies = [static.content for static in app.screen.query(".reading-column .reading-text")]
        copied = [body.plain[span.start:span.end] for body in bodies for span in body.spans
                  if str(span.style) == COPIED_STYLE]
        assert copied == ["the river kept its own counsel"] * len(CONTESTANTS)
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is screen


# The voice score, computed in the background -----------------------------------------------------
def fake_score(label: str, auc: float = 0.62):
    """A VoiceScored as the engine makes one (fixed numbers)."""
    from engine.judge.voice import VoiceScored

    return VoiceScored(label=label, status="scored", message="", auc=auc, auc_low=0.41, auc_high=0.8, delta=0.3,
                       delta_own=0.28, copied_words=5, copied_passage="the river kept its", writer_words=2600,
                       model_words=2100, writer_chunks=26, model_chunks=21, same_writer=(0.55, 0.35, 0.75),
                       shuffled=(0.6, 0.44, 0.77), seconds=4.0)


class GatedScorer:
    """voice_score's events (the real types) for three prompts, holding after the second reply
    until the test opens the gate; the score it ends with is stored as the engine stores one."""

    def __init__(self) -> None:
        import threading

        self.reached = threading.Event()  # set when it holds after reply 2
        self.gate = threading.Event()
        self.closed_early = False
        self.calls: list[tuple[str, int]] = []

    def __call__(self, db, workspace, name, *, reply_tokens):
        from engine.judge.voice import VoiceReply, VoiceStage, VoiceStarted

        self.calls.append((name, reply_tokens))
        finished = False
        try:
            yield VoiceStarted(label=name, prompts=3, to_generate=3, writer_words=2600)
            for done in (1, 2, 3):
                yield VoiceReply(label=name, done=done, total=3, reused=False, seconds=0.1)
                if done == 2:
                    self.reached.set()
                    assert self.gate.wait(20), "the test never opened the gate"
            yield VoiceStage(label=name, stage="scoring")
            result = fake_score(name)
            db["voice_scores"].insert({"label": name, "status": "scored", "auc": result.auc,
                                       "auc_low": result.auc_low, "auc_high": result.auc_high,
                                       "copied_words": result.copied_words})
            finished = True
            yield result
        finally:
            self.closed_early = not finished


async def wait_for(event) -> None:
    """Wait for a threading.Event set by a worker, without blocking the app's loop."""
    import asyncio

    assert await asyncio.to_thread(event.wait, 20), "the worker never got there"


def voice_line(app) -> str:
    return str(app.screen.query_one("#builder-voice").render())


async def test_voice_score_runs_in_the_background_with_progress_then_shows_score_and_calibration(workspace):
    scorer = GatedScorer()
    app = make_app(workspace)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_judge(pilot)
        screen.voice_scorer = scorer
        contestants = screen.query_one("#builder-contestants", SelectionList)
        contestants.highlighted = 2  # quokka-large
        contestants.focus()
        await pilot.press("ctrl+s")
        await wait_for(scorer.reached)
        await pilot.pause()
        assert "quokka-large: replies 2/3 · escape cancels" in screen_text(app)
        # The UI is not blocked while it works: keys still act.
        await pilot.press("ctrl+t")
        assert screen.query_one("#builder-mode", Select).value == "pairwise"
        await pilot.press("ctrl+s")  # a second score waits for the first
        assert "Already scoring quokka-large" in voice_line(app)
        await pilot.press("f1")  # leave for another screen while it works; the result waits here
        await pilot.pause()
        scorer.gate.set()
        await workers_done(app)
        await pilot.pause()
        await pilot.press("f4")
        await pilot.pause()
        assert app.screen is screen
        text = voice_line(app)
        assert "quokka-large: voice AUC 0.62 [0.41, 0.80]" in text
        assert "you vs you 0.55 [0.35, 0.75], shuffled 0.60 [0.44, 0.77]" in text
        assert scorer.calls == [("quokka-large", screen.voice_reply_tokens)]
        # The list shows the newest score beside the contestant; ticks are untouched.
        assert str(contestants.get_option_at_index(2).prompt) == "quokka-large (4) · voice 0.62"
        assert str(contestants.get_option_at_index(0).prompt) == "zebra-base (4)"
        assert set(contestants.selected) == {label for label, *_ in CONTESTANTS}
        assert screen.voice_label is None and not scorer.closed_early


async def test_voice_score_is_cancelled_with_escape_and_keeps_the_replies(workspace):
    scorer = GatedScorer()
    app = make_app(workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_judge(pilot)
        screen.voice_scorer = scorer
        await pilot.press("ctrl+s")  # the first contestant is highlighted
        await wait_for(scorer.reached)
        await pilot.pause()
        assert "zebra-base: replies 2/3 · escape cancels" in voice_line(app)
        await pilot.press("escape")
        assert "cancelling after the reply in hand" in voice_line(app)
        scorer.gate.set()
        await workers_done(app)
        await pilot.pause()
        assert "zebra-base: voice score cancelled after 2 replies; they are stored and reused" in voice_line(app)
        assert scorer.closed_early  # the generator was closed, nothing scored
        assert not screen.db["voice_scores"].count
        assert screen.view == "builder" and screen.voice_label is None
        await pilot.press("escape")  # nothing to cancel now: escape does nothing here
        assert screen.view == "builder" and "cancelled after 2 replies" in voice_line(app)


async def test_voice_score_errors_are_messages_not_tracebacks(workspace):
    from engine.judge.voice import VoiceError

    def refusing(db, workspace, name, *, reply_tokens):
        raise VoiceError(f"{name!r} is neither a contestant nor a workspace model.")
        yield  # a generator, as the engine's is

    def crashing(db, workspace, name, *, reply_tokens):
        yield from ()
        raise RuntimeError("the model file is truncated")

    # The real engine on a workspace with too little held-out writing: it says so, with no number.
    (workspace.root / "data" / "pairs.jsonl").write_text(
        '{"id": "v1", "prompt": "Write.", "response": "Only a few words of hers.", "split": "val", '
        '"source": "a.md"}\n', encoding="utf-8")
    app = make_app(workspace)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_judge(pilot)
        await pilot.press("ctrl+s")
        await workers_done(app)
        await pilot.pause()
        text = voice_line(app)
        assert "zebra-base: no voice score — too little held-out writing" in text and "AUC" not in text
        assert screen.query_one("#builder-voice").has_class("error")
        for scorer, expected in ((refusing, "zebra-base: no voice score — 'zebra-base' is neither"),
                                 (crashing, "zebra-base: the voice score failed — RuntimeError: the model file")):
            screen.voice_scorer = scorer
            await pilot.press("ctrl+s")
            await workers_done(app)
            await pilot.pause()
            assert expected in voice_line(app)
            assert "Traceback" not in screen_text(app)
        assert app.is_running and screen.voice_label is None


async def test_voice_key_with_no_contestant_says_what_to_do(tmp_path, repo_root):
    root = tmp_path / "empty"
    (root / "data").mkdir(parents=True)
    shutil.copy(repo_root / "data" / "rubric.toml", root / "data" / "rubric.toml")
    app = make_app(Workspace.open(root))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_judge(pilot)
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "No contestant to score yet" in voice_line(app)
        assert not list(app.workers) and screen.voice_label is None


@pytest.mark.slow
async def test_voice_score_with_the_real_engine_on_the_demo_model(tmp_path, repo_root):
    """The engine's voice_score itself: demo-ar answers the demo's 44 validation prompts with
    8-token replies (a few seconds on CPU), then the classifier and the calibration run."""
    root = tmp_path / "demo"
    shutil.copytree(repo_root / "data", root / "data", ignore=shutil.ignore_patterns("models"))
    (root / "data" / "models").symlink_to(repo_root / "data" / "models")
    workspace = Workspace.open(root)
    db = open_workspace_store(workspace)
    model_id = store.ensure_model(db, path=str(workspace.model("demo-ar").path), name="demo-ar", family="causal",
                                  hash_="hash-demo-ar")
    row = store.ensure_canary_version(db, canary_id=CANARIES[0][0], kind="known-topic-short", prompt=CANARIES[0][1],
                                      max_new_tokens=64)
    store.record_generation(db, {"identity_key": "demo-ar/river", "model_id": model_id, "canary_id": row,
                                 "label": "demo-ar", "family": "causal", "settings": {}, "seed": 0,
                                 "prompt": CANARIES[0][1], "text": "The river.", "token_count": 3, "seconds": 1.0})
    db.close()
    app = make_app(workspace)
    seen: list[str] = []

    def record(message) -> None:
        if isinstance(message, JudgeScreen.VoiceProgress):
            seen.append(message.text)

    async with app.run_test(size=(120, 40), message_hook=record) as pilot:
        screen = await open_judge(pilot)
        screen.voice_reply_tokens = 8
        await pilot.press("ctrl+s")
        await workers_done(app)
        await pilot.pause()
        text = voice_line(app)
        assert "demo-ar: voice AUC" in text and "calibration on your text: you vs you" in text, text
        assert any("demo-ar: replies 1/44" in line for line in seen)
        assert any("demo-ar: scoring" in line for line in seen)
        scores = latest_voice_scores_of(workspace)
        assert set(scores) == {"demo-ar"} and 0.0 <= scores["demo-ar"]["auc"] <= 1.0
        assert f"demo-ar (1) · voice {scores['demo-ar']['auc']:.2f}" in screen_text(app)


def latest_voice_scores_of(workspace: Workspace) -> dict:
    from engine.judge.voice import latest_voice_scores

    db = open_workspace_store(workspace)
    try:
        return latest_voice_scores(db)
    finally:
        db.close()


async def test_leaderboard_shows_voice_scores_beside_the_verdict_and_unscored_as_not_scored(workspace):
    # Two contestants scored, one not: no rank agreement yet, and it says why.
    db = open_workspace_store(workspace)
    for label, auc in (("zebra-base", 0.58), ("quokka-large", 0.73)):
        db["voice_scores"].insert({"label": label, "status": "scored", "auc": auc, "auc_low": auc - 0.1,
                                   "auc_high": auc + 0.1, "copied_words": 3})
    session_id = judging.build_session(db, mode="rubric", rater="wren", seed=2)
    blind = judging.BlindSession(db, session_id)
    for position in range(blind.total):
        blind.goto(position)
        blind.rate("voice", 1 + position % 5)
    blind.end()
    db.close()
    app = make_app(workspace)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_judge(pilot)
        await pilot.press("ctrl+l")
        await workers_done(app)
        await pilot.pause()
        table = app.screen.query_one("#lb-voice")
        rows = {str(table.get_row_at(index)[0]): [str(cell) for cell in table.get_row_at(index)[1:]]
                for index in range(table.row_count)}
        assert rows["zebra-base"][0] == "0.58 [0.48, 0.68]" and rows["quokka-large"][0] == "0.73 [0.63, 0.83]"
        assert rows["run lora #1"][0] == "not scored" and rows["run lora #1"][3] == "–"
        assert all(cells[1] != "–" for cells in rows.values())  # the rubric's voice mean beside each
        def agreement() -> str:
            return app.screen.query_one("#lb-voice-agreement").content.plain

        assert "Voice score vs rubric voice: – (rank agreement needs 3 contestants with both; 2 have)" in agreement()
        # A third score arrives: the agreement is computed (ctrl+r recomputes the board).
        db = open_workspace_store(workspace)
        db["voice_scores"].insert({"label": "run-ocelot/checkpoint-40", "status": "scored", "auc": 0.95,
                                   "auc_low": 0.9, "auc_high": 1.0, "copied_words": 11})
        db.close()
        await pilot.press("ctrl+r")
        await workers_done(app)
        await pilot.pause()
        assert "Voice score vs rubric voice: Spearman" in agreement() and "over 3 contestants" in agreement()


async def test_reading_view_shows_each_contestants_voice_score_beside_the_verdict(workspace):
    from tui.screens.reading import ReadingScreen
    from tests.tui.test_snapshots_judge import VOICE_SCORES, rated_store, store_voice_scores

    rated_store(workspace)
    store_voice_scores(workspace, VOICE_SCORES[:2])  # quokka-large is not scored
    db = open_workspace_store(workspace)
    session_id = judging.build_session(db, mode="rubric", rater="wren", seed=5, canary_ids=["river-short"])
    judging.BlindSession(db, session_id).end()
    db.close()
    app = make_app(workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_judge(pilot)
        app.push_screen(ReadingScreen(app.workspace, session_id))
        await workers_done(app)
        await pilot.pause()
        verdicts = {box.border_title: box.query_one(".reading-verdict").content
                    for box in app.screen.query(".reading-column")}
        assert verdicts["zebra-base"] == "voice AUC 0.58 [0.41, 0.74]\nrubric voice 3.75 · pairwise 0.20"
        assert verdicts["run lora #1"].startswith("voice AUC 0.91 [0.80, 0.98]\nrubric voice 3.25")
        assert verdicts["quokka-large"].startswith("voice AUC not scored\nrubric voice 1.75")
        agreement = app.screen.query_one("#reading-voice").content.plain
        assert "Voice score vs rubric voice: – (rank agreement needs 3 contestants with both; 2 have)" in agreement


def test_rank_agreement_counts_contestants_in_words():
    from tui.widgets.voice_summary import agreement_lines

    section = {"rows": [{"label": "a", "auc": 0.9}],
               "agreement": {"rubric_voice": {"contestants": 1, "spearman": None, "disagreements": []}}}
    assert "needs 3 contestants with both; 1 has)" in agreement_lines(section, {}).plain
