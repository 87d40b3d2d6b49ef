"""refund_agent: the default weights and the turn budget, pinned by hand-computed totals."""

from __future__ import annotations

from tests.test_refund_rewards import CHECK, GET_ID, REFUND, play

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
