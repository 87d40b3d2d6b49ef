"""policy=hf: the project's tiny model, built in the test, answers batches and runs an eval."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from core.policy import PolicyRequest
from core.records import read_jsonl
from core.sampling import Sampling
from policies.hf import ContextOverflowError, HFPolicy, template_message
from trainers.tiny_model import build_tiny_model

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("trl")

REPO = Path(__file__).resolve().parent.parent
SIZES = {"vocab_size": 512, "hidden_size": 32, "num_layers": 1, "num_heads": 2, "num_kv_heads": 1}
CORPUS = [
    "Hello, my order #1001 is late. Tracking says it's lost. Help!",
    '<tool_call>\n{"name": "get_order", "arguments": {"order_id": 1001}}\n</tool_call>',
    "I've refunded order #1001. You'll see $39.99 back on your card.",
    "Which order number is it? Could you give me the order id?",
] * 10
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_order",
            "description": "Get an order.",
            "parameters": {
                "type": "object",
                "properties": {"order_id": {"type": "integer"}},
                "required": ["order_id"],
            },
        },
    }
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("model") / "tiny", CORPUS, **SIZES)


def request(*texts: str, seed: int = 7, turn: int = 0) -> PolicyRequest:
    messages = [{"role": "system", "content": "You are the shop's agent."}]
    roles = ("user", "assistant")
    messages += [{"role": roles[i % 2], "content": text} for i, text in enumerate(texts)]
    return PolicyRequest(messages=messages, tools=TOOLS, scenario_id="s", seed=seed, turn=turn)


def test_a_greedy_batch_is_left_padded_deterministic_and_reports_usage(tiny):
    policy = HFPolicy(tiny, sampling=Sampling(max_turn_tokens=8))
    assert policy.tokenizer.padding_side == "left"
    batch = [
        request("Where is my order?"),
        request("Hi", "Which order?", "Order #1001, it's lost."),
    ]
    first, second = policy.act(batch), policy.act(batch)
    assert [r.text for r in first] == [r.text for r in second]
    for req, resp in zip(batch, first, strict=True):
        assert resp.prompt_tokens == len(policy.encode(req))
        assert 1 <= resp.completion_tokens <= 8
        assert resp.latency_ms > 0
        assert "<|im_end|>" not in resp.text and "<|endoftext|>" not in resp.text
    alone = policy.act([batch[1]])[0]
    assert alone.text == first[1].text  # padding does not change a greedy answer


def test_sampling_is_seeded_per_batch_and_leaves_the_global_rng_alone(tiny):
    policy = HFPolicy(
        tiny, sampling=Sampling(temperature=1.0, top_p=0.95, max_turn_tokens=12), seed=3
    )
    batch = [request("Where is my order?", seed=1), request("Refund please", seed=2)]
    state = torch.get_rng_state()
    texts = [r.text for r in policy.act(batch)]
    assert torch.equal(state, torch.get_rng_state())
    assert texts == [r.text for r in policy.act(batch)]
    other_turn = [request("Where is my order?", seed=1, turn=1), batch[1]]
    assert len(policy.act(other_turn)) == 2


def test_tool_call_tags_survive_decoding_and_the_stop_token_does_not(tiny):
    policy = HFPolicy(tiny, sampling=Sampling(max_turn_tokens=8))
    call = '<tool_call>\n{"name": "get_order", "arguments": {"order_id": 1001}}\n</tool_call>'
    ids = policy.tokenizer(call, add_special_tokens=False)["input_ids"]
    eos = policy.tokenizer.eos_token_id
    response = policy._response([*ids, eos, eos, eos], prompt_tokens=3, latency_ms=1.0)
    assert response.text == call and response.completion_tokens == len(ids) + 1


def test_long_prompts_lose_their_oldest_messages_but_keep_the_system_message(tiny):
    policy = HFPolicy(tiny, sampling=Sampling(max_turn_tokens=8))
    long = request(*(f"message number {i} about order {1000 + i}" for i in range(12)))
    full = len(policy.encode(long))
    policy.context_length = full - 20 + policy.max_new_tokens
    text = policy.tokenizer.decode(policy.encode(long))
    assert len(policy.encode(long)) <= full - 20
    assert "You are the shop's agent." in text and "message number 11" in text
    assert "message number 0 " not in text
    policy.context_length = policy.max_new_tokens + 5
    with pytest.raises(ContextOverflowError, match="system message"):
        policy.encode(long)


def test_tool_call_arguments_become_dicts_for_the_chat_template():
    message = {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
        ],
    }
    assert template_message(message)["tool_calls"][0]["function"]["arguments"] == {"a": 1}
    assert message["tool_calls"][0]["function"]["arguments"] == '{"a": 1}'  # not mutated


def test_policy_hf_runs_an_eval_end_to_end(tiny, tmp_path):
    out = tmp_path / "run"
    argv = ["policy=hf", f"model={tiny}", "limit=2", "sampling.max_turn_tokens=8", f"out={out}"]
    done = subprocess.run(
        [sys.executable, "-m", "evals.run", *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    episodes = list(read_jsonl(out / "episodes.jsonl"))
    assert len(episodes) == 2 and all(t.done and t.policy == "hf:tiny" for t in episodes)
    assert all(t.latency_ms and t.tokens and t.tokens.completion > 0 for t in episodes)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["llm_sha"].startswith("sha256:") and manifest["tokenizer_sha"]
    assert manifest["adapters"] == [] and manifest["sampling"]["max_turn_tokens"] == 8
    assert (out / "metrics.json").is_file() and "report:" in done.stdout
