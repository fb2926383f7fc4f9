"""Statistics for judging: Bradley–Terry strengths, bootstrap intervals, agreement.

    strengths = bradley_terry([("a", "b", 1), ("b", "c", 0.5), ...])   # {name: log-strength}
    intervals = bradley_terry_intervals(votes, samples=200, seed=0)    # {name: (low, high)}

- Bradley–Terry (P(i beats j) = p_i / (p_i + p_j)) is fitted by Newton iterations on
  θ = log p (the log-likelihood is concave); a tie counts as half a win for each side
  (the usual "ties as half" reading).
  A tiny prior — every item plays `prior` virtual wins and losses against a fixed
  reference of strength 1 — keeps never-winning or never-losing items finite.
  Strengths are returned as log p, centred on mean 0: higher is better, differences are
  log-odds (0.69 ≈ wins twice as often).
- Bootstrap intervals resample whole votes with replacement and refit; percentile 95%.
- `quadratic_weighted_kappa` for test–retest (Cohen 1968, weights (i−j)²/(k−1)²) and
  `krippendorff_alpha` (interval or ordinal δ², coincidence-matrix form) for raters.

numpy is imported lazily, like torch elsewhere, so `voicebench --help` stays light.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any

Vote = tuple[Hashable, Hashable, float]  # (a, b, outcome): 1 = a wins, 0 = b wins, 0.5 = tie

DEFAULT_PRIOR = 0.1  # virtual wins+losses vs the reference; small enough not to move real data
NEWTON_TOLERANCE = 1e-10
NEWTON_MAX_ITERATIONS = 200
MAX_NEWTON_STEP = 2.0  # log-strength units per iteration; keeps separated data from overshooting


def _index_votes(votes: Iterable[Vote], weights: Iterable[int] | None = None
                 ) -> tuple[list[Hashable], Any, Any, Any, Any]:
    """Names plus the votes folded into distinct (a, b, outcome) cells with their counts
    (`weights[i]` copies of vote i when given — a store can hand over grouped counts).

    There are at most 3·k² cells for k names however many votes there are, so fits and
    bootstrap refits cost O(cells), not O(votes).
    """
    import numpy as np

    names: dict[Hashable, int] = {}
    cells: dict[tuple[int, int, float], int] = {}
    for (a, b, result), weight in zip(votes, itertools.repeat(1) if weights is None else weights):
        if a == b:
            raise ValueError(f"a vote compares {a!r} with itself; drop it before fitting")
        if result not in (0, 0.5, 1):
            raise ValueError(f"vote outcome must be 1 (a wins), 0 (b wins) or 0.5 (tie), got {result!r}")
        key = (names.setdefault(a, len(names)), names.setdefault(b, len(names)), float(result))
        cells[key] = cells.get(key, 0) + weight
    left = np.fromiter((key[0] for key in cells), dtype=np.int64, count=len(cells))
    right = np.fromiter((key[1] for key in cells), dtype=np.int64, count=len(cells))
    outcome = np.fromiter((key[2] for key in cells), dtype=float, count=len(cells))
    counts = np.fromiter(cells.values(), dtype=float, count=len(cells))
    return list(names), left, right, outcome, counts


def _fit(count: int, left: Any, right: Any, outcome: Any, weights: Any, prior: float) -> Any:
    """Newton fit of log-strengths θ on vote cells with `weights` votes each. Returns θ
    centred on mean 0.

    Log-likelihood: Σ_i W_i θ_i − Σ_{i<j} n_ij log(e^θ_i + e^θ_j), W_i = wins (+½ per tie),
    plus the prior's `prior` wins and losses against a reference at θ = 0, which makes it
    strictly concave — so Newton converges in a few steps even when one item never loses
    (where MM crawls).
    """
    import numpy as np

    w = weights
    wins = np.bincount(left, weights=w * outcome, minlength=count) + np.bincount(
        right, weights=w * (1.0 - outcome), minlength=count)
    games = np.zeros((count, count))  # games[i, j] = comparisons between i and j (symmetric)
    np.add.at(games, (left, right), w)
    games = games + games.T
    theta = np.zeros(count)
    for _ in range(NEWTON_MAX_ITERATIONS):
        p_win = 1.0 / (1.0 + np.exp(theta[None, :] - theta[:, None]))  # p_win[i, j] = P(i beats j)
        p_ref = 1.0 / (1.0 + np.exp(-theta))
        gradient = wins - (games * p_win).sum(axis=1) + prior * (1.0 - 2.0 * p_ref)
        curvature = games * p_win * (1.0 - p_win)
        hessian = curvature - np.diag(curvature.sum(axis=1) + 2.0 * prior * p_ref * (1.0 - p_ref))
        step = np.linalg.solve(hessian, -gradient)
        step *= min(1.0, MAX_NEWTON_STEP / max(np.max(np.abs(step)), 1e-300))  # damp huge first steps
        theta = theta + step
        if np.max(np.abs(step)) < NEWTON_TOLERANCE:
            break
    return theta - theta.mean()


def bradley_terry(votes: Iterable[Vote], *, weights: Iterable[int] | None = None,
                  prior: float = DEFAULT_PRIOR) -> dict[Hashable, float]:
    """Each name's log-strength (mean 0, higher is better) from (a, b, outcome) votes;
    `weights` optionally counts each vote several times (grouped votes)."""
    names, left, right, outcome, counts = _index_votes(votes, weights)
    if not names:
        return {}
    fitted = _fit(len(names), left, right, outcome, counts, prior)
    return {name: float(value) for name, value in zip(names, fitted)}


def bradley_terry_intervals(votes: Iterable[Vote], *, weights: Iterable[int] | None = None, samples: int = 200,
                            seed: int = 0, level: float = 0.95,
                            prior: float = DEFAULT_PRIOR) -> dict[Hashable, tuple[float, float]]:
    """Percentile bootstrap interval of each log-strength, resampling votes.

    Drawing len(votes) votes with replacement is the same as drawing multinomial counts
    over the distinct vote cells with probabilities count/total, which is what this does.
    """
    import numpy as np

    names, left, right, outcome, counts = _index_votes(votes, weights)
    if not names:
        return {}
    rng = np.random.default_rng(seed)
    fits = np.empty((samples, len(names)))
    total = int(counts.sum())
    for sample in range(samples):
        weights = rng.multinomial(total, counts / total).astype(float)
        fits[sample] = _fit(len(names), left, right, outcome, weights, prior)
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(fits, [tail, 100 - tail], axis=0)
    return {name: (float(lo), float(hi)) for name, lo, hi in zip(names, low, high)}


def win_rates(votes: Iterable[Vote], *, weights: Iterable[int] | None = None) -> dict[Hashable, dict[str, float]]:
    """Per name: games, wins, ties, losses and win rate (ties count half)."""
    table: dict[Hashable, dict[str, float]] = {}
    for (a, b, result), weight in zip(votes, itertools.repeat(1) if weights is None else weights):
        for name, score in ((a, result), (b, 1.0 - result)):
            row = table.setdefault(name, {"games": 0, "wins": 0, "ties": 0, "losses": 0})
            row["games"] += weight
            row["wins" if score == 1 else "losses" if score == 0 else "ties"] += weight
    for row in table.values():
        row["win_rate"] = (row["wins"] + 0.5 * row["ties"]) / row["games"]
    return table


def position_bias(winners: Iterable[str]) -> dict[str, float]:
    """How often the left output wins among decided (non-tie) votes, with a 95% Wilson
    interval; 0.5 means no bias. `winners` are "left" | "right" | "tie"."""
    counts = {"left": 0, "right": 0, "tie": 0}
    for winner in winners:
        counts[winner] += 1
    decided = counts["left"] + counts["right"]
    share = counts["left"] / decided if decided else float("nan")
    low, high = wilson_interval(counts["left"], decided)
    return {"left_wins": counts["left"], "right_wins": counts["right"], "ties": counts["tie"],
            "left_share": share, "low": low, "high": high}


def wilson_interval(successes: int, trials: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval for a proportion (well-behaved at 0 and 1 and small n)."""
    if trials == 0:
        return float("nan"), float("nan")
    share = successes / trials
    centre = (share + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return centre - half, centre + half


def mean_interval(values: Sequence[float], *, weights: Sequence[int] | None = None, samples: int = 1000,
                  seed: int = 0, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): percentile bootstrap interval of the mean of `values` (each
    counted `weights[i]` times when given: {score: how many ratings gave it})."""
    import numpy as np

    if weights is None:
        values_seen, counts = np.unique(np.asarray(values, dtype=float), return_counts=True)
    else:
        values_seen, counts = np.asarray(values, dtype=float), np.asarray(weights, dtype=np.int64)
    size = int(counts.sum())
    if size == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(counts @ values_seen / size)
    if size == 1:
        return mean, float("nan"), float("nan")  # one rating says nothing about spread
    # Resampling n values with replacement = multinomial counts over the distinct values
    # (rubric scores take a handful), so the cost does not grow with n.
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(size, counts / size, size=samples)
    means = draws @ values_seen / size
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return mean, float(low), float(high)


def quadratic_weighted_kappa(first: Sequence[int], second: Sequence[int], scale: tuple[int, int]) -> float:
    """Cohen's weighted kappa with quadratic weights for paired scores on `scale`.

    κ = 1 − Σ w_ij O_ij / Σ w_ij E_ij, with O the observed joint proportions, E the
    product of the marginals and w_ij = (i − j)² / (k − 1)². NaN when undefined (no pairs,
    or both raters used a single identical score so no disagreement was possible).
    """
    if len(first) != len(second):
        raise ValueError("kappa needs the same number of first and second scores")
    low, high = scale
    k = high - low + 1
    if not first or k < 2:
        return float("nan")
    observed = [[0.0] * k for _ in range(k)]
    for a, b in zip(first, second):
        if not (low <= a <= high and low <= b <= high):
            raise ValueError(f"score pair ({a}, {b}) outside the scale {low}–{high}")
        observed[a - low][b - low] += 1 / len(first)
    row_totals = [sum(row) for row in observed]
    column_totals = [sum(observed[i][j] for i in range(k)) for j in range(k)]
    disagreement = expected = 0.0
    for i in range(k):
        for j in range(k):
            weight = (i - j) ** 2 / (k - 1) ** 2
            disagreement += weight * observed[i][j]
            expected += weight * row_totals[i] * column_totals[j]
    return float("nan") if expected == 0 else 1.0 - disagreement / expected


def krippendorff_alpha(units: Mapping[Hashable, Mapping[Hashable, float]], *, level: str = "interval") -> float:
    """Krippendorff's alpha for `units` = {unit: {rater: value}} (missing values allowed).

    α = 1 − (n − 1) Σ_ck o_ck δ²_ck / Σ_ck n_c n_k δ²_ck, with o the coincidence matrix
    (each ordered pair of values within a unit weighted 1/(m_u − 1)), n_c its margins,
    and δ² = (c − k)² (interval) or, for ordinal data, (Σ_{g=c..k} n_g − (n_c + n_k)/2)².
    Units with fewer than two values are not pairable and are dropped.
    """
    if level not in ("interval", "ordinal"):
        raise ValueError(f"level must be 'interval' or 'ordinal', got {level!r}")
    coincidence: dict[tuple[float, float], float] = {}
    for ratings in units.values():
        values = [v for v in ratings.values() if v is not None]
        if len(values) < 2:
            continue
        for i, a in enumerate(values):
            for j, b in enumerate(values):
                if i != j:
                    coincidence[(a, b)] = coincidence.get((a, b), 0.0) + 1.0 / (len(values) - 1)
    margins: dict[float, float] = {}
    for (a, _), count in coincidence.items():
        margins[a] = margins.get(a, 0.0) + count
    total = sum(margins.values())
    if total <= 1:
        return float("nan")
    ordered = sorted(margins)

    def delta(c: float, k: float) -> float:
        if level == "interval":
            return (c - k) ** 2
        lo, hi = sorted((c, k))
        between = sum(margins[g] for g in ordered if lo <= g <= hi)
        return (between - (margins[c] + margins[k]) / 2) ** 2

    observed = sum(count * delta(a, b) for (a, b), count in coincidence.items())
    expected = sum(margins[c] * margins[k] * delta(c, k) for c in ordered for k in ordered)
    return float("nan") if expected == 0 else 1.0 - (total - 1) * observed / expected
