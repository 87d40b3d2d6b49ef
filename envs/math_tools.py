"""math_tools: arithmetic with a calculator and an `<answer>` tag (the seed's R1 examples).

The agent gets a word problem or a division, may call `calculator`, and must end with
`<answer>number</answer>`. Rewards: `accuracy` (1 if the answer is within the
scenario's tolerance, else 0), `answer_format` (1 if the final reply has the tag, else 0),
the shared `tool_execution` / `tool_format` components (capped at 0 unless a calculator
call did the problem's arithmetic: `computed_with_calculator`), and `efficiency` (repeated calls
and calls beyond the one a problem needs cost: `rewards.tool_use.call_efficiency`).
Checks feed the eval metrics `math_correct_rate` and `format_pass_rate(tag='<answer>')`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from core.records import Message, Trajectory
from envs.base import ToolEnv
from rewards.spec import RewardFn
from rewards.tags import tagged_answer
from rewards.tool_use import calculator_work, call_efficiency, tool_execution, tool_format
from scenarios.math import MathScenario, generate
from scenarios.schema import Scenario
from tools import standard
from tools.sandbox import Sandbox
from tools.schema import Tool

NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
ROUNDING = 5e-4  # an answer rounded to 3 decimals is this far from the exact result
SYSTEM = (
    "Solve the problem. Use the calculator tool for arithmetic instead of computing in your "
    "head. Finish with the number alone inside <answer></answer>."
)


def answer_value(trajectory: Trajectory) -> float | None:
    answer = tagged_answer(trajectory.final_answer or "")
    number = NUMBER.search(answer) if answer is not None else None
    return float(number.group(0)) if number else None


def accuracy(trajectory: Trajectory, scenario: Any) -> float:
    value = answer_value(trajectory)
    return float(value is not None and abs(value - scenario.answer) <= scenario.tolerance)


def answer_format(trajectory: Trajectory, scenario: Any) -> float:
    return float(tagged_answer(trajectory.final_answer or "") is not None)


def computed_with_calculator(trajectory: Trajectory, scenario: Any) -> bool:
    """A calculator call did the problem's arithmetic: an expression of two or more of the
    question's own numbers (or of what earlier such calls returned: the problem in steps)
    whose result is the answer (within the tolerance, plus the rounding a "3 decimal
    places" answer allows)."""
    return any(
        abs(float(call.result) - scenario.answer) <= scenario.tolerance + ROUNDING
        for call in calculator_work(trajectory.tool_calls, scenario.question)
    )


def tool_credit(component: RewardFn) -> RewardFn:
    """`component`, but never above 0 unless the calculator computed the answer: a call
    that computes something else (`1 + 1`, today's date, the answer itself) earns nothing,
    so it cannot buy the tool credit for an answer worked out in the head."""

    def scored(trajectory: Trajectory, scenario: Any) -> float:
        value = component(trajectory, scenario)
        return value if computed_with_calculator(trajectory, scenario) else min(value, 0.0)

    scored.__name__ = scored.__qualname__ = component.__name__
    scored.__doc__ = component.__doc__
    return scored


def efficiency(trajectory: Trajectory, scenario: Any) -> float:
    """Calls cost: one calculator call is all a problem needs (`rewards.tool_use`)."""
    return call_efficiency(trajectory, call_budget=1)


MATH_REWARDS = {
    "accuracy": accuracy,
    "answer_format": answer_format,
    "tool_execution": tool_credit(tool_execution),
    "tool_format": tool_credit(tool_format),
    "efficiency": efficiency,
}
MATH_WEIGHTS = {
    "accuracy": 1.0,
    "answer_format": 0.5,
    "tool_execution": 0.25,
    "tool_format": 0.25,
    "efficiency": 0.25,
}


class MathToolsEnv(ToolEnv):
    env_name: ClassVar[str] = "math_tools"
    gym_id: ClassVar[str | None] = "toolgym/MathTools-v0"
    description: ClassVar[str] = "Arithmetic word problems with a calculator and <answer> tags."
    default_max_turns: ClassVar[int] = 8
    scenario_type: ClassVar[type[Scenario]] = MathScenario
    tools: ClassVar[Sequence[Tool]] = (standard.calculator, standard.get_current_date)
    rewards: ClassVar[Mapping[str, RewardFn]] = MATH_REWARDS
    default_weights: ClassVar[Mapping[str, float]] = MATH_WEIGHTS
    success_components: ClassVar[Sequence[str]] = ("accuracy",)
    slices: ClassVar[Sequence[str]] = ("math_basic", "division_hard")
    policies: ClassVar[Mapping[str, str]] = {
        "expert": "policies.scripted.math:MathExpert",
        "mental_math": "policies.scripted.math:MentalMath",
        "untagged": "policies.scripted.math:Untagged",
        "bad_calls": "policies.scripted.math:BadCalls",
    }
    expert: ClassVar[str | None] = "expert"
    failure_modes: ClassVar[Sequence[str]] = ("mental_math", "untagged", "bad_calls")
    promotion_rules: ClassVar[str | None] = "promotion:math_tools.rules"
    headline_metrics: ClassVar[Sequence[str]] = ("success@1", "reward.tool_execution")

    @classmethod
    def load_split(cls, split: str) -> list[Scenario]:
        return list(generate(split))

    def opening_messages(self, scenario: Scenario) -> list[Message]:
        assert isinstance(scenario, MathScenario)
        return [
            Message(role="system", content=SYSTEM),
            Message(role="user", content=scenario.question),
        ]

    def finish(self, trajectory: Trajectory, scenario: Scenario, sandbox: Sandbox) -> None:
        correct = trajectory.reward_components["accuracy"] == 1.0
        trajectory.checks = {
            "format": all(call.valid for call in trajectory.tool_calls),
            "format:<answer>": trajectory.reward_components["answer_format"] == 1.0,
            "math_correct": correct,
        }
