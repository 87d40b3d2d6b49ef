"""Tool-call syntaxes of real model families, read into the OpenAI message the env accepts."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

import envs
from core.records import Execution
from policies.tool_formats import FORMATS, detect_format, parse_tool_calls, to_message
from tests.conftest import lost_order_scenario

ORDER = {"order_id": 1001}
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_order",
            "parameters": {
                "type": "object",
                "properties": {"order_id": {"type": "integer"}, "note": {"type": "string"}},
            },
        },
    }
]

CASES = [
    (
        "hermes",
        'Let me check.\n<tool_call>\n{"name": "get_order", "arguments": {"order_id": 1001}}\n'
        "</tool_call>",
        "Let me check.",
        [("get_order", ORDER)],
    ),
    (
        "hermes",
        '<tool_call>{"name": "get_order", "arguments": {"order_id": 1001}}</tool_call>\n'
        '<tool_call>{"name": "track_order", "arguments": {"order_id": 7}}</tool_call>',
        "",
        [("get_order", ORDER), ("track_order", {"order_id": 7})],
    ),
    ("json", '{"name": "get_order", "arguments": {"order_id": 1001}}', "", [("get_order", ORDER)]),
    (
        "json",
        '```json\n[{"name": "get_order", "parameters": {"order_id": 1001}}]\n```',
        "",
        [("get_order", ORDER)],
    ),
    (
        "llama3",
        '<|python_tag|>{"name": "get_order", "parameters": {"order_id": 1001}}<|eom_id|>',
        "",
        [("get_order", ORDER)],
    ),
    (
        "llama3",
        '<|python_tag|>{"name": "get_order", "parameters": {"order_id": 1001}}; '
        '{"name": "get_current_date", "parameters": {}}',
        "",
        [("get_order", ORDER), ("get_current_date", {})],
    ),
    (
        "llama3",
        '{"name": "get_order", "parameters": {"order_id": 1001}}<|eot_id|>',
        "",
        [("get_order", ORDER)],
    ),
    (
        "mistral",
        '[TOOL_CALLS] [{"name": "get_order", "arguments": {"order_id": 1001}}, '
        '{"name": "track_order", "arguments": {"order_id": 1001}}]</s>',
        "",
        [("get_order", ORDER), ("track_order", ORDER)],
    ),
    (
        "mistral",
        'Checking. [TOOL_CALLS]get_order[ARGS]{"order_id": 1001}',
        "Checking.",
        [("get_order", ORDER)],
    ),
    (
        "qwen3_xml",
        "I will look.\n<tool_call>\n<function=get_order>\n<parameter=order_id>\n1001\n"
        "</parameter>\n<parameter=note>\n1001\n</parameter>\n</function>\n</tool_call>",
        "I will look.",
        [("get_order", {"order_id": 1001, "note": "1001"})],  # typed by the schema
    ),
]


def calls_of(calls: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    return [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in calls]


@pytest.mark.parametrize(("fmt", "text", "content", "expected"), CASES)
def test_each_format_parses_into_openai_tool_calls(fmt, text, content, expected):
    got_content, calls = parse_tool_calls(text, fmt, TOOLS)
    assert got_content == content and calls_of(calls) == expected
    assert [c["id"] for c in calls] == [f"call_{i}" for i in range(len(expected))]
    assert all(c["type"] == "function" for c in calls)


@pytest.mark.parametrize(("fmt", "text", "content", "expected"), CASES)
def test_auto_detects_the_format(fmt, text, content, expected):
    got_content, calls = parse_tool_calls(text, "auto", TOOLS)
    assert got_content == content and calls_of(calls) == expected


def test_detection_by_marker():
    assert detect_format("[TOOL_CALLS] []") == "mistral"
    assert detect_format("<|python_tag|>{}") == "llama3"
    assert detect_format("<tool_call><function=f></function></tool_call>") == "qwen3_xml"
    assert detect_format("<tool_call>{}</tool_call>") == "hermes"
    assert detect_format("Your refund is on its way.") == "json"


@pytest.mark.parametrize("fmt", FORMATS)
def test_plain_text_is_a_reply_without_calls(fmt):
    text = "Your refund of $39.99 is on its way."
    assert parse_tool_calls(text, fmt) == (text, [])


def test_without_a_schema_qwen3_values_are_json_when_they_parse():
    text = "<tool_call><function=f><parameter=n>12</parameter><parameter=s>Alice</parameter>"
    text += "</function></tool_call>"
    assert calls_of(parse_tool_calls(text, "qwen3_xml")[1]) == [("f", {"n": 12, "s": "Alice"})]


def test_an_unparseable_call_is_kept_raw_for_the_env_to_report():
    _, calls = parse_tool_calls(
        '<tool_call>{"name": "get_order", "arguments": </tool_call>', "hermes"
    )
    assert calls[0]["function"] == {"name": "", "arguments": '{"name": "get_order", "arguments":'}
    _, calls = parse_tool_calls('[TOOL_CALLS]get_order[ARGS]{"order_id": ', "mistral")
    assert calls[0]["function"] == {"name": "get_order", "arguments": '{"order_id":'}


def test_lone_surrogates_are_replaced():
    content, calls = parse_tool_calls('\ud800 <tool_call>{"name": "f\ud800"}</tool_call>', "auto")
    assert content == "\ufffd" and calls[0]["function"]["name"] == "f\ufffd"


def test_parsing_is_linear_in_the_text():
    hostile = "<tool_call><function=" * 20_000 + "[ARGS]" * 10_000
    started = time.perf_counter()
    for fmt in FORMATS:
        parse_tool_calls(hostile, fmt)
    assert time.perf_counter() - started < 2.0


def test_unknown_format_is_an_error_naming_the_choices():
    with pytest.raises(ValueError, match="tool_format: unknown format 'xml'; known: hermes, json"):
        parse_tool_calls("", "xml")


@pytest.mark.parametrize(
    ("fmt", "text"),
    [
        ("mistral", '[TOOL_CALLS] [{"name": "get_current_date", "arguments": {}}]'),
        ("llama3", '<|python_tag|>{"name": "get_current_date", "parameters": {}}'),
        ("qwen3_xml", "<tool_call>\n<function=get_current_date>\n</function>\n</tool_call>"),
        ("json", '{"name": "get_current_date", "arguments": {}}'),
    ],
)
def test_the_env_runs_the_parsed_call(fmt, text):
    env = envs.make_raw("refund_agent", split="eval")
    start = env.begin(lost_order_scenario(), seed=1, policy="test")
    result = env.advance(to_message(text, fmt, start.tools))
    (record,) = result.tool_calls
    assert (record.name, record.valid, record.execution) == ("get_current_date", True, Execution.OK)
    assert result.new_messages[0]["role"] == "tool"


def test_agrees_with_transformers_response_parsing():
    """transformers' own Qwen response template reads Hermes calls as our parser does."""
    transformers = pytest.importorskip("transformers")
    from tokenizers import Tokenizer, models

    from policies.tool_formats import parse_with_template

    try:
        from transformers.cli.serving.utils import _RESPONSE_TEMPLATE_FALLBACKS
    except ImportError:
        pytest.skip("this transformers has no response templates")
    template = next(v for k, v in _RESPONSE_TEMPLATE_FALLBACKS.items() if "qwen2" in k)
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(models.WordLevel({"<unk>": 0}, unk_token="<unk>"))
    )
    text = CASES[1][1]
    assert parse_with_template(tokenizer, text, TOOLS) is None  # no template: not parsed
    tokenizer.response_template = template
    message = parse_with_template(tokenizer, text, TOOLS)
    assert message is not None
    assert calls_of(message["tool_calls"]) == calls_of(parse_tool_calls(text, "hermes")[1])
