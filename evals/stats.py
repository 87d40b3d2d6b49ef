"""Statistics behind every eval number: estimates with confidence intervals, paired deltas.

Contract
--------
Functions take plain numpy arrays and return an `Estimate` (one run) or a `Delta`
(candidate − baseline). An empty sample gives `None` — no estimate, never a made-up zero.
All intervals are two-sided at `StatsConfig.confidence` (default 0.95).

* **Rates** (success, violations, checks): Wilson score interval
  (`statsmodels.stats.proportion.proportion_confint(method="wilson")`); it stays inside
  [0, 1] and keeps its coverage near 0 and 1 and on small slices, where the normal
  approximation fails. `count` is the number of positive observations.
* **Means**: `scipy.stats.bootstrap` — BCa up to `BCA_MAX_N` observations, percentile
  above (BCa's jackknife costs O(n²) and its correction vanishes as n grows); the
  method used is written into `Estimate.method`.
* **Quantiles** (median, p95): percentile bootstrap. BCa's jackknife acceleration is
  unreliable for non-smooth statistics such as quantiles.
* **Degenerate samples** (n = 1, or every value equal): the interval is [point, point],
  method ``"degenerate"``: resampling cannot show any spread.
* **Clustered samples.** With `epochs > 1` a scenario contributes several correlated
  episodes (and an episode several correlated tool calls). Treating them as independent
  would make intervals too narrow, so functions accept `clusters` (one id per
  observation, e.g. the scenario): rates use Wilson with the effective sample size
  n / design-effect (Korn & Graubard 1998; method ``"wilson-clustered"``), means
  bootstrap whole clusters. With every cluster of size 1 nothing changes.
* **pass@k / pass^k**: unbiased per-scenario estimators (Chen et al. 2021; tau-bench),
  averaged over scenarios; the interval bootstraps scenarios.
* **Paired deltas.** Candidate and baseline run the same frozen scenarios, so each
  candidate episode has a baseline twin (same env_id, scenario_id, epoch). Comparing
  twins cancels scenario difficulty, which dominates the variance of an unpaired
  comparison. The tests make no normality assumption, which small slices cannot
  support: binary outcomes use the exact McNemar test (a binomial test on the
  discordant pairs); continuous values use the Wilcoxon signed-rank test
  (``zero_method="pratt"``: ties at zero are ranked, then dropped; p = 1 when every
  difference is zero). With several epochs per scenario the unit becomes the scenario
  (per-scenario mean differences, Wilcoxon). p-values are two-sided. The interval
  bootstraps the paired differences (or per-scenario differences).
* **Deterministic**: each bootstrap draws from a fresh `np.random.default_rng(seed)`, so a
  number never depends on what was computed before it; same inputs, same output.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict
from scipy import stats as sps
from scipy.special import comb
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.proportion import proportion_confint

BCA_MAX_N = 2000  # above this many observations, means use the percentile bootstrap
_MAX_BATCH_ELEMENTS = 2_000_000  # resamples x observations held in memory at once


class Estimate(BaseModel):
    """A point estimate with its confidence interval, sample size and method."""

    model_config = ConfigDict(extra="forbid", frozen=True, ser_json_inf_nan="constants")
    point: float
    lower_ci: float
    upper_ci: float
    n: int
    method: str
    count: int | None = None


class Delta(BaseModel):
    """Candidate − baseline on paired observations, with a paired test's p-value."""

    model_config = ConfigDict(extra="forbid", frozen=True, ser_json_inf_nan="constants")
    point: float
    lower_ci: float
    upper_ci: float
    p_value: float
    n_pairs: int
    test: str
    method: str = ""  # how the interval was computed
    unit: str = "episode"  # what was paired: "episode", or "scenario" when epochs > 1
    n_unpaired: int = 0  # episodes present in one run only (excluded)


class PairingError(ValueError):
    """Candidate and baseline cannot be paired for a metric/slice (names which)."""


@dataclass(frozen=True)
class StatsConfig:
    """Confidence level and the bootstrap's fixed settings (seeded: reproducible)."""

    confidence: float = 0.95
    n_resamples: int = 2000
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 < self.confidence < 1.0:
            raise ValueError(f"confidence must be in (0, 1), got {self.confidence}")
        if self.n_resamples < 100:
            raise ValueError(f"n_resamples must be at least 100, got {self.n_resamples}")


DEFAULT = StatsConfig()


def wilson(count: int, n: int, cfg: StatsConfig = DEFAULT) -> Estimate | None:
    """`count` successes out of `n`, with the Wilson score interval."""
    if n == 0:
        return None
    lo, hi = proportion_confint(count, n, alpha=1.0 - cfg.confidence, method="wilson")
    return Estimate(
        point=count / n, lower_ci=float(lo), upper_ci=float(hi), n=n, count=count, method="wilson"
    )


def rate(
    values: np.ndarray, clusters: np.ndarray | None = None, cfg: StatsConfig = DEFAULT
) -> Estimate | None:
    """Rate of True values; Wilson, on the effective sample size when `clusters` repeat."""
    values = np.asarray(values, dtype=bool)
    n = int(values.size)
    if n == 0:
        return None
    count = int(values.sum())
    if clusters is None or not _has_repeats(clusters):
        return wilson(count, n, cfg)
    deff = design_effect(values, clusters)
    lo, hi = proportion_confint(count / deff, n / deff, alpha=1.0 - cfg.confidence, method="wilson")
    return Estimate(
        point=count / n,
        lower_ci=float(lo),
        upper_ci=float(hi),
        n=n,
        count=count,
        method="wilson-clustered",
    )


def design_effect(values: np.ndarray, clusters: np.ndarray) -> float:
    """Variance of a clustered proportion relative to independent sampling (at least 1).

    Uses the linearised variance of the ratio estimator sum(y)/sum(m) over clusters.
    One cluster alone carries one independent observation (design effect = n).
    """
    y = np.asarray(values, dtype=float)
    _, codes = np.unique(clusters, return_inverse=True)
    sums = np.bincount(codes, weights=y)
    sizes = np.bincount(codes).astype(float)
    n, s = y.size, sums.size
    p = y.mean()
    if p in (0.0, 1.0):
        return 1.0
    if s == 1:
        return float(n)
    var_clustered = s / (s - 1) * np.sum((sums - p * sizes) ** 2) / n**2
    var_independent = p * (1.0 - p) / n
    return max(1.0, float(var_clustered / var_independent))


def mean(
    values: np.ndarray, clusters: np.ndarray | None = None, cfg: StatsConfig = DEFAULT
) -> Estimate | None:
    """Mean with a bootstrap interval (over whole clusters when `clusters` repeat)."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return None
    if clusters is not None and _has_repeats(clusters):
        _, codes = np.unique(clusters, return_inverse=True)
        sums = np.bincount(codes, weights=values)
        sizes = np.bincount(codes).astype(float)
        return ratio(sums, sizes, cfg, n=int(values.size))
    return _bootstrap((values,), np.mean, float(values.mean()), int(values.size), cfg, smooth=True)


def ratio(
    numerator: np.ndarray, denominator: np.ndarray, cfg: StatsConfig = DEFAULT, n: int | None = None
) -> Estimate | None:
    """sum(numerator) / sum(denominator), bootstrapping the (numerator, denominator) pairs."""
    num = np.asarray(numerator, dtype=float)
    den = np.asarray(denominator, dtype=float)
    if num.size == 0 or den.sum() <= 0:
        return None

    def statistic(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
        return a.sum(axis=axis) / b.sum(axis=axis)

    point = float(num.sum() / den.sum())
    return _bootstrap((num, den), statistic, point, n or int(num.size), cfg, smooth=True)


def quantile(values: np.ndarray, q: float, cfg: StatsConfig = DEFAULT) -> Estimate | None:
    """The q-quantile (linear interpolation, numpy's default) with a percentile bootstrap."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return None

    def statistic(a: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.quantile(a, q, axis=axis)

    point = float(np.quantile(values, q))
    return _bootstrap((values,), statistic, point, int(values.size), cfg, smooth=False)


def pass_at_k(
    n_samples: np.ndarray, n_correct: np.ndarray, k: int, cfg: StatsConfig = DEFAULT
) -> Estimate | None:
    """pass@k = mean over scenarios of 1 − C(n−c, k) / C(n, k) (Chen et al. 2021)."""
    n, c = _check_k(n_samples, n_correct, k)
    if n.size == 0:
        return None
    values = 1.0 - comb(n - c, k) / comb(n, k)
    return _bootstrap((values,), np.mean, float(values.mean()), int(n.size), cfg, smooth=True)


def pass_hat_k(
    n_samples: np.ndarray, n_correct: np.ndarray, k: int, cfg: StatsConfig = DEFAULT
) -> Estimate | None:
    """pass^k = mean over scenarios of C(c, k) / C(n, k): all k tries succeed (tau-bench)."""
    n, c = _check_k(n_samples, n_correct, k)
    if n.size == 0:
        return None
    values = comb(c, k) / comb(n, k)
    return _bootstrap((values,), np.mean, float(values.mean()), int(n.size), cfg, smooth=True)


def paired_delta(
    candidate: np.ndarray,
    baseline: np.ndarray,
    *,
    binary: bool,
    label: str,
    clusters: np.ndarray | None = None,
    n_unpaired: int = 0,
    cfg: StatsConfig = DEFAULT,
) -> Delta:
    """candidate − baseline over aligned pairs (index i of each array is one pair).

    Binary outcomes: exact McNemar; continuous: Wilcoxon signed-rank. When `clusters`
    repeat (several epochs per scenario) the pairs are first averaged per cluster and the
    per-cluster differences are tested with Wilcoxon. Zero pairs raise `PairingError`
    naming `label` (the metric and slice).
    """
    cand = np.asarray(candidate, dtype=float)
    base = np.asarray(baseline, dtype=float)
    if cand.shape != base.shape:
        raise ValueError(f"{label}: candidate and baseline arrays are not aligned")
    if cand.size == 0:
        raise PairingError(
            f"{label}: no paired episodes (no (env_id, scenario_id, epoch) present in both "
            f"runs with this metric; {n_unpaired} unpaired episodes excluded)"
        )
    unit = "episode"
    if clusters is not None and _has_repeats(clusters):
        _, codes = np.unique(clusters, return_inverse=True)
        sizes = np.bincount(codes).astype(float)
        cand = np.bincount(codes, weights=cand) / sizes
        base = np.bincount(codes, weights=base) / sizes
        binary, unit = False, "scenario"
    diff = cand - base
    if binary:
        test, p_value = "mcnemar-exact", _mcnemar_p(cand.astype(bool), base.astype(bool))
    else:
        test, p_value = "wilcoxon-signed-rank", _wilcoxon_p(diff)
    est = _bootstrap((diff,), np.mean, float(diff.mean()), int(diff.size), cfg, smooth=True)
    return Delta(
        point=est.point,
        lower_ci=est.lower_ci,
        upper_ci=est.upper_ci,
        p_value=p_value,
        n_pairs=int(np.asarray(candidate).size),
        test=test,
        method=est.method,
        unit=unit,
        n_unpaired=n_unpaired,
    )


def _mcnemar_p(candidate: np.ndarray, baseline: np.ndarray) -> float:
    """Exact McNemar on the 2x2 table rows=baseline (pass, fail), cols=candidate."""
    table = [
        [int(np.sum(baseline & candidate)), int(np.sum(baseline & ~candidate))],
        [int(np.sum(~baseline & candidate)), int(np.sum(~baseline & ~candidate))],
    ]
    return float(mcnemar(table, exact=True).pvalue)


def _wilcoxon_p(diff: np.ndarray) -> float:
    if not np.any(diff != 0):
        return 1.0
    return float(sps.wilcoxon(diff, zero_method="pratt").pvalue)


def _bootstrap(
    data: tuple[np.ndarray, ...],
    statistic: Callable[..., np.ndarray],
    point: float,
    n: int,
    cfg: StatsConfig,
    *,
    smooth: bool,
) -> Estimate:
    """Estimate with a seeded, vectorised scipy bootstrap interval (see module notes)."""
    size = int(data[0].size)
    if size == 1 or all(np.all(d == d[0]) for d in data):
        return Estimate(point=point, lower_ci=point, upper_ci=point, n=n, method="degenerate")
    methods = ["BCa", "percentile"] if smooth and size <= BCA_MAX_N else ["percentile"]
    for method in methods:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", sps.DegenerateDataWarning)
            result = sps.bootstrap(
                data,
                statistic,
                n_resamples=cfg.n_resamples,
                batch=max(1, _MAX_BATCH_ELEMENTS // size),
                vectorized=True,
                paired=len(data) > 1,
                confidence_level=cfg.confidence,
                method=method,
                rng=np.random.default_rng(cfg.seed),
            )
        lo, hi = (float(v) for v in result.confidence_interval)
        if np.isfinite(lo) and np.isfinite(hi):
            return Estimate(
                point=point, lower_ci=lo, upper_ci=hi, n=n, method=f"bootstrap-{method.lower()}"
            )
    return Estimate(point=point, lower_ci=point, upper_ci=point, n=n, method="degenerate")


def _check_k(n_samples: np.ndarray, n_correct: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    n = np.asarray(n_samples, dtype=np.int64)
    c = np.asarray(n_correct, dtype=np.int64)
    if n.shape != c.shape or np.any(c < 0) or np.any(c > n):
        raise ValueError("need 0 <= correct <= samples for every scenario")
    if k < 1 or (n.size and k > int(n.min())):
        fewest = int(n.min()) if n.size else 0
        raise ValueError(f"k={k} needs 1 <= k <= samples per scenario (fewest: {fewest})")
    return n, c


def _has_repeats(clusters: np.ndarray) -> bool:
    clusters = np.asarray(clusters)
    return clusters.size > 0 and np.unique(clusters).size < clusters.size
