"""No control characters reach the terminal from the app: a pair holding an OSC title and a
CSI clear-screen sequence is drawn with those sequences shown as escapes (engine.display)."""

from __future__ import annotations

import json

import pytest

from tests.tui.pairs_fixtures import make_workspace, settle
from tui.app import make_app
from tui.widgets.pair_problems import ProblemList
from tui.widgets.pair_table import PairTable
from tui.widgets.safe_fields import SafeInput, SafeTextArea

pytestmark = pytest.mark.anyio
HOSTILE = "river\x1b]0;pwned\x07\x1b[2J\x9b2J"


@pytest.fixture
def anyio_backend():
    return "asyncio"


def rendered(widget) -> str:
    """The text of every line the widget draws, as the terminal would receive it."""
    return "\n".join(widget.render_line(y).text for y in range(widget.size.height))


async def test_pairs_table_and_problems_draw_escapes_visibly(tmp_path):
    workspace = make_workspace(tmp_path / "demo")
    hostile = {"id": f"evil{HOSTILE}", "prompt": f"Write {HOSTILE}", "response": "",
               "source": f"notes/{HOSTILE}", "tier": "note", "split": "train", "tags": [], "notes": HOSTILE}
    with workspace.pairs_path.open("a", encoding="utf-8") as file:
        file.write(json.dumps(hostile) + "\n")
    app = make_app(workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        table = app.screen.query_one(PairTable)
        assert table.move_to(hostile["id"])
        await pilot.pause()
        drawn = rendered(table) + rendered(app.screen.query_one(ProblemList))
        assert "evilriver\\x1b]0;pwned\\x07" in drawn  # shown, as text
        assert not any(char in drawn for char in "\x1b\x07\x9b")


async def test_the_pair_editor_draws_control_pictures_and_keeps_the_text(tmp_path):
    workspace = make_workspace(tmp_path / "demo")
    hostile = {"id": "evil", "prompt": f"Write {HOSTILE}", "response": f"The river {HOSTILE} ran",
               "source": "notes/x", "tier": "note", "split": "train", "tags": [f"a{HOSTILE}"], "notes": f"n {HOSTILE} x"}
    with workspace.pairs_path.open("a", encoding="utf-8") as file:
        file.write(json.dumps(hostile) + "\n")
    app = make_app(workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert app.screen.query_one(PairTable).move_to("evil")
        await pilot.press("enter")
        await pilot.pause()
        response = app.screen.query_one("#pair-response", SafeTextArea)
        notes = app.screen.query_one("#pair-notes", SafeInput)
        tags = app.screen.query_one("#pair-tags", SafeInput)
        # What is edited and saved is untouched; only what is painted changes.
        assert response.text == hostile["response"] and notes.value == hostile["notes"]
        for field in (response, notes, tags):
            drawn = rendered(field)
            assert "\u241b]0;pwned" in drawn, field.id  # ESC drawn as its picture, one cell
            assert not any(char in drawn for char in "\x1b\x07\x9b"), field.id
