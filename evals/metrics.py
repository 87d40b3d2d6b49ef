"""Metrics of a run, per slice, computed from its trajectories.

Contract
--------
`compute_metrics(trajectories, cost)` returns a `MetricTable`: slice → metric key →
`Estimate` (point, interval, n; see `evals.stats`). Slices are every tag found in
`Trajectory.slices` plus `aggregate` (all episodes). `evals.deltas.compute_deltas`
fills a `DeltaTable` of paired candidate − baseline deltas from the same `Episodes`.

* A metric the run does not produce is **absent** from the table, never zero (no episode
  has the check, no tool call was made, no latency or tokens were recorded, ...).
* Episodes that ended in `termination == "policy_error"` are infrastructure failures,
  not behaviour: they are left out of every metric and counted by `policy_error_rate`
  (over all episodes), which a rule can cap.
* **An incomplete run is never a clean result**: `MetricTable.status` counts the
  episodes, how many completed and how many failed (infrastructure), and marks the run
  `complete` only when failed / episodes <= `max_infra_failure_rate` (default 0.05).
  The gate and the leaderboard refuse an incomplete run unless told otherwise.
* Metric keys carry their arguments canonically: `format_pass_rate[tag=<answer>]`,
  `api_version_match_rate[version=3.2.1]`, `check_pass_rate[name=unit_tests]`.
  `METRICS` lists every name and its arguments; `evals.rules` validates against it.
* `pass@k` / `pass^k` exist for k = 1 .. the fewest epochs any scenario of the slice
  has (a run with `epochs=k` has k trajectories per scenario, told apart by `epoch`);
  with one epoch both equal success@1.
* `rule_violation_rate` exists only where the env checks rules, which it says by setting
  `checks["rules"]` (= no violation) on each trajectory; elsewhere it is absent, so an
  env that checks nothing can never pass a violation cap by default.
* Checks map to metrics by name: `format` → `format_pass_rate`, `format:<tag>` →
  `format_pass_rate[tag=<tag>]`, `math_correct` → `math_correct_rate`,
  `api_version:<v>` → `api_version_match_rate[version=<v>]`; every check `X` is also
  `check_pass_rate[name=X]`.
* `cost_per_1k_tokens_usd` = gpu_hour_usd / (tokens_per_second × 3600) × 1000 (the
  seed's formula). `tokens_per_second` comes from `CostConfig`, or is measured as
  completion tokens / policy latency (single-stream: an upper bound on cost); absent
  when `gpu_hour_usd` is unknown or nothing is measurable.
* Work is columnar: trajectories are read once into `Episodes` (numpy columns; both
  functions accept one to skip re-reading), each slice is an index array, and metrics
  with the same observations share one bootstrap call: 10,000 episodes take seconds.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, computed_field

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


_S = MetricSpec
METRICS = MetricRegistry(
    [
        _S("success@1", "rate of successful episodes (all epochs)", delta=True, counted=True),
        _S("pass@<k>", "P(any of k tries succeeds), unbiased", pattern=r"pass@[1-9]\d*"),
        _S("pass^<k>", "P(all k tries succeed) (tau-bench)", pattern=r"pass\^[1-9]\d*"),
        _S("reward", "mean total reward", delta=True),
        _S("reward.<component>", "mean of one component", delta=True, pattern=r"reward\..+"),
        _S("rule_violation_rate", "rate of episodes with a violation", delta=True, counted=True),
        _S(
            "format_pass_rate",
            "rate of checks['format'] or checks['format:<tag>']",
            params=("tag",),
            delta=True,
            counted=True,
        ),
        _S("math_correct_rate", "rate of checks['math_correct']", delta=True, counted=True),
        _S(
            "api_version_match_rate",
            "rate of checks['api_version:<version>']",
            params=("version",),
            required=("version",),
            delta=True,
            counted=True,
        ),
        _S(
            "check_pass_rate",
            "rate of checks['<name>']",
            params=("name",),
            required=("name",),
            delta=True,
            counted=True,
        ),
        _S("tool_call_correctness.schema", "rate of schema-valid tool calls", counted=True),
        _S("escalation_rate", "rate of episodes ending in escalation", delta=True, counted=True),
        _S("policy_error_rate", "rate of episodes lost to policy/infra errors", counted=True),
        _S("steps_to_solve_median", "median turns of successful episodes"),
        _S("latency_p95_ms", "p95 of per-call policy latency"),
        _S("tokens_per_episode", "mean prompt+completion tokens per episode"),
        _S("cost_per_1k_tokens_usd", "$/GPU-hr / (tokens/s x 3600) x 1000"),
    ]
)
# Metrics of a production/canary log (`canary.<name>` in rules; computed by evals.gate).
CANARY_METRICS = MetricRegistry(
    [
        _S("abandon_rate", "rate of abandoned requests", counted=True),
        _S("safety_incidents", "number of safety incidents (exact)", counted=True),
        _S("safety_incident_rate", "rate of requests with an incident", counted=True),
        _S("latency_p95_ms", "p95 request latency"),
        _S("tokens_per_request", "mean prompt+completion tokens"),
        _S("cost_per_1k_tokens_usd", "billed $ per 1k tokens, or the seed's formula"),
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


DEFAULT_MAX_INFRA_FAILURE_RATE = 0.05


class RunStatus(BaseModel):
    """How much of a run is usable: completed vs infrastructure-failed episodes."""

    episodes: int
    completed: int
    failed: int  # ended in policy_error: infrastructure, not behaviour
    max_infra_failure_rate: float = DEFAULT_MAX_INFRA_FAILURE_RATE

    @computed_field  # type: ignore[prop-decorator]
    @property
    def infra_failure_rate(self) -> float:
        return self.failed / self.episodes if self.episodes else 1.0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def complete(self) -> bool:
        return self.episodes > 0 and self.infra_failure_rate <= self.max_infra_failure_rate

    def describe(self) -> str:
        """One line: `18 of 20 episodes completed, 2 failed (infrastructure; 10.0% > 5%)`."""
        limit = f"{self.infra_failure_rate:.1%} {'<=' if self.complete else '>'} "
        limit += f"{self.max_infra_failure_rate:.0%}"
        return (
            f"{self.completed} of {self.episodes} episodes completed, {self.failed} failed "
            f"(infrastructure; {limit})"
        )


class MetricTable(BaseModel):
    """slice → metric key → Estimate, for one run."""

    confidence: float
    slices: dict[str, dict[str, Estimate]]
    status: RunStatus | None = None  # completed/failed counts; None in tables built by hand

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
class Episodes:
    """One run's trajectories as numpy columns (index i = episode i). Build with `of`."""

    keys: list[tuple[str, str, int]]  # (env_id, scenario_id, epoch): the pairing key
    hashes: list[str]
    scenario: np.ndarray  # int code of (env_id, scenario_id): the cluster of an episode
    slices: dict[str, np.ndarray]  # slice → episode indices
    cols: dict[str, np.ndarray]  # errored, success, reward, violated, escalated, turns, ...
    components: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    checks: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    calls: tuple[np.ndarray, np.ndarray] = (np.zeros(0, int), np.zeros(0, bool))  # owner, valid
    latency: tuple[np.ndarray, np.ndarray] = (np.zeros(0, int), np.zeros(0))  # owner, ms

    _COLUMNS = (
        "errored",
        "success",
        "reward",
        "violated",
        "escalated",
        "turns",
        "tokens",
        "completion",
        "latency_s",
    )

    @classmethod
    def of(cls, trajectories: Iterable[Trajectory] | Episodes) -> Episodes:
        if isinstance(trajectories, Episodes):
            return trajectories
        trajs = list(trajectories)
        codes: dict[tuple[str, str], int] = {}
        slices: dict[str, list[int]] = {AGGREGATE: list(range(len(trajs)))}
        rows: list[tuple[float, ...]] = []
        sparse: dict[str, dict[str, list[tuple[int, float]]]] = {"components": {}, "checks": {}}
        calls: list[tuple[int, bool]] = []
        latency: list[tuple[int, float]] = []
        for i, t in enumerate(trajs):
            for tag in dict.fromkeys(t.slices):
                if tag == AGGREGATE:
                    raise ValueError(f"{t.scenario_id}: slice tag '{AGGREGATE}' is reserved")
                slices.setdefault(tag, []).append(i)
            tok = t.tokens
            rows.append(
                (
                    codes.setdefault((t.env_id, t.scenario_id), len(codes)),
                    t.lost_to_infrastructure,
                    t.success,
                    t.reward,
                    bool(t.violations),
                    t.termination == Termination.ESCALATION,
                    t.turns,
                    tok.prompt + tok.completion if tok else np.nan,
                    tok.completion if tok else np.nan,
                    sum(t.latency_ms) / 1000.0,
                )
            )
            for name, value in t.reward_components.items():
                sparse["components"].setdefault(name, []).append((i, value))
            for name, passed in t.checks.items():
                sparse["checks"].setdefault(name, []).append((i, passed))
            calls.extend((i, call.valid) for call in t.tool_calls)
            latency.extend((i, ms) for ms in t.latency_ms)
        table = np.array(rows, dtype=float).reshape(len(trajs), 10).T
        cols = dict(zip(cls._COLUMNS, table[1:], strict=True))
        for name in ("errored", "success", "violated", "escalated"):
            cols[name] = cols[name] > 0
        return cls(
            keys=[(t.env_id, t.scenario_id, t.epoch) for t in trajs],
            hashes=[t.scenario_hash for t in trajs],
            scenario=table[0].astype(int),
            slices={name: np.asarray(idx, dtype=int) for name, idx in slices.items()},
            cols=cols,
            components={k: _dense(v, len(trajs)) for k, v in sparse["components"].items()},
            checks={k: _dense(v, len(trajs)) for k, v in sparse["checks"].items()},
            calls=_flat(calls, bool),
            latency=_flat(latency, float),
        )

    def member(self, slice_name: str) -> np.ndarray:
        return _mask(len(self.keys), self.slices.get(slice_name, np.zeros(0, int)))


def _dense(pairs: list[tuple[int, float]], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Sparse (episode, value) pairs → (values, present) columns."""
    values, present = np.zeros(n), np.zeros(n, dtype=bool)
    idx = np.fromiter((i for i, _ in pairs), dtype=int, count=len(pairs))
    values[idx] = [v for _, v in pairs]
    present[idx] = True
    return values, present


def _flat(pairs: list[tuple[int, float]], dtype: type) -> tuple[np.ndarray, np.ndarray]:
    owner = np.fromiter((i for i, _ in pairs), dtype=int, count=len(pairs))
    return owner, np.array([v for _, v in pairs], dtype=dtype).reshape(len(pairs))


def _mask(n: int, idx: np.ndarray) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    mask[idx] = True
    return mask


RULES_CHECK = "rules"  # checks["rules"] = no violation; its presence says rules were checked


def compute_metrics(
    trajectories: Iterable[Trajectory] | Episodes,
    cost: CostConfig | None = None,
    confidence: float = 0.95,
    *,
    n_resamples: int = 2000,
    seed: int = 0,
    max_infra_failure_rate: float = DEFAULT_MAX_INFRA_FAILURE_RATE,
) -> MetricTable:
    """Every metric the run produces, per slice (see the module contract)."""
    cfg = StatsConfig(confidence=confidence, n_resamples=n_resamples, seed=seed)
    eps = Episodes.of(trajectories)
    table = {
        name: _slice_metrics(eps, idx, cost or CostConfig(), cfg)
        for name, idx in sorted(eps.slices.items())
    }
    failed = int(eps.cols["errored"].sum()) if eps.keys else 0
    status = RunStatus(
        episodes=len(eps.keys),
        completed=len(eps.keys) - failed,
        failed=failed,
        max_infra_failure_rate=max_infra_failure_rate,
    )
    return MetricTable(confidence=confidence, slices=table, status=status)


def _slice_metrics(
    eps: Episodes, idx: np.ndarray, cost: CostConfig, cfg: StatsConfig
) -> dict[str, Estimate]:
    col = eps.cols
    out: dict[str, Estimate | None] = {}
    out["policy_error_rate"] = stats.rate(col["errored"][idx], cfg=cfg)
    idx = idx[~col["errored"][idx]]
    if idx.size == 0:
        return {key: est for key, est in out.items() if est is not None}
    scen = eps.scenario[idx]
    out["success@1"] = stats.rate(col["success"][idx], scen, cfg)
    out.update(_pass_metrics(col["success"][idx], scen, out["success@1"], cfg))
    averaged = [("reward", col["reward"], idx)]
    for name, (values, present) in sorted(eps.components.items()):
        averaged.append((f"reward.{name}", values, idx[present[idx]]))
    averaged.append(("tokens_per_episode", col["tokens"], idx[~np.isnan(col["tokens"][idx])]))
    out.update(_grouped_means(averaged, eps.scenario, cfg))
    ruled = eps.checks.get(RULES_CHECK)  # only envs that check rules say how often they broke
    if ruled is not None:
        keep = idx[ruled[1][idx]]
        out["rule_violation_rate"] = stats.rate(col["violated"][keep], eps.scenario[keep], cfg)
    out["escalation_rate"] = stats.rate(col["escalated"][idx], scen, cfg)
    for check, (values, present) in sorted(eps.checks.items()):
        keep = idx[present[idx]]
        for key in check_keys(check):
            out[key] = stats.rate(values[keep] > 0, eps.scenario[keep], cfg)
    solved = idx[col["success"][idx]]
    out["steps_to_solve_median"] = stats.quantile(col["turns"][solved], 0.5, cfg)
    member = _mask(len(eps.keys), idx)
    owner, valid = eps.calls
    made = member[owner]
    out["tool_call_correctness.schema"] = stats.rate(valid[made], eps.scenario[owner[made]], cfg)
    owner, ms = eps.latency
    out["latency_p95_ms"] = stats.quantile(ms[member[owner]], 0.95, cfg)
    throughput = None
    if cost.gpu_hour_usd is not None and cost.tokens_per_second is None:
        timed = idx[~np.isnan(col["completion"][idx]) & (col["latency_s"][idx] > 0)]
        throughput = stats.ratio(col["completion"][timed], col["latency_s"][timed], cfg)
    out["cost_per_1k_tokens_usd"] = cost_per_1k(cost, throughput, int(idx.size))
    return {key: est for key, est in out.items() if est is not None}


def _grouped_means(
    items: list[tuple[str, np.ndarray, np.ndarray]], scenario: np.ndarray, cfg: StatsConfig
) -> dict[str, Estimate]:
    """Means of (key, values, episode indices); the same indices share one bootstrap call."""
    groups: dict[bytes, tuple[np.ndarray, list[tuple[str, np.ndarray]]]] = {}
    for key, values, keep in items:
        if keep.size:
            groups.setdefault(keep.tobytes(), (keep, []))[1].append((key, values))
    out: dict[str, Estimate] = {}
    for keep, members in groups.values():
        rows = np.stack([values[keep] for _, values in members])
        estimates = stats.means(rows, scenario[keep], cfg)
        out.update({key: est for (key, _), est in zip(members, estimates, strict=True)})
    return out


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


def cost_per_1k(cost: CostConfig, measured_tps: Estimate | None, n: int) -> Estimate | None:
    """The seed's cost per 1k tokens from $/GPU-hr and tokens/s (given, else measured)."""
    if cost.gpu_hour_usd is None:
        return None
    gpu_hour_usd = cost.gpu_hour_usd

    def usd(tps: float) -> float:
        return gpu_hour_usd / (tps * 3600.0) * 1000.0 if tps > 0 else float("inf")

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


def check_keys(check: str) -> list[str]:
    """The metric keys a check feeds: `format:<answer>` → format_pass_rate[tag=<answer>], ..."""
    keys = [metric_key("check_pass_rate", {"name": check})]
    prefixed = {
        "format:": ("format_pass_rate", "tag"),
        "api_version:": ("api_version_match_rate", "version"),
    }
    for prefix, (name, arg) in prefixed.items():
        if check.startswith(prefix):
            keys.append(metric_key(name, {arg: check[len(prefix) :]}))
    keys += {"format": ["format_pass_rate"], "math_correct": ["math_correct_rate"]}.get(check, [])
    return keys
