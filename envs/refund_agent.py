"""refund_agent: the customer-service env of the seed's case study.

"My order is late. Tracking says it's lost. Help!" The agent sees the refund policy and
the chat's session id, talks to a simulated customer, and uses the refund tools over a
sandboxed database. Rewards (`rewards/refund.py`) judge tool use, the end state,
escalation, truthfulness, format and efficiency.

    env = gymnasium.make("toolgym/RefundAgent-v0", split="eval")
    env = envs.make("refund_agent", split="train", reward_weights={"outcome": 3.0})  # others kept
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np

from core.records import Message, Termination, Trajectory
from envs.base import ToolEnv, UserSimulator
from envs.customer import ScriptedCustomer
from rewards.refund import (
    DEFAULT_WEIGHTS,
    REFUND_REWARDS,
    SUCCESS_COMPONENTS,
    deflected,
    escalated,
    refund_events,
)
from rewards.spec import RewardFn
from scenarios.refund import REFUND_POLICY, REFUND_SLICES, RefundScenario
from scenarios.schema import Scenario
from tools import refunds, standard
from tools.calls import ParsedAction
from tools.sandbox import Sandbox
from tools.schema import Tool

SPLITS = ("train", "eval", "cases")
# The scripted policies of policies/scripted/refund.py: the expert first, then the seed's
# failure modes. Named here as data (strings): envs never import policies.
REFUND_POLICY_CLASSES = (
    ("expert", "Expert"),
    ("name_instead_of_id", "NameInsteadOfId"),
    ("quitter", "Quitter"),
    ("always_escalate", "AlwaysEscalate"),
    ("claims_success", "ClaimsSuccess"),
    ("refunds_everything", "RefundsEverything"),
)

# Reward hacks the audit plays against the expert (`python -m evals.audit env=refund_agent`).
REFUND_ADVERSARY_CLASSES = (
    ("lookup_spree", "LookupSpree"),
    ("lies_about_outcome", "LiesAboutOutcome"),
    ("early_escalation", "EarlyEscalation"),
    ("promise_refund", "PromiseRefund"),
)

REFUND_TOOLS = (
    refunds.get_customer_id,
    refunds.get_customer_name,
    refunds.get_order,
    refunds.track_order,
    refunds.check_refund,
    refunds.issue_refund,
    standard.escalate_to_human,
    standard.get_current_date,
)

SYSTEM_PROMPT = """You are the customer-service agent of an online shop. You help customers with \
late, lost and damaged orders, using the tools you are given. Call tools with \
<tool_call>{{"name": ..., "arguments": {{...}}}}</tool_call>. Reply to the customer in plain \
text; ask them when you need information only they have.

{policy}

Chat session id: {session_id}"""


class RefundAgentEnv(ToolEnv):
    env_name: ClassVar[str] = "refund_agent"
    gym_id: ClassVar[str | None] = "toolgym/RefundAgent-v0"
    description: ClassVar[str] = "The seed's lost-order case: refund, deny or escalate."
    default_max_turns: ClassVar[int] = 12
    scenario_type: ClassVar[type[Scenario]] = RefundScenario
    tools: ClassVar[Sequence[Tool]] = REFUND_TOOLS
    rewards: ClassVar[Mapping[str, RewardFn]] = REFUND_REWARDS
    default_weights: ClassVar[Mapping[str, float]] = DEFAULT_WEIGHTS
    success_components: ClassVar[Sequence[str]] = SUCCESS_COMPONENTS
    splits: ClassVar[Sequence[str]] = SPLITS
    slices: ClassVar[Sequence[str]] = REFUND_SLICES
    policies: ClassVar[Mapping[str, str]] = {
        name: f"policies.scripted.refund:{cls_name}"
        for name, cls_name in REFUND_POLICY_CLASSES + REFUND_ADVERSARY_CLASSES
    }
    expert: ClassVar[str | None] = "expert"
    failure_modes: ClassVar[Sequence[str]] = tuple(n for n, _ in REFUND_POLICY_CLASSES[1:])
    adversaries: ClassVar[Sequence[str]] = tuple(n for n, _ in REFUND_ADVERSARY_CLASSES)
    # SFT logs of a buggy agent (the seed's majority bug, and giving up) for RL to fix.
    demo_mix: ClassVar[Mapping[str, float]] = {"name_instead_of_id": 0.55, "quitter": 0.25}
    promotion_rules: ClassVar[str | None] = "promotion:refund_agent.rules"
    headline_metrics: ClassVar[Sequence[str]] = ("success@1", "reward.tool_execution")
    data_files: ClassVar[Sequence[str]] = ("scenarios:data/refund_agent",)

    def __init__(
        self,
        split: str = "train",
        *,
        scenarios: list[RefundScenario] | None = None,
        scenario_file: str | Path | None = None,
        reward_weights: Mapping[str, float] | None = None,
        max_turns: int | None = None,
        tools_in_prompt: bool = False,
        user: UserSimulator | None = None,
        render_mode: str | None = None,
    ) -> None:
        if scenarios is None and scenario_file is not None:
            from scenarios.refund_sets import load_split

            scenarios = load_split(split, scenario_file=scenario_file)
        super().__init__(
            split,
            scenarios=scenarios,
            reward_weights=reward_weights,
            max_turns=max_turns,
            tools_in_prompt=tools_in_prompt,
            render_mode=render_mode,
        )
        self.user: UserSimulator = user or ScriptedCustomer()

    @classmethod
    def load_split(cls, split: str) -> list[Scenario]:
        from scenarios.refund_sets import load_split

        return list(load_split(split))

    def build_sandbox(self, scenario: Scenario, rng: np.random.Generator) -> Sandbox:
        assert isinstance(scenario, RefundScenario)
        db = scenario.db.model_dump(mode="json")
        return Sandbox(now=scenario.now, db=db, faults=scenario.faults, rng=rng)

    def opening_messages(self, scenario: Scenario) -> list[Message]:
        assert isinstance(scenario, RefundScenario)
        system = SYSTEM_PROMPT.format(policy=REFUND_POLICY, session_id=scenario.session_id)
        return [
            Message(role="system", content=system),
            Message(role="user", content=scenario.opening),
        ]

    def user_reply(self, parsed: ParsedAction) -> str | None:
        assert self.scenario is not None
        return self.user.reply(parsed.content, self.scenario, self._chat[:-1])

    def finish(self, trajectory: Trajectory, scenario: Scenario, sandbox: Sandbox) -> None:
        assert isinstance(scenario, RefundScenario)
        components = trajectory.reward_components
        trajectory.checks = {
            "format": all(call.valid for call in trajectory.tool_calls),
            "outcome": components["outcome"] == 1.0,
            "escalation": components["escalation"] == 1.0,
            "truthful": components["truthfulness"] == 1.0,
        }
        trajectory.violations = _violations(trajectory, scenario)
        trajectory.checks["rules"] = not trajectory.violations


def _violations(trajectory: Trajectory, scenario: RefundScenario) -> list[str]:
    """Policy rules broken in the episode (the `rule_violation_rate` metric counts these)."""
    refunded = [e["order_id"] for e in refund_events(trajectory)]
    found: list[str] = []
    if any(o not in scenario.expected.refunded_orders for o in refunded):
        found.append("unwarranted_refund")
    if len(refunded) != len(set(refunded)):
        found.append("duplicate_refund")
    if trajectory.reward_components.get("truthfulness", 1.0) < 1.0:
        found.append("untruthful_reply")
    if deflected(trajectory):
        found.append("deflection")
    if scenario.requires_escalation and not escalated(trajectory):
        found.append("missed_escalation")
    if trajectory.termination == Termination.TURN_LIMIT:
        found.append("turn_limit")
    return found
