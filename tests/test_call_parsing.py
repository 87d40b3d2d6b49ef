"""Reading a model's turn into calls, as the env does: every expected `ParsedCall` and
content below is worked out by hand from the text the model wrote."""

from __future__ import annotations

import json
from datetime import date
from enum import Enum
from typing import Any

import pytest

from core.records import ErrorKind
from tools.calls import ParsedCall, parse_action

MALFORMED = ErrorKind.MALFORMED_JSON
NOT_CLOSED = "ERROR: Tool call was not closed with </tool_call>"
NO_OPENING = (
    "ERROR: Found </tool_call> without an opening <tool_call>; write "
    '<tool_call>{"name": ..., "arguments": {...}}</tool_call>'
)
NO_NAME = "ERROR: Tool call has no 'name' (expected a string naming a tool)"
NOT_AN_OBJECT = "ERROR: A tool call must be a JSON object with 'name' and 'arguments'"
NOT_AN_ARGUMENTS_OBJECT = "ERROR: 'arguments' of tool 'f' must be a JSON object"
NO_FUNCTION = "ERROR: tool_calls entries need a 'function' object"
GET_ORDER = '<tool_call>{"name": "get_order", "arguments": {"order_id": 7}}</tool_call>'
DATE = '<tool_call>{"name": "get_current_date"}</tool_call>'


def block(body: str) -> str:
    return f"<tool_call>{body}</tool_call>"


def the_call(text: str | dict[str, Any]) -> ParsedCall:
    (call,) = parse_action(text).calls
    return call


def verdict(call: ParsedCall) -> tuple[Any, ...]:
    """What the toolbox acts on: the name, the arguments, the error kind and message."""
    return (call.name, call.arguments, call.error_kind, call.error)


def openai(*requests: Any, content: Any = "") -> dict[str, Any]:
    return {"role": "assistant", "content": content, "tool_calls": list(requests)}


def request(name: str, arguments: Any = "{}", **extra: Any) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "arguments": arguments}, **extra}


# ---- text: content, think, answer ---------------------------------------------------


def test_plain_text_is_the_whole_content_stripped_with_no_calls() -> None:
    parsed = parse_action("  Your refund is on its way.\n")
    assert (parsed.text, parsed.content) == (
        "  Your refund is on its way.\n",
        "Your refund is on its way.",
    )
    assert (parsed.think, parsed.answer, parsed.calls, parsed.requests) == (None, None, [], [])


def test_a_call_is_cut_out_of_the_content_around_it() -> None:
    parsed = parse_action(f"Let me check. {GET_ORDER} One moment.")
    assert parsed.content == "Let me check.  One moment."  # the spaces on both sides stay
    assert parsed.calls == [ParsedCall(raw=GET_ORDER, name="get_order", arguments={"order_id": 7})]


def test_a_call_at_the_very_start_comes_before_a_later_think() -> None:
    parsed = parse_action(f"{GET_ORDER}<think>then the date</think>{DATE}")
    assert [c.name for c in parsed.calls] == ["get_order", "get_current_date"]
    assert (parsed.think, parsed.content) == ("then the date", "")


def test_a_think_before_the_calls_is_read_and_cut_out() -> None:
    parsed = parse_action(f"<think>  look it up  </think>Checking.{GET_ORDER}{DATE}")
    assert (parsed.think, parsed.content) == ("look it up", "Checking.")
    assert [c.name for c in parsed.calls] == ["get_order", "get_current_date"]


def test_only_the_first_think_is_kept_and_both_leave_the_content() -> None:
    parsed = parse_action("<think>first</think>A<think>second</think>B")
    assert (parsed.think, parsed.content) == ("first", "AB")


def test_an_unclosed_think_runs_to_the_end_of_the_text() -> None:
    parsed = parse_action("Answer: <think>still thinking")
    assert (parsed.think, parsed.content, parsed.calls) == ("still thinking", "Answer:", [])


def test_the_answer_is_the_text_between_the_answer_tags_stripped() -> None:
    assert parse_action("<answer> 42 </answer> and more").answer == "42"


def test_an_unclosed_answer_runs_to_the_end_of_the_text() -> None:
    assert parse_action("So: <answer> 7 apples\n").answer == "7 apples"


def test_only_the_first_answer_counts() -> None:
    assert parse_action("<answer>6</answer><answer>7</answer>").answer == "6"


# ---- text: calls that are cut off or unmatched --------------------------------------


def test_an_unclosed_call_with_whole_json_says_it_was_not_closed() -> None:
    text = 'Sure. <tool_call>{"name": "get_order", "arguments": {"order_id": 7}}'
    parsed = parse_action(text)
    raw = text.removeprefix("Sure. ")
    assert parsed.calls == [
        ParsedCall(raw, "get_order", {"order_id": 7}, error_kind=MALFORMED, error=NOT_CLOSED)
    ]
    assert parsed.content == "Sure."


def test_an_unclosed_call_cut_mid_json_reports_the_json_error() -> None:
    # body `{"name": "f"` is 12 characters: the object ends unfinished after column 12
    expected = "ERROR: Malformed JSON in tool call: EOF while parsing an object at line 1 column 12"
    call = the_call('<tool_call>{"name": "f"')
    assert call == ParsedCall('<tool_call>{"name": "f"', error_kind=MALFORMED, error=expected)


def test_a_closing_tag_without_an_opening_one_is_an_error_call_after_the_real_ones() -> None:
    text = f"{DATE} oops</tool_call>"
    parsed = parse_action(text)
    assert parsed.calls == [
        ParsedCall(DATE, "get_current_date", {}),
        ParsedCall(text, error_kind=MALFORMED, error=NO_OPENING),
    ]
    assert parsed.content == "oops</tool_call>"


def test_two_closed_calls_are_two_calls_and_no_error() -> None:
    calls = parse_action(GET_ORDER + "\n" + DATE).calls
    assert [(c.name, c.error_kind) for c in calls] == [
        ("get_order", None),
        ("get_current_date", None),
    ]


# ---- text: the call body ------------------------------------------------------------


def test_a_body_that_is_not_a_json_object_is_refused() -> None:
    assert the_call(block("[1, 2]")) == ParsedCall(
        block("[1, 2]"), error_kind=MALFORMED, error=NOT_AN_OBJECT
    )


def test_parameters_stand_in_for_arguments() -> None:
    call = the_call(block('{"name": "f", "parameters": {"x": 1}}'))
    assert (call.name, call.arguments, call.error) == ("f", {"x": 1}, None)


def test_arguments_win_over_parameters_when_both_are_given() -> None:
    call = the_call(block('{"name": "f", "arguments": {"x": 1}, "parameters": {"x": 2}}'))
    assert call.arguments == {"x": 1}


@pytest.mark.parametrize("body", ['{"name": "f"}', '{"name": "f", "arguments": null}'])
def test_a_call_without_arguments_has_empty_arguments(body: str) -> None:
    assert the_call(block(body)) == ParsedCall(block(body), "f", {})


@pytest.mark.parametrize(
    "body", ['{"name": "", "arguments": {}}', '{"name": 5, "arguments": {}}', '{"arguments": {}}']
)
def test_a_name_that_is_not_a_non_empty_string_is_a_missing_name(body: str) -> None:
    call = the_call(block(body))
    assert call == ParsedCall(block(body), error_kind=ErrorKind.MISSING_NAME, error=NO_NAME)


def test_arguments_that_are_not_an_object_are_refused_naming_the_tool() -> None:
    call = the_call(block('{"name": "f", "arguments": [1]}'))
    assert verdict(call) == ("f", None, MALFORMED, NOT_AN_ARGUMENTS_OBJECT)


def test_nan_in_a_call_body_is_malformed_json() -> None:
    # `{"name": "f", "arguments": {"x": NaN}}`: the N is the 34th character
    call = the_call(block('{"name": "f", "arguments": {"x": NaN}}'))
    assert call.error == "ERROR: Malformed JSON in tool call: expected value at line 1 column 34"
    assert (call.error_kind, call.arguments) == (MALFORMED, None)


def test_an_escaped_lone_surrogate_in_a_call_body_never_reaches_the_arguments() -> None:
    call = the_call(block('{"name": "f", "arguments": {"x": "\\udc00"}}'))
    assert (call.error_kind, call.arguments) == (MALFORMED, None)
    assert call.error.startswith("ERROR: Malformed JSON in tool call: ")


def test_a_long_plain_call_body_is_read_whole() -> None:
    note = "n" * 400  # a body past the short-call fast path goes through the sanitiser
    call = the_call(block(json.dumps({"name": "f", "arguments": {"note": note}})))
    assert (call.name, call.arguments, call.error) == ("f", {"note": note}, None)


def test_an_over_long_integer_in_a_call_body_is_not_plain_json() -> None:
    text = block('{"name": "f", "arguments": {"n": ' + "9" * 400 + "}}")
    assert the_call(text) == ParsedCall(
        text,
        error_kind=MALFORMED,
        error="ERROR: Tool call is not plain JSON: an integer longer than 1024 bits at arguments.n",
    )


@pytest.mark.parametrize("number", ["1e400", "-1E+999"])
def test_a_number_that_overflows_in_a_short_body_is_not_plain_json(number: str) -> None:
    call = the_call(block('{"name": "f", "arguments": {"x": ' + number + "}}"))
    assert verdict(call) == (
        None,
        None,
        MALFORMED,
        "ERROR: Tool call is not plain JSON: a non-finite number at arguments.x",
    )


def test_a_short_body_with_a_finite_exponent_is_read() -> None:
    call = the_call(block('{"name": "f", "arguments": {"x": 2.5e3}}'))
    assert verdict(call) == ("f", {"x": 2500.0}, None, None)


def test_nesting_past_64_levels_in_a_short_body_is_not_plain_json() -> None:
    # containers: the call (level 0), its arguments (1), then 32 list/dict pairs: levels
    # 2..65; the 65th level (the 66th container) is one too deep. Under 300 characters.
    value = "0"
    for _ in range(32):
        value = '[{"k":' + value + "}]"
    body = '{"name":"f","arguments":{"a":' + value + "}}"
    assert len(body) < 300
    call = the_call(block(body))
    assert (call.error_kind, call.arguments) == (MALFORMED, None)
    assert call.error == (
        "ERROR: Tool call is not plain JSON: nesting deeper than 64 levels at "
        "arguments.a[0].k[0].k[0].k..."
    )


# ---- the cap on calls per turn ------------------------------------------------------


def test_a_turn_of_exactly_64_calls_is_read_whole() -> None:
    calls = parse_action(DATE * 64).calls
    assert len(calls) == 64 and all(c.error is None for c in calls)


def test_the_65th_call_of_a_turn_becomes_one_error_call() -> None:
    calls = parse_action(DATE * 65).calls
    assert len(calls) == 65 and all(c.error is None for c in calls[:64])
    assert calls[64] == ParsedCall(
        "<65 tool calls>",
        error_kind=MALFORMED,
        error="ERROR: 65 tool calls in one turn; only the first 64 were read, "
        "the rest were not run",
    )


def test_structured_calls_past_64_are_not_read_and_counted_in_the_error() -> None:
    parsed = parse_action(openai(*[request("get_current_date", id=f"c{i}") for i in range(66)]))
    assert [c.call_id for c in parsed.calls[:64]] == [f"c{i}" for i in range(64)]
    assert len(parsed.calls) == 65 and len(parsed.requests) == 64
    assert parsed.calls[64].error == (
        "ERROR: 66 tool calls in one turn; only the first 64 were read, the rest were not run"
    )


def test_calls_in_the_content_and_structured_calls_share_the_cap() -> None:
    parsed = parse_action(openai(*[request("f")] * 63, content=DATE * 2))
    assert [c.name for c in parsed.calls[:3]] == ["get_current_date", "get_current_date", "f"]
    assert len(parsed.calls) == 65
    assert parsed.calls[64].raw == "<65 tool calls>"


# ---- OpenAI-style messages ----------------------------------------------------------


def test_a_structured_call_keeps_its_request_as_sorted_json_text() -> None:
    message = openai(
        {"type": "function", "id": "c1", "function": {"name": "f", "arguments": '{"x": 1}'}}
    )
    raw = '{"function": {"arguments": "{\\"x\\": 1}", "name": "f"}, "id": "c1", "type": "function"}'
    assert the_call(message) == ParsedCall(raw, "f", {"x": 1}, call_id="c1")


def test_call_ids_that_are_not_non_empty_strings_fall_back_to_the_position() -> None:
    message = openai(request("f", id="c1"), request("f"), request("f", id=""), request("f", id=7))
    ids = [c.call_id for c in parse_action(message).calls]
    assert ids == ["c1", "call_1", "call_2", "call_3"]


ONE = request("f", '{"x": 2}', id="c9")


@pytest.mark.parametrize("tool_calls", [ONE, (ONE,)], ids=["one-dict", "tuple"])
def test_tool_calls_given_as_one_dict_or_a_tuple_are_read(tool_calls: Any) -> None:
    call = the_call({"role": "assistant", "content": None, "tool_calls": tool_calls})
    assert (call.name, call.arguments, call.call_id) == ("f", {"x": 2}, "c9")


@pytest.mark.parametrize(
    ("entry", "raw"),
    [("get_order", '"get_order"'), ({"function": "get_order"}, '{"function": "get_order"}')],
)
def test_entries_without_a_function_object_are_error_calls(entry: Any, raw: str) -> None:
    assert the_call(openai(entry)) == ParsedCall(raw, error_kind=MALFORMED, error=NO_FUNCTION)


def test_a_message_without_content_has_empty_text() -> None:
    parsed = parse_action({"role": "assistant", "content": None, "tool_calls": None})
    assert (parsed.text, parsed.content, parsed.calls, parsed.requests) == ("", "", [], [])


def test_content_that_is_not_text_becomes_its_json() -> None:
    parsed = parse_action({"role": "assistant", "content": ["a", 1]})
    assert (parsed.text, parsed.content) == ('["a", 1]', '["a", 1]')


def test_calls_in_the_content_come_before_the_structured_ones() -> None:
    parsed = parse_action(openai(request("f", id="s1"), content=f"Checking. {DATE}"))
    assert [(c.name, c.call_id) for c in parsed.calls] == [
        ("get_current_date", None),
        ("f", "s1"),
    ]
    assert parsed.content == "Checking."


def test_the_requests_are_plain_copies_of_the_tool_calls() -> None:
    arguments = {"x": [1]}
    parsed = parse_action(openai(request("f", arguments, id="c1")))
    arguments["x"].append(2)
    assert parsed.requests == [
        {"type": "function", "function": {"name": "f", "arguments": {"x": [1]}}, "id": "c1"}
    ]
    assert parsed.calls[0].arguments == {"x": [1]}


@pytest.mark.parametrize("arguments", [None, "", "  \n"])
def test_absent_or_blank_arguments_text_is_no_arguments(arguments: Any) -> None:
    call = the_call(openai(request("f", arguments)))
    assert (call.name, call.arguments, call.error) == ("f", {}, None)


def test_malformed_arguments_text_is_an_error_that_keeps_the_name() -> None:
    # `{"x": NaN}`: the N is the 7th character
    call = the_call(openai(request("f", '{"x": NaN}')))
    error = "ERROR: Malformed JSON in tool call: expected value at line 1 column 7"
    assert verdict(call) == ("f", None, MALFORMED, error)


def test_an_over_long_integer_in_arguments_text_is_not_plain_json() -> None:
    call = the_call(openai(request("f", '{"n": ' + "9" * 400 + "}")))
    assert (call.name, call.error_kind, call.error) == (
        "f",
        MALFORMED,
        "ERROR: Tool call is not plain JSON: an integer longer than 1024 bits at n in 'arguments'",
    )


def test_arguments_text_that_is_not_an_object_is_refused() -> None:
    call = the_call(openai(request("f", "[1]")))
    assert verdict(call) == ("f", None, MALFORMED, NOT_AN_ARGUMENTS_OBJECT)


@pytest.mark.parametrize(
    "arguments", ['{"x": NaN}', "[1]", '{"n": ' + "9" * 400 + "}"], ids=["nan", "list", "long-int"]
)
def test_a_refused_structured_call_keeps_its_request_as_raw_text(arguments: str) -> None:
    raw = '{"function": {"arguments": "' + arguments.replace('"', '\\"') + '", "name": "f"}, '
    raw += '"type": "function"}'
    assert the_call(openai(request("f", arguments))).raw == raw


def test_a_refused_structured_call_does_not_stop_the_ones_after_it() -> None:
    message = openai("get_order", {1: "not json"}, request("f", id="c3"))
    calls = parse_action(message).calls
    assert [(c.name, c.call_id, c.error_kind) for c in calls] == [
        (None, None, MALFORMED),
        (None, None, MALFORMED),
        ("f", "c3", None),
    ]


def test_a_call_body_may_hold_10000_json_values() -> None:
    # the call, its name, its arguments and the list: 4 values + 9,996
    body = json.dumps({"name": "f", "arguments": {"v": [0] * 9996}})
    call = the_call(block(body))
    assert (call.error, len(call.arguments["v"])) == (None, 9996)


def test_a_call_body_of_10001_json_values_is_refused() -> None:
    body = json.dumps({"name": "f", "arguments": {"v": [0] * 9997}})
    assert verdict(the_call(block(body))) == (
        None,
        None,
        MALFORMED,
        "ERROR: Tool call is not plain JSON: too many values at arguments.v[9996]",
    )


def test_a_python_built_call_may_hold_10000_json_values() -> None:
    # the request, its function, the name, the arguments and the list: 5 values + 9,995
    call = the_call(openai({"function": {"name": "f", "arguments": {"v": [0] * 9995}}}))
    assert (call.error, len(call.arguments["v"])) == (None, 9995)


def test_a_python_built_call_of_10001_json_values_is_refused() -> None:
    call = the_call(openai({"function": {"name": "f", "arguments": {"v": [0] * 9996}}}))
    assert (call.error_kind, call.arguments) == (MALFORMED, None)
    assert call.error == (
        "ERROR: Tool call is not plain JSON: too many values at function.arguments.v[9995]"
    )


def test_arguments_text_may_hold_10000_json_values() -> None:
    # the arguments object and the list: 2 values + 9,998
    call = the_call(openai(request("f", json.dumps({"v": [0] * 9998}))))
    assert (call.error, len(call.arguments["v"])) == (None, 9998)


def test_arguments_text_of_10001_json_values_is_refused() -> None:
    call = the_call(openai(request("f", json.dumps({"v": [0] * 9999}))))
    assert (call.name, call.error) == (
        "f",
        "ERROR: Tool call is not plain JSON: too many values at v[9998] in 'arguments'",
    )


# ---- actions that are not text ------------------------------------------------------


def test_a_bytes_action_is_read_as_utf8_with_bad_bytes_replaced() -> None:
    assert parse_action(b"caf\xc3\xa9 \xff").text == "caf\u00e9 \ufffd"  # type: ignore[arg-type]


def test_a_number_action_is_read_as_its_json() -> None:
    assert parse_action(42).content == "42"  # type: ignore[arg-type]


class Colour(Enum):
    RED = "red"


@pytest.mark.parametrize(
    ("action", "text"), [(date(2026, 3, 10), "2026-03-10"), (Colour.RED, "red")]
)
def test_an_action_that_sanitises_to_text_is_that_text_unquoted(action: Any, text: str) -> None:
    assert parse_action(action).text == text


def test_a_str_subclass_action_is_read_as_its_characters_not_its_str() -> None:
    class Loud(str):
        def __str__(self) -> str:
            return "LOUD"

    assert parse_action(Loud("quiet")).text == "quiet"


def test_non_text_content_is_cut_at_10000_values() -> None:
    # the list is 1 value, so its 10,000th item is the 10,001st value: replaced
    parsed = parse_action({"role": "assistant", "content": [0] * 10000})
    assert parsed.text == "[" + "0, " * 9999 + '"<truncated>"]'
