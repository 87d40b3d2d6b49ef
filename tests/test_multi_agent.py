"""The multi-agent env model (envs/multi_agent.py): handoff routing, partners, limits, and
the PettingZoo AEC wrapper (PettingZoo's own api_test)."""

from __future__ import annotations

from typing import Any

import gymnasium
import pytest
from gymnasium.utils.env_checker import check_env

import envs
from core.records import Termination
from envs.rollout import run_episode
from policies.base import ScriptedPolicy, tool_call_text
from policies.registry import make_policy

ENV = "calculator_handoff"


def apples(env: Any) -> Any:
    return next(s for s in env.scenarios if s.id == "seed_apples")


def handoff(to: str, message: str) -> str:
    return tool_call_text("handoff", {"to": to, "message": message})


def test_a_handoff_to_a_role_not_allowed_is_an_error_observation() -> None:
    env = envs.make_raw(ENV, split="cases")
    env.begin(apples(env), seed=0)
    result = env.advance(handoff("boss", "3 + 2"))
    assert not result.done
    assert result.new_messages[0]["content"] == (
        "ERROR: Invalid value: cannot hand off to 'boss'; you may hand off to: equation, calculator"
    )
    assert result.tool_calls[0].valid is False


def test_calls_after_a_handoff_in_the_same_turn_are_not_run() -> None:
    env = envs.make_raw(ENV, split="cases")
    env.begin(apples(env), seed=0)
    result = env.advance(handoff("equation", "Alice has 3 apples and buys 2 more.") * 2)
    assert [c.error for c in result.tool_calls] == [
        None, "ERROR: Not run: this turn already handed off control",
    ]  # fmt: skip
    assert result.new_messages[-1]["content"] == "[from calculator] 3 + 2 = 5"


def test_a_plain_reply_of_a_sub_agent_reports_to_whoever_asked_it() -> None:
    env = envs.make_raw(ENV, split="cases", role="equation")
    start = env.begin(apples(env), seed=0)
    assert start.messages[-1]["content"].startswith("[from coordinator] Alice has 3 apples")
    result = env.advance("3 + 2")  # no handoff call: a report to the coordinator, who asked
    assert not result.done  # the coordinator wants "<expression> = <value>": it asks again
    assert [m["role"] for m in result.new_messages] == ["user"]
    assert result.new_messages[0]["content"].startswith("[from coordinator] Alice has 3 apples")
    last = env.advance(handoff("calculator", "Start with 3. Buys 2 ⇒ 3 + 2"))
    hops = [(h["from"], h["to"], h["kind"]) for h in last.trajectory.info["handoffs"]]
    assert hops == [
        ("coordinator", "equation", "request"),
        ("equation", "coordinator", "report"),
        ("coordinator", "equation", "request"),
        ("equation", "calculator", "request"),
        ("calculator", "coordinator", "reply"),  # a handoff call to a role that waits
    ]
    assert last.trajectory.reward == 2.0


class Raises(ScriptedPolicy):
    name = "raises"

    def decide(self, messages: list[dict[str, Any]]) -> str:
        raise RuntimeError("partner server down")


def test_a_partner_that_fails_ends_the_episode_as_infrastructure() -> None:
    env = envs.make_raw(ENV, split="cases", partners={"equation": Raises()})
    env.begin(apples(env), seed=0)
    result = env.advance(handoff("equation", "Alice has 3 apples and buys 2 more."))
    assert result.done
    assert result.trajectory.termination == Termination.POLICY_ERROR
    assert "partner server down" in result.trajectory.info["policy_error"]
    assert result.trajectory.reward_components == {}  # not scored


class KeepsCalculating(ScriptedPolicy):
    name = "keeps_calculating"

    def decide(self, messages: list[dict[str, Any]]) -> str:
        return tool_call_text("calculator", {"expression": "1 + 1"})


def test_partners_that_never_hand_back_are_cut_at_the_partner_turn_limit() -> None:
    env = envs.make_raw(
        ENV, split="cases", partners={"calculator": KeepsCalculating()}, partner_turn_limit=5
    )
    env.begin(apples(env), seed=0)
    result = env.advance(handoff("equation", "Alice has 3 apples and buys 2 more."))
    assert result.truncated and not result.terminated
    assert result.trajectory.termination == Termination.TURN_LIMIT
    assert sum(c.agent == "calculator" for c in result.trajectory.tool_calls) == 4  # 5 - equation's


def test_self_play_partners_use_the_bound_policy() -> None:
    env = envs.make_raw(ENV, split="cases", partners={"equation": "self", "calculator": "self"})
    expert = make_policy("expert", ENV)
    env.bind_policy(expert)
    trajectory = run_episode(env, expert, scenario=apples(env), seed=0)
    assert trajectory.reward == 2.0
    fresh = envs.make_raw(ENV, split="cases", partners={"equation": "self"})
    played = run_episode(fresh, expert, scenario=apples(fresh), seed=0)  # the loop binds it
    assert played.reward == 2.0 and played.termination == Termination.FINAL_ANSWER
    unbound = envs.make_raw(ENV, split="cases", partners={"equation": "self"})
    unbound.begin(apples(unbound), seed=0)
    result = unbound.advance(handoff("equation", "Alice has 3 apples and buys 2 more."))
    assert "needs bind_policy" in result.trajectory.info["policy_error"]


@pytest.mark.parametrize("name", ["refund_handoff", "calculator_handoff"])
def test_gymnasium_make_by_id_takes_the_role(name: str) -> None:
    env = gymnasium.make(
        envs.card(name).gym_id, split="eval", role=envs.make_raw(name).roles[1].name
    )
    check_env(env.unwrapped, skip_render_check=True)
    observation, info = env.reset(seed=3)
    assert info["scenario_id"] and observation[0]["role"] == "system"


@pytest.mark.parametrize("name", ["refund_handoff", "calculator_handoff"])
def test_pettingzoo_api_test_passes(name: str) -> None:
    pytest.importorskip("pettingzoo")
    from pettingzoo.test import api_test

    from envs.pettingzoo_aec import aec_env

    with pytest.warns(UserWarning):  # PettingZoo advises array observations; ours are chats
        api_test(aec_env(name, split="eval"), num_cycles=100)


def test_pettingzoo_agents_play_every_role_and_each_is_scored_on_its_own_job() -> None:
    pytest.importorskip("pettingzoo")
    from envs.pettingzoo_aec import aec_env

    env = aec_env("refund_handoff", split="cases")
    expert = make_policy("expert", "refund_handoff")
    env.reset(options={"scenario_id": "seed_refund_123"})
    order, final = [], {}
    for agent in env.agent_iter():
        observation, reward, termination, truncation, _ = env.last()
        if termination or truncation:
            final[agent] = reward
            env.step(None)
            continue
        order.append(agent)
        env.step(expert.decide(list(observation)))
    assert order == ["acting", "lookup", "lookup", "lookup", "acting", "acting"]
    assert final == {"acting": 2.0, "lookup": 2.0} and env.agents == []
