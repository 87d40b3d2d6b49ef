"""The release decision a user makes on refund_agent: expert vs the seed's failing agent."""

from __future__ import annotations

from pathlib import Path

import pytest

from evals import gate, run

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "promotion" / "refund_agent.rules"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("runs")
    out = {}
    for policy in ("expert", "name_instead_of_id"):
        out[policy] = base / policy
        argv = ["env=refund_agent", f"policy={policy}", "split=eval", f"out={out[policy]}"]
        assert run.main(argv) == 0
    return out


def test_expert_over_the_seed_failure_is_go(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "gate.md"
    code = gate.main(
        [
            f"rules={RULES}",
            f"candidate={runs['expert']}",
            f"baseline={runs['name_instead_of_id']}",
            f"markdown={report}",
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0
    assert "VERDICT: GO" in printed
    assert "tool_correctness" in printed and "✓" in printed and "✗" not in printed
    text = report.read_text()
    assert "**VERDICT: GO" in text and "NO-GO" not in text  # "GO" alone matches "NO-GO"


def test_the_seed_failure_over_the_expert_is_no_go_naming_rules(
    runs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code = gate.main(
        [f"rules={RULES}", f"candidate={runs['name_instead_of_id']}", f"baseline={runs['expert']}"]
    )
    printed = capsys.readouterr().out
    assert code == 1
    verdict = printed[printed.index("VERDICT: NO-GO") :]
    assert "no_regressions_on: tool_correctness" in verdict
    assert "escalation_rate(escalation_api_down).lower_ci >= 0.80" in verdict
    assert "steps_to_solve_median(refund_happy)" in verdict  # absent: it solved nothing


def test_trainer_reports_the_paired_change_between_two_eval_runs(runs: dict[str, Path]) -> None:
    from trainers import grpo  # light: torch is only imported by training itself

    change = grpo.paired_change(runs["expert"], runs["name_instead_of_id"])
    success = change["success@1"]
    assert success["test"] == "mcnemar-exact" and success["n_pairs"] == 312  # 26 cases × 12
    assert success["point"] == 1.0 and success["p_value"] < 1e-6  # the failure never succeeds
    assert change["reward"]["point"] > 0 and change["reward"]["p_value"] < 1e-6
    line = grpo.format_change(change, "expert vs seed failure")
    assert line.startswith("expert vs seed failure: Δsuccess@1 +1.000")
