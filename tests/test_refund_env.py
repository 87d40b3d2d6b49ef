"""The refund_agent env as a user meets it: the simulated customer, how episodes end, the
graduated grading of tool calls, Gymnasium's checker, and the SFT export."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import gymnasium
import pytest
from gymnasium.utils.env_checker import check_env

import envs
from core.records import ErrorKind, Execution, Termination
from envs.refund_agent import RefundAgentEnv
from envs.rollout import EpisodeJob, rollout
from policies.base import tool_call_text
from policies.scripted import make_scripted
from policies.sft_export import export_sft, hermes_text, read_sft, sft_record
from scenarios.refund import CustomerSim, RefundScenario

REPO = Path(__file__).resolve().parents[1]
ASK = "Sorry to hear that! Could you tell me your order number, please?"


@pytest.fixture()
def env() -> RefundAgentEnv:
    return envs.make_raw("refund_agent", split="cases")


def case(env: RefundAgentEnv, case_id: str, **sim: Any) -> RefundScenario:
    scenario = next(s for s in env.scenarios if s.id == case_id)
    if sim:
        customer = scenario.customer_sim.model_dump() | sim
        scenario = scenario.model_copy(update={"customer_sim": CustomerSim(**customer)})
    return scenario


def say(env: RefundAgentEnv, text: str) -> tuple[list[dict[str, Any]], bool, bool, dict]:
    observation, _, terminated, truncated, info = env.step(text)
    return observation, terminated, truncated, info


# ---- the simulated customer ---------------------------------------------------------------
@pytest.mark.parametrize("persona", ["cooperative", "vague", "impatient"])
def test_customer_answers_order_number_questions_per_persona(
    env: RefundAgentEnv, persona: str
) -> None:
    scenario = case(env, "ask-order-cooperative", persona=persona)
    order_id = scenario.customer_sim.order_id
    env.reset(seed=0, options={"scenario": scenario})
    observation, terminated, _, _ = say(env, ASK)
    answer = observation[-1]
    assert answer["role"] == "user" and not terminated
    if persona == "vague":  # no number on the first ask, just the item
        assert str(order_id) not in answer["content"]
        assert scenario.db.orders[order_id].item in answer["content"]
        observation, _, _, _ = say(env, "Could you look up the order number in your email?")
    assert f"#{order_id}" in observation[-1]["content"]
    if persona == "impatient":
        assert "hurry" in observation[-1]["content"]


def test_a_reply_that_asks_nothing_ends_the_episode(env: RefundAgentEnv) -> None:
    env.reset(seed=0, options={"scenario": case(env, "happy-lost-order")})
    _, terminated, truncated, info = say(env, "<think>done</think>\nThanks for waiting.")
    assert terminated and not truncated
    assert info["termination"] == "final_answer"
    assert info["trajectory"].final_answer == "Thanks for waiting."


def test_a_call_missing_its_opening_tag_is_an_error_not_the_final_reply(
    env: RefundAgentEnv,
) -> None:
    env.reset(seed=0, options={"scenario": case(env, "happy-lost-order")})
    garbled = '<think>Escalate.\n{"name": "escalate_to_human", "arguments": {}}\n</tool_call>'
    observation, terminated, truncated, info = say(env, garbled)
    assert not terminated and not truncated
    assert observation[-1]["role"] == "tool"
    assert "without an opening <tool_call>" in observation[-1]["content"]
    (record,) = info["tool_calls"]
    assert record.error_kind is ErrorKind.MALFORMED_JSON


def test_customer_stops_answering_after_max_replies(env: RefundAgentEnv) -> None:
    scenario = case(env, "ask-order-cooperative", max_replies=1)
    env.reset(seed=0, options={"scenario": scenario})
    assert not say(env, ASK)[1]
    assert say(env, ASK)[1]  # no reply left: the question is the final message


# ---- how episodes end ---------------------------------------------------------------------
def test_escalation_terminates_the_episode(env: RefundAgentEnv) -> None:
    env.reset(seed=0, options={"scenario": case(env, "exception-lost-expensive")})
    call = tool_call_text("escalate_to_human", {"summary": "Over the approval limit."})
    observation, terminated, truncated, info = say(env, call)
    assert terminated and not truncated
    assert info["termination"] == "escalation"
    assert info["trajectory"].termination == Termination.ESCALATION
    assert observation[-1]["role"] == "tool" and "Escalated" in observation[-1]["content"]


def test_turn_limit_truncates(env: RefundAgentEnv) -> None:
    limited = envs.make_raw("refund_agent", split="cases", max_turns=2)
    scenario = case(env, "happy-lost-order")
    limited.reset(seed=0, options={"scenario": scenario})
    lookup = tool_call_text("get_customer_id", {"session_id": scenario.session_id})
    assert say(limited, lookup)[1:3] == (False, False)
    _, terminated, truncated, info = say(limited, lookup)
    assert truncated and not terminated
    assert info["termination"] == "turn_limit"
    assert "turn_limit" in info["trajectory"].violations


# ---- the seed's graduated table: error < runs-but-wrong < correct --------------------------
def test_check_refund_with_the_session_id_runs_but_is_graded_wrong(env: RefundAgentEnv) -> None:
    scenario = case(env, "happy-lost-order")
    env.reset(seed=0, options={"scenario": scenario})
    order_id = scenario.customer_sim.order_id
    by_session = {"customer_id": scenario.session_id, "order_id": order_id}
    by_name = {"customer_id": "Alice Smith", "order_id": order_id}
    by_id = {"customer_id": scenario.customer_id, "order_id": order_id}
    grades = []
    for arguments in (by_name, by_session, by_id):
        _, _, _, info = say(env, tool_call_text("check_refund", arguments))
        [record] = info["tool_calls"]
        grades.append(record.execution)
    assert grades == [Execution.ERROR, Execution.WRONG, Execution.OK]
    trajectory = env.trajectory
    assert trajectory is not None
    name_call, session_call, _ = trajectory.tool_calls
    assert name_call.error_kind == ErrorKind.TYPE_MISMATCH and not name_call.valid
    assert session_call.valid and session_call.error_kind is None
    assert "no refund found" in (session_call.result or "")


def test_gymnasium_check_env_passes() -> None:
    env = gymnasium.make("toolgym/RefundAgent-v0").unwrapped
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. "no render fps declared"
        check_env(env)


# ---- SFT export ---------------------------------------------------------------------------
def expert_episodes(count: int) -> list:
    scenarios = envs.make_raw("refund_agent", split="eval").scenarios[::24][:count]
    jobs = [EpisodeJob(s, seed=i) for i, s in enumerate(scenarios)]
    make_env = lambda: envs.make_raw("refund_agent", split="eval")  # noqa: E731
    return list(rollout(make_env, make_scripted("expert"), jobs))


def test_sft_export_round_trips(tmp_path: Path) -> None:
    trajectories = expert_episodes(12)
    path = tmp_path / "sft.jsonl"
    assert export_sft(trajectories, path) == len(trajectories)
    records = read_sft(path)
    assert records == [json.loads(json.dumps(sft_record(t))) for t in trajectories]
    for trajectory, record in zip(trajectories, records, strict=True):
        assert set(record) == {"messages", "tools", "scenario_id", "slices"}
        assert record["scenario_id"] == trajectory.scenario_id
        assert record["slices"] == trajectory.slices and record["tools"] == trajectory.tools
        messages = record["messages"]
        assert [m["role"] for m in messages] == [m.role for m in trajectory.messages]
        for exported, original, following in zip(
            messages, trajectory.messages, [*messages[1:], None], strict=True
        ):
            if exported["role"] == "assistant":
                assert hermes_text(exported) == original.content  # exact text, rebuilt
                for call in exported.get("tool_calls", []):
                    assert isinstance(call["function"]["arguments"], dict)
                    assert following is not None and following["tool_call_id"] == call["id"]
            if exported["role"] == "tool":
                assert exported["name"] == original.name and exported["content"] == original.content


def test_sft_export_cli_imports_no_ml_framework(tmp_path: Path) -> None:
    out = tmp_path / "sft.jsonl"
    script = (
        "import sys\n"
        "from policies.sft_export import main\n"
        f"main(['env=refund_agent', 'split=eval', 'limit=6', 'out={out}'])\n"
        "heavy = sorted({'torch', 'transformers', 'trl', 'tokenizers'} & set(sys.modules))\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "wrote 6 SFT records" in done.stdout
    assert len(read_sft(out)) == 6
