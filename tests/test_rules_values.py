# ruff: noqa: E501  (a table of whole messages reads best one case per line)
"""evals.rules: whole error messages and parsed fields, written out by hand from the grammar.

A rules author reads the message, so each case states it in full: file, line, column,
what was expected, what was found, the line and a caret under the column.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from evals.metrics import MetricRegistry, MetricSpec
from evals.rules import NoRegressions, Rule, RuleSet, RuleSyntaxError, load_rules, parse_rules

FIELDS = "point, lower_ci, upper_ci, p_value, count, n"
PAIRABLE = (
    "success@1, reward, reward.<component>, rule_violation_rate, format_pass_rate, "
    "math_correct_rate, api_version_match_rate, check_pass_rate, escalation_rate"
)
KNOWN = (
    "success@1, pass@<k>, pass^<k>, reward, reward.<component>, rule_violation_rate, "
    "format_pass_rate, math_correct_rate, api_version_match_rate, check_pass_rate, "
    "tool_call_correctness.schema, escalation_rate, policy_error_rate, "
    "steps_to_solve_median, latency_p95_ms, tokens_per_episode, cost_per_1k_tokens_usd"
)
CANARY = (
    "abandon_rate, safety_incidents, safety_incident_rate, latency_p95_ms, "
    "tokens_per_request, cost_per_1k_tokens_usd"
)
STAGES = "dev_to_staging, staging_to_production"
SETTINGS = "no_regressions_on, no_regressions_tolerance, no_regressions_alpha"

# (line, column, expected, found)
MALFORMED = [
    ("[dev_to_stagin]", 2, f"a section name ({STAGES})", "'dev_to_stagin'"),
    ("[3]", 2, f"a section name ({STAGES})", "'3'"),
    ("[dev_to_staging", 16, "']'", "end of line"),
    ("[dev_to_staging) ", 16, "']'", "')'"),
    ("[dev_to_staging] x", 18, "end of line (or a # comment)", "'x'"),
    ("no_regressions_alpha: 0", 23, "a value in (0, 1) for no_regressions_alpha", "'0'"),
    ("no_regressions_alpha: 1", 23, "a value in (0, 1) for no_regressions_alpha", "'1'"),
    ("no_regressions_tolerance: 1", 27, "a value in [0, 1) for no_regressions_tolerance", "'1'"),
    ("no_regressions_tolerance: -0.1", 27, "a value in [0, 1) for no_regressions_tolerance", "'-0.1'"),
    ("no_regressions_tolerance: x", 27, "a number for no_regressions_tolerance", "'x'"),
    ("no_regressions_tolerance: 0.1 0.2", 31, "end of line (or a # comment)", "'0.2'"),
    ("no_regressions_tolerance 0.1", 26, f"'(slice)' or '.' and a field ({FIELDS})", "'0.1'"),
    ("bogus_setting: 1", 1, f"a setting ({SETTINGS}) or a rule", "'bogus_setting'"),
    ("3: 1", 1, "a setting name", "'3'"),
    ("no_regressions_on: math", 20, "'[' starting a list of slices", "'math'"),
    ("no_regressions_on: [a b]", 23, "',' or ']'", "'b'"),
    ("no_regressions_on: [a) ", 22, "',' or ']'", "')'"),
    ("no_regressions_on: [,]", 21, "a slice name or ']'", "','"),
    ("no_regressions_on: [a] b", 24, "end of line (or a # comment)", "'b'"),
    ("3 >= 1", 1, "a rule, a setting or a [section] header", "'3'"),
    ("success@1. >= 1", 12, "a metric or field name after '.'", "'>='"),
    ("success@1(math) >= 1", 17, f"'.' and a field ({FIELDS})", "'>='"),
    ("success@1(math). >= 1", 18, f"a field ({FIELDS})", "'>='"),
    ("success@1(math).pont >= 1", 17, f"a field ({FIELDS})", "'pont'"),
    ("success@1 >= 1", 11, f"'(slice)' or '.' and a field ({FIELDS})", "'>='"),
    ("success@1.point 0.5", 17, "a comparison operator (<=, <, >=, >, ==, !=)", "'0.5'"),
    ("success@1.point >= high", 20, "a number", "'high'"),
    ("success@1(math x).point >= 1", 16, "',' or ')'", "'x'"),
    ("success@1(,).point >= 1", 11, "an argument (slice name, string or number)", "','"),
    ("success@1.p_value >= 1", 11, "point, lower_ci, upper_ci, count or n (p_value: delta only)", "'p_value'"),
    ("reward.count >= 1", 8, "point, lower_ci, upper_ci or n (count: rates and counts)", "'count'"),
    ("delta.success@1.count >= 1", 17, "point, lower_ci, upper_ci or n (count: rates and counts)", "'count'"),
    ("delta.latency_p95_ms.point <= 1", 7, f"a metric with a paired delta ({PAIRABLE})", "'latency_p95_ms'"),
    ("canary.abandon_rate(x).point <= 1", 21, "no arguments: canary metrics cover the whole log", "'x'"),
    ("canary.aggregate.abandon_rate.point <= 1", 8, "a metric (prefixes: [delta.][aggregate.] or canary.)", "'aggregate'"),
    ("aggregate.aggregate.success@1.point >= 0", 11, "a metric (prefixes: [delta.][aggregate.] or canary.)", "'aggregate'"),
    ("delta.delta.success@1.point >= 0", 7, "a metric (prefixes: [delta.][aggregate.] or canary.)", "'delta'"),
    ("aggregate.delta.success@1.point >= 0", 11, "a metric (prefixes: [delta.][aggregate.] or canary.)", "'delta'"),
    ("succes@1.point >= 1", 1, f"a known metric ({KNOWN})", "'succes@1'"),
    ("canary.success@1.point >= 1", 8, f"a known canary metric ({CANARY})", "'success@1'"),
    ("api_version_match_rate(x).point >= 1", 1, "argument 'version' for api_version_match_rate", "'api_version_match_rate'"),
    ("format_pass_rate(m, tag='a', tag='b').point >= 0", 30, "'tag' once", "'tag'"),
    ("format_pass_rate(m, tag='a', 'b').point >= 0", 30, "keyword arguments after positional ones", "''b''"),
    ("format_pass_rate(m, colour='a').point >= 0", 21, "an argument name of format_pass_rate (tag)", "'colour'"),
    ("success@1(m, colour='a').point >= 0", 14, "an argument name of success@1 (none)", "'colour'"),
    ("success@1(m, 3).point >= 0", 14, "')': no more arguments for success@1 (none)", "'3'"),
    ("format_pass_rate(m, 'a', 'b').point >= 0", 26, "')': no more arguments for format_pass_rate (tag)", "''b''"),
    ("aggregate.success@1(x).point >= 0", 21, "')': the 'aggregate.' prefix already names the slice", "'x'"),
    ("success@1('math).point >= 0", 11, "a closing quote", "an unterminated string"),
    ("success@1.point >= 0 $", 22, "a name, number, string or operator", "'$'"),
    ("no_regressions_on: ]", 20, "'[' starting a list of slices", "']'"),
    ("success@1(m].point >= 0", 12, "',' or ')'", "']'"),
    ("success@1(m):point >= 0", 13, f"'.' and a field ({FIELDS})", "':'"),
    ("point >= 1", 7, f"'(slice)' or '.' and a field ({FIELDS})", "'>='"),
    ("aggregate.point >= 0", 1, f"a known metric ({KNOWN})", "'aggregate'"),
]  # fmt: skip


@pytest.mark.parametrize(("line", "column", "expected", "found"), MALFORMED)
def test_malformed_line_gives_the_whole_message(
    line: str, column: int, expected: str, found: str
) -> None:
    with pytest.raises(RuleSyntaxError) as raised:
        parse_rules("# first line\n" + line + "\n")
    err = raised.value
    caret = " " * (column - 1) + "^"
    assert (
        str(err)
        == f"<rules>:2:{column}: expected {expected}, found {found}\n    {line}\n    {caret}"
    )
    assert (err.path, err.line, err.column, err.expected, err.found) == (
        "<rules>",
        2,
        column,
        expected,
        found,
    )


def test_a_rule_and_its_fields() -> None:
    text = "[staging_to_production]\nformat_pass_rate(math, tag='<a>').lower_ci > 0.9   # c\n"
    (rule,) = parse_rules(text, "r.rules").statements
    assert rule == Rule(
        text="format_pass_rate(math, tag='<a>').lower_ci > 0.9",
        location="r.rules:2",
        section="staging_to_production",
        kind="metric",
        slice="math",
        metric="format_pass_rate",
        key="format_pass_rate[tag=<a>]",
        field="lower_ci",
        op=">",
        threshold=0.9,
    )


@pytest.mark.parametrize(
    ("line", "kind", "slice_name", "metric", "key"),
    [
        ("success@1.point >= 0", "metric", "aggregate", "success@1", "success@1"),
        ("aggregate.format_pass_rate('<a>').n >= 0", "metric", "aggregate", "format_pass_rate",
         "format_pass_rate[tag=<a>]"),
        ("delta.aggregate.reward.point >= 0", "delta", "aggregate", "reward", "reward"),
        ("delta.reward.outcome(hard).p_value < 0.05", "delta", "hard", "reward.outcome",
         "reward.outcome"),
        ("canary.abandon_rate.count <= 3", "canary", "canary", "abandon_rate", "abandon_rate"),
        ("check_pass_rate(m, name=unit_tests,).point >= 1", "metric", "m", "check_pass_rate",
         "check_pass_rate[name=unit_tests]"),
        ("api_version_match_rate(m, version='3.2.1').point >= 1", "metric", "m",
         "api_version_match_rate", "api_version_match_rate[version=3.2.1]"),
        ('pass@3("hard").point >= 0.5', "metric", "hard", "pass@3", "pass@3"),
    ],
)  # fmt: skip
def test_prefixes_slices_and_keys(
    line: str, kind: str, slice_name: str, metric: str, key: str
) -> None:
    (rule,) = parse_rules(line).statements
    assert isinstance(rule, Rule)
    assert (rule.kind, rule.slice, rule.metric, rule.key) == (kind, slice_name, metric, key)
    assert rule.location == "<rules>:1"


def test_settings_and_no_regressions() -> None:
    rules = parse_rules(
        "no_regressions_tolerance: 0\n"
        "no_regressions_alpha: 0.5\n"
        "no_regressions_on: [a, 'b', a,]  # protected\n"
        "[staging_to_production]\n"
        "no_regressions_on: []\n",
        "r.rules",
    )
    assert (rules.tolerance, rules.alpha) == (0.0, 0.5)
    assert rules.statements == (
        NoRegressions("no_regressions_on: [a, 'b', a,]", "r.rules:3", "dev_to_staging", ("a", "b")),
        NoRegressions("no_regressions_on: []", "r.rules:5", "staging_to_production", ()),
    )
    defaults = parse_rules("success@1.point >= 0\n")
    assert (defaults.tolerance, defaults.alpha) == (0.0, 0.05)
    assert parse_rules("no_regressions_tolerance: 0.999\n").tolerance == 0.999


def test_for_stage_keeps_earlier_sections() -> None:
    rules = parse_rules("success@1.point >= 0\n[staging_to_production]\nreward.point >= 1\n")
    dev = rules.for_stage("dev_to_staging")
    staging = rules.for_stage("staging_to_production")
    assert [r.text for r in dev] == ["success@1.point >= 0"]
    assert [r.text for r in staging] == ["success@1.point >= 0", "reward.point >= 1"]
    with pytest.raises(ValueError) as raised:
        rules.for_stage("prod")
    assert str(raised.value) == f"unknown stage 'prod'; stages: {STAGES}"


@pytest.mark.parametrize(
    ("op", "value", "holds"),
    [
        ("==", 1e-13, True),  # within the absolute tolerance of 0
        ("<=", 1e-13, True),
        (">=", -1e-13, True),
        ("!=", 1e-13, False),
        ("<", -1e-13, False),
        (">", 1e-13, False),
        (">", 1e-6, True),
        ("<", -1e-6, True),
        ("!=", 1e-6, True),
        ("==", 1e-6, False),
        ("<=", math.nan, False),
        ("!=", math.nan, False),
    ],
)
def test_holds_near_a_zero_threshold(op: str, value: float, holds: bool) -> None:
    (rule,) = parse_rules(f"success@1.point {op} 0").statements
    assert isinstance(rule, Rule)
    assert rule.holds(value) is holds


def test_rules_file_location_and_non_utf8_bytes(tmp_path: Path) -> None:
    good = tmp_path / "good.rules"
    good.write_text("\nsuccess@1.point >= 0.5\n")
    (rule,) = load_rules(good).statements
    assert isinstance(rule, Rule) and rule.location == f"{good}:2"
    assert load_rules(good).path == str(good)
    bad = tmp_path / "bad.rules"
    bad.write_bytes(b"\n# ok\nsuccess@1(m\xe9th).point >= 0\nreward.point >= 0\n")
    with pytest.raises(RuleSyntaxError) as raised:
        load_rules(bad)
    caret = " " * 11 + "^"
    assert str(raised.value) == (
        f"{bad}:3:12: expected UTF-8 text, found byte 0xe9\n"
        f"    success@1(m\ufffdth).point >= 0\n    {caret}"
    )
    last = tmp_path / "last.rules"
    last.write_bytes(b"success@1.point >= 0\n# \xc3\xa9\xff")  # "# é" then a stray byte, no newline
    with pytest.raises(RuleSyntaxError) as at_end:
        load_rules(last)
    assert str(at_end.value).startswith(
        f"{last}:2:4: expected UTF-8 text, found byte 0xff\n    # é\ufffd\n"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[dev_to_staging]\n[dev_to_staging]\n",
            "<rules>:2:2: expected a section not opened before, found 'dev_to_staging'",
        ),
        (
            "no_regressions_alpha: 0.1\nno_regressions_alpha: 0.2\n",
            "<rules>:2:1: expected one 'no_regressions_alpha' per file (already set), "
            "found 'no_regressions_alpha'",
        ),
    ],
)
def test_a_second_section_or_setting_is_refused(text: str, message: str) -> None:
    with pytest.raises(RuleSyntaxError) as raised:
        parse_rules(text)
    assert str(raised.value).splitlines()[0] == message


def test_rule_text_stops_before_a_comment_one_space_away() -> None:
    (rule,) = parse_rules("success@1.point >= 0.5 # helpfulness").statements
    assert isinstance(rule, Rule) and rule.text == "success@1.point >= 0.5"


def test_a_slice_list_without_a_trailing_comma() -> None:
    (stmt,) = parse_rules("no_regressions_on: [x, y]").statements
    assert isinstance(stmt, NoRegressions) and stmt.slices == ("x", "y")


def test_messages_list_every_parameter_of_a_metric() -> None:
    registry = MetricRegistry([MetricSpec("m", "two parameters", params=("a", "b"))])
    for line, message in [
        ("m(s, 1, 2, 3).point >= 0", "expected ')': no more arguments for m (a, b), found '3'"),
        ("m(s, c=1).point >= 0", "expected an argument name of m (a, b), found 'c'"),
    ]:
        with pytest.raises(RuleSyntaxError) as raised:
            parse_rules(line, registry=registry)
        assert message in str(raised.value).splitlines()[0]
    (rule,) = parse_rules("m(s, 1, b=2).point >= 0", registry=registry).statements
    assert isinstance(rule, Rule) and rule.key == "m[a=1,b=2]"


def test_a_bad_byte_right_after_a_leading_newline(tmp_path: Path) -> None:
    path = tmp_path / "r.rules"
    path.write_bytes(b"\n\xffabc\n")
    with pytest.raises(RuleSyntaxError) as raised:
        load_rules(path)
    assert str(raised.value) == (
        f"{path}:2:1: expected UTF-8 text, found byte 0xff\n    \ufffdabc\n    ^"
    )


def test_a_rule_set_defaults_to_no_tolerance_and_alpha_005() -> None:
    rules = RuleSet(path="p", statements=())
    assert (rules.tolerance, rules.alpha) == (0.0, 0.05)
