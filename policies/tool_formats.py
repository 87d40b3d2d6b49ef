"""Tool-call syntaxes of real model families, read into the OpenAI message shape.

Contract
--------
`parse_tool_calls(text, tool_format, tools=None) -> (content, calls)` finds the tool calls
a model wrote as text and returns the text left for the user (`content`) and the calls
as OpenAI `tool_calls` entries (`{"id", "type": "function", "function": {"name",
"arguments": JSON text}}`), which `env.advance` accepts inside an assistant message dict.
`to_message(text, tool_format, tools)` builds that dict. Formats (`FORMATS`):

* `hermes`     `<tool_call>{"name": ..., "arguments": {...}}</tool_call>` (Qwen 2.5, Hermes)
* `json`       the whole reply is a JSON call or a list of calls (optionally in a ``` fence):
               `{"name": ..., "arguments"|"parameters": {...}}`
* `llama3`     Llama 3.x: `<|python_tag|>{"name": ..., "parameters": {...}}` (several
               separated by `;`), or the bare JSON form; `<|eom_id|>`/`<|eot_id|>` dropped
* `mistral`    `[TOOL_CALLS] [{"name": ..., "arguments": {...}}, ...]`, or the v11 form
               `[TOOL_CALLS]name[ARGS]{...}`
* `qwen3_xml`  Qwen3-Coder: `<tool_call><function=NAME><parameter=KEY>VALUE</parameter>
               </function></tool_call>`; a value is typed by the tool's JSON schema when
               `tools` are given (string parameters stay text), else read as JSON when it
               parses and kept as text otherwise
* `auto`       the first format whose marker the text holds (mistral; llama3 by its
               python tag or end tokens; qwen3_xml; hermes), else `json`

Nothing here raises on model text: a block that does not parse becomes a call whose
`arguments` is the raw text (the env reports it to the model as malformed JSON), and text
without calls comes back unchanged with no calls. Scanning uses `str.find` and
`json.JSONDecoder.raw_decode` only (linear in the text; no backtracking regex).

`parse_with_template(tokenizer, text, tools)` uses transformers' own response parsing
(`tokenizer.parse_response`) when the tokenizer defines a `response_template`, and
returns None otherwise, so a caller falls back to a named format.

Model text is cleaned by `core.sanitize.clean_text` first (lone surrogates become U+FFFD).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from core.sanitize import clean_text

FORMATS = ("hermes", "json", "llama3", "mistral", "qwen3_xml", "auto")
_DECODER = json.JSONDecoder()
_LLAMA_END = ("<|eom_id|>", "<|eot_id|>", "<|end_of_text|>")
Call = dict[str, Any]


def to_message(text: str, tool_format: str, tools: Sequence[dict[str, Any]] | None = None) -> Call:
    """An assistant message dict: the remaining content plus structured `tool_calls`."""
    content, calls = parse_tool_calls(text, tool_format, tools)
    message: Call = {"role": "assistant", "content": content}
    if calls:
        message["tool_calls"] = calls
    return message


def parse_tool_calls(
    text: str, tool_format: str, tools: Sequence[dict[str, Any]] | None = None
) -> tuple[str, list[Call]]:
    """(content left for the user, OpenAI tool calls) for `text` in `tool_format`."""
    if tool_format not in FORMATS:
        raise ValueError(
            f"tool_format: unknown format {tool_format!r}; known: {', '.join(FORMATS)}"
        )
    text = clean_text(text)
    if tool_format == "auto":
        tool_format = detect_format(text)
    parser = _PARSERS[tool_format]
    content, found = parser(text, _schemas(tools)) if tool_format == "qwen3_xml" else parser(text)
    return content, [_openai_call(name, args, i) for i, (name, args) in enumerate(found)]


def detect_format(text: str) -> str:
    """The format whose marker `text` holds; `json` when none does."""
    if "[TOOL_CALLS]" in text:
        return "mistral"
    if "<|python_tag|>" in text or any(end in text for end in _LLAMA_END):
        return "llama3"
    if "<function=" in text:
        return "qwen3_xml"
    if "<tool_call>" in text:
        return "hermes"
    return "json"


# A parsed call before conversion: (name, arguments as a dict, or raw text if unparseable).
Found = tuple[str, dict[str, Any] | str]


def _openai_call(name: str, arguments: dict[str, Any] | str, index: int) -> Call:
    text = arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
    return {
        "id": f"call_{index}",
        "type": "function",
        "function": {"name": name, "arguments": text},
    }


def _from_object(obj: Any, raw: str) -> Found | None:
    """`{"name": ..., "arguments"|"parameters": {...}}` as a call; None if not call-shaped."""
    if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
        return None
    arguments = obj.get("arguments", obj.get("parameters", {}))
    if isinstance(arguments, str):  # some models double-encode the arguments
        try:
            arguments = json.loads(arguments)
        except ValueError:
            return obj["name"], arguments
    return obj["name"], arguments if isinstance(arguments, dict) else raw


def _json_calls(body: str) -> list[Found] | None:
    """A JSON call, or a list of them, filling `body` (fences allowed); None otherwise."""
    body = _unfence(body.strip())
    try:
        value, end = _DECODER.raw_decode(body)
    except (ValueError, RecursionError):
        return None
    if body[end:].strip():
        return None
    items = value if isinstance(value, list) else [value]
    found = [_from_object(item, body) for item in items]
    if not found or any(f is None for f in found):
        return None
    return found  # type: ignore[return-value]


def _unfence(body: str) -> str:
    if body.startswith("```") and body.endswith("```") and len(body) >= 6:
        inner = body[3:-3]
        newline = inner.find("\n")
        return inner[newline + 1 :] if newline >= 0 and inner[:newline].strip().isalpha() else inner
    return body


def _parse_json(text: str) -> tuple[str, list[Found]]:
    found = _json_calls(text)
    return ("", found) if found else (text, [])


def _between(text: str, opener: str, closer: str) -> tuple[list[str], str]:
    """Bodies of `opener…closer` blocks (an unclosed last one runs to the end) and the rest."""
    bodies, rest, position = [], [], 0
    while (start := text.find(opener, position)) >= 0:
        rest.append(text[position:start])
        end = text.find(closer, start + len(opener))
        stop = len(text) if end < 0 else end
        bodies.append(text[start + len(opener) : stop])
        position = len(text) if end < 0 else end + len(closer)
    rest.append(text[position:])
    return bodies, "".join(rest).strip()


def _parse_hermes(text: str) -> tuple[str, list[Found]]:
    bodies, content = _between(text, "<tool_call>", "</tool_call>")
    found: list[Found] = []
    for body in bodies:
        calls = _json_calls(body)
        found.extend(calls if calls else [("", body.strip())])
    return content, found


def _parse_llama3(text: str) -> tuple[str, list[Found]]:
    for end in _LLAMA_END:
        text = text.replace(end, "")
    tag = text.find("<|python_tag|>")
    if tag < 0:
        return _parse_json(text)
    content, body = text[:tag].strip(), text[tag + len("<|python_tag|>") :].strip()
    found: list[Found] = []
    position = 0
    while position < len(body):  # calls separated by ';' (or whitespace)
        while position < len(body) and body[position] in "; \n\t\r":
            position += 1
        if position >= len(body):
            break
        try:
            value, position = _DECODER.raw_decode(body, position)
        except (ValueError, RecursionError):
            found.append(("", body[position:]))
            break
        found.append(_from_object(value, json.dumps(value)) or ("", json.dumps(value)))
    return content, found


def _parse_mistral(text: str) -> tuple[str, list[Found]]:
    marker = text.find("[TOOL_CALLS]")
    if marker < 0:
        return text, []
    content, body = text[:marker].strip(), text[marker + len("[TOOL_CALLS]") :]
    for end in ("</s>",):
        body = body.replace(end, "")
    if "[ARGS]" in body:  # v11 tokenizer: name[ARGS]{...}[TOOL_CALLS]name[ARGS]{...}
        found: list[Found] = []
        for part in body.split("[TOOL_CALLS]"):
            name, _, args = part.partition("[ARGS]")
            try:
                value = json.loads(args)
            except (ValueError, RecursionError):
                value = args.strip()
            found.append((name.strip(), value if isinstance(value, dict | str) else args.strip()))
        return content, found
    calls = _json_calls(body)
    return content, calls if calls else [("", body.strip())]


def _schemas(tools: Sequence[dict[str, Any]] | None) -> dict[str, dict[str, Any]]:
    """tool name → its parameters' JSON schema `properties`."""
    out: dict[str, dict[str, Any]] = {}
    for tool in tools or ():
        function = tool.get("function", tool)
        params = function.get("parameters") or {}
        out[str(function.get("name"))] = dict(params.get("properties") or {})
    return out


def _parse_qwen3_xml(text: str, schemas: dict[str, dict[str, Any]]) -> tuple[str, list[Found]]:
    bodies, content = _between(text, "<tool_call>", "</tool_call>")
    found: list[Found] = []
    for body in bodies:
        functions, _ = _between(body, "<function=", "</function>")
        if not functions:
            found.append(("", body.strip()))
        for function in functions:
            close = function.find(">")
            name = function[: max(close, 0)].strip()
            params, _ = _between(function[close + 1 :], "<parameter=", "</parameter>")
            arguments: dict[str, Any] = {}
            for param in params:
                key, _, value = param.partition(">")
                prop = schemas.get(name, {}).get(key.strip(), {})
                arguments[key.strip()] = _typed(value.strip("\n"), prop)
            found.append((name, arguments))
    return content, found


def _typed(value: str, prop: dict[str, Any]) -> Any:
    """A parameter's text as the schema's type (strings stay text); JSON when it parses."""
    if prop.get("type") == "string":
        return value
    try:
        return json.loads(value)
    except (ValueError, RecursionError):
        return value


_PARSERS: dict[str, Any] = {
    "hermes": _parse_hermes,
    "json": _parse_json,
    "llama3": _parse_llama3,
    "mistral": _parse_mistral,
    "qwen3_xml": _parse_qwen3_xml,
}


def parse_with_template(
    tokenizer: Any, text: str, tools: Sequence[dict[str, Any]] | None = None
) -> Call | None:
    """transformers' `parse_response` when the tokenizer has a `response_template`, else None."""
    if getattr(tokenizer, "response_template", None) is None:
        return None
    try:
        parsed = tokenizer.parse_response(clean_text(text), prefix="", tools=list(tools or []))
    except Exception:  # a template that does not match the text: fall back to a named format
        return None
    message: Call = {"role": "assistant", "content": parsed.get("content") or ""}
    calls = []
    for i, call in enumerate(parsed.get("tool_calls") or []):
        function = call.get("function", call)
        calls.append(_openai_call(str(function.get("name", "")), function.get("arguments", {}), i))
    if calls:
        message["tool_calls"] = calls
    return message
