"""math_tools' rewards on episodes played by hand, values worked out by hand.

Weights: accuracy 1, answer_format 0.5, tool_execution 0.25, tool_format 0.25,
efficiency 0.25 (max 2.25). The word problem: "Carly has 8 apples, buys 2, sells 5", the
answer 5. `tool_execution` and `tool_format` pay above 0 only when a calculator call did
the problem's arithmetic (two or more of the question's numbers, the answer as result).
"""

from __future__ import annotations

from datetime import datetime

import pytest

import envs
from core.records import Trajectory
from scenarios.math import MathScenario
from tests.test_stale_report_values import play_case_by_hand

CALL = '<tool_call>{{"name": "{name}", "arguments": {args}}}</tool_call>'
NOW = datetime(2026, 3, 10, 9, 0, 0)
WORD = MathScenario(
    id="word", now=NOW, question="Carly has 8 apples, buys 2, sells 5. How many apples now?",
    answer=5,
)  # fmt: skip
DIVISION = MathScenario(
    id="division", now=NOW, question="What is 23 ÷ 13? Give the result to 3 decimal places.",
    answer=1.769, tolerance=1e-3,
)  # fmt: skip


def calculator(expression: str) -> str:
    return CALL.format(name="calculator", args=f'{{"expression": "{expression}"}}')


def play(scenario: MathScenario, *actions: str) -> Trajectory:
    env = envs.make_raw("math_tools", scenarios=[scenario])
    return play_case_by_hand(env, scenario.id, actions)


def test_the_calculator_doing_the_arithmetic_scores_the_maximum() -> None:
    played = play(WORD, calculator("8 + 2 - 5"), "<answer>5</answer>")
    assert played.reward == 2.25 and played.success


def test_a_division_rounded_to_three_places_is_computed_with_the_calculator() -> None:
    played = play(DIVISION, calculator("23 / 13"), "<answer>1.769</answer>")  # 1.7692307692
    assert played.reward == 2.25


@pytest.mark.parametrize(
    "call",
    [
        calculator("1 + 1"),  # arithmetic, but not the problem's
        CALL.format(name="get_current_date", args="{}"),  # a tool that answers anything
        calculator("5"),  # the answer worked out in the head, echoed
        calculator("5 + 0"),  # 0 is not a number of the question
    ],
)
def test_a_call_that_does_not_compute_the_answer_earns_no_tool_credit(call: str) -> None:
    """Mental math plus any call that runs scored 2.25, the expert's total: tool_execution
    and tool_format paid 1 for `1 + 1`. Now they are 0, as for no call at all:
    1 (accuracy) + 0.5 (tag) + 0 + 0 + 0.25 (one call, within budget) = 1.75."""
    played = play(WORD, call, "<answer>5</answer>")
    components = played.reward_components
    assert (components["tool_execution"], components["tool_format"]) == (0.0, 0.0)
    assert played.reward == 1.75 and played.success  # the answer is right, the tools unused
    assert play(WORD, "<answer>5</answer>").reward == 1.75  # mental math, no call


def test_a_computed_answer_copied_wrong_keeps_the_tool_credit() -> None:
    played = play(WORD, calculator("8 + 2 - 5"), "<answer>6</answer>")
    assert played.reward == 0.5 + 0.25 + 0.25 + 0.25 and not played.success


def test_a_bad_call_is_still_penalised_when_nothing_was_computed() -> None:
    bad = CALL.format(name="calculator", args='{"expr": "8 + 2 - 5"}')  # no such parameter
    played = play(WORD, bad, "<answer>5</answer>")
    # tool_execution -2 (error), tool_format -1 (invalid), efficiency 1 (one call)
    assert played.reward == 1 + 0.5 - 0.5 - 0.25 + 0.25


@pytest.mark.parametrize(
    ("scenario", "call", "answer"),
    [
        (WORD, calculator("2 + 8 - 5"), "5"),  # the question's numbers in another order
        (WORD, calculator("8.0 + 2 - 5"), "5"),  # in another form: 8.0 is 8
        (DIVISION, calculator("23.0 / 13"), "1.769"),  # a float to force true division
    ],
)
def test_the_problems_arithmetic_in_another_order_or_form_is_computed(
    scenario: MathScenario, call: str, answer: str
) -> None:
    """`8.0 + 2 - 5` compared its operands as text: '8.0' is not '8', so the calculator's
    work scored 1.75, as mental math. Compared as values it is the expert's 2.25."""
    played = play(scenario, call, f"<answer>{answer}</answer>")
    assert played.reward == 2.25


def test_the_problem_done_in_steps_is_computed_with_the_calculator() -> None:
    """8 + 2 = 10, then 10 - 5 = 5: the second step's 10 is no number of the question, so
    the tool credit was capped and the episode scored 1 + 0.5 + 0 + 0 + 0.25 × 0.75
    = 1.6875, below mental math's 1.75. A step may use an earlier step's result:
    1 + 0.5 + 0.25 + 0.25 + 0.25 × 0.75 (one call over the budget of 1) = 2.1875."""
    played = play(WORD, calculator("8 + 2"), calculator("10 - 5"), "<answer>5</answer>")
    assert played.reward == 2.1875


def test_a_step_that_is_not_the_answer_is_no_computed_answer() -> None:
    """8 + 2 = 10, then 10 - 5 in the head: the calculator computed no answer (1.75)."""
    played = play(WORD, calculator("8 + 2"), "<answer>5</answer>")
    assert played.reward == 1.75
