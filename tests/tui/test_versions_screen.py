"""The Versions view (F12): lists versions with their gate, and `r` makes the highlighted one current."""

from __future__ import annotations

import pytest

from engine.judge import store
from engine.models.versions import current_version
from tests.tui.pairs_fixtures import make_workspace
from tests.tui.waiting import workers_done
from tui.app import make_app
from tui.screens.versions import VersionsScreen

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


def add_version(db, root, number: int, verdict: str, forced: bool) -> None:
    folder = root / "models" / "versions" / f"v{number}" / "adapter"
    folder.mkdir(parents=True)
    version_id = db["versions"].insert({
        "name": f"v{number}", "number": number, "path": f"models/versions/v{number}", "kind": "adapter",
        "base_model": "demo-ar", "content_hash": f"h{number}", "run_id": f"run-{number}",
        "checkpoint": "checkpoint-20", "step": 20, "note": f"note {number}", "verdict": verdict,
        "forced": int(forced), "gate_json": '{"message": "run vs base: %s"}' % verdict, "created_at": store.now(),
    }).last_pk
    db["version_events"].insert({"version_id": version_id, "action": "promote", "note": "", "at": store.now()})


async def test_versions_view_lists_history_and_rolls_back(tmp_path):
    workspace = make_workspace(tmp_path / "demo")
    db = store.open_store(workspace.db_path)
    add_version(db, workspace.root, 1, "better", False)
    add_version(db, workspace.root, 2, "untested", True)
    app = make_app(workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f12")
        await workers_done(app)
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, VersionsScreen)
        table = screen.query_one("#versions-table")
        rows = [table.get_row_at(index) for index in range(table.row_count)]
        assert rows == [["", "v1", "run-1/checkpoint-20", "better", "note 1"],
                        ["*", "v2", "run-2/checkpoint-20", "untested (forced)", "note 2"]]
        table.move_cursor(row=0)
        await pilot.press("r")
        await workers_done(app)
        await pilot.pause()
        assert current_version(db).name == "v1"
        assert table.get_row_at(0)[0] == "*" and table.get_row_at(1)[0] == ""
        assert "v1 is now current." in str(screen.query_one("#versions-title").render())
        assert "rollback — from the Versions view" in str(screen.query_one("#versions-detail").render())
        await pilot.press("escape")
        assert not isinstance(app.screen, VersionsScreen)


def test_the_train_form_offers_dpo_for_causal_models_only():
    from tui.train_defaults import ModelFacts, methods_for

    causal = ModelFacts("demo-ar", None, "causal", "llama", 3_000_000)
    masked = ModelFacts("demo-diffusion", None, "masked", "modernbert", 3_000_000)
    assert "dpo" in methods_for(causal) and "diffusion" not in methods_for(causal)
    assert "dpo" not in methods_for(masked) and "diffusion" in methods_for(masked)
