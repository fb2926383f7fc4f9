"""The leaderboard: numbers from known ratings and votes, in markdown, csv and json."""

from __future__ import annotations

import csv
import io
import json

import pytest

from engine.judge import report
from engine.judge import store
from engine.judge import session as judging
from engine.judge.rubric import retire_criterion
from tests.engine.judge_data import add_generations, seed_rubric

LABELS = ["base", "run-1/checkpoint-5", "run-1/checkpoint-10"]
QUALITY = {"base": 1, "run-1/checkpoint-5": 3, "run-1/checkpoint-10": 5}  # the "true" voice score


@pytest.fixture
def db(tmp_path):
    database = store.open_store(memory=True)
    seed_rubric(database, tmp_path)
    ids = add_generations(database, LABELS, canary_count=8, text_of=lambda label, i: f"[{label}] text {i}")
    store.record_run(database, run_id="run-1", method="lora")
    for label in LABELS[1:]:
        step = int(label.rsplit("-", 1)[1])
        database.execute("update generations set run_id = 'run-1', checkpoint = ?, checkpoint_step = ? "
                         "where label = ?", [label.split("/")[1], step, label])
    assert ids
    return database


def label_of(text: str) -> str:
    return text[1:text.index("]")]


def rate_everything(db, rater: str, seed: int, coherence: int = 3) -> None:
    blind = judging.BlindSession(db, judging.build_session(db, rater=rater, seed=seed))
    while (item := blind.current()) is not None:
        blind.rate("voice", QUALITY[label_of(item.text)])
        blind.rate("coherence", coherence)
        if QUALITY[label_of(item.text)] == 1:
            blind.toggle_flag("degenerate")
        blind.next()
    blind.end()


def vote_everything(db, seed: int, left_always: bool = False) -> None:
    blind = judging.BlindSession(db, judging.build_session(db, mode="pairwise", rater="wren", seed=seed))
    while (item := blind.current()) is not None:
        if left_always:
            blind.choose("left")
        else:
            left, right = QUALITY[label_of(item.left_text)], QUALITY[label_of(item.right_text)]
            blind.choose("left" if left > right else "right")
        blind.next()
    blind.end()


def test_leaderboard_orders_contestants_and_gives_intervals(db):
    rate_everything(db, "wren", seed=1)
    vote_everything(db, seed=2)
    data = report.build_report(db, bt_samples=50)
    order = [row["label"] for row in data["leaderboard"]]
    assert order == ["run-1/checkpoint-10", "run-1/checkpoint-5", "base"]
    top = data["leaderboard"][0]
    assert top["criteria"]["voice"]["mean"] == pytest.approx(5.0)
    assert top["criteria"]["voice"]["n"] == 8  # repeats are not counted twice
    assert top["pairwise"]["win_rate"] == pytest.approx(1.0) and top["pairwise"]["games"] == 16
    assert top["bt"]["low"] <= top["bt"]["score"] <= top["bt"]["high"]
    assert data["votes"] == 24
    assert data["leaderboard"][-1]["flags"] == {"degenerate": pytest.approx(1.0)}
    assert top["metrics"]["distinct_1"] == pytest.approx(0.7)  # mean of the stored metric


def test_agreement_figures_from_repeats_and_second_rater(db):
    rate_everything(db, "wren", seed=1)
    rate_everything(db, "ash", seed=3)
    vote_everything(db, seed=2)
    data = report.build_report(db, bt_samples=20)
    assert data["test_retest"]["voice"]["kappa"] == pytest.approx(1.0)  # the raters were consistent
    assert data["test_retest"]["voice"]["pairs"] == 4  # 2 repeats in each of two sessions
    assert data["test_retest"]["pairwise_agreement"]["share"] == pytest.approx(1.0)
    assert data["inter_rater"]["voice"]["alpha"] == pytest.approx(1.0)
    assert data["inter_rater"]["voice"]["raters"] == 2
    assert "coherence" not in data["inter_rater"] or data["inter_rater"]["coherence"]["alpha"] is None


def test_position_bias_shows_a_left_preference(db):
    vote_everything(db, seed=4, left_always=True)
    bias = report.build_report(db, bt_samples=10)["position_bias"]
    assert bias["left_share"] == pytest.approx(1.0) and bias["low"] > 0.8


def test_retired_criteria_keep_their_ratings_in_the_report(db):
    rate_everything(db, "wren", seed=1)
    retire_criterion(db, "coherence")
    data = report.build_report(db, bt_samples=10)
    assert {"name": "coherence", "scale": [1, 5], "retired": True} in data["criteria"]
    assert data["leaderboard"][0]["criteria"]["coherence"]["n"] == 8
    assert "coherence (retired)" in report.render(data, "markdown")


def test_canaries_side_by_side_and_runs_across_checkpoints(db):
    data = report.build_report(db, bt_samples=10)
    first = data["canaries"][0]
    assert first["canary_id"] == "canary-0" and set(first["outputs"]) == set(LABELS)
    assert first["outputs"]["base"] == "[base] text 0"
    [run] = data["runs"]
    assert [c["step"] for c in run["checkpoints"]] == [5, 10]
    assert (run["method"], run["status"], run["last_loss"]) == ("lora", "running", None)
    assert run["checkpoints"][1]["outputs"]["canary-3"] == "[run-1/checkpoint-10] text 3"


def test_runs_show_their_last_losses(db):
    store.record_run_metrics(db, "run-1", 5, {"loss": 3.0, "val_loss": 3.5})
    store.record_run_metrics(db, "run-1", 10, {"loss": 2.0})
    store.finish_run(db, "run-1", "done")
    data = report.build_report(db, bt_samples=10)
    [run] = data["runs"]
    assert (run["status"], run["last_loss"], run["last_val_loss"]) == ("done", 2.0, 3.5)
    assert "method lora; status done; last loss 2.000; last val loss 3.500" in report.render(data, "markdown")


def test_formats_render_the_same_numbers(db):
    rate_everything(db, "wren", seed=1)
    vote_everything(db, seed=2)
    data = report.build_report(db, bt_samples=20)
    parsed = json.loads(report.render(data, "json"))
    assert parsed["leaderboard"][0]["label"] == "run-1/checkpoint-10"
    rows = list(csv.DictReader(io.StringIO(report.render(data, "csv"))))
    assert [row["label"] for row in rows] == [row["label"] for row in data["leaderboard"]]
    assert float(rows[0]["voice_mean"]) == pytest.approx(5.0)
    assert float(rows[0]["bt_score"]) == pytest.approx(data["leaderboard"][0]["bt"]["score"])
    assert "metric_distinct_1" in rows[0]
    markdown = report.render(data, "markdown")
    assert "| contestant | voice | coherence | BT score |" in markdown
    assert "| run lora #1 @ step 10 | 5.00" in markdown  # checkpoints read by run name and step
    assert "Position bias" in markdown and "## Canaries side by side" in markdown
    with pytest.raises(ValueError, match="format"):
        report.render(data, "html")


def test_an_empty_store_still_reports(db):
    empty = store.open_store(memory=True)
    data = report.build_report(empty)
    assert data["leaderboard"] == [] and data["votes"] == 0
    assert "No repeats or second raters yet" in report.render(data, "markdown")
    assert report.render(data, "csv").startswith("label,")


def test_one_vote_reads_not_enough_never_a_point_interval(db):
    blind = judging.BlindSession(db, judging.build_session(db, mode="pairwise", rater="wren", seed=3))
    blind.choose("left")
    blind.end()
    data = report.build_report(db, bt_samples=20)
    voted = [row for row in data["leaderboard"] if row["headline"]["n"]]
    assert len(voted) == 2 and all(not row["headline"]["enough"] for row in voted)
    assert all(report.headline_text(row["headline"]) == report.NOT_ENOUGH for row in data["leaderboard"])
    assert data["best"] is None
    markdown = report.render(data, "markdown")
    assert report.NOT_ENOUGH in markdown
    bt_cells = [report._interval(row["bt"], row["pairwise"]["games"]) for row in voted]
    assert all("[" not in cell and "(n=1)" in cell for cell in bt_cells)


def test_best_marker_only_when_intervals_separate(db):
    rate_everything(db, "wren", seed=1)
    data = report.build_report(db, mean_samples=200)
    assert all(row["headline"]["kind"] == "rubric" and row["headline"]["enough"] for row in data["leaderboard"])
    assert data["best"] == "run-1/checkpoint-10"  # voice 5 every time vs 3 and 1: no overlap
    best = report.best_checkpoint(db, "run-1", data)
    assert best["step"] == 10 and best["separated"] and best["name"] == "run lora #1 @ step 10"
    assert "| run lora #1 @ step 10 |" in report.render(data, "markdown").split("## Every measure")[0]


def test_best_marker_withheld_while_a_judged_contestant_has_too_few(db):
    rate_everything(db, "wren", seed=1)
    extra = add_generations(db, ["newcomer"], canary_count=1, text_of=lambda label, i: f"[{label}] t")
    blind = judging.BlindSession(db, judging.build_session(db, labels=["newcomer"], rater="wren", seed=4))
    blind.rate("voice", 5)
    blind.end()
    assert extra
    data = report.build_report(db, mean_samples=200)
    assert data["best"] is None
    assert report.best_checkpoint(db, "run-1", data)["step"] == 10  # the run's own checkpoints still rank


def test_run_names_come_from_the_run_config_label(db, tmp_path):
    from engine.judge.names import run_names

    folder = tmp_path / "run-1"
    folder.mkdir()
    (folder / "config.toml").write_text('model = "data/models/demo-ar"\nlabel = "short essays"\n')
    assert run_names(db) == {"run-1": "run lora #1"}
    store.record_run(db, run_id="run-1", method="lora", out_dir=folder)
    assert run_names(db) == {"run-1": "short essays"}
    (folder / "config.toml").write_text('model = "data/models/demo-ar"\n')
    assert run_names(db) == {"run-1": "demo-ar lora #1"}
    data = report.build_report(db, mean_samples=50)
    assert {row["name"] for row in data["leaderboard"]} == {"base", "demo-ar lora #1 @ step 5",
                                                             "demo-ar lora #1 @ step 10"}
