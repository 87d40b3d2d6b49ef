"""The env contract as users rely on it: Gymnasium API, determinism, robustness, registry."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import envs
from core.records import Termination, Trajectory, read_jsonl, write_jsonl
from envs.registry import EnvRegistry
from tests.conftest import lost_order_scenario

ROOT = Path(__file__).resolve().parents[1]
CALL = '<tool_call>\n{{"name": "{name}", "arguments": {args}}}\n</tool_call>'
SCRIPT = [
    CALL.format(name="get_customer_name", args='{"session_id": 90412}'),
    CALL.format(name="check_refund", args='{"customer_id": "Alice Smith", "order_id": 1001}'),
    "<think>try the id</think>" + CALL.format(name="get_customer_id", args='{"session_id": 90412}'),
    "Your order is on its way.",
]


@pytest.mark.parametrize("gym_id", ["toolgym/RefundAgent-v0", "toolgym/MathTools-v0"])
def test_gymnasium_check_env_passes(gym_id: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # render_fps: a text env has none
        check_env(gym.make(gym_id).unwrapped)


def test_reset_step_contract() -> None:
    env = gym.make("toolgym/RefundAgent-v0", scenarios=[lost_order_scenario()])
    obs, info = env.reset(seed=1)
    assert [m["role"] for m in obs] == ["system", "user"]
    assert {t["function"]["name"] for t in info["tools"]} >= {"check_refund", "issue_refund"}
    obs2, reward, terminated, truncated, info = env.step(SCRIPT[0])
    assert obs2[: len(obs)] == obs and obs2[-1]["role"] == "tool"
    assert (reward, terminated, truncated) == (0.0, False, False)
    assert info["tool_calls"][0].name == "get_customer_name"


def play(seed: int) -> Trajectory:
    env = envs.make_raw("refund_agent", scenarios=[lost_order_scenario()])
    env.reset(seed=seed)
    info: dict = {}
    for action in SCRIPT:
        _, _, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            break
    return info["trajectory"]


def test_same_seed_gives_byte_identical_trajectories() -> None:
    first, second = play(7), play(7)
    assert first.to_json() == second.to_json()
    assert first.termination is Termination.FINAL_ANSWER
    assert first.reward_components["tool_execution"] == 0.0  # (+1 - 2 + 1) / 3: mismatch costs


def test_trajectory_jsonl_round_trip_is_lossless(tmp_path: Path) -> None:
    trajectory = play(3)
    trajectory.latency_ms = [1.5, 2.25]
    path = tmp_path / "episodes.jsonl"
    write_jsonl(path, [trajectory, trajectory])
    loaded = list(read_jsonl(path))
    assert loaded == [trajectory, trajectory]
    assert loaded[0].to_json() == trajectory.to_json()
    with path.open("a") as fh:
        fh.write(trajectory.to_json()[:50])  # a writer killed mid-line
    assert len(list(read_jsonl(path))) == 2


def test_turn_limit_truncates() -> None:
    env = envs.make_raw("refund_agent", scenarios=[lost_order_scenario()], max_turns=2)
    env.reset(seed=0)
    action = CALL.format(name="get_current_date", args="{}")
    assert env.step(action)[3] is False
    _, _, terminated, truncated, info = env.step(action)
    assert truncated and not terminated
    assert info["trajectory"].termination is Termination.TURN_LIMIT
    with pytest.raises(gym.error.ResetNeeded):
        env.step(action)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
tool_names = st.sampled_from(
    ["check_refund", "issue_refund", "get_customer_id", "escalate_to_human", "nope", ""]
)
call_bodies = st.one_of(
    st.builds(lambda n, a: json.dumps({"name": n, "arguments": a}), tool_names, json_values),
    st.text(max_size=80),
)
actions = st.one_of(
    st.text(max_size=200),
    st.lists(call_bodies, min_size=1, max_size=3).map(
        lambda bodies: "".join(f"<tool_call>{b}</tool_call>" for b in bodies)
    ),
    st.builds(lambda b: f"<think>{b}", st.text(max_size=40)),
    st.dictionaries(st.sampled_from(["content", "tool_calls", "role"]), json_values, max_size=3),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(actions, min_size=1, max_size=5), st.integers(0, 2**16))
def test_malformed_actions_never_crash_step(sequence: list, seed: int) -> None:
    env = envs.make_raw("refund_agent", scenarios=[lost_order_scenario()])
    env.reset(seed=seed)
    for action in sequence:
        obs, reward, terminated, truncated, info = env.step(action)
        assert isinstance(obs, list) and isinstance(reward, float)
        for record in info["tool_calls"]:
            assert (record.error_kind is None) == (record.error is None)
        if terminated or truncated:
            assert set(info["reward_components"]) == set(env.rubric.functions)
            Trajectory.from_json(info["trajectory"].to_json())  # still serialisable
            break


def test_import_envs_stays_light() -> None:
    code = (
        "import sys, envs, gymnasium; envs.make_raw('refund_agent', split='cases');"
        "print([m for m in ('torch','transformers','trl','verl','vllm','ray') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_short_name_and_gym_id_build_the_same_env() -> None:
    by_name = envs.make("refund_agent", split="cases")
    by_id = gym.make("toolgym/RefundAgent-v0", split="cases")
    assert type(by_name.unwrapped) is type(by_id.unwrapped)
    assert "refund_agent" in envs.ENVS.names() and "math_tools" in envs.ENVS.names()
    with pytest.raises(KeyError, match=r"unknown env 'refnd_agent'.*refund_agent"):
        envs.make("refnd_agent")


def test_register_env_decorator_for_user_code() -> None:
    from envs.math_tools import MathToolsEnv

    registry = EnvRegistry(group="toolgym.test-none")

    @envs.register_env("my_math", gym_id="toolgym-test/MyMath-v0", registry=registry)
    class MyMath(MathToolsEnv):
        env_name = "my_math"

    env = registry.make("my_math", split="eval")
    assert isinstance(env.unwrapped, MyMath)
    assert isinstance(gym.make("toolgym-test/MyMath-v0", split="eval").unwrapped, MyMath)


def test_third_party_package_adds_env_through_entry_point(tmp_path: Path) -> None:
    """A real installed distribution (dist-info on sys.path), made by its short name."""
    site = tmp_path / "site"
    package = site / "acme_envs"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        textwrap.dedent("""
        from envs.math_tools import MathToolsEnv

        class AcmeMath(MathToolsEnv):
            env_name = "acme_math"
            gym_id = "acme/AcmeMath-v0"
    """)
    )
    dist = site / "acme_envs-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-envs\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[toolgym.envs]\nacme_math = acme_envs:AcmeMath\n")
    code = (
        "import envs, gymnasium as gym;"
        "env = envs.make('acme_math', split='eval');"
        "print(type(env.unwrapped).__name__, 'acme_math' in envs.ENVS.names(),"
        " type(gym.make('acme/AcmeMath-v0', split='eval').unwrapped).__name__)"
    )
    env_vars = {"PYTHONPATH": f"{site}:{ROOT}"}
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**__import__("os").environ, **env_vars},
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["AcmeMath", "True", "AcmeMath"]


def test_tool_schemas_can_be_rendered_into_the_system_prompt() -> None:
    plain = envs.make_raw("math_tools", split="eval")
    rendered = envs.make_raw("math_tools", split="eval", tools_in_prompt=True)
    system_plain = plain.reset(seed=0)[0][0]["content"]
    system = rendered.reset(seed=0)[0][0]["content"]
    assert "<tools>" not in system_plain
    assert system.startswith(system_plain) and '"name": "calculator"' in system
