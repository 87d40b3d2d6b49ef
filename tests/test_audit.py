"""The reward audit (`python -m evals.audit`): no adversary ties the expert, on every env.

The conformance test runs the audit on every registered env (a few scenarios per slice, so
it stays fast); the slow-marked one runs each env's whole frozen eval split. The other
tests show the audit finds a hole when one is planted, and that its adversaries are not
no-ops.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import envs
from envs.refund_agent import RefundAgentEnv
from evals import audit
from policies.adversarial import GENERIC_ADVERSARIES, merge_act_with_check, synthesize_arguments
from policies.base import tool_call_text

ENV_NAMES = envs.ENVS.names()


@pytest.mark.parametrize("env", ENV_NAMES)
def test_no_adversary_ties_the_expert_on_any_env(
    env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    if envs.card(env).expert is None:
        pytest.skip(f"{env} declares no expert to audit against")
    code = audit.main([f"env={env}", "limit=2"])
    printed = capsys.readouterr().out
    assert code == audit.EXIT_OK, printed
    assert printed.rstrip().endswith("PASS: 0 finding(s)")


@pytest.mark.slow
@pytest.mark.parametrize("env", ENV_NAMES)
def test_no_adversary_ties_the_expert_on_the_whole_eval_split(
    env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    if envs.card(env).expert is None:
        pytest.skip(f"{env} declares no expert to audit against")
    code = audit.main([f"env={env}"])
    assert code == audit.EXIT_OK, capsys.readouterr().out


def test_the_library_has_at_least_twelve_generic_adversaries_and_each_one_acts() -> None:
    assert len(GENERIC_ADVERSARIES) >= 12
    cfg = audit.AuditConfig(env="refund_agent", limit=2)
    rows, _, _ = audit.audit(cfg)
    acting = {row.adversary for row in rows if row.verdict != "same"}
    assert set(GENERIC_ADVERSARIES) <= acting  # none plays exactly like the expert
    declared = envs.card("refund_agent")
    assert {*declared.adversaries, *declared.failure_modes} <= {row.adversary for row in rows}


def test_a_planted_hole_is_found_with_an_example(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    free_calls = {**RefundAgentEnv.rewards, "efficiency": lambda trajectory, scenario: 1.0}
    monkeypatch.setattr(RefundAgentEnv, "rewards", free_calls)
    code = audit.main(["env=refund_agent", "limit=1", "adversaries=[pad_calls,claim_success]"])
    printed = capsys.readouterr().out
    assert code == audit.EXIT_FINDINGS
    assert "FINDING pad_calls on all: ties the expert" in printed
    assert "FINDING claim_success" not in printed
    assert "    scenario " in printed and "[assistant] <tool_call>" in printed
    # padding is free on every episode: a tie on each of the 8 slices and on `all`
    assert printed.rstrip().endswith("FAIL: 9 finding(s)")


def test_findings_are_written_with_their_example_episodes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    free_calls = {**RefundAgentEnv.rewards, "efficiency": lambda trajectory, scenario: 1.0}
    monkeypatch.setattr(RefundAgentEnv, "rewards", free_calls)
    out = tmp_path / "audit"
    audit.main(["env=refund_agent", "limit=1", "adversaries=[pad_calls]", f"out={out}"])
    capsys.readouterr()
    report = json.loads((out / "report.json").read_text())
    assert report["config"]["adversaries"] == ["pad_calls"]
    assert report["findings"] and all(f["verdict"] == "ties" for f in report["findings"])
    lines = (out / "examples.jsonl").read_text().splitlines()
    assert len(lines) == 2 * len(report["findings"])  # the adversary's episode, then the expert's


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("limit=0", "limit"),
        ("adversaries=[no_such_adversary]", "adversaries"),
        ("env=no_such_env", "env"),
        ("split=no_such_split", "split"),
        ("no_such_key=1", "no_such_key"),
    ],
)
def test_bad_config_exits_2_naming_the_key(
    override: str, key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert audit.main([override]) == audit.EXIT_CONFIG
    error = capsys.readouterr().err
    assert error.startswith("evals.audit: bad config:") and key in error
    assert "Traceback" not in error


def test_hints_name_the_tools_that_act_and_end_from_the_experts_episodes() -> None:
    cfg = audit.AuditConfig(env="refund_agent", limit=1)
    expert, _ = audit.players(cfg)
    scenarios = audit.select_scenarios(envs.make_raw("refund_agent", split="eval").scenarios, 1)
    runs = audit.play(cfg, expert.make(), scenarios, {})
    hints = next(iter(audit.audit_hints(runs).values()))
    # issue_refund leaves a refund event and is never used where nothing happened;
    # escalate_to_human ends episodes; lookups are used everywhere.
    assert hints["acting_tools"] == ["issue_refund"]
    assert hints["ending_tools"] == ["escalate_to_human"]


def test_act_with_check_sends_the_action_with_the_check() -> None:
    lookup = tool_call_text("get_customer_id", {"session_id": 1})
    check = tool_call_text("check_refund", {"customer_id": 2, "order_id": 3})
    act = tool_call_text("issue_refund", {"customer_id": 2, "order_id": 3, "reason": "lost"})
    merged = merge_act_with_check([lookup, check, act, act, "Done."], {"issue_refund"})
    assert len(merged) == 3 and merged[0] == lookup and merged[2] == "Done."
    assert merged[1].index('"check_refund"') < merged[1].index('"issue_refund"')
    assert merge_act_with_check([lookup, "Hi."], {"issue_refund"}) == [lookup, "Hi."]


def test_arguments_are_synthesized_from_the_episode() -> None:
    schema = {
        "function": {
            "name": "get_order",
            "parameters": {
                "properties": {"order_id": {"type": "integer"}, "note": {"type": "string"}}
            },
        }
    }
    messages = [{"role": "user", "content": "My order #4821 is lost."}]
    made = synthesize_arguments(schema, messages, [])
    assert made["order_id"] == 4821 and isinstance(made["note"], str)
    used = [{"name": "track_order", "arguments": {"order_id": 77}}]
    assert synthesize_arguments(schema, messages, used)["order_id"] == 77
