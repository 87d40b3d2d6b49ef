"""evals.gate on ten-episode runs and four-request canary logs: every value by hand.

Runs (scenarios s0..s9; slice `math` = s0..s5, `tools` = s6..s9):

| run       | successes            | success@1 | math | tools |
| candidate | s0..s7               | 0.8       | 6/6  | 2/4   |
| baseline  | s0..s4, s8           | 0.6       | 5/6  | 1/4   |

Paired: s5, s6, s7 gained, s8 lost, so Δ aggregate = (3 − 1)/10 = +0.2, exact McNemar
p = P(≤1 of 4 | ½) x 2 = 0.625; Δ tools = (2 − 1)/4 = +0.25; Δ math = 1/6.

Canary log (4 requests, 60 prompt + 40 completion tokens each, latency 100..400 ms,
the first abandoned): abandon rate 0.25, tokens per request 100, p95 latency
300 + 0.85 x 100 = 385 ms; billed $0.002 a request → $0.02 per 1k tokens; unbilled, the
measured throughput 160 tokens / 1.0 s with $2.88/GPU-hour → 2.88 / (160 x 3600) x 1000
= $0.005 per 1k tokens.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

import envs
from configs import ConfigError
from core.records import Termination, TokenUsage, Trajectory, read_jsonl, write_jsonl
from evals import stats
from evals.deltas import compute_deltas
from evals.gate import (
    CanaryRecord,
    GateError,
    GateSettings,
    _field,
    _Inputs,
    canary_metrics,
    evaluate,
    load_run,
    main,
    read_canary_log,
    rules_path,
    run_gate,
    settings_from_overrides,
)
from evals.metrics import CostConfig, compute_metrics
from evals.rules import parse_rules
from evals.stats import Delta, Estimate, StatsConfig

SLICE = {i: "math" if i < 6 else "tools" for i in range(10)}
CANDIDATE_WINS = set(range(8))
BASELINE_WINS = {0, 1, 2, 3, 4, 8}


def episode(
    i: int, success: bool, *, errored: bool = False, slices: list[str] | None = None
) -> Trajectory:
    return Trajectory(
        env_id="toolgym/T-v0",
        scenario_id=f"s{i}",
        scenario_hash=f"h{i}",
        seed=i,
        slices=[SLICE[i % 10]] if slices is None else slices,
        termination=Termination.POLICY_ERROR if errored else Termination.FINAL_ANSWER,
        success=success,
        reward=float(success) + i / 100,  # continuous: bootstrap intervals move with the seed
        turns=3 if success else 6,
        tokens=TokenUsage(prompt=60, completion=40),
        latency_ms=[500.0],
    )


def write_run(
    path: Path,
    wins: set[int],
    *,
    n: int = 10,
    errored: frozenset[int] = frozenset(),
    manifest: dict | None = None,
    tag: str | None = None,
) -> Path:
    """A run dir; every episode tagged `tag` if given, else by `SLICE`."""
    path.mkdir(parents=True)
    slices = None if tag is None else [tag]
    episodes = [episode(i, i in wins, errored=i in errored, slices=slices) for i in range(n)]
    write_jsonl(path / "episodes.jsonl", episodes)
    if manifest is not None:
        (path / "manifest.json").write_text(json.dumps(manifest))
    return path


def write_rules(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def canary_log(path: Path, *, billed: bool = True, extra: list[dict] | None = None) -> Path:
    rows = [
        {
            "request_id": f"r{i}",
            "model": "cand",
            "abandoned": i == 0,
            "safety_incident": False,
            "latency_ms": 100.0 * (i + 1),
            "prompt_tokens": 60,
            "completion_tokens": 40,
            **({"cost_usd": 0.002} if billed else {}),
        }
        for i in range(4)
    ]
    path.write_text("\n".join(json.dumps(r) for r in [*rows, *(extra or [])]) + "\n")
    return path


@pytest.fixture
def runs(tmp_path: Path) -> dict[str, Path]:
    return {
        "candidate": write_run(
            tmp_path / "cand", CANDIDATE_WINS, manifest={"cost": {"gpu_hour_usd": 2.88}}
        ),
        "baseline": write_run(tmp_path / "base", BASELINE_WINS),
        "root": tmp_path,
    }


def gate(runs: dict[str, Path], rules: str, **settings: object):
    path = write_rules(runs["root"] / "rules.txt", rules)
    values = {
        "rules": str(path),
        "candidate": str(runs["candidate"]),
        "baseline": str(runs["baseline"]),
        "n_resamples": 100,
        **settings,
    }
    return run_gate(GateSettings.model_validate(values))


def by_text(result) -> dict[str, tuple[float, bool]]:
    return {r.text: (r.value, r.passed) for r in result.results}


def test_metric_and_delta_rules_get_the_hand_values(runs: dict[str, Path]) -> None:
    result = gate(
        runs,
        "success@1.point >= 0.8\n"
        "success@1(math).n == 6\n"
        "success@1(tools).count == 2\n"
        "delta.success@1.point >= 0.2\n"
        "delta.success@1.p_value == 0.625\n"
        "delta.success@1(tools).point == 0.25\n"
        "delta.success@1(tools).n == 4\n",
    )
    assert by_text(result) == {
        "success@1.point >= 0.8": (0.8, True),
        "success@1(math).n == 6": (6.0, True),
        "success@1(tools).count == 2": (2.0, True),
        "delta.success@1.point >= 0.2": (pytest.approx(0.2), True),
        "delta.success@1.p_value == 0.625": (pytest.approx(0.625), True),
        "delta.success@1(tools).point == 0.25": (0.25, True),
        "delta.success@1(tools).n == 4": (4.0, True),
    }
    assert result.go is True


def test_a_rule_just_missed_is_no_go(runs: dict[str, Path]) -> None:
    result = gate(runs, "success@1.point > 0.8\nsuccess@1(math).point >= 1.0\n")
    assert by_text(result) == {
        "success@1.point > 0.8": (0.8, False),
        "success@1(math).point >= 1.0": (1.0, True),
    }
    assert result.go is False and [r.text for r in result.failing] == ["success@1.point > 0.8"]


def test_rows_list_slices_aggregate_last_with_both_runs(runs: dict[str, Path]) -> None:
    result = gate(runs, "success@1(math).point >= 0.9\nsuccess@1(math).n >= 7\n")
    rows = {row.slice: row for row in result.rows}
    assert [row.slice for row in result.rows] == ["math", "tools", "aggregate"]
    assert rows["tools"].candidate.point == 0.5 and rows["tools"].baseline.point == 0.25
    assert rows["aggregate"].candidate.point == 0.8 and rows["aggregate"].baseline.point == 0.6
    assert rows["math"].candidate_counts == "6 / 0" and rows["math"].baseline_counts == "6 / 0"
    # two rules, one note each; the slice's mark is ✗ if any rule behind it failed
    assert rows["math"].notes == [
        ("success@1 0.8333 → 1", True),
        ("success@1.n 6 → 6", False),
    ]
    assert rows["tools"].notes == []


def test_rows_without_a_baseline_show_dashes(runs: dict[str, Path]) -> None:
    result = gate(runs, "success@1.point >= 0.5\n", baseline=None)
    row = result.rows[-1]
    assert (row.slice, row.baseline, row.baseline_counts) == ("aggregate", None, "—")
    assert row.notes == [("success@1 0.8", True)]


@pytest.mark.parametrize(
    ("rules", "passed"),
    [
        ("no_regressions_on: [tools]\n", [True]),  # Δ tools = +0.25
        ("no_regressions_on: [math, tools]\n", [True, True]),
    ],
)
def test_no_regressions_on_improved_slices_passes(
    runs: dict[str, Path], rules: str, passed: list[bool]
) -> None:
    result = gate(runs, rules)
    assert [r.passed for r in result.results] == passed
    assert result.results[-1].text == "no_regressions_on: tools"
    assert result.results[-1].value == 0.25


def test_regression_tolerance_and_alpha(tmp_path: Path) -> None:
    # 20 tools pairs: the candidate loses 6 the baseline won, gains none: Δ = -0.3,
    # exact McNemar p = 2 x 0.5^6 = 0.03125
    base = write_run(tmp_path / "base", set(range(20)), n=20, tag="tools")
    cand = write_run(tmp_path / "cand", set(range(6, 20)), n=20, tag="tools")
    runs = {"candidate": cand, "baseline": base, "root": tmp_path}

    def verdict(settings: str) -> tuple[float, bool, str]:
        result = gate(runs, settings + "no_regressions_on: [tools]\n")
        (only,) = result.results
        return only.value, only.passed, only.detail

    value, passed, detail = verdict("")
    assert (value, passed) == (pytest.approx(-0.3), False)  # tolerance 0: any drop fails
    assert detail.endswith("; tolerance 0, α=0.05")
    assert verdict("no_regressions_tolerance: 0.5\n")[1] is False  # significant: p < 0.05
    assert verdict("no_regressions_tolerance: 0.5\nno_regressions_alpha: 0.03\n")[1] is True
    assert verdict("no_regressions_tolerance: 0.3\nno_regressions_alpha: 0.01\n")[1] is True
    assert verdict("no_regressions_tolerance: 0.29\nno_regressions_alpha: 0.01\n")[1] is False


def test_a_metric_the_candidate_lacks_but_the_baseline_has_fails(tmp_path: Path) -> None:
    base = write_run(tmp_path / "base", {6, 7})  # tools successes: a median of turns
    cand = write_run(tmp_path / "cand", {0, 1})  # none on tools
    runs = {"candidate": cand, "baseline": base, "root": tmp_path}
    result = gate(runs, "steps_to_solve_median(tools).point <= 5\n")
    (only,) = result.results
    assert only.passed is False and math.isnan(only.value)
    assert only.detail.startswith("absent in the candidate run (baseline: point 3,")
    assert only.note == "steps_to_solve_median absent (e.g. no successful episode) ✗"


def test_a_metric_neither_run_has_is_an_error(tmp_path: Path) -> None:
    runs = {
        "candidate": write_run(tmp_path / "cand", {0}),
        "baseline": write_run(tmp_path / "base", {0}),
        "root": tmp_path,
    }
    with pytest.raises(GateError) as raised:
        gate(runs, "steps_to_solve_median(tools).point <= 5\n")
    message = str(raised.value)
    assert "metric 'steps_to_solve_median' is absent on slice 'tools'" in message
    assert "present: escalation_rate, " in message


def test_canary_rules_get_the_billed_hand_values(runs: dict[str, Path]) -> None:
    result = gate(
        runs,
        "[staging_to_production]\n"
        "canary.abandon_rate.point == 0.25\n"
        "canary.abandon_rate.count == 1\n"
        "canary.safety_incidents.count == 0\n"
        "canary.safety_incident_rate.point == 0\n"
        "canary.latency_p95_ms.point == 385\n"
        "canary.tokens_per_request.point == 100\n"
        "canary.cost_per_1k_tokens_usd.point == 0.02\n"
        "canary.abandon_rate.n == 4\n",
        stage="staging_to_production",
        canary=str(canary_log(runs["root"] / "canary.jsonl")),
    )
    assert all(passed for _, passed in by_text(result).values()), by_text(result)
    assert [row.slice for row in result.rows][-1] == "canary"


def test_unbilled_canary_cost_comes_from_throughput_and_gpu_price(runs: dict[str, Path]) -> None:
    log = canary_log(runs["root"] / "canary.jsonl", billed=False)
    result = gate(
        runs,
        "[staging_to_production]\ncanary.cost_per_1k_tokens_usd.point == 0.005\n",
        stage="staging_to_production",
        canary=str(log),
    )
    (only,) = result.results
    assert only.value == pytest.approx(0.005) and only.passed is True


def test_canary_rules_are_skipped_at_the_dev_stage(runs: dict[str, Path]) -> None:
    result = gate(
        runs, "success@1.point >= 0.5\n[staging_to_production]\ncanary.abandon_rate.point <= 0\n"
    )
    assert [r.text for r in result.results] == ["success@1.point >= 0.5"]


def test_canary_log_of_several_models_needs_a_model(tmp_path: Path) -> None:
    other = {
        "request_id": "o1",
        "model": "other",
        "abandoned": True,
        "safety_incident": True,
        "latency_ms": 5.0,
        "prompt_tokens": 1,
        "completion_tokens": 1,
        "cost_usd": 1.0,
    }
    log = canary_log(tmp_path / "canary.jsonl", extra=[other])
    with pytest.raises(GateError, match=r"several models \(cand, other\); pass canary_model=NAME"):
        read_canary_log(log)
    records = read_canary_log(log, "cand")
    assert [r.request_id for r in records] == ["r0", "r1", "r2", "r3"]
    assert [r.request_id for r in read_canary_log(log, "other")] == ["o1"]
    with pytest.raises(GateError, match=r"no requests for model 'x' \(models: cand, other\)"):
        read_canary_log(log, "x")


def test_canary_cost_on_some_lines_only_is_refused(tmp_path: Path) -> None:
    unpriced = {
        "request_id": "r9",
        "model": "cand",
        "abandoned": False,
        "safety_incident": False,
        "latency_ms": 5.0,
        "prompt_tokens": 1,
        "completion_tokens": 1,
    }
    log = canary_log(tmp_path / "canary.jsonl", extra=[unpriced])
    with pytest.raises(GateError, match=r"cost_usd on 4 of 5 requests: all or none"):
        read_canary_log(log)


def test_canary_log_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(GateError, match=r"^canary log .*absent\.jsonl: "):
        read_canary_log(tmp_path / "absent.jsonl")
    blank_lines = tmp_path / "blank.jsonl"
    blank_lines.write_text("\n   \n")
    with pytest.raises(GateError, match=r"no requests for model None \(models: \)"):
        read_canary_log(blank_lines)
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n" + json.dumps({"request_id": "r", "model": "m"}) + "\n")
    with pytest.raises(GateError, match=r"bad\.jsonl:2: not a canary record"):
        read_canary_log(bad)


def test_field_reads_n_pairs_of_a_delta_and_refuses_a_missing_count() -> None:
    delta = Delta(point=0.1, lower_ci=0, upper_ci=0.2, p_value=0.5, n_pairs=9, test="t")
    assert _field(delta, "n", "here") == 9.0
    assert _field(delta, "p_value", "here") == 0.5
    est = Estimate(point=0.5, lower_ci=0.4, upper_ci=0.6, n=12, method="m")
    assert _field(est, "n", "here") == 12.0
    with pytest.raises(GateError, match=r"^here: this metric has no 'count'$"):
        _field(est, "count", "here")


def test_rules_that_cannot_be_checked_are_all_reported(runs: dict[str, Path]) -> None:
    with pytest.raises(GateError) as raised:
        gate(
            runs,
            "success@1(mth).point >= 0.5\n"
            "delta.success@1(tool).point >= 0\n"
            "no_regressions_on: [maths]\n",
        )
    lines = str(raised.value).splitlines()
    assert lines[0] == "rules cannot be checked:"
    assert "unknown slice 'mth'; the candidate run has: aggregate, math, tools" in lines[1]
    assert "unknown slice 'tool'" in lines[2]
    assert lines[3].endswith(
        "no_regressions_on 'maths': unknown slice; the candidate run has: aggregate, math, tools"
    )


def test_paired_rules_need_a_baseline_and_canary_rules_a_log(runs: dict[str, Path]) -> None:
    with pytest.raises(GateError, match=r"^baseline=RUN_DIR is required by .*rules\.txt:2: "):
        gate(runs, "success@1.point >= 0\nno_regressions_on: [math]\n", baseline=None)
    with pytest.raises(GateError, match=r"^canary=LOG is required by .*rules\.txt:1: canary\."):
        gate(runs, "canary.abandon_rate.point <= 1\n")


def test_run_dir_errors(tmp_path: Path, runs: dict[str, Path]) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(GateError, match=r"empty: not a run dir \(no episodes\.jsonl\)"):
        gate(runs, "success@1.point >= 0\n", candidate=str(tmp_path / "empty"))
    (tmp_path / "none").mkdir()
    (tmp_path / "none" / "episodes.jsonl").write_text("")
    with pytest.raises(GateError, match=r"episodes\.jsonl: no episodes"):
        gate(runs, "success@1.point >= 0\n", candidate=str(tmp_path / "none"))
    bad = write_run(tmp_path / "bad", {0}, manifest={"cost": {"gpu_hour_usd": -1}})
    with pytest.raises(GateError, match=r"manifest\.json: bad 'cost' or 'config' entry"):
        gate(runs, "success@1.point >= 0\n", candidate=str(bad))


def test_an_incomplete_run_is_refused_unless_allowed_or_within_its_limit(tmp_path: Path) -> None:
    # 1 of 10 episodes lost to infrastructure: 10% > the default 5%
    cand = write_run(tmp_path / "cand", CANDIDATE_WINS, errored=frozenset({9}))
    runs = {
        "candidate": cand,
        "baseline": write_run(tmp_path / "b", BASELINE_WINS),
        "root": tmp_path,
    }
    with pytest.raises(GateError, match=r"cand: incomplete run: 9 of 10 episodes completed"):
        gate(runs, "success@1.point >= 0\n")
    allowed = gate(runs, "success@1.point >= 0\n", allow_incomplete=True)
    assert allowed.notes == [
        "candidate: 1 of 10 episodes ended in policy_error (infrastructure) "
        "and are left out of every metric"
    ]
    assert allowed.results[0].value == pytest.approx(8 / 9)
    lenient = write_run(
        tmp_path / "lenient",
        CANDIDATE_WINS,
        errored=frozenset({9}),
        manifest={"config": {"max_infra_failure_rate": 0.1}},
    )
    assert gate(runs, "success@1.point >= 0\n", candidate=str(lenient)).go is True


def test_baseline_policy_errors_are_noted(tmp_path: Path) -> None:
    base = write_run(tmp_path / "base", BASELINE_WINS, errored=frozenset({9}))
    runs = {
        "candidate": write_run(tmp_path / "c", CANDIDATE_WINS),
        "baseline": base,
        "root": tmp_path,
    }
    result = gate(runs, "no_regressions_on: [math]\n", allow_incomplete=True)
    assert result.notes == [
        "baseline: 1 of 10 episodes ended in policy_error (infrastructure) "
        "and are left out of every metric"
    ]


def test_rules_from_a_file_a_resource_or_an_env_name(tmp_path: Path) -> None:
    path = write_rules(tmp_path / "r.rules", "success@1.point >= 0\n")
    assert rules_path(str(path)) == path
    packaged = rules_path("promotion:refund_agent.rules")
    assert packaged.name == "refund_agent.rules" and packaged.is_file()
    assert rules_path("refund_agent") == packaged
    with pytest.raises(GateError, match=r"rules: 'nope' is not a file, a 'package:path' resource"):
        rules_path("nope")


def test_settings_name_the_missing_or_bad_key() -> None:
    with pytest.raises(
        ConfigError, match=r"missing rules=\.\.\. \(configs/gate\.yaml key 'rules'\)"
    ):
        settings_from_overrides(["candidate=x"])
    with pytest.raises(ConfigError, match=r"missing candidate=\.\.\."):
        settings_from_overrides(["rules=x"])
    with pytest.raises(ConfigError, match=r"configs/gate\.yaml: key 'confidence': "):
        settings_from_overrides(["rules=x", "candidate=y", "confidence=1.5"])
    settings = settings_from_overrides(["rules=7", "candidate=8", "canary_model=9"])
    assert (settings.rules, settings.candidate, settings.canary_model) == ("7", "8", "9")
    assert settings.stage == "dev_to_staging" and settings.allow_incomplete is False


def test_main_exit_status_and_markdown(
    runs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    go_rules = write_rules(runs["root"] / "go.rules", "success@1.point >= 0.8\n")
    no_go = write_rules(runs["root"] / "nogo.rules", "success@1.point > 0.8\n")
    args = [f"candidate={runs['candidate']}", "n_resamples=100"]
    md = runs["root"] / "report.md"
    assert main([f"rules={go_rules}", *args, f"markdown={md}"]) == 0
    out = capsys.readouterr().out
    assert "VERDICT: GO" in out and "NO-GO" not in out
    assert "**VERDICT: GO" in md.read_text()
    assert main([f"rules={no_go}", *args]) == 1
    assert "VERDICT: NO-GO" in capsys.readouterr().out
    assert main([f"rules={runs['root'] / 'absent.rules'}", *args]) == 2
    assert "gate error: rules: '" in capsys.readouterr().err


def test_canary_record_rejects_negative_numbers() -> None:
    row = {
        "request_id": "r",
        "model": "m",
        "abandoned": False,
        "safety_incident": False,
        "latency_ms": -1.0,
        "prompt_tokens": 1,
        "completion_tokens": 1,
    }
    with pytest.raises(ValueError, match="latency_ms"):
        CanaryRecord.model_validate(row)


def test_a_significant_improvement_is_no_regression_and_p_equal_to_alpha_passes(
    tmp_path: Path,
) -> None:
    # 20 tools pairs, 6 gained and none lost: Δ = +0.3, p = 2 x 0.5^6 = 0.03125 exactly
    base = write_run(tmp_path / "base", set(range(6, 20)), n=20, tag="tools")
    cand = write_run(tmp_path / "cand", set(range(20)), n=20, tag="tools")
    runs = {"candidate": cand, "baseline": base, "root": tmp_path}
    (better,) = gate(runs, "no_regressions_on: [tools]\n").results
    assert (better.value, better.passed) == (pytest.approx(0.3), True)
    worse = {"candidate": base, "baseline": cand, "root": tmp_path}
    at_alpha = gate(worse, "no_regressions_tolerance: 0.5\nno_regressions_alpha: 0.03125\n"
                    "no_regressions_on: [tools]\n")  # fmt: skip
    assert at_alpha.results[0].passed is True  # p < alpha fails; p == alpha does not


def test_no_regressions_on_a_slice_the_baseline_lacks_is_an_error(tmp_path: Path) -> None:
    base = write_run(tmp_path / "base", {0}, tag="math")  # no tools episode
    cand = write_run(tmp_path / "cand", {0})  # math and tools
    runs = {"candidate": cand, "baseline": base, "root": tmp_path}
    with pytest.raises(GateError) as raised:
        gate(runs, "no_regressions_on: [tools]\n")
    assert str(raised.value).endswith(
        "rules.txt:1: no_regressions_on 'tools': delta.success@1: slice 'tools' is not in "
        "both runs; shared slices: aggregate, math"
    )


def canary_rows(n: int, **fields: object) -> list[dict]:
    return [
        {
            "request_id": f"r{i}",
            "model": "cand",
            "abandoned": i % 3 == 0,
            "safety_incident": False,
            "latency_ms": 100.0 + 37.0 * i,
            "prompt_tokens": 50 + i,
            "completion_tokens": 20 + 3 * i,
            **fields,
        }
        for i in range(n)
    ]


def test_canary_cost_on_one_line_of_two_is_refused(tmp_path: Path) -> None:
    rows = canary_rows(2)
    rows[0]["cost_usd"] = 0.01
    log = tmp_path / "c.jsonl"
    log.write_text("\n".join(json.dumps(r) for r in rows))
    with pytest.raises(GateError, match=r"cost_usd on 1 of 2 requests: all or none"):
        read_canary_log(log)


def test_one_free_billed_request(tmp_path: Path) -> None:
    log = tmp_path / "c.jsonl"
    log.write_text(json.dumps(canary_rows(1, cost_usd=0.0)[0]) + "\n")
    est = canary_metrics(read_canary_log(log), CostConfig(), StatsConfig(n_resamples=100))
    cost = est["cost_per_1k_tokens_usd"]
    assert (cost.point, cost.n) == (0.0, 1)


def test_canary_intervals_use_the_gate_confidence(tmp_path: Path) -> None:
    records = [CanaryRecord.model_validate(r) for r in canary_rows(40)]
    cfg = StatsConfig(confidence=0.5, n_resamples=100)
    est = canary_metrics(records, CostConfig(gpu_hour_usd=3.6), cfg)
    latency = np.array([r["latency_ms"] for r in canary_rows(40)])
    tokens = np.array([r["prompt_tokens"] + r["completion_tokens"] for r in canary_rows(40)])
    completion = np.array([r["completion_tokens"] for r in canary_rows(40)], float)
    # the same statistics at the same settings, called directly
    assert est["latency_p95_ms"] == stats.quantile(latency, 0.95, cfg)
    assert est["tokens_per_request"] == stats.mean(tokens, cfg=cfg)
    throughput = stats.ratio(completion, latency / 1000.0, cfg)
    assert est["cost_per_1k_tokens_usd"].lower_ci == pytest.approx(
        3.6 / (throughput.upper_ci * 3600) * 1000
    )
    billed = [CanaryRecord.model_validate({**r, "cost_usd": 0.001}) for r in canary_rows(40)]
    cost = canary_metrics(billed, CostConfig(), cfg)["cost_per_1k_tokens_usd"]
    assert cost == stats.ratio(np.full(40, 1.0), tokens.astype(float), cfg)


def test_canary_cost_from_a_given_throughput_counts_the_requests(runs: dict[str, Path]) -> None:
    priced = write_run(
        runs["root"] / "priced",
        CANDIDATE_WINS,
        manifest={"cost": {"gpu_hour_usd": 3.6, "tokens_per_second": 50.0}},
    )
    result = gate(
        runs,
        "[staging_to_production]\ncanary.cost_per_1k_tokens_usd.n == 4\n"
        "canary.cost_per_1k_tokens_usd.point == 0.02\n",  # 3.6 / (50 x 3600) x 1000
        stage="staging_to_production",
        candidate=str(priced),
        canary=str(canary_log(runs["root"] / "canary.jsonl", billed=False)),
    )
    assert [r.passed for r in result.results] == [True, True]


def test_the_slice_mark_fails_when_any_rule_behind_a_shared_note_fails(
    runs: dict[str, Path],
) -> None:
    # both rules read success@1(math).point, so they share the note; the first fails
    result = gate(runs, "success@1(math).point > 1\nsuccess@1(math).point >= 0.5\n")
    assert [r.passed for r in result.results] == [False, True]
    assert result.rows[0].notes == [("success@1 0.8333 → 1", False)]


def test_delta_rule_note_and_a_delta_without_pairs(runs: dict[str, Path]) -> None:
    result = gate(runs, "delta.success@1(tools).point >= 0.25\n")
    assert result.results[0].note == "Δ success@1 = +0.25, p=1"
    math_only = write_run(runs["root"] / "math_only", BASELINE_WINS, tag="math")
    with pytest.raises(GateError) as raised:
        gate(runs, "delta.success@1(tools).point >= 0\n", baseline=str(math_only))
    assert str(raised.value).endswith(
        "rules.txt:1: delta.success@1(tools).point >= 0: delta.success@1: slice 'tools' is "
        "not in both runs; shared slices: aggregate, math"
    )


def test_a_canary_metric_without_its_inputs_is_an_error(runs: dict[str, Path]) -> None:
    unpriced = write_run(runs["root"] / "unpriced", CANDIDATE_WINS)  # no gpu_hour_usd
    with pytest.raises(GateError) as raised:
        gate(
            runs,
            "[staging_to_production]\ncanary.cost_per_1k_tokens_usd.point <= 1\n",
            stage="staging_to_production",
            candidate=str(unpriced),
            canary=str(canary_log(runs["root"] / "canary.jsonl", billed=False)),
        )
    assert str(raised.value).endswith(
        "rules.txt:2: canary.cost_per_1k_tokens_usd.point <= 1: canary metric absent "
        "(no cost config or usable data)"
    )


def test_rules_checked_without_their_inputs_name_what_is_missing(runs: dict[str, Path]) -> None:
    rules = parse_rules(
        "canary.abandon_rate.point <= 1\ndelta.success@1.point >= 0\nno_regressions_on: [math]\n",
        "r.rules",
    )
    candidate = load_run(runs["candidate"], StatsConfig(n_resamples=100))
    inputs = _Inputs(candidate, None, None, None, rules)
    with pytest.raises(GateError) as raised:
        evaluate(rules.statements, inputs)
    assert str(raised.value).splitlines() == [
        "rules cannot be checked:",
        "  r.rules:1: canary.abandon_rate.point <= 1: needs a canary log (canary=LOG)",
        "  r.rules:2: delta.success@1.point >= 0: needs a baseline run (baseline=RUN_DIR)",
        "  r.rules:3: no_regressions_on: [math]: needs a baseline run (baseline=RUN_DIR)",
    ]


def test_an_empty_rules_or_candidate_key_is_missing() -> None:
    with pytest.raises(ConfigError, match=r"missing rules=\.\.\."):
        settings_from_overrides(["rules=", "candidate=x"])


def test_main_reads_sys_argv_and_prints_the_report_once(
    runs: dict[str, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = write_rules(runs["root"] / "go.rules", "success@1.point >= 0.8\n")
    argv = ["evals.gate", f"rules={rules}", f"candidate={runs['candidate']}", "n_resamples=100"]
    monkeypatch.setattr("sys.argv", argv)
    assert main() == 0
    out = capsys.readouterr().out
    assert "VERDICT: GO" in out and "NO-GO" not in out
    assert out.endswith("\n") and not out.endswith("\n\n")  # the report ends its own line


def test_settings_reach_every_number(runs: dict[str, Path]) -> None:
    # the gate's intervals are the metrics' and deltas' at the gate's settings
    settings = {"confidence": 0.8, "n_resamples": 150, "seed": 7}
    result = gate(runs, "reward.lower_ci >= 0\ndelta.reward.upper_ci >= 0\n", **settings)
    cand, base = (list(read_jsonl(runs[k] / "episodes.jsonl")) for k in ("candidate", "baseline"))
    table = compute_metrics(cand, None, 0.8, n_resamples=150, seed=7)
    deltas = compute_deltas(cand, base, confidence=0.8, n_resamples=150, seed=7)
    assert [r.value for r in result.results] == [
        table.get("aggregate", "reward").lower_ci,
        deltas.get("aggregate", "reward").upper_ci,
    ]
    assert (result.confidence, result.baseline) == (0.8, str(runs["baseline"]))
    assert result.canary is None


def test_run_cost_from_the_manifest(tmp_path: Path, runs: dict[str, Path]) -> None:
    priced = write_run(
        tmp_path / "priced",
        CANDIDATE_WINS,
        manifest={"cost": {"gpu_hour_usd": 3.6, "tokens_per_second": 50.0}},
    )
    (only,) = gate(runs, "cost_per_1k_tokens_usd.point == 0.02\n", candidate=str(priced)).results
    assert only.value == pytest.approx(0.02) and only.passed  # 3.6 / (50 x 3600) x 1000


def test_canary_model_selects_the_requests(runs: dict[str, Path]) -> None:
    other = {**canary_rows(1)[0], "model": "other", "abandoned": False}
    log = canary_log(runs["root"] / "canary.jsonl", billed=False, extra=[other])
    result = gate(
        runs,
        "[staging_to_production]\ncanary.abandon_rate.point == 0.25\n",
        stage="staging_to_production",
        canary=str(log),
        canary_model="cand",
    )
    assert result.results[0].passed and result.canary == str(log)
    est = canary_metrics(read_canary_log(log, "cand"), CostConfig(), StatsConfig(n_resamples=100))
    assert est["safety_incidents"].method == "exact"
    assert (est["safety_incident_rate"].n, est["abandon_rate"].count) == (4, 1)


def test_canary_rates_use_the_gate_confidence() -> None:
    records = [CanaryRecord.model_validate(r) for r in canary_rows(30)]
    cfg = StatsConfig(confidence=0.5, n_resamples=100)
    est = canary_metrics(records, CostConfig(), cfg)
    abandoned = np.array([r.abandoned for r in records])
    assert est["abandon_rate"] == stats.rate(abandoned, cfg=cfg)
    assert est["safety_incident_rate"] == stats.rate(np.zeros(30, bool), cfg=cfg)


def test_settings_keep_paths_as_text_and_list_every_bad_key() -> None:
    settings = settings_from_overrides(
        ["rules=1", "candidate=2", "baseline=3", "canary=4", "canary_model=5", "markdown=6"]
    )
    assert (settings.baseline, settings.canary, settings.markdown) == ("3", "4", "6")
    with pytest.raises(ConfigError) as raised:
        settings_from_overrides(["rules=x", "candidate=y", "confidence=2", "n_resamples=5"])
    message = str(raised.value)
    assert message.startswith("configs/gate.yaml: key 'confidence': ")
    assert "; key 'n_resamples': " in message


def test_an_incomplete_run_message_says_what_to_do(tmp_path: Path) -> None:
    cand = write_run(tmp_path / "cand", CANDIDATE_WINS, errored=frozenset({8, 9}))
    runs = {
        "candidate": cand,
        "baseline": write_run(tmp_path / "b", BASELINE_WINS),
        "root": tmp_path,
    }
    with pytest.raises(GateError) as raised:
        gate(runs, "success@1.point >= 0\n")
    assert str(raised.value) == (
        f"{cand}: incomplete run: 8 of 10 episodes completed, 2 failed (infrastructure; "
        "20.0% > 5%); rerun it with resume=true once the endpoint is healthy, or pass "
        "allow_incomplete=true"
    )


def test_an_unknown_rules_reference_lists_the_env_names() -> None:
    with pytest.raises(GateError) as raised:
        rules_path("nope")
    names = ", ".join(envs.ENVS.names())
    assert str(raised.value) == (
        f"rules: 'nope' is not a file, a 'package:path' resource or an env name ({names})"
    )


def test_settings_defaults_match_the_config_file() -> None:
    settings = GateSettings(rules="r", candidate="c")
    # configs/gate.yaml: confidence 0.95, n_resamples 2000, seed 0, dev_to_staging
    assert (settings.confidence, settings.n_resamples, settings.seed) == (0.95, 2000, 0)
    assert settings.stage == "dev_to_staging" and settings.allow_incomplete is False
    assert settings_from_overrides(["rules=r", "candidate=c"]) == settings


def test_canary_record_accepts_zero_latency_and_tokens() -> None:
    row = {
        "request_id": "r",
        "model": "m",
        "abandoned": True,  # abandoned before any token: nothing generated, no wait
        "safety_incident": False,
        "latency_ms": 0.0,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "cost_usd": 0.0,
    }
    record = CanaryRecord.model_validate(row)
    assert (record.latency_ms, record.prompt_tokens, record.completion_tokens) == (0.0, 0, 0)
