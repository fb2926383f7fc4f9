"""The promotion gate: is a candidate checkpoint better than the current version?

    side = Side("v1", generation_ids(db, adapter_hashes={...}))
    result = evaluate_gate(db, candidate, incumbent, training_texts)
    result.verdict    # "better" | "not distinguishable" | "worse" | "untested"
    result.message    # one line: the verdict and what it rests on ("rate 12 more" …)

Evidence, from the canary outputs both sides have in the store:
1. Pairwise votes between a candidate output and an incumbent output (overall criterion,
   first showings only): the candidate's share of decided votes with a 95% Wilson interval
   (engine.judge.rating). An interval wholly above 0.5 is "better", wholly below "worse".
2. Otherwise blind rubric ratings (every criterion's scores pooled, first ratings only):
   each side's mean with a bootstrap 95% interval; intervals that do not overlap decide.
3. Neither decisive: "not distinguishable", with an estimate of how many more votes or
   ratings would separate the intervals at the current effect size (intervals narrow as
   1/√n); no evidence at all: "untested".
Regressions veto: a candidate with more flagged outputs than the incumbent (repetition
cascade, refusal, empty, wrong language — the stored automatic metrics of
engine.judge.metrics), or that copies a longer passage from the training pairs than the
incumbent and at least MEMORISED_WORDS words, is "worse" whatever the ratings say.

Memorisation here is the longest run of words an output shares with any training response
(`engine.judge.memorisation`), found by seeding matches on MIN_COPY_WORDS-grams and
extending them; a run shorter than that counts as 0.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable, Sequence
from typing import Any

from sqlite_utils import Database

from engine.judge import rating
from engine.judge.memorisation import CopyIndex, longest_passage

VERDICTS = ("better", "not distinguishable", "worse", "untested")
WRONG_LANGUAGE_SHARE = 0.2  # other-script words above this share: answered in another language
MEMORISED_WORDS = 25  # a copied run this long is recitation, not voice
MIN_COPY_WORDS = 5  # shorter shared runs are ordinary phrases ("in the middle of the")
MAX_MORE = 1000  # beyond this many more ratings the difference is not worth chasing
FLAG_NAMES = ("repetition_cascade", "refusal", "empty", "wrong_language")


@dataclasses.dataclass(frozen=True)
class Side:
    """One contestant of the gate: a name and the ids of its canary generations."""

    name: str
    generation_ids: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class GateResult:
    verdict: str  # one of VERDICTS
    message: str  # one line for the CLI and the Versions view
    rate_more: int | None  # more votes/ratings that would likely decide it (None: not estimable)
    candidate: str
    incumbent: str
    pairwise: dict[str, Any]  # wins, losses, ties, share, low, high
    rubric: dict[str, Any]  # {"candidate": {mean, low, high, n}, "incumbent": {…}}
    flags: dict[str, Any]  # {"candidate": {flag: count, "outputs": n}, "incumbent": {…}}
    memorisation: dict[str, Any]  # {"candidate": words, "incumbent": words, "passage": text}

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# Finding each side's outputs ------------------------------------------------------------------
def generation_ids(db: Database, *, adapter_hashes: Iterable[str] = (), model_hash: str | None = None,
                   base_only: bool = False) -> tuple[int, ...]:
    """Canary generations made with one of `adapter_hashes`, or by the model with `model_hash`
    (with `base_only`, only those with no adapter: the base model itself)."""
    hashes = [value for value in adapter_hashes if value]
    clauses, params = [], []
    if hashes:
        clauses.append(f"g.adapter_hash in ({','.join('?' * len(hashes))})")
        params += hashes
    if model_hash:
        clause = "m.content_hash = ?" + (" and g.adapter_hash is null" if base_only else "")
        clauses.append(f"({clause})")
        params.append(model_hash)
    if not clauses:
        return ()
    rows = db.execute(
        "select g.id from generations g join models m on m.id = g.model_id "
        f"where g.canary_id is not null and ({' or '.join(clauses)}) order by g.id", params).fetchall()
    return tuple(row[0] for row in rows)


# Evidence -------------------------------------------------------------------------------------
def _pairwise(db: Database, candidate: Side, incumbent: Side) -> dict[str, Any]:
    wins = losses = ties = 0
    cand, inc = set(candidate.generation_ids), set(incumbent.generation_ids)
    if cand and inc:
        for left, right, winner in db.execute(
                "select c.left_generation_id, c.right_generation_id, c.winner from comparisons c "
                "join session_items i on i.id = c.item_id "
                "where c.criterion_id is null and i.repeat_of_item_id is null"):
            if left in cand and right in inc:
                candidate_side = "left"
            elif right in cand and left in inc:
                candidate_side = "right"
            else:
                continue
            if winner == "tie":
                ties += 1
            elif winner == candidate_side:
                wins += 1
            else:
                losses += 1
    decided = wins + losses
    low, high = rating.wilson_interval(wins, decided)
    return {"wins": wins, "losses": losses, "ties": ties, "share": wins / decided if decided else None,
            "low": None if math.isnan(low) else low, "high": None if math.isnan(high) else high}


def _scores(db: Database, ids: Sequence[int]) -> list[int]:
    if not ids:
        return []
    rows = db.execute(
        "select s.score from rating_scores s join ratings r on r.id = s.rating_id "
        f"where r.repeat_of_item_id is null and r.generation_id in ({','.join('?' * len(ids))})", list(ids))
    return [row[0] for row in rows]


def _rubric_side(scores: list[int]) -> dict[str, Any]:
    if not scores:
        return {"mean": None, "low": None, "high": None, "n": 0}
    mean, low, high = rating.mean_interval(scores)
    return {"mean": mean, "low": None if math.isnan(low) else low, "high": None if math.isnan(high) else high,
            "n": len(scores)}


def _metrics(db: Database, ids: Sequence[int]) -> list[tuple[dict[str, Any], str]]:
    if not ids:
        return []
    rows = db.execute(f"select metrics_json, text from generations where id in ({','.join('?' * len(ids))})",
                      list(ids))
    return [(json.loads(metrics or "{}"), text or "") for metrics, text in rows]


def _flag_counts(outputs: list[tuple[dict[str, Any], str]]) -> dict[str, int]:
    counts = {name: 0 for name in FLAG_NAMES}
    flagged = 0
    for metrics, _ in outputs:
        hits = {
            "repetition_cascade": bool(metrics.get("repetition_cascade")),
            "refusal": bool(metrics.get("refusal")),
            "empty": bool(metrics.get("empty")),
            "wrong_language": float(metrics.get("other_script_share") or 0.0) > WRONG_LANGUAGE_SHARE,
        }
        for name, hit in hits.items():
            counts[name] += int(hit)
        flagged += int(any(hits.values()))
    return {**counts, "flagged_outputs": flagged, "outputs": len(outputs)}


# The verdict ----------------------------------------------------------------------------------
def _more_votes(share: float, decided: int) -> int | None:
    """Decided votes still needed for the Wilson interval to exclude 0.5 at this share."""
    if share == 0.5:
        return None
    for total in range(decided + 1, decided + MAX_MORE + 1):
        low, high = rating.wilson_interval(round(share * total), total)
        if low > 0.5 or high < 0.5:
            return total - decided
    return None


def _more_ratings(candidate: dict[str, Any], incumbent: dict[str, Any]) -> int | None:
    """Ratings per side still needed for the intervals to separate (half-widths ∝ 1/√n)."""
    if None in (candidate["low"], incumbent["low"]) or candidate["mean"] == incumbent["mean"]:
        return None
    half_widths = (candidate["high"] - candidate["low"] + incumbent["high"] - incumbent["low"]) / 2
    gap = abs(candidate["mean"] - incumbent["mean"])
    n = min(candidate["n"], incumbent["n"])
    needed = math.ceil(n * (half_widths / gap) ** 2) - n
    return max(1, needed) if needed <= MAX_MORE else None


def evaluate_gate(db: Database, candidate: Side, incumbent: Side, training_texts: Iterable[str]) -> GateResult:
    """Compare two sides on the canaries; see the module docstring for the rule."""
    pairwise = _pairwise(db, candidate, incumbent)
    rubric = {"candidate": _rubric_side(_scores(db, candidate.generation_ids)),
              "incumbent": _rubric_side(_scores(db, incumbent.generation_ids))}
    outputs = {"candidate": _metrics(db, candidate.generation_ids), "incumbent": _metrics(db, incumbent.generation_ids)}
    flags = {side: _flag_counts(rows) for side, rows in outputs.items()}
    index = CopyIndex(list(training_texts), MIN_COPY_WORDS)
    copies = {side: longest_passage(index, (text for _, text in rows)) for side, rows in outputs.items()}
    memorisation = {"candidate": copies["candidate"][0], "incumbent": copies["incumbent"][0],
                    "passage": copies["candidate"][1]}

    verdict, reason, rate_more = _from_ratings(pairwise, rubric)
    vetoes = []
    if flags["candidate"]["flagged_outputs"] > flags["incumbent"]["flagged_outputs"]:
        vetoes.append(f"more flagged outputs ({flags['candidate']['flagged_outputs']} vs "
                      f"{flags['incumbent']['flagged_outputs']}: degeneration/refusal/empty/wrong language)")
    if memorisation["candidate"] >= MEMORISED_WORDS and memorisation["candidate"] > memorisation["incumbent"]:
        vetoes.append(f"copies {memorisation['candidate']} words verbatim from the training pairs")
    if vetoes:
        verdict, reason, rate_more = "worse", "; ".join(vetoes) + (f" (ratings: {reason})" if reason else ""), None
    message = f"{candidate.name} vs {incumbent.name}: {verdict}"
    if verdict == "not distinguishable":
        message += " yet" + (f" (rate {rate_more} more)" if rate_more else " (rate more)")
    message += f" — {reason}" if reason else ""
    return GateResult(verdict=verdict, message=message, rate_more=rate_more, candidate=candidate.name,
                      incumbent=incumbent.name, pairwise=pairwise, rubric=rubric, flags=flags,
                      memorisation=memorisation)


def _interval_text(side: dict[str, Any]) -> str:
    if side["low"] is None:
        return f"{side['mean']:.2f} (n={side['n']})"
    return f"{side['mean']:.2f} [{side['low']:.2f}, {side['high']:.2f}] (n={side['n']})"


def _from_ratings(pairwise: dict[str, Any], rubric: dict[str, Any]) -> tuple[str, str, int | None]:
    """(verdict, reason, more ratings needed) from the votes, then the rubric."""
    decided = pairwise["wins"] + pairwise["losses"]
    rate_more: int | None = None
    reasons = []
    if decided:
        share = pairwise["share"]
        reasons.append(f"wins {pairwise['wins']} of {decided} decided votes "
                       f"({share:.0%}, 95% [{pairwise['low']:.0%}, {pairwise['high']:.0%}])")
        if pairwise["low"] > 0.5:
            return "better", reasons[0], None
        if pairwise["high"] < 0.5:
            return "worse", reasons[0], None
        rate_more = _more_votes(share, decided)
    candidate, incumbent = rubric["candidate"], rubric["incumbent"]
    if candidate["n"] and incumbent["n"]:
        reasons.append(f"rubric {_interval_text(candidate)} vs {_interval_text(incumbent)}")
        if candidate["low"] is not None and incumbent["low"] is not None:
            if candidate["low"] > incumbent["high"]:
                return "better", reasons[-1], None
            if candidate["high"] < incumbent["low"]:
                return "worse", reasons[-1], None
        more = _more_ratings(candidate, incumbent)
        rate_more = rate_more if more is None else (more if rate_more is None else min(rate_more, more))
    if not reasons:
        return "untested", "no blind ratings or votes link the two yet", None
    return "not distinguishable", "; ".join(reasons), rate_more
