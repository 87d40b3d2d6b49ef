"""policy=openai: any OpenAI-compatible chat-completions endpoint (vLLM, SGLang, OpenAI, ...).

`python -m evals.run policy=openai model=NAME base_url=http://127.0.0.1:8000/v1`

Contract
--------
* `OpenAICompatPolicy(model, base_url, temperature=0.0, top_p=1.0, max_new_tokens=512,
  seed=0, max_concurrency=8, timeout_s=60, max_retries=4, backoff_s=0.5)` talks to
  `POST {base_url}/chat/completions` with httpx. The key comes from `api_key` or the
  `OPENAI_API_KEY` environment variable (sent as `Authorization: Bearer ...`), if set.
* `act(requests)` sends one request per episode, concurrently through a thread pool of
  at most `max_concurrency` workers, and returns the responses in request order. Each body
  holds the model, the messages, the episode's tool schemas as `tools=` (when it has any),
  temperature, top_p, `max_tokens` and a per-request `seed` (a hash of the policy seed,
  the episode seed and the turn; honoured by servers that support it).
* **Retries**: HTTP 5xx and 429, timeouts and connection errors are retried up to
  `max_retries` times, waiting `backoff_s * 2**attempt` seconds (or the server's
  `Retry-After`, at most 30 s). Any other status, or a body that is not a chat
  completion, raises `EndpointError` at once with the status and the server's message.
  An error ends the batch's episodes as policy errors in the rollout (infrastructure,
  not behaviour).
* The response's `message` is the assistant message with structured `tool_calls` kept in
  the OpenAI shape the env validates (`id`, `type`, `function.name`, `function.arguments`
  as JSON text); `text` is its content; `prompt_tokens`/`completion_tokens` come from
  `usage`, `latency_ms` is the request's wall time including retries.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from core.policy import PolicyRequest, PolicyResponse

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
MAX_WAIT_S = 30.0


class EndpointError(RuntimeError):
    """The endpoint refused a request or sent back something that is not a chat completion."""


class OpenAICompatPolicy:
    def __init__(
        self,
        model: str,
        base_url: str,
        *,
        temperature: float = 0.0,
        top_p: float = 1.0,
        max_new_tokens: int = 512,
        seed: int = 0,
        max_concurrency: int = 8,
        timeout_s: float = 60.0,
        max_retries: int = 4,
        backoff_s: float = 0.5,
        api_key: str | None = None,
    ) -> None:
        self.name = f"openai:{model}"
        self.model, self.url = model, base_url.rstrip("/") + "/chat/completions"
        self.sampling = {"temperature": temperature, "top_p": top_p, "max_tokens": max_new_tokens}
        self.seed, self.max_retries, self.backoff_s = seed, max_retries, backoff_s
        key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.client = httpx.Client(headers=headers, timeout=timeout_s)
        self.pool = ThreadPoolExecutor(max_workers=max(1, max_concurrency))

    def act(self, requests: Sequence[PolicyRequest]) -> list[PolicyResponse]:
        return list(self.pool.map(self.complete, requests))

    def complete(self, request: PolicyRequest) -> PolicyResponse:
        """One chat completion, retried on transient failures."""
        body = self.body(request)
        start = time.perf_counter()
        for attempt in range(self.max_retries + 1):
            last = attempt == self.max_retries
            try:
                reply = self.client.post(self.url, json=body)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                if last:
                    raise EndpointError(f"{self.url}: {type(exc).__name__}: {exc}") from exc
                time.sleep(self.backoff_s * 2**attempt)
                continue
            if reply.status_code in RETRY_STATUS and not last:
                time.sleep(_wait(reply, self.backoff_s * 2**attempt))
                continue
            if reply.status_code != 200:
                raise EndpointError(f"{self.url}: HTTP {reply.status_code}: {_error_text(reply)}")
            return _parse(reply, (time.perf_counter() - start) * 1000.0, self.url)
        raise AssertionError("unreachable")  # the last attempt returns or raises

    def body(self, request: PolicyRequest) -> dict[str, Any]:
        seed_text = f"{self.seed}|{request.seed}|{request.turn}".encode()
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [_outgoing(m) for m in request.messages],
            **self.sampling,
            "seed": int.from_bytes(hashlib.sha256(seed_text).digest()[:4], "big") >> 1,
        }
        if request.tools:
            body["tools"] = request.tools
        return body

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        self.client.close()


def _outgoing(message: dict[str, Any]) -> dict[str, Any]:
    """A conversation message as the chat-completions API takes it."""
    if message.get("role") == "tool":
        return {k: v for k, v in message.items() if k != "name"}
    return message


def _wait(reply: httpx.Response, default: float) -> float:
    try:
        return min(MAX_WAIT_S, float(reply.headers.get("retry-after", default)))
    except ValueError:
        return default


def _error_text(reply: httpx.Response) -> str:
    try:
        error = reply.json().get("error", reply.text)
    except ValueError:
        return reply.text[:500]
    return str(error.get("message", error) if isinstance(error, dict) else error)[:500]


def _parse(reply: httpx.Response, latency_ms: float, url: str) -> PolicyResponse:
    try:
        data = reply.json()
        message = data["choices"][0]["message"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise EndpointError(f"{url}: not a chat completion: {reply.text[:300]!r}") from exc
    usage = data.get("usage") or {}
    content = message.get("content") or ""
    assistant: dict[str, Any] = {"role": "assistant", "content": content}
    calls = [_tool_call(call, i) for i, call in enumerate(message.get("tool_calls") or [])]
    if calls:
        assistant["tool_calls"] = calls
    return PolicyResponse(
        text=content,
        message=assistant,
        prompt_tokens=usage.get("prompt_tokens"),
        completion_tokens=usage.get("completion_tokens"),
        latency_ms=latency_ms,
    )


def _tool_call(call: dict[str, Any], index: int) -> dict[str, Any]:
    """Keep the fields the env's `ToolCallRequest` accepts; arguments as JSON text."""
    function = call.get("function") or {}
    arguments = function.get("arguments", "{}")
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments)
    return {
        "id": str(call.get("id") or f"call_{index}"),
        "type": "function",
        "function": {"name": str(function.get("name", "")), "arguments": arguments},
    }
