"""The one sanitising boundary for text and JSON-like values coming in from outside.

Model output, endpoint replies and tool results are hostile by default: Python strings may
hold lone surrogates (which no UTF-8 writer accepts), and dicts built in Python may hold
non-string keys, reference cycles, thousands of nesting levels, integers too long to
print, bytes or arbitrary objects. Everything that crosses into a record goes through here.

* `clean_text(text)` -> the same text with every lone surrogate replaced by U+FFFD
  (one per code unit). Valid text comes back unchanged (the same object).
* `sanitize(value, max_nodes=...)` -> `Sanitized(value, problem)`: a fresh, plain JSON
  value (dict with str keys, list, str, int, finite float, bool, None) that never shares
  a container with the input, and `problem`, a short phrase naming the first thing that
  was not plain JSON and where (`"a reference cycle at arguments.a"`), or None. Lone
  surrogates are not a problem: they are an encoding accident, and are only replaced.
  Replacements are deterministic: lone surrogates -> U+FFFD; bytes -> UTF-8 text with
  undecodable bytes as `\\xNN` escapes; a key that is not a string -> its JSON text for
  numbers/bool/None, else `<TypeName>`; a cycle -> `"<cycle>"`; nesting past `MAX_DEPTH`
  -> `"<too deep>"`; an integer over `MAX_INT_BITS` bits -> `"<integer too large>"`;
  NaN/infinity -> None; a set or tuple -> a list; an enum -> its value; a pydantic model
  -> its fields; a date/time -> ISO text; anything else -> `"<TypeName>"`.

Every step is linear in the size of the input and never recurses deeper than `MAX_DEPTH`,
so neither time nor the interpreter's stack depends on how the input was built.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from enum import Enum
from typing import Any

from pydantic import BaseModel

MAX_DEPTH = 64  # containers inside containers; JSON tool arguments need a handful
MAX_INT_BITS = 1024  # about 308 digits: past any float, far below Python's 4,300-digit print limit
LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """`text` with lone surrogates replaced by U+FFFD (the same object if there are none)."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return LONE_SURROGATE.sub("\ufffd", text)
    return text


@dataclass(frozen=True, slots=True)
class Sanitized:
    value: Any
    problem: str | None  # the first thing that was not plain JSON, or None


class _Walk:
    """One pass over a value: builds the clean copy, keeps the first problem found."""

    def __init__(self, max_nodes: int | None) -> None:
        self.problem: str | None = None
        self.nodes_left = max_nodes
        self.active: set[int] = set()  # ids of the containers on the current path

    def note(self, what: str, path: tuple[Any, ...] | None) -> None:
        if self.problem is None:
            where = _render_path(path)
            self.problem = f"{what} at {where}" if where else what

    def value(self, value: Any, depth: int, path: tuple[Any, ...] | None) -> Any:
        if self.nodes_left is not None:
            self.nodes_left -= 1
            if self.nodes_left < 0:
                self.note("too many values", path)
                return "<truncated>"
        if value is None or value is True or value is False:
            return value
        if isinstance(value, str):
            if isinstance(value, Enum):  # a StrEnum is a str: keep its value, not its name
                value = value.value
            return clean_text(str.__str__(value))
        if isinstance(value, int) and not isinstance(value, Enum):
            if value.bit_length() > MAX_INT_BITS:
                self.note(f"an integer longer than {MAX_INT_BITS} bits", path)
                return "<integer too large>"
            return int(value)
        if isinstance(value, float):
            if math.isfinite(value):
                return float(value)
            self.note("a non-finite number", path)
            return None
        if isinstance(value, Mapping | list | tuple | set | frozenset | BaseModel):
            return self.container(value, depth, path)
        return self.leaf(value, depth, path)

    def container(self, value: Any, depth: int, path: tuple[Any, ...] | None) -> Any:
        if id(value) in self.active:
            self.note("a reference cycle", path)
            return "<cycle>"
        if depth >= MAX_DEPTH:
            self.note(f"nesting deeper than {MAX_DEPTH} levels", path)
            return "<too deep>"
        self.active.add(id(value))
        try:
            if isinstance(value, BaseModel):
                self.note(f"{_a(type(value).__name__)} object", path)
                return self.mapping(dict(value.__dict__), depth, path)
            if isinstance(value, Mapping):
                return self.mapping(value, depth, path)
            if not isinstance(value, list):
                self.note(_a(type(value).__name__), path)
                if isinstance(value, set | frozenset):
                    value = _ordered(value)
            return [self.value(item, depth + 1, (path, i)) for i, item in enumerate(value)]
        finally:
            self.active.discard(id(value))

    def mapping(self, value: Mapping[Any, Any], depth: int, path: tuple[Any, ...] | None) -> Any:
        clean: dict[str, Any] = {}
        for key, item in value.items():
            name = self.key(key, path)
            clean[name] = self.value(item, depth + 1, (path, name))
        return clean

    def key(self, key: Any, path: tuple[Any, ...] | None) -> str:
        if isinstance(key, str) and not isinstance(key, Enum):
            return clean_text(str.__str__(key))
        self.note(f"a key that is not a string ({type(key).__name__})", path)
        if key is None or isinstance(key, bool):
            return {None: "null", True: "true", False: "false"}[key]
        if isinstance(key, int) and key.bit_length() <= MAX_INT_BITS:
            return str(int(key))
        if isinstance(key, float):
            return repr(float(key))
        if isinstance(key, Enum) and isinstance(key.value, str):
            return clean_text(key.value)
        return f"<{type(key).__name__}>"

    def leaf(self, value: Any, depth: int, path: tuple[Any, ...] | None) -> Any:
        if isinstance(value, bytes | bytearray | memoryview):
            self.note("bytes", path)
            return bytes(value).decode("utf-8", "backslashreplace")
        if isinstance(value, Enum):
            self.note(f"{_a(type(value).__name__)} enum", path)
            return self.value(value.value, depth, path)
        if isinstance(value, datetime | date | time):
            self.note(_a(type(value).__name__), path)
            return value.isoformat()
        self.note(f"{_a(type(value).__name__)} object", path)
        return f"<{type(value).__name__}>"


def sanitize(value: Any, *, max_nodes: int | None = None) -> Sanitized:
    """A plain JSON copy of `value` and the first problem found (see the module docstring)."""
    walk = _Walk(max_nodes)
    clean = walk.value(value, 0, None)
    return Sanitized(clean, walk.problem)


def _a(noun: str) -> str:
    return f"an {noun}" if noun[:1].lower() in "aeiou" else f"a {noun}"


def _ordered(items: set[Any] | frozenset[Any]) -> list[Any]:
    try:
        return sorted(items)
    except TypeError:  # mixed types: by type name, then by text for plain scalars
        return sorted(items, key=_sort_key)


def _sort_key(item: Any) -> tuple[str, str]:
    plain = type(item) in (str, int, float, bool) and not (
        type(item) is int and item.bit_length() > MAX_INT_BITS
    )
    return type(item).__name__, clean_text(str(item)) if plain else ""


def _render_path(path: tuple[Any, ...] | None, shown: int = 8) -> str:
    """`function.arguments.a[0]`; past `shown` parts, the first ones and `...`."""
    parts: list[str] = []
    while path is not None:
        path, part = path
        parts.append(f"[{part}]" if isinstance(part, int) else f".{part}")
    parts.reverse()
    if len(parts) > shown:
        parts = [*parts[:shown], "..."]
    text = "".join(parts)
    return text[1:] if text.startswith(".") else text
