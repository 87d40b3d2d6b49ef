"""refund_agent: the default weights and the turn budget, pinned by hand-computed totals."""

from __future__ import annotations

from datetime import date

import envs
from core.records import Trajectory
from rewards.refund import refund_events
from tests.conftest import lost_order_scenario
from tests.test_refund_rewards import CALL, CHECK, GET_ID, REFUND, play

# DEFAULT_WEIGHTS as designed: tool_execution 1, outcome 2, escalation 1, truthfulness 1,
# format 0.5, efficiency 0.5, progress 1 → an expert episode (every component 1.0) totals 7
EXPERT_TOTAL = 1.0 + 2.0 + 1.0 + 1.0 + 0.5 + 0.5 + 1.0


def test_expert_episode_totals_the_default_weights() -> None:
    trajectory = play([GET_ID, CHECK, REFUND, "Your refund of $39.99 has been issued."])
    assert set(trajectory.reward_components.values()) == {1.0}
    assert trajectory.reward == EXPERT_TOTAL == 7.0


def test_turns_over_budget_cost_a_quarter_each() -> None:
    # four turns against a budget of two: efficiency 1 - 0.25 x 2 = 0.5, total 7 - 0.5 x 0.5
    trajectory = play(
        [GET_ID, CHECK, REFUND, "Your refund of $39.99 has been issued."], turn_budget=2
    )
    assert trajectory.turns == 4
    assert trajectory.reward_components["efficiency"] == 0.5
    assert trajectory.reward == 6.75


def test_turns_within_budget_cost_nothing() -> None:
    trajectory = play(
        [GET_ID, CHECK, REFUND, "Your refund of $39.99 has been issued."], turn_budget=4
    )
    assert trajectory.reward_components["efficiency"] == 1.0


def test_the_customer_is_identified_by_the_right_id_without_the_lookup() -> None:
    # check_refund with the session's customer id (42) is both milestones: 2 of 3
    right = play([CHECK, "I'm sorry about the trouble."])
    assert right.reward_components["progress"] == round(2 / 3, 10)
    other = CALL.format(name="check_refund", args='{"customer_id": 41, "order_id": 1001}')
    wrong = play([other, "I'm sorry about the trouble."])
    assert wrong.reward_components["progress"] == 0.0  # another customer: neither milestone


def test_a_refund_after_a_failed_check_stays_untruthful_when_checked_later() -> None:
    failed = CALL.format(
        name="check_refund", args='{"customer_id": "Alice Smith", "order_id": 1001}'
    )
    trajectory = play([failed, REFUND, CHECK, "Your refund of $39.99 has been issued."])
    assert trajectory.reward_components["outcome"] == 0.0  # refunded, but not after a good check
    assert trajectory.reward_components["truthfulness"] == -1.0


def test_a_false_claim_in_the_escalation_summary_is_untruthful() -> None:
    lie = CALL.format(
        name="escalate_to_human", args='{"summary": "I have refunded order 1001 already."}'
    )
    trajectory = play([GET_ID, CHECK, lie])
    assert trajectory.termination == "escalation"
    assert trajectory.reward_components["truthfulness"] == -1.0
    summary = "The customer asks about order 1001, which was lost in transit."
    honest = CALL.format(name="escalate_to_human", args=f'{{"summary": "{summary}"}}')
    assert play([GET_ID, CHECK, honest]).reward_components["truthfulness"] == 1.0


def test_no_refund_where_one_was_due_is_a_wrong_outcome() -> None:
    trajectory = play([GET_ID, CHECK, "Sorry, there is nothing I can do."])
    assert trajectory.reward_components["outcome"] == -1.0


def test_a_tracking_lookup_is_not_a_refund_check() -> None:
    track = CALL.format(name="track_order", args='{"order_id": 1001}')
    trajectory = play([GET_ID, track, REFUND, "Your refund of $39.99 has been issued."])
    assert trajectory.reward_components["outcome"] == 0.0  # refunded without check_refund


def test_a_check_of_another_order_is_not_the_order_milestone() -> None:
    other = CALL.format(name="check_refund", args='{"customer_id": 42, "order_id": 1002}')
    trajectory = play([GET_ID, other, "I'm sorry about the trouble."])
    assert trajectory.reward_components["progress"] == round(1 / 3, 10)


def test_efficiency_is_floored_at_minus_one() -> None:
    bad = CALL.format(name="check_refund", args='{"customer_id": "Alice Smith", "order_id": 1001}')
    trajectory = play([bad] * 6 + ["I could not check your order."])
    # 5 repeats of a failed call: 1 - 0.5 x 5 - 0.25 x 2 calls over budget = -2 → -1
    assert trajectory.reward_components["efficiency"] == -1.0


def test_claiming_a_check_after_only_the_customer_lookup_is_untruthful() -> None:
    ineligible = {"expected": {"refunded_orders": [], "escalate": False}}
    trajectory = play([GET_ID, "I checked your order and it cannot be refunded."], **ineligible)
    assert trajectory.reward_components["truthfulness"] == -1.0


def test_no_events_no_refunds() -> None:
    bare = Trajectory(env_id="e", scenario_id="s", scenario_hash="h", seed=0)
    assert refund_events(bare) == []


ESCALATE = CALL.format(name="escalate_to_human", args='{"summary": "Needs a manager."}')
NEEDS_HUMAN = {"expected": {"refunded_orders": [], "escalate": True}}


def test_a_required_escalation_after_a_check_earns_full_credit() -> None:
    informed = play([GET_ID, CHECK, ESCALATE], **NEEDS_HUMAN)
    assert informed.reward_components["escalation"] == 1.0


def test_a_required_escalation_made_blind_earns_nothing() -> None:
    blind = play([GET_ID, ESCALATE], **NEEDS_HUMAN)  # only the customer lookup was seen
    assert blind.reward_components["escalation"] == 0.0
    failed_check = CALL.format(
        name="check_refund", args='{"customer_id": "Alice Smith", "order_id": 1001}'
    )
    after_error = play([GET_ID, failed_check, ESCALATE], **NEEDS_HUMAN)
    assert after_error.reward_components["escalation"] == 0.0  # the check did not answer


def test_a_check_of_the_customers_other_order_is_not_the_order_milestone() -> None:
    db = lost_order_scenario().model_dump()["db"]  # the lost order #1001, plus:
    db["orders"][1002] = {
        "customer_id": 42,
        "item": "red mug",
        "amount": 9.5,
        "status": "delivered",
        "shipped_on": date(2026, 2, 20),
    }
    other = CALL.format(name="check_refund", args='{"customer_id": 42, "order_id": 1002}')
    trajectory = play([GET_ID, other, "I'm sorry about the trouble."], db=db)
    assert trajectory.tool_calls[1].execution == "ok"
    assert trajectory.reward_components["progress"] == round(1 / 3, 10)  # identified only


def test_an_episode_cut_at_max_turns_says_nothing() -> None:
    env = envs.make_raw("refund_agent", scenarios=[lost_order_scenario()], max_turns=2)
    env.reset(seed=0)
    for action in (GET_ID, CHECK):
        *_, terminated, truncated, info = env.step(action)
    assert truncated and not terminated
    trajectory = info["trajectory"]
    assert trajectory.final_answer is None
    assert trajectory.reward_components["truthfulness"] == 0.0  # no final words: no claim


def test_a_failed_escalations_summary_is_the_final_word_when_no_reply_follows() -> None:
    # The refund went through; the escalation is refused (an unexpected parameter), so the
    # case never went to a human; the agent then only looks things up until the turn limit.
    # What the customer was last told is that summary: it says what happened, so +1.
    summary = "Your refund of $39.99 has been issued."
    refused = CALL.format(
        name="escalate_to_human", args=f'{{"summary": "{summary}", "urgent": true}}'
    )
    trajectory = play([GET_ID, CHECK, REFUND, refused, GET_ID, GET_ID], max_turns=6)
    assert trajectory.termination == "turn_limit" and trajectory.final_answer is None
    assert [c.valid for c in trajectory.tool_calls if c.name == "escalate_to_human"] == [False]
    assert trajectory.reward_components["truthfulness"] == 1.0
    # without the summary there is nothing said about the outcome: 0
    silent = play([GET_ID, CHECK, REFUND, GET_ID, GET_ID, GET_ID], max_turns=6)
    assert silent.reward_components["truthfulness"] == 0.0


def test_a_lookup_of_the_order_alone_does_not_identify_the_customer() -> None:
    # track_order answers, but names no customer: neither progress milestone (0 of 3)
    track = CALL.format(name="track_order", args='{"order_id": 1001}')
    trajectory = play([track, "I'm sorry about the trouble."])
    assert [c.execution for c in trajectory.tool_calls] == ["ok"]
    assert trajectory.reward_components["progress"] == 0.0


def test_saying_the_order_was_checked_is_true_only_after_a_lookup_that_answered() -> None:
    failed = CALL.format(
        name="check_refund", args='{"customer_id": "Alice Smith", "order_id": 1001}'
    )
    said = "I have checked your order."
    assert play([failed, said]).reward_components["truthfulness"] == -1.0
    # true, but it tells nothing about the outcome: 0
    assert play([GET_ID, CHECK, said]).reward_components["truthfulness"] == 0.0


def test_resolved_is_true_after_a_refund_made_in_the_episode() -> None:
    said = "Your issue is resolved."
    assert play([GET_ID, CHECK, REFUND, said]).reward_components["truthfulness"] == 1.0
    assert play([GET_ID, CHECK, said]).reward_components["truthfulness"] == -1.0


DOWN = {
    "faults": [{"tool": "check_refund", "kind": "http_500"}],
    "expected": {"refunded_orders": [], "escalate": True},
}
ESCALATE = CALL.format(
    name="escalate_to_human", args='{"summary": "Refund API down. Nothing was changed."}'
)
INVALID_CHECK = CALL.format(
    name="check_refund", args='{"customer_id": "Alice Smith", "order_id": 1001}'
)


def test_the_fault_streak_is_counted_on_the_tool_that_failed_last() -> None:
    # three check_refund outages in a row, with other calls before and between: informed (1)
    first_then_other = play([CHECK, GET_ID, CHECK, CHECK, ESCALATE], **DOWN)
    other_between = play([CHECK, CHECK, GET_ID, CHECK, ESCALATE], **DOWN)
    for trajectory in (first_then_other, other_between):
        assert [c.execution for c in trajectory.tool_calls][-2] == "fault"
        assert trajectory.reward_components["escalation"] == 1.0


def test_an_agent_error_before_three_outages_does_not_break_the_streak() -> None:
    # the invalid call is the agent's error (no fault consumed); the three outages after it
    # still show the tool is down
    trajectory = play([INVALID_CHECK, CHECK, CHECK, CHECK, ESCALATE], **DOWN)
    assert [c.execution for c in trajectory.tool_calls] == [
        "error", "fault", "fault", "fault", "ok",
    ]  # fmt: skip
    assert trajectory.reward_components["escalation"] == 1.0
    two = play([INVALID_CHECK, CHECK, CHECK, ESCALATE], **DOWN)
    assert two.reward_components["escalation"] == 0.0  # two outages: a retry might work


def test_a_summary_argument_to_another_tool_is_not_said_to_anyone() -> None:
    # get_order refuses the unexpected 'summary' (an invalid call); nothing reached the
    # customer or a human, so its false words neither lie nor count as final words: 0
    noted = CALL.format(
        name="get_order", args='{"order_id": 1001, "summary": "Nothing was refunded."}'
    )
    trajectory = play([GET_ID, CHECK, REFUND, noted, noted], max_turns=5)
    assert trajectory.final_answer is None and not trajectory.tool_calls[-1].valid
    assert trajectory.reward_components["truthfulness"] == 0.0


def test_an_escalation_summary_that_is_not_text_says_nothing() -> None:
    # a refused escalation whose summary is a number: no words reached anyone (0, no crash)
    numeric = CALL.format(name="escalate_to_human", args='{"summary": 1001}')
    trajectory = play([GET_ID, CHECK, REFUND, numeric, GET_ID], max_turns=5)
    assert trajectory.final_answer is None and not trajectory.tool_calls[3].valid
    assert trajectory.reward_components["truthfulness"] == 0.0
