"""Parse an assistant message into thought, tool calls and answer.

Two shapes are accepted:

* raw text in the Hermes/Qwen format that HF chat templates emit::

      <think>...</think>
      <tool_call>
      {"name": "check_refund", "arguments": {"customer_id": 42, "order_id": 7}}
      </tool_call>
      <answer>...</answer>

  any number of `<tool_call>` blocks, `<think>` and `<answer>` optional;
* an OpenAI-style message dict with structured `tool_calls`.

Parsing never raises: a block that is not valid JSON, lacks a name, or was cut off
becomes a `ParsedCall` carrying its `ErrorKind` and an agent-readable message. So does a
`</tool_call>` that closes nothing (the opening tag was dropped): the model meant a call,
so it gets an error observation and another turn, rather than its broken call being
taken as the final reply to the customer.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic_core import from_json

from core.records import ErrorKind

CLOSE_CALL = "</tool_call>"
ANSWER_RE = re.compile(r"<answer>(.*?)(?:</answer>|$)", re.DOTALL)


@dataclass(slots=True)
class ParsedCall:
    raw: str
    name: str | None = None
    arguments: dict[str, Any] | None = None
    error_kind: ErrorKind | None = None
    error: str | None = None
    call_id: str | None = None


@dataclass(slots=True)
class ParsedAction:
    text: str  # the whole message as the model wrote it (or its content, for dicts)
    content: str  # what the user would see: text without think/tool_call blocks
    think: str | None = None
    answer: str | None = None
    calls: list[ParsedCall] = field(default_factory=list)


def parse_action(action: str | dict[str, Any]) -> ParsedAction:
    """Parse raw assistant text or an OpenAI-style message dict."""
    if isinstance(action, dict):
        return parse_openai_message(action)
    if not isinstance(action, str):
        return ParsedAction(text=str(action), content=str(action))
    return parse_text(action)


def parse_text(text: str) -> ParsedAction:
    answer = None
    if "<answer>" in text:
        match = ANSWER_RE.search(text)
        answer = match.group(1).strip() if match else None
    if "<tool_call>" not in text and "<think>" not in text and CLOSE_CALL not in text:
        return ParsedAction(text=text, content=text.strip(), answer=answer)
    think: str | None = None
    calls: list[ParsedCall] = []
    pieces: list[str] = []
    position, closed_calls = 0, 0
    while (block := _next_block(text, position)) is not None:  # blocks out, the rest is content
        tag, start, body_start, body_end, end = block
        pieces.append(text[position:start])
        position = end
        if tag == "think":
            think = text[body_start:body_end].strip() if think is None else think
            continue
        raw = text[start:end]
        call = parse_call_json(text[body_start:body_end], raw)
        if body_end == end:
            if call.error_kind is None:
                call.error_kind = ErrorKind.MALFORMED_JSON
                call.error = "ERROR: Tool call was not closed with </tool_call>"
        else:
            closed_calls += 1
        calls.append(call)
    pieces.append(text[position:])
    content = "".join(pieces).strip()
    if text.count(CLOSE_CALL) > closed_calls:
        calls.append(
            ParsedCall(
                text,
                error_kind=ErrorKind.MALFORMED_JSON,
                error="ERROR: Found </tool_call> without an opening <tool_call>; write "
                '<tool_call>{"name": ..., "arguments": {...}}</tool_call>',
            )
        )
    return ParsedAction(text=text, content=content, think=think, answer=answer, calls=calls)


def _next_block(text: str, position: int) -> tuple[str, int, int, int, int] | None:
    """The next `<tool_call>`/`<think>` block: (tag, start, body start, body end, end).

    An unclosed block runs to the end of the text (body end == end)."""
    call_at = text.find("<tool_call>", position)
    think_at = text.find("<think>", position)
    if call_at < 0 and think_at < 0:
        return None
    if think_at < 0 or 0 <= call_at < think_at:
        tag, start, opener, closer = "tool_call", call_at, 11, CLOSE_CALL
    else:
        tag, start, opener, closer = "think", think_at, 7, "</think>"
    body_start = start + opener
    body_end = text.find(closer, body_start)
    if body_end < 0:
        return tag, start, body_start, len(text), len(text)
    return tag, start, body_start, body_end, body_end + len(closer)


def parse_call_json(body: str, raw: str) -> ParsedCall:
    """One `<tool_call>` body: `{"name": ..., "arguments": {...}}`."""
    try:
        data = from_json(body, allow_inf_nan=False)
    except ValueError as exc:
        return ParsedCall(raw, error_kind=ErrorKind.MALFORMED_JSON, error=_json_error(exc))
    if not isinstance(data, dict):
        return ParsedCall(
            raw,
            error_kind=ErrorKind.MALFORMED_JSON,
            error="ERROR: A tool call must be a JSON object with 'name' and 'arguments'",
        )
    return _from_fields(raw, data.get("name"), data.get("arguments", data.get("parameters")))


def parse_openai_message(message: dict[str, Any]) -> ParsedAction:
    content = message.get("content") or ""
    if not isinstance(content, str):
        content = str(content)
    parsed = parse_text(content)
    requests = message.get("tool_calls") or []
    if not isinstance(requests, list):
        requests = [requests]
    for index, request in enumerate(requests):
        raw = json.dumps(request, sort_keys=True, default=str)
        function = request.get("function") if isinstance(request, dict) else None
        if not isinstance(function, dict):
            parsed.calls.append(
                ParsedCall(
                    raw,
                    error_kind=ErrorKind.MALFORMED_JSON,
                    error="ERROR: tool_calls entries need a 'function' object",
                )
            )
            continue
        call = _from_fields(raw, function.get("name"), function.get("arguments"))
        call_id = request.get("id")
        call.call_id = call_id if isinstance(call_id, str) and call_id else f"call_{index}"
        parsed.calls.append(call)
    return parsed


def _from_fields(raw: str, name: Any, arguments: Any) -> ParsedCall:
    if not isinstance(name, str) or not name:
        return ParsedCall(
            raw,
            error_kind=ErrorKind.MISSING_NAME,
            error="ERROR: Tool call has no 'name' (expected a string naming a tool)",
        )
    if arguments is None:
        arguments = {}
    if isinstance(arguments, str):  # OpenAI sends arguments as JSON text
        try:
            arguments = from_json(arguments, allow_inf_nan=False) if arguments.strip() else {}
        except ValueError as exc:
            return ParsedCall(
                raw, name, error_kind=ErrorKind.MALFORMED_JSON, error=_json_error(exc)
            )
    if not isinstance(arguments, dict):
        return ParsedCall(
            raw,
            name,
            error_kind=ErrorKind.MALFORMED_JSON,
            error=f"ERROR: 'arguments' of tool '{name}' must be a JSON object",
        )
    return ParsedCall(raw, name, arguments)


def _json_error(exc: ValueError) -> str:
    return f"ERROR: Malformed JSON in tool call: {exc}"
