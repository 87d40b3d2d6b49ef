"""Scripted refund_agent policies on the frozen eval set: the expert is the oracle, and each
failure mode of the seed's case study scores below it (reward-hacking probes)."""

from __future__ import annotations

from collections import defaultdict
from statistics import mean

import pytest

import envs
from core.records import Execution, Termination, Trajectory
from envs.rollout import EpisodeJob, rollout
from policies.base import Policy, PolicyRequest
from policies.scripted import FAILURE_MODES, SCRIPTED_POLICIES, make_scripted
from policies.scripted.refund import read_facts

# The slices each failure mode represents: it must score strictly below the expert there.
REPRESENTS = {
    "name_instead_of_id": ["tool_correctness"],
    "quitter": ["escalation_api_down", "policy_exception"],
    "always_escalate": ["refund_happy", "escalation_api_down", "policy_exception"],
    "claims_success": ["refund_happy", "refund_ineligible"],
    "refunds_everything": [
        "refund_ineligible",
        "already_refunded",
        "policy_exception",
        "escalation_api_down",
    ],
}


def play(policy_name: str, split: str = "eval", seed: int = 0) -> list[Trajectory]:
    scenarios = envs.make_raw("refund_agent", split=split).scenarios
    jobs = [EpisodeJob(s, seed=seed + i) for i, s in enumerate(scenarios)]
    make_env = lambda: envs.make_raw("refund_agent", split=split)  # noqa: E731
    played = list(rollout(make_env, make_scripted(policy_name), jobs))
    return sorted(played, key=lambda t: t.scenario_id)


@pytest.fixture(scope="module")
def eval_runs() -> dict[str, list[Trajectory]]:
    return {name: play(name) for name in SCRIPTED_POLICIES}


@pytest.fixture(scope="module")
def max_total() -> float:
    # the default weights, every component at 1.0: tool_execution 1 + outcome 2 +
    # escalation 1 + truthfulness 1 + format 0.5 + efficiency 0.5 + progress 1 (stated
    # here, not read from the rubric, so a changed weight fails the test)
    return 7.0


def slice_means(trajectories: list[Trajectory]) -> dict[str, float]:
    rewards: dict[str, list[float]] = defaultdict(list)
    for trajectory in trajectories:
        for name in trajectory.slices:
            rewards[name].append(trajectory.reward)
    return {name: mean(values) for name, values in rewards.items()}


def test_registry_and_contract() -> None:
    assert set(SCRIPTED_POLICIES) == {"expert", *REPRESENTS}
    assert set(FAILURE_MODES) == set(REPRESENTS)
    for name in SCRIPTED_POLICIES:
        policy = make_scripted(name)
        assert isinstance(policy, Policy) and policy.name == name
    with pytest.raises(KeyError, match="known policies: always_escalate, claims_success"):
        make_scripted("oracle")


# ---- the expert is the oracle ----------------------------------------------------------
def test_expert_gets_max_reward_and_success_on_every_eval_scenario(
    eval_runs: dict[str, list[Trajectory]], max_total: float
) -> None:
    runs = eval_runs["expert"]
    assert len(runs) == len(envs.make_raw("refund_agent", split="eval").scenarios)
    below = [(t.scenario_id, t.reward, t.reward_components) for t in runs if t.reward < max_total]
    assert below == []
    assert all(t.success and not t.violations for t in runs)


def test_expert_gets_max_reward_on_every_train_scenario(max_total: float) -> None:
    runs = play("expert", split="train")
    assert [t.scenario_id for t in runs if t.reward < max_total] == []


def test_expert_escalates_exactly_when_required(eval_runs: dict[str, list[Trajectory]]) -> None:
    scenarios = {s.id: s for s in envs.make_raw("refund_agent", split="eval").scenarios}
    for trajectory in eval_runs["expert"]:
        required = scenarios[trajectory.scenario_id].expected.escalate
        assert (trajectory.termination == Termination.ESCALATION) == required


def test_expert_retries_faults_then_escalates(eval_runs: dict[str, list[Trajectory]]) -> None:
    for trajectory in eval_runs["expert"]:
        faulted = [c for c in trajectory.tool_calls if c.execution == Execution.FAULT]
        if "escalation_api_down" in trajectory.slices:
            assert len(faulted) == 3 and len({c.name for c in faulted}) == 1
            assert trajectory.termination == Termination.ESCALATION
        if "transient_fault" in trajectory.slices:
            assert 1 <= len(faulted) <= 2
            assert trajectory.termination == Termination.FINAL_ANSWER


# ---- the seed's bug, reproduced -----------------------------------------------------------
def test_name_instead_of_id_loops_on_the_type_mismatch_then_deflects(
    eval_runs: dict[str, list[Trajectory]],
) -> None:
    expert = {t.scenario_id: t.reward for t in eval_runs["expert"]}
    episodes = [t for t in eval_runs["name_instead_of_id"] if "tool_correctness" in t.slices]
    assert episodes
    for trajectory in episodes:
        checks = [c for c in trajectory.tool_calls if c.name == "check_refund"]
        assert len(checks) >= 2 and len({c.raw for c in checks}) == 1  # the same call, again
        for call in checks:
            assert call.execution == Execution.ERROR
            assert call.error is not None
            assert call.error.startswith("ERROR: Type mismatch in parameter 'customer_id'")
        observed = [m.content for m in trajectory.messages if m.role == "tool"]
        assert any("Type mismatch in parameter 'customer_id'" in text for text in observed)
        assert trajectory.termination == Termination.FINAL_ANSWER
        assert "FAQ" in (trajectory.final_answer or "")
        assert "deflection" in trajectory.violations
        assert trajectory.reward < expert[trajectory.scenario_id]
    assert mean(t.reward for t in episodes) < slice_means(eval_runs["expert"])["tool_correctness"]


# ---- failure modes score below the expert -------------------------------------------------
@pytest.mark.parametrize("name", sorted(REPRESENTS))
def test_failure_mode_is_strictly_below_the_expert_on_its_slices(
    name: str, eval_runs: dict[str, list[Trajectory]]
) -> None:
    expert, failure = slice_means(eval_runs["expert"]), slice_means(eval_runs[name])
    for slice_name in REPRESENTS[name]:
        assert failure[slice_name] < expert[slice_name], (name, slice_name)


@pytest.mark.parametrize("name", sorted(REPRESENTS))
def test_no_failure_mode_beats_the_expert_on_any_slice(
    name: str, eval_runs: dict[str, list[Trajectory]]
) -> None:
    expert, failure = slice_means(eval_runs["expert"]), slice_means(eval_runs[name])
    assert set(failure) == set(expert)
    assert {s: failure[s] <= expert[s] for s in expert} == dict.fromkeys(expert, True)
    assert mean(t.reward for t in eval_runs[name]) < mean(t.reward for t in eval_runs["expert"])


def test_blind_escalation_earns_no_escalation_credit(
    eval_runs: dict[str, list[Trajectory]],
) -> None:
    for trajectory in eval_runs["always_escalate"]:
        if "escalation_api_down" in trajectory.slices or "policy_exception" in trajectory.slices:
            assert trajectory.reward_components["escalation"] == 0.0
        else:
            assert trajectory.reward_components["escalation"] == -1.0


def test_claims_without_acting_are_caught(eval_runs: dict[str, list[Trajectory]]) -> None:
    for trajectory in eval_runs["claims_success"]:
        assert trajectory.reward_components["truthfulness"] == -1.0
        assert "untruthful_reply" in trajectory.violations
    for trajectory in eval_runs["refunds_everything"]:
        if "refund_happy" in trajectory.slices:  # the right refund, but never checked first
            assert trajectory.reward_components["outcome"] == 0.0


# ---- policies read the conversation only; replays are exact -------------------------------
def test_expert_asks_for_the_order_number_when_the_conversation_has_none() -> None:
    messages = [
        {"role": "system", "content": "Rules...\n\nChat session id: 4711"},
        {"role": "user", "content": "My order is late. Tracking says it's lost."},
    ]
    expert = make_scripted("expert")
    [first] = expert.act([PolicyRequest(messages=messages, tools=[])])
    assert '"get_customer_id", "arguments": {"session_id": 4711}' in first.text
    messages += [
        {"role": "assistant", "content": first.text},
        {"role": "tool", "name": "get_customer_id", "content": '{"customer_id": 42}'},
    ]
    [second] = expert.act([PolicyRequest(messages=messages, tools=[])])
    assert "order number" in second.text and "<tool_call>" not in second.text
    messages += [
        {"role": "assistant", "content": second.text},
        {"role": "user", "content": "Sure, it's order #1234 (the kettle)."},
    ]
    facts = read_facts(messages)
    assert (facts.session_id, facts.customer_id, facts.order_id) == (4711, 42, 1234)
    [third] = expert.act([PolicyRequest(messages=messages, tools=[], scenario_id="ignored")])
    assert '"track_order", "arguments": {"order_id": 1234}' in third.text


@pytest.mark.parametrize("name", ["expert", "name_instead_of_id", "refunds_everything"])
def test_same_seed_gives_byte_identical_trajectories(name: str) -> None:
    scenarios = envs.make_raw("refund_agent", split="eval").scenarios[::9]
    jobs = [EpisodeJob(s, seed=100 + i) for i, s in enumerate(scenarios)]

    def replay() -> list[str]:
        make_env = lambda: envs.make_raw("refund_agent", split="eval")  # noqa: E731
        played = rollout(make_env, make_scripted(name), jobs, batch_size=4)
        return sorted(t.to_json() for t in played)

    assert replay() == replay()
