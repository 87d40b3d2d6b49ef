"""calculator_handoff: the seed's apples transcript, failure modes, every role as learner."""

from __future__ import annotations

import json
from typing import Any

import pytest

import envs
from tests.conftest import play_case
from tests.test_stale_report_values import play_case_by_hand

ENV = "calculator_handoff"


def scenario(name: str) -> Any:
    return next(s for s in envs.make_raw(ENV, split="cases").scenarios if s.id == name)


def play(name: str, policy: str = "expert", **kwargs: Any) -> Any:
    return play_case(ENV, name, policy, **kwargs)


def test_the_seed_apples_transcript() -> None:
    trajectory = play("seed_apples")
    views = trajectory.info["views"]
    assert views["equation"][1]["content"] == (
        "[from coordinator] Alice has 3 apples and buys 2 more. How many now?"
    )
    hops = [(h["from"], h["to"], h["message"]) for h in trajectory.info["handoffs"]]
    assert hops == [
        ("coordinator", "equation", "Alice has 3 apples and buys 2 more. How many now?"),
        ("equation", "calculator", "Start with 3. Buys 2 ⇒ 3 + 2"),
        ("calculator", "coordinator", "3 + 2 = 5"),
    ]
    calls = [(c.agent, c.name, c.result) for c in trajectory.tool_calls if c.name == "calculator"]
    assert calls == [("calculator", "calculator", "5")]
    assert (
        trajectory.messages[-2].content == "[from calculator] 3 + 2 = 5"
    )  # the coordinator's view
    assert trajectory.final_answer == "<answer>5</answer>"
    assert trajectory.messages[-1].content == (
        "<think>Agent A turns the word problem into an equation, hands off to Agent B who can "
        "use a calculator.</think>\n<answer>5</answer>"
    )  # the seed's target output, verbatim
    assert trajectory.reward == 2.0 and trajectory.success


# 8 + 2 - 5 = 5 without asking anyone: the right number, but nothing was handed over.
WRONG = {"handoff_info": -1.0, "role_execution": 0.0, "wrong_final_response": 1.0}
FAILURES = {
    "mental_math": (-1.0, {**WRONG, "wrong_final_response": 0.0}),
    "ignores_report": (-2.0, WRONG),
    "untagged": (-2.0, WRONG),
}


@pytest.mark.parametrize("policy", sorted(FAILURES))
def test_coordinator_failure_modes(policy: str) -> None:
    total, components = FAILURES[policy]
    trajectory = play("seed_carly_apples", policy)
    assert trajectory.reward_components == {**components, "wasted_calls": 0.0}
    assert trajectory.reward == total


@pytest.mark.parametrize("role", ["coordinator", "equation", "calculator"])
def test_every_role_can_be_the_learner(role: str) -> None:
    trajectory = play("seed_carly_apples", role=role)
    assert trajectory.info["learner"] == role
    assert trajectory.messages[0].content.count(f"Your role: {role}.") == 1
    assert {m.name for m in trajectory.messages if m.role == "assistant"} == {role}
    assert trajectory.reward == 2.0


def test_a_wrong_equation_learner_fails_its_role_and_the_team() -> None:
    trajectory = play("seed_carly_apples", "wrong_equation", role="equation")
    equation = next(h for h in trajectory.info["handoffs"] if h["from"] == "equation")
    assert equation["message"] == "Add them up ⇒ 8 + 2 + 5"
    assert trajectory.final_answer.endswith("<answer>15</answer>")
    assert trajectory.reward_components == {
        "handoff_info": -1.0, "role_execution": 0.0, "wrong_final_response": 1.0,
        "wasted_calls": 0.0,
    }  # fmt: skip


def test_a_calculator_that_skips_the_tool_fails_its_role() -> None:
    trajectory = play("seed_carly_apples", "no_calculator", role="calculator")
    assert not any(c.name == "calculator" for c in trajectory.tool_calls)
    assert trajectory.reward_components["role_execution"] == 0.0


def handoff_to(to: str, message: str) -> str:
    call = {"name": "handoff", "arguments": {"to": to, "message": message}}
    return f"<tool_call>{json.dumps(call, ensure_ascii=False)}</tool_call>"


def test_an_equation_learner_that_hands_over_the_answer_is_no_equation() -> None:
    """ "8 apples, buys 2, sells 5": handing the calculator "⇒ 5" (the answer worked out in
    the head) scored 2.0 and success, as the expert's "⇒ 8 + 2 - 5". No equation went
    through the hop: handoff_info −1, role_execution 0; the partners still answer 5
    (wrong_final_response 0), so the total is −1."""
    env = envs.make_raw(ENV, split="cases", role="equation")
    ask = handoff_to("calculator", "Work it out ⇒ 5")
    trajectory = play_case_by_hand(env, "seed_carly_apples", [ask])
    assert trajectory.final_answer.endswith("<answer>5</answer>")
    assert trajectory.reward_components == {
        "handoff_info": -1.0, "role_execution": 0.0, "wrong_final_response": 0.0,
        "wasted_calls": 0.0,
    }  # fmt: skip
    assert trajectory.reward == -1.0 and not trajectory.success


def test_a_calculator_learner_that_echoes_a_known_answer_fails_its_role() -> None:
    """Calling calculator("5") and reporting "8 + 2 - 5 = 5" scored 2.0: the reported value
    was a calculator result. The tool must compute from the question's numbers: role 0,
    the team's information still right (handoff_info 1), total 1.0."""
    env = envs.make_raw(ENV, split="cases", role="calculator")
    echo = '<tool_call>{"name": "calculator", "arguments": {"expression": "5"}}</tool_call>'
    report = handoff_to("coordinator", "8 + 2 - 5 = 5")
    trajectory = play_case_by_hand(env, "seed_carly_apples", [echo, report])
    assert trajectory.reward_components["role_execution"] == 0.0
    assert trajectory.reward_components["handoff_info"] == 1.0
    assert trajectory.reward == 1.0 and not trajectory.success


def calculator_call(expression: str) -> str:
    call = {"name": "calculator", "arguments": {"expression": expression}}
    return f"<tool_call>{json.dumps(call)}</tool_call>"


def test_an_equation_of_the_questions_numbers_in_another_form_is_an_equation() -> None:
    """ "⇒ 8.0 + 2 - 5" is the problem's equation (8.0 is 8): its operands were compared as
    text, so it scored −1 as "⇒ 5" did. Now the expert's 2.0: handoff_info 1, role 1."""
    env = envs.make_raw(ENV, split="cases", role="equation")
    ask = handoff_to("calculator", "Start with 8. Buys 2, sells 5 ⇒ 8.0 + 2 - 5")
    trajectory = play_case_by_hand(env, "seed_carly_apples", [ask])
    assert trajectory.reward_components == {
        "handoff_info": 1.0, "role_execution": 1.0, "wrong_final_response": 0.0,
        "wasted_calls": 0.0,
    }  # fmt: skip
    assert trajectory.reward == 2.0 and trajectory.success


@pytest.mark.parametrize("one_turn", [False, True])
def test_a_calculator_learner_that_computes_in_steps_does_its_role(one_turn: bool) -> None:
    """calculator("8 + 2") = 10, then calculator("10 - 5") = 5, reporting "8 + 2 - 5 = 5":
    the second step's 10 is no number of the question, so role_execution was 0 (total
    1.0). It is the first step's result: role 1, total 2.0 and success."""
    env = envs.make_raw(ENV, split="cases", role="calculator")
    first, second = calculator_call("8 + 2"), calculator_call("10 - 5")
    steps = [first + second] if one_turn else [first, second]
    report = handoff_to("coordinator", "8 + 2 - 5 = 5")
    trajectory = play_case_by_hand(env, "seed_carly_apples", [*steps, report])
    assert trajectory.reward_components["role_execution"] == 1.0
    assert trajectory.reward == 2.0 and trajectory.success
