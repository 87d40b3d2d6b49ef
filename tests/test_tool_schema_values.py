"""`@tool` and `tool_from_json_schema` as a tool author meets them: the schema a model is
shown and the error message an agent reads, each written out by hand in full."""

from __future__ import annotations

import math
from datetime import date
from typing import Annotated, Any, Literal

import pytest
from pydantic import AfterValidator

from core.records import ErrorKind, Termination
from tests.test_tool_schema import Address, Unit
from tools.schema import (
    CallError,
    Tool,
    describe_value,
    render_tools_prompt,
    tool,
    tool_from_json_schema,
)

PATTERN = "^[a-zA-Z0-9_-]{1,64}$"
PLAIN = {"name": "f", "description": "d", "parameters": {"type": "object"}}


def body(ctx: Any) -> str:
    return "ran"


def mismatch(path: str, expected: str, got: str) -> CallError:
    message = f"ERROR: Type mismatch in parameter '{path}': expected {expected}, got {got}"
    return CallError(ErrorKind.TYPE_MISMATCH, message)


def make_lookup() -> Tool:
    """Tools are built inside each test, so that the test runs the code that builds them."""

    def lookup(ctx: Any, order_id: int, note: str = "none", rush: bool = False) -> str:
        """Look up an order
        by its number.

        Args:
            order_id (int): The order's
                number.
            note: Free text.

        Returns:
            order_id: the number, echoed back.
        """
        return f"{ctx}:{order_id}:{note}:{rush}"

    return tool(lookup)


# ---- the schema a model is shown ------------------------------------------------------


def test_the_schema_is_the_openai_function_form_with_docstring_descriptions() -> None:
    assert make_lookup().schema == {
        "type": "function",
        "function": {
            "name": "lookup",
            "description": "Look up an order by its number.",
            "parameters": {
                "type": "object",
                "properties": {
                    "order_id": {"type": "integer", "description": "The order's number."},
                    "note": {"type": "string", "default": "none", "description": "Free text."},
                    "rush": {"type": "boolean", "default": False},
                },
                "required": ["order_id"],
                "additionalProperties": False,
            },
        },
    }
    assert make_lookup().description == "Look up an order by its number."


def test_a_tool_without_a_docstring_or_parameters_has_an_empty_schema() -> None:
    assert tool(body).schema == {
        "type": "function",
        "function": {
            "name": "body",
            "description": "",
            "parameters": {
                "type": "object",
                "properties": {},
                "required": [],
                "additionalProperties": False,
            },
        },
    }


def probe_with(doc: str) -> dict[str, Any]:
    """The function schema of a one-parameter tool (`x: int`) documented by `doc`."""

    def probe(ctx: Any, x: int) -> str:
        return "ok"

    probe.__doc__ = doc
    return tool(probe).schema["function"]


X_DOCUMENTED = {"type": "integer", "description": "The x."}


@pytest.mark.parametrize("header", ["Args:", "Arguments:", "Parameters:"])
@pytest.mark.parametrize("section", ["Returns:", "Raises:", "Examples:"])
def test_each_arguments_header_is_read_and_each_other_section_is_not(
    header: str, section: str
) -> None:
    function = probe_with(f"Probe.\n\n{header}\n    x: The x.\n{section}\n    x: Not about x.\n")
    assert function["description"] == "Probe."
    assert function["parameters"]["properties"]["x"] == X_DOCUMENTED


def test_a_section_before_the_arguments_does_not_end_them() -> None:
    function = probe_with("Probe.\n\nReturns:\n    Text.\n\nArgs:\n    x: The x.\n")
    assert function["parameters"]["properties"]["x"] == X_DOCUMENTED


def test_an_arguments_line_before_any_argument_is_ignored() -> None:
    function = probe_with("Probe.\n\nArgs:\n    (all in integers)\n    x: The x.\n")
    assert function["parameters"]["properties"]["x"] == X_DOCUMENTED


def test_summary_lines_after_a_section_are_not_the_summary() -> None:
    assert probe_with("Probe.\n\nReturns:\n    Text.\n")["description"] == "Probe."


def test_nested_models_and_enums_are_kept_in_defs() -> None:
    def ship(ctx: Any, where: Address, unit: Unit = Unit.CELSIUS) -> str:
        return "ok"

    assert tool(ship).schema["function"]["parameters"] == {
        "type": "object",
        "properties": {
            "where": {"$ref": "#/$defs/Address"},
            "unit": {"$ref": "#/$defs/Unit", "default": "celsius"},
        },
        "required": ["where"],
        "additionalProperties": False,
        "$defs": {
            "Address": {
                "type": "object",
                "title": "Address",
                "properties": {
                    "street": {"type": "string", "title": "Street"},
                    "zip_code": {"type": "integer", "title": "Zip Code"},
                },
                "required": ["street", "zip_code"],
            },
            "Unit": {"type": "string", "title": "Unit", "enum": ["celsius", "fahrenheit"]},
        },
    }


def test_the_tools_prompt_lists_each_schema_as_sorted_json() -> None:
    schema = {"type": "function", "function": {"name": "f", "parameters": {}}}
    assert render_tools_prompt([schema]) == (
        "# Tools\n"
        "\n"
        "You may call one or more functions. Function signatures are inside <tools></tools>:\n"
        "<tools>\n"
        '{"function": {"name": "f", "parameters": {}}, "type": "function"}\n'
        "</tools>\n"
        "\n"
        "For each call, return a JSON object inside <tool_call></tool_call> tags:\n"
        "<tool_call>\n"
        '{"name": <function-name>, "arguments": <args-json-object>}\n'
        "</tool_call>"
    )


# ---- defining a tool -----------------------------------------------------------------


def test_a_tool_is_named_after_its_function_unless_renamed() -> None:
    assert (tool(body).name, tool(body, name="run-it").name) == ("body", "run-it")
    assert tool(name="run-it")(body).schema["function"]["name"] == "run-it"


def test_a_tool_defaults_to_version_1_0_no_ending_and_a_two_second_timeout() -> None:
    made = tool(body)
    assert (made.version, made.ends_episode, made.timeout_s) == ("1.0", None, 2.0)


def test_version_ending_and_timeout_are_kept_as_declared() -> None:
    made = tool(body, version="3.1", ends_episode=Termination.ESCALATION, timeout_s=None)
    assert (made.version, made.ends_episode, made.timeout_s) == (
        "3.1",
        Termination.ESCALATION,
        None,
    )


@pytest.mark.parametrize("timeout_s", [0, -1.0])
def test_a_timeout_that_is_not_positive_is_refused(timeout_s: float) -> None:
    message = f"tool 'body': timeout_s must be > 0 or None, got {timeout_s!r}"
    with pytest.raises(ValueError) as raised:
        tool(body, timeout_s=timeout_s)
    assert str(raised.value) == message


def test_a_timeout_under_a_second_is_allowed() -> None:
    assert tool(body, timeout_s=0.5).timeout_s == 0.5


@pytest.mark.parametrize(("name", "shown"), [("check refund", "'check refund'"), (5, "5")])
def test_a_name_off_the_openai_pattern_is_refused_naming_it(name: Any, shown: str) -> None:
    with pytest.raises(ValueError) as raised:
        tool(body, name=name)
    assert str(raised.value) == (
        f"tool name {shown} does not match {PATTERN} (OpenAI's function-name pattern); "
        "pass name=... to rename it"
    )


def test_a_parameter_without_a_type_hint_is_refused() -> None:
    def probe(ctx: Any, x) -> str:  # type: ignore[no-untyped-def]
        return "ok"

    with pytest.raises(TypeError) as raised:
        tool(probe)
    assert str(raised.value) == "tool 'probe': parameter 'x' needs a type hint"


def test_calling_a_tool_runs_its_body_with_the_context() -> None:
    assert make_lookup()("ctx", order_id=7) == "ctx:7:none:False"


def test_with_handler_swaps_the_body_and_leaves_the_tool_as_it_was() -> None:
    original = make_lookup()
    other = original.with_handler(lambda ctx, **kwargs: sorted(kwargs))
    assert other("ctx", order_id=7, note="n") == ["note", "order_id"]
    assert (other.name, other.schema) == ("lookup", original.schema)
    assert original("ctx", order_id=7) == "ctx:7:none:False"


# ---- validating a call's arguments ---------------------------------------------------


def test_valid_arguments_come_back_with_defaults_filled() -> None:
    assert make_lookup().validate({"order_id": 7}) == {"order_id": 7, "note": "none", "rush": False}


def test_a_missing_and_an_unexpected_argument_are_reported_together() -> None:
    assert make_lookup().validate({"note": "x", "color": "red"}) == CallError(
        ErrorKind.MISSING_ARGUMENT,
        "ERROR: Missing required parameter 'order_id' for tool 'lookup'; "
        "Unexpected parameter 'color' for tool 'lookup' "
        "(expected parameters: order_id, note, rush)",
    )


def test_an_argument_to_a_tool_without_parameters_says_none_are_expected() -> None:
    assert tool(body).validate({"x": 1}) == CallError(
        ErrorKind.UNEXPECTED_ARGUMENT,
        "ERROR: Unexpected parameter 'x' for tool 'body' (expected parameters: none)",
    )


def test_arguments_that_are_not_an_object_are_a_mismatch_of_the_arguments() -> None:
    assert make_lookup().validate(["a"]) == mismatch("arguments", "object", "array ['a']")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ({"order_id": "7"}, mismatch("order_id", "integer", "string '7'")),
        ({"order_id": 7.5}, mismatch("order_id", "integer", "number 7.5")),
        ({"order_id": 7, "note": 5}, mismatch("note", "string", "integer 5")),
        ({"order_id": 7, "rush": 1}, mismatch("rush", "boolean", "integer 1")),
        ({"order_id": None}, mismatch("order_id", "integer", "null")),
    ],
)
def test_json_type_mismatches_name_the_json_types(arguments: dict, error: CallError) -> None:
    assert make_lookup().validate(arguments) == error


def test_a_shown_value_of_60_characters_is_shown_whole() -> None:
    value = "x" * 58  # its repr, quotes included, is 60 characters
    assert make_lookup().validate({"order_id": value}) == mismatch(
        "order_id", "integer", f"string '{value}'"
    )


def test_a_shown_value_over_60_characters_is_cut_to_57_and_an_ellipsis() -> None:
    value = "x" * 59  # repr of 61 characters: the quote and 56 x are kept
    got = "string '" + "x" * 56 + "..."
    assert make_lookup().validate({"order_id": value}) == mismatch("order_id", "integer", got)


class Thing:
    def __str__(self) -> str:
        return "thing-text"

    def __repr__(self) -> str:
        return "Thing()"


def test_a_value_of_another_type_is_shown_by_its_type_name_and_text() -> None:
    error = mismatch("order_id", "integer", "Thing thing-text")
    assert make_lookup().validate({"order_id": Thing()}) == error


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text")

    __repr__ = __str__


def test_a_value_that_cannot_be_printed_is_shown_as_unprintable() -> None:
    error = mismatch("order_id", "integer", "Unprintable (unprintable)")
    assert make_lookup().validate({"order_id": Unprintable()}) == error


OPTIONS = tuple(f"option{i:02d}" for i in range(30))


def make_pick() -> Tool:
    def pick(ctx: Any, choice: Literal[OPTIONS]) -> str:  # type: ignore[valid-type]
        """Pick one of thirty options."""
        return choice

    return tool(pick)


def test_an_invalid_value_message_is_cut_at_200_characters() -> None:
    detail = "Input should be " + ", ".join(f"'{o}'" for o in OPTIONS[:-1]) + " or 'option29'"
    assert len(detail) > 200
    assert make_pick().validate({"choice": "option30"}) == CallError(
        ErrorKind.INVALID_VALUE, f"ERROR: Invalid value for parameter 'choice': {detail[:200]}"
    )


def crash(value: int) -> int:
    raise RuntimeError("bug in the check")


def make_fragile() -> Tool:
    def fragile(ctx: Any, x: Annotated[int, AfterValidator(crash)]) -> str:
        """A tool whose own check crashes."""
        return "ok"

    return tool(fragile)


def test_a_check_that_crashes_is_an_invalid_value_naming_the_exception() -> None:
    assert make_fragile().validate({"x": 1}) == CallError(
        ErrorKind.INVALID_VALUE,
        "ERROR: Arguments of tool 'fragile' could not be checked: RuntimeError",
    )


def make_schedule() -> Tool:
    def schedule(ctx: Any, items: list[int], day: date, ratio: float = 1.0) -> str:
        """A list and a date (the date travels JSON-encoded)."""
        return "ok"

    return tool(schedule)


def test_a_json_encoded_parameter_is_read_from_its_json_text() -> None:
    assert make_schedule().validate({"items": [1], "day": "2026-02-01"}) == {
        "items": [1],
        "day": date(2026, 2, 1),
        "ratio": 1.0,
    }


def test_a_nan_float_is_accepted_beside_a_json_encoded_parameter_too() -> None:
    # A float parameter takes NaN when every argument passes the Python check ...
    alone = make_schedule().validate({"items": [], "day": date(2026, 2, 1), "ratio": math.nan})
    assert isinstance(alone, dict) and math.isnan(alone["ratio"])
    # ... and also when the date comes as JSON text, read in JSON mode.
    encoded = make_schedule().validate({"items": [], "day": "2026-02-01", "ratio": math.nan})
    assert isinstance(encoded, dict) and math.isnan(encoded["ratio"])


def test_arguments_that_cannot_be_written_as_json_keep_the_python_verdict() -> None:
    assert make_schedule().validate({"items": {1, 2}, "day": Unprintable()}) == CallError(
        ErrorKind.TYPE_MISMATCH,
        "ERROR: Type mismatch in parameter 'items': expected array, got set {1, 2}; "
        "Invalid value for parameter 'day': Input should be a valid date",
    )


# ---- tools from JSON Schema ----------------------------------------------------------


def test_a_json_schema_tool_has_the_same_defaults_as_a_typed_one() -> None:
    made = tool_from_json_schema(PLAIN)
    assert (made.name, made.version, made.ends_episode, made.timeout_s) == ("f", "1.0", None, 2.0)


def test_a_json_schema_tool_keeps_what_it_is_given() -> None:
    made = tool_from_json_schema(
        PLAIN, body, name="g", version="2.0", ends_episode=Termination.ESCALATION, timeout_s=None
    )
    assert (made.name, made.version, made.ends_episode, made.timeout_s) == (
        "g",
        "2.0",
        Termination.ESCALATION,
        None,
    )
    assert made("ctx") == "ran"


SCHEMA = {
    "name": "f",
    "description": "d",
    "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}},
}


def test_a_json_schema_tool_refuses_unknown_arguments_by_default() -> None:
    assert tool_from_json_schema(SCHEMA).validate({"a": 1, "b": 2}) == CallError(
        ErrorKind.UNEXPECTED_ARGUMENT,
        "ERROR: Unexpected parameter 'b' for tool 'f' (expected parameters: a)",
    )


def test_a_json_schema_tool_may_allow_unknown_arguments() -> None:
    lenient = tool_from_json_schema(SCHEMA, forbid_extra=False)
    assert lenient.validate({"a": 1, "b": 2}) == {"a": 1, "b": 2}


def test_null_and_booleans_are_shown_as_the_agent_wrote_them() -> None:
    @tool(timeout_s=None)
    def lookup(ctx: Any, name: str) -> str:
        """Look a name up.

        Args:
            name: who.
        """
        return name

    assert describe_value(None) == "null"
    assert describe_value(False) == "boolean false"
    checked = lookup.validate({"name": None})
    assert checked == mismatch("name", "string", "null")
    assert checked.message == "ERROR: Type mismatch in parameter 'name': expected string, got null"
