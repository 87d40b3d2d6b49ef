"""The calculator's two readers agree: the fast plain-expression reader and Python's parser.

`evaluate_arithmetic` reads plain expressions with its own operator-precedence reader and
sends everything else (and every error) to the parser path. These tests hold the fast
reader to Python's own arithmetic (`eval` is the oracle for well-formed expressions) and
to the parser path on token soup (same value and type, or the same error message).
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tools.standard import (
    MAX_EXPONENT,
    MAX_MAGNITUDE,
    CalculatorError,
    _evaluate_parsed,
    _evaluate_plain,
    _NotPlain,
    evaluate_arithmetic,
)

# How the plain reader refuses (each sends the text to the parser path).
REFUSALS = (_NotPlain, CalculatorError, ArithmeticError, LookupError, ValueError)
LEAVES = ["0", "00", "7", "42", "1000000", "12.25", ".5", "3."]
SOUP = ["1", "2", "0", "07", "3.5", ".5", "4.", "+", "-", "*", "/", "//", "%", "**", "^", "(", ")"]
SOUP += [" ", "\t", "x", "e", "_", "×", "÷", "1e3", "999999999999", str(MAX_EXPONENT + 1)]


def _outcome(function, text: str) -> tuple[str, object]:
    try:
        value = function(text)
    except CalculatorError as exc:
        return "error", str(exc)
    return type(value).__name__, value


def _parsed_outcome(expression: str) -> tuple[str, object]:
    """What the parser path alone says (after the same spelling fixes and strip)."""
    if len(expression) > 200:
        return "error", "expression longer than 200 characters"
    text = expression.replace("^", "**").replace("×", "*").replace("÷", "/").strip()
    return _outcome(_evaluate_parsed, text)


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("(3 + 4) * 5 - 12", 23),
        ("-2 ** 2", -4),  # ** binds tighter than unary minus
        ("2 ** -1", 0.5),  # but a unary minus may start the exponent
        ("2 ** 3 ** 2", 512),  # right-associative
        ("2 ** -3 ** 2", 2**-9),
        ("2 ** -1 * 3", 1.5),
        ("7 // 2 % 3", 0),  # left to right at one precedence
        ("10 - 4 - 3", 3),
        ("-(3) ** 2", -9),
        ("--3 * 2", 6),
        ("1.5 * .5", 0.75),
        ("1.", 1.0),
        ("00", 0),
        ("05.", 5.0),
        ("((1))", 1),
        ("\t3\t+ 4 ", 7),
    ],
)
def test_the_plain_reader_follows_pythons_precedence(expression: str, value: float) -> None:
    result = _evaluate_plain(expression.strip())
    assert result == value and type(result) is type(value)
    assert evaluate_arithmetic(expression) == value


@pytest.mark.parametrize(
    "text",
    ["", "1 +", "(1", "1)", "()", "1 2", "2(3)", "2 * * 3", "2 *** 3", "2 / / 3", "007", "1.2.3",
     ".", "1e5", "1_000", "x", "٣ + 1", "9 ** 99", "1 / 0", "(-8) ** 0.5", "10 ** 20"],
)  # fmt: skip
def test_the_plain_reader_leaves_everything_else_to_the_parser(text: str) -> None:
    with pytest.raises(REFUSALS):
        _evaluate_plain(text)
    assert _outcome(evaluate_arithmetic, text) == _parsed_outcome(text)


def test_leading_spaces_are_not_an_error() -> None:
    """Python's parser calls a leading space an 'unexpected indent'; an agent's ' 3 + 4' is
    arithmetic all the same."""
    assert evaluate_arithmetic("  3 + 4") == 7
    assert evaluate_arithmetic("\t(2)") == 2


def _render(node: object, rng: random.Random) -> str:
    if isinstance(node, str):
        return node
    op, *children = node  # type: ignore[misc]
    space = rng.choice(["", " ", "  ", "\t"])
    if op in ("-", "+") and len(children) == 1:
        text = f"{op}{space}{_render(children[0], rng)}"
    else:
        left, right = (_render(child, rng) for child in children)
        text = f"{left}{space}{op}{space}{right}"
    return f"({text})" if rng.random() < 0.4 else text


def _tree(rng: random.Random, depth: int) -> object:
    if depth == 0 or rng.random() < 0.3:
        leaf = rng.choice(LEAVES)
        return leaf if rng.random() < 0.5 else str(rng.randint(0, 10 ** rng.randint(1, 7)))
    if rng.random() < 0.15:
        return (rng.choice("-+"), _tree(rng, depth - 1))
    op = rng.choice(["+", "-", "*", "/", "//", "%", "**"])
    if op == "**":
        return (op, _tree(rng, depth - 1), str(rng.randint(-4, 4)))
    return (op, _tree(rng, depth - 1), _tree(rng, depth - 1))


def test_generated_expressions_match_pythons_own_arithmetic() -> None:
    """Well-formed expressions, randomly parenthesised and spaced: the value (and its type)
    is what Python's `eval` gives, or, past the calculator's limits, both paths refuse."""
    rng = random.Random(20261202)
    read = 0
    for _ in range(4000):
        text = _render(_tree(rng, 4), rng)
        try:
            expected = eval(text, {"__builtins__": {}}, {})  # the oracle: Python's arithmetic
        except (ZeroDivisionError, OverflowError):
            expected = None
        outcome = _outcome(evaluate_arithmetic, text)
        assert outcome == _parsed_outcome(text), text
        within = (
            expected is not None
            and not isinstance(expected, complex)
            and abs(expected) <= MAX_MAGNITUDE
        )
        if outcome[0] != "error":
            assert outcome == (type(expected).__name__, expected), text
            read += _outcome(_evaluate_plain, text.strip()) == outcome  # the fast reader read it
        elif within:  # refused though Python computes it: only a limit on the way may say so
            assert "exceeds the limit" in str(outcome[1]) or "exponent" in str(outcome[1]), text
    assert read > 2000  # most are within the limits, and the fast reader read them


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(SOUP), max_size=14).map("".join))
def test_token_soup_gets_the_parsers_answer(text: str) -> None:
    assert _outcome(evaluate_arithmetic, text) == _parsed_outcome(text)
