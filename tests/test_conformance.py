"""Conformance: every registered env (built-in, and a plugin package's) keeps the env contract.

For each env: Gymnasium's `check_env` passes; its card is consistent (expert and failure
modes resolve to policies, success components are reward components, every scenario's
slices are declared, train and eval never share a scenario, its promotion rules parse);
the declared expert reaches the maximum total on every eval scenario played (the maximum
is the contract's: each component peaks at 1.0, so it is the sum of the positive default
weights), doing nothing scores in the minimum band and never succeeds; the same seed gives
the same trajectory bytes; every tool schema is a self-contained OpenAI function.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from gymnasium.utils.env_checker import check_env

import envs
from envs.card import resource
from envs.registry import EnvRegistry
from envs.rollout import EpisodeJob, rollout
from evals.rules import load_rules
from policies.base import ScriptedPolicy
from policies.registry import PolicyRegistry

PLUGIN_SRC = Path(__file__).resolve().parent / "plugin_pkg"
PLAYED = 12  # eval scenarios per env (spread over the split) for the expert/do-nothing checks
NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


@pytest.fixture(scope="module")
def registry() -> EnvRegistry:
    """The default registry's envs plus the example plugin package's env."""
    sys.path.insert(0, str(PLUGIN_SRC))
    local = EnvRegistry(group="toolgym.none")
    for name in envs.ENVS.names():
        entry = envs.ENVS.entry(name)
        local.register(name, entry.entry_point, gym_id=entry.gym_id)
    local.register("letter_count", "letter_count_env.env:LetterCountEnv", gym_id=None)
    return local


ENV_NAMES = [*envs.ENVS.names(), "letter_count"]


def _policy(registry: EnvRegistry, env: str, name: str) -> Any:
    from envs.card import import_object

    return import_object(registry.card(env).policies[name])()


class DoNothing(ScriptedPolicy):
    name = "do_nothing"

    def decide(self, messages: list[dict[str, Any]]) -> str:
        return "Sorry, I can't help with that."


def _play(registry: EnvRegistry, env: str, policy: Any, split: str = "eval") -> list:
    built = registry.make_raw(env, split=split)
    scenarios = built.scenarios[:: max(1, len(built.scenarios) // PLAYED)][:PLAYED]
    jobs = [EpisodeJob(s, seed=i) for i, s in enumerate(scenarios)]
    return list(rollout(lambda: registry.make_raw(env, split=split), policy, jobs))


@pytest.mark.parametrize("env", ENV_NAMES)
def test_gymnasium_check_env_passes(registry: EnvRegistry, env: str) -> None:
    check_env(registry.make_raw(env, split="eval"), skip_render_check=True)


@pytest.mark.parametrize("env", ENV_NAMES)
def test_card_is_consistent(registry: EnvRegistry, env: str) -> None:
    card = registry.card(env)
    assert card.expert is not None and card.expert in card.policies
    assert set(card.failure_modes) <= set(card.policies)
    assert card.success_components and set(card.success_components) <= set(card.reward_components)
    assert set(card.default_weights) <= set(card.reward_components)
    assert card.promotion_rules is not None
    assert load_rules(Path(str(resource(card.promotion_rules)))).statements
    train = registry.make_raw(env, split=card.train_split).scenarios
    frozen = registry.make_raw(env, split=card.eval_split).scenarios
    assert not {s.content_hash for s in train} & {s.content_hash for s in frozen}
    undeclared = {n for s in [*train, *frozen] for n in s.slices} - set(card.slices)
    assert not undeclared, f"slices not declared by {env}: {sorted(undeclared)}"


@pytest.mark.parametrize("env", ENV_NAMES)
def test_expert_reaches_the_declared_maximum(registry: EnvRegistry, env: str) -> None:
    card = registry.card(env)
    maximum = sum(w for w in card.default_weights.values() if w > 0)
    played = _play(registry, env, _policy(registry, env, card.expert))
    short = [(t.scenario_id, t.reward, t.reward_components) for t in played if not t.success]
    short += [(t.scenario_id, t.reward, None) for t in played if t.reward < maximum - 1e-9]
    assert not short, f"{env}: the expert misses the maximum {maximum}: {short[:3]}"


@pytest.mark.parametrize("env", ENV_NAMES)
def test_doing_nothing_scores_in_the_minimum_band(registry: EnvRegistry, env: str) -> None:
    card = registry.card(env)
    maximum = sum(w for w in card.default_weights.values() if w > 0)
    played = _play(registry, env, DoNothing())
    assert not any(t.success for t in played)
    assert max(t.reward for t in played) <= maximum / 2, [t.reward for t in played]


@pytest.mark.parametrize("env", ENV_NAMES)
def test_same_seed_same_trajectory_bytes(registry: EnvRegistry, env: str) -> None:
    card = registry.card(env)
    first = [t.to_json() for t in _play(registry, env, _policy(registry, env, card.expert))]
    again = [t.to_json() for t in _play(registry, env, _policy(registry, env, card.expert))]
    assert first == again


@pytest.mark.parametrize("env", ENV_NAMES)
def test_tool_schemas_are_self_contained_openai_functions(registry: EnvRegistry, env: str) -> None:
    built = registry.make_raw(env, split="eval")
    for schema in built.toolbox.schemas:
        assert schema["type"] == "function"
        function = schema["function"]
        assert NAME_PATTERN.match(function["name"])
        assert function["parameters"]["type"] == "object"
        text = json.dumps(schema)
        assert json.loads(text) == schema  # plain JSON, nothing lost
        refs = re.findall(r'"\$ref": "#/\$defs/([^"]+)"', text)
        defs = function["parameters"].get("$defs", {})
        assert all(ref in defs for ref in refs), f"{function['name']}: dangling $ref"


def test_policies_registered_in_process_resolve_and_unknown_names_list_the_known() -> None:
    policies = PolicyRegistry(group="toolgym.none")
    policies.register("global_one", DoNothing)
    assert type(policies.make("global_one")).__name__ == "DoNothing"
    with pytest.raises(KeyError, match="unknown policy 'nope'"):
        policies.resolve("nope", None)


def test_reward_weight_override_changes_only_that_weight() -> None:
    env = envs.make_raw("refund_agent", split="eval", reward_weights={"outcome": 3.0})
    assert env.rubric.weights == {
        "tool_execution": 1.0, "outcome": 3.0, "escalation": 1.0, "truthfulness": 1.0,
        "format": 0.5, "efficiency": 0.5, "progress": 1.0,
    }  # fmt: skip


def test_slow_marker_selects_the_end_to_end_tests() -> None:
    import subprocess

    listed = subprocess.run(
        [sys.executable, "-m", "pytest", "-o", "addopts=", "--collect-only", "-q", "-m",
         "slow", "-p", "no:cacheprovider", str(Path(__file__).parent)],
        capture_output=True, text=True, timeout=300,
    ).stdout  # fmt: skip
    for test in (
        "test_grpo.py::test_two_grpo_steps_end_to_end_then_resume",
        "test_sft.py::test_short_sft_end_to_end",
        "test_packaging.py::test_plugin_env_trains_with_its_own_demonstrations",
    ):
        assert test in listed
    assert "test_conformance.py" not in listed
