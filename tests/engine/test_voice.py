"""The voice score's parts: features, copy detection, Delta, the discriminator and its
calibration on the demo corpus, the too-little-text answer, and the report section."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from engine.judge.discriminator import auc_with_interval
from engine.judge.store import open_store
from engine.judge.stylometry import burrows_delta, chunk_pieces, style_features, words_of
from engine.judge.voice import (MIN_WRITER_WORDS, STATUS_SCORED, STATUS_TOO_LITTLE, VoiceScored, calibrate, held_out,
                                score_replies, voice_score)
from engine.workspace import Workspace

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def demo_heldout():
    return held_out(Workspace.open(REPO))


@pytest.fixture(scope="module")
def demo_calibration(demo_heldout):
    return calibrate(demo_heldout, seed=0)


# Features and Delta -----------------------------------------------------------------------------
def test_features_are_rates_so_doubling_a_text_keeps_them():
    text = "I knew this was wrong. I knew it, in the abstract — true, and nothing to do with me.\n\nThen the stone."
    once, twice = style_features(text), style_features(text + "\n\n" + text)
    for name in ("fw:i", "fw:the", "punct:comma", "punct:em_dash_spaced", "sent:mean"):
        assert once[name] == pytest.approx(twice[name])
    assert once["punct:em_dash_spaced"] > 0 and once["punct:em_dash_closed"] == 0


def test_burrows_delta_is_zero_for_the_same_text_and_larger_for_another_writer(demo_heldout):
    hers = list(demo_heldout.texts)
    readme = (REPO / "README.md").read_text(encoding="utf-8").split("\n\n")
    assert burrows_delta(hers, hers) == pytest.approx(0.0)
    assert burrows_delta(hers[::2], hers[1::2]) < burrows_delta(hers, readme)


def test_chunks_are_whole_sentences_of_about_the_asked_length(demo_heldout):
    chunks = chunk_pieces(demo_heldout.texts, demo_heldout.groups, 100)
    assert sum(chunk.words for chunk in chunks) == sum(len(words_of(t)) for t in demo_heldout.texts)
    assert all(chunk.words >= 50 for chunk in chunks)
    assert {chunk.group for chunk in chunks} == set(demo_heldout.groups)


def test_auc_compares_only_within_a_fold():
    # Fold 1's scores are all higher than fold 0's; within each fold the sides are tied.
    auc, low, high = auc_with_interval([1.0, 5.0], [1.0, 5.0], positive_folds=[0, 1], negative_folds=[0, 1],
                                       samples=200)
    assert auc == pytest.approx(0.5)
    assert auc_with_interval([1.0, 5.0], [1.0, 5.0], samples=200)[0] == pytest.approx(0.5)
    assert auc_with_interval([2.0, 3.0], [0.0, 1.0], samples=200) == (1.0, 1.0, 1.0)


# Calibration on her own text (the demo corpus) --------------------------------------------------
def test_demo_has_enough_held_out_writing_and_no_duplicated_text(demo_heldout):
    assert demo_heldout.words >= MIN_WRITER_WORDS
    assert len(demo_heldout.prompts) == 44  # every validation pair is answered
    assert len(set(demo_heldout.texts)) == len(demo_heldout.texts)


def test_calibration_same_writer_is_indistinguishable_and_shuffled_is_not(demo_calibration):
    calibration = demo_calibration
    same = calibration.same_writer
    assert same.low <= 0.5 <= same.high  # her text against her other text: the interval covers 0.5
    # Shuffling sentences keeps every word habit, so only the `order:` features can give it
    # away. With 25 chunks a side the bootstrap interval is about ±0.16. Seed 0 gives
    # 0.75 [0.59, 0.89]; seeds 0–7 give 0.72–0.80 (mean 0.77), the lower end clear of 0.5 at
    # all eight (lowest 0.54, seed 6), while you-vs-you covers 0.5 at all eight (README).
    shuffled = calibration.shuffled
    assert shuffled.low > 0.55 and shuffled.auc >= 0.7
    assert calibration.delta_own < 0.5


def test_calibration_is_computed_once_per_text_and_seed(demo_heldout, monkeypatch):
    import dataclasses

    from engine.judge import voice

    calls = []
    real = voice.discriminate
    monkeypatch.setattr(voice, "discriminate", lambda *a, **k: calls.append(1) or real(*a, **k))
    voice._calibrate.cache_clear()
    first = calibrate(demo_heldout, seed=3)
    assert len(calls) == 2  # you vs you, and shuffled
    assert calibrate(demo_heldout, seed=3) is first and len(calls) == 2
    calibrate(demo_heldout, seed=4)
    fewer = dataclasses.replace(demo_heldout, texts=demo_heldout.texts[1:], groups=demo_heldout.groups[1:])
    calibrate(fewer, seed=3)  # her held-out text changed: computed again
    assert len(calls) == 6


def test_order_features_see_shuffling_and_nothing_else_does():
    """The same sentences in their order and shuffled: only `order:` features differ."""
    ordered = ("He did not press. He did not hurry. I gave the knife and the stone to Jory. Then Jory ran his "
               "thumb along the stone. “Stop pushing. Hold the angle.” It worked.")
    shuffled = ("He did not hurry. “Stop pushing. Then Jory ran his thumb along the stone. It worked. He did not "
                "press. Hold the angle.” I gave the knife and the stone to Jory.")
    first, second = style_features(ordered), style_features(shuffled)
    changed = {name for name in first if first[name] != pytest.approx(second[name])}
    assert changed and all(name.startswith("order:") for name in changed)
    for name in ("order:same_opener", "order:names_picked_up", "order:neighbour_overlap"):
        assert first[name] > second[name], name
    for name in ("order:persons_kept", "order:speech_kept"):
        assert first[name] > second[name], name
    assert style_features("“Stop pushing.\n\nHold it.”")["order:unclosed_quote_paragraphs"] == 1.0
    assert style_features("“Stop pushing. Hold it.”")["order:unclosed_quote_paragraphs"] == 0.0


def test_sentences_keep_their_closing_quotes():
    from engine.judge.stylometry import sentences_of

    assert sentences_of("“Stop pushing. Hold it.” He nodded. “Feel that?”\nYes.") == [
        "“Stop pushing.", "Hold it.”", "He nodded.", "“Feel that?”", "Yes."]


def test_a_generic_register_is_told_apart_from_her(demo_heldout, demo_calibration):
    """Another writer's register (this project's README, answered for each validation source)."""
    paragraphs = [p for p in (REPO / "README.md").read_text(encoding="utf-8").split("\n\n") if len(p.split()) > 20]
    sources = sorted(set(demo_heldout.groups))
    replies = paragraphs[:60]
    groups = [sources[index % len(sources)] for index in range(len(replies))]
    result = score_replies("readme", demo_heldout, replies, groups, seed=0, calibration=demo_calibration)
    assert result.status == STATUS_SCORED
    assert result.auc > 0.9 and result.auc_low > 0.75
    assert result.delta > result.delta_own
    assert result.same_writer is not None and result.shuffled is not None


def test_recitation_is_reported_beside_the_score(demo_heldout, demo_calibration):
    replies = list(demo_heldout.training_responses[:40])  # a model that recites her training essays
    groups = [demo_heldout.groups[i % len(demo_heldout.groups)] for i in range(len(replies))]
    result = score_replies("reciter", demo_heldout, replies, groups, seed=0, calibration=demo_calibration)
    assert result.copied_words >= 50


# Too little text --------------------------------------------------------------------------------
def _workspace_with_few_val_pairs(tmp_path: Path) -> Workspace:
    shutil.copytree(REPO / "data", tmp_path / "data", ignore=shutil.ignore_patterns("models"))
    (tmp_path / "data" / "models").symlink_to(REPO / "data" / "models")
    lines = (tmp_path / "data" / "pairs.jsonl").read_text(encoding="utf-8").splitlines()
    kept, val_words = [], 0
    for line in lines:
        pair = json.loads(line)
        if pair["split"] == "val":
            if val_words > 600:
                continue
            val_words += len(pair["response"].split())
        kept.append(line)
    (tmp_path / "data" / "pairs.jsonl").write_text("\n".join(kept) + "\n", encoding="utf-8")
    return Workspace.open(tmp_path)


def test_too_little_held_out_text_says_so_instead_of_a_number(tmp_path):
    workspace = _workspace_with_few_val_pairs(tmp_path)
    db = open_store(workspace.db_path)
    events = list(voice_score(db, workspace, "demo-ar"))
    result = events[-1]
    assert isinstance(result, VoiceScored)
    assert result.status == STATUS_TOO_LITTLE and result.auc is None
    assert "too little held-out writing" in result.message and f"{MIN_WRITER_WORDS:,}" in result.message
    assert not db["voice_replies"].count  # nothing was generated
    assert db["voice_scores"].count == 1


def test_cli_too_little_text_prints_the_reason_and_exits_2(tmp_path, capsys):
    from engine.cli import main

    _workspace_with_few_val_pairs(tmp_path)
    code = main(["--workspace", str(tmp_path), "voice", "demo-ar"])
    out = capsys.readouterr().out
    assert code == 2
    assert "no score — too little held-out writing" in out
    assert "AUC" not in out


def test_cli_unknown_contestant_is_one_line_exit_2(tmp_path, capsys):
    from engine.cli import main

    _workspace_with_few_val_pairs(tmp_path)
    code = main(["--workspace", str(tmp_path), "voice", "nobody-like-this"])
    err = capsys.readouterr().err
    assert code == 2 and "nobody-like-this" in err and len(err.strip().splitlines()) == 1


# The report -------------------------------------------------------------------------------------
def test_report_shows_the_voice_score_beside_ratings_with_rank_agreement():
    from engine.judge.report import build_report, render, spearman

    db = open_store(memory=True)
    for label, auc in (("a", 0.95), ("b", 0.7), ("c", 0.55)):
        db["voice_scores"].insert({"label": label, "status": STATUS_SCORED, "auc": auc, "auc_low": auc - 0.1,
                                   "auc_high": min(auc + 0.1, 1.0), "copied_words": 3})
    section = build_report(db)["voice"]
    assert [row["label"] for row in section["rows"]] == ["a", "b", "c"]
    assert section["agreement"]["rubric_voice"]["spearman"] is None  # no ratings yet: shown as missing
    text = render(build_report(db), "markdown")
    assert "Does it sound like her?" in text and "0.95 [0.85, 1.00]" in text
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 3, 4], [1, 2, 4, 3]) == pytest.approx(0.8)
    assert spearman([1, 2], [1, 2]) is None


def test_a_newer_too_little_text_replaces_an_older_score_everywhere():
    from engine.judge.report import build_report
    from engine.judge.voice import latest_voice_scores

    db = open_store(memory=True)
    assert latest_voice_scores(db) == {}
    db["voice_scores"].insert({"label": "a", "status": STATUS_SCORED, "auc": 0.9, "auc_low": 0.8, "auc_high": 1.0})
    db["voice_scores"].insert({"label": "b", "status": STATUS_SCORED, "auc": 0.7, "auc_low": 0.6, "auc_high": 0.8})
    db["voice_scores"].insert({"label": "a", "status": STATUS_TOO_LITTLE, "auc": None, "message": "too little"})
    latest = latest_voice_scores(db)
    assert latest["a"]["status"] == STATUS_TOO_LITTLE and latest["a"]["auc"] is None
    assert latest["b"]["auc"] == 0.7
    rows = {row["label"]: row for row in build_report(db)["voice"]["rows"]}
    assert rows["a"]["status"] == STATUS_TOO_LITTLE and rows["a"]["auc"] is None


def test_migration_adds_voice_and_setting_tables_with_unique_keys():
    import sqlite3

    db = open_store(memory=True)
    assert {"identity_key", "label", "pair_id", "text", "settings_json"} <= set(db["voice_replies"].columns_dict)
    assert {"auc", "auc_low", "auc_high", "delta", "delta_own", "copied_words", "calibration_json"} <= set(
        db["voice_scores"].columns_dict)
    assert db["contestant_settings"].pks == ["label"]
    db["voice_replies"].insert({"identity_key": "k", "label": "a", "prompt": "p", "text": "t"})
    with pytest.raises(sqlite3.IntegrityError):
        db["voice_replies"].insert({"identity_key": "k", "label": "b", "prompt": "p", "text": "t"})


@pytest.mark.slow
def test_voice_score_answers_every_validation_prompt_then_reuses_the_replies(tmp_path, demo_calibration,
                                                                             one_torch_thread):
    from engine.judge.voice import VoiceReply, VoiceStage, VoiceStarted

    shutil.copytree(REPO / "data", tmp_path / "data", ignore=shutil.ignore_patterns("models"))
    (tmp_path / "data" / "models").symlink_to(REPO / "data" / "models")
    workspace = Workspace.open(tmp_path)
    db = open_store(workspace.db_path)
    events = list(voice_score(db, workspace, "demo-ar", reply_tokens=24, calibration=demo_calibration))
    assert isinstance(events[0], VoiceStarted) and events[0].to_generate == 44
    progress = [event.done for event in events if isinstance(event, VoiceReply)]
    assert progress == list(range(1, 45))  # what the Judge screen's progress bar shows
    assert isinstance(events[-2], VoiceStage)
    result = events[-1]
    assert result.status == STATUS_SCORED and 0.0 <= result.auc_low <= result.auc <= result.auc_high <= 1.0
    # The demo base model writes a generic register, the other "near 1" check
    # (measured 0.97 [0.87, 1.00] with these 24-token replies; 0.95 [0.88, 0.99] at 128).
    assert result.auc >= 0.85 and result.auc_low > 0.7
    assert db["voice_replies"].count == 44 and db["voice_scores"].count == 1
    again = list(voice_score(db, workspace, "demo-ar", reply_tokens=24, calibration=demo_calibration))
    assert again[0].to_generate == 0 and all(e.reused for e in again if isinstance(e, VoiceReply))
    assert again[-1].auc == result.auc  # same replies, same seed: the same score


def test_a_contestant_keeps_its_workspace_entry_settings_while_the_entry_points_at_its_weights(tmp_path):
    from engine.judge.voice import resolve_contestant

    shutil.copytree(REPO / "data", tmp_path / "data", ignore=shutil.ignore_patterns("models"))
    (tmp_path / "data" / "models").symlink_to(REPO / "data" / "models")
    (tmp_path / "voicebench.toml").write_text(
        '[models.ar4]\npath = "data/models/demo-ar"\nload_in_4bit = true\ncontext_length = 256\n', encoding="utf-8")
    workspace = Workspace.open(tmp_path)
    db = open_store(workspace.db_path)
    db["contestant_settings"].insert({"label": "ar4 · T=0.9", "model_name": "ar4", "model_path": "data/models/demo-ar",
                                      "settings_json": json.dumps({"temperature": 0.9}), "family": "causal"})
    contestant = resolve_contestant(db, workspace, "ar4 · T=0.9")
    entry = workspace.model(contestant.model)
    assert contestant.model == "ar4" and entry.load_in_4bit and entry.context_length == 256
    # The entry later points at other weights: the label still names the weights that generated.
    (tmp_path / "voicebench.toml").write_text(
        '[models.ar4]\npath = "data/models/demo-diffusion"\nload_in_4bit = true\n', encoding="utf-8")
    moved = resolve_contestant(db, Workspace.open(tmp_path), "ar4 · T=0.9")
    assert moved.model == "data/models/demo-ar"


def test_a_swept_setting_is_refused_when_the_reply_length_would_bend_it(tmp_path):
    from engine.judge.voice import VoiceError

    shutil.copytree(REPO / "data", tmp_path / "data", ignore=shutil.ignore_patterns("models"))
    (tmp_path / "data" / "models").symlink_to(REPO / "data" / "models")
    workspace = Workspace.open(tmp_path)
    db = open_store(workspace.db_path)
    db["contestant_settings"].insert({"label": "demo-diffusion · block=96", "model_name": "demo-diffusion",
                                      "model_path": str(workspace.model("demo-diffusion").path),
                                      "settings_json": json.dumps({"block_length": 96}), "family": "masked"})
    with pytest.raises(VoiceError, match=r"block_length=96 cannot sample 128-token replies"):
        list(voice_score(db, workspace, "demo-diffusion · block=96", reply_tokens=128))
    assert not db["voice_replies"].count
