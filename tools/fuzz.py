"""Grammar-based fuzzing of assistant turns: near-valid tool calls from an env's tool schemas.

`random_action(rng, schemas, hints=(), max_length=16384)` returns one assistant action, raw
text (Hermes `<tool_call>` blocks, `<think>`, `<answer>`) or an OpenAI-style message dict,
built the way a half-trained model goes wrong:

* a call to a declared tool with arguments generated from its JSON schema (values taken
  from `hints`, numbers the conversation mentioned, so some calls succeed), then mutated:
  an argument dropped, added or given another type, the name misspelt, the JSON text cut
  off, a character flipped, a brace or tag lost;
* hostile values only a dict built in Python can hold (non-string keys, cycles, 2,000-deep
  nesting, 5,000-digit integers, bytes, NaN, objects) and hostile text (lone surrogates,
  NUL, bidi controls, unclosed tags);
* pathological text for super-linear parsers: one snippet repeated up to `max_length`
  (`<tool_call></tool_call>`, `<think></think>`, `<answer>` + newlines, ` ok`, ...).

Text actions never exceed `max_length` characters (the action space); dict actions keep
their text (content and arguments strings) within it. Deterministic for a given `rng`
state. Used by `tests/test_fuzz.py` (hypothesis drives the rng) and `bench/fuzz.py`.
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Sequence
from typing import Any

WORDS = ("order", "refund", "lost", "please", "Alice Smith", "kettle", "ok", "42", "?", "é", "😀")
HOSTILE_TEXT = (
    "\ud800",
    "\udfff\ud800",
    "\x00",
    "\u202e",
    "\ufeff",
    "\r\n",
    "<tool_call>",
    "</tool_call>",
    "<think>",
    "</think>",
    "<answer>",
    "</answer>",
    '{"name": ',
    "\\u0000",
    '"\\ud800"',
)
REPEATED = (
    "<tool_call></tool_call>",
    "<tool_call>",
    "</tool_call>",
    "<think></think>",
    "<think>",
    "<answer>\n",
    "\n",
    " ok",
    "? ok",
    " order",
    "order number",
    "9",
    "{",
    "[",
    '{"a":',
    "<tool_call>{}</tool_call>",
)
MUTATIONS = ("none", "drop", "extra", "retype", "rename", "cut", "flip", "unclose", "unopen")


def random_action(
    rng: random.Random,
    schemas: Sequence[dict[str, Any]],
    hints: Sequence[int | str] = (),
    max_length: int = 16384,
    pathological: float = 0.08,
) -> str | dict[str, Any]:
    """One fuzzed assistant turn (see the module docstring); `pathological` is the share
    of max-length repeated-snippet texts (the costly ones to play)."""
    roll = rng.random()
    if roll < pathological:
        return _repeated(rng, max_length)
    if roll < pathological + 0.37:
        return _dict_action(rng, schemas, hints, max_length)
    return _text_action(rng, schemas, hints, max_length)


def _text_action(
    rng: random.Random, schemas: Sequence[dict[str, Any]], hints: Sequence[int | str], limit: int
) -> str:
    parts: list[str] = []
    if rng.random() < 0.3:
        parts.append(f"<think>{_words(rng)}</think>")
    for _ in range(rng.choice((0, 1, 1, 1, 2, 3))):
        name, arguments = _call(rng, schemas, hints)
        parts.append(_wrap(rng, _mutated_json(rng, {"name": name, "arguments": arguments})))
    if not parts or rng.random() < 0.3:
        parts.append(_words(rng))
    if rng.random() < 0.15:
        parts.append(f"<answer>{rng.choice(('42', '-3.5', _words(rng), ''))}</answer>")
    if rng.random() < 0.1:
        parts.insert(rng.randrange(len(parts) + 1), rng.choice(HOSTILE_TEXT))
    return "\n".join(parts)[:limit]


def _dict_action(
    rng: random.Random, schemas: Sequence[dict[str, Any]], hints: Sequence[int | str], limit: int
) -> dict[str, Any]:
    requests: list[Any] = []
    for index in range(rng.choice((0, 1, 1, 2))):
        name, arguments = _call(rng, schemas, hints)
        if rng.random() < 0.2:
            arguments = _hostile_value(rng)
        elif rng.random() < 0.6:
            arguments = _mutated_json(rng, arguments)[: limit // 2]
        function: Any = {"name": name, "arguments": arguments}
        request: Any = {"id": f"call_{index}", "type": "function", "function": function}
        if rng.random() < 0.05:
            request = rng.choice(({"id": "x"}, "not a dict", None, {"function": "text"}))
        requests.append(request)
    content: Any = _words(rng) if rng.random() < 0.5 else None
    if rng.random() < 0.05:
        content = rng.choice((_hostile_value(rng), rng.choice(HOSTILE_TEXT), 7, ["part"]))
    message: dict[Any, Any] = {"role": "assistant", "content": content}
    if requests or rng.random() < 0.5:
        message["tool_calls"] = requests if rng.random() < 0.95 else _hostile_value(rng)
    return message


def _call(
    rng: random.Random, schemas: Sequence[dict[str, Any]], hints: Sequence[int | str]
) -> tuple[str, dict[str, Any]]:
    if not schemas or rng.random() < 0.05:
        return rng.choice(("lookup", "", "get_order ", "calculator\ud800")), {}
    function = rng.choice(schemas).get("function", {})
    parameters = function.get("parameters", {})
    properties: dict[str, Any] = parameters.get("properties", {})
    arguments = {key: _value(rng, spec, hints) for key, spec in properties.items()}
    mutation = rng.choice(MUTATIONS)
    if mutation == "drop" and arguments:
        arguments.pop(rng.choice(sorted(arguments)))
    elif mutation == "extra":
        arguments[rng.choice(("extra", "customer_name", "id"))] = _value(rng, {}, hints)
    elif mutation == "retype" and arguments:
        arguments[rng.choice(sorted(arguments))] = _wrong_value(rng)
    name = function.get("name", "")
    if mutation == "rename":
        name = rng.choice((name.upper(), name + "s", name[:-1], name.replace("_", "-")))
    return name, arguments


def _value(rng: random.Random, spec: dict[str, Any], hints: Sequence[int | str]) -> Any:
    kind = spec.get("type")
    if spec.get("enum"):
        return rng.choice(spec["enum"])
    numbers = [h for h in hints if isinstance(h, int)]
    if kind == "integer":
        return rng.choice(numbers) if numbers and rng.random() < 0.7 else rng.randint(-5, 2000)
    if kind == "number":
        return rng.choice((rng.uniform(-100, 1000), float(rng.randint(0, 100))))
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "array":
        return [_value(rng, spec.get("items", {}), hints) for _ in range(rng.randint(0, 3))]
    if kind == "string" or kind is None:
        if rng.random() < 0.4:
            return rng.choice(("1 + 2", "(3 + 2) * 4", "10 / 4", "2 ** 10", "1/0", "2 ** 99"))
        texts = [h for h in hints if isinstance(h, str)]
        return rng.choice(texts) if texts and rng.random() < 0.3 else _words(rng)
    return None


def _wrong_value(rng: random.Random) -> Any:
    return rng.choice(("Alice Smith", "42", 4.5, True, None, [], {}, -1, 10**20, "", "1e309"))


def _mutated_json(rng: random.Random, value: Any) -> str:
    text = json.dumps(value, ensure_ascii=rng.random() < 0.5)
    mutation = rng.random()
    if mutation < 0.08 and text:
        return text[: rng.randrange(len(text))]
    if mutation < 0.16 and text:
        at = rng.randrange(len(text))
        return text[:at] + rng.choice(('"', "}", "{", ",", "\\", "\ud800", "")) + text[at + 1 :]
    if mutation < 0.2:
        return text.replace('"', "'")
    return text


def _wrap(rng: random.Random, body: str) -> str:
    roll = rng.random()
    if roll < 0.05:
        return f"<tool_call>{body}"
    if roll < 0.08:
        return f"{body}</tool_call>"
    return f"<tool_call>\n{body}\n</tool_call>"


def _repeated(rng: random.Random, limit: int) -> str:
    unit = rng.choice(REPEATED)
    head = rng.choice(("", "?", "<answer>", "<tool_call>", "Is that ok?"))
    return (head + unit * (limit // len(unit) + 1))[:limit]


def _words(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 12)))


def _hostile_value(rng: random.Random) -> Any:
    kind = rng.randrange(8)
    if kind == 0:
        loop: dict[str, Any] = {}
        loop["self"] = loop
        return loop
    if kind == 1:
        root: list[Any] = []
        node = root
        for _ in range(2000):
            node.append([])
            node = node[0]
        return {"a": root}
    if kind == 2:
        limit = sys.get_int_max_str_digits()
        sys.set_int_max_str_digits(0)
        try:
            return {"n": 10**5000}
        finally:
            sys.set_int_max_str_digits(limit)
    return rng.choice(
        (
            {1: 2},
            {"b": b"\xff\x00"},
            {"x": float("nan"), "y": float("inf")},
            {"s": {1, 2}, "t": (1, 2)},
            {"o": object()},
            {"k\ud800": "v\udfff"},
        )
    )
