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

Hostile input is cleaned at this boundary (`core.sanitize`): lone surrogates in the text
become U+FFFD; an OpenAI-style dict built in Python with non-string keys, cycles, deep
nesting, huge integers, bytes or objects gives an error call naming the problem, never an
exception. Parsed arguments are fresh copies, never the caller's dicts. Parsing is linear
in the length of the text (no backtracking regex), and a turn reads at most
`MAX_CALLS_PER_TURN` calls: the rest become one error call.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic_core import from_json

from core.records import ErrorKind
from core.sanitize import MAX_DEPTH, clean_text, sanitize

OPEN_CALL, CLOSE_CALL = "<tool_call>", "</tool_call>"
OPEN_THINK, CLOSE_THINK = "<think>", "</think>"
OPEN_ANSWER, CLOSE_ANSWER = "<answer>", "</answer>"
EXPONENT = re.compile("[0-9][eE]")  # a number's exponent (or text that looks like one)
MAX_CALLS_PER_TURN = 64
MAX_VALUES_PER_CALL = 10_000  # JSON values in one Python-built call (text is bounded by length)


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
    # For dicts: the OpenAI `tool_calls` entries as plain JSON (sanitised fresh copies).
    requests: list[Any] = field(default_factory=list)


def parse_action(action: str | dict[str, Any]) -> ParsedAction:
    """Parse raw assistant text or an OpenAI-style message dict. Never raises."""
    if isinstance(action, dict):
        return parse_openai_message(action)
    return parse_text(_as_text(action))


def parse_text(text: str) -> ParsedAction:
    text = clean_text(text)
    think: str | None = None
    calls: list[ParsedCall] = []
    pieces: list[str] = []
    position, closed_calls, size = 0, 0, len(text)
    # Blocks are taken out left to right; each tag's next position is searched again only
    # once the scan has passed it, so many blocks do not rescan the text to its end.
    think_at, call_at = text.find(OPEN_THINK), text.find(OPEN_CALL)
    while think_at >= 0 or call_at >= 0:
        is_think = call_at < 0 or 0 <= think_at < call_at
        start = think_at if is_think else call_at
        opener, closer = (OPEN_THINK, CLOSE_THINK) if is_think else (OPEN_CALL, CLOSE_CALL)
        body_start = start + len(opener)
        body_end = text.find(closer, body_start)
        end = size if body_end < 0 else body_end + len(closer)  # unclosed: runs to the end
        body_end = size if body_end < 0 else body_end
        pieces.append(text[position:start])
        position = end
        if is_think:
            think = text[body_start:body_end].strip() if think is None else think
        else:
            call = _call_from_body(text[body_start:body_end], text[start:end])
            if body_end == end:
                if call.error_kind is None:
                    call.error_kind = ErrorKind.MALFORMED_JSON
                    call.error = "ERROR: Tool call was not closed with </tool_call>"
            else:
                closed_calls += 1
            calls.append(call)
        if 0 <= think_at < position:
            think_at = text.find(OPEN_THINK, position)
        if 0 <= call_at < position:
            call_at = text.find(OPEN_CALL, position)
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
    return ParsedAction(
        text=text, content=content, think=think, answer=_answer(text), calls=_capped(calls)
    )


def _answer(text: str) -> str | None:
    """The text after the first `<answer>`, up to `</answer>` or the end, stripped."""
    _, opened, rest = text.partition(OPEN_ANSWER)
    return rest.partition(CLOSE_ANSWER)[0].strip() if opened else None


def _plainly_json(body: str) -> bool:
    """True when JSON parsed from `body` cannot need sanitising (the common, short call):
    too short for an over-long integer, a float too long to be finite, or too many values;
    too few brackets to nest past `MAX_DEPTH`; no exponent (`1e400` parses to infinity).
    (A `\\u` escape of a lone surrogate is malformed JSON to `from_json`.)"""
    return (
        len(body) <= 300
        and body.count("[") + body.count("{") < MAX_DEPTH
        and EXPONENT.search(body) is None
    )


def parse_call_json(body: str, raw: str) -> ParsedCall:
    """One `<tool_call>` body: `{"name": ..., "arguments": {...}}`."""
    return _call_from_body(clean_text(body), clean_text(raw))


def _call_from_body(body: str, raw: str) -> ParsedCall:
    """`parse_call_json` for text already cleaned (slices of a cleaned message)."""
    try:
        data = from_json(body, allow_inf_nan=False)
    except ValueError as exc:
        return ParsedCall(raw, error_kind=ErrorKind.MALFORMED_JSON, error=_json_error(exc))
    if not _plainly_json(body):
        checked = sanitize(data, max_nodes=MAX_VALUES_PER_CALL)
        if checked.problem is not None:
            return _not_plain_json(raw, None, checked.problem)
        data = checked.value
    if not isinstance(data, dict):
        return ParsedCall(
            raw,
            error_kind=ErrorKind.MALFORMED_JSON,
            error="ERROR: A tool call must be a JSON object with 'name' and 'arguments'",
        )
    return _from_fields(raw, data.get("name"), data.get("arguments", data.get("parameters")))


def parse_openai_message(message: dict[str, Any]) -> ParsedAction:
    content = message.get("content")
    parsed = parse_text("" if content is None else _as_text(content))
    requests = message.get("tool_calls")
    if requests is None:
        requests = []
    elif not isinstance(requests, list | tuple):
        requests = [requests]
    read = requests[:MAX_CALLS_PER_TURN]
    for index, request in enumerate(read):
        checked = sanitize(request, max_nodes=MAX_VALUES_PER_CALL)
        request = checked.value
        parsed.requests.append(request)
        raw = json.dumps(request, sort_keys=True)
        if checked.problem is not None:
            parsed.calls.append(_not_plain_json(raw, None, checked.problem))
            continue
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
    parsed.calls = _capped(parsed.calls, unread=len(requests) - len(read))
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
        checked = sanitize(arguments, max_nodes=MAX_VALUES_PER_CALL)
        if checked.problem is not None:
            return _not_plain_json(raw, name, f"{checked.problem} in 'arguments'")
        arguments = checked.value
    if not isinstance(arguments, dict):
        return ParsedCall(
            raw,
            name,
            error_kind=ErrorKind.MALFORMED_JSON,
            error=f"ERROR: 'arguments' of tool '{name}' must be a JSON object",
        )
    return ParsedCall(raw, name, arguments)


def _capped(calls: list[ParsedCall], unread: int = 0) -> list[ParsedCall]:
    """The first `MAX_CALLS_PER_TURN` calls, then one error call counting them all
    (`unread`: calls past the cap that were not even parsed)."""
    count = len(calls) + unread
    if count <= MAX_CALLS_PER_TURN:
        return calls
    return [
        *calls[:MAX_CALLS_PER_TURN],
        ParsedCall(
            f"<{count} tool calls>",
            error_kind=ErrorKind.MALFORMED_JSON,
            error=f"ERROR: {count} tool calls in one turn; only the first {MAX_CALLS_PER_TURN} "
            "were read, the rest were not run",
        ),
    ]


def _not_plain_json(raw: str, name: str | None, problem: str) -> ParsedCall:
    return ParsedCall(
        raw,
        name,
        error_kind=ErrorKind.MALFORMED_JSON,
        error=f"ERROR: Tool call is not plain JSON: {problem}",
    )


def _as_text(value: Any) -> str:
    """Text for an action or content that is not a plain string (never raises)."""
    if isinstance(value, str):
        return clean_text(str.__str__(value))
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode(errors="replace")  # UTF-8
    checked = sanitize(value, max_nodes=MAX_VALUES_PER_CALL).value
    return checked if isinstance(checked, str) else json.dumps(checked)


def _json_error(exc: ValueError) -> str:
    return f"ERROR: Malformed JSON in tool call: {exc}"
