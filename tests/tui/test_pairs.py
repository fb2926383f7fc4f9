"""Pilot tests of the Pairs screen on a copy of a small fixed workspace (never data/)."""

from __future__ import annotations

import pytest
from textual.widgets import Input, TextArea

from engine.curate.pairs import load_pairs
from tests.tui.pairs_fixtures import BAD_LINE, BAD_LINE_NUMBER, RIVER, make_workspace, settle
from tui.app import make_app
from tui.screens import pairs as pairs_screen
from tui.screens.dialogs import SaveConflictDialog
from tui.screens.pairs import PairsScreen
from tui.widgets.pair_editor import PairEditor
from tui.widgets.pair_problems import ProblemList
from tui.widgets.pair_table import PairTable

SIZE = (120, 40)
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def workspace(tmp_path):
    return make_workspace(tmp_path / "demo")


def screen_of(app) -> PairsScreen:
    assert isinstance(app.screen, PairsScreen)
    return app.screen


async def select(app, pilot, pair_id: str) -> None:
    assert app.screen.query_one(PairTable).move_to(pair_id)
    await pilot.pause()


def row_ids(app) -> list[str]:
    return list(app.screen.query_one(PairTable).row_ids)


def cells(app, pair_id: str) -> dict[str, str]:
    names = ["id", "tier", "split", "source", "tokens", "flags"]
    return dict(zip(names, (value for value, _ in screen_of(app)._cells(pair_id)), strict=True))


async def test_table_lists_pairs_with_tokens_and_flags(workspace):
    app = make_app(workspace)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        shown = [cells(app, key)["id"] for key in row_ids(app)]
        assert shown == [pair.id for pair in load_pairs(workspace.pairs_path).pairs]
        # Word-level tokenizer: 8 prompt + 8 response tokens (words and the full stop); it has
        # no chat template and no EOS, so training's plain layout adds nothing around them.
        assert cells(app, "library-note")["tokens"] == str(8 + 8)
        assert "no response" in cells(app, "walking-note")["flags"]
        # The duplicate id is reported on the second pair only, and flagged on its own row.
        assert "dup id" not in cells(app, "letters-note")["flags"]
        assert "dup id" in cells(app, "letters-note\0" + "1")["flags"]
        assert "too long" in cells(app, "river-thesis")["flags"]
        assert "leak" in cells(app, "river-paragraph-01")["flags"]
        assert cells(app, "hands-note")["flags"] == ""
        problems = app.screen.query_one(ProblemList).problems
        assert any(problem.line == BAD_LINE_NUMBER and problem.pair_id is None for problem in problems)


async def test_edit_autosaves_and_reloads_equal(workspace):
    app = make_app(workspace)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen_of(app).autosave_delay = 0
        await select(app, pilot, "walking-note")
        app.screen.query_one("#pair-response", TextArea).focus()
        await pilot.press(*"Walk.")
        app.screen.query_one("#pair-tags", Input).focus()
        await pilot.press(*"a, b")
        await settle(pilot)
        status = str(app.screen.query_one("#pairs-status-right").render())
        assert "saved" in status and "unsaved" not in status

    reloaded = load_pairs(workspace.pairs_path)
    walking = next(pair for pair in reloaded.pairs if pair.id == "walking-note")
    assert walking.response == "Walk."
    assert walking.tags == ["a", "b"]
    assert [bad.raw for bad in reloaded.bad_lines] == [BAD_LINE]
    before = load_pairs(workspace.pairs_path.with_name("pairs.jsonl.bak")).pairs
    assert [pair.id for pair in before] == [pair.id for pair in reloaded.pairs]
    for old, new in zip(before, reloaded.pairs, strict=True):
        if new.id != "walking-note":
            assert new == old


async def test_autosave_waits_for_quiet_then_leaving_the_screen_saves(workspace):
    original = workspace.pairs_path.read_bytes()
    app = make_app(workspace)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen_of(app).autosave_delay = 3600  # the debounce never fires in this test
        await select(app, pilot, "hands-note")
        app.screen.query_one("#pair-notes", Input).focus()
        await pilot.press(*"keep")
        await settle(pilot)
        assert workspace.pairs_path.read_bytes() == original
        assert "unsaved" in str(app.screen.query_one("#pairs-status-right").render())
        await pilot.press("f2")
        await settle(pilot)
        assert app.current_mode == "train"
    hands = next(pair for pair in load_pairs(workspace.pairs_path).pairs if pair.id == "hands-note")
    assert hands.notes == "keep"


async def test_quit_saves_unsaved_edits(workspace):
    app = make_app(workspace)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen_of(app).autosave_delay = 3600
        await select(app, pilot, "bread-note")
        await pilot.press("v")
        await pilot.press("ctrl+q")
        await pilot.pause()
    bread = next(pair for pair in load_pairs(workspace.pairs_path).pairs if pair.id == "bread-note")
    assert bread.split == "val"


async def test_undo_and_redo_of_typing_and_of_commands(workspace):
    app = make_app(workspace)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen_of(app).autosave_delay = 3600
        session = screen_of(app).session
        await select(app, pilot, "bread-note")
        prompt = app.screen.query_one("#pair-prompt", TextArea)
        original = prompt.text
        prompt.focus()
        await pilot.press("end", *" Now.")
        await pilot.pause()
        assert session.get("bread-note").prompt == original + " Now."
        await pilot.press("ctrl+z")  # one step for the whole burst of typing
        await pilot.pause()
        assert session.get("bread-note").prompt == original
        assert prompt.text == original
        await pilot.press("ctrl+y")
        await pilot.pause()
        assert session.get("bread-note").prompt == original + " Now."
        assert prompt.text == original + " Now."

        app.screen.query_one(PairTable).focus()
        await pilot.press("d")
        await pilot.pause()
        assert session.get("bread-note") is None
        await pilot.press("ctrl+z")
        await pilot.pause()
        assert session.get("bread-note").prompt == original + " Now."
        assert app.screen.query_one(PairTable).cursor_id == "bread-note"


async def test_filter_updates_as_you_type_and_escape_clears(workspace):
    app = make_app(workspace)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        everything = row_ids(app)
        await pilot.press("slash")
        assert app.focused is app.screen.query_one("#pairs-filter", Input)
        await pilot.press(*"radi")
        await pilot.pause()
        assert row_ids(app) == ["library-note"]  # the rows follow each key at once
        await settle(pilot)  # the editor follows once typing pauses (a timer, not a key)
        assert app.screen.query_one(PairEditor).pair_id == "library-note"
        await pilot.press(*["backspace"] * 4, *"tier:th")
        await pilot.pause()
        assert row_ids(app) == ["mending-thesis", "river-thesis"]
        await settle(pilot)
        assert app.screen.query_one(PairEditor).pair_id == "mending-thesis"
        await pilot.press("escape")
        await pilot.pause()
        assert row_ids(app) == everything
        assert app.focused is app.screen.query_one(PairTable)
        assert app.screen.query_one("#pairs-filter", Input).value == ""


async def test_leaving_the_filter_early_edits_the_highlighted_pair(workspace, monkeypatch):
    """While the filter is typed the editor lags behind the cursor; a writer who clicks into
    the editor before it catches up must edit the pair the table highlights, not the one
    the editor showed before the filter changed."""
    monkeypatch.setattr(pairs_screen, "FILTER_EDITOR_SECONDS", 3600)  # typing never "pauses" here
    app = make_app(workspace)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen_of(app).autosave_delay = 3600
        session = screen_of(app).session
        mending = session.get("mending-thesis").response
        await pilot.press("slash", *"radi")
        await pilot.pause()
        assert row_ids(app) == ["library-note"]
        assert app.screen.query_one(PairEditor).pair_id == "mending-thesis"  # still deferred
        await pilot.click("#pair-response")
        await pilot.press("X")
        await pilot.pause()
        assert app.screen.query_one(PairEditor).pair_id == "library-note"
        assert "X" in session.get("library-note").response
        assert session.get("mending-thesis").response == mending


async def test_choosing_a_problem_jumps_to_its_pair(workspace):
    app = make_app(workspace)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        # A filter that hides the pair: the jump clears it.
        app.screen.query_one("#pairs-filter", Input).value = "tier:thesis"
        await pilot.pause()
        assert "walking-note" not in row_ids(app)
        problems = app.screen.query_one(ProblemList)
        await pilot.press("p", "enter")  # the first problem: line 1, mending-thesis is too long
        await pilot.pause()
        assert problems.problems[0].line == 1
        assert app.screen.query_one(PairTable).cursor_id == "mending-thesis"
        index = next(i for i, problem in enumerate(problems.problems) if problem.pair_id == "walking-note")
        app.screen.query_one("#pairs-filter", Input).value = "tier:thesis"
        await pilot.pause()
        assert "walking-note" not in row_ids(app)
        await pilot.press("p")
        problems.highlighted = index
        await pilot.press("enter")
        await pilot.pause()
        table = app.screen.query_one(PairTable)
        assert table.cursor_id == "walking-note"
        assert app.focused is table
        assert app.screen.query_one(PairEditor).pair_id == "walking-note"

        # An unreadable line is shown as it is, read-only.
        bad_index = next(i for i, problem in enumerate(problems.problems) if problem.pair_id is None)
        problems.focus()
        problems.highlighted = bad_index
        await pilot.press("enter")
        await pilot.pause()
        prompt = app.screen.query_one("#pair-prompt", TextArea)
        assert prompt.text == BAD_LINE
        assert prompt.read_only
        assert app.screen.query_one(PairEditor).pair_id is None


async def test_new_duplicate_delete_and_move_split(workspace):
    app = make_app(workspace)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen_of(app).autosave_delay = 0
        session = screen_of(app).session
        table = app.screen.query_one(PairTable)
        await select(app, pilot, "weather-note")
        await pilot.press("c")
        await pilot.pause()
        assert table.cursor_id == "weather-note-copy"
        assert row_ids(app).index("weather-note-copy") == row_ids(app).index("weather-note") + 1
        await pilot.press("v")
        await pilot.pause()
        assert session.get("weather-note-copy").split == "val"
        await pilot.press("t")
        await pilot.pause()
        assert session.get("weather-note-copy").split == "train"
        await pilot.press("d")
        await pilot.pause()
        assert "weather-note-copy" not in row_ids(app)
        assert table.cursor_id == "hands-note"

        await pilot.press("n")
        await pilot.pause()
        new_id = table.cursor_id
        assert new_id.startswith("manual-")
        assert app.focused is app.screen.query_one("#pair-prompt", TextArea)
        await pilot.press(*"Ferries.")
        app.screen.query_one("#pair-response", TextArea).focus()
        await pilot.press(*"They run.")
        await settle(pilot)

    saved = {pair.id: pair for pair in load_pairs(workspace.pairs_path).pairs}
    assert "weather-note-copy" not in saved
    assert saved[new_id].prompt == "Ferries."
    assert saved[new_id].response == "They run."
    assert saved[new_id].tier == "manual" and saved[new_id].split == "train"


async def _edit_then_change_on_disk(app, pilot, workspace) -> bytes:
    await settle(pilot)
    screen_of(app).autosave_delay = 3600
    await select(app, pilot, "hands-note")
    app.screen.query_one("#pair-notes", Input).focus()
    await pilot.press(*"mine")
    await pilot.pause()
    theirs = workspace.pairs_path.read_bytes().replace(b"Hands remember", b"Hands recall")
    workspace.pairs_path.write_bytes(theirs)
    await pilot.press("ctrl+s")
    await pilot.pause()
    assert isinstance(app.screen, SaveConflictDialog)
    return theirs


async def test_save_conflict_save_as_keeps_both_versions(workspace):
    app = make_app(workspace)
    async with app.run_test(size=SIZE) as pilot:
        theirs = await _edit_then_change_on_disk(app, pilot, workspace)
        path_input = app.screen.query_one("#conflict-path", Input)
        assert path_input.value == "data/pairs.mine.jsonl"
        await pilot.click("#conflict-save-as")
        await pilot.pause()
        assert isinstance(app.screen, PairsScreen)
        assert app.screen.session.path == workspace.root / "data" / "pairs.mine.jsonl"
    assert workspace.pairs_path.read_bytes() == theirs  # the other program's change is untouched
    mine = {pair.id: pair for pair in load_pairs(workspace.root / "data" / "pairs.mine.jsonl").pairs}
    assert mine["hands-note"].notes == "mine"


async def test_save_conflict_reload_writes_my_version_aside_first(workspace):
    app = make_app(workspace)
    async with app.run_test(size=SIZE) as pilot:
        theirs = await _edit_then_change_on_disk(app, pilot, workspace)
        await pilot.click("#conflict-reload")
        await settle(pilot)
        session = screen_of(app).session
        assert session.get("hands-note").response == "Hands recall what the head forgets."
        assert session.get("hands-note").notes == ""
        assert not session.dirty
    assert workspace.pairs_path.read_bytes() == theirs
    rescued = {pair.id: pair for pair in load_pairs(workspace.root / "data" / "pairs.mine.jsonl").pairs}
    assert rescued["hands-note"].notes == "mine"


async def test_save_conflict_later_keeps_the_edit_in_memory(workspace):
    app = make_app(workspace)
    async with app.run_test(size=SIZE) as pilot:
        theirs = await _edit_then_change_on_disk(app, pilot, workspace)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, PairsScreen)
        assert app.screen.session.get("hands-note").notes == "mine"
        assert "changed on disk" in str(app.screen.query_one("#pairs-status-right").render())
        # Quitting must not silently drop the edit: it asks again instead.
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert isinstance(app.screen, SaveConflictDialog)
        await pilot.click("#conflict-overwrite")
        await pilot.pause()
    saved = {pair.id: pair for pair in load_pairs(workspace.pairs_path).pairs}
    assert saved["hands-note"].notes == "mine"
    assert workspace.pairs_path.with_name("pairs.jsonl.bak").read_bytes() == theirs


async def test_ingest_previews_before_it_changes_anything(workspace):
    from tui.screens.pairs_io import IngestDialog

    original = workspace.pairs_path.read_bytes()
    app = make_app(workspace)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen_of(app).autosave_delay = 0
        await pilot.press("i")
        await pilot.pause()
        assert isinstance(app.screen, IngestDialog)
        assert app.screen.query_one("#ingest-paths", Input).value == "data/sources"
        await pilot.click("#ingest-preview-button")
        await settle(pilot)
        preview = str(app.screen.query_one("#ingest-preview-text").render())
        assert "2 pieces → 2 pairs" in preview
        assert "added 2 new pairs" in preview
        assert "2024-07-01-ferry-note" in preview
        assert workspace.pairs_path.read_bytes() == original  # a preview writes nothing
        await pilot.click("#ingest-apply")
        await settle(pilot)
        assert isinstance(app.screen, PairsScreen)
        assert "2024-07-02-kettle-note" in row_ids(app)
    saved = {pair.id: pair for pair in load_pairs(workspace.pairs_path).pairs}
    assert saved["2024-07-01-ferry-note"].response.startswith("The ferry runs when it runs.")
    assert "hands-note" in saved  # existing pairs kept


async def test_ingest_dialog_reports_a_missing_folder(workspace):
    app = make_app(workspace)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("i")
        await pilot.pause()
        app.screen.query_one("#ingest-paths", Input).value = "data/nowhere"
        await pilot.click("#ingest-preview-button")
        await settle(pilot)
        preview = str(app.screen.query_one("#ingest-preview-text").render())
        assert "no such file or folder" in preview and "nowhere" in preview
        assert app.screen.query_one("#ingest-apply").disabled


async def test_export_writes_the_chosen_format_and_split(workspace):
    import json

    from textual.widgets import Select

    app = make_app(workspace)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("e")
        await pilot.pause()
        app.screen.query_one("#export-format", Select).value = "messages"
        await pilot.pause()
        assert app.screen.query_one("#export-out", Input).value == "data/export/pairs.messages.jsonl"
        app.screen.query_one("#export-split", Select).value = "val"
        await pilot.click("#export-go")
        await pilot.pause()
    lines = (workspace.root / "data" / "export" / "pairs.messages.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    val_ids = [pair.id for pair in load_pairs(workspace.pairs_path).pairs if pair.split == "val"]
    assert len(records) == len(val_ids) == 2
    assert records[0]["messages"][1]["content"] == RIVER.strip()


async def test_two_pairs_sharing_an_id_are_separate_rows(workspace):
    app = make_app(workspace)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen_of(app).autosave_delay = 0
        table = app.screen.query_one(PairTable)
        second = [key for key in row_ids(app) if key.startswith("letters-note")][1]
        await select(app, pilot, second)
        prompt = app.screen.query_one("#pair-prompt", TextArea)
        assert prompt.text == "Write a short note about letters, again."
        assert cells(app, second)["id"] == "letters-note"
        prompt.focus()
        prompt.move_cursor(prompt.document.end)
        await pilot.press("backspace", *" Twice.")
        await settle(pilot)
    first, again = [pair for pair in load_pairs(workspace.pairs_path).pairs if pair.id == "letters-note"]
    assert first.prompt == "Write a short note about letters."
    assert again.prompt == "Write a short note about letters, again Twice."


async def test_without_a_tokenizer_the_screen_still_works_and_says_why(workspace):
    import shutil

    shutil.rmtree(workspace.root / "data" / "models" / "demo-ar")
    app = make_app(workspace)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert cells(app, "hands-note")["tokens"] == "–"
        assert "no tokenizer for demo-ar" in str(app.screen.query_one("#pairs-status-left").render())
        assert "no response" in cells(app, "walking-note")["flags"]  # validation ran anyway
        assert "too long" not in cells(app, "river-thesis")["flags"]


async def test_a_filter_that_matches_nothing_says_so(workspace):
    app = make_app(workspace)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.screen.query_one("#pairs-filter", Input).value = "zebra"
        await pilot.pause()
        table = app.screen.query_one(PairTable)
        assert table.row_ids == []
        assert "No pair matches “zebra”" in table.render_line(2).text
        assert app.screen.query_one(PairEditor).pair_id is None


async def test_an_outside_change_reloads_when_nothing_is_unsaved(workspace):
    app = make_app(workspace)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        text = workspace.pairs_path.read_text(encoding="utf-8")
        workspace.pairs_path.write_text(text.replace("Hands remember", "Hands recall"), encoding="utf-8")
        screen_of(app).check_disk()  # what the 2-second timer does
        await settle(pilot)
        assert screen_of(app).session.get("hands-note").response == "Hands recall what the head forgets."
        assert cells(app, "hands-note")["tokens"] != "…"


async def test_an_unreadable_pairs_file_is_reported_and_keys_do_nothing(workspace):
    workspace.pairs_path.unlink()
    workspace.pairs_path.mkdir()  # a folder where the file should be: reading it fails
    app = make_app(workspace)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.screen.query_one(PairTable)
        assert "cannot read" in table.empty_message
        await pilot.press("n", "d", "ctrl+z", "ctrl+s")
        await pilot.pause()
        assert screen_of(app).session is None
        await pilot.press("ctrl+q")
        await pilot.pause()
    assert workspace.pairs_path.is_dir()


async def test_tab_from_the_response_into_tags_adds_rather_than_replaces(workspace):
    app = make_app(workspace)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen_of(app).autosave_delay = 0
        await select(app, pilot, "weather-note")
        app.screen.query_one("#pair-response", TextArea).focus()
        await pilot.press("tab")  # response → tags, as a writer moves on
        tags = app.screen.query_one("#pair-tags", Input)
        assert app.focused is tags
        await pilot.press(*", town")
        await settle(pilot)
        assert tags.value == "weather, town"
        saved = {pair.id: pair for pair in load_pairs(workspace.pairs_path).pairs}
        assert saved["weather-note"].tags == ["weather", "town"]  # the autosave kept the old tag


async def test_the_focused_problem_shows_its_whole_message(workspace):
    app = make_app(workspace)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        problems = app.screen.query_one(ProblemList)
        longest = max(range(len(problems.problems)), key=lambda i: len(problems.problems[i].message))
        message = problems.problems[longest].message
        assert len(message) > 60  # longer than the panel is wide at 80 columns
        tail = " ".join(message.split()[-3:])
        await pilot.press("p")
        problems.highlighted = longest
        await pilot.pause()
        text = "\n".join(line.text for line in app.screen._compositor.render_strips())
        flat = " ".join(text.replace("│", " ").split())
        assert tail in flat  # the end of the message is on screen, not an ellipsis
        await pilot.press("escape")
        await pilot.pause()
        assert not problems.has_focus
        text = "\n".join(line.text for line in app.screen._compositor.render_strips())
        assert tail not in " ".join(text.replace("│", " ").split())  # back to one line each


async def test_an_unknown_tier_names_the_valid_ones(workspace):
    app = make_app(workspace)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"tier:notes")
        await pilot.pause()
        table = app.screen.query_one(PairTable)
        assert table.row_ids == []
        assert "No tier “notes”: tiers are continuation, thesis, paragraph, note, manual." in table.render_line(2).text
        await pilot.press("backspace")  # tier:note is a tier
        await pilot.pause()
        assert len(table.row_ids) == 7


async def test_ingest_that_builds_no_pairs_is_refused_with_a_reason(workspace):
    """As `voicebench ingest` does: no pairs built means nothing applied and nothing written."""
    original = workspace.pairs_path.read_bytes()
    empty = workspace.root / "data" / "empty-sources"
    empty.mkdir()
    (empty / "scan.png").write_bytes(b"\x89PNG\r\n\x1a\n")  # not a source file
    (empty / "blank.md").write_text("\n\n", encoding="utf-8")
    app = make_app(workspace)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen_of(app).autosave_delay = 0
        await pilot.press("i")
        await pilot.pause()
        app.screen.query_one("#ingest-paths", Input).value = "data/empty-sources"
        await pilot.click("#ingest-preview-button")
        await settle(pilot)
        preview = str(app.screen.query_one("#ingest-preview-text").render())
        assert "No pairs built from" in preview and "Nothing will change" in preview
        assert ".md, .markdown, .txt" in preview
        assert app.screen.query_one("#ingest-apply").disabled
        await pilot.press("ctrl+o")  # the key works where the button is disabled: still refused
        await settle(pilot)
        assert not isinstance(app.screen, PairsScreen)
        assert any("No pairs built" in str(notice.message) for notice in app._notifications)
        await pilot.click("#ingest-mode-replace")  # the preview shown again for the other mode
        await settle(pilot)
        assert "No pairs built from" in str(app.screen.query_one("#ingest-preview-text").render())
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, PairsScreen)
        assert len(row_ids(app)) == len(load_pairs(workspace.pairs_path).pairs)
    assert workspace.pairs_path.read_bytes() == original


def outside_sources(folder):
    """Essays from outside the workspace: one new, one whose copy in data/sources differs."""
    ferry = folder / "notes" / "2024-07-01-ferry.md"
    ferry.parent.mkdir(parents=True)
    ferry.write_text("# The Ferry\n\nThe ferry runs late in winter. Nobody minds; the river is the timetable.\n",
                     encoding="utf-8")
    (folder / "notes" / "2024-07-03-gate.md").write_text(
        "# Gate\n\nThe gate sticks in wet weather and swings free in dry, like a mood.\n", encoding="utf-8")
    return ferry


@pytest.mark.parametrize("answer", ["k", "o"], ids=["keep-existing", "overwrite"])
async def test_ingest_copies_new_sources_and_asks_before_overwriting(workspace, tmp_path, answer):
    from tui.screens.dialogs import SourceClashDialog
    from tui.screens.pairs_io import IngestDialog

    outside = tmp_path / "elsewhere"
    ingested_ferry = outside_sources(outside)
    kept_ferry = workspace.sources_dir / "notes" / "2024-07-01-ferry.md"
    original_ferry = kept_ferry.read_bytes()
    app = make_app(workspace)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("i")
        await pilot.pause()
        app.screen.query_one("#ingest-paths", Input).value = str(outside)
        await pilot.press("ctrl+r")
        await settle(pilot)
        preview = str(app.screen.query_one("#ingest-preview-text").render())
        assert "Apply would copy 1 new source into data/sources/; 1 already there with other text" in preview

        await pilot.press("ctrl+o")
        await pilot.pause()
        assert isinstance(app.screen, SourceClashDialog)
        question = " ".join(str(label.render()) for label in app.screen.query("Label, Static"))
        assert "data/sources/notes/2024-07-01-ferry.md" in question and "overwrite" in question
        await pilot.press("escape")  # cancel: nothing copied, nothing applied, still in the dialog
        await pilot.pause()
        assert isinstance(app.screen, IngestDialog)
        assert not (workspace.sources_dir / "notes" / "2024-07-03-gate.md").exists()
        assert kept_ferry.read_bytes() == original_ferry

        await pilot.press("ctrl+o")
        await pilot.pause()
        assert isinstance(app.screen, SourceClashDialog)
        await pilot.press(answer)
        await settle(pilot)
        assert isinstance(app.screen, PairsScreen)
        assert "2024-07-03-gate-note" in row_ids(app)
    assert (workspace.sources_dir / "notes" / "2024-07-03-gate.md").read_text(encoding="utf-8").startswith("# Gate")
    if answer == "k":
        assert kept_ferry.read_bytes() == original_ferry
    else:
        assert kept_ferry.read_bytes() == ingested_ferry.read_bytes()


async def test_a_stale_preview_never_enables_apply(workspace, tmp_path, monkeypatch):
    """Change the form while a slow preview runs: its late answer is dropped, and Apply stays
    disabled until the preview of the new inputs arrives."""
    import threading

    from engine.curate import ingest as ingest_module
    from tui.screens.pairs_io import IngestDialog

    real_ingest = ingest_module.ingest
    gates: list[threading.Event] = []

    def slow_ingest(*args, **kwargs):
        """The real ingest, holding its result until the test opens this call's gate."""
        gate = threading.Event()
        gates.append(gate)
        result = yield from real_ingest(*args, **kwargs)
        gate.wait(timeout=10)  # opened by the test; the bound only spares a failed run
        return result

    monkeypatch.setattr(ingest_module, "ingest", slow_ingest)
    finished: list[IngestDialog.Finished] = []

    def record(message) -> None:
        if isinstance(message, IngestDialog.Finished):
            finished.append(message)

    app = make_app(workspace)
    async with app.run_test(size=SIZE, message_hook=record) as pilot:
        await settle(pilot)
        await pilot.press("i")
        await pilot.pause()
        dialog = app.screen
        apply_button = dialog.query_one("#ingest-apply")
        await pilot.press("ctrl+r")  # preview of val share 0.15, held at its end
        while len(gates) < 1:
            await pilot.pause()
        dialog.query_one("#ingest-val-share", Input).value = "0.5"  # the writer changes the form
        await pilot.pause()
        gates[0].set()  # the old preview arrives late
        while not finished:
            await pilot.pause()
        await pilot.pause()
        assert apply_button.disabled
        assert dialog.result is None
        assert "The inputs changed; press ctrl+r" in str(dialog.query_one("#ingest-preview-text").render())

        await pilot.press("ctrl+r")  # a fresh preview for val share 0.5, held too
        while len(gates) < 2:
            await pilot.pause()
        await pilot.pause()
        assert apply_button.disabled  # still making it
        gates[1].set()
        while len(finished) < 2:
            await pilot.pause()
        await settle(pilot)
        assert not apply_button.disabled
        assert "2 pieces → 2 pairs" in str(dialog.query_one("#ingest-preview-text").render())
        assert finished[-1].key[1] == 0.5
