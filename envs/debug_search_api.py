"""debug_search_api: the seed's M5-L03 worked example, "Getting a lot of 500s…".

The agent has a frozen docs corpus and changelog (`search_docs`, `read_document`), a
repository snapshot (`list_files`, `read_file`) and a test runner (`run_tests`, in the
code sandbox). It must answer with a plan and code. When it gives its final answer the
env runs the repository's unit tests on the proposed code (the `final_verification`
event of the end state); the verifiers of `rewards/code_checks.py` then score the seed's
table: relevance (a cheap reward-model stand-in), unit tests, version reference
(`v3.2.1` / `==3.2.1`), deprecation (no `legacy_lookup`, …) and up-to-date information,
plus the shared tool-use components and `efficiency` (repeats and calls beyond the four
the fix needs cost, `rewards.tool_use.call_efficiency`).
Success@1 needs every required check: unit tests, version, deprecation, and the fix
release retrieved from the docs (not recalled).

A failure of the sandbox itself (after retries) raises `InfrastructureError`: the env
ends the episode unscored (`termination = infra_error`, `info["infra_error"]`); the
metrics leave it out and count it in `policy_error_rate`, and the eval harness replays it
within its `infra_retries`. It is never scored as the policy's failure.

    env = envs.make("debug_search_api", split="eval")                  # subprocess sandbox
    env = envs.make("debug_search_api", sandbox_backend="docker")       # where Docker runs
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from core.records import InfrastructureError, Message, Trajectory
from envs.base import ToolEnv
from rewards import code_checks
from rewards.spec import RewardFn
from rewards.tool_use import call_efficiency, tool_execution, tool_format
from scenarios.debug_search_api import SLICES, SPLITS, DebugScenario, load_split
from scenarios.schema import Scenario
from tools.calls import ParsedAction
from tools.code_sandbox import CodeSandbox, Limits, make_sandbox
from tools.repo import REPO_TOOLS, RepoSandbox, load_repo, verify
from tools.sandbox import Sandbox
from tools.schema import Tool
from tools.search import SEARCH_TOOLS, SearchSandbox, load_index

SYSTEM_PROMPT = """You are the on-call engineer for a service that uses search-sdk. Investigate \
with the tools: search_docs and read_document for the SDK docs and changelog, list_files and \
read_file for the repository, run_tests to check a fix (nothing is saved). Call tools with \
<tool_call>{"name": ..., "arguments": {...}}</tool_call>.
Your final answer (no tool call) must contain: a short numbered plan, the exact install \
command, and the complete fixed file in one ```python block."""

CALL_BUDGET = 4  # search + read the file, read the changelog, run the tests


def efficiency(trajectory: Trajectory, scenario: Any) -> float:
    return call_efficiency(trajectory, CALL_BUDGET)


DEBUG_REWARDS: dict[str, RewardFn] = {
    "relevance": code_checks.relevance,
    "unit_tests": code_checks.unit_tests,
    "version_reference": code_checks.version_reference,
    "deprecation": code_checks.deprecation,
    "up_to_date": code_checks.up_to_date,
    "tool_execution": tool_execution,
    "tool_format": tool_format,
    "efficiency": efficiency,
}
DEBUG_WEIGHTS = {
    "unit_tests": 1.0,
    "version_reference": 1.0,
    "deprecation": 1.0,
    "relevance": 0.5,
    "up_to_date": 0.5,
    "tool_execution": 0.25,
    "tool_format": 0.25,
    "efficiency": 0.25,
}
# The seed's required constraints, plus retrieval: a fix recalled from memory (no search) is
# the frozen-knowledge failure this env trains against, even when it happens to be right.
REQUIRED = ("unit_tests", "version_reference", "deprecation", "up_to_date")
POLICY_CLASSES = (
    ("expert", "Expert"),
    ("fluent_wrong", "FluentWrong"),
    ("stale_version", "StaleVersion"),
    ("broken_code", "BrokenCode"),
    ("keyword_stuffer", "KeywordStuffer"),
    ("sandbox_attack", "SandboxAttack"),
)


class DebugSandbox(RepoSandbox, SearchSandbox):
    """The episode's sandbox: repository + code sandbox, and the frozen docs index."""


class DebugSearchApiEnv(ToolEnv):
    env_name: ClassVar[str] = "debug_search_api"
    gym_id: ClassVar[str | None] = "toolgym/DebugSearchApi-v0"
    description: ClassVar[str] = "Debug 500s from search-sdk: plan + code, pinned to v3.2.1."
    default_max_turns: ClassVar[int] = 8
    scenario_type: ClassVar[type[Scenario]] = DebugScenario
    tools: ClassVar[Sequence[Tool]] = (*SEARCH_TOOLS, *REPO_TOOLS)
    rewards: ClassVar[Mapping[str, RewardFn]] = DEBUG_REWARDS
    default_weights: ClassVar[Mapping[str, float]] = DEBUG_WEIGHTS
    success_components: ClassVar[Sequence[str]] = REQUIRED
    splits: ClassVar[Sequence[str]] = SPLITS
    slices: ClassVar[Sequence[str]] = SLICES
    policies: ClassVar[Mapping[str, str]] = {
        name: f"policies.scripted.debug_search_api:{cls}" for name, cls in POLICY_CLASSES
    }
    expert: ClassVar[str | None] = "expert"
    failure_modes: ClassVar[Sequence[str]] = ("fluent_wrong", "stale_version", "broken_code")
    adversaries: ClassVar[Sequence[str]] = ("keyword_stuffer", "sandbox_attack")
    promotion_rules: ClassVar[str | None] = "promotion:debug_search_api.rules"
    headline_metrics: ClassVar[Sequence[str]] = (
        "success@1",
        "api_version_match_rate[version=3.2.1]",
    )
    data_files: ClassVar[Sequence[str]] = ("scenarios:data/debug_search_api",)

    def __init__(
        self,
        split: str = "train",
        *,
        sandbox_backend: str = "subprocess",
        code_sandbox: CodeSandbox | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(split, **kwargs)
        self.code_sandbox = code_sandbox or make_sandbox(sandbox_backend, Limits(wall_seconds=20))

    @classmethod
    def load_split(cls, split: str) -> list[Scenario]:
        return list(load_split(split))

    def build_sandbox(self, scenario: Scenario, rng: np.random.Generator) -> Sandbox:
        assert isinstance(scenario, DebugScenario)
        return DebugSandbox(
            repo=load_repo(scenario.repo),
            test_module=scenario.test_module,
            code_sandbox=self.code_sandbox,
            search_index=load_index(scenario.corpus),
            now=scenario.now,
            faults=scenario.faults,
            rng=rng,
        )

    def opening_messages(self, scenario: Scenario) -> list[Message]:
        assert isinstance(scenario, DebugScenario)
        return [
            Message(role="system", content=SYSTEM_PROMPT),
            Message(role="user", content=scenario.opening),
        ]

    def user_reply(self, parsed: ParsedAction) -> str | None:
        """The reply is final: test the proposed code once, as the end state to score."""
        scenario, sandbox = self.scenario, self.sandbox
        assert isinstance(scenario, DebugScenario) and isinstance(sandbox, RepoSandbox)
        code = code_checks.proposed_code(parsed.content)
        if code is None:
            sandbox.record(code_checks.FINAL_VERIFICATION, passed=False, reason="no python block")
            return None
        outcome = verify(sandbox, scenario.target_file, code, scenario.test_module)
        if outcome.infra_error is not None:  # ours, after retries: end unscored
            raise InfrastructureError(f"code sandbox: {outcome.infra_error}")
        sandbox.record(code_checks.FINAL_VERIFICATION, **outcome.as_event())
        return None

    def finish(self, trajectory: Trajectory, scenario: Scenario, sandbox: Sandbox) -> None:
        assert isinstance(scenario, DebugScenario) and isinstance(sandbox, RepoSandbox)
        components = trajectory.reward_components
        trajectory.checks = {
            "relevance": components["relevance"] >= 0.5,  # the seed's "Reward model: Pass"
            "unit_tests": components["unit_tests"] == 1.0,
            f"api_version:{scenario.required_version}": components["version_reference"] == 1.0,
            "deprecation": components["deprecation"] == 1.0,
            "up_to_date": components["up_to_date"] == 1.0,
            "format": all(call.valid for call in trajectory.tool_calls),
        }
        trajectory.violations = code_checks.rule_violations(trajectory, scenario)
        trajectory.checks["rules"] = not trajectory.violations
