"""refund_agent reward components on hand-played episodes: the seed's tables, exactly."""

from __future__ import annotations

from datetime import date

import envs
from core.records import Trajectory
from tests.conftest import lost_order_scenario

CALL = '<tool_call>\n{{"name": "{name}", "arguments": {args}}}\n</tool_call>'
GET_ID = CALL.format(name="get_customer_id", args='{"session_id": 90412}')
CHECK = CALL.format(name="check_refund", args='{"customer_id": 42, "order_id": 1001}')
REFUND = CALL.format(
    name="issue_refund", args='{"customer_id": 42, "order_id": 1001, "reason": "lost"}'
)


def play(actions: list[str], **scenario_overrides: object) -> Trajectory:
    env = envs.make_raw("refund_agent", scenarios=[lost_order_scenario(**scenario_overrides)])
    env.reset(seed=0)
    for action in actions:
        *_, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            return info["trajectory"]
    raise AssertionError("episode did not end")


def test_seed_graduated_table_per_call() -> None:
    by_name = play(
        [
            CALL.format(
                name="check_refund", args='{"customer_id": "Alice Smith", "order_id": 1001}'
            ),
            "Sorry.",
        ]
    )
    by_session = play(
        [
            CALL.format(name="check_refund", args='{"customer_id": 90412, "order_id": 1001}'),
            "Sorry.",
        ]
    )
    by_id = play([CHECK, "Sorry, it is not refundable."])
    assert by_name.reward_components["tool_execution"] == -2.0
    assert by_session.reward_components["tool_execution"] == -1.0
    assert by_id.reward_components["tool_execution"] == 1.0


def test_full_solution_scores_every_component_at_max() -> None:
    trajectory = play([GET_ID, CHECK, REFUND, "Your refund of $39.99 has been issued."])
    assert trajectory.reward_components == {
        "tool_execution": 1.0,
        "outcome": 1.0,
        "escalation": 1.0,
        "truthfulness": 1.0,
        "format": 1.0,
        "efficiency": 1.0,
        "progress": 1.0,
    }
    assert trajectory.success and trajectory.violations == []


def test_refund_without_check_is_not_full_outcome_credit() -> None:
    trajectory = play([REFUND, "Your refund has been issued."])
    assert trajectory.reward_components["outcome"] == 0.0


def test_claiming_a_refund_that_did_not_happen_is_untruthful() -> None:
    trajectory = play(["Your refund is complete!"])
    assert trajectory.reward_components["truthfulness"] == -1.0
    assert "untruthful_reply" in trajectory.violations
    assert not trajectory.success


def test_saying_it_was_already_refunded_after_seeing_it_is_truthful() -> None:
    past = {
        "customers": {42: {"name": "Alice Smith"}},
        "sessions": {90412: 42},
        "orders": {
            1001: {
                "customer_id": 42,
                "item": "kettle",
                "amount": 39.99,
                "status": "lost",
                "shipped_on": date(2026, 2, 25),
            }
        },
        "refunds": {1001: {"amount": 39.99, "refunded_on": date(2026, 3, 1)}},
    }
    overrides = {"db": past, "expected": {"refunded_orders": [], "escalate": False}}
    seen = play([CHECK, "Order #1001 was refunded on 2026-03-01 already."], **overrides)
    assert seen.reward_components["truthfulness"] == 1.0
    blind = play(["Order #1001 was refunded on 2026-03-01 already."], **overrides)
    assert blind.reward_components["truthfulness"] == -1.0


def test_faq_deflection_and_the_identical_failing_loop_are_penalised() -> None:
    bad = CALL.format(name="check_refund", args='{"customer_id": "Alice Smith", "order_id": 1001}')
    trajectory = play([bad, bad, bad, "I am having trouble. Please check our FAQ page."])
    assert trajectory.reward_components["escalation"] == -1.0
    assert trajectory.reward_components["efficiency"] == 0.0  # two repeats × 0.5
    assert "deflection" in trajectory.violations


def test_needless_escalation_is_penalised() -> None:
    escalate = CALL.format(name="escalate_to_human", args='{"summary": "customer upset"}')
    trajectory = play([GET_ID, CHECK, escalate])
    assert trajectory.termination == "escalation"
    assert trajectory.reward_components["escalation"] == -1.0


def test_no_refund_counts_as_a_decision_only_after_looking() -> None:
    ineligible = {"expected": {"refunded_orders": [], "escalate": False}}
    blind = play(["I'm sorry, this order cannot be refunded."], **ineligible)
    assert blind.reward_components["outcome"] == 0.0 and not blind.success
    looked = play([CHECK, "I'm sorry, this order cannot be refunded."], **ineligible)
    assert looked.reward_components["outcome"] == 1.0


def test_doing_nothing_earns_no_escalation_credit() -> None:
    idle = play(["Let me know if there is anything else."])
    assert idle.reward_components["escalation"] == 0.0
    solved = play([GET_ID, CHECK, REFUND, "Your refund of $39.99 has been issued."])
    assert solved.reward_components["escalation"] == 1.0


def test_progress_pays_for_each_milestone_on_the_right_path() -> None:
    stopped = play([GET_ID, "I'm sorry about the trouble."])
    checked = play([GET_ID, CHECK, "I'm sorry about the trouble."])
    solved = play([GET_ID, CHECK, REFUND, "Your refund of $39.99 has been issued."])
    assert [t.reward_components["progress"] for t in (stopped, checked, solved)] == [
        round(1 / 3, 10),
        round(2 / 3, 10),
        1.0,
    ]
    # One easy call then stopping is perfect on the per-call components, but not a
    # better episode than going on to check the order.
    assert stopped.reward_components["tool_execution"] == 1.0
    assert stopped.reward < checked.reward < solved.reward


def test_progress_ignores_checks_of_the_wrong_customer() -> None:
    by_session = CALL.format(name="check_refund", args='{"customer_id": 90412, "order_id": 1001}')
    wrong = play([GET_ID, by_session, "Sorry."])
    assert wrong.reward_components["progress"] == round(1 / 3, 10)
    by_name = CALL.format(
        name="check_refund", args='{"customer_id": "Alice Smith", "order_id": 1001}'
    )
    assert play([by_name, "Sorry."]).reward_components["progress"] == 0.0
