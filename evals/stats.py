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
* **Means** (and ratios of sums): `scipy.stats.bootstrap`, 2,000 resamples — BCa up to
  `BCA_MAX_N` observations, percentile above (BCa's jackknife costs O(n²) and its
  correction vanishes as n grows); the method used is written into `Estimate.method`.
  scipy resamples the observation *indices* and `_ResampledMeans` turns each index
  resample into the means of several value rows at once (k rows cost one resampling,
  not k), which keeps 10,000 episodes at about a second; tests check the intervals
  equal `scipy.stats.bootstrap(..., np.mean)` on each row alone.
* **Quantiles** (median, p95): the distribution-free order-statistic interval of
  `scipy.stats.quantile_test` (exact binomial coverage, valid with ties such as integer
  turn counts, no resampling). Percentile-bootstrap intervals of quantiles under-cover
  on small or tied samples, and BCa's jackknife is unreliable for quantiles.
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
  number never depends on what was computed before it (or alongside it); same inputs,
  same output.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict
from scipy import stats as sps
from scipy.special import comb
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.proportion import proportion_confint

BCA_MAX_N = 2000  # above this many observations, means use the percentile bootstrap
_MAX_BATCH_ELEMENTS = 1_000_000  # resamples x observations per row per batch


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
    lo, hi = _exact_ends(lo, hi, count, n)
    return Estimate(point=count / n, lower_ci=lo, upper_ci=hi, n=n, count=count, method="wilson")


def _exact_ends(lo: float, hi: float, count: float, n: float) -> tuple[float, float]:
    """Wilson's bounds are exactly 0 at count 0 and 1 at count n; the formula can miss by
    rounding (2e-19), and a bound outside [0, 1] is clipped."""
    lo = 0.0 if count == 0 else min(1.0, max(0.0, float(lo)))
    hi = 1.0 if count == n else min(1.0, max(0.0, float(hi)))
    return lo, hi


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
    lo, hi = _exact_ends(lo, hi, count, n)
    return Estimate(
        point=count / n, lower_ci=lo, upper_ci=hi, n=n, count=count, method="wilson-clustered"
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
    return means(values[None, :], clusters, cfg)[0] if values.size else None


def means(
    rows: np.ndarray, clusters: np.ndarray | None = None, cfg: StatsConfig = DEFAULT
) -> list[Estimate]:
    """The mean of each row of a (k, n) array, n >= 1, bootstrapped in one vectorised call.

    All rows share the resampled indices; each row's result equals what `mean` gives for
    it alone (the resamples depend only on n and the seed).
    """
    rows = np.atleast_2d(np.asarray(rows, dtype=float))
    n = rows.shape[1]
    if n == 0:
        raise ValueError("means() needs at least one observation")
    points = rows.mean(axis=1)
    if clusters is not None and _has_repeats(clusters):
        _, codes = np.unique(clusters, return_inverse=True)
        sums = np.stack([np.bincount(codes, weights=row) for row in rows])
        return _bootstrap_rows(sums, points, n, cfg, np.bincount(codes).astype(float))
    return _bootstrap_rows(rows, points, n, cfg)


def ratio(
    numerator: np.ndarray, denominator: np.ndarray, cfg: StatsConfig = DEFAULT, n: int | None = None
) -> Estimate | None:
    """sum(numerator) / sum(denominator), bootstrapping the (numerator, denominator) pairs."""
    num = np.asarray(numerator, dtype=float)
    den = np.asarray(denominator, dtype=float)
    if num.size == 0 or den.sum() <= 0:
        return None
    point = np.array([num.sum() / den.sum()])
    return _bootstrap_rows(num[None, :], point, n or int(num.size), cfg, den)[0]


def quantile(values: np.ndarray, q: float, cfg: StatsConfig = DEFAULT) -> Estimate | None:
    """The q-quantile (numpy's linear interpolation) with a distribution-free interval.

    The interval is the order-statistic (binomial) interval of
    `scipy.stats.quantile_test`: exact coverage without resampling, valid with ties.
    Where n is too small to reach the confidence level on a side, that bound is
    infinite (no bound at this confidence), never invented.
    """
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return None
    point = float(np.quantile(values, q))
    if values.size == 1 or np.all(values == values[0]):
        n = int(values.size)
        return Estimate(point=point, lower_ci=point, upper_ci=point, n=n, method="degenerate")
    ci = sps.quantile_test(values, p=q).confidence_interval(cfg.confidence)
    lower = float(ci.low) if np.isfinite(ci.low) else -np.inf
    upper = float(ci.high) if np.isfinite(ci.high) else np.inf
    return Estimate(
        point=point, lower_ci=lower, upper_ci=upper, n=int(values.size), method="order-statistic"
    )


def pass_at_k(
    n_samples: np.ndarray, n_correct: np.ndarray, k: int, cfg: StatsConfig = DEFAULT
) -> Estimate | None:
    """pass@k = mean over scenarios of 1 − C(n−c, k) / C(n, k) (Chen et al. 2021)."""
    n, c = _check_k(n_samples, n_correct, k)
    if n.size == 0:
        return None
    return mean(1.0 - comb(n - c, k) / comb(n, k), cfg=cfg)


def pass_hat_k(
    n_samples: np.ndarray, n_correct: np.ndarray, k: int, cfg: StatsConfig = DEFAULT
) -> Estimate | None:
    """pass^k = mean over scenarios of C(c, k) / C(n, k): all k tries succeed (tau-bench)."""
    n, c = _check_k(n_samples, n_correct, k)
    if n.size == 0:
        return None
    return mean(comb(c, k) / comb(n, k), cfg=cfg)


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
    cand = np.asarray(candidate, dtype=float)[None, :]
    base = np.asarray(baseline, dtype=float)[None, :]
    return paired_deltas(cand, base, [binary], [label], clusters, [n_unpaired], cfg)[0]


def paired_deltas(
    candidate: np.ndarray,
    baseline: np.ndarray,
    binary: Sequence[bool],
    labels: Sequence[str],
    clusters: np.ndarray | None = None,
    n_unpaired: Sequence[int] | None = None,
    cfg: StatsConfig = DEFAULT,
) -> list[Delta]:
    """`paired_delta` for each row of two aligned (k, n) arrays, in one bootstrap call."""
    cand = np.atleast_2d(np.asarray(candidate, dtype=float))
    base = np.atleast_2d(np.asarray(baseline, dtype=float))
    unpaired = list(n_unpaired or [0] * len(cand))
    if cand.shape != base.shape:
        raise ValueError(f"{labels[0]}: candidate and baseline arrays are not aligned")
    if cand.shape[1] == 0:
        raise PairingError(
            f"{labels[0]}: no paired episodes (no (env_id, scenario_id, epoch) present in both "
            f"runs with this metric; {unpaired[0]} unpaired episodes excluded)"
        )
    n_pairs, unit = int(cand.shape[1]), "episode"
    if clusters is not None and _has_repeats(clusters):
        _, codes = np.unique(clusters, return_inverse=True)
        sizes = np.bincount(codes).astype(float)
        cand = np.stack([np.bincount(codes, weights=row) / sizes for row in cand])
        base = np.stack([np.bincount(codes, weights=row) / sizes for row in base])
        binary, unit = [False] * len(cand), "scenario"
    diff = cand - base
    estimates = means(diff, cfg=cfg)
    deltas = []
    for row, est in enumerate(estimates):
        if binary[row]:
            test = "mcnemar-exact"
            p_value = _mcnemar_p(cand[row].astype(bool), base[row].astype(bool))
        else:
            test, p_value = "wilcoxon-signed-rank", _wilcoxon_p(diff[row])
        deltas.append(
            Delta(
                point=est.point,
                lower_ci=est.lower_ci,
                upper_ci=est.upper_ci,
                p_value=p_value,
                n_pairs=n_pairs,
                test=test,
                method=est.method,
                unit=unit,
                n_unpaired=unpaired[row],
            )
        )
    return deltas


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


class _ResampledMeans:
    """Vectorised bootstrap statistic over resampled *indices* of m observations.

    `scipy.stats.bootstrap` resamples the index array 0..m-1; this returns, for every
    resample, the mean of each row of `rows` (k, m) — or the ratio of sums
    rows·w / sizes·w when `sizes` is given (cluster totals) — from how often each
    observation was drawn (w). One (batch, m) index array serves all k rows, instead
    of k gathered (batch, m) copies; the result equals the gathered computation (the
    tests compare it with `scipy.stats.bootstrap` on each row alone).
    """

    def __init__(self, rows: np.ndarray, sizes: np.ndarray | None = None) -> None:
        self.rows, self.sizes = rows, sizes

    def __call__(self, idx: np.ndarray, axis: int = -1) -> np.ndarray:
        m = self.rows.shape[1]
        draws = np.atleast_2d(idx)
        b = draws.shape[0]
        flat = (draws + m * np.arange(b)[:, None]).ravel()
        weights = np.bincount(flat, minlength=b * m).reshape(b, m).astype(float)
        # one matrix-vector product per row, so a row's numbers never depend on its neighbours
        totals = np.stack([weights @ row for row in self.rows])  # (k, b)
        denominator = weights @ self.sizes if self.sizes is not None else weights.sum(axis=1)
        out = totals / denominator
        return out[:, 0] if np.ndim(idx) == 1 else out


def _bootstrap_rows(
    rows: np.ndarray, points: np.ndarray, n: int, cfg: StatsConfig, sizes: np.ndarray | None = None
) -> list[Estimate]:
    """One estimate per row of `rows` (k, m), from one seeded `scipy.stats.bootstrap` call.

    BCa for m <= BCA_MAX_N, else percentile; a row whose BCa interval is undefined falls
    back to percentile; a constant row (or m = 1) gets the degenerate interval.
    """
    m = int(rows.shape[1])
    found: dict[int, tuple[float, float, str]] = {}
    todo = [j for j in range(len(rows)) if m > 1 and np.any(rows[j] != rows[j][0])]
    if sizes is not None and m > 1 and np.any(sizes != sizes[0]):
        todo = list(range(len(rows)))  # a ratio can vary even when the totals do not
    for method in ["BCa", "percentile"] if m <= BCA_MAX_N else ["percentile"]:
        if not todo:
            break
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", sps.DegenerateDataWarning)
            warnings.simplefilter("ignore", RuntimeWarning)  # 0/0 in a degenerate row
            result = sps.bootstrap(
                (np.arange(m),),
                _ResampledMeans(rows[todo], sizes),
                n_resamples=cfg.n_resamples,
                batch=max(1, _MAX_BATCH_ELEMENTS // m),
                vectorized=True,
                confidence_level=cfg.confidence,
                method=method,
                rng=np.random.default_rng(cfg.seed),
            )
        lows = np.atleast_1d(result.confidence_interval.low)
        highs = np.atleast_1d(result.confidence_interval.high)
        for j, lo, hi in zip(todo, lows, highs, strict=True):
            if np.isfinite(lo) and np.isfinite(hi):
                found[j] = (float(lo), float(hi), f"bootstrap-{method.lower()}")
        todo = [j for j in todo if j not in found]
    estimates = []
    for j, point in enumerate(points):
        lo, hi, method = found.get(j, (float(point), float(point), "degenerate"))
        estimates.append(Estimate(point=float(point), lower_ci=lo, upper_ci=hi, n=n, method=method))
    return estimates


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
