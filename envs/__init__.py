"""Gymnasium environments for multi-turn tool-using agents.

Importing this package registers the built-in envs and announces every plugin env of the
`toolgym.envs` entry-point group to Gymnasium (lazily: nothing heavy is imported):
`gymnasium.make("toolgym/RefundAgent-v0")`, `envs.make("refund_agent")`, and
`envs.card("refund_agent")` for what an env declares.
"""

from envs.base import ToolEnv
from envs.card import EnvCard
from envs.registry import ENVS, EnvRegistry, card, make, make_raw, register_env

register_env("refund_agent", "envs.refund_agent:RefundAgentEnv", gym_id="toolgym/RefundAgent-v0")
register_env("math_tools", "envs.math_tools:MathToolsEnv", gym_id="toolgym/MathTools-v0")
register_env(
    "refund_handoff", "envs.refund_handoff:RefundHandoffEnv", gym_id="toolgym/RefundHandoff-v0"
)
register_env(
    "calculator_handoff",
    "envs.calculator_handoff:CalculatorHandoffEnv",
    gym_id="toolgym/CalculatorHandoff-v0",
)
register_env(
    "debug_search_api",
    "envs.debug_search_api:DebugSearchApiEnv",
    gym_id="toolgym/DebugSearchApi-v0",
)
register_env("stale_report", "envs.stale_report:StaleReportEnv", gym_id="toolgym/StaleReport-v0")
ENVS.announce_entry_points()

__all__ = [
    "ENVS",
    "EnvCard",
    "EnvRegistry",
    "ToolEnv",
    "card",
    "make",
    "make_raw",
    "register_env",
]
