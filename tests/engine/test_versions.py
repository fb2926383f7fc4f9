"""Versions: the store migration, the gate's verdicts, promote/force/rollback, `voice`, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.judge import store
from engine.judge.gate import Side, evaluate_gate
from engine.judge.workspace_store import open_workspace_store
from engine.models.portable import ArtefactError
from engine.models.versions import (
    GateRefused,
    current_version,
    history,
    list_versions,
    promote,
    rollback,
)
from engine.workspace import Workspace, WorkspaceError
from tests.engine.versions_data import add_outputs, demo_workspace, make_checkpoint, rate, run_cli, vote

GOOD = [f"The river came up in the night number {i} and left its silt on the step." for i in range(8)]
LOOPS = ["the the the the the the the the the the"] * 8


def test_migration_adds_versions_and_their_history():
    db = store.open_store(memory=True)
    assert {"name", "number", "path", "kind", "base_model", "content_hash", "source_hash", "run_id", "step",
            "pairs_hash", "settings_json", "note", "verdict", "forced", "gate_json"} <= set(db["versions"].columns_dict)
    assert db["version_events"].foreign_keys[0].other_table == "versions"


@pytest.fixture()
def db(tmp_path):
    demo_workspace(tmp_path)
    return open_workspace_store(Workspace.open(tmp_path))


def sides(db, tmp_path, candidate_texts, incumbent_texts):
    candidate = add_outputs(db, tmp_path, "cand", candidate_texts, adapter_hash="h-cand")
    incumbent = add_outputs(db, tmp_path, "inc", incumbent_texts, adapter_hash="h-inc")
    return Side("cand", tuple(candidate)), Side("inc", tuple(incumbent))


def test_gate_is_untested_without_ratings_then_follows_the_votes(db, tmp_path):
    candidate, incumbent = sides(db, tmp_path, GOOD, [text.replace("river", "rain") for text in GOOD])
    assert evaluate_gate(db, candidate, incumbent, []).verdict == "untested"
    vote(db, "cand", "inc", wins=3, losses=1)
    unsure = evaluate_gate(db, candidate, incumbent, [])
    assert unsure.verdict == "not distinguishable"
    assert unsure.rate_more and unsure.rate_more > 0 and f"rate {unsure.rate_more} more" in unsure.message
    assert unsure.pairwise["wins"] == 3 and unsure.pairwise["losses"] == 1


def test_gate_says_better_or_worse_when_the_wilson_interval_clears_one_half(db, tmp_path):
    candidate, incumbent = sides(db, tmp_path, GOOD, [text.replace("river", "rain") for text in GOOD])
    vote(db, "cand", "inc", wins=8)
    better = evaluate_gate(db, candidate, incumbent, [])
    assert better.verdict == "better" and better.pairwise["low"] > 0.5
    worse = evaluate_gate(db, incumbent, candidate, [])  # the same votes seen from the other side
    assert worse.verdict == "worse" and worse.pairwise["high"] < 0.5


def test_gate_reads_rubric_intervals_when_there_are_no_votes(db, tmp_path):
    candidate, incumbent = sides(db, tmp_path, GOOD, [text.replace("river", "rain") for text in GOOD])
    rate(db, {"cand": 5, "inc": 2})
    result = evaluate_gate(db, candidate, incumbent, [])
    assert result.verdict == "better"
    assert result.rubric["candidate"]["mean"] == 5 and result.rubric["incumbent"]["mean"] == 2


def test_flags_and_memorisation_veto_a_candidate_the_ratings_like(db, tmp_path):
    candidate, incumbent = sides(db, tmp_path, LOOPS, GOOD)
    vote(db, "cand", "inc", wins=8)
    degenerate = evaluate_gate(db, candidate, incumbent, [])
    assert degenerate.verdict == "worse" and "flagged" in degenerate.message
    assert degenerate.flags["candidate"]["repetition_cascade"] == 8

    training = ["once upon a time " + " ".join(f"w{i}" for i in range(40)) + " and that was that"]
    copied = [" ".join(f"w{i}" for i in range(30)) + f" then {n}" for n in range(8)]
    candidate2 = Side("copier", tuple(add_outputs(db, tmp_path, "copier", copied, adapter_hash="h-copy")))
    result = evaluate_gate(db, candidate2, incumbent, training)
    assert result.memorisation["candidate"] == 30 and result.verdict == "worse"
    assert "copies 30 words" in result.message


@pytest.fixture(scope="module")
def workspace_with_checkpoints(tmp_path_factory):
    root = demo_workspace(tmp_path_factory.mktemp("ws"))
    first = make_checkpoint(root, "run-a", 10, seed=1)
    second = make_checkpoint(root, "run-b", 20, seed=2)
    return root, first, second


def test_promote_needs_force_when_untested_then_records_it_and_voice_follows(workspace_with_checkpoints, tmp_path):
    import shutil

    root = tmp_path / "ws"
    shutil.copytree(workspace_with_checkpoints[0], root)
    workspace = Workspace.open(root)
    db = open_workspace_store(workspace)
    checkpoint = "runs/run-a/checkpoints/checkpoint-10"
    with pytest.raises(GateRefused, match="untested"):
        promote(workspace, db, checkpoint)
    assert not (root / "models" / "versions").exists() or not any((root / "models" / "versions").iterdir())
    with pytest.raises(WorkspaceError, match="none is promoted yet"):
        workspace.model("voice")

    first = promote(workspace, db, checkpoint, note="first keeper", force=True).version
    assert (first.name, first.kind, first.forced, first.verdict, first.step) == ("v1", "adapter", True, "untested", 10)
    adapter = root / "models" / "versions" / "v1" / "adapter"
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "demo-ar"  # never an absolute path
    assert not (adapter / "optimizer.pt").exists()
    assert first.source_hash == store.content_hash(root / checkpoint) == first.content_hash  # ratings link
    voice = workspace.model("voice")
    assert voice.name == "voice@v1" and Path(voice.adapter) == adapter
    assert Path(voice.path) == root / "data" / "models" / "demo-ar"

    # The candidate v2 wins every vote against v1's outputs: the gate lets it through on its own.
    second = "runs/run-b/checkpoints/checkpoint-20"
    add_outputs(db, root, "v1-out", GOOD, adapter_hash=first.content_hash)
    add_outputs(db, root, "run-b/checkpoint-20", [t.replace("river", "tide") for t in GOOD],
                adapter_hash=store.content_hash(root / second), run_id="run-b")
    vote(db, "run-b/checkpoint-20", "v1-out", wins=8)
    promoted = promote(workspace, db, second, note="won the votes")
    assert promoted.gate.verdict == "better" and not promoted.version.forced
    assert current_version(db).name == "v2" and workspace.model("voice").name == "voice@v2"
    with pytest.raises(ArtefactError, match="already version v2"):
        promote(workspace, db, second, force=True)

    rolled = rollback(workspace, db, "v1", note="v2 felt stiff")
    assert rolled.current and workspace.model("voice").name == "voice@v1"
    assert [(event["version"], event["action"]) for event in history(db)] == [
        ("v1", "promote"), ("v2", "promote"), ("v1", "rollback")]
    assert [version.name for version in list_versions(db) if version.current] == ["v1"]

    # SFT on `voice` would silently train the bare base: it is refused, naming what to do.
    import io

    from engine.train.run import run_training

    out = io.StringIO()
    assert run_training(root, {"model": "voice", "method": "lora", "canaries": "none"}, json_mode=True, stdout=out) == 1
    assert "continue it with --method dpo" in out.getvalue()


def cli(capsys, root: Path, *args: str):
    return run_cli(capsys, "-w", str(root), *args)


def test_cli_refuses_an_incomplete_checkpoint_with_one_line_and_writes_nothing(workspace_with_checkpoints, tmp_path, capsys):
    import shutil

    root = tmp_path / "ws"
    shutil.copytree(workspace_with_checkpoints[0], root)
    weights = root / "runs" / "run-a" / "checkpoints" / "checkpoint-10" / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])  # killed mid-copy
    result = cli(capsys, root, "versions", "promote", "runs/run-a/checkpoints/checkpoint-10", "--force")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "truncated or damaged" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (root / "models" / "versions").exists() or not any((root / "models" / "versions").iterdir())

    refused = cli(capsys, root, "versions", "promote", "runs/run-b/checkpoints/checkpoint-20")
    assert refused.returncode == 2 and "pass --force" in refused.stderr and refused.stderr.count("\n") == 1
    listed = cli(capsys, root, "versions", "list")
    assert listed.returncode == 0 and "no versions yet" in listed.stdout


def test_unknown_versions_are_one_line_errors(tmp_path, capsys):
    demo_workspace(tmp_path)
    for args in (("versions", "show", "v9"), ("versions", "rollback", "v9"), ("export", "v9", "--out", str(tmp_path / "o"))):
        result = cli(capsys, tmp_path, *args)
        assert result.returncode == 2 and result.stderr.count("\n") == 1, (args, result.stderr)
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "o").exists()


def test_voice_is_available_only_once_a_version_is_current(tmp_path):
    from engine.models.versions import voice_available

    demo_workspace(tmp_path)
    workspace = Workspace.open(tmp_path)
    assert not voice_available(workspace)  # no judgments.db yet
    db = open_workspace_store(workspace)
    assert not voice_available(workspace)  # a store, no version
    (tmp_path / "models" / "versions" / "v1" / "adapter").mkdir(parents=True)
    version_id = db["versions"].insert({"name": "v1", "number": 1, "path": "models/versions/v1", "kind": "adapter",
                                        "base_model": "demo-ar", "content_hash": "h", "created_at": store.now()}).last_pk
    db["version_events"].insert({"version_id": version_id, "action": "promote", "at": store.now()})
    assert voice_available(workspace) and workspace.model("voice").name == "voice@v1"
