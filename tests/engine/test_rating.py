"""Rating statistics against known truths and hand-computed examples."""

from __future__ import annotations

import math
import random

import pytest

from engine.judge import rating

TRUE_STRENGTHS = {"best": 1.2, "good": 0.4, "fair": -0.3, "poor": -1.3}  # log-strengths, mean 0


def synthetic_votes(count: int, seed: int, strengths=TRUE_STRENGTHS) -> list[tuple[str, str, float]]:
    rng = random.Random(seed)
    names = list(strengths)
    votes = []
    for _ in range(count):
        a, b = rng.sample(names, 2)
        p_a = 1 / (1 + math.exp(strengths[b] - strengths[a]))
        votes.append((a, b, 1 if rng.random() < p_a else 0))
    return votes


def test_bradley_terry_recovers_a_known_ranking():
    fitted = rating.bradley_terry(synthetic_votes(6000, seed=1))
    assert sorted(fitted, key=fitted.get, reverse=True) == ["best", "good", "fair", "poor"]
    for name, truth in TRUE_STRENGTHS.items():
        assert fitted[name] == pytest.approx(truth, abs=0.15)
    assert sum(fitted.values()) == pytest.approx(0.0, abs=1e-9)


def test_ties_count_half_and_equal_records_give_equal_strengths():
    votes = [("a", "b", 0.5)] * 10 + [("a", "c", 1)] * 5 + [("b", "c", 1)] * 5
    fitted = rating.bradley_terry(votes)
    assert fitted["a"] == pytest.approx(fitted["b"], abs=1e-6)
    assert fitted["a"] > fitted["c"]
    # One side of a tie-heavy record wins a little more: it must rank a little higher.
    fitted = rating.bradley_terry([("a", "b", 0.5)] * 10 + [("a", "b", 1)])
    assert fitted["a"] > fitted["b"]


def test_a_never_winning_item_stays_finite_and_last():
    votes = [("a", "z", 1)] * 20 + [("b", "z", 1)] * 20 + [("a", "b", 1), ("a", "b", 0)]
    fitted = rating.bradley_terry(votes)
    assert all(math.isfinite(value) for value in fitted.values())
    assert min(fitted, key=fitted.get) == "z"


def test_votes_are_checked():
    assert rating.bradley_terry([]) == {}
    with pytest.raises(ValueError, match="outcome"):
        rating.bradley_terry([("a", "b", 2)])
    with pytest.raises(ValueError, match="itself"):
        rating.bradley_terry([("a", "a", 1)])


def test_bootstrap_intervals_cover_the_truth_and_widen_for_small_samples():
    # Coverage over independent data sets: a 95% interval should hold the truth ~95% of
    # the time; allow for Monte-Carlo noise (80 intervals) but catch a broken bootstrap.
    covered = total = 0
    for seed in range(20):
        intervals = rating.bradley_terry_intervals(synthetic_votes(1500, seed=100 + seed), samples=100, seed=seed)
        for name, truth in TRUE_STRENGTHS.items():
            low, high = intervals[name]
            covered += low <= truth <= high
            total += 1
    assert covered / total >= 0.85
    large = rating.bradley_terry_intervals(synthetic_votes(6000, seed=2), samples=100, seed=0)
    small = rating.bradley_terry_intervals(synthetic_votes(150, seed=3), samples=100, seed=0)
    for name in TRUE_STRENGTHS:
        assert small[name][1] - small[name][0] > 2 * (large[name][1] - large[name][0])


def test_mean_interval_contains_the_mean_and_widens_for_small_samples():
    rng = random.Random(4)
    many = [rng.choice([2, 3, 3, 4, 5]) for _ in range(2000)]
    mean, low, high = rating.mean_interval(many, seed=0)
    assert low <= 3.4 <= high and mean == pytest.approx(sum(many) / len(many))
    _, small_low, small_high = rating.mean_interval(many[:15], seed=0)
    assert small_high - small_low > 3 * (high - low)
    assert math.isnan(rating.mean_interval([4])[1])


def test_quadratic_weighted_kappa_against_hand_computed_values():
    # O = 1/3 on (1,1), (2,2), (3,4); Σ w·O = 1/48; Σ w·E = 21/144 → κ = 1 − 3/21 = 6/7.
    assert rating.quadratic_weighted_kappa([1, 2, 3], [1, 2, 4], (1, 5)) == pytest.approx(6 / 7)
    assert rating.quadratic_weighted_kappa([1, 3, 5, 2], [1, 3, 5, 2], (1, 5)) == pytest.approx(1.0)
    # Full reversal at the extremes: Σ w·O = 1, Σ w·E = 1/2 → κ = −1.
    assert rating.quadratic_weighted_kappa([1, 5], [5, 1], (1, 5)) == pytest.approx(-1.0)
    assert math.isnan(rating.quadratic_weighted_kappa([3, 3], [3, 3], (1, 5)))


def test_krippendorff_alpha_interval_and_ordinal_by_hand():
    # Interval: o11 = o22 = 2, o34 = o43 = 1; n = 6; Σ n_c n_k δ² = 82 → α = 1 − 5·2/82.
    units = {1: {"A": 1, "B": 1}, 2: {"A": 2, "B": 2}, 3: {"A": 3, "B": 4}}
    assert rating.krippendorff_alpha(units) == pytest.approx(1 - 10 / 82)
    # Ordinal on (1,1), (1,2), (2,3): n1=3, n2=2, n3=1; δ²12 = 6.25, δ²23 = 2.25, δ²13 = 16;
    # observed 17, expected 180 → α = 1 − 5·17/180. Interval on the same data: 1 − 5·4/40.
    units = {1: {"A": 1, "B": 1}, 2: {"A": 1, "B": 2}, 3: {"A": 2, "B": 3}}
    assert rating.krippendorff_alpha(units, level="ordinal") == pytest.approx(1 - 85 / 180)
    assert rating.krippendorff_alpha(units, level="interval") == pytest.approx(0.5)
    # A unit with a single value is not pairable and changes nothing.
    assert rating.krippendorff_alpha({**units, 4: {"A": 5}}, level="interval") == pytest.approx(0.5)
    assert rating.krippendorff_alpha({1: {"A": 2, "B": 2}, 2: {"A": 4, "B": 4}}) == pytest.approx(1.0)


def test_win_rates_and_position_bias():
    table = rating.win_rates([("a", "b", 1), ("a", "b", 0.5), ("b", "a", 1)])
    assert table["a"] == {"games": 3, "wins": 1, "ties": 1, "losses": 1, "win_rate": 0.5}
    bias = rating.position_bias(["left"] * 30 + ["right"] * 10 + ["tie"] * 5)
    assert (bias["left_wins"], bias["right_wins"], bias["ties"]) == (30, 10, 5)
    assert bias["left_share"] == pytest.approx(0.75)
    assert bias["low"] > 0.5  # a clear left preference is flagged as such
