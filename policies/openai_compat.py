"""policy=openai: any OpenAI-compatible chat-completions endpoint (vLLM, SGLang, OpenAI, ...).

`python -m evals.run policy=openai model=NAME base_url=http://127.0.0.1:8000/v1`

Contract
--------
* `OpenAICompatPolicy(model, base_url, sampling=Sampling(), seed=0, max_concurrency=8,
  timeout_s=60, connect_timeout_s=10, max_retries=4, backoff_s=0.5, max_backoff_s=30,
  budget_s=600, timeout_retries=1,
  tool_format="openai")` talks to `POST {base_url}/chat/completions` with httpx. The key
  comes from `api_key` or the `OPENAI_API_KEY` environment variable (sent as
  `Authorization: Bearer ...`), if set.
* `act(requests)` sends one request per episode, at most `max_concurrency` in flight (a
  thread pool over one pooled httpx client), and returns the responses in request order.
  Each body holds the model, the messages, the episode's tool schemas as `tools=` (when
  it has any), `Sampling.openai_params()` (temperature, top_p, `max_tokens` =
  `max_turn_tokens`, and `top_k` when set) and a per-request `seed` (a hash of the
  policy seed, the episode seed and the turn; honoured by servers that support it).
* **Retries**: HTTP 408/409/429/5xx, timeouts, dropped connections and bodies that are
  not a chat completion are retried up to `max_retries` times, waiting
  `backoff_s * 2**attempt` (at most `max_backoff_s`) or the server's `Retry-After`
  seconds, within `budget_s` per request. A read timeout is retried at most
  `timeout_retries` times (default 1): servers that keep generating for a client that
  gave up (transformers serve does) would otherwise queue every retry behind the stalled
  work. Any other status (400, 401, 404, ...) raises `EndpointError` at once with the
  status and the server's message.
* **Infrastructure, not behaviour**: a request that still fails raises `EndpointError`
  from `act`; the rollout loop then ends that episode with `Termination.POLICY_ERROR`
  (an infrastructure failure: left out of every metric, counted apart, played again on
  resume). The batch-mates of a failed request keep their answers: when the rollout
  re-asks them one by one, they are answered from the batch's memo, not sent again.
* **Hostile replies are sanitised at this boundary**: lone surrogates in any string
  become U+FFFD (also inside tool-call arguments), token counts are integers or absent
  (`"12"` is 12, `"many"` or `-3` is absent), content given as a list of parts is joined,
  and a reply that is not a chat completion is an `EndpointError`. Nothing a server sends
  can make a trajectory unsaveable.
* **Tool calls**: structured `tool_calls` are kept in the OpenAI shape the env validates
  (`id`, `type`, `function.name`, `function.arguments` as JSON text). With
  `tool_format` other than `openai` (see `policies.tool_formats`: hermes, json, llama3,
  mistral, qwen3_xml, auto), calls the model wrote as text in `content` are parsed into
  that shape too, for servers that do not parse them.
* `prompt_tokens`/`completion_tokens` come from `usage`; `latency_ms` is the request's
  wall time including retries. `stats` counts requests, retries and failures.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field

from core.policy import PolicyRequest, PolicyResponse
from core.sampling import Sampling
from core.sanitize import clean_text, sanitize
from policies.tool_formats import FORMATS, parse_tool_calls

RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
OPENAI_FORMAT = "openai"  # trust the server's structured tool_calls only


class EndpointError(RuntimeError):
    """The endpoint refused a request, kept failing, or sent back no chat completion."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


# what `GET /models` says about a served model that stays put across server restarts
# (vLLM: the weights' path and the context length; `created` and permission ids do not)
SERVED_MODEL_FIELDS = ("id", "owned_by", "root", "parent", "max_model_len")


def auth_headers(api_key: str | None) -> dict[str, str]:
    """`Authorization: Bearer ...` from `api_key`, else `OPENAI_API_KEY`; none without a key."""
    key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
    return {"Authorization": f"Bearer {key}"} if key else {}


def served_model(
    base_url: str, model: str, *, api_key: str | None = None, timeout_s: float = 5.0
) -> dict[str, Any] | None:
    """The endpoint's own description of `model` (`GET {base_url}/models`), stable fields
    only; None when the server does not say (no such route, no such entry, unreachable)."""
    try:
        answer = httpx.get(
            base_url.rstrip("/") + "/models", headers=auth_headers(api_key), timeout=timeout_s
        )
        entries = answer.json().get("data") if answer.status_code == 200 else None
    except (httpx.HTTPError, ValueError, AttributeError):
        return None
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and entry.get("id") == model:
            return {k: entry[k] for k in SERVED_MODEL_FIELDS if entry.get(k) is not None}
    return None


class EndpointOptions(BaseModel):
    """The `endpoint:` block of an eval config: how hard to try a server."""

    model_config = ConfigDict(extra="forbid")
    timeout_s: float = Field(default=60.0, gt=0)
    connect_timeout_s: float = Field(default=10.0, gt=0)
    max_retries: int = Field(default=4, ge=0)
    backoff_s: float = Field(default=0.5, ge=0)
    max_backoff_s: float = Field(default=30.0, ge=0)
    budget_s: float = Field(default=600.0, gt=0)
    timeout_retries: int = Field(default=1, ge=0)
    tool_format: str = OPENAI_FORMAT


@dataclass
class EndpointStats:
    requests: int = 0  # HTTP attempts sent
    retries: int = 0
    failures: int = 0  # requests that gave up (infrastructure failures)


class OpenAICompatPolicy:
    def __init__(
        self,
        model: str,
        base_url: str,
        *,
        sampling: Sampling | None = None,
        seed: int = 0,
        max_concurrency: int = 8,
        timeout_s: float = 60.0,
        connect_timeout_s: float = 10.0,
        max_retries: int = 4,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        budget_s: float = 600.0,
        timeout_retries: int = 1,
        tool_format: str = OPENAI_FORMAT,
        api_key: str | None = None,
    ) -> None:
        if tool_format != OPENAI_FORMAT and tool_format not in FORMATS:
            known = ", ".join([OPENAI_FORMAT, *FORMATS])
            raise ValueError(f"tool_format: unknown format {tool_format!r}; known: {known}")
        self.name = f"openai:{model}"
        self.model, self.url = model, base_url.rstrip("/") + "/chat/completions"
        self.sampling = (sampling or Sampling()).openai_params()
        self.seed, self.max_retries, self.tool_format = seed, max_retries, tool_format
        self.backoff_s, self.max_backoff_s, self.budget_s = backoff_s, max_backoff_s, budget_s
        self.timeout_retries = timeout_retries
        headers = auth_headers(api_key)
        workers = max(1, max_concurrency)
        self.client = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
            limits=httpx.Limits(max_connections=workers, max_keepalive_connections=workers),
        )
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="openai")
        self.stats = EndpointStats()
        self._lock = threading.Lock()
        self._memo: dict[tuple[Any, ...], PolicyResponse | EndpointError] = {}

    def act(self, requests: Sequence[PolicyRequest]) -> list[PolicyResponse]:
        if len(requests) == 1 and (answer := self._memo.pop(_memo_key(requests[0]), None)):
            if isinstance(answer, EndpointError):
                raise answer
            return [answer]
        self._memo.clear()  # a new batch: the memo of the last failed one is stale
        outcomes = list(self.pool.map(self._outcome, requests))
        failed = next((o for o in outcomes if isinstance(o, EndpointError)), None)
        if failed is None:
            return outcomes  # type: ignore[return-value]
        # The rollout re-asks each request of a failed batch alone: answer from the memo.
        self._memo = {_memo_key(r): o for r, o in zip(requests, outcomes, strict=True)}
        raise failed

    def _outcome(self, request: PolicyRequest) -> PolicyResponse | EndpointError:
        try:
            return self.complete(request)
        except EndpointError as exc:
            with self._lock:
                self.stats.failures += 1
            return exc

    def complete(self, request: PolicyRequest) -> PolicyResponse:
        """One chat completion, retried on transient failures within the budget."""
        body = self.body(request)
        start, timeouts = time.perf_counter(), 0
        for attempt in range(self.max_retries + 1):
            with self._lock:
                self.stats.requests += 1
                self.stats.retries += attempt > 0
            try:
                reply = self.client.post(self.url, json=body)
                return self._parse(reply, (time.perf_counter() - start) * 1000.0)
            except httpx.HTTPError as exc:  # timeouts, refused or dropped connections
                timeouts += isinstance(exc, httpx.ReadTimeout)
                retryable = timeouts <= self.timeout_retries
                error = EndpointError(
                    f"{self.url}: {type(exc).__name__}: {exc}", retryable=retryable
                )
                wait = None
            except EndpointError as exc:
                error, wait = exc, _retry_after(reply)
            spent = time.perf_counter() - start
            backoff = self.backoff_s * 2**attempt
            wait = min(self.max_backoff_s, backoff if wait is None else wait)
            if not error.retryable or attempt == self.max_retries:
                raise error
            if spent + wait > self.budget_s:
                raise EndpointError(f"{error} (retry budget of {self.budget_s:g} s spent)")
            time.sleep(wait)
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

    def _parse(self, reply: httpx.Response, latency_ms: float) -> PolicyResponse:
        """A 200 reply as a response; anything else as an `EndpointError`."""
        if reply.status_code != 200:
            retryable = reply.status_code in RETRY_STATUS
            text = f"{self.url}: HTTP {reply.status_code}: {_error_text(reply)}"
            raise EndpointError(text, retryable=retryable)
        try:
            data = sanitize(reply.json()).value
            message = data["choices"][0]["message"]
            if not isinstance(message, dict):
                raise TypeError("message is not an object")
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            snippet = clean_text(reply.text[:300])
            raise EndpointError(
                f"{self.url}: not a chat completion ({exc}): {snippet!r}", retryable=True
            ) from exc
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        content = _content(message.get("content"))
        raw_calls = message.get("tool_calls")
        calls = [
            _tool_call(call, i)
            for i, call in enumerate(raw_calls if isinstance(raw_calls, list) else [])
        ]
        if not calls and self.tool_format != OPENAI_FORMAT:
            content, calls = parse_tool_calls(content, self.tool_format)
        assistant: dict[str, Any] = {"role": "assistant", "content": content}
        if calls:
            assistant["tool_calls"] = calls
        return PolicyResponse(
            text=content,
            message=assistant,
            prompt_tokens=_count(usage.get("prompt_tokens")),
            completion_tokens=_count(usage.get("completion_tokens")),
            latency_ms=latency_ms,
        )

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        self.client.close()


def _memo_key(request: PolicyRequest) -> tuple[Any, ...]:
    return (request.env_id, request.scenario_id, request.seed, request.turn, len(request.messages))


def _outgoing(message: dict[str, Any]) -> dict[str, Any]:
    """A conversation message as the chat-completions API takes it."""
    if message.get("role") == "tool":
        return {k: v for k, v in message.items() if k != "name"}
    return message


def _retry_after(reply: httpx.Response) -> float | None:
    """The server's `Retry-After` in seconds (delta form), if it sent a usable one."""
    try:
        wait = float(reply.headers.get("retry-after", ""))
    except ValueError:
        return None
    return wait if wait >= 0 else None


def _error_text(reply: httpx.Response) -> str:
    try:
        error = reply.json().get("error", reply.text)
    except (ValueError, AttributeError):
        return clean_text(reply.text[:500])
    text = str(error.get("message", error) if isinstance(error, dict) else error)
    return clean_text(text[:500])


def _content(value: Any) -> str:
    """Message content as text: a string, None, or a list of `{"type": "text"}` parts."""
    if value is None:
        return ""
    if isinstance(value, list):
        parts = [p.get("text") for p in value if isinstance(p, dict)]
        return "".join(p for p in parts if isinstance(p, str))
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _count(value: Any) -> int | None:
    """A token count as an int, or None when the server sent no usable number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    if isinstance(value, int | float) and value >= 0 and float(value).is_integer():
        return int(value)
    return None


def _tool_call(call: Any, index: int) -> dict[str, Any]:
    """Keep the fields the env's `ToolCallRequest` accepts; arguments as clean JSON text."""
    call = call if isinstance(call, dict) else {}
    function = call.get("function") if isinstance(call.get("function"), dict) else {}
    arguments = function.get("arguments", "{}")
    if isinstance(arguments, str):
        # Escapes such as "\ud800" in the text would decode to lone surrogates; text that
        # is not JSON is kept: the env reports it to the model as a malformed call.
        with contextlib.suppress(ValueError, RecursionError):
            arguments = json.dumps(sanitize(json.loads(arguments)).value, ensure_ascii=False)
    else:
        arguments = json.dumps(arguments, ensure_ascii=False)
    name = function.get("name")
    return {
        "id": str(call.get("id") or f"call_{index}"),
        "type": "function",
        "function": {"name": name if isinstance(name, str) else "", "arguments": arguments},
    }
