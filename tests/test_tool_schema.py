"""`@tool` as an author meets it: every parameter kept, self-contained schemas, JSON-typed
values (dates, enums, tuples, decimals, UUIDs) accepted as the schema advertises them, and
tool names checked against OpenAI's pattern at definition."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

import jsonschema
import pytest
from pydantic import BaseModel

from core.records import ErrorKind, Execution
from tools.calls import ParsedCall
from tools.sandbox import Sandbox
from tools.schema import tool
from tools.toolbox import Toolbox

RECEIVED: list[dict[str, Any]] = []


class Unit(Enum):
    CELSIUS = "celsius"
    FAHRENHEIT = "fahrenheit"


class Address(BaseModel):
    street: str
    zip_code: int


@tool
def tag(ctx: Sandbox, _label: str, count: int = 1) -> str:
    """Repeat a label.

    Args:
        _label: The label (a leading underscore is part of its name).
        count: How many times.
    """
    return _label * count


@tool
def book(
    ctx: Sandbox,
    day: date,
    unit: Unit,
    span: tuple[int, int],
    amount: Decimal,
    ref: UUID,
    where: Address,
    units: list[Unit] | None = None,
) -> str:
    """Book something with every JSON-encoded type."""
    RECEIVED.append(
        {"day": day, "unit": unit, "span": span, "amount": amount, "ref": ref, "where": where}
    )
    return "booked"


GOOD_BOOKING = {
    "day": "2026-02-01",
    "unit": "celsius",
    "span": [1, 2],
    "amount": "12.50",
    "ref": "12345678-1234-5678-1234-567812345678",
    "where": {"street": "Main St", "zip_code": 12345},
}


def run(name: str, arguments: dict[str, Any]):
    box = Toolbox([tag, book])
    return box.run(
        ParsedCall(raw="", name=name, arguments=arguments), Sandbox(now=datetime(2026, 3, 10))
    )


def test_underscore_parameters_are_kept_in_the_schema() -> None:
    parameters = tag.schema["function"]["parameters"]
    assert list(parameters["properties"]) == ["_label", "count"]
    assert parameters["required"] == ["_label"]
    assert parameters["properties"]["_label"] == {
        "type": "string",
        "description": "The label (a leading underscore is part of its name).",
    }


def test_underscore_parameter_call_runs_and_empty_call_is_a_missing_argument() -> None:
    outcome = run("tag", {"_label": "ab", "count": 3})
    assert (outcome.text, outcome.valid, outcome.error_kind) == ("ababab", True, None)
    missing = run("tag", {})
    assert missing.text == "ERROR: Missing required parameter '_label' for tool 'tag'"
    assert missing.error_kind is ErrorKind.MISSING_ARGUMENT and not missing.valid


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


def test_exported_schema_keeps_defs_and_is_self_contained() -> None:
    parameters = book.schema["function"]["parameters"]
    assert set(parameters["$defs"]) == {"Address", "Unit"}
    assert parameters["$defs"]["Unit"]["enum"] == ["celsius", "fahrenheit"]
    assert sorted(set(_refs(parameters))) == ["#/$defs/Address", "#/$defs/Unit"]
    # A real validator, given only the exported schema, agrees with the tool.
    validator = jsonschema.Draft202012Validator(parameters)
    assert validator.is_valid(GOOD_BOOKING)
    assert not validator.is_valid({**GOOD_BOOKING, "unit": "kelvin"})
    assert not validator.is_valid({**GOOD_BOOKING, "where": {"street": "x", "zip_code": "1"}})


def test_json_encoded_values_are_accepted_as_the_schema_advertises() -> None:
    RECEIVED.clear()
    outcome = run("book", GOOD_BOOKING)
    assert (outcome.text, outcome.valid, outcome.execution) == ("booked", True, Execution.OK)
    (got,) = RECEIVED
    assert got["day"] == date(2026, 2, 1)
    assert got["unit"] is Unit.CELSIUS
    assert got["span"] == (1, 2) and isinstance(got["span"], tuple)
    assert got["amount"] == Decimal("12.50")
    assert got["ref"] == UUID("12345678-1234-5678-1234-567812345678")
    assert got["where"] == Address(street="Main St", zip_code=12345)


@pytest.mark.parametrize(
    ("name", "arguments", "kind", "message"),
    [
        (
            "tag",
            {"_label": "a", "count": "12"},
            ErrorKind.TYPE_MISMATCH,
            "ERROR: Type mismatch in parameter 'count': expected integer, got string '12'",
        ),
        (
            "tag",
            {"_label": "a", "count": 12.0},
            ErrorKind.TYPE_MISMATCH,
            "ERROR: Type mismatch in parameter 'count': expected integer, got number 12.0",
        ),
        (
            "tag",
            {"_label": "a", "count": True},
            ErrorKind.TYPE_MISMATCH,
            "ERROR: Type mismatch in parameter 'count': expected integer, got boolean true",
        ),
        (
            "book",
            {**GOOD_BOOKING, "where": {"street": "Main St", "zip_code": "12345"}},
            ErrorKind.TYPE_MISMATCH,
            "ERROR: Type mismatch in parameter 'where.zip_code': expected integer, "
            "got string '12345'",
        ),
    ],
)
def test_json_mode_still_refuses_coercion(
    name: str, arguments: dict[str, Any], kind: ErrorKind, message: str
) -> None:
    outcome = run(name, arguments)
    assert (outcome.text, outcome.error_kind, outcome.valid) == (message, kind, False)


@pytest.mark.parametrize(
    ("field", "value"),
    [("day", "2026-02-30"), ("unit", "kelvin"), ("ref", "not-a-uuid"), ("span", [1, 2, 3])],
)
def test_bad_encoded_values_name_their_parameter(field: str, value: Any) -> None:
    outcome = run("book", {**GOOD_BOOKING, field: value})
    assert outcome.error_kind is ErrorKind.INVALID_VALUE and not outcome.valid
    assert outcome.text.startswith(f"ERROR: Invalid value for parameter '{field}': ")


@pytest.mark.parametrize("bad_name", ["check refund", "math.factorial", "", "x" * 65, "naïve"])
def test_tool_names_must_match_the_openai_pattern(bad_name: str) -> None:
    def body(ctx: Sandbox) -> str:
        return "ok"

    with pytest.raises(ValueError, match=r"\^\[a-zA-Z0-9_-\]\{1,64\}\$"):
        tool(body, name=bad_name)


def test_longest_allowed_name_is_accepted() -> None:
    def body(ctx: Sandbox) -> str:
        return "ok"

    assert tool(body, name="a-" * 32).name == "a-" * 32


@tool
def shadowing(ctx: Sandbox, schema: str, model_name: str, copy: int = 0) -> str:
    """Parameters named like pydantic's own attributes."""
    return f"{schema}|{model_name}|{copy}"


def test_parameters_named_like_model_attributes_work() -> None:
    parameters = shadowing.schema["function"]["parameters"]
    assert list(parameters["properties"]) == ["schema", "model_name", "copy"]
    box = Toolbox([shadowing])
    call = ParsedCall(raw="", name="shadowing", arguments={"schema": "s", "model_name": "m"})
    assert box.run(call, Sandbox(now=datetime(2026, 3, 10))).text == "s|m|0"
