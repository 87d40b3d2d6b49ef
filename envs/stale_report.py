"""stale_report: "New earnings report attached…" — but is it new? (the seed's M5-L02).

The user attaches an earnings report and asks for the current growth. The agent has the
frozen clock (`get_current_date`) and a frozen index of published reports
(`search_docs`, `read_document`). In `datetime_freshness` the attachment is an old
quarter: the agent must check today's date, compare, say it is not the latest and give
the latest figure. In `rag_new_document` the attachment is newer than anything indexed:
the agent must check the date and use it. Rewards (`rewards/freshness.py`):
`used_current_state` (the tool, not its own idea of today) and `correct`, plus the shared
tool-use components and `efficiency`. Success needs both `used_current_state` and `correct`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from core.records import Message, Trajectory
from envs.base import ToolEnv
from rewards import freshness
from rewards.spec import RewardFn
from rewards.tool_use import call_efficiency, tool_execution, tool_format
from scenarios.schema import Scenario
from scenarios.stale_report import SLICES, SPLITS, StaleReportScenario, load_split
from tools import standard
from tools.sandbox import Sandbox
from tools.schema import Tool
from tools.search import SEARCH_TOOLS, SearchSandbox, load_index

SYSTEM_PROMPT = """You are a financial research assistant. Documents users attach may be out of \
date. Tools: get_current_date (today's date: use it, never guess), search_docs and \
read_document (the index of published earnings reports). Call tools with \
<tool_call>{"name": ..., "arguments": {...}}</tool_call>. Answer in plain text, giving the \
period and the figure you rely on."""
CALL_BUDGET = 3  # the date, one search, one read


def efficiency(trajectory: Trajectory, scenario: Any) -> float:
    return call_efficiency(trajectory, CALL_BUDGET)


FRESHNESS_REWARDS: dict[str, RewardFn] = {
    "used_current_state": freshness.used_current_state,
    "correct": freshness.correct,
    "tool_execution": tool_execution,
    "tool_format": tool_format,
    "efficiency": efficiency,
}
FRESHNESS_WEIGHTS = {
    "used_current_state": 1.0,
    "correct": 1.0,
    "tool_execution": 0.25,
    "tool_format": 0.25,
    "efficiency": 0.25,
}
POLICY_CLASSES = (
    ("expert", "Expert"),
    ("trusts_attachment", "TrustsAttachment"),
    ("own_clock", "OwnClock"),
    ("always_stale", "AlwaysStale"),
)


class StaleReportEnv(ToolEnv):
    env_name: ClassVar[str] = "stale_report"
    gym_id: ClassVar[str | None] = "toolgym/StaleReport-v0"
    description: ClassVar[str] = "An attached 'new' report may be old: check the date, compare."
    default_max_turns: ClassVar[int] = 6
    scenario_type: ClassVar[type[Scenario]] = StaleReportScenario
    tools: ClassVar[Sequence[Tool]] = (standard.get_current_date, *SEARCH_TOOLS)
    rewards: ClassVar[Mapping[str, RewardFn]] = FRESHNESS_REWARDS
    default_weights: ClassVar[Mapping[str, float]] = FRESHNESS_WEIGHTS
    success_components: ClassVar[Sequence[str]] = ("used_current_state", "correct")
    splits: ClassVar[Sequence[str]] = SPLITS
    slices: ClassVar[Sequence[str]] = SLICES
    policies: ClassVar[Mapping[str, str]] = {
        name: f"policies.scripted.stale_report:{cls}" for name, cls in POLICY_CLASSES
    }
    expert: ClassVar[str | None] = "expert"
    failure_modes: ClassVar[Sequence[str]] = ("trusts_attachment", "own_clock", "always_stale")
    promotion_rules: ClassVar[str | None] = "promotion:stale_report.rules"
    headline_metrics: ClassVar[Sequence[str]] = (
        "success@1",
        "check_pass_rate[name=used_current_state]",
    )
    data_files: ClassVar[Sequence[str]] = ("scenarios:data/stale_report",)

    @classmethod
    def load_split(cls, split: str) -> list[Scenario]:
        return list(load_split(split))

    def build_sandbox(self, scenario: Scenario, rng: np.random.Generator) -> Sandbox:
        assert isinstance(scenario, StaleReportScenario)
        return SearchSandbox(
            search_index=load_index(scenario.corpus),
            now=scenario.now,
            faults=scenario.faults,
            rng=rng,
        )

    def opening_messages(self, scenario: Scenario) -> list[Message]:
        assert isinstance(scenario, StaleReportScenario)
        return [
            Message(role="system", content=SYSTEM_PROMPT),
            Message(role="user", content=scenario.opening),
        ]

    def finish(self, trajectory: Trajectory, scenario: Scenario, sandbox: Sandbox) -> None:
        assert isinstance(scenario, StaleReportScenario)
        components = trajectory.reward_components
        answer = trajectory.final_answer or ""
        trajectory.checks = {
            "used_current_state": components["used_current_state"] == 1.0,
            "correct": components["correct"] == 1.0,
            "flagged_stale": freshness.flags_stale(answer) == scenario.stale,
            "format": all(call.valid for call in trajectory.tool_calls),
        }
        trajectory.violations = freshness.violations(trajectory, scenario)
        trajectory.checks["rules"] = not trajectory.violations
