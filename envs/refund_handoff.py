"""refund_handoff: the seed's refund handoff (M5-L02) as a two-role episode.

"Refund Order #123…": the `acting` role (the learner by default) cannot read orders; it
hands off to the `lookup` role, which maps the order to its customer (`get_order`), checks
the refund (`check_refund`) and reports, or reports an error. The acting role then refunds
(`issue_refund`), explains, or escalates (`escalate_to_human`), and replies to the user.
Faults in the lookup's tools produce error reports the acting role must not act on.
Rewards (`rewards/handoff.py`): handoff_info, role_execution, wrong_final_response (−1),
acted_on_error (−1); the expert scores 2.

    env = envs.make_raw("refund_handoff", split="eval")                   # learner: acting
    env = envs.make_raw("refund_handoff", role="lookup", partners={"acting": "expert"})
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

import numpy as np

from envs.multi_agent import MultiAgentEnv, Role, handoff
from rewards.handoff import REFUND_HANDOFF_REWARDS, REFUND_WEIGHTS, SUCCESS
from rewards.spec import RewardFn
from scenarios.handoff import REFUND_HANDOFF_SLICES, RefundHandoffScenario, load_split
from scenarios.schema import Scenario
from tools import refunds, standard
from tools.sandbox import Sandbox
from tools.schema import Tool

SCRIPTED = "policies.scripted.handoff"
PROMPTS = {
    "acting": """You are the refund agent of an online shop. Your role: acting.
You cannot read orders: the lookup agent can. First call handoff(to="lookup", message=...) \
with the order number; its report comes back as the result.
If the report says "error", never act on it: if the order was not found, reply "Order #N was \
not found."; otherwise call escalate_to_human with a summary.
A refund request: if the refund status is pending, call issue_refund(customer_id, order_id, \
reason) with the reported customer, then reply "Received order #N; refund complete ✓"; \
otherwise reply "Order #N is not eligible for a refund: <status>."
A status question: reply "Order #N: refund status <status>.\"""",
    "lookup": """You are the order-lookup agent of an online shop. Your role: lookup.
The acting agent asks you about an order. Call get_order(order_id) for its customer, then \
check_refund(customer_id, order_id). Retry a failed call once.
Report with handoff(to="acting", message="Order #N belongs to customer C. Refund status: \
<pending|already refunded|not eligible> (<reason>)."). If a call fails twice or finds \
nothing, report "error: <what went wrong>".""",
}


class RefundHandoffEnv(MultiAgentEnv):
    env_name: ClassVar[str] = "refund_handoff"
    gym_id: ClassVar[str | None] = "toolgym/RefundHandoff-v0"
    description: ClassVar[str] = "The seed's refund handoff: lookup reports, acting refunds."
    default_max_turns: ClassVar[int] = 6
    scenario_type: ClassVar[type[Scenario]] = RefundHandoffScenario
    roles: ClassVar[Sequence[Role]] = (
        Role("acting", ("issue_refund", "escalate_to_human"), ("lookup",), answers_user=True),
        Role("lookup", ("get_order", "check_refund"), ("acting",)),
    )
    default_role: ClassVar[str] = "acting"
    tools: ClassVar[Sequence[Tool]] = (
        refunds.get_order,
        refunds.check_refund,
        refunds.issue_refund,
        standard.escalate_to_human,
        handoff,
    )
    rewards: ClassVar[Mapping[str, RewardFn]] = REFUND_HANDOFF_REWARDS
    default_weights: ClassVar[Mapping[str, float]] = REFUND_WEIGHTS
    success_components: ClassVar[Sequence[str]] = SUCCESS
    splits: ClassVar[Sequence[str]] = ("train", "eval", "cases")
    slices: ClassVar[Sequence[str]] = REFUND_HANDOFF_SLICES
    policies: ClassVar[Mapping[str, str]] = {
        "expert": f"{SCRIPTED}:RefundHandoffExpert",
        "ignores_handoff": f"{SCRIPTED}:IgnoresHandoff",
        "acts_on_error": f"{SCRIPTED}:ActsOnError",
        "skips_handoff": f"{SCRIPTED}:SkipsHandoff",
        "masks_error": f"{SCRIPTED}:MasksError",  # a lookup partner's failure
        "drops_customer": f"{SCRIPTED}:DropsCustomer",  # a lookup partner's failure
    }
    expert: ClassVar[str | None] = "expert"
    failure_modes: ClassVar[Sequence[str]] = ("ignores_handoff", "acts_on_error", "skips_handoff")
    demo_mix: ClassVar[Mapping[str, float]] = {"ignores_handoff": 0.3, "acts_on_error": 0.2}
    promotion_rules: ClassVar[str | None] = "promotion:refund_handoff.rules"
    headline_metrics: ClassVar[Sequence[str]] = ("success@1", "reward.handoff_info")
    data_files: ClassVar[Sequence[str]] = ("scenarios:data/refund_handoff",)

    @classmethod
    def load_split(cls, split: str) -> list[Scenario]:
        return list(load_split("refund_handoff", split))

    def build_sandbox(self, scenario: Scenario, rng: np.random.Generator) -> Sandbox:
        assert isinstance(scenario, RefundHandoffScenario)
        db = scenario.db.model_dump(mode="json")
        return Sandbox(now=scenario.now, db=db, faults=scenario.faults, rng=rng)

    def role_prompt(self, role: Role, scenario: Scenario) -> str:
        return PROMPTS[role.name]

    def user_request(self, scenario: Scenario) -> str:
        assert isinstance(scenario, RefundHandoffScenario)
        return scenario.opening
