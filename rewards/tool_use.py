"""Reward components any tool-using env can share.

* `tool_execution`: the seed's graduated table per call (error -2, runs but wrong -1,
  correct +1), averaged over the episode's *distinct* calls (a call repeated with the same
  arguments counts once, at its worst grade), so repeating a good call cannot dilute a bad
  one; injected faults are left out; 0 with no counted call.
* `tool_format`: 2 × (share of schema-valid distinct calls) − 1; 0 with no tool calls.
* `call_efficiency(trajectory, call_budget)`: calls cost. 1 − 0.5 per repeat of a call that
  already failed (the seed's loop) − 0.25 per repeat of a call already answered (nothing new
  to learn) − 0.25 per call beyond `call_budget`, floored at −1. Calls that hit an injected
  fault are free (retrying an outage is right) and are not counted against the budget.
* `works_from(expression, problem)`: the expression computes from the problem's own
  numbers (for envs that pay for using a calculator on the problem, not beside it);
  `calculator_work(calls, problem)`: the calculator calls that do, in steps too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from core.records import Execution, ToolCallRecord, Trajectory
from tools.toolbox import SORTED_JSON

EXECUTION_SCORE = {Execution.OK: 1.0, Execution.WRONG: -1.0, Execution.ERROR: -2.0}
REPEAT_FAILED_COST, REPEAT_ANSWERED_COST, OVER_BUDGET_COST = 0.5, 0.25, 0.25
OPERAND = re.compile(r"\d+(?:\.\d+)?")


def call_key(call: ToolCallRecord) -> str:
    """Calls with the same key are the same request (name and arguments, or raw text)."""
    if call.arguments is None:
        return f"raw:{call.raw}"
    return f"{call.name}:{SORTED_JSON.encode(call.arguments)}"


def distinct_calls(trajectory: Trajectory) -> list[ToolCallRecord]:
    """One call per key (faults left out), the worst-graded one where a key repeats."""
    worst: dict[str, ToolCallRecord] = {}
    for call in trajectory.tool_calls:
        if call.execution == Execution.FAULT:
            continue
        key = call_key(call)
        kept = worst.get(key)
        if kept is None or EXECUTION_SCORE[call.execution] < EXECUTION_SCORE[kept.execution]:
            worst[key] = call
    return list(worst.values())


def tool_execution(trajectory: Trajectory, scenario: Any) -> float:
    scores = [EXECUTION_SCORE[c.execution] for c in distinct_calls(trajectory)]
    return sum(scores) / len(scores) if scores else 0.0


def tool_format(trajectory: Trajectory, scenario: Any) -> float:
    if not trajectory.tool_calls:
        return 0.0
    calls = distinct_calls(trajectory) or trajectory.tool_calls
    return 2.0 * sum(c.valid for c in calls) / len(calls) - 1.0


def repeats(trajectory: Trajectory) -> tuple[int, int]:
    """(repeats of a call that had failed, repeats of a call that had been answered)."""
    outcome: dict[str, Execution] = {}
    failed = answered = 0
    for call in trajectory.tool_calls:
        key = call_key(call)
        before = outcome.get(key)
        if before in (Execution.ERROR, Execution.WRONG):
            failed += 1
        elif before == Execution.OK:
            answered += 1
        if call.execution != Execution.FAULT:
            outcome[key] = call.execution
    return failed, answered


def calls_over_budget(trajectory: Trajectory, call_budget: int) -> int:
    counted = sum(1 for c in trajectory.tool_calls if c.execution != Execution.FAULT)
    return max(0, counted - call_budget)


def call_penalty(trajectory: Trajectory, call_budget: int) -> float:
    failed, answered = repeats(trajectory)
    over = calls_over_budget(trajectory, call_budget)
    return REPEAT_FAILED_COST * failed + REPEAT_ANSWERED_COST * answered + OVER_BUDGET_COST * over


def call_efficiency(trajectory: Trajectory, call_budget: int) -> float:
    return max(-1.0, 1.0 - call_penalty(trajectory, call_budget))


def works_from(expression: str, text: str, derived: Iterable[float] = ()) -> bool:
    """`expression` does arithmetic on the numbers of `text` (a problem) or on `derived`
    ones (results already computed from them): two or more operands, each one of those
    numbers by value (`8.0` is `8`, any order). An answer worked out elsewhere and echoed
    (`5`, `5 + 0`) or arithmetic of something else (`1 + 1`) does not."""
    operands = OPERAND.findall(expression)
    given = {float(n) for n in OPERAND.findall(text)} | set(derived)
    return len(operands) >= 2 and {float(n) for n in operands} <= given


def calculator_work(calls: Iterable[ToolCallRecord], text: str) -> list[ToolCallRecord]:
    """The answered `calculator` calls that compute from `text`'s numbers, in steps too:
    a call may use what an earlier such call returned (`8 + 2`, then `10 - 5`)."""
    derived: set[float] = set()
    work = []
    for call in calls:
        if call.name != "calculator" or call.execution != Execution.OK or call.result is None:
            continue
        if works_from(str((call.arguments or {}).get("expression")), text, derived):
            work.append(call)
            derived.add(abs(float(call.result)))  # operands are read without their sign
    return work
