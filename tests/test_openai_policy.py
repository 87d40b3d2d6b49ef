"""policy=openai against a real HTTP server on loopback that serves canned chat completions.

The server (http.server in a thread, on a free port) answers like an OpenAI-compatible
endpoint: a structured tool call on the first turn, a final answer once it has seen a
tool result. It can fail its first requests (503) or refuse everything (400).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from core.policy import PolicyRequest
from core.records import Execution, Termination, read_jsonl
from evals.run import EXIT_OK, main
from policies.openai_compat import EndpointError, OpenAICompatPolicy


@dataclass
class Canned:
    """What the server saw and how it should misbehave."""

    fail_first: int = 0
    status: int = 200
    bodies: list[dict[str, Any]] = field(default_factory=list)
    auth: list[str | None] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.bodies.append(body)
            if len(self.bodies) <= self.fail_first:
                return 503, {"error": {"message": "overloaded, try again"}}
        if self.status != 200:
            return self.status, {"error": {"message": "model 'nope' does not exist"}}
        if any(m["role"] == "tool" for m in body["messages"]):
            message = {"role": "assistant", "content": "All done, thank you for waiting."}
        else:
            call = {"name": "get_current_date", "arguments": "{}"}
            message = {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"index": 0, "id": "call_a", "type": "function", "function": call}],
            }
        usage = {"prompt_tokens": 100 + len(body["messages"]), "completion_tokens": 7}
        return 200, {
            "id": "c",
            "object": "chat.completion",
            "choices": [{"message": message}],
            "usage": usage,
        }


@pytest.fixture
def server() -> Iterator[tuple[str, Canned]]:
    canned = Canned()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if self.path != "/v1/chat/completions":
                self.send_error(404)
                return
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            canned.auth.append(self.headers.get("Authorization"))
            status, payload = canned.answer(body)
            data = json.dumps(payload).encode()
            self.send_response(status)
            if status == 503:
                self.send_header("Retry-After", "0")  # the policy honours it: no waiting
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", canned
    httpd.shutdown()
    httpd.server_close()


def request(text: str, seed: int = 1) -> PolicyRequest:
    return PolicyRequest(messages=[{"role": "user", "content": text}], tools=[], seed=seed)


def test_policy_openai_runs_an_eval_with_structured_tool_calls(server, tmp_path, monkeypatch):
    url, canned = server
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    out = tmp_path / "run"
    argv = ["policy=openai", "model=canned-1", f"base_url={url}", "limit=3", f"out={out}"]
    assert main(argv) == EXIT_OK

    episodes = list(read_jsonl(out / "episodes.jsonl"))
    assert len(episodes) == 3
    for t in episodes:
        assert t.policy == "openai:canned-1" and t.termination == Termination.FINAL_ANSWER
        assert [(c.name, c.execution) for c in t.tool_calls] == [("get_current_date", Execution.OK)]
        assert t.messages[2].tool_calls[0].function.name == "get_current_date"
        assert t.final_answer == "All done, thank you for waiting."
        assert t.tokens.completion == 14 and len(t.latency_ms) == 2
    assert len(canned.bodies) == 6 and set(canned.auth) == {"Bearer sk-test"}
    first = canned.bodies[0]
    assert first["model"] == "canned-1" and first["temperature"] == 0.0
    assert {tool["function"]["name"] for tool in first["tools"]} >= {"issue_refund"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["llm_sha"] == f"openai:canned-1@{url}"


def test_transient_failures_are_retried_with_backoff(server):
    url, canned = server
    canned.fail_first = 2
    policy = OpenAICompatPolicy("m", url, backoff_s=5.0, max_retries=3)  # Retry-After wins
    try:
        response = policy.act([request("hello")])[0]
    finally:
        policy.close()
    assert response.message["tool_calls"][0]["function"]["name"] == "get_current_date"
    assert "index" not in response.message["tool_calls"][0]  # only what the env accepts
    assert len(canned.bodies) == 3


def test_a_refused_request_fails_at_once_with_the_servers_message(server):
    url, canned = server
    canned.status = 404
    policy = OpenAICompatPolicy("nope", url, backoff_s=0.01)
    try:
        with pytest.raises(EndpointError, match="HTTP 404: model 'nope' does not exist"):
            policy.act([request("hello")])
    finally:
        policy.close()
    assert len(canned.bodies) == 1


def test_exhausted_retries_are_policy_errors_that_a_resume_plays_again(server, tmp_path):
    url, canned = server
    canned.fail_first = 10_000
    out = tmp_path / "run"
    argv = ["policy=openai", "model=m", f"base_url={url}", "limit=2", f"out={out}"]
    assert main(argv) == EXIT_OK
    episodes = list(read_jsonl(out / "episodes.jsonl"))
    assert [t.termination for t in episodes] == [Termination.POLICY_ERROR] * 2
    assert "HTTP 503" in episodes[0].info["policy_error"]

    canned.fail_first = 0  # the endpoint is back: resuming plays the lost episodes again
    assert main([*argv, "resume=true"]) == EXIT_OK
    episodes = list(read_jsonl(out / "episodes.jsonl"))
    assert [t.termination for t in episodes] == [Termination.FINAL_ANSWER] * 2


def test_a_batch_is_sent_concurrently_and_answered_in_order(server):
    url, canned = server
    policy = OpenAICompatPolicy("m", url, max_concurrency=4)
    batch = [request(f"q{i}", seed=i) for i in range(6)]
    batch[3].messages.append(
        {
            "role": "tool",
            "content": "2026-03-10",
            "name": "get_current_date",
            "tool_call_id": "call_a",
        }
    )
    try:
        responses = policy.act(batch)
    finally:
        policy.close()
    assert [r.text for r in responses].count("All done, thank you for waiting.") == 1
    assert responses[3].text == "All done, thank you for waiting."
    assert all("name" not in m for b in canned.bodies for m in b["messages"] if m["role"] == "tool")
    assert len({b["seed"] for b in canned.bodies}) == 6
