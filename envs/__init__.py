"""Gymnasium environments for multi-turn tool-using agents.

Importing this package registers the built-in envs (lazily: nothing heavy is imported):
`gymnasium.make("toolgym/RefundAgent-v0")` or `envs.make("refund_agent")`.
"""

from envs.registry import ENVS, EnvRegistry, make, make_raw, register_env

register_env("refund_agent", "envs.refund_agent:RefundAgentEnv", gym_id="toolgym/RefundAgent-v0")
register_env("math_tools", "envs.math_tools:MathToolsEnv", gym_id="toolgym/MathTools-v0")

__all__ = ["ENVS", "EnvRegistry", "make", "make_raw", "register_env"]
