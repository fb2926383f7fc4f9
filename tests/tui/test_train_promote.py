"""The runs list's best checkpoint and "promote this checkpoint" (p), driven by keys.

Checkpoints are LoRA adapters on demo-ar with random weights (tests/engine/versions_data.py);
canary outputs and blind votes go into the store through the real session API."""

from __future__ import annotations

import json
import shutil

import pytest

from engine.judge import store
from engine.judge.workspace_store import open_workspace_store
from engine.models.versions import current_version, list_versions
from engine.workspace import Workspace
from tests.engine.versions_data import add_outputs, demo_workspace, make_checkpoint, vote
from tests.tui.waiting import workers_done
from tui.app import make_app
from tui.screens.train import TrainScreen
from tui.screens.train_promote import ForceDialog
from tui.screens.versions import VersionsScreen
from tui.widgets.train_runs_list import RunsTable

pytestmark = pytest.mark.anyio

TEXTS = [f"The river at dusk, note {index}: the water keeps its own counsel and the town listens." for index in range(8)]


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = demo_workspace(tmp_path_factory.mktemp("ws"))
    first = make_checkpoint(root, "run-a", 10, seed=1)
    # run-b holds the same adapter (one model load fewer); no test promotes both.
    second = root / "runs" / "run-b" / "checkpoints" / "checkpoint-20"
    shutil.copytree(first, second)
    for name in ("config.toml", "run.json"):
        text = (root / "runs" / "run-a" / name).read_text().replace("run-a", "run-b").replace("= 10", "= 20")
        (root / "runs" / "run-b" / name).write_text(text)
    for run_id, step, stamp in (("run-a", 10, "2026-01-01T09:00:00+00:00"), ("run-b", 20, "2026-01-02T09:00:00+00:00")):
        (root / "runs" / run_id / "status.json").write_text(json.dumps({
            "status": "done", "step": step, "max_steps": step, "run_id": run_id, "label": f"{run_id} lora",
            "last_checkpoint": f"runs/{run_id}/checkpoints/checkpoint-{step}", "resumable": False,
            "world_size": 1, "updated_at": stamp}), encoding="utf-8")
    return root


def copy_of(built, tmp_path):
    root = tmp_path / "ws"
    shutil.copytree(built, root)
    return root


def rate_run_b(root):
    """run-b @ step 20 wins 8 of 8 blind votes against the base model's outputs."""
    db = open_workspace_store(Workspace.open(root))
    checkpoint = root / "runs" / "run-b" / "checkpoints" / "checkpoint-20"
    add_outputs(db, root, "demo-ar", TEXTS, adapter_hash=None)
    add_outputs(db, root, "run-b/checkpoint-20", [text.replace("river", "tide") for text in TEXTS],
                adapter_hash=store.content_hash(checkpoint), run_id="run-b")
    db.execute("update generations set checkpoint = 'checkpoint-20', checkpoint_step = 20 where run_id = 'run-b'")
    vote(db, "run-b/checkpoint-20", "demo-ar", wins=8)
    return db


async def open_runs(pilot) -> tuple[TrainScreen, RunsTable]:
    await pilot.press("f2")
    await workers_done(pilot.app)
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, TrainScreen)
    await pilot.press("f8")
    await workers_done(pilot.app)
    await pilot.pause()
    return screen, screen.query_one(RunsTable)


def notices(app) -> str:
    return "\n".join(notification.message for notification in app._notifications)


def best_cell(table: RunsTable, run_id: str) -> str:
    return str(table.get_cell(run_id, "best"))


async def test_runs_list_reads_best_checkpoints_without_creating_the_store(built, tmp_path):
    root = copy_of(built, tmp_path)
    app = make_app(Workspace.open(root))
    async with app.run_test(size=(120, 40)) as pilot:
        _, table = await open_runs(pilot)
        assert [run.run_id for run in table.runs] == ["run-b", "run-a"]
        assert best_cell(table, "run-a") == best_cell(table, "run-b") == "–"
    assert not (root / "judgments.db").exists()  # listing runs never creates the store


async def test_runs_list_shows_the_best_checkpoint_and_p_promotes_it_when_the_gate_says_better(built, tmp_path):
    root = copy_of(built, tmp_path)
    db = rate_run_b(root)
    app = make_app(Workspace.open(root))
    async with app.run_test(size=(120, 40)) as pilot:
        screen, table = await open_runs(pilot)
        best = best_cell(table, "run-b")
        assert best.startswith("@ step 20 ") and "[" in best  # score and its interval
        assert best_cell(table, "run-a") == "–"  # no canaries of run-a in the store
        table.move_cursor(row=0)  # run-b
        await pilot.press("p")
        await workers_done(app)
        await pilot.pause()
        await workers_done(app)
        await pilot.pause()
        assert not isinstance(app.screen, ForceDialog)  # "better" needs no force
        version = current_version(db)
        assert version is not None and (version.name, version.run_id, version.step) == ("v1", "run-b", 20)
        assert version.verdict == "better" and not version.forced
        assert "v1 is now current" in notices(app)
        await pilot.press("v")  # the Versions view, from the runs list
        await workers_done(app)
        await pilot.pause()
        assert isinstance(app.screen, VersionsScreen)
        versions = app.screen.query_one("#versions-table")
        assert versions.get_row_at(0)[:2] == ["*", "v1"] and versions.get_row_at(0)[3] == "better"


async def test_p_asks_before_forcing_an_untested_checkpoint_and_n_writes_nothing(built, tmp_path):
    root = copy_of(built, tmp_path)
    app = make_app(Workspace.open(root))
    async with app.run_test(size=(120, 40)) as pilot:
        screen, table = await open_runs(pilot)
        table.move_cursor(row=1)  # run-a: no ratings, the gate says untested
        await pilot.press("p")
        await workers_done(app)
        await pilot.pause()
        assert isinstance(app.screen, ForceDialog)
        assert "untested" in str(app.screen.query_one("#force-message").render())
        await pilot.press("n")
        await workers_done(app)
        await pilot.pause()
        db = open_workspace_store(Workspace.open(root))
        assert list_versions(db) == [] and not (root / "models" / "versions" / "v1").exists()
        await pilot.press("p")
        await workers_done(app)
        await pilot.pause()
        assert isinstance(app.screen, ForceDialog)
        await pilot.press("y")
        await workers_done(app)
        await pilot.pause()
        version = current_version(db)
        assert (version.name, version.run_id, version.verdict, version.forced) == ("v1", "run-a", "untested", True)
        assert (root / "models" / "versions" / "v1" / "adapter" / "adapter_config.json").exists()
        assert "not promoted (gate: untested)" in notices(app)
        assert "v1 is now current (forced past the gate)" in notices(app)


async def test_p_on_a_run_without_a_complete_checkpoint_says_so(built, tmp_path):
    root = copy_of(built, tmp_path)
    (root / "runs" / "run-a" / "checkpoints" / "checkpoint-10" / "adapter_model.safetensors").write_bytes(b"broken")
    app = make_app(Workspace.open(root))
    async with app.run_test(size=(120, 40)) as pilot:
        screen, table = await open_runs(pilot)
        table.move_cursor(row=1)
        await pilot.press("p")
        await workers_done(app)
        await pilot.pause()
        assert not isinstance(app.screen, ForceDialog)
        assert "no complete checkpoint" in notices(app) and "checkpoint-10" in notices(app)
    assert not (root / "models" / "versions").exists() or not any((root / "models" / "versions").iterdir())


def test_best_cell_never_shows_a_point_interval():
    from tui.widgets.train_runs_list import best_text

    best = {"label": "r", "name": "r/checkpoint-20", "step": 20, "score": 1.2, "low": 0.8, "high": 1.6, "n": 9,
            "kind": "pairwise", "separated": False}
    assert best_text(best, True).plain == "@ step 20 1.20 [0.80, 1.60]"
    assert best_text({**best, "separated": True}, True).plain.endswith("[0.80, 1.60] ★")
    assert best_text(None, True).plain == "not enough ratings yet"  # canaries stored, too few ratings
    assert best_text(None, False).plain == "–"


def test_the_promote_path_never_imports_torch(built, tmp_path):
    import subprocess
    import sys

    root = copy_of(built, tmp_path)
    script = (
        "import sys\n"
        "from engine.workspace import Workspace\n"
        "from engine.train.runs import list_runs\n"
        "from tui.screens.train_promote import checkpoint_to_promote, gate_checkpoint, promote_checkpoint, read_best\n"
        f"workspace = Workspace.open({str(root)!r})\n"
        "runs = {run.run_id: run for run in list_runs(workspace.runs_dir)}\n"
        "folder = checkpoint_to_promote(runs['run-a'], None)\n"
        "print(gate_checkpoint(workspace, folder).verdict, promote_checkpoint(workspace, folder, force=True).version.name)\n"
        "print(read_best(workspace, list(runs)))\n"
        "print('torch' in sys.modules, 'transformers' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "untested v1"
    assert result.stdout.splitlines()[-1] == "False False"
