"""calculator_handoff: the seed's apples example (M5-L02) as a three-role episode.

"Alice has 3 apples and buys 2 more. How many now?": the `coordinator` (the learner by
default) hands the problem to `equation`, which turns it into an equation ("Start with 3.
Buys 2 ⇒ 3 + 2") and hands it to `calculator`, which uses the calculator tool and reports
"3 + 2 = 5" back to the coordinator, who answers `<answer>5</answer>`. Rewards
(`rewards/handoff.py`): handoff_info, role_execution, wrong_final_response (−1); the expert
scores 2.

    env = envs.make_raw("calculator_handoff", role="equation")   # train the equation role
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from envs.multi_agent import MultiAgentEnv, Role, handoff
from rewards.handoff import MATH_HANDOFF_REWARDS, MATH_WEIGHTS, SUCCESS
from rewards.spec import RewardFn
from scenarios.handoff import MATH_HANDOFF_SLICES, MathHandoffScenario, load_split
from scenarios.schema import Scenario
from tools import standard
from tools.schema import Tool

SCRIPTED = "policies.scripted.handoff"
PROMPTS = {
    "coordinator": """You coordinate two agents. Your role: coordinator.
Hand the user's word problem to the equation agent: handoff(to="equation", message=<problem>). \
The calculator agent's result comes back as the result. Answer with the number alone inside \
<answer></answer>.""",
    "equation": """You turn word problems into equations. Your role: equation.
Write the arithmetic as "<steps> ⇒ <expression>" and hand it to the calculator agent: \
handoff(to="calculator", message=...).""",
    "calculator": """You compute with a calculator. Your role: calculator.
Call calculator(expression) on the expression after ⇒, then report "<expression> = <value>" \
to the coordinator: handoff(to="coordinator", message=...). If it fails, report "error: ...".""",
}


class CalculatorHandoffEnv(MultiAgentEnv):
    env_name: ClassVar[str] = "calculator_handoff"
    gym_id: ClassVar[str | None] = "toolgym/CalculatorHandoff-v0"
    description: ClassVar[str] = "The seed's apples example: equation, calculator, coordinator."
    default_max_turns: ClassVar[int] = 5
    scenario_type: ClassVar[type[Scenario]] = MathHandoffScenario
    roles: ClassVar[Sequence[Role]] = (
        Role("coordinator", (), ("equation", "calculator"), answers_user=True),
        Role("equation", (), ("calculator", "coordinator")),
        Role("calculator", ("calculator",), ("coordinator", "equation")),
    )
    default_role: ClassVar[str] = "coordinator"
    tools: ClassVar[Sequence[Tool]] = (standard.calculator, handoff)
    rewards: ClassVar[Mapping[str, RewardFn]] = MATH_HANDOFF_REWARDS
    default_weights: ClassVar[Mapping[str, float]] = MATH_WEIGHTS
    success_components: ClassVar[Sequence[str]] = SUCCESS
    splits: ClassVar[Sequence[str]] = ("train", "eval", "cases")
    slices: ClassVar[Sequence[str]] = MATH_HANDOFF_SLICES
    policies: ClassVar[Mapping[str, str]] = {
        "expert": f"{SCRIPTED}:CalculatorHandoffExpert",
        "mental_math": f"{SCRIPTED}:MentalMath",
        "ignores_report": f"{SCRIPTED}:IgnoresReport",
        "untagged": f"{SCRIPTED}:Untagged",
        "wrong_equation": f"{SCRIPTED}:WrongEquation",  # an equation partner's failure
        "no_calculator": f"{SCRIPTED}:NoCalculator",  # a calculator partner's failure
    }
    expert: ClassVar[str | None] = "expert"
    failure_modes: ClassVar[Sequence[str]] = ("mental_math", "ignores_report", "untagged")
    promotion_rules: ClassVar[str | None] = "promotion:calculator_handoff.rules"
    headline_metrics: ClassVar[Sequence[str]] = ("success@1", "reward.handoff_info")
    data_files: ClassVar[Sequence[str]] = ("scenarios:data/calculator_handoff",)

    @classmethod
    def load_split(cls, split: str) -> list[Scenario]:
        return list(load_split("calculator_handoff", split))

    def role_prompt(self, role: Role, scenario: Scenario) -> str:
        return PROMPTS[role.name]

    def user_request(self, scenario: Scenario) -> str:
        assert isinstance(scenario, MathHandoffScenario)
        return scenario.question
