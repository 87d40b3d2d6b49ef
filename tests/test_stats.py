"""evals.stats against independent computations: hand formulas, scipy and statsmodels."""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from evals import stats
from evals.stats import PairingError, StatsConfig

Z95 = 1.959963984540054


def hand_wilson(count: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson (1927) score interval written out."""
    p = count / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


@pytest.mark.parametrize(("count", "n"), [(8, 10), (0, 10), (10, 10), (1, 3), (993, 1000)])
def test_wilson_matches_the_formula(count: int, n: int) -> None:
    est = stats.wilson(count, n)
    assert est is not None
    lo, hi = hand_wilson(count, n)
    assert (est.lower_ci, est.upper_ci) == (pytest.approx(lo, abs=1e-12), pytest.approx(hi))
    assert est.point == count / n and est.count == count and est.n == n and est.method == "wilson"


def test_wilson_8_of_10_reference_values() -> None:
    est = stats.wilson(8, 10)
    assert est is not None
    assert est.lower_ci == pytest.approx(0.4901625, abs=1e-7)
    assert est.upper_ci == pytest.approx(0.9433178, abs=1e-7)
    wider = stats.wilson(8, 10, StatsConfig(confidence=0.99))
    assert wider is not None and wider.lower_ci < est.lower_ci and wider.upper_ci > est.upper_ci


def test_empty_samples_give_no_estimate() -> None:
    empty = np.zeros(0)
    assert stats.wilson(0, 0) is None
    assert stats.rate(empty) is None
    assert stats.mean(empty) is None
    assert stats.quantile(empty, 0.5) is None
    assert stats.pass_at_k(np.zeros(0, int), np.zeros(0, int), 1) is None


def test_rate_with_singleton_clusters_is_plain_wilson() -> None:
    values = np.array([1, 1, 0, 1, 0, 1, 1, 1, 1, 0], dtype=bool)
    assert stats.rate(values, np.arange(10)) == stats.wilson(7, 10)


def test_clustered_rate_uses_the_design_effect() -> None:
    # 10 scenarios x 3 epochs; each scenario always passes or always fails.
    values = np.repeat([1, 1, 1, 1, 1, 0, 0, 0, 0, 0], 3).astype(bool)
    clusters = np.repeat(np.arange(10), 3)
    # linearised variance: S/(S-1) * sum((y_s - p m_s)^2) / n^2 over p(1-p)/n
    deff = (10 / 9) * (10 * 1.5**2) / 30**2 / (0.25 / 30)
    assert stats.design_effect(values, clusters) == pytest.approx(deff)
    est = stats.rate(values, clusters)
    assert est is not None and est.method == "wilson-clustered" and est.n == 30
    lo, hi = hand_wilson_float(15 / deff, 30 / deff)
    assert (est.lower_ci, est.upper_ci) == (pytest.approx(lo), pytest.approx(hi))
    plain = stats.wilson(15, 30)
    assert plain is not None and est.lower_ci < plain.lower_ci


def hand_wilson_float(count: float, n: float) -> tuple[float, float]:
    p, z = count / n, Z95
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


@pytest.mark.parametrize("n", [40, 300, 2500])
def test_means_equal_scipy_bootstrap_row_by_row(n: int) -> None:
    rng = np.random.default_rng(n)
    rows = np.stack([rng.normal(size=n), rng.integers(0, 2, n), rng.gamma(2.0, size=n)])
    method = "BCa" if n <= stats.BCA_MAX_N else "percentile"
    for row, est in zip(rows, stats.means(rows), strict=True):
        ref = sps.bootstrap(
            (row,), np.mean, n_resamples=2000, method=method, rng=np.random.default_rng(0)
        )
        assert est.point == pytest.approx(row.mean())
        assert est.lower_ci == pytest.approx(ref.confidence_interval.low, abs=1e-12)
        assert est.upper_ci == pytest.approx(ref.confidence_interval.high, abs=1e-12)
        assert est.method == f"bootstrap-{method.lower()}" and est.n == n
        assert stats.mean(row) == est  # stacking rows does not change any row's numbers


def test_ratio_equals_scipy_paired_bootstrap() -> None:
    rng = np.random.default_rng(1)
    num, den = rng.random(200), rng.integers(1, 4, 200).astype(float)
    est = stats.ratio(num, den)
    ref = sps.bootstrap(
        (num, den),
        lambda a, b, axis=-1: a.sum(axis) / b.sum(axis),
        paired=True,
        n_resamples=2000,
        rng=np.random.default_rng(0),
    )
    assert est is not None and est.point == pytest.approx(num.sum() / den.sum())
    assert est.lower_ci == pytest.approx(ref.confidence_interval.low, abs=1e-12)
    assert est.upper_ci == pytest.approx(ref.confidence_interval.high, abs=1e-12)


def test_clustered_mean_bootstraps_whole_clusters() -> None:
    rng = np.random.default_rng(2)
    values, clusters = rng.normal(size=60), np.repeat(np.arange(20), 3)
    est = stats.mean(values, clusters)
    sums = np.bincount(clusters, weights=values)
    ref = stats.ratio(sums, np.full(20, 3.0), n=60)
    assert est is not None and ref is not None and est.n == 60
    assert (est.point, est.lower_ci, est.upper_ci) == pytest.approx(
        (values.mean(), ref.lower_ci, ref.upper_ci), abs=1e-12
    )


@pytest.mark.parametrize("values", [[3.5], [2.0, 2.0, 2.0, 2.0]])
def test_degenerate_samples_have_a_point_interval(values: list[float]) -> None:
    for est in (stats.mean(np.array(values)), stats.quantile(np.array(values), 0.95)):
        assert est is not None and est.method == "degenerate"
        assert est.lower_ci == est.point == est.upper_ci == values[0]


def test_quantile_uses_the_order_statistic_interval() -> None:
    rng = np.random.default_rng(3)
    latency = rng.gamma(4.0, 150.0, size=500)
    est = stats.quantile(latency, 0.95)
    ci = sps.quantile_test(latency, p=0.95).confidence_interval(0.95)
    assert est is not None and est.point == pytest.approx(np.quantile(latency, 0.95))
    assert (est.lower_ci, est.upper_ci) == (ci.low, ci.high)
    assert est.lower_ci <= est.point <= est.upper_ci
    few = stats.quantile(np.arange(10.0), 0.95)  # 10 values cannot bound a p95 from above
    assert few is not None and few.upper_ci == math.inf and few.lower_ci == 7.0


def brute_pass_at_k(n: int, c: int, k: int) -> tuple[float, float]:
    """P(some / every one of k tries drawn without replacement succeeds), by enumeration."""
    outcomes = [1] * c + [0] * (n - c)
    subsets = list(combinations(outcomes, k))
    total = len(subsets)
    return sum(any(s) for s in subsets) / total, sum(all(s) for s in subsets) / total


def test_pass_at_k_hand_values() -> None:
    n, c = np.array([5, 5, 5]), np.array([2, 5, 0])
    at2, hat2 = stats.pass_at_k(n, c, 2), stats.pass_hat_k(n, c, 2)
    assert at2 is not None and at2.point == pytest.approx((0.7 + 1.0 + 0.0) / 3)
    assert hat2 is not None and hat2.point == pytest.approx((0.1 + 1.0 + 0.0) / 3)
    assert at2.n == 3  # scenarios
    with pytest.raises(ValueError, match="k=6"):
        stats.pass_at_k(n, c, 6)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 8).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n), st.integers(1, n)))
)
def test_pass_at_k_matches_enumeration(case: tuple[int, int, int]) -> None:
    n, c, k = case
    at_k, hat_k = brute_pass_at_k(n, c, k)
    assert stats.pass_at_k(np.array([n]), np.array([c]), k).point == pytest.approx(at_k)
    assert stats.pass_hat_k(np.array([n]), np.array([c]), k).point == pytest.approx(hat_k)


def test_mcnemar_on_a_hand_built_table() -> None:
    # baseline pass/candidate fail: 1 pair; baseline fail/candidate pass: 9; concordant: 10
    base = np.array([1] * 5 + [1] * 1 + [0] * 9 + [0] * 5, dtype=bool)
    cand = np.array([1] * 5 + [0] * 1 + [1] * 9 + [0] * 5, dtype=bool)
    delta = stats.paired_delta(cand, base, binary=True, label="success@1 on x")
    assert delta.test == "mcnemar-exact" and delta.n_pairs == 20 and delta.unit == "episode"
    assert delta.p_value == pytest.approx(2 * (1 + 10) / 2**10)  # two-sided exact binomial
    assert delta.p_value == pytest.approx(sps.binomtest(1, 10, 0.5).pvalue)
    assert delta.point == pytest.approx(8 / 20)
    ref = sps.bootstrap(
        (cand.astype(float) - base,), np.mean, n_resamples=2000, rng=np.random.default_rng(0)
    )
    assert delta.lower_ci == pytest.approx(ref.confidence_interval.low, abs=1e-12)
    assert delta.upper_ci == pytest.approx(ref.confidence_interval.high, abs=1e-12)


def test_wilcoxon_for_continuous_pairs() -> None:
    rng = np.random.default_rng(4)
    base = rng.normal(size=40)
    cand = base + rng.normal(0.3, 1.0, size=40)
    cand[:5] = base[:5]  # some zero differences
    delta = stats.paired_delta(cand, base, binary=False, label="reward on x")
    ref = sps.wilcoxon(cand - base, zero_method="pratt")
    assert delta.test == "wilcoxon-signed-rank" and delta.p_value == pytest.approx(ref.pvalue)
    same = stats.paired_delta(base, base, binary=False, label="reward on x")
    assert same.p_value == 1.0 and same.point == same.lower_ci == same.upper_ci == 0.0


def test_paired_epochs_are_tested_per_scenario() -> None:
    base = np.array([0, 0, 1, 0, 1, 1, 0, 0, 0, 1, 0, 1], dtype=float)
    cand = np.array([1, 1, 1, 0, 1, 1, 1, 1, 0, 1, 1, 1], dtype=float)
    clusters = np.repeat(np.arange(4), 3)
    delta = stats.paired_delta(cand, base, binary=True, label="x", clusters=clusters)
    per_scenario = (cand - base).reshape(4, 3).mean(axis=1)
    assert delta.unit == "scenario" and delta.n_pairs == 12
    assert delta.p_value == pytest.approx(sps.wilcoxon(per_scenario, zero_method="pratt").pvalue)
    assert delta.point == pytest.approx(per_scenario.mean())


def test_zero_pairs_name_the_metric_and_slice() -> None:
    with pytest.raises(PairingError, match=r"delta\.success@1 on slice 'division_hard'"):
        stats.paired_delta(
            np.zeros(0),
            np.zeros(0),
            binary=True,
            label="delta.success@1 on slice 'division_hard'",
            n_unpaired=7,
        )


def test_same_inputs_same_numbers() -> None:
    rng = np.random.default_rng(5)
    values = rng.normal(size=700)
    cand, base = rng.integers(0, 2, 300), rng.integers(0, 2, 300)
    before = stats.mean(values)
    stats.mean(rng.normal(size=50))  # an unrelated bootstrap in between changes nothing
    assert stats.mean(values.copy()) == before
    first = stats.paired_delta(cand, base, binary=True, label="x")
    assert first == stats.paired_delta(cand.copy(), base.copy(), binary=True, label="x")
    other_seed = stats.mean(values, cfg=StatsConfig(seed=1))
    assert before is not None and other_seed is not None
    assert other_seed.point == before.point  # the seed moves the interval, not the mean
    assert (other_seed.lower_ci, other_seed.upper_ci) != (before.lower_ci, before.upper_ci)
