"""Scripted policies of math_tools: the expert and the R1 examples' failure modes.

* `expert`: reads the problem from the user's message, calls `calculator` with the
  expression ("8 + 2 - 5", "23 / 13"), then answers `<answer>value</answer>` (rounded to
  3 decimals for a "3 decimal places" question).
* `mental_math`: answers right away without the calculator (the tool-use components
  score 0, so it ends below the expert).
* `untagged`: uses the calculator, then answers without the `<answer>` tag.
* `bad_calls`: sends the calculator a string where it wants an expression it can parse,
  then guesses.
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

from policies.base import ScriptedPolicy, reply_text, tool_call_text

WORD_PROBLEM = re.compile(r"has (\d+) \w+, buys (\d+), sells (\d+)")
DIVISION = re.compile(r"What is (\d+) ÷ (\d+)\?")


def expression(question: str) -> str | None:
    """The arithmetic a problem asks for, as calculator input."""
    if match := WORD_PROBLEM.search(question):
        start, bought, sold = match.groups()
        return f"{start} + {bought} - {sold}"
    if match := DIVISION.search(question):
        return f"{match.group(1)} / {match.group(2)}"
    return None


def format_value(value: float, question: str) -> str:
    if "decimal places" in question:
        return f"{value:.3f}"
    return str(int(value)) if float(value).is_integer() else str(value)


def _question(messages: list[dict[str, Any]]) -> str:
    return next((str(m.get("content")) for m in messages if m.get("role") == "user"), "")


def _calculator_result(messages: list[dict[str, Any]]) -> float | None:
    for message in reversed(messages):
        if message.get("role") == "tool" and message.get("name") == "calculator":
            try:
                return float(json.loads(str(message.get("content"))))
            except (ValueError, TypeError):
                return None
    return None


class MathExpert(ScriptedPolicy):
    name: ClassVar[str] = "expert"
    tag: ClassVar[bool] = True

    def decide(self, messages: list[dict[str, Any]]) -> str:
        question = _question(messages)
        result = _calculator_result(messages)
        if result is None and not any(m.get("role") == "tool" for m in messages):
            expr = expression(question)
            if expr is not None:
                return tool_call_text("calculator", {"expression": expr})
        if result is None:
            return reply_text("<answer>0</answer>")
        value = format_value(result, question)
        return f"<answer>{value}</answer>" if self.tag else f"The answer is {value}."


class MentalMath(ScriptedPolicy):
    name: ClassVar[str] = "mental_math"

    def decide(self, messages: list[dict[str, Any]]) -> str:
        question = _question(messages)
        expr = expression(question)
        if expr is None:
            return "<answer>0</answer>"
        value = eval(expr, {"__builtins__": {}})  # the expert's own expression: digits and + - /
        return f"<answer>{format_value(value, question)}</answer>"


class Untagged(MathExpert):
    name: ClassVar[str] = "untagged"
    tag: ClassVar[bool] = False


class BadCalls(ScriptedPolicy):
    name: ClassVar[str] = "bad_calls"

    def decide(self, messages: list[dict[str, Any]]) -> str:
        if not any(m.get("role") == "tool" for m in messages):
            return tool_call_text("calculator", {"expr": _question(messages)})
        return "<answer>1</answer>"


MATH_POLICIES: tuple[type[ScriptedPolicy], ...] = (MathExpert, MentalMath, Untagged, BadCalls)
