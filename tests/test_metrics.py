"""evals.metrics: per-slice metrics from trajectories, absent vs zero, paired deltas."""

from __future__ import annotations

import numpy as np
import pytest

from core.records import Termination, TokenUsage, ToolCallRecord, Trajectory
from evals import stats
from evals.deltas import compute_deltas
from evals.metrics import (
    AGGREGATE,
    METRICS,
    CostConfig,
    Episodes,
    compute_metrics,
    metric_key,
)
from evals.stats import PairingError


def episode(i: int, success: bool, **fields: object) -> Trajectory:
    data: dict = {
        "env_id": "toolgym/Test-v0",
        "scenario_id": f"s{i}",
        "scenario_hash": f"h{i}",
        "seed": i,
        "slices": ["math_basic"],
        "termination": Termination.FINAL_ANSWER,
        "success": success,
        "reward": float(success),
        "turns": 3,
    }
    data.update(fields)
    return Trajectory(**data)


def call(valid: bool) -> ToolCallRecord:
    return ToolCallRecord(
        turn=0,
        index=0,
        call_id="c",
        raw="{}",
        name="calc",
        arguments={},
        valid=valid,
        execution="ok" if valid else "error",
    )


def test_slices_and_rates() -> None:
    runs = [
        episode(i, i < 6, slices=["math_basic", *(["hard"] if i >= 5 else [])]) for i in range(10)
    ]
    table = compute_metrics(runs)
    assert set(table.slices) == {AGGREGATE, "math_basic", "hard"}
    agg = table.get(AGGREGATE, "success@1")
    assert agg == stats.wilson(6, 10)
    assert table.get("hard", "success@1") == stats.wilson(1, 5)
    assert table.get(AGGREGATE, "pass@1") == agg  # one try per scenario: pass@1 is success@1


def test_metrics_an_env_does_not_produce_are_absent_not_zero() -> None:
    table = compute_metrics([episode(i, i % 2 == 0) for i in range(6)])
    present = set(table.slices[AGGREGATE])
    for absent in (
        "format_pass_rate",
        "math_correct_rate",
        "tool_call_correctness.schema",
        "latency_p95_ms",
        "tokens_per_episode",
        "cost_per_1k_tokens_usd",
        "rule_violation_rate",
    ):  # no checks["rules"]: the env checks no rules
        assert absent not in present
    for always in ("success@1", "reward", "escalation_rate"):
        assert always in present
    ruled = compute_metrics([episode(i, True, checks={"rules": True}) for i in range(6)])
    assert ruled.get(AGGREGATE, "rule_violation_rate").point == 0.0


def test_checks_components_tool_calls_latency_tokens() -> None:
    runs = [
        episode(
            i,
            i < 8,
            reward_components={"correctness": float(i < 8), "format": 0.5 * (i % 2)},
            checks={
                "format:<answer>": i != 3,
                "math_correct": i < 8,
                "api_version:3.2.1": True,
                "rules": i != 0,
            },
            violations=["diagnosis"] if i == 0 else [],
            tool_calls=[call(True), call(i != 9)],
            latency_ms=[100.0 * (i + 1), 50.0],
            tokens=TokenUsage(prompt=100, completion=20 * (i + 1)),
            turns=i + 1,
        )
        for i in range(10)
    ]
    m = compute_metrics(runs).slices["math_basic"]
    assert m["format_pass_rate[tag=<answer>]"] == stats.wilson(9, 10)
    assert m["check_pass_rate[name=format:<answer>]"] == stats.wilson(9, 10)
    assert m["math_correct_rate"] == stats.wilson(8, 10)
    assert m["api_version_match_rate[version=3.2.1]"].point == 1.0
    assert m["rule_violation_rate"].count == 1
    assert m["reward.correctness"].point == pytest.approx(0.8)
    assert m["reward.format"].point == pytest.approx(0.25)
    assert m["tool_call_correctness.schema"].point == pytest.approx(19 / 20)
    assert m["tool_call_correctness.schema"].n == 20
    latencies = [ms for t in runs for ms in t.latency_ms]
    assert m["latency_p95_ms"].point == pytest.approx(np.quantile(latencies, 0.95))
    assert m["latency_p95_ms"].n == 20
    assert m["tokens_per_episode"].point == pytest.approx(100 + 20 * 5.5)
    assert m["steps_to_solve_median"].point == 4.5  # turns 1..8 of the successful episodes
    assert m["steps_to_solve_median"].n == 8


def test_metric_keys_match_the_registry() -> None:
    assert metric_key("format_pass_rate", {"tag": "<answer>"}) == "format_pass_rate[tag=<answer>]"
    assert METRICS.lookup("pass@3").name == "pass@<k>"
    assert METRICS.lookup("pass^2").name == "pass^<k>"
    assert METRICS.lookup("reward.correctness").name == "reward.<component>"
    assert METRICS.lookup("pass@0") is None and METRICS.lookup("succes@1") is None
    assert METRICS.lookup("api_version_match_rate").required == ("version",)


def test_cost_per_1k_tokens_given_or_measured() -> None:
    runs = [
        episode(i, True, tokens=TokenUsage(prompt=50, completion=100), latency_ms=[2000.0])
        for i in range(20)
    ]
    given = compute_metrics(runs, CostConfig(gpu_hour_usd=2.052, tokens_per_second=30.0))
    assert given.get(AGGREGATE, "cost_per_1k_tokens_usd").point == pytest.approx(0.019)
    measured = compute_metrics(runs, CostConfig(gpu_hour_usd=3.6))
    est = measured.get(AGGREGATE, "cost_per_1k_tokens_usd")  # 100 tokens / 2 s = 50 tok/s
    assert est.point == pytest.approx(3.6 / (50 * 3600) * 1000)
    assert compute_metrics(runs).get(AGGREGATE, "cost_per_1k_tokens_usd") is None


def test_policy_errors_are_excluded_and_counted() -> None:
    runs = [episode(i, i < 4) for i in range(8)]
    runs += [episode(8, False, termination=Termination.POLICY_ERROR)]
    table = compute_metrics(runs)
    assert table.get(AGGREGATE, "success@1") == stats.wilson(4, 8)
    errors = table.get(AGGREGATE, "policy_error_rate")
    assert errors.count == 1 and errors.n == 9


def test_epochs_give_pass_at_k_and_a_clustered_success_interval() -> None:
    outcomes = {0: [1, 1, 1], 1: [1, 0, 0], 2: [0, 0, 0], 3: [1, 1, 0]}
    runs = [
        episode(s, bool(ok), epoch=e, seed=10 * s + e)
        for s, tries in outcomes.items()
        for e, ok in enumerate(tries)
    ]
    table = compute_metrics(runs).slices[AGGREGATE]
    n, c = np.array([3, 3, 3, 3]), np.array([3, 1, 0, 2])
    for k in (1, 2, 3):
        assert table[f"pass@{k}"].point == pytest.approx(stats.pass_at_k(n, c, k).point)
        assert table[f"pass^{k}"].point == pytest.approx(stats.pass_hat_k(n, c, k).point)
    assert "pass@4" not in table
    success = table["success@1"]
    assert success.point == pytest.approx(6 / 12) and success.method == "wilson-clustered"
    assert success.lower_ci < stats.wilson(6, 12).lower_ci


def test_deltas_pair_by_key_and_count_the_unpaired() -> None:
    base = [episode(i, i < 3, reward_components={"c": 0.1 * i}) for i in range(10)]
    cand = [episode(i, i < 7, reward_components={"c": 0.1 * i + 0.05}) for i in range(12)]
    table = compute_deltas(cand, base)
    d = table.get("math_basic", "success@1")
    assert d.point == pytest.approx(0.4) and d.n_pairs == 10 and d.n_unpaired == 2
    assert d.test == "mcnemar-exact"
    assert d.p_value == pytest.approx(
        stats.paired_delta(np.arange(10) < 7, np.arange(10) < 3, binary=True, label="x").p_value
    )
    comp = table.get(AGGREGATE, "reward.c")
    assert comp.test == "wilcoxon-signed-rank" and comp.point == pytest.approx(0.05)
    only = compute_deltas(cand, base, only=[("math_basic", "success@1"), ("nope", "reward")])
    assert set(only.slices) == {"math_basic"}
    with pytest.raises(PairingError, match="slice 'nope' is not in both runs"):
        only.get("nope", "reward")


def test_deltas_refuse_different_frozen_scenarios_and_duplicates() -> None:
    base = [episode(i, True) for i in range(4)]
    changed = [episode(i, True, scenario_hash="other" if i == 2 else f"h{i}") for i in range(4)]
    with pytest.raises(PairingError, match="scenario_hash"):
        compute_deltas(changed, base)
    with pytest.raises(PairingError, match="twice"):
        compute_deltas([*base, base[0]], base)


def test_a_metric_with_no_pairs_is_a_problem_naming_it() -> None:
    base = [episode(i, True, checks={"math_correct": True}) for i in range(4)]
    cand = [episode(i, True, checks={"math_correct": True}) for i in range(4, 8)]
    table = compute_deltas(cand, base, only=[("math_basic", "math_correct_rate")])
    with pytest.raises(PairingError, match=r"delta.math_correct_rate on slice 'math_basic': no"):
        table.get("math_basic", "math_correct_rate")


def test_results_are_deterministic_and_accept_episodes() -> None:
    rng = np.random.default_rng(0)
    runs = [
        episode(
            i,
            bool(rng.random() < 0.6),
            reward=float(rng.normal()),
            latency_ms=[float(rng.uniform(100, 900))],
        )
        for i in range(300)
    ]
    first = compute_metrics(runs).model_dump()
    assert compute_metrics(runs).model_dump() == first
    assert compute_metrics(Episodes.of(runs)).model_dump() == first
    success = first["slices"][AGGREGATE]["success@1"]
    assert (success["point"], success["n"]) == (sum(t.success for t in runs) / 300, 300)


def test_reserved_slice_name_is_refused() -> None:
    with pytest.raises(ValueError, match="reserved"):
        compute_metrics([episode(0, True, slices=["aggregate"])])
