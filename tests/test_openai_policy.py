"""policy=openai against real HTTP servers on loopback.

* A FastAPI app served by uvicorn (in a thread, on a free port) answers like an
  OpenAI-compatible endpoint: a structured tool call on the first turn, a final answer
  once it has seen a tool result. A script makes it misbehave request by request: 5xx,
  429 with Retry-After, stalls past the client's timeout, garbled bodies, lone
  surrogates, token counts as strings, refusals.
* `transformers serve` (a real server no one here wrote) with the project's tiny model,
  marked slow.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.policy import PolicyRequest
from core.records import Execution, Termination, Trajectory, read_jsonl
from evals.run import EXIT_OK, main
from policies.openai_compat import EndpointError, OpenAICompatPolicy

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from tests.loopback_openai import FINAL, Script, serve


@pytest.fixture
def server() -> Iterator[tuple[str, Script]]:
    script = Script()
    with serve(script) as url:
        yield url, script


def request(text: str, seed: int = 1) -> PolicyRequest:
    return PolicyRequest(
        messages=[{"role": "user", "content": text}], tools=[], scenario_id=text, seed=seed
    )


def quick_policy(url: str, **kwargs: Any) -> OpenAICompatPolicy:
    options = {"backoff_s": 0.01, "max_retries": 3, "timeout_s": 5.0, **kwargs}
    return OpenAICompatPolicy("m", url, **options)


def eval_argv(url: str, out: Path, limit: int, *extra: str) -> list[str]:
    return [
        "policy=openai",
        "model=canned-1",
        f"base_url={url}",
        f"limit={limit}",
        f"out={out}",
        "endpoint.backoff_s=0.01",
        *extra,
    ]


def test_policy_openai_runs_an_eval_with_structured_tool_calls(server, tmp_path, monkeypatch):
    url, script = server
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    out = tmp_path / "run"
    assert main(eval_argv(url, out, 3)) == EXIT_OK

    episodes = list(read_jsonl(out / "episodes.jsonl"))
    assert len(episodes) == 3
    for t in episodes:
        assert t.policy == "openai:canned-1" and t.termination == Termination.FINAL_ANSWER
        assert [(c.name, c.execution) for c in t.tool_calls] == [("get_current_date", Execution.OK)]
        assert t.messages[2].tool_calls[0].function.name == "get_current_date"
        assert t.final_answer == FINAL
        # usage: prompt 100 + 2 messages, then 100 + 4; completion 7 per turn
        assert (t.tokens.prompt, t.tokens.completion) == (102 + 104, 14)
        assert len(t.latency_ms) == 2 and all(ms > 0 for ms in t.latency_ms)
    assert len(script.bodies) == 6 and set(script.auth) == {"Bearer sk-test"}
    first = script.bodies[0]
    assert first["model"] == "canned-1" and first["temperature"] == 0.0
    assert {tool["function"]["name"] for tool in first["tools"]} >= {"issue_refund"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["llm_sha"] == f"openai:canned-1@{url}"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"]["completed"] == 3 and metrics["status"]["complete"] is True


def test_429_is_retried_honouring_retry_after(server):
    url, script = server
    script.plan = ["429", "429", "429"]  # Retry-After: 0 each time, so no 5 s backoff
    policy = quick_policy(url, backoff_s=5.0, max_backoff_s=5.0)
    started = time.perf_counter()
    try:
        response = policy.act([request("hello")])[0]
    finally:
        policy.close()
    assert time.perf_counter() - started < 2.0
    assert response.message["tool_calls"][0]["function"]["name"] == "get_current_date"
    assert "index" not in response.message["tool_calls"][0]  # only what the env accepts
    assert len(script.bodies) == 4 and policy.stats.retries == 3 and policy.stats.failures == 0


def test_server_errors_back_off_exponentially(server):
    url, script = server
    script.plan = ["503", "500"]
    policy = quick_policy(url, backoff_s=0.2)
    started = time.perf_counter()
    try:
        policy.act([request("hello")])
    finally:
        policy.close()
    # waits 0.2 s then 0.4 s before the third attempt
    assert 0.6 <= time.perf_counter() - started < 3.0
    assert len(script.bodies) == 3


def test_a_refused_request_fails_at_once_with_the_servers_message(server):
    url, script = server
    script.default = "404"
    policy = quick_policy(url)
    try:
        with pytest.raises(EndpointError, match="HTTP 404: model 'nope' does not exist"):
            policy.act([request("hello")])
    finally:
        policy.close()
    assert len(script.bodies) == 1 and policy.stats.failures == 1


def test_a_stalled_request_times_out_and_is_retried(server):
    url, script = server
    script.plan, script.stall_s = ["stall"], 3.0
    policy = quick_policy(url, timeout_s=0.3)
    try:
        response = policy.act([request("hello")])[0]
    finally:
        policy.close()
    assert response.message["tool_calls"][0]["function"]["name"] == "get_current_date"
    assert len(script.bodies) == 2 and response.latency_ms >= 300


def test_a_read_timeout_is_retried_once_by_default(server):
    # A server that keeps generating for a client that gave up would queue every retry.
    url, script = server
    script.default, script.stall_s = "stall", 3.0
    policy = quick_policy(url, timeout_s=0.2, max_retries=10)
    try:
        with pytest.raises(EndpointError, match="ReadTimeout"):
            policy.act([request("hello")])
    finally:
        policy.close()
    assert len(script.bodies) == 2


def test_the_retry_budget_bounds_a_request(server):
    url, script = server
    script.default, script.stall_s = "stall", 3.0
    policy = quick_policy(
        url, timeout_s=0.2, max_retries=50, timeout_retries=50, backoff_s=0.05, budget_s=0.8
    )
    started = time.perf_counter()
    try:
        with pytest.raises(EndpointError, match=r"retry budget of 0\.8 s spent"):
            policy.act([request("hello")])
    finally:
        policy.close()
    assert time.perf_counter() - started < 2.0 and len(script.bodies) < 6


def test_hostile_bodies_are_sanitised(server):
    url, script = server
    script.plan = ["garbage", "no_choices", "surrogate", "usage_strings", "surrogate"]
    policy = quick_policy(url)
    tool_turn = request("hello")
    tool_turn.messages.append({"role": "tool", "content": "2026-03-10", "tool_call_id": "call_a"})
    try:
        first = policy.act([request("hello")])[0]  # garbage, no choices, then surrogates
        second = policy.act([tool_turn])[0]  # usage as strings
        third = policy.act([tool_turn])[0]  # a lone surrogate in the final answer
    finally:
        policy.close()
    assert third.text == FINAL + " \ufffd" == third.message["content"]
    arguments = first.message["tool_calls"][0]["function"]["arguments"]
    assert json.loads(arguments) == {"note": "\ufffd"}
    assert second.text == FINAL and second.message["content"] == FINAL
    assert (second.prompt_tokens, second.completion_tokens) == (12, None)
    assert len(script.bodies) == 5


def test_surrogates_and_usage_strings_do_not_lose_an_eval(server, tmp_path):
    url, script = server
    script.default = "surrogate"
    script.plan = ["usage_strings"] * 2 + ["garbage"] * 2
    out = tmp_path / "run"
    assert main(eval_argv(url, out, 4, "batch_size=2")) == EXIT_OK
    lines = (out / "episodes.jsonl").read_text(encoding="utf-8").splitlines()
    episodes = [Trajectory.from_json(line) for line in lines]
    assert len(episodes) == 4
    assert [t.termination for t in episodes] == [Termination.FINAL_ANSWER] * 4
    assert all(t.final_answer == FINAL + " \ufffd" for t in episodes)
    # the first batch's two requests reported prompt_tokens "12" (completion "many": absent)
    assert sorted(t.tokens.prompt for t in episodes)[:2] == [12 + 104, 12 + 104]


def test_exhausted_retries_are_infrastructure_failures_that_a_resume_plays_again(server, tmp_path):
    url, script = server
    script.default = "503"
    out = tmp_path / "run"
    argv = eval_argv(url, out, 2, "endpoint.max_retries=1")
    assert main(argv) == EXIT_OK
    episodes = list(read_jsonl(out / "episodes.jsonl"))
    assert [t.termination for t in episodes] == [Termination.POLICY_ERROR] * 2
    assert "HTTP 503" in episodes[0].info["policy_error"]
    status = json.loads((out / "metrics.json").read_text())["status"]
    assert (status["completed"], status["failed"], status["complete"]) == (0, 2, False)
    assert (
        "**INCOMPLETE RUN**: 0 of 2 episodes completed, 2 failed" in (out / "report.md").read_text()
    )

    script.default = "ok"  # the endpoint is back: resuming plays the lost episodes again
    assert main([*argv, "resume=true"]) == EXIT_OK
    episodes = list(read_jsonl(out / "episodes.jsonl"))
    assert [t.termination for t in episodes] == [Termination.FINAL_ANSWER] * 2
    assert json.loads((out / "metrics.json").read_text())["status"]["complete"] is True


def test_one_failed_request_does_not_resend_its_batch_mates(server):
    url, script = server
    policy = quick_policy(url, max_concurrency=4)
    batch = [request(f"q{i}", seed=i) for i in range(3)] + [request("fail-me", seed=9)]
    try:
        with pytest.raises(EndpointError, match="HTTP 400"):
            policy.act(batch)
        # the rollout loop then asks one by one: answered from the batch's outcomes
        alone = [policy.act([r])[0].message["tool_calls"][0]["id"] for r in batch[:3]]
        with pytest.raises(EndpointError, match="HTTP 400"):
            policy.act([batch[3]])
    finally:
        policy.close()
    assert alone == ["call_a"] * 3 and len(script.bodies) == 4


def test_concurrency_is_capped_and_answers_keep_request_order(server):
    url, script = server
    script.default, script.stall_s = "slow", 0.2
    policy = quick_policy(url, max_concurrency=2)
    batch = [request(f"q{i}", seed=i) for i in range(6)]
    batch[3].messages.append(
        {"role": "tool", "content": "2026-03-10", "name": "get_current_date", "tool_call_id": "a"}
    )
    try:
        responses = policy.act(batch)
    finally:
        policy.close()
    assert script.max_in_flight == 2
    assert [r.text for r in responses] == ["", "", "", FINAL, "", ""]
    assert all("name" not in m for b in script.bodies for m in b["messages"] if m["role"] == "tool")
    assert len({b["seed"] for b in script.bodies}) == 6


def test_text_tool_calls_are_parsed_with_the_configured_format(server, monkeypatch):
    url, _ = server
    text = '[TOOL_CALLS] [{"name": "get_order", "arguments": {"order_id": 1001}}]'
    import policies.openai_compat as compat

    monkeypatch.setattr(compat, "_content", lambda value: text)
    policy = quick_policy(url, tool_format="mistral")
    tool_turn = request("hello")
    tool_turn.messages.append({"role": "tool", "content": "x", "tool_call_id": "call_a"})
    try:
        message = policy.act([tool_turn])[0].message  # the server sent no structured calls
    finally:
        policy.close()
    call = message["tool_calls"][0]["function"]
    assert (call["name"], json.loads(call["arguments"])) == ("get_order", {"order_id": 1001})
    assert message["content"] == ""
    with pytest.raises(ValueError, match="tool_format: unknown format 'xml'"):
        OpenAICompatPolicy("m", url, tool_format="xml")


# --- a real server no one here wrote: `transformers serve` with the tiny model -------------


def _serving_available() -> str | None:
    try:
        from transformers.utils.import_utils import is_serve_available
    except ImportError:
        return "transformers is not installed"
    if not is_serve_available():
        return "transformers serve needs its [serving] extra (openai, fastapi, uvicorn)"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
@pytest.mark.skipif(_serving_available() is not None, reason=str(_serving_available()))
def test_an_eval_against_transformers_serve(tmp_path):
    from trainers.tiny_model import build_tiny_model

    corpus = ["Hello, my order #1001 is late.", "I refunded order #1001."] * 10
    model = build_tiny_model(
        tmp_path / "tiny", corpus, vocab_size=512, hidden_size=32, num_layers=1, num_heads=2,
        num_kv_heads=1,
    )  # fmt: skip
    port = _free_port()
    cli = shutil.which("transformers", path=str(Path(sys.executable).parent))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [cli or "transformers", "serve", str(model), "--port", str(port), "--host", "127.0.0.1",
         "--device", "cpu"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/v1"
        _wait_healthy(f"http://127.0.0.1:{port}/health", proc)
        out = tmp_path / "run"
        argv = [
            "policy=openai",
            f"model={model}",
            f"base_url={url}",
            "limit=4",
            "batch_size=4",
            "max_turns=2",
            "sampling.max_turn_tokens=8",
            f"out={out}",
        ]
        assert main(argv) == EXIT_OK
        episodes = list(read_jsonl(out / "episodes.jsonl"))
        assert len(episodes) == 4
        status = json.loads((out / "metrics.json").read_text())["status"]
        assert status["completed"] + status["failed"] == 4
        for t in episodes:
            if t.termination == Termination.POLICY_ERROR:
                continue  # an infrastructure failure, counted apart
            assert t.tokens.completion >= 1 and t.tokens.prompt > 100  # the server's usage
            assert all(ms > 0 for ms in t.latency_ms)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _wait_healthy(url: str, proc: subprocess.Popen[bytes]) -> None:
    import httpx

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"transformers serve exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    pytest.fail("transformers serve did not become healthy in 120 s")


# --- property: whatever a server sends, a reply is a clean response or an EndpointError ---

hypothesis = pytest.importorskip("hypothesis")
st = hypothesis.strategies

_HOSTILE_CHARS = st.sampled_from(["\ud800", "\udfff", "a", "\u00e9", "\U0001f600", "\x00", '"'])
_TEXT = st.text(
    alphabet=_HOSTILE_CHARS | st.characters(codec=None, exclude_categories=()), max_size=20
)
_SCALAR = st.none() | st.booleans() | st.integers(-(10**30), 10**30) | st.floats() | _TEXT
_ANY = st.recursive(
    _SCALAR,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=12,
)
_JSON_TEXT = _ANY.map(lambda value: json.dumps(value, ensure_ascii=False, allow_nan=True))
_CALL = st.fixed_dictionaries(
    {"id": _TEXT | _ANY, "function": st.fixed_dictionaries(
        {"name": _TEXT | _ANY, "arguments": _JSON_TEXT | _TEXT | _ANY})}
)  # fmt: skip
_MESSAGE = st.fixed_dictionaries(
    {"role": _ANY, "content": _TEXT | _ANY, "tool_calls": st.lists(_CALL, max_size=2) | _ANY}
)
_USAGE = st.fixed_dictionaries({"prompt_tokens": _ANY, "completion_tokens": _ANY}) | _ANY
_BODY = st.fixed_dictionaries(
    {"choices": st.lists(st.fixed_dictionaries({"message": _MESSAGE}), min_size=1, max_size=2),
     "usage": _USAGE}
) | _ANY  # fmt: skip


@hypothesis.settings(max_examples=300, deadline=None)
@hypothesis.given(body=_BODY)
def test_any_reply_body_is_a_clean_response_or_an_endpoint_error(body):
    import httpx

    from core.records import Message

    # ensure_ascii escapes lone surrogates as a hostile server would send them
    content = json.dumps(body, ensure_ascii=True, allow_nan=True).encode()
    reply = httpx.Response(200, content=content, request=httpx.Request("POST", "http://x/v1"))
    policy = OpenAICompatPolicy.__new__(OpenAICompatPolicy)
    policy.url, policy.tool_format = "http://x/v1/chat/completions", "openai"
    try:
        response = policy._parse(reply, 1.0)
    except EndpointError:
        return
    for count in (response.prompt_tokens, response.completion_tokens):
        assert count is None or (type(count) is int and count >= 0)
    Message.model_validate(response.message)  # the shape the env records
    json.dumps(response.message, ensure_ascii=False).encode("utf-8")  # no lone surrogate
    response.text.encode("utf-8")
    for call in response.message.get("tool_calls", []):
        assert isinstance(call["function"]["arguments"], str)


def test_sampling_settings_of_the_eval_config_reach_the_request_body(server, tmp_path):
    url, script = server
    sampling = ["sampling.temperature=0.7", "sampling.top_p=0.9", "sampling.top_k=20"]
    argv = eval_argv(url, tmp_path / "run", 1, *sampling, "sampling.max_turn_tokens=33")
    assert main(argv) == EXIT_OK
    body = script.bodies[0]
    assert (body["temperature"], body["top_p"], body["top_k"], body["max_tokens"]) == (
        0.7,
        0.9,
        20,
        33,
    )


def test_top_k_is_left_out_of_the_request_when_not_set(server):
    url, script = server
    quick_policy(url).act([request("hello")])
    assert "top_k" not in script.bodies[0]
    assert (script.bodies[0]["temperature"], script.bodies[0]["max_tokens"]) == (0.0, 512)


VLLM_ENTRY = {
    "id": "canned-1",
    "object": "model",
    "created": 1764680000,
    "owned_by": "vllm",
    "root": "/models/qwen2.5-7b-instruct",
    "parent": None,
    "max_model_len": 32768,
    "permission": [{"id": "modelperm-1a2b", "created": 1764680000}],
}


def test_the_manifest_names_the_weights_the_server_says_it_serves(server, tmp_path):
    url, script = server
    script.models = [dict(VLLM_ENTRY, id="other"), VLLM_ENTRY]
    assert main(eval_argv(url, tmp_path / "a", 1)) == EXIT_OK
    first = json.loads((tmp_path / "a" / "manifest.json").read_text())["llm_sha"]
    assert first.startswith(f"openai:canned-1@{url}#") and len(first.split("#")[1]) == 16
    # a restart gives new timestamps and permission ids: the same model
    script.models = [dict(VLLM_ENTRY, created=1, permission=[{"id": "modelperm-zz"}])]
    assert main(eval_argv(url, tmp_path / "b", 1)) == EXIT_OK
    assert json.loads((tmp_path / "b" / "manifest.json").read_text())["llm_sha"] == first


def test_resume_is_refused_when_other_weights_are_served_under_the_same_name(
    server, tmp_path, capsys
):
    url, script = server
    out = tmp_path / "run"
    script.models = [VLLM_ENTRY]
    assert main(eval_argv(url, out, 1)) == EXIT_OK
    script.models = [dict(VLLM_ENTRY, root="/models/qwen2.5-7b-instruct-finetuned")]
    assert main([*eval_argv(url, out, 2), "resume=true"]) == 2
    assert "llm_sha" in capsys.readouterr().err
