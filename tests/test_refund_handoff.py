"""refund_handoff: the seed's three worked examples score exactly as the seed says, error
reports are not acted on, and either role can be the learner."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import envs
from policies.base import ScriptedPolicy, tool_call_text
from policies.sft_export import sft_record
from tests.conftest import play_case

ENV = "refund_handoff"


def scenario(name: str) -> Any:
    return next(s for s in envs.make_raw(ENV, split="cases").scenarios if s.id == name)


def play(name: str, policy: str = "expert", **kwargs: Any) -> Any:
    return play_case(ENV, name, policy, **kwargs)


def report(trajectory: Any) -> str:
    return next(h["message"] for h in trajectory.info["handoffs"] if h["from"] == "lookup")


class SeedAgentA(ScriptedPolicy):
    """The seed's Agent A of bad example 2: looks the order up, then says it verbatim."""

    name = "seed_agent_a"

    def decide(self, messages: list[dict[str, Any]]) -> str:
        if not any(m["role"] == "tool" for m in messages):
            return tool_call_text("get_order", {"order_id": 123})
        message = "Refund pending (error no refund found)"
        return tool_call_text("handoff", {"to": "acting", "message": message})


def test_seed_good_example_scores_plus_two() -> None:
    trajectory = play("seed_refund_123")
    assert report(trajectory).startswith("Order #123 belongs to customer 42.")
    assert trajectory.final_answer == "Received order #123; refund complete ✓"
    assert trajectory.reward_components == {
        "handoff_info": 1.0, "role_execution": 1.0, "wrong_final_response": 0.0,
        "acted_on_error": 0.0, "wasted_calls": 0.0,
    }  # fmt: skip
    assert trajectory.reward == 2.0 and trajectory.success
    refunds = [e for e in trajectory.end_state["events"] if e["event"] == "refund"]
    assert [(e["order_id"], e["customer_id"]) for e in refunds] == [(123, 42)]


def test_seed_bad_example_1_didnt_get_order_info_scores_minus_two() -> None:
    trajectory = play("seed_status_123", "ignores_handoff")
    assert "Refund status: pending" in report(trajectory)
    assert trajectory.final_answer == "Didn't get order info."
    assert trajectory.reward_components["handoff_info"] == -1.0
    assert trajectory.reward_components["wrong_final_response"] == 1.0  # weighted -1
    assert trajectory.reward_components["role_execution"] == 0.0
    assert trajectory.reward == -2.0 and not trajectory.success


def test_seed_bad_example_2_refunded_after_an_error_report_scores_minus_two() -> None:
    trajectory = play("seed_refund_123_missing", "acts_on_error", partners={"lookup": SeedAgentA()})
    assert report(trajectory) == "Refund pending (error no refund found)"
    assert trajectory.final_answer == "Refunded."
    assert trajectory.reward_components == {
        "handoff_info": -1.0, "role_execution": 0.0, "wrong_final_response": 1.0,
        "acted_on_error": 0.0, "wasted_calls": 0.0,
    }  # fmt: skip
    assert trajectory.reward == -2.0


def test_the_expert_does_not_act_on_the_same_error_report() -> None:
    trajectory = play("seed_refund_123_missing", partners={"lookup": SeedAgentA()})
    assert "refund" not in [e["event"] for e in trajectory.end_state["events"]]
    assert trajectory.reward_components["acted_on_error"] == 0.0
    assert trajectory.reward_components["handoff_info"] == 1.0


def test_refunding_on_an_error_report_is_penalised_beyond_the_seed_total() -> None:
    # check_refund is down: the lookup names the customer but reports an error. Refunding
    # anyway is the seed's "action based on erroneous data": acted_on_error on top.
    trajectory = play("refund_check_down", "acts_on_error")
    assert "error" in report(trajectory)
    assert [e["order_id"] for e in trajectory.end_state["events"]] == [9907]
    assert trajectory.reward_components["acted_on_error"] == 1.0
    assert trajectory.reward == -3.0  # -1 info, 0 role, -1 final response, -1 acted on error


def test_a_failing_lookup_is_retried_once_then_reported_and_escalated() -> None:
    trajectory = play("lookup_down")
    lookups = [c for c in trajectory.tool_calls if c.agent == "lookup" and c.name == "get_order"]
    assert len(lookups) == 2 and all(c.error_kind is not None for c in lookups)
    assert report(trajectory).startswith("error:")
    assert [e["event"] for e in trajectory.end_state["events"]] == ["escalation"]
    assert trajectory.reward == 2.0


def test_the_learner_sees_only_its_own_view() -> None:
    env = envs.make_raw(ENV, split="cases")
    start = env.begin(scenario("seed_refund_123"), seed=0)
    assert [m["role"] for m in start.messages] == ["system", "user"]
    assert "Your role: acting." in start.messages[0]["content"]
    assert start.agent == "acting"
    assert {t["function"]["name"] for t in start.tools} == {
        "issue_refund", "escalate_to_human", "handoff",
    }  # fmt: skip
    ask = tool_call_text("handoff", {"to": "lookup", "message": "Look up order #123."})
    result = env.advance(ask)
    assert not result.done
    assert [m["role"] for m in result.new_messages] == ["tool"]  # the lookup's own calls: not here
    assert result.new_messages[0]["content"].startswith("[from lookup] Order #123 belongs to")
    assert [c.agent for c in env.trajectory.tool_calls] == ["acting", "lookup", "lookup", "lookup"]


def test_the_lookup_role_can_be_the_learner() -> None:
    env = envs.make_raw(ENV, split="cases", role="lookup")
    start = env.begin(scenario("seed_refund_123"), seed=0)
    assert [m["role"] for m in start.messages] == ["system", "user"]
    assert start.messages[1] == {
        "role": "user",
        "content": "[from acting] Look up order #123: its customer and its refund status.",
        "name": "acting",
    }
    first = env.advance(tool_call_text("get_order", {"order_id": 123}))
    assert json.loads(first.new_messages[0]["content"])["customer_id"] == 42
    env.advance(tool_call_text("check_refund", {"customer_id": 42, "order_id": 123}))
    message = "Order #123 belongs to customer 42. Refund status: pending (lost, in window)."
    last = env.advance(tool_call_text("handoff", {"to": "acting", "message": message}))
    assert last.terminated and [m["content"] for m in last.new_messages] == ["Delivered to acting."]
    trajectory = last.trajectory
    assert trajectory.info["learner"] == "lookup"
    assert trajectory.final_answer == "Received order #123; refund complete ✓"
    assert trajectory.reward == 2.0
    names = [m.name for m in trajectory.messages if m.role == "assistant"]
    assert names == ["lookup", "lookup", "lookup"]
    record = sft_record(trajectory)  # the lookup role's own transcript, ready for SFT
    assert [m["role"] for m in record["messages"]] == [
        "system", "user", "assistant", "tool", "assistant", "tool", "assistant", "tool",
    ]  # fmt: skip


def test_a_lookup_that_skips_the_refund_check_fails_its_role() -> None:
    env = envs.make_raw(ENV, split="cases", role="lookup")
    env.begin(scenario("seed_refund_123"), seed=0)
    env.advance(tool_call_text("get_order", {"order_id": 123}))
    message = "Order #123 belongs to customer 42. Refund status: pending."
    trajectory = env.advance(tool_call_text("handoff", {"to": "acting", "message": message}))
    assert trajectory.trajectory.reward_components["role_execution"] == 0.0
    assert trajectory.trajectory.reward_components["handoff_info"] == 1.0  # the facts got through


def test_a_lookup_partner_that_masks_errors_breaks_the_chain() -> None:
    trajectory = play("lookup_down", partners={"lookup": "masks_error"})
    assert report(trajectory) == "Refund pending."
    assert trajectory.reward_components["handoff_info"] == -1.0
    assert trajectory.reward_components["role_execution"] == 0.0  # no escalation happened


def test_partner_configuration_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match="role 'boss' unknown"):
        envs.make_raw(ENV, split="cases", role="boss")
    with pytest.raises(ValueError, match=r"partners\['acting'\]: that role is the learner"):
        envs.make_raw(ENV, split="cases", partners={"acting": "expert"})
    with pytest.raises(ValueError, match="'nobody': not a policy of this env"):
        envs.make_raw(ENV, split="cases", partners={"lookup": "nobody"})


def test_handoffs_and_every_role_view_are_recorded() -> None:
    trajectory = play("seed_refund_123")
    kinds = [(h["from"], h["to"], h["kind"]) for h in trajectory.info["handoffs"]]
    assert kinds == [("acting", "lookup", "request"), ("lookup", "acting", "reply")]
    lookup_view = trajectory.info["views"]["lookup"]
    assert [m.get("name") for m in lookup_view if m["role"] == "assistant"] == ["lookup"] * 3
    assert trajectory.info["views"]["acting"][-1]["content"] == trajectory.final_answer


def test_eval_harness_slices_and_the_gate_on_acting_on_error_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from evals import gate, run

    out = {p: tmp_path / p for p in ("expert", "acts_on_error")}
    for policy, folder in out.items():
        assert run.main([f"env={ENV}", f"policy={policy}", "split=eval", f"out={folder}"]) == 0
    table = json.loads((out["acts_on_error"] / "metrics.json").read_text())
    capsys.readouterr()
    # Acting on error reports fails every error-propagation case and none of the others.
    slices = {
        s: table["slices"][s]["success@1"]["point"]
        for s in ("handoff_info", "handoff_error_propagation")
    }
    assert slices == {"handoff_info": 1.0, "handoff_error_propagation": 0.0}
    rules = "rules=refund_handoff"
    assert gate.main([rules, f"candidate={out['expert']}", f"baseline={out['acts_on_error']}"]) == 0
    assert gate.main([rules, f"candidate={out['acts_on_error']}", f"baseline={out['expert']}"]) == 1
    verdict = capsys.readouterr().out.split("VERDICT: NO-GO")[-1]
    assert "no_regressions_on: handoff_error_propagation" in verdict


@pytest.mark.slow  # builds a tokenizer and imports transformers: about a minute
def test_only_the_learner_tokens_are_trained_on(tmp_path: Path) -> None:
    pytest.importorskip("trl")
    from transformers import AutoTokenizer

    from core.sampling import Sampling
    from envs.rollout import EpisodeJob
    from tests.test_grpo import SIZES, ScriptedLM
    from trainers.data import demonstrations, render_chat
    from trainers.tiny_model import build_tiny_model
    from trainers.token_rollout import TokenPolicy, play

    corpus = [
        render_chat([m.to_chat() for m in t.messages], t.tools) for t in demonstrations(ENV, 8)
    ]
    tokenizer = AutoTokenizer.from_pretrained(
        build_tiny_model(tmp_path / "tiny", corpus, line_tokens=16, **SIZES)
    )
    turns = [
        tool_call_text("handoff", {"to": "lookup", "message": "Look up order #123."}),
        tool_call_text("issue_refund", {"customer_id": 42, "order_id": 123, "reason": "lost"}),
        "Received order #123; refund complete ✓",
    ]
    policy = TokenPolicy(ScriptedLM(tokenizer, turns), tokenizer, Sampling(max_turn_tokens=96))
    case = scenario("seed_refund_123")
    (episode,), _ = play(
        lambda: envs.make_raw(ENV, scenarios=[case]),
        policy,
        [EpisodeJob(case, 0, metadata={"episode": 0})],
    )
    ids, mask = episode.tokens.completion_ids, episode.tokens.env_mask
    learner = tokenizer.decode([t for t, m in zip(ids, mask, strict=True) if m == 1])
    others = tokenizer.decode([t for t, m in zip(ids, mask, strict=True) if m == 0])
    assert learner == "<|im_end|>".join(turns) + "<|im_end|>"
    assert "[from lookup] Order #123 belongs to customer 42." in others  # seen, not trained on
    assert "get_order" not in learner + others  # the lookup's own calls never reach acting
    assert episode.trajectory.reward == 2.0


def test_sft_demonstrations_of_the_lookup_role() -> None:
    from trainers.data import demonstrations, sft_rows

    shown = demonstrations(ENV, 4, mix={}, seed=0, env_kwargs={"role": "lookup"})
    assert len(shown) == 4 and {t.info["learner"] for t in shown} == {"lookup"}
    for row in sft_rows(shown):
        said = [m["content"] for m in row["messages"] if m["role"] == "assistant"]
        assert '"name": "get_order"' in said[0]  # the lookup's own first move
        assert all("issue_refund" not in text for text in said)  # acting's turns: not its own


def test_trainers_refuse_a_role_the_env_does_not_have(capsys: pytest.CaptureFixture[str]) -> None:
    from trainers import grpo, sft

    assert grpo.main([f"env={ENV}", "role=boss"]) == 2
    assert sft.main(["env=refund_agent", "role=acting"]) == 2
    printed = capsys.readouterr().err
    assert "role: env 'refund_handoff' has no role 'boss'; roles: acting, lookup" in printed
    assert "role: env 'refund_agent' has no roles (it is not a multi-agent env)" in printed
