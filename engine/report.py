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
- `canaries`: for each canary, the latest output of every contestant side by side
  (base versus fine-tuned); `runs`: each run's canary outputs across its checkpoints.

The Judge screen's leaderboard view reads the same dict, so the numbers always agree.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import defaultdict
from typing import Any

from sqlite_utils import Database

from engine import rating

FORMATS = ("markdown", "csv", "json")
# Metrics shown in the markdown leaderboard when present (all of them go to JSON/CSV).
HEADLINE_METRICS = ("distinct_1", "distinct_2", "distinct_3", "seq_rep_4", "repetition_cascade",
                    "other_script_share", "refusal", "empty", "length_words")
MAX_HEADLINE_METRICS = 6


def _votes(db: Database) -> list[dict[str, Any]]:
    return list(db.query(
        "select c.item_id, c.winner, c.rater, i.repeat_of_item_id, c.left_generation_id as left_id, "
        "c.right_generation_id as right_id, gl.label as left_label, gr.label as right_label "
        "from comparisons c join session_items i on i.id = c.item_id "
        "join generations gl on gl.id = c.left_generation_id "
        "join generations gr on gr.id = c.right_generation_id where c.criterion_id is null"))


def _bt_votes(votes: list[dict[str, Any]]) -> list[tuple[str, str, float]]:
    outcome = {"left": 1.0, "right": 0.0, "tie": 0.5}
    # Repeats measure the rater's consistency; counting them would weigh some pairs twice.
    return [(v["left_label"], v["right_label"], outcome[v["winner"]]) for v in votes
            if v["left_label"] != v["right_label"] and v["repeat_of_item_id"] is None]


def _scores(db: Database) -> list[dict[str, Any]]:
    return list(db.query(
        "select r.item_id, r.generation_id, r.rater, r.repeat_of_item_id, s.criterion_id, s.score, g.label "
        "from rating_scores s join ratings r on r.id = s.rating_id join generations g on g.id = r.generation_id"))


def _finite(value: float) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def build_report(db: Database, *, bt_samples: int = 200, mean_samples: int = 1000, seed: int = 0,
                 inter_rater_level: str = "interval") -> dict[str, Any]:
    """Everything the leaderboard shows, as plain values (JSON-ready, NaN → None)."""
    criteria_rows = list(db.query("select id, name, scale_min, scale_max, retired from criteria order by position, id"))
    criterion_names = {row["id"]: row["name"] for row in criteria_rows}
    contestant_rows = list(db.query(
        "select label, max(run_id) as run_id, max(checkpoint) as checkpoint, count(*) as generations "
        "from generations group by label order by min(id)"))
    scores = _scores(db)
    votes = _votes(db)
    bt_votes = _bt_votes(votes)

    # Bradley–Terry over overall votes.
    strengths = rating.bradley_terry(bt_votes) if bt_votes else {}
    intervals = rating.bradley_terry_intervals(bt_votes, samples=bt_samples, seed=seed) if bt_votes else {}
    wins = rating.win_rates(bt_votes)

    # Rubric means (first ratings only; repeats measure consistency, not quality).
    by_label: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for row in scores:
        if row["repeat_of_item_id"] is None:
            by_label[row["label"]][criterion_names[row["criterion_id"]]].append(row["score"])

    flag_counts = _flag_shares(db)
    metric_means = _metric_means(db)
    leaderboard = []
    for contestant in contestant_rows:
        label = contestant["label"]
        criteria_summary = {}
        for criterion_row in criteria_rows:
            values = by_label[label].get(criterion_row["name"], [])
            mean, low, high = rating.mean_interval(values, samples=mean_samples, seed=seed)
            criteria_summary[criterion_row["name"]] = {"mean": _finite(mean), "low": _finite(low),
                                                       "high": _finite(high), "n": len(values)}
        all_means = [c["mean"] for c in criteria_summary.values() if c["mean"] is not None]
        bt_low, bt_high = intervals.get(label, (None, None))
        leaderboard.append({
            "label": label, "run_id": contestant["run_id"], "checkpoint": contestant["checkpoint"],
            "generations": contestant["generations"], "criteria": criteria_summary,
            "rubric_mean": sum(all_means) / len(all_means) if all_means else None,
            "bt": {"score": strengths.get(label), "low": bt_low, "high": bt_high},
            "pairwise": wins.get(label, {"games": 0, "wins": 0, "ties": 0, "losses": 0, "win_rate": None}),
            "flags": flag_counts.get(label, {}), "metrics": metric_means.get(label, {}),
        })
    leaderboard.sort(key=lambda row: (-(row["bt"]["score"] if row["bt"]["score"] is not None else -math.inf),
                                      -(row["rubric_mean"] if row["rubric_mean"] is not None else -math.inf)))
    bias = rating.position_bias(v["winner"] for v in votes if v["repeat_of_item_id"] is None)
    return {
        "criteria": [{"name": r["name"], "scale": [r["scale_min"], r["scale_max"]], "retired": bool(r["retired"])}
                     for r in criteria_rows],
        "leaderboard": leaderboard,
        "votes": len(bt_votes),
        "position_bias": {key: _finite(value) for key, value in bias.items()},
        "test_retest": _test_retest(scores, criteria_rows, votes),
        "inter_rater": _inter_rater(scores, criterion_names, inter_rater_level),
        "canaries": _canary_sides(db),
        "runs": _run_progress(db),
    }


def _flag_shares(db: Database) -> dict[str, dict[str, float]]:
    """Per label: the share of its (first) ratings carrying each flag."""
    totals: dict[str, int] = defaultdict(int)
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in db.query("select g.label, r.flags_json from ratings r join generations g on g.id = r.generation_id "
                        "where r.repeat_of_item_id is null"):
        totals[row["label"]] += 1
        for flag in json.loads(row["flags_json"] or "[]"):
            counts[row["label"]][flag] += 1
    return {label: {flag: count / totals[label] for flag, count in flags.items()} for label, flags in counts.items()}


def _metric_means(db: Database) -> dict[str, dict[str, float]]:
    """Per label: the mean of every numeric (or boolean) metric over its generations."""
    sums: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in db.query("select label, metrics_json from generations where metrics_json is not null"):
        for name, value in json.loads(row["metrics_json"]).items():
            if isinstance(value, (int, float)) and not (isinstance(value, float) and math.isnan(value)):
                sums[row["label"]][name].append(float(value))
    return {label: {name: sum(v) / len(v) for name, v in metrics.items()} for label, metrics in sums.items()}


def _test_retest(scores: list[dict[str, Any]], criteria_rows: list[dict[str, Any]],
                 votes: list[dict[str, Any]]) -> dict[str, Any]:
    first = {(r["item_id"], r["criterion_id"]): r["score"] for r in scores if r["repeat_of_item_id"] is None}
    result: dict[str, Any] = {}
    for criterion_row in criteria_rows:
        pairs = [(first[(r["repeat_of_item_id"], r["criterion_id"])], r["score"]) for r in scores
                 if r["repeat_of_item_id"] is not None and r["criterion_id"] == criterion_row["id"]
                 and (r["repeat_of_item_id"], r["criterion_id"]) in first]
        if pairs:
            kappa = rating.quadratic_weighted_kappa([a for a, _ in pairs], [b for _, b in pairs],
                                                    (criterion_row["scale_min"], criterion_row["scale_max"]))
            result[criterion_row["name"]] = {"kappa": _finite(kappa), "pairs": len(pairs)}
    # Pairwise: compare winners by generation, since a repeat may show the sides swapped.
    def winner_of(vote: dict[str, Any]) -> Any:
        return {"left": vote["left_id"], "right": vote["right_id"]}.get(vote["winner"], "tie")
    originals = {v["item_id"]: winner_of(v) for v in votes if v["repeat_of_item_id"] is None}
    repeats = [(originals[v["repeat_of_item_id"]], winner_of(v)) for v in votes
               if v["repeat_of_item_id"] is not None and v["repeat_of_item_id"] in originals]
    if repeats:
        result["pairwise_agreement"] = {"share": sum(a == b for a, b in repeats) / len(repeats), "pairs": len(repeats)}
    return result


def _inter_rater(scores: list[dict[str, Any]], criterion_names: dict[int, str], level: str) -> dict[str, Any]:
    units: dict[int, dict[tuple[int, str], list[int]]] = defaultdict(lambda: defaultdict(list))
    raters: dict[int, set[str]] = defaultdict(set)
    for row in scores:
        if row["repeat_of_item_id"] is None:
            units[row["criterion_id"]][(row["generation_id"], row["rater"] or "")].append(row["score"])
            raters[row["criterion_id"]].add(row["rater"] or "")
    result = {}
    for criterion_id, cells in units.items():
        if len(raters[criterion_id]) < 2:
            continue
        by_unit: dict[int, dict[str, float]] = defaultdict(dict)
        for (generation_id, rater), values in cells.items():
            by_unit[generation_id][rater] = sum(values) / len(values)
        alpha = rating.krippendorff_alpha(by_unit, level=level)
        result[criterion_names[criterion_id]] = {
            "alpha": _finite(alpha), "raters": len(raters[criterion_id]),
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
    return [{"run_id": run["run_id"], "checkpoints": list(run["checkpoints"].values())} for run in runs.values()]


# Rendering ---------------------------------------------------------------------------------
def render(data: dict[str, Any], fmt: str = "markdown") -> str:
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False) + "\n"
    if fmt == "csv":
        return _render_csv(data)
    if fmt == "markdown":
        return _render_markdown(data)
    raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")


def _num(value: Any, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _interval(summary: dict[str, Any], digits: int = 2) -> str:
    if summary.get("mean", summary.get("score")) is None:
        return "–"
    centre = summary.get("mean", summary.get("score"))
    if summary.get("low") is None:
        return _num(centre, digits)
    return f"{_num(centre, digits)} [{_num(summary['low'], digits)}, {_num(summary['high'], digits)}]"


def _headline_metrics(data: dict[str, Any]) -> list[str]:
    present = {name for row in data["leaderboard"] for name in row["metrics"]}
    chosen = [name for name in HEADLINE_METRICS if name in present]
    chosen += sorted(present - set(chosen))
    return chosen[:MAX_HEADLINE_METRICS]


def _render_markdown(data: dict[str, Any]) -> str:
    criteria = [c["name"] + (" (retired)" if c["retired"] else "") for c in data["criteria"]]
    metrics = _headline_metrics(data)
    header = ["contestant", *criteria, "BT score", "win rate", "games", *metrics]
    lines = ["# voicebench leaderboard", "",
             "Means and Bradley–Terry scores with bootstrap 95% intervals; "
             f"{data['votes']} pairwise votes.", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in data["leaderboard"]:
        cells = [row["label"], *(_interval(row["criteria"][c["name"]]) for c in data["criteria"]),
                 _interval(row["bt"]), _num(row["pairwise"]["win_rate"]), str(row["pairwise"]["games"]),
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
                lines.append(f"- **{label}**: {_one_line(text)}")
    if data["runs"]:
        lines += ["", "## Runs across checkpoints"]
        for run in data["runs"]:
            lines += ["", f"### {run['run_id']}"]
            for checkpoint in run["checkpoints"]:
                lines += ["", f"- **{checkpoint['checkpoint'] or 'final'}**"]
                for canary_id, text in checkpoint["outputs"].items():
                    lines.append(f"  - {canary_id}: {_one_line(text)}")
    return "\n".join(lines) + "\n"


def _one_line(text: str) -> str:
    flat = " ".join(text.split())
    return flat if flat else "(empty)"


def _render_csv(data: dict[str, Any]) -> str:
    criteria = [c["name"] for c in data["criteria"]]
    metrics = sorted({name for row in data["leaderboard"] for name in row["metrics"]})
    header = ["label", "run_id", "checkpoint", "generations"]
    for name in criteria:
        header += [f"{name}_mean", f"{name}_low", f"{name}_high", f"{name}_n"]
    header += ["bt_score", "bt_low", "bt_high", "games", "wins", "ties", "losses", "win_rate"]
    header += [f"metric_{name}" for name in metrics]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in data["leaderboard"]:
        cells: list[Any] = [row["label"], row["run_id"] or "", row["checkpoint"] or "", row["generations"]]
        for name in criteria:
            summary = row["criteria"][name]
            cells += [summary["mean"], summary["low"], summary["high"], summary["n"]]
        cells += [row["bt"]["score"], row["bt"]["low"], row["bt"]["high"]]
        cells += [row["pairwise"][key] for key in ("games", "wins", "ties", "losses", "win_rate")]
        cells += [row["metrics"].get(name) for name in metrics]
        writer.writerow(["" if cell is None else cell for cell in cells])
    return buffer.getvalue()
