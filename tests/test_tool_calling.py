"""Tool calling as an agent meets it: parsing, schema validation, errors as observations."""

from __future__ import annotations

from datetime import datetime

import pytest

from core.records import ErrorKind, Execution, Fault, Termination
from tools.calls import parse_action
from tools.sandbox import Sandbox
from tools.schema import render_tools_prompt, tool
from tools.standard import calculator, escalate_to_human, evaluate_arithmetic, get_current_date
from tools.toolbox import Toolbox, ToolResult


@tool(version="2.1")
def check_refund(ctx: Sandbox, customer_id: int, order_id: int, note: str = "") -> dict:
    """Check a refund.

    Args:
        customer_id: The customer's numeric id.
        order_id: The order number.
        note: Free text.
    """
    if customer_id != 42:
        return ToolResult({"error": "no refund found"}, Execution.WRONG)
    return {"eligible": True, "order_id": order_id}


@tool
def explode(ctx: Sandbox) -> str:
    """Always fails."""
    raise RuntimeError("database on fire")


def run(text: str | dict, *, faults: tuple[Fault, ...] = (), max_chars: int = 4096):
    box = Toolbox([check_refund, explode, calculator, get_current_date], max_output_chars=max_chars)
    sandbox = Sandbox(now=datetime(2026, 3, 10, 9), faults=faults)
    return [box.run(call, sandbox) for call in parse_action(text).calls]


def call(name: str, args: str) -> str:
    return f'<tool_call>\n{{"name": "{name}", "arguments": {args}}}\n</tool_call>'


def test_schema_is_openai_function_format_with_docstring_descriptions() -> None:
    schema = check_refund.schema
    assert schema["type"] == "function"
    function = schema["function"]
    assert function["name"] == "check_refund"
    assert function["description"] == "Check a refund."
    params = function["parameters"]
    assert params["properties"]["customer_id"] == {
        "type": "integer",
        "description": "The customer's numeric id.",
    }
    assert params["required"] == ["customer_id", "order_id"]
    assert params["additionalProperties"] is False
    assert check_refund.version == "2.1"
    assert "check_refund" in render_tools_prompt([schema])


def test_the_seed_type_mismatch_message() -> None:
    (outcome,) = run(call("check_refund", '{"customer_id": "Alice Smith", "order_id": 7}'))
    assert outcome.text == (
        "ERROR: Type mismatch in parameter 'customer_id': expected integer, "
        "got string 'Alice Smith'"
    )
    assert outcome.error_kind is ErrorKind.TYPE_MISMATCH
    assert outcome.execution is Execution.ERROR and not outcome.valid


@pytest.mark.parametrize(
    ("text", "kind", "fragment"),
    [
        (call("refund_now", "{}"), ErrorKind.UNKNOWN_TOOL, "Unknown tool 'refund_now'"),
        ("<tool_call>{not json}</tool_call>", ErrorKind.MALFORMED_JSON, "Malformed JSON"),
        ('<tool_call>{"arguments": {}}</tool_call>', ErrorKind.MISSING_NAME, "no 'name'"),
        (call("check_refund", '{"customer_id": 42}'), ErrorKind.MISSING_ARGUMENT, "'order_id'"),
        (
            call("check_refund", '{"customer_id": 42, "order_id": 1, "x": 1}'),
            ErrorKind.UNEXPECTED_ARGUMENT,
            "Unexpected parameter 'x'",
        ),
        (
            call("check_refund", '{"customer_id": 4.5, "order_id": 1}'),
            ErrorKind.TYPE_MISMATCH,
            "expected integer, got number 4.5",
        ),
        (
            call("check_refund", '{"customer_id": true, "order_id": 1}'),
            ErrorKind.TYPE_MISMATCH,
            "got boolean true",
        ),
        (call("check_refund", "[1, 2]"), ErrorKind.MALFORMED_JSON, "must be a JSON object"),
        ('<tool_call>{"name": "check_refund"', ErrorKind.MALFORMED_JSON, "Malformed JSON"),
        (
            '{"name": "check_refund", "arguments": {"customer_id": 42}}\n</tool_call>',
            ErrorKind.MALFORMED_JSON,
            "without an opening <tool_call>",
        ),
        (
            "<think>It failed 3 times (HTTP 500 42}}\n</tool_call>",
            ErrorKind.MALFORMED_JSON,
            "without an opening <tool_call>",
        ),
        (call("explode", "{}"), ErrorKind.TOOL_EXCEPTION, "database on fire"),
        (
            call("calculator", '{"expression": "__import__(1)"}'),
            ErrorKind.INVALID_VALUE,
            "'Call' is not allowed",
        ),
    ],
)
def test_bad_calls_become_error_observations(text: str, kind: ErrorKind, fragment: str) -> None:
    (outcome,) = run(text)
    assert outcome.error_kind is kind
    assert outcome.text.startswith("ERROR: ")
    assert fragment in outcome.text


def test_wrong_result_runs_but_is_graded_wrong() -> None:
    wrong, right = run(
        call("check_refund", '{"customer_id": 90412, "order_id": 7}')
        + call("check_refund", '{"customer_id": 42, "order_id": 7}')
    )
    assert wrong.execution is Execution.WRONG and wrong.valid and wrong.error_kind is None
    assert right.execution is Execution.OK and '"eligible": true' in right.text


def test_openai_style_message_with_structured_tool_calls() -> None:
    message = {
        "role": "assistant",
        "content": "Checking.",
        "tool_calls": [
            {
                "id": "c1",
                "type": "function",
                "function": {
                    "name": "check_refund",
                    "arguments": '{"customer_id": 42, "order_id": 7}',
                },
            },
            {"id": "c2", "type": "function", "function": {"name": "get_current_date"}},
        ],
    }
    parsed = parse_action(message)
    assert [c.call_id for c in parsed.calls] == ["c1", "c2"]
    first, second = run(message)
    assert first.execution is Execution.OK
    assert second.text == "2026-03-10"


def test_think_answer_and_several_calls_in_one_message() -> None:
    text = (
        "<think>look up first</think>" + call("get_current_date", "{}") * 3 + "<answer>ok</answer>"
    )
    parsed = parse_action(text)
    assert parsed.think == "look up first"
    assert parsed.answer == "ok"
    assert len(parsed.calls) == 3
    assert parsed.content == "<answer>ok</answer>"


def test_fault_plan_first_n_then_recovers_and_always() -> None:
    flaky = (Fault(tool="get_current_date", kind="timeout", first_n=2),)
    outcomes = run(call("get_current_date", "{}") * 3, faults=flaky)
    assert [o.execution for o in outcomes] == [Execution.FAULT, Execution.FAULT, Execution.OK]
    assert outcomes[0].error_kind is ErrorKind.TIMEOUT
    down = (Fault(tool="get_current_date"),)
    outcomes = run(call("get_current_date", "{}") * 4, faults=down)
    assert all(o.error_kind is ErrorKind.SERVICE_ERROR for o in outcomes)
    assert "HTTP 500" in outcomes[0].text


def test_outputs_are_size_capped() -> None:
    (outcome,) = run(call("calculator", '{"expression": "1"}'), max_chars=4)
    assert outcome.text == "1"
    (outcome,) = run(call("check_refund", '{"customer_id": 42, "order_id": 7}'), max_chars=10)
    assert outcome.text.startswith('{"eligible') and "[truncated" in outcome.text


def test_escalation_tool_ends_episode() -> None:
    assert escalate_to_human.ends_episode is Termination.ESCALATION


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("3 + 2", 5),
        ("(3 + 2) * 4", 20),
        ("23 / 13", 23 / 13),
        ("-2 ** 3", -8),
        ("7 // 2", 3),
        ("2 ^ 10", 1024),
        ("8 × 2 ÷ 4", 4),
    ],
)
def test_calculator_arithmetic(expression: str, value: float) -> None:
    assert evaluate_arithmetic(expression) == pytest.approx(value)


@pytest.mark.parametrize(
    ("expression", "fragment"),
    [
        ("__import__('os').system('ls')", "not allowed"),
        ("x + 1", "'Name' is not allowed"),
        ("(1).__class__", "'Attribute' is not allowed"),
        ("9 ** 9999", "exponent"),
        ("10 ** 60", "exceeds the limit"),
        ("1 / 0", "division by zero"),
        ("1 +", "not an arithmetic expression"),
        ("1" * 500, "longer than"),
        ("'a' * 3", "not allowed"),
    ],
)
def test_calculator_rejects_everything_but_arithmetic(expression: str, fragment: str) -> None:
    from tools.standard import CalculatorError

    with pytest.raises(CalculatorError, match=fragment):
        evaluate_arithmetic(expression)
