"""toolgym: the public import surface for env authors and library users.

    import toolgym

    class MyEnv(toolgym.ToolEnv):
        env_name = "my_env"
        tools = (my_tool,)
        ...

Everything an env package needs is importable from here (see docs/writing-an-env.md); the
layers behind it (`core`, `tools`, `rewards`, `scenarios`, `envs`, `policies`) stay where
they are for those who want one part. Importing this module is light: no torch, TRL or
verl.
"""

from core.episode import EpisodeEnv, EpisodeStart, StepResult
from core.policy import Policy, PolicyRequest, PolicyResponse
from core.records import (
    ErrorKind,
    Execution,
    Fault,
    InfrastructureError,
    Message,
    Termination,
    ToolCallRecord,
    Trajectory,
)
from envs import ENVS, EnvCard, ToolEnv, card, make, make_raw, register_env
from envs.base import UserSimulator
from envs.rollout import EpisodeJob, rollout, run_episode
from policies.base import ScriptedPolicy, reply_text, tool_call_text
from policies.registry import POLICIES, make_policy, register_policy
from rewards.spec import RewardFn, RewardSpec, Rubric
from rewards.tags import tagged_answer
from rewards.tool_use import tool_execution, tool_format
from scenarios.loader import ScenarioFileError, load_scenarios
from scenarios.schema import Scenario
from tools.calls import parse_action
from tools.sandbox import Sandbox
from tools.schema import Tool, tool, tool_from_json_schema
from tools.toolbox import Toolbox, ToolInputError, ToolResult

__all__ = [
    "ENVS",
    "POLICIES",
    "EnvCard",
    "EpisodeEnv",
    "EpisodeJob",
    "EpisodeStart",
    "ErrorKind",
    "Execution",
    "Fault",
    "InfrastructureError",
    "Message",
    "Policy",
    "PolicyRequest",
    "PolicyResponse",
    "RewardFn",
    "RewardSpec",
    "Rubric",
    "Sandbox",
    "Scenario",
    "ScenarioFileError",
    "ScriptedPolicy",
    "StepResult",
    "Termination",
    "Tool",
    "ToolCallRecord",
    "ToolEnv",
    "ToolInputError",
    "ToolResult",
    "Toolbox",
    "Trajectory",
    "UserSimulator",
    "card",
    "load_scenarios",
    "make",
    "make_policy",
    "make_raw",
    "parse_action",
    "register_env",
    "register_policy",
    "reply_text",
    "rollout",
    "run_episode",
    "tagged_answer",
    "tool",
    "tool_call_text",
    "tool_execution",
    "tool_format",
    "tool_from_json_schema",
]
