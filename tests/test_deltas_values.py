"""evals.deltas on eight paired episodes with checks, values worked out by hand.

Baseline: s0..s2 succeed, s1 breaks a rule, math_correct on s0..s3, format on all.
Candidate: s0..s5 succeed, no violation, math_correct on s0..s5, format on s0..s6.
Paired (8 twins): success +3/8 (3 gained, none lost: exact McNemar p = 2 x 0.5³ = 0.25);
violations −1/8; math_correct +2/8 (p = 2 x 0.5² = 0.5); format −1/8 (p = 1).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from core.records import Termination, Trajectory
from evals import stats
from evals.deltas import compute_deltas
from evals.stats import PairingError, StatsConfig


def episode(i: int, success: bool, *, epoch: int = 0, **fields: object) -> Trajectory:
    data: dict = {
        "env_id": "toolgym/T-v0",
        "scenario_id": f"s{i}",
        "scenario_hash": f"h{i}",
        "seed": i,
        "epoch": epoch,
        "slices": ["math"],
        "termination": Termination.FINAL_ANSWER,
        "success": success,
        "reward": float(success),
    }
    data.update(fields)
    return Trajectory(**data)


def baseline_run() -> list[Trajectory]:
    return [
        episode(
            i,
            i < 3,
            checks={"math_correct": i < 4, "format:<a>": True, "rules": i != 1},
            violations=["diagnosis"] if i == 1 else [],
        )
        for i in range(8)
    ]


def candidate_run() -> list[Trajectory]:
    return [
        episode(i, i < 6, checks={"math_correct": i < 6, "format:<a>": i < 7, "rules": True})
        for i in range(8)
    ]


def test_without_only_every_pairable_metric_of_every_shared_slice() -> None:
    table = compute_deltas(candidate_run(), baseline_run(), n_resamples=100)
    expected = {
        "success@1": (0.375, 0.25, "mcnemar-exact"),
        "reward": (0.375, None, "wilcoxon-signed-rank"),
        "escalation_rate": (0.0, 1.0, "mcnemar-exact"),
        "rule_violation_rate": (-0.125, 1.0, "mcnemar-exact"),
        "check_pass_rate[name=format:<a>]": (-0.125, 1.0, "mcnemar-exact"),
        "format_pass_rate[tag=<a>]": (-0.125, 1.0, "mcnemar-exact"),
        "check_pass_rate[name=math_correct]": (0.25, 0.5, "mcnemar-exact"),
        "math_correct_rate": (0.25, 0.5, "mcnemar-exact"),
        "check_pass_rate[name=rules]": (0.125, 1.0, "mcnemar-exact"),
    }
    assert set(table.slices) == {"aggregate", "math"}
    for slice_name in ("aggregate", "math"):
        found = table.slices[slice_name]
        assert set(found) == set(expected)
        for key, (point, p_value, test) in expected.items():
            delta = found[key]
            assert (delta.point, delta.test, delta.n_pairs) == (pytest.approx(point), test, 8)
            if p_value is not None:
                assert delta.p_value == pytest.approx(p_value)
    reward_p = sps.wilcoxon([0, 0, 0, 1, 1, 1, 0, 0], zero_method="pratt").pvalue
    assert table.get("math", "reward").p_value == pytest.approx(reward_p)
    assert table.problems == {}


def test_component_deltas_are_continuous_and_only_shared_components() -> None:
    base = [episode(i, True, reward_components={"outcome": 0.5, "style": 1.0}) for i in range(6)]
    cand = [
        episode(i, True, reward_components={"outcome": 0.5 + 0.1 * i, "tone": 1.0})
        for i in range(6)
    ]
    table = compute_deltas(cand, base, n_resamples=100)
    keys = set(table.slices["math"])
    assert keys == {"success@1", "reward", "escalation_rate", "reward.outcome"}
    delta = table.get("math", "reward.outcome")
    assert delta.test == "wilcoxon-signed-rank" and delta.point == pytest.approx(0.25)


def test_twins_lost_to_a_policy_error_are_left_out_and_counted() -> None:
    base = baseline_run()
    cand = candidate_run()
    cand[7] = episode(7, False, termination=Termination.POLICY_ERROR)
    base[6] = episode(6, False, termination=Termination.POLICY_ERROR)
    table = compute_deltas(cand, base, only=[("math", "success@1")], n_resamples=100)
    delta = table.get("math", "success@1")
    assert (delta.n_pairs, delta.n_unpaired) == (6, 4)  # 2 twins out: 2 episodes each
    assert delta.point == pytest.approx(3 / 6)


def test_a_check_on_some_episodes_pairs_where_both_have_it() -> None:
    base = [episode(i, True, checks={"math_correct": False} if i < 5 else {}) for i in range(8)]
    cand = [episode(i, True, checks={"math_correct": True} if i > 1 else {}) for i in range(8)]
    table = compute_deltas(cand, base, only=[("math", "math_correct_rate")], n_resamples=100)
    delta = table.get("math", "math_correct_rate")
    # both have it on s2, s3, s4: 3 pairs, each gained; base-only s0, s1 and cand-only s5..s7
    assert (delta.n_pairs, delta.n_unpaired, delta.point) == (3, 5, 1.0)


def test_absent_and_unpairable_metrics_are_problems_naming_them() -> None:
    plain = [episode(i, i < 2) for i in range(4)]
    table = compute_deltas(
        candidate_run()[:4],
        plain,
        only=[
            ("math", "rule_violation_rate"),
            ("math", "latency_p95_ms"),
            ("math", "reward.outcome"),
            ("math", "success@1"),
        ],
        n_resamples=100,
    )
    assert table.problems == {
        "math": {
            "rule_violation_rate": (
                "delta.rule_violation_rate on slice 'math': absent in the baseline run"
            ),
            "latency_p95_ms": (
                "delta.latency_p95_ms on slice 'math': this metric has no paired delta"
            ),
            "reward.outcome": "delta.reward.outcome on slice 'math': absent in the candidate run",
        }
    }
    assert set(table.slices["math"]) == {"success@1"}
    with pytest.raises(PairingError, match="absent in the baseline run"):
        table.get("math", "rule_violation_rate")


def test_a_slice_missing_from_one_run_lists_the_shared_ones() -> None:
    base = [episode(i, True, slices=["math", "easy"]) for i in range(4)]
    cand = [episode(i, True, slices=["math", "hard"]) for i in range(4)]
    table = compute_deltas(cand, base, only=[("hard", "success@1")], n_resamples=100)
    assert table.problems == {
        "hard": {
            "success@1": (
                "delta.success@1: slice 'hard' is not in both runs; shared slices: aggregate, math"
            )
        }
    }
    assert table.slices == {}


def test_epochs_pair_per_scenario() -> None:
    base = [episode(i, e == 0, epoch=e) for i in range(4) for e in range(3)]
    cand = [episode(i, e < 2 or i == 0, epoch=e) for i in range(4) for e in range(3)]
    table = compute_deltas(cand, base, only=[("math", "success@1")], n_resamples=100)
    delta = table.get("math", "success@1")
    # per scenario: s0 3/3 vs 1/3 (+2/3); s1..s3 2/3 vs 1/3 (+1/3)
    assert (delta.unit, delta.n_pairs, delta.test) == ("scenario", 12, "wilcoxon-signed-rank")
    assert delta.point == pytest.approx((2 / 3 + 3 * (1 / 3)) / 4)


def test_confidence_reaches_the_table() -> None:
    table = compute_deltas(candidate_run(), baseline_run(), confidence=0.8, n_resamples=100)
    assert table.confidence == 0.8
    wide = compute_deltas(candidate_run(), baseline_run(), confidence=0.99, n_resamples=100)
    narrow, broad = table.get("math", "reward"), wide.get("math", "reward")
    assert broad.upper_ci - broad.lower_ci > narrow.upper_ci - narrow.lower_ci


def test_changed_scenarios_and_duplicates_are_named() -> None:
    base = [episode(i, True) for i in range(4)]
    changed = [episode(i, True, scenario_hash="x" if i in (1, 3) else f"h{i}") for i in range(4)]
    with pytest.raises(PairingError) as raised:
        compute_deltas(changed, base)
    assert str(raised.value) == (
        "2 scenarios differ between candidate and baseline (scenario_hash), "
        "e.g. ('toolgym/T-v0', 's1', 0): the runs did not use the same frozen scenarios"
    )
    with pytest.raises(
        PairingError, match=r"^candidate run has episode \('toolgym/T-v0', 's0', 0\)"
    ):
        compute_deltas([*base, base[0]], base)
    with pytest.raises(PairingError, match=r"^baseline run has episode .* twice: cannot pair$"):
        compute_deltas(base, [*base, base[0]])


def test_unpaired_episodes_when_runs_cover_different_scenarios() -> None:
    base = [episode(i, i % 2 == 0) for i in range(6)]
    cand = [episode(i, True) for i in range(3, 9)]
    delta = compute_deltas(cand, base, only=[("math", "success@1")], n_resamples=100).get(
        "math", "success@1"
    )
    # twins s3, s4, s5: base F, T, F; cand all T: +2/3; 3 + 3 unpaired
    assert (delta.n_pairs, delta.n_unpaired) == (3, 6)
    assert delta.point == pytest.approx(2 / 3)
    assert np.isclose(delta.p_value, 0.5)  # 2 gained, 0 lost: 2 x 0.5²


def test_only_what_both_runs_have_is_paired_without_only() -> None:
    base = [
        episode(i, True, slices=["math", "easy"], reward_components={"a": 1.0},
                checks={"x": True})
        for i in range(4)
    ]  # fmt: skip
    cand = [
        episode(i, True, slices=["math", "hard"], reward_components={"b": 1.0},
                checks={"rules": True, "y": True})
        for i in range(4)
    ]  # fmt: skip
    table = compute_deltas(cand, base, n_resamples=100)
    assert table.problems == {}
    assert set(table.slices) == {"aggregate", "math"}
    assert set(table.slices["math"]) == {"success@1", "reward", "escalation_rate"}


def test_a_key_without_pairs_does_not_stop_the_others() -> None:
    base = [episode(i, i < 2, checks={"math_correct": True} if i < 2 else {}) for i in range(6)]
    cand = [episode(i, i < 4, checks={"math_correct": True} if i >= 2 else {}) for i in range(6)]
    table = compute_deltas(
        cand,
        base,
        only=[("math", "math_correct_rate"), ("math", "success@1"), ("math", "reward")],
        n_resamples=100,
    )
    assert set(table.problems["math"]) == {"math_correct_rate"}  # no episode has it in both
    assert table.get("math", "success@1").point == pytest.approx(2 / 6)


def test_keys_pairing_different_episodes_in_one_slice() -> None:
    base = [episode(i, False, checks={"math_correct": False} if i < 3 else {}) for i in range(6)]
    cand = [episode(i, True, checks={"math_correct": True}) for i in range(6)]
    table = compute_deltas(
        cand, base, only=[("math", "success@1"), ("math", "math_correct_rate")], n_resamples=100
    )
    assert table.get("math", "success@1").n_pairs == 6
    assert table.get("math", "math_correct_rate").n_pairs == 3


def test_the_stats_settings_reach_the_deltas() -> None:
    rng = np.random.default_rng(3)  # continuous rewards: intervals move with the settings
    base_rewards, shifts = rng.normal(size=12), rng.normal(0.3, 1.0, size=12)
    base = [episode(i, True, reward=float(base_rewards[i])) for i in range(12)]
    cand = [episode(i, True, reward=float(base_rewards[i] + shifts[i])) for i in range(12)]
    cand_r = np.array([t.reward for t in cand])
    base_r = np.array([t.reward for t in base])

    def reward_delta(**settings: int):
        table = compute_deltas(cand, base, only=[("math", "reward")], **settings)
        return table.get("math", "reward")

    default = reward_delta()
    assert default == reward_delta(n_resamples=2000, seed=0)  # the documented defaults
    for resamples, seed in ((100, 0), (2000, 5)):
        got = reward_delta(n_resamples=resamples, seed=seed)
        cfg = StatsConfig(n_resamples=resamples, seed=seed)
        ref = stats.paired_delta(cand_r, base_r, binary=False, label="x", cfg=cfg)
        assert (got.lower_ci, got.upper_ci) == (ref.lower_ci, ref.upper_ci)
        assert (got.lower_ci, got.upper_ci) != (default.lower_ci, default.upper_ci)
