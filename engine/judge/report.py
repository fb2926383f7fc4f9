"""The leaderboard and its companions, computed from the store, rendered three ways.

    data = build_report(db)                  # plain dict (also the JSON format)
    print(render(data, "markdown"))          # or "csv" (leaderboard rows) or "json"

What `build_report` holds:
- `leaderboard`: one row per contestant label (model, model+adapter, run/checkpoint):
  rubric means per criterion with bootstrap 95% intervals (repeats excluded, retired
  criteria included and marked), a Bradley–Terry score with bootstrap interval and
  win rate from overall pairwise votes, flag shares, and the mean of every automatic
  metric stored with its generations. Sorted by BT score, then by mean rubric score.
- `position_bias`: how often the left output wins decided pairwise votes (0.5 = none).
- `test_retest`: per criterion, quadratic-weighted kappa between an item's first rating
  and its unannounced repeat; for pairwise, the share of repeats with the same winner.
- `inter_rater`: per criterion, Krippendorff's alpha (interval) across raters, when more
  than one rater has scored the same outputs.
- `headline` on each row: the one score that answers "which is best?" — the Bradley–Terry
  score once there are pairwise votes, else the mean rubric score over active criteria — with
  its interval, how many votes/ratings back it and `enough` (at least MIN_JUDGEMENTS). `best` names the row whose interval lies wholly above every other
  judged row's, and only when every judged row has enough; otherwise None.
- `name` on each row: how the contestant reads (`demo-ar lora #3 @ step 20`, engine.judge.names).
- `canaries`: for each canary, the latest output of every contestant side by side
  (base versus fine-tuned); `runs`: each run's canary outputs across its checkpoints.

The Judge screen's leaderboard view reads the same dict, so the numbers always agree.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
from collections import defaultdict
from typing import Any

from sqlite_utils import Database

from engine.display import safe_text, terminal_json
from engine.judge import rating
from engine.judge.names import display_name, run_names
from engine.judge.voice import latest_voice_scores

FORMATS = ("markdown", "csv", "json")
# Metrics shown in the markdown leaderboard when present (all of them go to JSON/CSV).
HEADLINE_METRICS = ("distinct_1", "distinct_2", "distinct_3", "seq_rep_4", "repetition_cascade",
                    "other_script_share", "refusal", "empty", "length_words")
MAX_HEADLINE_METRICS = 6
WINNERS = ("left", "right", "tie")
# Below this many ratings (rubric) or games (pairwise) a contestant's interval says nothing
# useful (one vote bootstraps to a point: `1.38 [1.38, 1.38]`), so it reads "not enough yet".
MIN_JUDGEMENTS = 3
NOT_ENOUGH = "not enough ratings yet"


# Every query below aggregates in SQLite, so a store with 100,000 ratings and votes hands
# Python a few hundred grouped rows rather than every rating.
FIRST_ONLY = "i.repeat_of_item_id is null"  # repeats measure consistency, not quality
FIRST_RATING = "r.repeat_of_item_id is null"  # the same, read off the rating row itself


def _vote_cells(db: Database) -> tuple[list[tuple[str, str, float]], list[int]]:
    """Overall pairwise votes grouped into (left label, right label, outcome) with counts."""
    outcome = {"left": 1.0, "right": 0.0, "tie": 0.5}
    votes, weights = [], []
    for left, right, winner, count in db.execute(
            "select gl.label, gr.label, c.winner, count(*) from comparisons c "
            "join session_items i on i.id = c.item_id "
            "join generations gl on gl.id = c.left_generation_id "
            "join generations gr on gr.id = c.right_generation_id "
            f"where c.criterion_id is null and {FIRST_ONLY} and gl.label != gr.label "
            "group by gl.label, gr.label, c.winner"):
        votes.append((left, right, outcome[winner]))
        weights.append(count)
    return votes, weights


def _score_counts(db: Database) -> dict[tuple[str, int], tuple[list[int], list[int]]]:
    """{(label, criterion id): (scores, how many first ratings gave each)}."""
    table: dict[tuple[str, int], tuple[list[int], list[int]]] = {}
    for label, criterion_id, score, count in db.execute(
            "select g.label, s.criterion_id, s.score, count(*) from rating_scores s "
            "join ratings r on r.id = s.rating_id join generations g on g.id = r.generation_id "
            f"where {FIRST_RATING} group by g.label, s.criterion_id, s.score"):
        scores, counts = table.setdefault((label, criterion_id), ([], []))
        scores.append(score)
        counts.append(count)
    return table


def _finite(value: float) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def build_report(db: Database, *, bt_samples: int = 200, mean_samples: int = 1000, seed: int = 0,
                 inter_rater_level: str = "interval") -> dict[str, Any]:
    """Everything the leaderboard shows, as plain values (JSON-ready, NaN → None)."""
    criteria_rows = list(db.query("select id, name, scale_min, scale_max, retired from criteria order by position, id"))
    contestant_rows = list(db.query(
        "select label, max(run_id) as run_id, max(checkpoint) as checkpoint, "
        "max(checkpoint_step) as checkpoint_step, count(*) as generations "
        "from generations group by label order by min(id)"))
    names = run_names(db)
    votes, weights = _vote_cells(db)
    strengths = rating.bradley_terry(votes, weights=weights) if votes else {}
    intervals = rating.bradley_terry_intervals(votes, weights=weights, samples=bt_samples, seed=seed) if votes else {}
    wins = rating.win_rates(votes, weights=weights)
    score_counts = _score_counts(db)
    flag_shares = _flag_shares(db)
    metric_means = _metric_means(db)

    leaderboard = []
    for contestant in contestant_rows:
        label = contestant["label"]
        criteria_summary = {}
        for criterion_row in criteria_rows:
            scores, counts = score_counts.get((label, criterion_row["id"]), ([], []))
            mean, low, high = rating.mean_interval(scores, weights=counts, samples=mean_samples, seed=seed)
            criteria_summary[criterion_row["name"]] = {"mean": _finite(mean), "low": _finite(low),
                                                       "high": _finite(high), "n": sum(counts)}
        all_means = [c["mean"] for c in criteria_summary.values() if c["mean"] is not None]
        bt_low, bt_high = intervals.get(label, (None, None))
        headline_kind = "bt" if votes else "rubric"
        if headline_kind == "bt":
            games = wins.get(label, {}).get("games", 0)
            headline = _headline("bt", strengths.get(label), bt_low, bt_high, int(games))
        else:
            headline = _headline("rubric", *_pooled_rubric(score_counts, label, criteria_rows, mean_samples, seed))
        leaderboard.append({
            "label": label, "name": display_name(label, contestant["run_id"], contestant["checkpoint_step"], names),
            "run_id": contestant["run_id"], "checkpoint": contestant["checkpoint"],
            "checkpoint_step": contestant["checkpoint_step"], "headline": headline,
            "generations": contestant["generations"], "criteria": criteria_summary,
            "rubric_mean": sum(all_means) / len(all_means) if all_means else None,
            "bt": {"score": strengths.get(label), "low": bt_low, "high": bt_high},
            "pairwise": wins.get(label, {"games": 0, "wins": 0, "ties": 0, "losses": 0, "win_rate": None}),
            "flags": flag_shares.get(label, {}), "metrics": metric_means.get(label, {}),
        })
    leaderboard.sort(key=lambda row: (-(row["bt"]["score"] if row["bt"]["score"] is not None else -math.inf),
                                      -(row["rubric_mean"] if row["rubric_mean"] is not None else -math.inf)))
    return {
        "best": best_label(leaderboard),
        "criteria": [{"name": r["name"], "scale": [r["scale_min"], r["scale_max"]], "retired": bool(r["retired"])}
                     for r in criteria_rows],
        "leaderboard": leaderboard,
        "votes": int(sum(weights)),
        "position_bias": _position_bias(db),
        "test_retest": _test_retest(db, criteria_rows),
        "inter_rater": _inter_rater(db, criteria_rows, inter_rater_level),
        "canaries": _canary_sides(db),
        "runs": _run_progress(db),
        "voice": voice_agreement(db, leaderboard),
    }


def _headline(kind: str, score: float | None, low: float | None, high: float | None, count: int) -> dict[str, Any]:
    score, low, high = _finite(score), _finite(low), _finite(high)
    # A bootstrap over identical answers is a point; with MIN_JUDGEMENTS or more that is the data
    # speaking (every rating the same), with fewer it is just too few, so it is withheld.
    enough = count >= MIN_JUDGEMENTS and score is not None and low is not None and high is not None
    return {"kind": kind, "score": score, "low": low if enough else None, "high": high if enough else None,
            "n": count, "enough": enough}


def _pooled_rubric(score_counts: dict[tuple[str, int], tuple[list[int], list[int]]], label: str,
                   criteria_rows: list[dict[str, Any]], samples: int, seed: int
                   ) -> tuple[float | None, float | None, float | None, int]:
    """Mean of every first-rating score on the active criteria, its interval, and the rating count."""
    pooled: dict[int, int] = defaultdict(int)
    ratings = 0
    for criterion_row in criteria_rows:
        if criterion_row["retired"]:
            continue
        scores, counts = score_counts.get((label, criterion_row["id"]), ([], []))
        for score, count in zip(scores, counts):
            pooled[score] += count
        ratings = max(ratings, sum(counts))  # one rating scores each criterion once
    if not pooled:
        return None, None, None, 0
    mean, low, high = rating.mean_interval(list(pooled), weights=list(pooled.values()), samples=samples, seed=seed)
    return mean, low, high, ratings


def best_label(leaderboard: list[dict[str, Any]]) -> str | None:
    """The contestant whose headline interval lies above every other judged contestant's.

    None while any judged contestant has too few ratings, or when the top intervals overlap:
    a marker is a claim, so it appears only when the data backs it."""
    judged = [row for row in leaderboard if row["headline"]["n"] > 0 and row["headline"]["score"] is not None]
    if len(judged) < 2 or not all(row["headline"]["enough"] for row in judged):
        return None
    top = max(judged, key=lambda row: row["headline"]["score"])
    if all(top["headline"]["low"] > row["headline"]["high"] for row in judged if row is not top):
        return top["label"]
    return None


def best_checkpoint(db: Database, run_id: str, data: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The best-judged checkpoint of one run, for the runs list.

    Returns {"label", "name", "step", "score", "low", "high", "n", "kind", "separated"} for the
    run's checkpoint with the highest headline score among those with enough ratings
    (`separated`: its interval lies above every other checkpoint of the run), or None when no
    checkpoint of the run has enough ratings. Pass `data` (a build_report result) to list many
    runs without recomputing the bootstrap."""
    data = data if data is not None else build_report(db)
    rows = [row for row in data["leaderboard"] if row["run_id"] == run_id and row["checkpoint_step"] != 0
            and row["headline"]["score"] is not None]
    ranked = [row for row in rows if row["headline"]["enough"]]
    if not ranked:
        return None
    top = max(ranked, key=lambda row: row["headline"]["score"])
    headline = top["headline"]
    separated = all(row["headline"]["enough"] and headline["low"] > row["headline"]["high"]
                    for row in rows if row is not top)
    return {"label": top["label"], "name": top["name"], "step": top["checkpoint_step"], "score": headline["score"],
            "low": headline["low"], "high": headline["high"], "n": headline["n"], "kind": headline["kind"],
            "separated": separated}


def headline_text(headline: dict[str, Any], digits: int = 2) -> str:
    """`3.40 [2.90, 3.85]`, or NOT_ENOUGH (never a point interval)."""
    if headline["score"] is None or not headline["enough"]:
        return NOT_ENOUGH
    return (f"{headline['score']:.{digits}f} [{headline['low']:.{digits}f}, {headline['high']:.{digits}f}]")


def _position_bias(db: Database) -> dict[str, Any]:
    counts = dict(db.execute(
        "select c.winner, count(*) from comparisons c join session_items i on i.id = c.item_id "
        f"where c.criterion_id is null and {FIRST_ONLY} group by c.winner").fetchall())
    winners = itertools.chain.from_iterable(itertools.repeat(name, counts.get(name, 0)) for name in WINNERS)
    return {key: _finite(value) for key, value in rating.position_bias(winners).items()}


def _flag_shares(db: Database) -> dict[str, dict[str, float]]:
    """Per label: the share of its first ratings carrying each flag."""
    totals = dict(db.execute(
        "select g.label, count(*) from ratings r join generations g on g.id = r.generation_id "
        f"where {FIRST_RATING} group by g.label").fetchall())
    shares: dict[str, dict[str, float]] = defaultdict(dict)
    for label, flag, count in db.execute(
            "select g.label, f.value, count(*) from ratings r "
            "join generations g on g.id = r.generation_id, json_each(r.flags_json) f "
            f"where {FIRST_RATING} group by g.label, f.value"):
        shares[label][flag] = count / totals[label]
    return dict(shares)


def _metric_means(db: Database) -> dict[str, dict[str, float]]:
    """Per label: the mean of every numeric or boolean metric over its generations."""
    means: dict[str, dict[str, float]] = defaultdict(dict)
    for label, name, value in db.execute(
            "select g.label, m.key, avg(m.value) from generations g, json_each(g.metrics_json) m "
            "where g.metrics_json is not null and m.type in ('integer', 'real', 'true', 'false') "
            "group by g.label, m.key"):
        means[label][name] = value
    return dict(means)


def _test_retest(db: Database, criteria_rows: list[dict[str, Any]]) -> dict[str, Any]:
    """First rating vs its unannounced repeat, per criterion; pairwise: same winner share."""
    pairs: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for criterion_id, first, again in db.execute(
            "select s2.criterion_id, s1.score, s2.score from ratings r2 "
            "join rating_scores s2 on s2.rating_id = r2.id "
            "join ratings r1 on r1.item_id = r2.repeat_of_item_id "
            "join rating_scores s1 on s1.rating_id = r1.id and s1.criterion_id = s2.criterion_id "
            "where r2.repeat_of_item_id is not null"):
        pairs[criterion_id].append((first, again))
    result: dict[str, Any] = {}
    for criterion_row in criteria_rows:
        found = pairs.get(criterion_row["id"])
        if found:
            kappa = rating.quadratic_weighted_kappa([a for a, _ in found], [b for _, b in found],
                                                    (criterion_row["scale_min"], criterion_row["scale_max"]))
            result[criterion_row["name"]] = {"kappa": _finite(kappa), "pairs": len(found)}
    # Compare winners by generation: a repeat may show the two sides swapped.
    winner_of = ("case {c}.winner when 'left' then {c}.left_generation_id "
                 "when 'right' then {c}.right_generation_id else 0 end")
    row = db.execute(
        f"select count(*), sum({winner_of.format(c='c1')} = {winner_of.format(c='c2')}) "
        "from comparisons c2 join session_items i on i.id = c2.item_id "
        "join comparisons c1 on c1.item_id = i.repeat_of_item_id and c1.criterion_id is null "
        "where c2.criterion_id is null and i.repeat_of_item_id is not null").fetchone()
    if row[0]:
        result["pairwise_agreement"] = {"share": row[1] / row[0], "pairs": row[0]}
    return result


def _inter_rater(db: Database, criteria_rows: list[dict[str, Any]], level: str) -> dict[str, Any]:
    """Krippendorff's alpha per criterion over outputs scored by two or more raters."""
    if db.execute("select count(distinct coalesce(rater, '')) from ratings").fetchone()[0] < 2:
        return {}
    units: dict[int, dict[int, dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
    for criterion_id, generation_id, rater, score in db.execute(
            "select s.criterion_id, r.generation_id, coalesce(r.rater, ''), avg(s.score) from rating_scores s "
            "join ratings r on r.id = s.rating_id "
            f"where {FIRST_RATING} group by s.criterion_id, r.generation_id, coalesce(r.rater, '')"):
        units[criterion_id][generation_id][rater] = score
    result = {}
    for criterion_row in criteria_rows:
        by_unit = units.get(criterion_row["id"])
        if not by_unit:
            continue
        raters = {rater for unit in by_unit.values() for rater in unit}
        if len(raters) < 2:
            continue
        alpha = rating.krippendorff_alpha(by_unit, level=level)
        result[criterion_row["name"]] = {
            "alpha": _finite(alpha), "raters": len(raters),
            "units": sum(1 for unit in by_unit.values() if len(unit) >= 2)}
    return result


def _canary_sides(db: Database) -> list[dict[str, Any]]:
    """Per canary version: the newest output of each contestant."""
    rows = db.query(
        "select c.canary_id, c.version, c.prompt, g.label, g.text from generations g "
        "join canaries c on c.id = g.canary_id where g.id in "
        "(select max(id) from generations where canary_id is not null group by label, canary_id) "
        "order by c.canary_id, c.version, g.id")
    out: dict[tuple[str, int], dict[str, Any]] = {}
    for row in rows:
        entry = out.setdefault((row["canary_id"], row["version"]), {
            "canary_id": row["canary_id"], "version": row["version"], "prompt": row["prompt"], "outputs": {}})
        entry["outputs"][row["label"]] = row["text"]
    return list(out.values())


def _run_progress(db: Database) -> list[dict[str, Any]]:
    """Each run's canary outputs across its checkpoints, in step order."""
    rows = db.query(
        "select g.run_id, g.checkpoint, g.checkpoint_step, c.canary_id, g.text from generations g "
        "join canaries c on c.id = g.canary_id where g.run_id is not null and g.id in "
        "(select max(id) from generations where canary_id is not null group by label, canary_id) "
        "order by g.run_id, coalesce(g.checkpoint_step, 1e18), g.checkpoint, c.canary_id")
    runs: dict[str, dict[str, Any]] = {}
    for row in rows:
        run = runs.setdefault(row["run_id"], {"run_id": row["run_id"], "checkpoints": {}})
        checkpoint = run["checkpoints"].setdefault(row["checkpoint"] or "", {
            "checkpoint": row["checkpoint"], "step": row["checkpoint_step"], "outputs": {}})
        checkpoint["outputs"][row["canary_id"]] = row["text"]
    summaries = {row["id"]: row for row in db.query("select id, method, status from runs")}
    last_values = defaultdict(dict)
    for run_id, name, value in db.execute(
            "select m.run_id, m.name, m.value from run_metrics m join (select run_id, name, max(step) as step "
            "from run_metrics where name in ('loss', 'val_loss') group by run_id, name) last "
            "on last.run_id = m.run_id and last.name = m.name and last.step = m.step"):
        last_values[run_id][name] = value
    names = run_names(db)
    return [{"run_id": run["run_id"], "name": names.get(run["run_id"], run["run_id"]), "method": summaries.get(run["run_id"], {}).get("method"),
             "status": summaries.get(run["run_id"], {}).get("status"),
             "last_loss": last_values[run["run_id"]].get("loss"),
             "last_val_loss": last_values[run["run_id"]].get("val_loss"),
             "checkpoints": list(run["checkpoints"].values())} for run in runs.values()]


# Rendering ---------------------------------------------------------------------------------
def render(data: dict[str, Any], fmt: str = "markdown") -> str:
    """The report as text. Markdown is for reading, so labels, prompts and outputs in it pass
    through `safe_text` (control characters shown as escapes); JSON keeps every value exactly
    (DEL, C1 controls and lone surrogates as \\u escapes); CSV keeps values exactly too."""
    if fmt == "json":
        return terminal_json(data, indent=2, sort_keys=False) + "\n"
    if fmt == "csv":
        return _render_csv(data)
    if fmt == "markdown":
        return _render_markdown(data)
    raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")


def _num(value: Any, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _interval(summary: dict[str, Any], count: int | None = None, digits: int = 2) -> str:
    """A centre with its interval, or the centre and its count when the interval would be a point."""
    centre = summary.get("mean", summary.get("score"))
    if centre is None:
        return "–"
    low, high = summary.get("low"), summary.get("high")
    count = summary.get("n", count)
    if low is None or high is None or (count is not None and count < MIN_JUDGEMENTS):
        return f"{_num(centre, digits)} (n={count})" if count is not None else _num(centre, digits)
    return f"{_num(centre, digits)} [{_num(low, digits)}, {_num(high, digits)}]"


def _headline_metrics(data: dict[str, Any]) -> list[str]:
    present = {name for row in data["leaderboard"] for name in row["metrics"]}
    chosen = [name for name in HEADLINE_METRICS if name in present]
    chosen += sorted(present - set(chosen))
    return chosen[:MAX_HEADLINE_METRICS]


def _cell(text: str) -> str:
    """A value as one markdown table cell: whitespace runs (newlines too) as one space, `|` escaped,
    so a label holding either cannot break its table."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _render_markdown(data: dict[str, Any]) -> str:
    criteria = [c["name"] + (" (retired)" if c["retired"] else "") for c in data["criteria"]]
    metrics = _headline_metrics(data)
    header = ["contestant", *criteria, "BT score", "win rate", "games", *metrics]
    names = {row["label"]: row["name"] for row in data["leaderboard"]}
    lines = ["# voicebench leaderboard", "", "## Which is best?", "", headline_caption(data), "",
             "| contestant | score | votes/ratings | |", "|---|---|---|---|"]
    for row in data["leaderboard"]:
        lines.append(f"| {_cell(row['name'])} | {headline_text(row['headline'])} | {row['headline']['n']} | "
                     f"{'best' if data['best'] == row['label'] else ''} |")
    lines += ["", "## Every measure", "",
              "Means and Bradley–Terry scores with bootstrap 95% intervals; "
              f"{data['votes']} pairwise votes.", "",
              "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in data["leaderboard"]:
        cells = [_cell(row["name"]), *(_interval(row["criteria"][c["name"]]) for c in data["criteria"]),
                 _interval(row["bt"], row["pairwise"]["games"]), _num(row["pairwise"]["win_rate"]),
                 str(row["pairwise"]["games"]),
                 *(_num(row["metrics"].get(name), 3) for name in metrics)]
        lines.append("| " + " | ".join(cells) + " |")
    bias = data["position_bias"]
    lines += ["", "## Agreement", ""]
    if bias["left_wins"] + bias["right_wins"]:
        lines.append(f"- Position bias: left wins {_num(bias['left_share'])} of decided votes "
                     f"(95% {_num(bias['low'])}–{_num(bias['high'])}; 0.50 = no bias; "
                     f"{bias['left_wins']} left, {bias['right_wins']} right, {bias['ties']} ties).")
    else:
        lines.append("- Position bias: no decided pairwise votes yet.")
    for name, value in data["test_retest"].items():
        if name == "pairwise_agreement":
            lines.append(f"- Test–retest (pairwise): same winner on {_num(value['share'])} of {value['pairs']} repeats.")
        else:
            lines.append(f"- Test–retest {name}: weighted kappa {_num(value['kappa'])} over {value['pairs']} repeats.")
    for name, value in data["inter_rater"].items():
        lines.append(f"- Inter-rater {name}: Krippendorff's alpha {_num(value['alpha'])} "
                     f"({value['raters']} raters, {value['units']} shared outputs).")
    if not data["test_retest"] and not data["inter_rater"]:
        lines.append("- No repeats or second raters yet, so no agreement figures.")
    if data["canaries"]:
        lines += ["", "## Canaries side by side"]
        for canary in data["canaries"]:
            lines += ["", f"### {canary['canary_id']} (v{canary['version']})", "", f"> {canary['prompt']}", ""]
            for label, text in canary["outputs"].items():
                lines.append(f"- **{_one_line(names.get(label, label))}**: {_one_line(text)}")
    if data["runs"]:
        lines += ["", "## Runs across checkpoints"]
        for run in data["runs"]:
            facts = [f"{key.replace('_', ' ')} {_num(run[key], 3) if 'loss' in key else run[key]}"
                     for key in ("method", "status", "last_loss", "last_val_loss") if run.get(key) is not None]
            lines += ["", f"### {_one_line(run['name'])} ({run['run_id']})"] + (["", "; ".join(facts)] if facts else [])
            for checkpoint in run["checkpoints"]:
                name = checkpoint_heading(run, checkpoint)
                lines += ["", f"- **{_one_line(name)}**"]
                for canary_id, text in checkpoint["outputs"].items():
                    lines.append(f"  - {canary_id}: {_one_line(text)}")
    lines += render_voice_agreement(data.get("voice"))
    return safe_text("\n".join(lines) + "\n")


def headline_caption(data: dict[str, Any]) -> str:
    """What the headline score is, in one sentence."""
    if data["votes"]:
        return (f"Bradley–Terry score from {data['votes']} pairwise votes, bootstrap 95% interval; "
                "'best' only when its interval lies above every other.")
    return ("Mean rubric score over the active criteria, bootstrap 95% interval; "
            "'best' only when its interval lies above every other.")


def checkpoint_heading(run: dict[str, Any], checkpoint: dict[str, Any]) -> str:
    """`demo-ar lora #3 @ step 20` for a checkpoint column of a run."""
    if checkpoint["step"] == 0:
        return "base model (step 0)"
    if checkpoint["step"] is None:
        return f"{run['name']} (final)"
    return f"{run['name']} @ step {checkpoint['step']}"


def _one_line(text: str) -> str:
    flat = " ".join(text.split())
    return flat if flat else "(empty)"


def _render_csv(data: dict[str, Any]) -> str:
    criteria = [c["name"] for c in data["criteria"]]
    metrics = sorted({name for row in data["leaderboard"] for name in row["metrics"]})
    header = ["label", "name", "run_id", "checkpoint", "generations"]
    for name in criteria:
        header += [f"{name}_mean", f"{name}_low", f"{name}_high", f"{name}_n"]
    header += ["bt_score", "bt_low", "bt_high", "games", "wins", "ties", "losses", "win_rate"]
    header += [f"metric_{name}" for name in metrics]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in data["leaderboard"]:
        cells: list[Any] = [row["label"], row["name"], row["run_id"] or "", row["checkpoint"] or "", row["generations"]]
        for name in criteria:
            summary = row["criteria"][name]
            cells += [summary["mean"], summary["low"], summary["high"], summary["n"]]
        cells += [row["bt"]["score"], row["bt"]["low"], row["bt"]["high"]]
        cells += [row["pairwise"][key] for key in ("games", "wins", "ties", "losses", "win_rate")]
        cells += [row["metrics"].get(name) for name in metrics]
        writer.writerow(["" if cell is None else cell for cell in cells])
    return buffer.getvalue()


# The automatic voice score beside the human verdict ----------------------------------------
VOICE_CRITERION = "voice"
MIN_CONTESTANTS_FOR_AGREEMENT = 3


def spearman(first: list[float], second: list[float]) -> float | None:
    """Spearman's rank correlation (average ranks for ties); None for fewer than 3 values or no spread."""
    if len(first) < MIN_CONTESTANTS_FOR_AGREEMENT or len(first) != len(second):
        return None

    def ranks(values: list[float]) -> list[float]:
        order = sorted(range(len(values)), key=values.__getitem__)
        result = [0.0] * len(values)
        start = 0
        while start < len(order):
            end = start
            while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
                end += 1
            for index in order[start:end + 1]:
                result[index] = (start + end) / 2 + 1
            start = end + 1
        return result

    a, b = ranks(first), ranks(second)
    mean_a, mean_b = sum(a) / len(a), sum(b) / len(b)
    cov = sum((x - mean_a) * (y - mean_b) for x, y in zip(a, b))
    spread = math.sqrt(sum((x - mean_a) ** 2 for x in a) * sum((y - mean_b) ** 2 for y in b))
    return cov / spread if spread else None


def voice_agreement(db: Database, leaderboard: list[dict[str, Any]]) -> dict[str, Any]:
    """The voice score (engine.judge.voice) next to the rubric's voice criterion and the
    pairwise score, per contestant, with Spearman rank agreement once three or more
    contestants have both. Higher "likeness" (1 − AUC) means harder to tell from her."""
    if not db["voice_scores"].exists():
        return {"rows": [], "agreement": {}}
    scores = latest_voice_scores(db)
    rows = []
    for entry in leaderboard:
        score = scores.get(entry["label"])
        rubric = entry["criteria"].get(VOICE_CRITERION, {}).get("mean")
        rows.append({
            "label": entry["label"], "status": score["status"] if score else None,
            "auc": score["auc"] if score else None, "auc_low": score["auc_low"] if score else None,
            "auc_high": score["auc_high"] if score else None,
            "copied_words": score["copied_words"] if score else None,
            "rubric_voice": rubric, "bt": entry["bt"]["score"]})
    known = {row["label"] for row in rows}
    rows += [{"label": label, "status": score["status"], "auc": score["auc"], "auc_low": score["auc_low"],
              "auc_high": score["auc_high"], "copied_words": score["copied_words"], "rubric_voice": None, "bt": None}
             for label, score in scores.items() if label not in known]
    agreement = {}
    for human in ("rubric_voice", "bt"):
        both = [row for row in rows if row["auc"] is not None and row[human] is not None]
        rho = spearman([1 - row["auc"] for row in both], [row[human] for row in both])
        entry: dict[str, Any] = {"contestants": len(both), "spearman": rho, "disagreements": []}
        if rho is not None:
            machine = _rank_of({row["label"]: 1 - row["auc"] for row in both})
            person = _rank_of({row["label"]: row[human] for row in both})
            entry["disagreements"] = [
                {"label": label, "voice_rank": machine[label], "human_rank": person[label]}
                for label in machine if abs(machine[label] - person[label]) >= 2]
        agreement[human] = entry
    return {"rows": rows, "agreement": agreement}


def _rank_of(values: dict[str, float]) -> dict[str, int]:
    """1 = best (highest value)."""
    return {label: place for place, label in enumerate(sorted(values, key=lambda key: -values[key]), start=1)}


def render_voice_agreement(section: dict[str, Any] | None) -> list[str]:
    """Markdown lines: the voice score beside the human verdict, and where they disagree."""
    if not section or not any(row["auc"] is not None or row["status"] for row in section["rows"]):
        return []
    lines = ["", "## Does it sound like her? (automatic voice score)", "",
             "AUC: how well a classifier tells the contestant's replies from her held-out writing "
             "(0.5 = cannot, 1.0 = always). Beside it, her own blind verdict.", "",
             "| contestant | voice AUC | copied words | rubric voice | BT score |", "|---|---|---|---|---|"]
    for row in section["rows"]:
        if row["auc"] is None and not row["status"]:
            continue
        auc = ("too little text" if row["status"] == "too_little_text"
               else f"{_num(row['auc'])} [{_num(row['auc_low'])}, {_num(row['auc_high'])}]")
        copied = "–" if row["copied_words"] is None else str(row["copied_words"])
        lines.append(f"| {row['label']} | {auc} | {copied} | {_num(row['rubric_voice'])} | {_num(row['bt'])} |")
    lines.append("")
    names = {"rubric_voice": "the rubric's voice criterion", "bt": "the pairwise (Bradley–Terry) score"}
    for human, entry in section["agreement"].items():
        if entry["spearman"] is None:
            lines.append(f"- Against {names[human]}: {entry['contestants']} contestant(s) have both; "
                         f"rank agreement needs {MIN_CONTESTANTS_FOR_AGREEMENT}.")
            continue
        lines.append(f"- Against {names[human]}: Spearman {entry['spearman']:.2f} over {entry['contestants']} contestants.")
        for item in entry["disagreements"]:
            lines.append(f"  - Disagreement: {item['label']} is #{item['voice_rank']} by the voice score "
                         f"but #{item['human_rank']} by {names[human]}.")
        if entry["spearman"] < 0.5 and not entry["disagreements"]:
            lines.append("  - The two orders disagree more than they agree.")
    return lines
