"""The automatic voice score: can a classifier tell the model's writing from hers?

    for event in voice_score(db, workspace, "demo-ar"):    # or a label: "demo-ar · T=0.8"
        print(event.to_json())                             # progress, then a VoiceScored

For a contestant (a workspace model, a checkpoint label, a version, or a swept sampler
setting), it answers the prompts of the validation pairs (split "val": sources never
trained on) and compares the replies with her own responses to the same prompts:

- **AUC** (engine.judge.discriminator): a regularised linear classifier on stylometric
  features (engine.judge.stylometry), cross-validated by source, on ~100-word chunks of
  each side. 0.5: it cannot tell her text from the model's; 1.0: it always can. With a
  bootstrap 95% interval.
- **Burrows' Delta** on function words, needing no training, beside her own baseline (the
  Delta between two halves of her held-out text).
- **Longest copied passage** from the training responses (engine.judge.memorisation), so a
  model that recites her essays is not mistaken for one that writes like her.
- **Calibration on her own text**, shown with every score: her held-out chunks split in two
  at random within each source (should be ≈ 0.5, the interval covering it) and her text
  against the same text with sentences shuffled across the pieces of each source (order is
  all that changes). Shuffling across sources would put the tested source's sentences into
  the training folds, which measures the leak, not the shuffle.

Fewer than MIN_WRITER_WORDS words of held-out writing gives a "too_little_text" result with
a message instead of a number. Replies are stored in `voice_replies` and reused while the
model bytes, adapter, settings, prompt and seed are unchanged; scores go to `voice_scores`.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import random
import time
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from engine.events import Event
from engine.judge import store
from engine.judge.discriminator import Discrimination, TooFewChunks, discriminate
from engine.judge.memorisation import CopyIndex, longest_passage
from engine.judge.stylometry import Chunk, burrows_delta, chunk_pieces, paragraphs_of, sentences_of, word_count
from engine.workspace import VOICE_MODEL, Workspace, WorkspaceError

MIN_WRITER_WORDS = 2000
CHUNK_WORDS = 100
DEFAULT_REPLY_TOKENS = 128
COPY_MIN_WORDS = 3  # the longest copy is reported from three shared words up; shorter runs are ordinary phrasing
STATUS_SCORED = "scored"
STATUS_TOO_LITTLE = "too_little_text"


class VoiceError(ValueError):
    """A contestant or workspace the voice score cannot use; the message says what to do."""


# Her held-out writing ---------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class HeldOut:
    prompts: tuple[tuple[str, str, str], ...]  # (pair id, prompt, source) of every validation pair
    texts: tuple[str, ...]  # her responses, each kept once (a response inside a longer one is dropped)
    groups: tuple[str, ...]  # each text's source
    training_responses: tuple[str, ...]

    @property
    def words(self) -> int:
        return word_count(self.texts)

    @property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps([self.prompts, self.texts]).encode()).hexdigest()


def held_out(workspace: Workspace) -> HeldOut:
    """The validation pairs' prompts and her responses to them, from data/pairs.jsonl."""
    from engine.curate.pairs import load_pairs

    pairs = load_pairs(workspace.pairs_path).pairs
    validation = [pair for pair in pairs if pair.split == "val" and pair.response.strip()]
    kept: list[Any] = []
    # Thesis, continuation and paragraph pairs of one essay share text: count it once.
    for pair in sorted(validation, key=lambda p: -len(p.response)):
        if not any(pair.response.strip() in other.response for other in kept):
            kept.append(pair)
    return HeldOut(
        prompts=tuple((pair.id, pair.prompt, pair.source or pair.id) for pair in validation),
        texts=tuple(pair.response for pair in kept), groups=tuple(pair.source or pair.id for pair in kept),
        training_responses=tuple(pair.response for pair in pairs if pair.split == "train"))


def too_little_text_message(words: int) -> str:
    return (f"too little held-out writing for a voice score: the validation pairs hold {words:,} words of yours, "
            f"and the score needs about {MIN_WRITER_WORDS:,} to mean anything. Move more sources to the "
            "validation split (`voicebench pairs split`), or write more.")


# Calibration ------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Calibration:
    """What the instrument says about her own text: the floor and a ceiling to read a score by."""

    same_writer: Discrimination  # her text against her other text: should be ≈ 0.5
    shuffled: Discrimination  # her text against itself with sentences shuffled within each source
    delta_own: float  # Burrows' Delta between the two halves of her text


def split_halves(chunks: Sequence[Chunk], seed: int) -> tuple[list[Chunk], list[Chunk]]:
    """Her chunks in two random halves, each source's chunks spread over both."""
    rng = random.Random(seed)
    first: list[Chunk] = []
    second: list[Chunk] = []
    by_group: dict[str, list[Chunk]] = {}
    for chunk in chunks:
        by_group.setdefault(chunk.group, []).append(chunk)
    for group_chunks in by_group.values():
        order = list(group_chunks)
        rng.shuffle(order)
        # Alternate, starting on the smaller half, so single-chunk sources do not pile up on one side.
        start = 0 if len(first) < len(second) else 1 if len(second) < len(first) else rng.randrange(2)
        for index, chunk in enumerate(order):
            (first if (index + start) % 2 == 0 else second).append(chunk)
    return first, second


def shuffle_sentences(texts: Sequence[str], groups: Sequence[str], seed: int) -> list[str]:
    """The same texts with their sentences shuffled across the pieces of each source; each
    piece keeps its paragraphs' sentence counts, so only the order changes."""
    rng = random.Random(seed)
    pools: dict[str, list[str]] = {}
    for text, group in zip(texts, groups):
        pools.setdefault(group, []).extend(s for p in paragraphs_of(text) for s in sentences_of(p))
    for pool in pools.values():
        rng.shuffle(pool)
    positions = {group: iter(pool) for group, pool in pools.items()}
    shuffled = []
    for text, group in zip(texts, groups):
        paragraphs = [" ".join(next(positions[group]) for _ in sentences_of(p)) for p in paragraphs_of(text)]
        shuffled.append("\n\n".join(paragraphs))
    return shuffled


def calibrate(heldout: HeldOut, *, seed: int = 0, chunk_words: int = CHUNK_WORDS) -> Calibration:
    """The calibration of her held-out text, computed once per process for the same text, seed
    and chunk length (a few seconds each time otherwise: the Judge screen scores contestants
    one by one)."""
    return _calibrate(heldout.texts, heldout.groups, seed, chunk_words)


@functools.lru_cache(maxsize=4)
def _calibrate(texts: tuple[str, ...], groups: tuple[str, ...], seed: int, chunk_words: int) -> Calibration:
    chunks = chunk_pieces(texts, groups, chunk_words)
    first, second = split_halves(chunks, seed)
    shuffled = chunk_pieces(shuffle_sentences(texts, groups, seed), groups, chunk_words)
    return Calibration(same_writer=discriminate(first, second, seed=seed),
                       shuffled=discriminate(chunks, shuffled, seed=seed),
                       delta_own=burrows_delta([c.text for c in first], [c.text for c in second]))


# Scoring ----------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class VoiceScored(Event):
    """A voice score, or the reason there is none (`status`, `message`)."""

    kind = "voice_scored"
    label: str
    status: str  # "scored" | "too_little_text"
    message: str
    auc: float | None
    auc_low: float | None
    auc_high: float | None
    delta: float | None  # Burrows' Delta, her text against the model's
    delta_own: float | None  # Burrows' Delta between halves of her own text
    copied_words: int
    copied_passage: str
    writer_words: int
    model_words: int
    writer_chunks: int
    model_chunks: int
    same_writer: tuple[float, float, float] | None  # calibration (auc, low, high)
    shuffled: tuple[float, float, float] | None
    seconds: float


def _triple(result: Discrimination) -> tuple[float, float, float]:
    return (round(result.auc, 4), round(result.low, 4), round(result.high, 4))


def score_replies(label: str, heldout: HeldOut, replies: Sequence[str], reply_groups: Sequence[str], *,
                  seed: int = 0, chunk_words: int = CHUNK_WORDS, calibration: Calibration | None = None) -> VoiceScored:
    """Score replies (one per validation prompt, grouped by the prompt's source) against her text."""
    started = time.perf_counter()
    writer_words, model_words = heldout.words, word_count(replies)
    copied_words, copied_passage = longest_passage(CopyIndex(heldout.training_responses, COPY_MIN_WORDS), replies)
    empty = dict(auc=None, auc_low=None, auc_high=None, delta=None, delta_own=None, same_writer=None, shuffled=None)
    if writer_words < MIN_WRITER_WORDS:
        return VoiceScored(label=label, status=STATUS_TOO_LITTLE, message=too_little_text_message(writer_words),
                           copied_words=copied_words, copied_passage=copied_passage, writer_words=writer_words,
                           model_words=model_words, writer_chunks=0, model_chunks=0,
                           seconds=round(time.perf_counter() - started, 3), **empty)
    writer_chunks = chunk_pieces(heldout.texts, heldout.groups, chunk_words)
    model_chunks = chunk_pieces(replies, reply_groups, chunk_words)
    try:
        result = discriminate(writer_chunks, model_chunks, seed=seed)
    except TooFewChunks:
        return VoiceScored(
            label=label, status=STATUS_TOO_LITTLE,
            message=(f"too little model text for a voice score: {len(replies)} replies hold {model_words:,} words "
                     f"({len(model_chunks)} chunks of ~{chunk_words}); give it more tokens per reply "
                     "(--reply-tokens) or check that it does not stop at once."),
            copied_words=copied_words, copied_passage=copied_passage, writer_words=writer_words,
            model_words=model_words, writer_chunks=len(writer_chunks), model_chunks=len(model_chunks),
            seconds=round(time.perf_counter() - started, 3), **empty)
    calibration = calibration or calibrate(heldout, seed=seed, chunk_words=chunk_words)
    return VoiceScored(
        label=label, status=STATUS_SCORED, message="", auc=result.auc, auc_low=result.low, auc_high=result.high,
        delta=burrows_delta([c.text for c in writer_chunks], [c.text for c in model_chunks]),
        delta_own=calibration.delta_own, copied_words=copied_words, copied_passage=copied_passage,
        writer_words=writer_words, model_words=model_words, writer_chunks=len(writer_chunks),
        model_chunks=len(model_chunks), same_writer=_triple(calibration.same_writer),
        shuffled=_triple(calibration.shuffled), seconds=round(time.perf_counter() - started, 3))


# Contestants ------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class VoiceContestant:
    label: str
    model: str  # workspace model name or folder
    adapter: str | None
    overrides: tuple[tuple[str, Any], ...]  # sampler overrides (engine.sample.sweep variables)


# Stored canary settings that are per canary, not part of how a contestant samples.
_PER_CANARY = ("gen_length", "max_new_tokens", "seed", "sampler", "suppress_eos", "deprioritise_eos")


def resolve_contestant(db: Database, workspace: Workspace, name: str) -> VoiceContestant:
    """A swept setting's label, any stored contestant label, or a workspace model name/folder."""
    row = next(db.query("select * from contestant_settings where label = ?", [name]), None)
    if row:
        return VoiceContestant(label=name, model=_model_to_load(workspace, row["model_name"], row["model_path"]),
                               adapter=row["adapter_path"], overrides=tuple(json.loads(row["settings_json"]).items()))
    generation = next(db.query(
        "select g.adapter_path, g.settings_json, m.path, m.name from generations g join models m on m.id = g.model_id "
        "where g.label = ? order by g.id desc limit 1", [name]), None)
    if generation:
        stored = json.loads(generation["settings_json"] or "{}")
        overrides = {key: value for key, value in stored.items() if key not in _PER_CANARY}
        if stored.get("suppress_eos") or stored.get("deprioritise_eos"):
            overrides["eos"] = "suppress" if stored.get("suppress_eos") else "deprioritise"
        return VoiceContestant(label=name, model=_model_to_load(workspace, generation["name"], generation["path"]),
                               adapter=generation["adapter_path"], overrides=tuple(overrides.items()))
    if name in workspace.models or (workspace.root / name).exists() or Path(name).expanduser().exists():
        return VoiceContestant(label=workspace.model(name).name, model=name, adapter=None, overrides=())
    raise VoiceError(f"{name!r} is neither a contestant in judgments.db (run `voicebench canary` or `voicebench sweep` "
                     f"first) nor a workspace model (known: {', '.join(sorted(workspace.models))}).")


def _model_to_load(workspace: Workspace, name: str | None, path: str | None) -> str:
    """The workspace model `name` while it still points at the stored folder, so its settings
    (4-bit, remote code, context length) come with it; otherwise the stored folder itself (the
    entry has since moved to other weights, and the label belongs to the ones that generated)."""
    from engine.models.loading import ModelNotFoundError, resolve_model_path

    if name and (name in workspace.models or name == VOICE_MODEL):
        if not path:
            return name
        try:
            here = Path(resolve_model_path(workspace.model(name).path)).resolve()
            stored = Path(resolve_model_path(workspace.model(path).path)).resolve()
        except (ModelNotFoundError, WorkspaceError):  # gone from disk, or no voice version any more
            return path
        if here == stored:
            return name
    return path or name or ""


# Events -----------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class VoiceStarted(Event):
    kind = "voice_start"
    label: str
    prompts: int  # validation prompts to answer
    to_generate: int  # of which not yet stored
    writer_words: int


@dataclasses.dataclass(frozen=True)
class VoiceReply(Event):
    kind = "voice_reply"
    label: str
    done: int  # replies ready so far (1-based)
    total: int
    reused: bool
    seconds: float
    skipped: str = ""  # why this prompt got no reply (it does not fit the model), "" when it did


@dataclasses.dataclass(frozen=True)
class VoiceStage(Event):
    kind = "voice_stage"
    label: str
    stage: str  # "scoring" (cross-validating) — the step after the replies


def voice_score(db: Database, workspace: Workspace, name: str, *, seed: int = 0,
                reply_tokens: int = DEFAULT_REPLY_TOKENS, chunk_words: int = CHUNK_WORDS,
                calibration: Calibration | None = None) -> Generator[Event, None, VoiceScored]:
    """Answer the validation prompts as `name` (stored replies reused), score, store, return.

    Yields VoiceStarted, a VoiceReply per prompt, VoiceStage, then the VoiceScored; the Judge
    screen runs this in a worker and shows `done/total`.
    """
    from engine.judge.canary import Canary, _generate, _load, canary_settings, describe_contestant, load_precision
    from engine.sample.sweep import workspace_with

    started = time.perf_counter()
    heldout = held_out(workspace)
    contestant = resolve_contestant(db, workspace, name)
    if heldout.words < MIN_WRITER_WORDS:  # say so before loading or generating anything
        yield VoiceStarted(label=contestant.label, prompts=len(heldout.prompts), to_generate=0,
                           writer_words=heldout.words)
        result = score_replies(contestant.label, heldout, [], [], seed=seed)
        _record(db, result, contestant, heldout)
        yield result
        return result
    who = describe_contestant(db, workspace, contestant.model, contestant.adapter, contestant.label)
    patched = workspace_with(workspace, who.family, dict(contestant.overrides))
    plans = []
    for pair_id, prompt, source in heldout.prompts:
        pseudo = Canary(id="voice-reply", kind="known-topic-short", prompt=prompt, max_new_tokens=reply_tokens)
        settings = canary_settings(patched, who.family, pseudo, seed)
        key = store.generation_identity(model_hash=who.model_hash, adapter_hash=who.adapter_hash, canary_row_id=None,
                                        prompt=prompt, settings=settings, seed=seed)
        existing = next(db.query("select text, seconds from voice_replies where identity_key = ?", [key]), None)
        plans.append((pair_id, prompt, source, settings, key, existing))
    _check_reply_settings(contestant, plans[0][3] if plans else {}, reply_tokens)
    new = sum(1 for plan in plans if plan[5] is None)
    yield VoiceStarted(label=contestant.label, prompts=len(plans), to_generate=new, writer_words=heldout.words)
    from engine.sample.diffusion import SamplerSettingsError

    loaded = _load(workspace.model(contestant.model), who, load_precision(patched)) if new else None
    replies, groups, skipped = [], [], 0
    for index, (pair_id, prompt, source, settings, key, existing) in enumerate(plans, start=1):
        if existing is None:
            try:
                output = _generate(loaded, who.family, prompt, settings, None, key, contestant.label)
            except SamplerSettingsError as error:  # a long continuation prompt that leaves no room to reply
                skipped += 1
                yield VoiceReply(label=contestant.label, done=index, total=len(plans), reused=False, seconds=0.0,
                                 skipped=f"{pair_id}: {error}")
                continue
            db["voice_replies"].insert({
                "identity_key": key, "label": contestant.label, "pair_id": pair_id, "source": source,
                "prompt": prompt, "text": output["text"], "settings_json": json.dumps(settings, sort_keys=True),
                "seed": seed, "model_hash": who.model_hash, "adapter_hash": who.adapter_hash,
                "token_count": output["token_count"], "forward_passes": output["forward_passes"],
                "seconds": output["seconds"], "created_at": store.now()}, ignore=True)
            text, seconds = output["text"], output["seconds"]
        else:
            text, seconds = existing["text"], existing["seconds"] or 0.0
        replies.append(text)
        groups.append(source)
        yield VoiceReply(label=contestant.label, done=index, total=len(plans), reused=existing is not None,
                         seconds=round(seconds, 3))
    yield VoiceStage(label=contestant.label, stage="scoring")
    result = score_replies(contestant.label, heldout, replies, groups, seed=seed, chunk_words=chunk_words,
                           calibration=calibration)
    if skipped:
        note = (f"{skipped} of {len(plans)} validation prompts got no reply: prompt plus {reply_tokens} reply "
                "tokens do not fit the model's context.")
        result = dataclasses.replace(result, message=" ".join(filter(None, (result.message, note))))
    result = dataclasses.replace(result, seconds=round(time.perf_counter() - started, 3))
    _record(db, result, contestant, heldout)
    yield result
    return result


def _check_reply_settings(contestant: VoiceContestant, effective: dict[str, Any], reply_tokens: int) -> None:
    """Refuse a reply length the setting cannot sample as labelled (canary settings would
    quietly use one block or fewer steps, and the score would belong to another setting)."""
    wanted = dict(contestant.overrides)
    for key in ("block_length", "steps"):
        if key in wanted and key in effective and wanted[key] != effective[key]:
            raise VoiceError(
                f"{contestant.label}: {key}={wanted[key]} cannot sample {reply_tokens}-token replies as set "
                f"(it would run as {key}={effective[key]}); choose --reply-tokens as a multiple of the block "
                "length and at least the steps.")


def _record(db: Database, result: VoiceScored, contestant: VoiceContestant, heldout: HeldOut) -> None:
    db["voice_scores"].insert({
        "label": result.label, "status": result.status, "message": result.message, "auc": result.auc,
        "auc_low": result.auc_low, "auc_high": result.auc_high, "delta": result.delta, "delta_own": result.delta_own,
        "copied_words": result.copied_words, "copied_passage": result.copied_passage,
        "writer_words": result.writer_words, "model_words": result.model_words,
        "writer_chunks": result.writer_chunks, "model_chunks": result.model_chunks,
        "calibration_json": json.dumps({"same_writer": result.same_writer, "shuffled": result.shuffled}),
        "settings_json": json.dumps(dict(contestant.overrides), sort_keys=True), "heldout_hash": heldout.digest,
        "seconds": result.seconds, "created_at": store.now()})


def latest_voice_scores(db: Database) -> dict[str, dict[str, Any]]:
    """The newest result per label, whatever its status: what the report, the leaderboard, the
    Judge screen and the sweep table show. A newer "too little text" (her held-out text shrank)
    replaces an older number rather than leave it standing; its `auc` is None."""
    if not db["voice_scores"].exists():
        return {}
    return {row["label"]: row for row in db.query(
        "select * from voice_scores where id in (select max(id) from voice_scores group by label)")}
