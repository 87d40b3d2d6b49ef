"""rewards.tool_use: the shared tool-call rewards on hand-built episodes, values by hand.

The seed's table grades each call: error −2, runs but wrong −1, correct +1; injected
faults are not the policy's doing and are left out.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from core.records import Execution, ToolCallRecord, Trajectory
from rewards.tool_use import (
    calculator_work,
    call_efficiency,
    call_key,
    call_penalty,
    calls_over_budget,
    distinct_calls,
    repeats,
    tool_execution,
    tool_format,
    works_from,
)

OK, WRONG, ERROR, FAULT = Execution.OK, Execution.WRONG, Execution.ERROR, Execution.FAULT


def call(
    name: str,
    execution: Execution,
    *,
    call_id: str = "c",
    valid: bool = True,
    arguments: dict[str, Any] | None = None,
    raw: str = "{}",
) -> ToolCallRecord:
    return ToolCallRecord(
        turn=0,
        index=0,
        call_id=call_id,
        raw=raw,
        name=name,
        arguments={"order_id": 1} if arguments is None else arguments,
        valid=valid,
        execution=execution,
    )


def episode(*calls: ToolCallRecord) -> Trajectory:
    return Trajectory(
        env_id="toolgym/Test-v0",
        scenario_id="s",
        scenario_hash="h",
        seed=0,
        tool_calls=list(calls),
    )


def test_call_key_is_the_name_and_sorted_arguments() -> None:
    args = {"b": 1, "when": date(2026, 3, 1), "a": "x"}
    assert call_key(call("track", OK, arguments=args)) == (
        'track:{"a": "x", "b": 1, "when": "2026-03-01"}'
    )


def test_call_key_of_an_unparsed_call_is_its_raw_text() -> None:
    unparsed = call("track", ERROR, raw="<tool_call>{oops", valid=False).model_copy(
        update={"arguments": None}
    )
    assert call_key(unparsed) == "raw:<tool_call>{oops"


def test_execution_averages_distinct_calls_by_the_seed_table() -> None:
    trajectory = episode(
        call("a", OK),
        call("a", OK),  # a repeat of a good call does not dilute the bad ones
        call("b", WRONG),
        call("c", ERROR),
        call("d", FAULT),  # injected: not counted
    )
    assert tool_execution(trajectory, None) == pytest.approx((1.0 - 1.0 - 2.0) / 3)


@pytest.mark.parametrize(("execution", "score"), [(OK, 1.0), (WRONG, -1.0), (ERROR, -2.0)])
def test_one_call_scores_its_grade(execution: Execution, score: float) -> None:
    assert tool_execution(episode(call("a", execution)), None) == score


def test_a_fault_first_does_not_hide_the_calls_after_it() -> None:
    trajectory = episode(call("a", FAULT), call("b", WRONG), call("c", OK))
    assert [c.name for c in distinct_calls(trajectory)] == ["b", "c"]
    assert tool_execution(trajectory, None) == 0.0  # (-1 + 1) / 2


def test_execution_without_counted_calls_is_zero() -> None:
    assert tool_execution(episode(), None) == 0.0
    assert tool_execution(episode(call("a", FAULT)), None) == 0.0


def test_a_repeated_call_counts_once_at_its_worst_grade() -> None:
    first_ok = [call("a", OK, call_id="1"), call("a", ERROR, call_id="2")]
    kept = distinct_calls(episode(*first_ok, call("b", OK, call_id="3")))
    assert [c.call_id for c in kept] == ["2", "3"]
    assert tool_execution(episode(*first_ok), None) == -2.0


def test_of_equal_grades_the_first_call_is_kept() -> None:
    kept = distinct_calls(episode(call("a", WRONG, call_id="1"), call("a", WRONG, call_id="2")))
    assert [c.call_id for c in kept] == ["1"]
    worse_first = [call("a", ERROR, call_id="1"), call("a", WRONG, call_id="2")]
    assert [c.call_id for c in distinct_calls(episode(*worse_first))] == ["1"]


def test_format_is_the_share_of_valid_distinct_calls_rescaled() -> None:
    trajectory = episode(
        call("a", OK),
        call("a", OK),
        call("a", OK),  # three copies of one valid call count once
        call("b", ERROR, valid=False),
    )
    assert tool_format(trajectory, None) == 0.0  # 2 x 1/2 - 1
    three = episode(call("a", OK), call("b", OK), call("c", ERROR, valid=False), call("d", OK))
    assert tool_format(three, None) == 0.5  # 2 x 3/4 - 1


def test_format_bounds() -> None:
    assert tool_format(episode(call("a", OK)), None) == 1.0
    assert tool_format(episode(call("a", ERROR, valid=False)), None) == -1.0
    assert tool_format(episode(), None) == 0.0  # no calls: nothing to grade


def test_format_when_every_call_hit_a_fault_grades_those_calls() -> None:
    faults = episode(call("a", FAULT), call("b", FAULT, valid=False), call("c", FAULT))
    assert tool_format(faults, None) == pytest.approx(1.0 / 3.0)  # 2 x 2/3 - 1


def test_repeats_count_failed_and_answered_calls_apart() -> None:
    trajectory = episode(
        call("a", ERROR),
        call("a", ERROR),  # failed before: +1 failed
        call("a", OK),  # failed before: +1 failed
        call("a", OK),  # answered before: +1 answered
        call("b", FAULT),
        call("b", FAULT),  # faults leave no outcome: not a repeat
        call("b", OK),  # first outcome for b
        call("b", OK),  # +1 answered
        call("c", WRONG),
        call("c", OK),  # wrong before: +1 failed
    )
    assert repeats(trajectory) == (3, 2)
    assert calls_over_budget(trajectory, 5) == 3  # 8 counted (faults are free)
    assert calls_over_budget(trajectory, 8) == 0
    assert calls_over_budget(trajectory, 10) == 0
    assert call_penalty(trajectory, 5) == pytest.approx(0.5 * 3 + 0.25 * 2 + 0.25 * 3)


def test_efficiency_of_a_clean_episode_within_budget_is_one() -> None:
    clean = episode(call("a", OK), call("b", OK), call("c", FAULT), call("c", OK))
    assert call_efficiency(clean, call_budget=3) == 1.0


def test_efficiency_costs_a_quarter_per_answered_repeat() -> None:
    assert call_efficiency(episode(call("a", OK), call("a", OK)), call_budget=4) == 0.75


def test_efficiency_costs_a_half_per_repeat_of_a_failed_call() -> None:
    assert call_efficiency(episode(call("a", ERROR), call("a", ERROR)), call_budget=4) == 0.5


def test_efficiency_costs_a_quarter_per_call_over_budget() -> None:
    calls = [call(name, OK) for name in "abcde"]
    assert call_efficiency(episode(*calls), call_budget=4) == 0.75
    assert call_efficiency(episode(*calls), call_budget=5) == 1.0


def test_efficiency_is_floored_at_minus_one() -> None:
    looping = episode(*[call("a", ERROR) for _ in range(6)])  # 5 failed repeats: 1 - 2.5
    assert call_efficiency(looping, call_budget=10) == -1.0
    assert call_efficiency(episode(*[call("a", ERROR) for _ in range(4)]), 10) == -0.5


# ---- works_from / calculator_work: a calculator used on the problem, not beside it ------------
PROBLEM = "Carly has 8 apples, buys 2, sells 5. How many now?"  # numbers 8, 2, 5


@pytest.mark.parametrize(
    "expression",
    [
        "8 + 2 - 5",  # the problem's arithmetic
        "2 + 8 - 5",  # in another order
        "(8 + 2) - 5",
        "8.0 + 2 - 5.00",  # in another form: the same values
        "8 + 2",  # two operands are enough (one step of it)
    ],
)
def test_an_expression_of_the_problems_numbers_works_from_it(expression: str) -> None:
    assert works_from(expression, PROBLEM)


@pytest.mark.parametrize(
    "expression",
    [
        "5",  # the answer, echoed: one operand
        "5 + 0",  # 0 is not a number of the problem
        "1 + 1",  # arithmetic of something else
        "8 + 2 - 5 + 10",  # 10 is not a number of the problem
        "",
    ],
)
def test_an_expression_of_other_numbers_does_not_work_from_the_problem(expression: str) -> None:
    assert not works_from(expression, PROBLEM)


def test_a_step_may_use_the_numbers_derived_before() -> None:
    assert not works_from("10 - 5", PROBLEM)
    assert works_from("10 - 5", PROBLEM, derived={10.0})
    assert not works_from("10 - 5", PROBLEM, derived={5.0})


def calc(
    expression: str | None, result: str | None, execution: Execution = OK, name: str = "calculator"
) -> ToolCallRecord:
    arguments = None if expression is None else {"expression": expression}
    return ToolCallRecord(
        turn=0, index=0, call_id="c", raw="{}", name=name, arguments=arguments, valid=True,
        execution=execution, result=result,
    )  # fmt: skip


def test_calculator_work_follows_the_problem_in_steps() -> None:
    """8 + 2 = 10, then 10 - 5 = 5: the second call computes from the first one's result."""
    steps = [calc("8 + 2", "10"), calc("10 - 5", "5")]
    assert calculator_work(steps, PROBLEM) == steps


def test_a_negative_step_is_used_without_its_sign() -> None:
    """5 - 8 = -3, then 8 + -3 = 5: the operand reads 3, the magnitude of -3."""
    steps = [calc("5 - 8", "-3"), calc("8 + -3", "5")]
    assert calculator_work(steps, PROBLEM) == steps


def test_calculator_work_leaves_out_calls_that_did_not_compute_the_problem() -> None:
    junk = calc("1 + 9", "10")  # 10, but not from the problem's numbers
    wrong = calc("8 + 2", "10", execution=WRONG)  # not answered
    other = calc("8 + 2", "10", name="python")  # not the calculator
    unanswered = calc("8 + 2", None)  # no result to build on
    no_arguments = calc(None, "10")
    whole = calc("8 + 2 - 5", "5")  # the problem's arithmetic, after the call left out
    for before in (junk, wrong, other, unanswered, no_arguments):
        assert calculator_work([before, calc("10 - 5", "5"), whole], PROBLEM) == [whole]
    assert calculator_work([calc("2 + 5", "7"), calc("7 + 8", "15")], PROBLEM) == [
        calc("2 + 5", "7"), calc("7 + 8", "15"),
    ]  # fmt: skip
