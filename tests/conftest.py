"""Shared fixtures: a hand-built refund scenario that does not depend on the data files."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest

from scenarios.refund import RefundScenario


def lost_order_scenario(**overrides: object) -> RefundScenario:
    data: dict = {
        "id": "test-lost-order",
        "slices": ["refund_happy"],
        "now": datetime(2026, 3, 10, 9),
        "session_id": 90412,
        "opening": "My order #1001 is late. Tracking says it's lost. Help!",
        "db": {
            "customers": {42: {"name": "Alice Smith"}},
            "sessions": {90412: 42},
            "orders": {
                1001: {
                    "customer_id": 42,
                    "item": "blue kettle",
                    "amount": 39.99,
                    "status": "lost",
                    "shipped_on": date(2026, 2, 25),
                },
            },
        },
        "customer_sim": {"order_id": 1001},
        "expected": {"refunded_orders": [1001], "escalate": False},
    }
    data.update(overrides)
    return RefundScenario.model_validate(data)


@pytest.fixture
def lost_order() -> RefundScenario:
    return lost_order_scenario()


def play_case(env_name: str, case_id: str, policy: str = "expert", **env_kwargs: Any) -> Any:
    """One episode of a hand-written case (`split="cases"`) by the env's named policy."""
    import envs
    from envs.rollout import run_episode
    from policies.registry import make_policy

    env = envs.make_raw(env_name, split="cases", **env_kwargs)
    case = next(s for s in env.scenarios if s.id == case_id)
    return run_episode(env, make_policy(policy, env_name), scenario=case, seed=0)
