"""Metrics of a run, per slice, computed from its trajectories.

Contract
--------
`compute_metrics(trajectories, cost)` returns a `MetricTable`: slice → metric key →
`Estimate` (point, interval, n; see `evals.stats`). Slices are every tag found in
`Trajectory.slices` plus `aggregate` (all episodes). `compute_deltas(candidate, baseline)`
returns a `DeltaTable` of paired candidate − baseline deltas for the metrics where pairing
makes sense (success, rewards, per-episode rates).

* A metric the run does not produce is **absent** from the table, never zero (no episode
  has the check, no tool call was made, no latency or tokens were recorded, ...).
* Episodes that ended in `termination == "policy_error"` are infrastructure failures,
  not behaviour: they are left out of every metric and counted by `policy_error_rate`
  (over all episodes), which a rule can cap.
* Metric keys carry their arguments canonically: `format_pass_rate[tag=<answer>]`,
  `api_version_match_rate[version=3.2.1]`, `check_pass_rate[name=unit_tests]`.
  `METRICS` lists every name and its arguments; `evals.rules` validates against it.
* Checks map to metrics by name: `format` → `format_pass_rate`, `format:<tag>` →
  `format_pass_rate[tag=<tag>]`, `math_correct` → `math_correct_rate`,
  `api_version:<v>` → `api_version_match_rate[version=<v>]`; every check `X` is also
  `check_pass_rate[name=X]`.
* `cost_per_1k_tokens_usd` = gpu_hour_usd / (tokens_per_second × 3600) × 1000 (the
  seed's formula). `tokens_per_second` comes from `CostConfig`, or is measured as
  completion tokens / policy latency (single-stream: an upper bound on cost); absent
  when `gpu_hour_usd` is unknown or nothing is measurable.
* Work is columnar: trajectories are read once into numpy arrays, then each slice is an
  index array, so 10,000 episodes take seconds, not minutes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from core.records import Termination, Trajectory
from evals import stats
from evals.stats import Delta, Estimate, PairingError, StatsConfig

AGGREGATE = "aggregate"


@dataclass(frozen=True)
class MetricSpec:
    """A metric name a rule may use: its arguments (after the slice) and whether it pairs."""

    name: str  # as written in rules; families use a placeholder: "pass@<k>"
    description: str
    params: tuple[str, ...] = ()  # arguments after the slice, in positional order
    required: tuple[str, ...] = ()  # the params a rule must give
    delta: bool = False  # `delta.<name>` is defined
    counted: bool = False  # its Estimate has a `count` (rates and counts)
    pattern: str | None = None  # regex (fullmatch) for families such as pass@<k>


class MetricRegistry:
    """Known metric names; rules are validated against one (tests may build their own)."""

    def __init__(self, specs: Sequence[MetricSpec]) -> None:
        self._specs = list(specs)

    def lookup(self, name: str) -> MetricSpec | None:
        for spec in self._specs:
            if spec.pattern is None and spec.name == name:
                return spec
        for spec in self._specs:
            if spec.pattern is not None and re.fullmatch(spec.pattern, name):
                return spec
        return None

    def names(self) -> list[str]:
        return [spec.name for spec in self._specs]

    def specs(self) -> list[MetricSpec]:
        return list(self._specs)


METRICS = MetricRegistry(
    [
        MetricSpec("success@1", "rate of successful episodes (all epochs)", delta=True,
                   counted=True),
        MetricSpec("pass@<k>", "P(any of k tries succeeds), unbiased", pattern=r"pass@[1-9]\d*"),
        MetricSpec("pass^<k>", "P(all k tries succeed) (tau-bench)", pattern=r"pass\^[1-9]\d*"),
        MetricSpec("reward", "mean total reward", delta=True),
        MetricSpec("reward.<component>", "mean of one reward component", delta=True,
                   pattern=r"reward\.[^\s\[\]]+"),
        MetricSpec("rule_violation_rate", "rate of episodes with a rule violation", delta=True,
                   counted=True),
        MetricSpec("format_pass_rate", "rate of checks['format'] or ['format:<tag>']",
                   params=("tag",), delta=True, counted=True),
        MetricSpec("math_correct_rate", "rate of checks['math_correct']", delta=True,
                   counted=True),
        MetricSpec("api_version_match_rate", "rate of checks['api_version:<version>']",
                   params=("version",), required=("version",), delta=True, counted=True),
        MetricSpec("check_pass_rate", "rate of any named check", params=("name",),
                   required=("name",), delta=True, counted=True),
        MetricSpec("tool_call_correctness.schema", "rate of schema-valid tool calls",
                   counted=True),
        MetricSpec("escalation_rate", "rate of episodes ending in escalation", delta=True,
                   counted=True),
        MetricSpec("policy_error_rate", "rate of episodes lost to policy/infra errors",
                   counted=True),
        MetricSpec("steps_to_solve_median", "median turns of successful episodes"),
        MetricSpec("latency_p95_ms", "p95 of per-call policy latency"),
        MetricSpec("tokens_per_episode", "mean prompt+completion tokens per episode"),
        MetricSpec("cost_per_1k_tokens_usd", "$/GPU-hr / (tokens/s x 3600) x 1000"),
    ]
)

# Metrics of a production/canary log (`canary.<name>` in rules; see evals.gate).
CANARY_METRICS = MetricRegistry(
    [
        MetricSpec("abandon_rate", "rate of abandoned requests (Wilson)", counted=True),
        MetricSpec("safety_incidents", "number of safety incidents (exact)", counted=True),
        MetricSpec("safety_incident_rate", "rate of requests with an incident", counted=True),
        MetricSpec("latency_p95_ms", "p95 request latency"),
        MetricSpec("tokens_per_request", "mean prompt+completion tokens"),
        MetricSpec("cost_per_1k_tokens_usd", "billed $ per 1k tokens, or the seed's formula"),
    ]
)


def metric_key(name: str, args: Mapping[str, str] | None = None) -> str:
    """Canonical key: ("format_pass_rate", {tag: "<answer>"}) → "format_pass_rate[tag=<answer>]"."""
    if not args:
        return name
    return name + "[" + ",".join(f"{k}={v}" for k, v in sorted(args.items())) + "]"


class CostConfig(BaseModel):
    """Serving cost inputs, e.g. a run manifest's `"cost": {"gpu_hour_usd": 2.5}`."""

    model_config = ConfigDict(extra="forbid")
    gpu_hour_usd: float | None = Field(default=None, gt=0)
    tokens_per_second: float | None = Field(default=None, gt=0)


class MetricTable(BaseModel):
    """slice → metric key → Estimate, for one run."""

    confidence: float
    slices: dict[str, dict[str, Estimate]]

    def get(self, slice_name: str, key: str) -> Estimate | None:
        return self.slices.get(slice_name, {}).get(key)


class DeltaTable(BaseModel):
    """slice → metric key → Delta; `problems` says why a requested pair has no delta."""

    confidence: float
    slices: dict[str, dict[str, Delta]]
    problems: dict[str, dict[str, str]] = Field(default_factory=dict)

    def get(self, slice_name: str, key: str) -> Delta:
        found = self.slices.get(slice_name, {}).get(key)
        if found is None:
            why = self.problems.get(slice_name, {}).get(key, "not computed")
            raise PairingError(why)
        return found


@dataclass
class _Frame:
    """One run's trajectories as columns (index i = episode i)."""

    keys: list[tuple[str, str, int]]
    hashes: list[str]
    scenario: np.ndarray  # int code of (env_id, scenario_id)
    slices: dict[str, np.ndarray]  # slice → episode indices
    errored: np.ndarray
    success: np.ndarray
    reward: np.ndarray
    violated: np.ndarray
    escalated: np.ndarray
    turns: np.ndarray
    tokens: np.ndarray  # prompt+completion; nan when not recorded
    completion: np.ndarray  # nan when not recorded
    latency_sum_s: np.ndarray
    components: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    checks: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    call_valid: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    call_owner: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    latency: np.ndarray = field(default_factory=lambda: np.zeros(0))
    latency_owner: np.ndarray = field(default_factory=lambda: np.zeros(0, int))

    def member(self, slice_name: str) -> np.ndarray:
        mask = np.zeros(len(self.keys), dtype=bool)
        mask[self.slices.get(slice_name, np.zeros(0, int))] = True
        return mask


def _frame(trajectories: Iterable[Trajectory]) -> _Frame:
    trajs = list(trajectories)
    codes: dict[tuple[str, str], int] = {}
    slices: dict[str, list[int]] = {AGGREGATE: list(range(len(trajs)))}
    rows: list[tuple[float, ...]] = []
    sparse: dict[str, dict[str, list[tuple[int, float]]]] = {"components": {}, "checks": {}}
    calls: list[tuple[int, bool]] = []
    latencies: list[tuple[int, float]] = []
    for i, t in enumerate(trajs):
        scenario = codes.setdefault((t.env_id, t.scenario_id), len(codes))
        for tag in dict.fromkeys(t.slices):
            if tag == AGGREGATE:
                raise ValueError(f"{t.scenario_id}: slice tag '{AGGREGATE}' is reserved")
            slices.setdefault(tag, []).append(i)
        tokens = (t.tokens.prompt + t.tokens.completion) if t.tokens else np.nan
        completion = t.tokens.completion if t.tokens else np.nan
        rows.append((scenario, t.termination == Termination.POLICY_ERROR, t.success, t.reward,
                     bool(t.violations), t.termination == Termination.ESCALATION, t.turns,
                     tokens, completion, sum(t.latency_ms) / 1000.0))
        for name, value in t.reward_components.items():
            sparse["components"].setdefault(name, []).append((i, value))
        for name, passed in t.checks.items():
            sparse["checks"].setdefault(name, []).append((i, passed))
        calls.extend((i, call.valid) for call in t.tool_calls)
        latencies.extend((i, ms) for ms in t.latency_ms)
    cols = np.array(rows, dtype=float).reshape(len(trajs), 10).T
    frame = _Frame(
        keys=[(t.env_id, t.scenario_id, t.epoch) for t in trajs],
        hashes=[t.scenario_hash for t in trajs],
        scenario=cols[0].astype(int), errored=cols[1] > 0, success=cols[2] > 0,
        reward=cols[3], violated=cols[4] > 0, escalated=cols[5] > 0, turns=cols[6],
        tokens=cols[7], completion=cols[8], latency_sum_s=cols[9],
        slices={name: np.asarray(idx, dtype=int) for name, idx in slices.items()},
    )
    frame.components = {k: _dense(v, len(trajs)) for k, v in sparse["components"].items()}
    frame.checks = {k: _dense(v, len(trajs)) for k, v in sparse["checks"].items()}
    frame.call_owner, frame.call_valid = _flat(calls, bool)
    frame.latency_owner, frame.latency = _flat(latencies, float)
    return frame


def _dense(pairs: list[tuple[int, float]], n: int) -> tuple[np.ndarray, np.ndarray]:
    values, present = np.zeros(n), np.zeros(n, dtype=bool)
    idx = np.fromiter((i for i, _ in pairs), dtype=int, count=len(pairs))
    values[idx] = [v for _, v in pairs]
    present[idx] = True
    return values, present


def _flat(pairs: list[tuple[int, float]], dtype: type) -> tuple[np.ndarray, np.ndarray]:
    owner = np.fromiter((i for i, _ in pairs), dtype=int, count=len(pairs))
    return owner, np.array([v for _, v in pairs], dtype=dtype).reshape(len(pairs))


def compute_metrics(
    trajectories: Iterable[Trajectory],
    cost: CostConfig | None = None,
    confidence: float = 0.95,
    *,
    n_resamples: int = 2000,
    seed: int = 0,
) -> MetricTable:
    """Every metric the run produces, per slice (see the module contract)."""
    cfg = StatsConfig(confidence=confidence, n_resamples=n_resamples, seed=seed)
    frame = _frame(trajectories)
    table = {
        name: _slice_metrics(frame, idx, cost or CostConfig(), cfg)
        for name, idx in sorted(frame.slices.items())
    }
    return MetricTable(confidence=confidence, slices=table)


def _slice_metrics(
    frame: _Frame, idx: np.ndarray, cost: CostConfig, cfg: StatsConfig
) -> dict[str, Estimate]:
    out: dict[str, Estimate | None] = {"policy_error_rate": stats.rate(frame.errored[idx], cfg=cfg)}
    idx = idx[~frame.errored[idx]]
    if idx.size:
        scen = frame.scenario[idx]
        out["success@1"] = stats.rate(frame.success[idx], scen, cfg)
        out.update(_pass_metrics(frame.success[idx], scen, out["success@1"], cfg))
        out["reward"] = stats.mean(frame.reward[idx], scen, cfg)
        for name, (values, present) in sorted(frame.components.items()):
            keep = idx[present[idx]]
            out[f"reward.{name}"] = stats.mean(values[keep], frame.scenario[keep], cfg)
        out["rule_violation_rate"] = stats.rate(frame.violated[idx], scen, cfg)
        out["escalation_rate"] = stats.rate(frame.escalated[idx], scen, cfg)
        for check, (values, present) in sorted(frame.checks.items()):
            keep = idx[present[idx]]
            for key in _check_keys(check):
                out[key] = stats.rate(values[keep] > 0, frame.scenario[keep], cfg)
        solved = idx[frame.success[idx]]
        out["steps_to_solve_median"] = stats.quantile(frame.turns[solved], 0.5, cfg)
        out.update(_efficiency_metrics(frame, idx, cost, cfg))
    return {key: est for key, est in out.items() if est is not None}


def _pass_metrics(
    success: np.ndarray, scen: np.ndarray, success_at_1: Estimate | None, cfg: StatsConfig
) -> dict[str, Estimate]:
    """pass@k and pass^k for k = 1 .. the fewest tries any scenario of the slice had."""
    _, codes = np.unique(scen, return_inverse=True)
    tries = np.bincount(codes)
    correct = np.bincount(codes, weights=success).astype(int)
    if success_at_1 is not None and tries.max() == 1:  # one try each: both are success@1
        return {"pass@1": success_at_1, "pass^1": success_at_1}
    out: dict[str, Estimate] = {}
    for k in range(1, int(tries.min()) + 1):
        for name, fn in ((f"pass@{k}", stats.pass_at_k), (f"pass^{k}", stats.pass_hat_k)):
            est = fn(tries, correct, k, cfg)
            if est is not None:
                out[name] = est
    return out


def _efficiency_metrics(
    frame: _Frame, idx: np.ndarray, cost: CostConfig, cfg: StatsConfig
) -> dict[str, Estimate | None]:
    member = _mask(len(frame.keys), idx)
    calls = member[frame.call_owner]
    out: dict[str, Estimate | None] = {
        "tool_call_correctness.schema": stats.rate(
            frame.call_valid[calls], frame.scenario[frame.call_owner[calls]], cfg
        ),
        "latency_p95_ms": stats.quantile(frame.latency[member[frame.latency_owner]], 0.95, cfg),
    }
    with_tokens = idx[~np.isnan(frame.tokens[idx])]
    out["tokens_per_episode"] = stats.mean(
        frame.tokens[with_tokens], frame.scenario[with_tokens], cfg
    )
    throughput = None
    if cost.gpu_hour_usd is not None and cost.tokens_per_second is None:
        measurable = with_tokens[frame.latency_sum_s[with_tokens] > 0]
        throughput = stats.ratio(frame.completion[measurable], frame.latency_sum_s[measurable], cfg)
    out["cost_per_1k_tokens_usd"] = cost_per_1k(cost, throughput, int(idx.size))
    return out


def _mask(n: int, idx: np.ndarray) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    mask[idx] = True
    return mask


def cost_per_1k(cost: CostConfig, measured_tps: Estimate | None, n: int) -> Estimate | None:
    """The seed's cost per 1k tokens from $/GPU-hr and tokens/s (given, else measured)."""
    if cost.gpu_hour_usd is None:
        return None

    def usd(tps: float) -> float:
        return cost.gpu_hour_usd / (tps * 3600.0) * 1000.0 if tps > 0 else float("inf")

    if cost.tokens_per_second is not None:
        point = usd(cost.tokens_per_second)
        return Estimate(point=point, lower_ci=point, upper_ci=point, n=n, method="formula")
    if measured_tps is None or measured_tps.point <= 0:
        return None
    return Estimate(
        point=usd(measured_tps.point),
        lower_ci=usd(measured_tps.upper_ci),
        upper_ci=usd(measured_tps.lower_ci),
        n=measured_tps.n,
        method=f"formula/measured-tps/{measured_tps.method}",
    )


def _check_keys(check: str) -> list[str]:
    keys = [metric_key("check_pass_rate", {"name": check})]
    if check == "format":
        keys.append("format_pass_rate")
    elif check.startswith("format:"):
        keys.append(metric_key("format_pass_rate", {"tag": check[len("format:"):]}))
    elif check == "math_correct":
        keys.append("math_correct_rate")
    elif check.startswith("api_version:"):
        keys.append(metric_key("api_version_match_rate", {"version": check[len("api_version:"):]}))
    return keys


def compute_deltas(
    candidate: Iterable[Trajectory],
    baseline: Iterable[Trajectory],
    *,
    only: Iterable[tuple[str, str]] | None = None,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> DeltaTable:
    """Paired candidate − baseline deltas per slice and metric (see `evals.stats`).

    Episodes pair by (env_id, scenario_id, epoch) and belong to a slice when both twins
    carry its tag; unpaired ones are excluded and counted (`Delta.n_unpaired`). `only`
    names the (slice, metric key) pairs wanted; each one without a delta gets its reason
    in `DeltaTable.problems`. Without `only`, every pairable metric of every shared slice
    is computed. Twins whose `scenario_hash` differs, or a key occurring twice in one run,
    raise `PairingError`: the runs did not see the same frozen scenarios.
    """
    cfg = StatsConfig(confidence=confidence, n_resamples=n_resamples, seed=seed)
    cand, base = _frame(candidate), _frame(baseline)
    pairs = _pairs(cand, base)
    wanted = list(only) if only is not None else _pairable(cand, base)
    table = DeltaTable(confidence=confidence, slices={})
    for slice_name, key in wanted:
        try:
            delta = _delta(cand, base, pairs, slice_name, key, cfg)
        except PairingError as exc:
            table.problems.setdefault(slice_name, {})[key] = str(exc)
            continue
        table.slices.setdefault(slice_name, {})[key] = delta
    return table


def _pairs(cand: _Frame, base: _Frame) -> tuple[np.ndarray, np.ndarray]:
    """Indices (candidate, baseline) of twin episodes, neither lost to a policy error."""
    index = {}
    for run, frame in (("baseline", base), ("candidate", cand)):
        seen: dict[tuple[str, str, int], int] = {}
        for i, key in enumerate(frame.keys):
            if seen.setdefault(key, i) != i:
                raise PairingError(f"{run} run has episode {key} twice: cannot pair")
        index[run] = seen
    ci, bi, changed = [], [], []
    for i, key in enumerate(cand.keys):
        j = index["baseline"].get(key)
        if j is None:
            continue
        if cand.hashes[i] != base.hashes[j]:
            changed.append(key)
        elif not (cand.errored[i] or base.errored[j]):
            ci.append(i)
            bi.append(j)
    if changed:
        raise PairingError(
            f"{len(changed)} scenarios differ between candidate and baseline (scenario_hash), "
            f"e.g. {changed[0]}: the runs did not use the same frozen scenarios"
        )
    return np.asarray(ci, dtype=int), np.asarray(bi, dtype=int)


def _pairable(cand: _Frame, base: _Frame) -> list[tuple[str, str]]:
    keys = ["success@1", "reward", "rule_violation_rate", "escalation_rate"]
    keys += [f"reward.{c}" for c in sorted(cand.components.keys() & base.components.keys())]
    for check in sorted(cand.checks.keys() & base.checks.keys()):
        keys += _check_keys(check)
    shared = sorted(cand.slices.keys() & base.slices.keys())
    return [(s, k) for s in shared for k in keys]


def _values(frame: _Frame, key: str) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-episode values of a pairable metric and where they are present."""
    everywhere = np.ones(len(frame.keys), dtype=bool)
    simple = {"success@1": frame.success, "reward": frame.reward,
              "rule_violation_rate": frame.violated, "escalation_rate": frame.escalated}
    if key in simple:
        return simple[key].astype(float), everywhere
    if key.startswith("reward."):
        return frame.components.get(key[len("reward."):])
    for check, values in frame.checks.items():
        if key in _check_keys(check):
            return values
    return None


def _delta(
    cand: _Frame,
    base: _Frame,
    pairs: tuple[np.ndarray, np.ndarray],
    slice_name: str,
    key: str,
    cfg: StatsConfig,
) -> Delta:
    label = f"delta.{key} on slice '{slice_name}'"
    if slice_name not in cand.slices or slice_name not in base.slices:
        have = sorted(cand.slices.keys() & base.slices.keys())
        raise PairingError(f"{label}: slice not in both runs; shared slices: {', '.join(have)}")
    spec = METRICS.lookup(key.split("[")[0])
    found_c, found_b = _values(cand, key), _values(base, key)
    if spec is None or not spec.delta:
        raise PairingError(f"{label}: this metric has no paired delta")
    if found_c is None or found_b is None:
        run = "candidate" if found_c is None else "baseline"
        raise PairingError(f"{label}: metric absent in the {run} run")
    (cv, cp), (bv, bp) = found_c, found_b
    ci, bi = pairs
    in_c, in_b = cand.member(slice_name) & cp, base.member(slice_name) & bp
    keep = in_c[ci] & in_b[bi]
    ci, bi = ci[keep], bi[keep]
    return stats.paired_delta(
        cv[ci],
        bv[bi],
        binary=spec.name not in ("reward", "reward.<component>"),
        label=label,
        clusters=cand.scenario[ci],
        n_unpaired=int(in_c.sum() + in_b.sum() - 2 * ci.size),
        cfg=cfg,
    )
