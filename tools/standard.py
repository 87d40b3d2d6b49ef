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
    """Evaluate numbers and arithmetic operators only; anything else is a CalculatorError.

    Plain expressions (ASCII digits, `+ - * / // % **`, parentheses, spaces) are read by
    `_evaluate_plain`, twice as fast as Python's parser; everything else, and every error,
    goes to `_evaluate_parsed`, which decides and words the error. Both give the same
    value for every expression the first one reads (tests/test_calculator.py checks that
    on generated expressions)."""
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise CalculatorError(f"expression longer than {MAX_EXPRESSION_CHARS} characters")
    text = expression.replace("^", "**").replace("×", "*").replace("÷", "/").strip()
    try:
        return _evaluate_plain(text)
    except Exception:  # not plain, or an error: the parser's verdict and wording stand
        return _evaluate_parsed(text)


def _evaluate_parsed(text: str) -> float | int:
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise CalculatorError(f"not an arithmetic expression: {exc.msg}") from None
    except ValueError:  # UnicodeEncodeError: a lone surrogate is the caller's text, not a bug
        raise CalculatorError("not an arithmetic expression: invalid Unicode text") from None
    return _eval(tree.body)


class _NotPlain(Exception):
    """`_evaluate_plain` does not read this text; the parser will."""


PLAIN_CHARACTERS = str.maketrans("", "", "0123456789.+-*/%() \t")  # deletes them all
# `**` and `//` become one character each so that one `translate` + `split` tokenises.
SPACED_TOKENS = str.maketrans({c: f" {c} " for c in "+-*/%()^~"})
OPERATORS: dict[str, tuple[int, Any]] = {  # token: (precedence, function)
    "+": (1, operator.add),
    "-": (1, operator.sub),
    "*": (2, operator.mul),
    "/": (2, operator.truediv),
    "~": (2, operator.floordiv),
    "%": (2, operator.mod),
    "neg": (3, operator.neg),  # unary minus binds tighter than * but looser than **
    "pos": (3, operator.pos),
    "^": (4, operator.pow),  # right-associative
}
PREFIX = {"-": "neg", "+": "pos"}


def _evaluate_plain(text: str) -> float | int:
    """Operator precedence (shunting-yard) over a plain expression, applying operators in
    the order `_eval` walks the tree and checking each value as `_eval` does. Raises
    `_NotPlain` (or the arithmetic's own error) for anything it does not read."""
    if text.translate(PLAIN_CHARACTERS):
        raise _NotPlain
    values: list[float | int] = []
    pending: list[str] = []  # operators and "(" not applied yet
    want_operand = True
    for token in text.replace("**", "^").replace("//", "~").translate(SPACED_TOKENS).split():
        if want_operand:
            if token == "(":
                pending.append(token)
            elif token in PREFIX:
                pending.append(PREFIX[token])
            elif token in OPERATORS or token == ")":
                raise _NotPlain
            else:
                values.append(_check(_plain_number(token)))
                want_operand = False
        elif token == ")":
            while (top := pending.pop()) != "(":  # IndexError when unbalanced
                _apply(top, values)
        else:
            precedence = OPERATORS[token][0]  # KeyError for two operands in a row
            while pending and pending[-1] != "(":
                above = OPERATORS[pending[-1]][0]
                if above < precedence or (above == precedence == 4):
                    break
                _apply(pending.pop(), values)
            pending.append(token)
            want_operand = True
    if want_operand or "(" in pending:
        raise _NotPlain
    while pending:
        _apply(pending.pop(), values)
    return values[0]


def _plain_number(token: str) -> float | int:
    if "." in token:
        return float(token)  # ValueError for "1.2.3" or "."
    if token[0] == "0" and token.strip("0"):
        raise _NotPlain  # 007: Python's parser refuses leading zeros
    return int(token)


def _apply(token: str, values: list[float | int]) -> None:
    function = OPERATORS[token][1]
    if token in ("neg", "pos"):
        values[-1] = _check(function(values[-1]))
        return
    right = values.pop()
    if function is operator.pow and abs(right) > MAX_EXPONENT:
        raise _NotPlain
    values[-1] = _check(function(values[-1], right))


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
