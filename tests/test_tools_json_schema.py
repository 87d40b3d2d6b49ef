"""Tools described by JSON Schema (MCP `inputSchema`, OpenAI function lists, BFCL docs),
validated as strictly as `@tool`, with the same agent-readable errors."""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

import pytest

from core.records import ErrorKind, Execution
from tools.calls import ParsedCall
from tools.sandbox import Sandbox
from tools.schema import Tool, tool_from_json_schema
from tools.toolbox import Toolbox

WEATHER_PARAMETERS = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "description": "City name."},
        "days": {"type": "integer", "minimum": 1, "maximum": 7},
        "unit": {"type": "string", "enum": ["c", "f"], "default": "c"},
    },
    "required": ["city"],
}
MCP_WEATHER = {
    "name": "get_weather",
    "description": "Forecast for a city.",
    "inputSchema": WEATHER_PARAMETERS,
    "annotations": {"readOnlyHint": True},
}
OPENAI_WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Forecast for a city.",
        "parameters": WEATHER_PARAMETERS,
    },
}
BARE_WEATHER = {
    "name": "get_weather",
    "description": "Forecast for a city.",
    "parameters": WEATHER_PARAMETERS,
}
EXPECTED_WEATHER_SCHEMA = {  # the OpenAI shape; unknown arguments refused by default
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Forecast for a city.",
        "parameters": {**WEATHER_PARAMETERS, "additionalProperties": False},
    },
}
BFCL_TRIANGLE = {
    "name": "geometry.triangle_area",
    "description": "Area of a triangle.",
    "parameters": {
        "type": "dict",
        "properties": {
            "base": {"type": "integer", "description": "Base length."},
            "height": {"type": "float", "description": "Height."},
            "corner": {"type": "tuple", "items": {"type": "integer"}},
            "note": {"type": "any"},
        },
        "required": ["base", "height"],
    },
}
ORDER_PARAMETERS = {
    "type": "object",
    "properties": {
        "lines": {"type": "array", "items": {"$ref": "#/$defs/Line"}},
        "limit": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
    },
    "required": ["lines"],
    "$defs": {
        "Line": {
            "type": "object",
            "properties": {"sku": {"type": "string"}, "qty": {"type": "integer"}},
            "required": ["sku", "qty"],
        }
    },
}


def echo(ctx: Sandbox, **arguments: Any) -> dict[str, Any]:
    return arguments


def run(tool_: Tool, arguments: dict[str, Any]):
    sandbox = Sandbox(now=datetime(2026, 3, 10))
    return Toolbox([tool_]).run(ParsedCall(raw="", name=tool_.name, arguments=arguments), sandbox)


@pytest.mark.parametrize("description", [MCP_WEATHER, OPENAI_WEATHER, BARE_WEATHER])
def test_every_description_form_gives_the_same_openai_schema(description: dict) -> None:
    before = copy.deepcopy(description)
    weather = tool_from_json_schema(description, echo)
    assert weather.name == "get_weather"
    assert weather.schema == EXPECTED_WEATHER_SCHEMA
    assert description == before  # the caller's description is not changed


def test_a_valid_call_reaches_the_handler_with_defaults_filled() -> None:
    outcome = run(tool_from_json_schema(MCP_WEATHER, echo), {"city": "Oslo", "days": 3})
    assert (outcome.valid, outcome.execution, outcome.error_kind) == (True, Execution.OK, None)
    assert outcome.text == '{"city": "Oslo", "days": 3, "unit": "c"}'


@pytest.mark.parametrize(
    ("arguments", "kind", "message"),
    [
        (
            {"city": "Oslo", "days": "3"},
            ErrorKind.TYPE_MISMATCH,
            "ERROR: Type mismatch in parameter 'days': expected integer, got string '3'",
        ),
        (
            {"city": "Oslo", "days": 3.0},
            ErrorKind.TYPE_MISMATCH,
            "ERROR: Type mismatch in parameter 'days': expected integer, got number 3.0",
        ),
        (
            {"city": True},
            ErrorKind.TYPE_MISMATCH,
            "ERROR: Type mismatch in parameter 'city': expected string, got boolean true",
        ),
        (
            {},
            ErrorKind.MISSING_ARGUMENT,
            "ERROR: Missing required parameter 'city' for tool 'get_weather'",
        ),
        (
            {"city": "Oslo", "country": "NO"},
            ErrorKind.UNEXPECTED_ARGUMENT,
            "ERROR: Unexpected parameter 'country' for tool 'get_weather' "
            "(expected parameters: city, days, unit)",
        ),
    ],
)
def test_bad_calls_get_the_house_error_messages(
    arguments: dict[str, Any], kind: ErrorKind, message: str
) -> None:
    outcome = run(tool_from_json_schema(MCP_WEATHER, echo), arguments)
    assert (outcome.text, outcome.error_kind, outcome.valid) == (message, kind, False)
    assert outcome.execution is Execution.ERROR


@pytest.mark.parametrize("value", [3, None, ["c"]])
def test_a_wrong_type_for_an_enum_is_one_type_mismatch_not_also_an_invalid_value(
    value: Any,
) -> None:
    # 3 is not one of ['c', 'f'] either, but saying so twice tells the model nothing more
    outcome = run(tool_from_json_schema(MCP_WEATHER, echo), {"city": "Oslo", "unit": value})
    assert outcome.error_kind is ErrorKind.TYPE_MISMATCH
    assert outcome.text.startswith("ERROR: Type mismatch in parameter 'unit': expected string")
    assert "Invalid value" not in outcome.text and ";" not in outcome.text


@pytest.mark.parametrize(("field", "value"), [("unit", "kelvin"), ("days", 9)])
def test_enum_and_range_violations_name_the_parameter(field: str, value: Any) -> None:
    outcome = run(tool_from_json_schema(MCP_WEATHER, echo), {"city": "Oslo", field: value})
    assert outcome.error_kind is ErrorKind.INVALID_VALUE and not outcome.valid
    assert outcome.text.startswith(f"ERROR: Invalid value for parameter '{field}': ")


def test_nested_objects_arrays_and_refs_are_checked_all_the_way_down() -> None:
    order = tool_from_json_schema(
        {"name": "place_order", "description": "Order.", "inputSchema": ORDER_PARAMETERS}, echo
    )
    good = run(order, {"lines": [{"sku": "a", "qty": 2}], "limit": None})
    assert good.valid and good.text == '{"limit": null, "lines": [{"qty": 2, "sku": "a"}]}'
    cases = [
        (
            {"lines": [{"sku": "a", "qty": "2"}]},
            "ERROR: Type mismatch in parameter 'lines.0.qty': expected integer, got string '2'",
        ),
        (
            {"lines": [{"sku": "a", "qty": 2, "colour": "red"}]},
            "ERROR: Unexpected parameter 'lines.0.colour' for tool 'place_order' "
            "(expected parameters: sku, qty)",
        ),
        (
            {"lines": [{"sku": "a"}]},
            "ERROR: Missing required parameter 'lines.0.qty' for tool 'place_order'",
        ),
        (
            {"lines": "a, b"},
            "ERROR: Type mismatch in parameter 'lines': expected array, got string 'a, b'",
        ),
        (
            {"lines": [], "limit": "12"},
            "ERROR: Type mismatch in parameter 'limit': expected integer or null, got string '12'",
        ),
    ]
    for arguments, message in cases:
        assert run(order, arguments).text == message


def test_bfcl_types_become_json_schema_types() -> None:
    triangle = tool_from_json_schema(BFCL_TRIANGLE, echo, name="geometry_triangle_area")
    parameters = triangle.schema["function"]["parameters"]
    assert parameters["type"] == "object"
    assert parameters["properties"]["height"] == {"type": "number", "description": "Height."}
    assert parameters["properties"]["corner"] == {"type": "array", "items": {"type": "integer"}}
    assert parameters["properties"]["note"] == {}
    assert run(triangle, {"base": 3, "height": 2.5, "corner": [0, 1], "note": [1]}).valid
    assert run(triangle, {"base": 3, "height": 2, "note": "any text"}).valid
    bad = run(triangle, {"base": "3", "height": 2})
    assert bad.text == "ERROR: Type mismatch in parameter 'base': expected integer, got string '3'"


def test_bfcl_dotted_names_are_refused_unless_renamed() -> None:
    with pytest.raises(ValueError, match=r"'geometry\.triangle_area'.*\^\[a-zA-Z0-9_-\]\{1,64\}\$"):
        tool_from_json_schema(BFCL_TRIANGLE, echo)


@pytest.mark.parametrize(
    ("parameters", "fragment"),
    [
        ({"type": "object", "properties": {"x": {"$ref": "#/$defs/Missing"}}}, "#/$defs/Missing"),
        (
            {"type": "object", "properties": {"x": {"$ref": "https://example.com/x.json"}}},
            "https://example.com/x.json",
        ),
        ({"type": "object", "properties": {"x": {"type": "integr"}}}, "integr"),
        ({"type": "string"}, "object"),
    ],
)
def test_bad_schemas_are_refused_at_definition(parameters: dict, fragment: str) -> None:
    description = {"name": "broken", "description": "", "parameters": parameters}
    with pytest.raises(ValueError, match="broken") as raised:
        tool_from_json_schema(description, echo)
    assert fragment in str(raised.value)


@pytest.mark.parametrize(
    "description",
    [{"description": "no name"}, {"name": 7}, {"name": "x", "parameters": "not a dict"}, ["x"]],
)
def test_malformed_descriptions_are_refused(description: Any) -> None:
    with pytest.raises(ValueError):
        tool_from_json_schema(description, echo)


def test_a_schema_without_a_handler_answers_with_an_error_until_given_one() -> None:
    bare = tool_from_json_schema(MCP_WEATHER)
    outcome = run(bare, {"city": "Oslo"})
    assert outcome.error_kind is ErrorKind.TOOL_EXCEPTION and outcome.valid
    assert outcome.text.startswith("ERROR: Tool 'get_weather' failed: ")
    assert "has no implementation" in outcome.text
    handled = bare.with_handler(lambda ctx, city, unit, **rest: f"{city}: sunny ({unit})")
    assert run(handled, {"city": "Oslo"}).text == "Oslo: sunny (c)"


def test_handler_gets_its_own_copy_of_the_arguments() -> None:
    def mutating(ctx: Sandbox, lines: list, **rest: Any) -> str:
        lines.append({"sku": "injected", "qty": 1})
        return "ok"

    order = tool_from_json_schema(
        {"name": "place_order", "description": "", "parameters": ORDER_PARAMETERS}, mutating
    )
    arguments = {"lines": [{"sku": "a", "qty": 1}]}
    outcome = run(order, arguments)
    assert outcome.text == "ok"
    assert arguments == {"lines": [{"sku": "a", "qty": 1}]}
    assert outcome.arguments == {"lines": [{"sku": "a", "qty": 1}]}


def test_toolbox_from_json_schemas_with_handlers_by_name() -> None:
    box = Toolbox.from_json_schemas(
        [
            OPENAI_WEATHER,
            {"name": "ping", "description": "Ping.", "inputSchema": {"type": "object"}},
        ],
        handlers={"ping": lambda ctx: "pong", "get_weather": echo},
    )
    sandbox = Sandbox(now=datetime(2026, 3, 10))
    ping = box.run(ParsedCall(raw="", name="ping", arguments={}), sandbox)
    assert ping.text == "pong"
    assert [s["function"]["name"] for s in box.schemas_copy()] == ["get_weather", "ping"]
    with pytest.raises(ValueError, match="'nope'"):
        Toolbox.from_json_schemas([OPENAI_WEATHER], handlers={"nope": echo})


def test_an_async_handler_is_awaited() -> None:
    async def forecast(ctx: Sandbox, city: str, unit: str, **rest: Any) -> dict[str, str]:
        return {"city": city, "sky": "clear", "unit": unit}

    outcome = run(tool_from_json_schema(MCP_WEATHER, forecast), {"city": "Oslo"})
    assert outcome.text == '{"city": "Oslo", "sky": "clear", "unit": "c"}'
    assert outcome.execution is Execution.OK
