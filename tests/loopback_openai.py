"""A loopback OpenAI-compatible server (FastAPI + uvicorn in a thread) that misbehaves on cue.

It answers like a chat-completions endpoint: a structured tool call on the first turn, a
final answer once it has seen a tool result. A `Script` makes it misbehave request by
request: 5xx, 429 with Retry-After, stalls, garbled bodies, lone surrogates, token counts
as strings, refusals (and any request mentioning "fail-me" is refused with 400).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import fastapi
import uvicorn
from fastapi import Request, Response

FINAL = "All done, thank you for waiting."


@dataclass
class Script:
    """How the server answers: `plan[i]` is the mode of request i, then `default`."""

    plan: list[str] = field(default_factory=list)
    default: str = "ok"
    # `GET /v1/models` answers with these entries (vLLM's shape); None: 404, as some servers
    models: list[dict[str, Any]] | None = None
    stall_s: float = 2.0
    bodies: list[dict[str, Any]] = field(default_factory=list)
    auth: list[str | None] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_mode(self, body: dict[str, Any], auth: str | None) -> str:
        with self.lock:
            self.bodies.append(body)
            self.auth.append(auth)
            index = len(self.bodies) - 1
            if any("fail-me" in str(m.get("content")) for m in body["messages"]):
                return "400"
            return self.plan[index] if index < len(self.plan) else self.default


def completion(body: dict[str, Any], mode: str) -> dict[str, Any]:
    """A chat completion: a tool call first, the final answer after a tool result."""
    if any(m["role"] == "tool" for m in body["messages"]):
        content = FINAL + (" \ud800" if mode == "surrogate" else "")
        message: dict[str, Any] = {"role": "assistant", "content": content}
    else:
        arguments = '{"note": "\\ud800"}' if mode == "surrogate" else "{}"
        call = {"name": "get_current_date", "arguments": arguments}
        message = {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"index": 0, "id": "call_a", "type": "function", "function": call}],
        }
    usage: dict[str, Any] = {"prompt_tokens": 100 + len(body["messages"]), "completion_tokens": 7}
    if mode == "usage_strings":
        usage = {"prompt_tokens": "12", "completion_tokens": "many"}
    return {
        "id": "c",
        "object": "chat.completion",
        "choices": [{"message": message}],
        "usage": usage,
    }


def build_app(script: Script) -> Any:
    app = fastapi.FastAPI()  # handler annotations resolve in this module's globals

    def reply(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
        # ensure_ascii: a lone surrogate goes out as the escape "\ud800", as a buggy server's would
        data = json.dumps(payload, ensure_ascii=True).encode()
        return Response(data, status_code=status, headers=headers, media_type="application/json")

    @app.get("/v1/models")
    async def models() -> Response:
        if script.models is None:
            return reply(404, {"error": {"message": "not found"}})
        return reply(200, {"object": "list", "data": script.models})

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        body = await request.json()
        mode = script.next_mode(body, request.headers.get("authorization"))
        with script.lock:
            script.in_flight += 1
            script.max_in_flight = max(script.max_in_flight, script.in_flight)
        try:
            if mode in ("stall", "slow"):
                await asyncio.sleep(script.stall_s)
            if mode in ("500", "503"):
                return reply(int(mode), {"error": {"message": "overloaded, try again"}})
            if mode == "429":
                return reply(429, {"error": {"message": "rate limited"}}, {"Retry-After": "0"})
            if mode in ("400", "404"):
                return reply(int(mode), {"error": {"message": "model 'nope' does not exist"}})
            if mode == "garbage":
                return Response(b"<html>502 upstream</html>", media_type="text/html")
            if mode == "no_choices":
                return reply(200, {"id": "c", "choices": []})
            return reply(200, completion(body, mode))
        finally:
            with script.lock:
                script.in_flight -= 1

    return app


@contextmanager
def serve(script: Script) -> Iterator[str]:
    """Serve `script` on a free loopback port; yields the base URL (`.../v1`)."""
    config = uvicorn.Config(build_app(script), host="127.0.0.1", port=0, log_level="error")
    httpd = uvicorn.Server(config)
    thread = threading.Thread(target=httpd.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not httpd.started and time.monotonic() < deadline:
        time.sleep(0.01)
    port = httpd.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        httpd.should_exit = True
        thread.join(timeout=10)
