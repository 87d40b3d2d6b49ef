"""Standard tools every env may offer: the frozen clock, a safe calculator, escalation.

Each body is bounded by construction (the calculator caps expression length, exponents
and magnitudes), so they run inline (`timeout_s=None`: no worker thread, see
`tools.toolbox`)."""

from __future__ import annotations

import ast
import operator
from typing import Any

from core.records import Termination
from tools.sandbox import Sandbox
from tools.schema import tool
from tools.toolbox import ToolInputError

MAX_EXPRESSION_CHARS = 200
MAX_EXPONENT = 64
MAX_MAGNITUDE = 1e15

BINARY_OPS: dict[type, Any] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
NUMBER_TYPES = (int, float)
UNARY_OPS: dict[type, Any] = {ast.UAdd: operator.pos, ast.USub: operator.neg}


class CalculatorError(ToolInputError):
    pass


@tool(timeout_s=None)
def get_current_date(ctx: Sandbox) -> str:
    """Get today's date (ISO 8601, YYYY-MM-DD). Use it instead of guessing the date."""
    return ctx.today()


@tool(timeout_s=None)
def calculator(ctx: Sandbox, expression: str) -> str:
    """Evaluate an arithmetic expression exactly.

    Args:
        expression: Numbers with + - * / // % ** and parentheses, e.g. "(3 + 2) * 4".
    """
    return format_number(evaluate_arithmetic(expression))


@tool(ends_episode=Termination.ESCALATION, timeout_s=None)
def escalate_to_human(ctx: Sandbox, summary: str) -> str:
    """Hand the conversation to a human agent. Ends your part of the conversation.

    Args:
        summary: What the customer needs and what you already tried.
    """
    ctx.record("escalation", summary=summary)
    return "Escalated to a human agent. They will contact the customer shortly."


def evaluate_arithmetic(expression: str) -> float | int:
    """Evaluate numbers and arithmetic operators only; anything else is a CalculatorError."""
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise CalculatorError(f"expression longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        tree = ast.parse(
            expression.replace("^", "**").replace("×", "*").replace("÷", "/"), mode="eval"
        )
    except SyntaxError as exc:
        raise CalculatorError(f"not an arithmetic expression: {exc.msg}") from None
    except ValueError:  # UnicodeEncodeError: a lone surrogate is the caller's text, not a bug
        raise CalculatorError("not an arithmetic expression: invalid Unicode text") from None
    return _eval(tree.body)


def _eval(node: ast.AST) -> float | int:
    kind = type(node)  # `ast.parse` builds exact node classes: dispatch on the type
    if kind is ast.Constant and type(node.value) in NUMBER_TYPES:
        return _check(node.value)
    if kind is ast.UnaryOp and (unary := UNARY_OPS.get(type(node.op))) is not None:
        return _check(unary(_eval(node.operand)))
    if kind is ast.BinOp and (binary := BINARY_OPS.get(type(node.op))) is not None:
        left, right = _eval(node.left), _eval(node.right)
        if binary is operator.pow and abs(right) > MAX_EXPONENT:
            raise CalculatorError(f"exponent {right} is larger than {MAX_EXPONENT}")
        try:
            return _check(binary(left, right))
        except ZeroDivisionError:
            raise CalculatorError("division by zero") from None
        except OverflowError:
            raise CalculatorError("result too large") from None
    name = kind.__name__
    allowed = "numbers, + - * / // % ** and parentheses"
    raise CalculatorError(f"'{name}' is not allowed in an expression (only {allowed})")


def _check(value: Any) -> float | int:
    if type(value) is complex:
        raise CalculatorError("result is not a real number")
    if abs(value) > MAX_MAGNITUDE:
        raise CalculatorError(f"number {value:.3g} exceeds the limit of {MAX_MAGNITUDE:.0e}")
    return value


def format_number(value: float | int) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(round(value, 10)) if isinstance(value, float) else str(value)
