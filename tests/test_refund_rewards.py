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


# ---- the holes the reward audit found (issue 11): each failed before its fix ---------------
TRACK = CALL.format(name="track_order", args='{"order_id": 1001}')
SOLVED_REPLY = "I've refunded order #1001: $39.99. It will reach your card within 5-7 days."


def test_a_false_refund_claim_in_other_words_is_untruthful() -> None:
    ineligible = {"expected": {"refunded_orders": [], "escalate": False}}
    for reply in (
        "Your money is on its way back to your card.",
        "The reimbursement went through; expect it within a week.",
        "I've put the refund through for you.",
    ):
        trajectory = play([GET_ID, CHECK, reply], **ineligible)
        assert trajectory.reward_components["truthfulness"] == -1.0, reply
        assert "untruthful_reply" in trajectory.violations and not trajectory.success


def test_denying_a_refund_that_was_made_is_untruthful() -> None:
    trajectory = play([GET_ID, CHECK, REFUND, "I couldn't refund it, so nothing has changed."])
    assert trajectory.reward_components["outcome"] == 1.0
    assert trajectory.reward_components["truthfulness"] == -1.0 and not trajectory.success


def test_a_made_up_order_number_or_amount_is_untruthful() -> None:
    lie = "I've refunded order #1002: $40.99. It will reach your card within 5-7 days."
    assert play([GET_ID, CHECK, REFUND, lie]).reward_components["truthfulness"] == -1.0


def test_a_reply_that_says_nothing_about_the_outcome_is_not_full_truthfulness() -> None:
    vague = play([GET_ID, CHECK, REFUND, "Thanks for reaching out! Anything else I can do."])
    told = play([GET_ID, CHECK, REFUND, SOLVED_REPLY])
    assert vague.reward_components["truthfulness"] == 0.0 and not vague.success
    assert told.reward_components["truthfulness"] == 1.0 and told.success
    assert vague.reward < told.reward


def test_padding_with_repeated_lookups_costs_and_cannot_dilute() -> None:
    honest = play([GET_ID, TRACK, CHECK, REFUND, SOLVED_REPLY])
    padded = play([GET_ID * 5, TRACK, CHECK, REFUND, SOLVED_REPLY])
    # four repeats of an answered call (0.25 each) and four calls over the budget of 4 (0.25 each)
    assert padded.reward_components["efficiency"] == -1.0
    assert padded.reward_components["tool_execution"] == 1.0  # distinct calls: the same share
    assert padded.reward < honest.reward == 7.0
    bad = CALL.format(name="check_refund", args='{"customer_id": "Alice Smith", "order_id": 1001}')
    alone = play([bad, "Sorry."])
    diluted = play([bad + GET_ID * 5, "Sorry."])
    assert alone.reward_components["tool_execution"] == -2.0
    # five copies of one good call count once: (-2 + 1) / 2, not (-2 + 5) / 6
    assert diluted.reward_components["tool_execution"] == -0.5


def test_unneeded_distinct_lookups_cost() -> None:
    spree = CALL.format(name="get_order", args='{"order_id": 1001}') + CALL.format(
        name="get_customer_name", args='{"session_id": 90412}'
    )
    trajectory = play([GET_ID, TRACK + spree, CHECK, REFUND, SOLVED_REPLY])
    assert trajectory.reward_components["efficiency"] == 0.5  # 6 calls, budget 4: 2 × 0.25


def test_a_check_in_the_same_message_as_the_refund_is_not_a_check() -> None:
    together = play([GET_ID, CHECK + REFUND, SOLVED_REPLY])
    apart = play([GET_ID, CHECK, REFUND, SOLVED_REPLY])
    assert together.reward_components["outcome"] == 0.0 and not together.success
    assert apart.reward_components["outcome"] == 1.0 and apart.success


ESCALATE = CALL.format(
    name="escalate_to_human", args='{"summary": "Refund API down. Nothing was changed."}'
)


def test_escalating_at_the_first_error_is_not_the_maximum() -> None:
    down = {
        "faults": [{"tool": "check_refund", "kind": "http_500"}],
        "expected": {"refunded_orders": [], "escalate": True},
    }
    first = play([GET_ID, CHECK, ESCALATE], **down)
    second = play([GET_ID, CHECK, CHECK, ESCALATE], **down)
    third = play([GET_ID, CHECK, CHECK, CHECK, ESCALATE], **down)
    assert [t.reward_components["escalation"] for t in (first, second, third)] == [0.0, 0.0, 1.0]
    assert not first.success and third.success
    # Where a retry works, escalating after the first error is wrong outright.
    transient = {"faults": [{"tool": "check_refund", "kind": "http_500", "first_n": 1}]}
    gave_up = play([GET_ID, CHECK, ESCALATE], **transient)
    retried = play([GET_ID, CHECK, CHECK, REFUND, SOLVED_REPLY], **transient)
    assert gave_up.reward_components["escalation"] == -1.0
    assert retried.reward_components["escalation"] == 1.0 and retried.reward == 7.0


def test_escalating_in_the_same_message_as_the_third_failure_is_too_early() -> None:
    down = {
        "faults": [{"tool": "check_refund", "kind": "http_500"}],
        "expected": {"refunded_orders": [], "escalate": True},
    }
    blind = play([GET_ID, CHECK, CHECK, CHECK + ESCALATE], **down)
    assert blind.reward_components["escalation"] == 0.0


def test_a_judge_model_can_read_the_claims_instead_of_structure() -> None:
    from rewards.claims import JudgeClaims
    from rewards.refund import judged_truthfulness

    trajectory = play([GET_ID, CHECK, REFUND, "Sorted, friend."])
    asked: list[str] = []

    def says(answer: str):  # a stand-in for a model endpoint
        return lambda prompt: asked.append(prompt) or answer

    denied = judged_truthfulness(JudgeClaims(says('["refund_denied"]')))
    made = judged_truthfulness(JudgeClaims(says('["refund_made"]')))
    assert denied(trajectory, lost_order_scenario()) == -1.0
    assert made(trajectory, lost_order_scenario()) == 1.0
    assert "Reply: Sorted, friend." in asked[-1]
