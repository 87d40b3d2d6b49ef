"""Conformance: every registered env (built-in, and a plugin package's) keeps the env contract.

The checks are `envs.check`'s (shipped in the wheel as `python -m envs.check env=NAME`), run
here over every env: Gymnasium's `check_env`; a consistent card; the expert at the maximum
total (the contract's: each component peaks at 1.0, so the sum of the positive default
weights); doing nothing in the minimum band; same seed, same bytes; self-contained tool
schemas. Below them, tests that each check fails on an env that breaks it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, ClassVar

import pytest

import envs
from envs.check import CHECKS, DoNothing, main, run_check
from envs.math_tools import MathToolsEnv
from envs.registry import EnvRegistry
from policies.registry import PolicyRegistry

PLUGIN_SRC = Path(__file__).resolve().parent / "plugin_pkg"


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


@pytest.mark.parametrize("check", CHECKS)
@pytest.mark.parametrize("env", ENV_NAMES)
def test_every_env_keeps_the_contract(registry: EnvRegistry, env: str, check: str) -> None:
    result = run_check(registry, env, check)
    assert result.passed, f"{env} {check}: {result.detail}"


class MentalMathExpert(MathToolsEnv):
    """A card whose 'expert' is a failure mode: it does not reach the maximum."""

    gym_id: ClassVar[str | None] = "toolgym-test/MentalMathExpert-v0"
    expert: ClassVar[str | None] = "mental_math"


class UndeclaredFailureMode(MathToolsEnv):
    gym_id: ClassVar[str | None] = "toolgym-test/UndeclaredFailureMode-v0"
    failure_modes: ClassVar[tuple[str, ...]] = ("mental_math", "no_such_policy")


class UnnamedTool(MathToolsEnv):
    gym_id: ClassVar[str | None] = "toolgym-test/UnnamedTool-v0"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.toolbox._schemas_text = self.toolbox._schemas_text.replace(
            '"name": "calculator"', '"name": "calculator tool"'
        )


@pytest.fixture(scope="module")
def broken() -> EnvRegistry:
    local = EnvRegistry(group="toolgym.none")
    for env in (MentalMathExpert, UndeclaredFailureMode, UnnamedTool):
        local.register(env.__name__, env, gym_id=env.gym_id)
    return local


def test_an_expert_below_the_maximum_fails_naming_the_maximum(broken: EnvRegistry) -> None:
    result = run_check(broken, "MentalMathExpert", "expert", played=3)
    assert not result.passed
    assert result.detail.startswith("the expert misses the maximum 2.25: ")  # 1+.5+.25+.25+.25


def test_a_failure_mode_that_is_no_policy_fails_the_card(broken: EnvRegistry) -> None:
    result = run_check(broken, "UndeclaredFailureMode", "card")
    assert (result.passed, result.detail) == (
        False,
        "ValueError: env 'UndeclaredFailureMode': failure_modes ['no_such_policy'] are not "
        "in its `policies`",
    )


def test_a_tool_name_openai_refuses_fails_the_schemas(broken: EnvRegistry) -> None:
    result = run_check(broken, "UnnamedTool", "schemas")
    assert (result.passed, result.detail) == (False, "tool name 'calculator tool' is not valid")


def test_doing_nothing_is_not_mistaken_for_the_expert(registry: EnvRegistry) -> None:
    from envs.check import play

    played = play(registry, "math_tools", DoNothing(), played=3)
    assert [t.success for t in played] == [False] * 3


def test_the_cli_prints_one_line_per_check_and_exits_1_on_a_failure(
    broken: EnvRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["env=MentalMathExpert", "played=2", "checks=card,expert"]
    assert main(argv, registry=broken) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "ok   card"
    assert lines[1].startswith("FAIL expert       the expert misses the maximum 2.25")


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["env=nope"], "env: unknown env 'nope'"),
        (["env=math_tools", "checks=expert,vibes"], "checks: unknown ['vibes']"),
        (["env=math_tools", "played=0"], "played: a whole number >= 1, got '0'"),
        (["enviro=math_tools"], "unknown keys ['enviro']"),
    ],
)
def test_bad_usage_exits_2_naming_the_input(
    argv: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert named in capsys.readouterr().err


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
