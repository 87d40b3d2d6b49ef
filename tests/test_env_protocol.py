"""The episode protocol (begin/advance/abort) and the env's boundary with its callers.

What a driver relies on: `advance` returns only what is new, and the conversation a driver
rebuilds from it is the env's own; nothing a caller receives or passes in aliases the
env's state; bad construction and reset arguments are refused with a message naming the
value; a policy that fails ends only its own episode.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

import envs
from core.policy import PolicyRequest, PolicyResponse
from core.records import Termination
from envs.rollout import EpisodeJob, rollout
from tests.conftest import lost_order_scenario

GET_ID = '<tool_call>{"name": "get_customer_id", "arguments": {"session_id": 90412}}</tool_call>'
CHECK = '<tool_call>{"name": "check_refund", "arguments": {"customer_id": 42, "order_id": 1001}}</tool_call>'  # noqa: E501


def refund_env() -> Any:
    return envs.make_raw("refund_agent", scenarios=[lost_order_scenario()])


def test_advance_returns_only_the_new_messages_and_they_rebuild_the_conversation() -> None:
    env = refund_env()
    start = env.begin("test-lost-order", seed=3)
    assert [m["role"] for m in start.messages] == ["system", "user"]
    assert [t["function"]["name"] for t in start.tools][:2] == [
        "get_customer_id",
        "get_customer_name",
    ]
    conversation = list(start.messages)
    first = env.advance(GET_ID)
    assert first.turn == 1 and not first.done and first.trajectory is None
    assert first.assistant["role"] == "assistant"
    assert [m["role"] for m in first.new_messages] == ["tool"]
    assert first.new_messages[0]["content"] == '{"customer_id": 42}'
    conversation += [first.assistant, *first.new_messages]
    second = env.advance("Which order is it about?")  # the customer answers
    assert [m["role"] for m in second.new_messages] == ["user"]
    conversation += [second.assistant, *second.new_messages]
    observation, *_ = env.step(CHECK)
    assert observation[: len(conversation)] == conversation


def test_the_finished_trajectory_carries_the_reward_and_success_computed_once() -> None:
    env = refund_env()
    env.begin("test-lost-order", seed=0)
    result = env.advance("Sorry, I can't help with that.")
    assert result.terminated and result.trajectory is not None
    trajectory = result.trajectory
    assert result.reward == trajectory.reward
    weights = env.rubric.weights
    assert trajectory.reward == pytest.approx(
        sum(weights[k] * v for k, v in trajectory.reward_components.items())
    )
    assert trajectory.success is False and trajectory.termination == Termination.FINAL_ANSWER


def test_abort_records_an_infrastructure_cause_without_scoring() -> None:
    env = refund_env()
    env.begin("test-lost-order", seed=0)
    env.advance(GET_ID)
    trajectory = env.abort(Termination.POLICY_ERROR, "HTTP 503 from the model server")
    assert trajectory.termination == Termination.POLICY_ERROR
    assert trajectory.info["policy_error"] == "HTTP 503 from the model server"
    assert trajectory.reward_components == {}  # not scored: not the policy's behaviour


def test_tool_schemas_handed_out_are_copies() -> None:
    env, other = refund_env(), refund_env()
    _, info = env.reset(seed=0)
    info["tools"][0]["function"]["name"] = "hacked"
    info["tools"].clear()
    _, fresh = other.reset(seed=0)
    assert fresh["tools"][0]["function"]["name"] == "get_customer_id"
    assert env.toolbox.schemas[0]["function"]["name"] == "get_customer_id"
    assert env.trajectory.tools[0]["function"]["name"] == "get_customer_id"


def test_observations_do_not_share_nested_tool_calls_with_the_env() -> None:
    env = refund_env()
    env.reset(seed=0)
    action = {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {
                "id": "c1",
                "type": "function",
                "function": {"name": "get_customer_id", "arguments": '{"session_id": 90412}'},
            }
        ],
    }
    observation, *_ = env.step(action)
    observation[2]["tool_calls"][0]["function"]["name"] = "changed"
    action["tool_calls"][0]["function"]["arguments"] = '{"session_id": 1}'
    again, *_ = env.step("Which order?")
    assert again[2]["tool_calls"][0]["function"]["name"] == "get_customer_id"
    assert env.trajectory.tool_calls[0].arguments == {"session_id": 90412}


def test_an_action_over_max_length_is_cut_and_counted() -> None:
    env = refund_env()
    env.reset(seed=0)
    limit = env.action_space.max_length
    env.step("x" * (limit * 8))
    assert env.trajectory.messages[2].content == "x" * limit
    assert env.trajectory.info["oversized_turns"] == 1


def test_reset_with_a_scenario_id_string_plays_that_scenario() -> None:
    env = envs.make_raw("refund_agent", split="eval")
    wanted = env.scenarios[7]
    _, info = env.reset(seed=0, options={"scenario": wanted.id})
    assert info["scenario_id"] == wanted.id
    with pytest.raises(KeyError, match="no scenario with id 'nope'"):
        env.reset(seed=0, options={"scenario": "nope"})


def test_a_scenario_of_another_env_is_refused_naming_both_types() -> None:
    math = envs.make_raw("math_tools", split="eval").scenarios[0]
    with pytest.raises(TypeError, match="is a MathScenario, expected a RefundScenario"):
        envs.make_raw("refund_agent", scenarios=[math])
    env = refund_env()
    with pytest.raises(TypeError, match="expected a RefundScenario"):
        env.begin(math, seed=0)


@pytest.mark.parametrize("bad", [0, -3])
def test_max_turns_below_one_is_refused(bad: int) -> None:
    with pytest.raises(ValueError, match=f"max_turns must be >= 1, got {bad}"):
        envs.make_raw("refund_agent", split="eval", max_turns=bad)


class FailsOnOneScenario:
    """Answers like a quitter, but its server fails for one scenario's requests."""

    name = "flaky"

    def act(self, requests: Sequence[PolicyRequest]) -> list[PolicyResponse]:
        if any(r.scenario_id == "bad" for r in requests):
            raise ConnectionError("server reset")
        return [PolicyResponse(text="Sorry, I can't help.") for _ in requests]


def test_a_policy_failure_ends_only_its_own_episode_in_the_batch() -> None:
    good = [lost_order_scenario(id=f"ok-{i}") for i in range(3)]
    bad = lost_order_scenario(id="bad")
    jobs = [EpisodeJob(s, seed=i) for i, s in enumerate([good[0], bad, *good[1:]])]
    played = list(
        rollout(
            lambda: envs.make_raw("refund_agent", scenarios=[*good, bad]),
            FailsOnOneScenario(),
            jobs,
            batch_size=4,
        )
    )
    by_id = {t.scenario_id: t for t in played}
    assert by_id["bad"].termination == Termination.POLICY_ERROR
    assert "ConnectionError: server reset" in by_id["bad"].info["policy_error"]
    assert all(by_id[f"ok-{i}"].termination == Termination.FINAL_ANSWER for i in range(3))


def test_a_scenario_can_offer_a_subset_of_the_env_tools() -> None:
    narrow = lost_order_scenario(id="narrow", tools=["get_customer_id", "escalate_to_human"])
    env = envs.make_raw("refund_agent", scenarios=[narrow, lost_order_scenario()])
    start = env.begin("narrow", seed=0)
    assert [t["function"]["name"] for t in start.tools] == ["get_customer_id", "escalate_to_human"]
    result = env.advance(CHECK)  # a real refund tool, but not offered in this episode
    assert result.tool_calls[0].error_kind == "unknown_tool"
    offered = "Available tools: get_customer_id, escalate_to_human"
    assert offered in result.new_messages[0]["content"]
    assert len(env.begin("test-lost-order", seed=0).tools) == len(env.toolbox.tools)
    assert narrow.content_hash != lost_order_scenario(id="narrow").content_hash
    # scenarios that name no tool set hash as before the field existed
    assert lost_order_scenario().content_hash == lost_order_scenario(tools=None).content_hash


class CrashingSandboxEnv:
    """refund_agent whose `get_customer_id` service (ours) crashes on the first N episodes."""

    crashes_left = 0

    @classmethod
    def make(cls) -> Any:
        from core.records import InfrastructureError
        from tools.schema import tool

        @tool
        def get_customer_id(ctx: Any, session_id: int) -> dict[str, int]:
            """Look up the customer of a chat session.

            Args:
                session_id: the chat session id.
            """
            if cls.crashes_left > 0:
                cls.crashes_left -= 1
                raise InfrastructureError("sandbox worker died (exit 137)")
            return {"customer_id": ctx.db["sessions"][str(session_id)]}

        env = refund_env()
        tools = [
            get_customer_id,
            *(t for n, t in env.toolbox.tools.items() if n != "get_customer_id"),
        ]
        from tools.toolbox import Toolbox

        env.toolbox = env.episode_tools = Toolbox(tools)
        return env


class GetIdThenQuit:
    name = "get_id_then_quit"

    def act(self, requests: Sequence[PolicyRequest]) -> list[PolicyResponse]:
        return [
            PolicyResponse(text=GET_ID if len(r.messages) == 2 else "Sorry, I can't help.")
            for r in requests
        ]


def test_an_infrastructure_error_ends_the_episode_unscored() -> None:
    CrashingSandboxEnv.crashes_left = 1
    env = CrashingSandboxEnv.make()
    env.begin("test-lost-order", seed=0)
    result = env.advance(GET_ID)
    assert result.terminated and result.trajectory is not None
    trajectory = result.trajectory
    assert trajectory.termination == Termination.INFRA_ERROR
    assert trajectory.lost_to_infrastructure and trajectory.reward_components == {}
    assert "sandbox worker died" in trajectory.info["infra_error"]
    assert [c.name for c in result.tool_calls] == ["get_customer_id"]


def test_the_rollout_replays_an_episode_lost_to_infrastructure_within_its_budget() -> None:
    jobs = [EpisodeJob(lost_order_scenario(), seed=5)]
    CrashingSandboxEnv.crashes_left = 1
    (retried,) = rollout(CrashingSandboxEnv.make, GetIdThenQuit(), jobs, infra_retries=2)
    assert retried.termination == Termination.FINAL_ANSWER and retried.info["attempts"] == 2
    assert retried.reward_components  # the replayed episode is scored
    CrashingSandboxEnv.crashes_left = 5
    (given_up,) = rollout(CrashingSandboxEnv.make, GetIdThenQuit(), jobs, infra_retries=2)
    assert given_up.termination == Termination.INFRA_ERROR and given_up.info["attempts"] == 3


def test_a_scenario_with_an_undeclared_slice_is_refused_naming_it() -> None:
    odd = lost_order_scenario(id="odd", slices=["refund_happy", "refund_hapy"])
    with pytest.raises(ValueError, match="scenario 'odd' has slice 'refund_hapy'"):
        envs.make_raw("refund_agent", scenarios=[odd])
