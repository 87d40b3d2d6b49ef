"""evals.stats on small hand-checked samples: edges, settings and fall-backs.

Every expected value here is worked out by hand (or by scipy/statsmodels called
directly, never through `evals.stats`): a one-episode rate, Wilson's exact ends, the
design effect of a hand-built clustered sample, the BCa → percentile fall-back, the
confidence level reaching every interval, and the messages of bad inputs.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import stats as sps

from evals import stats
from evals.stats import PairingError, StatsConfig

Z90 = 1.6448536269514722  # two-sided 90%: Phi^-1(0.95)
CFG90 = StatsConfig(confidence=0.90)


def hand_wilson(count: float, n: float, z: float) -> tuple[float, float]:
    p = count / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"confidence": 0.0}, "confidence must be in (0, 1), got 0.0"),
        ({"confidence": 1.0}, "confidence must be in (0, 1), got 1.0"),
        ({"confidence": 1.5}, "confidence must be in (0, 1), got 1.5"),
        ({"n_resamples": 99}, "n_resamples must be at least 100, got 99"),
    ],
)
def test_bad_settings_are_refused_with_the_value(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError) as raised:
        StatsConfig(**kwargs)
    assert str(raised.value) == message


def test_the_smallest_settings_allowed() -> None:
    cfg = StatsConfig(confidence=0.5, n_resamples=100)
    assert (cfg.confidence, cfg.n_resamples) == (0.5, 100)


def test_a_one_episode_rate_is_an_estimate() -> None:
    est = stats.rate(np.array([True]))
    assert est is not None
    # Wilson at n=1, count=1: centre ± half = (1 + z²/2 ± z²/2) / (1 + z²)
    z2 = 1.959963984540054**2
    assert (est.point, est.n, est.count, est.method) == (1.0, 1, 1, "wilson")
    assert est.lower_ci == pytest.approx(1 / (1 + z2)) and est.upper_ci == 1.0


def test_rate_counts_truthy_values() -> None:
    est = stats.rate(np.array([2, 0, 0]))  # a count column: 2 is one true value
    assert est is not None and (est.point, est.count) == (pytest.approx(1 / 3), 1)


@pytest.mark.parametrize("n", [7, 10, 13, 14])
def test_wilson_ends_are_exact_at_zero_and_all(n: int) -> None:
    # statsmodels' Wilson at alpha = 1 - 0.95 misses 0 at n = 7 and 14 (by 2.8e-17) and
    # 1 at n = 10 and 13 (0.9999999999999999)
    none, every = stats.wilson(0, n), stats.wilson(n, n)
    assert none is not None and none.lower_ci == 0.0
    assert every is not None and every.upper_ci == 1.0
    clusters = np.repeat(np.arange(n), 2)[:n]  # repeats: the clustered path
    for values, end in ((np.zeros(n, bool), "lower_ci"), (np.ones(n, bool), "upper_ci")):
        est = stats.rate(values, clusters)
        assert est is not None and est.method == "wilson-clustered"
        assert getattr(est, end) == (0.0 if end == "lower_ci" else 1.0)


def test_rate_uses_the_configured_confidence() -> None:
    est = stats.rate(np.array([True] * 7 + [False] * 3), cfg=CFG90)
    lo, hi = hand_wilson(7, 10, Z90)
    assert est is not None
    assert (est.lower_ci, est.upper_ci) == (pytest.approx(lo), pytest.approx(hi))


def test_clustered_rate_of_an_uneven_sample() -> None:
    # 4 scenarios x 3 epochs passing 3, 3, 1 and 0 times: p = 7/12
    values = np.array([1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0], dtype=bool)
    clusters = np.repeat(np.arange(4), 3)
    # S/(S-1) Σ(y_s - p m_s)² / n² = 4/3 x 6.75 / 144 = 1/16; p(1-p)/n = 35/1728
    deff = (1 / 16) / (35 / 1728)
    assert deff == pytest.approx(108 / 35)
    assert stats.design_effect(values, clusters) == pytest.approx(108 / 35)
    est = stats.rate(values, clusters, CFG90)
    lo, hi = hand_wilson(7 / deff, 12 / deff, Z90)
    assert est is not None and (est.point, est.n, est.count) == (pytest.approx(7 / 12), 12, 7)
    assert est.method == "wilson-clustered"
    assert (est.lower_ci, est.upper_ci) == (pytest.approx(lo), pytest.approx(hi))


def test_design_effect_edges() -> None:
    two_each = np.repeat(np.arange(3), 2)
    # every cluster half right: the clusters agree exactly, no extra variance; floor is 1
    assert stats.design_effect(np.array([1, 0, 1, 0, 1, 0], bool), two_each) == 1.0
    assert stats.design_effect(np.zeros(6, bool), two_each) == 1.0  # p = 0
    assert stats.design_effect(np.ones(6, bool), two_each) == 1.0  # p = 1
    one = np.zeros(5, int)
    assert stats.design_effect(np.array([1, 0, 1, 1, 0], bool), one) == 5.0  # one cluster
    assert stats.design_effect(np.zeros(5, bool), one) == 1.0
    assert stats.design_effect(np.ones(5, bool), one) == 1.0
    # two clusters (1,1,1) and (0,0,0): 2 x (1.5² + 1.5²) / 36 over 0.25/6
    two = np.array([1, 1, 1, 0, 0, 0], bool)
    assert stats.design_effect(two, np.repeat([0, 1], 3)) == pytest.approx(0.25 / (0.25 / 6))


def test_mean_of_two_values_is_bootstrapped() -> None:
    est = stats.mean(np.array([1.0, 3.0]))
    # resampling two values gives means 1, 2 or 3; the BCa interval spans the extremes
    assert est is not None and est.method == "bootstrap-bca"
    assert (est.point, est.lower_ci, est.upper_ci, est.n) == (2.0, 1.0, 3.0, 2)


def test_means_needs_an_observation() -> None:
    with pytest.raises(ValueError, match=r"^means\(\) needs at least one observation$"):
        stats.means(np.zeros((2, 0)))


def test_bca_falls_back_to_percentile_when_its_interval_is_undefined() -> None:
    # clusters of 2, 4 and 2 episodes, each half right: every resample's ratio is 0.5,
    # so BCa's bias correction is infinite (an undefined interval) and percentile answers
    values = np.array([1, 0, 1, 1, 0, 0, 0, 1], float)
    clusters = np.array([0, 0, 1, 1, 1, 1, 2, 2])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the fall-back is silent
        est = stats.mean(values, clusters)
    assert est is not None and est.method == "bootstrap-percentile"
    assert (est.point, est.lower_ci, est.upper_ci, est.n) == (0.5, 0.5, 0.5, 8)


def test_equal_cluster_totals_of_unequal_sizes_still_vary() -> None:
    # totals 2, 2, 2 over 2, 4, 2 episodes: means 1, 0.5, 1; the ratio ranges 0.5 .. 1
    values = np.array([1, 1, 1, 1, 0, 0, 1, 1], float)
    est = stats.mean(values, np.array([0, 0, 1, 1, 1, 1, 2, 2]))
    assert est is not None and est.method == "bootstrap-bca"
    assert (est.point, est.lower_ci, est.upper_ci) == (0.75, 0.5, 1.0)


def test_two_clusters_of_unequal_size_with_equal_totals_vary() -> None:
    # clusters (1) and (1, 0): totals 1 and 1, means 1 and 0.5; resampled ratios 0.5 .. 1
    est = stats.mean(np.array([1.0, 1.0, 0.0]), np.array([0, 1, 1]))
    assert est is not None and est.method == "bootstrap-bca"
    assert (est.point, est.lower_ci, est.upper_ci) == (pytest.approx(2 / 3), 0.5, 1.0)


def test_constant_clustered_values_are_degenerate() -> None:
    est = stats.mean(np.full(6, 2.0), np.repeat([0, 1, 2], 2))
    assert est is not None and est.method == "degenerate"
    assert (est.point, est.lower_ci, est.upper_ci) == (2.0, 2.0, 2.0)


def test_bca_up_to_its_limit_then_percentile() -> None:
    at_limit = np.arange(stats.BCA_MAX_N, dtype=float) % 7
    est = stats.mean(at_limit)
    assert est is not None and est.method == "bootstrap-bca"
    assert stats.BCA_MAX_N == 2000


def test_mean_interval_uses_the_configured_confidence() -> None:
    values = np.array([0.1, 0.4, 0.35, 0.8, 0.05, 0.6, 0.9, 0.2])
    est = stats.mean(values, cfg=CFG90)
    ref = sps.bootstrap(
        (values,), np.mean, n_resamples=2000, confidence_level=0.9, rng=np.random.default_rng(0)
    )
    assert est is not None
    assert est.lower_ci == pytest.approx(ref.confidence_interval.low, abs=1e-12)
    assert est.upper_ci == pytest.approx(ref.confidence_interval.high, abs=1e-12)


def test_ratio_edges() -> None:
    assert stats.ratio(np.array([1.0, 2.0]), np.array([0.0, 0.0])) is None  # nothing to divide by
    assert stats.ratio(np.zeros(0), np.zeros(0)) is None
    one = stats.ratio(np.array([0.5]), np.array([1.0]))
    assert one is not None and (one.point, one.lower_ci, one.upper_ci) == (0.5, 0.5, 0.5)
    assert one.method == "degenerate" and one.n == 1
    tiny = stats.ratio(np.array([0.3, 0.1]), np.array([0.25, 0.25]), n=40)
    assert tiny is not None and tiny.point == pytest.approx(0.8) and tiny.n == 40


def test_quantile_without_a_bound_says_infinite() -> None:
    few = stats.quantile(np.arange(10.0), 0.05, CFG90)
    assert few is not None and few.lower_ci == -math.inf and few.method == "order-statistic"
    two = stats.quantile(np.array([1.0, 3.0]), 0.5)
    assert two is not None and two.method == "order-statistic"
    assert (two.point, two.lower_ci, two.upper_ci, two.n) == (2.0, -math.inf, math.inf, 2)


def test_pass_at_k_intervals_use_the_configured_confidence() -> None:
    n, c = np.array([4, 4, 4, 4, 4, 4]), np.array([0, 1, 2, 3, 4, 2])
    at1 = np.array([0.0, 0.25, 0.5, 0.75, 1.0, 0.5])  # 1 - C(n-c,1)/C(n,1) = c/n
    hat2 = np.array([0.0, 0.0, 1 / 6, 0.5, 1.0, 1 / 6])  # C(c,2)/C(4,2)
    for fn, k, per_scenario in ((stats.pass_at_k, 1, at1), (stats.pass_hat_k, 2, hat2)):
        est = fn(n, c, k, CFG90)
        ref = sps.bootstrap(
            (per_scenario,),
            np.mean,
            n_resamples=2000,
            confidence_level=0.9,
            rng=np.random.default_rng(0),
        )
        assert est is not None and est.point == pytest.approx(per_scenario.mean())
        assert est.lower_ci == pytest.approx(ref.confidence_interval.low, abs=1e-12)
        assert est.upper_ci == pytest.approx(ref.confidence_interval.high, abs=1e-12)
    assert stats.pass_hat_k(np.zeros(0, int), np.zeros(0, int), 1) is None


@pytest.mark.parametrize(
    ("samples", "correct", "k", "message"),
    [
        ([3], [4], 1, "need 0 <= correct <= samples for every scenario"),
        ([3], [-1], 1, "need 0 <= correct <= samples for every scenario"),
        ([3, 3], [1], 1, "need 0 <= correct <= samples for every scenario"),
        ([5, 3], [1, 1], 0, "k=0 needs 1 <= k <= samples per scenario (fewest: 3)"),
        ([5, 3], [1, 1], 4, "k=4 needs 1 <= k <= samples per scenario (fewest: 3)"),
        ([], [], 0, "k=0 needs 1 <= k <= samples per scenario (fewest: 0)"),
    ],
)
def test_pass_at_k_refuses_impossible_counts(
    samples: list[int], correct: list[int], k: int, message: str
) -> None:
    with pytest.raises(ValueError) as raised:
        stats.pass_at_k(np.array(samples, int), np.array(correct, int), k)
    assert str(raised.value) == message


def test_paired_delta_reports_its_interval_method_and_unpaired_count() -> None:
    cand = np.array([1, 1, 0, 1, 1, 0, 1, 1], float)
    base = np.array([0, 1, 0, 0, 1, 1, 0, 1], float)
    delta = stats.paired_delta(cand, base, binary=True, label="x")
    assert (delta.n_unpaired, delta.method, delta.unit) == (0, "bootstrap-bca", "episode")
    assert delta.point == 0.25  # 3 gained, 1 lost over 8 pairs
    assert delta.p_value == pytest.approx(sps.binomtest(1, 4, 0.5).pvalue)  # exact: 0.625
    counted = stats.paired_delta(cand, base, binary=True, label="x", n_unpaired=7)
    assert counted.n_unpaired == 7


def test_paired_delta_uses_the_configured_confidence() -> None:
    rng = np.random.default_rng(11)  # continuous values: no tied resample means
    base = rng.normal(size=12)
    cand = base + rng.normal(0.2, 1.0, size=12)
    delta = stats.paired_delta(cand, base, binary=False, label="reward", cfg=CFG90)
    ref = sps.bootstrap(
        (cand - base,), np.mean, n_resamples=2000, confidence_level=0.9,
        rng=np.random.default_rng(0),
    )  # fmt: skip
    assert delta.lower_ci == pytest.approx(ref.confidence_interval.low, abs=1e-12)
    assert delta.upper_ci == pytest.approx(ref.confidence_interval.high, abs=1e-12)


def test_singleton_clusters_keep_episode_pairs() -> None:
    cand = np.array([1, 1, 1, 1, 1, 1, 0, 1, 1, 1], bool)
    base = np.array([0, 0, 0, 0, 0, 0, 0, 1, 1, 1], bool)
    delta = stats.paired_delta(cand, base, binary=True, label="x", clusters=np.arange(10))
    assert (delta.unit, delta.test) == ("episode", "mcnemar-exact")
    assert delta.p_value == pytest.approx(2 / 2**6)  # 6 gained, 0 lost: 2 x 0.5^6


def test_paired_deltas_rows_default_to_no_unpaired() -> None:
    cand = np.array([[1.0, 0.0, 1.0], [0.5, 0.25, 1.0]])
    base = np.array([[0.0, 0.0, 1.0], [0.5, 0.5, 0.0]])
    deltas = stats.paired_deltas(cand, base, [True, False], ["a", "b"])
    assert [d.n_unpaired for d in deltas] == [0, 0]
    assert [d.point for d in deltas] == [pytest.approx(1 / 3), pytest.approx(0.75 / 3)]
    assert [d.test for d in deltas] == ["mcnemar-exact", "wilcoxon-signed-rank"]


def test_misaligned_pairs_name_the_first_label() -> None:
    with pytest.raises(ValueError) as raised:
        stats.paired_deltas(np.zeros((2, 3)), np.zeros((2, 4)), [True, True], ["first", "second"])
    assert str(raised.value) == "first: candidate and baseline arrays are not aligned"
    with pytest.raises(PairingError) as no_pairs:
        stats.paired_deltas(np.zeros((1, 0)), np.zeros((1, 0)), [True], ["m on s"], n_unpaired=[3])
    assert str(no_pairs.value) == (
        "m on s: no paired episodes (no (env_id, scenario_id, epoch) present in both runs "
        "with this metric; 3 unpaired episodes excluded)"
    )


def test_a_delta_built_by_hand_has_no_unpaired_episodes() -> None:
    delta = stats.Delta(point=0.1, lower_ci=0.0, upper_ci=0.2, p_value=0.5, n_pairs=4, test="t")
    assert (delta.n_unpaired, delta.unit, delta.method) == (0, "episode", "")
