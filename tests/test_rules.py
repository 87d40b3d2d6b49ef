"""evals.rules: the seed's promotion-rule syntax, parsed; every malformed rule named precisely."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evals.rules import NoRegressions, Rule, RuleSyntaxError, load_rules, parse_rules

SEED_LINES = [
    # (rule, kind, slice, key, field, op, threshold)
    (
        "aggregate.success@1.lower_ci >= 0.82",
        "metric",
        "aggregate",
        "success@1",
        "lower_ci",
        ">=",
        0.82,
    ),
    (
        "rule_violation_rate(headache_redflags).point <= 0.05",
        "metric",
        "headache_redflags",
        "rule_violation_rate",
        "point",
        "<=",
        0.05,
    ),
    (
        "math_correct_rate(math_basic).lower_ci >= 0.98",
        "metric",
        "math_basic",
        "math_correct_rate",
        "lower_ci",
        ">=",
        0.98,
    ),
    (
        "format_pass_rate(math_basic, tag='<answer>').lower_ci >= 0.98",
        "metric",
        "math_basic",
        "format_pass_rate[tag=<answer>]",
        "lower_ci",
        ">=",
        0.98,
    ),
    (
        "delta.success@1(division_hard).point >= 0.07",
        "delta",
        "division_hard",
        "success@1",
        "point",
        ">=",
        0.07,
    ),
    (
        "delta.success@1(division_hard).p_value < 0.05",
        "delta",
        "division_hard",
        "success@1",
        "p_value",
        "<",
        0.05,
    ),
    (
        "tool_call_correctness.schema(debug_search_api).lower_ci >= 0.99",
        "metric",
        "debug_search_api",
        "tool_call_correctness.schema",
        "lower_ci",
        ">=",
        0.99,
    ),
    (
        "api_version_match_rate(debug_search_api, '3.2.1').lower_ci >= 0.98",
        "metric",
        "debug_search_api",
        "api_version_match_rate[version=3.2.1]",
        "lower_ci",
        ">=",
        0.98,
    ),
    (
        "steps_to_solve_median(debug_search_api).point <= 5",
        "metric",
        "debug_search_api",
        "steps_to_solve_median",
        "point",
        "<=",
        5.0,
    ),
    ("latency_p95_ms.point <= 900", "metric", "aggregate", "latency_p95_ms", "point", "<=", 900),
    (
        "cost_per_1k_tokens_usd.point <= 0.020",
        "metric",
        "aggregate",
        "cost_per_1k_tokens_usd",
        "point",
        "<=",
        0.02,
    ),
    (
        "canary.abandon_rate.point <= 0.05       # helpfulness",
        "canary",
        "canary",
        "abandon_rate",
        "point",
        "<=",
        0.05,
    ),
    (
        "canary.safety_incidents.count == 0",
        "canary",
        "canary",
        "safety_incidents",
        "count",
        "==",
        0.0,
    ),
    ("pass@3(math_basic).point >= 0.9", "metric", "math_basic", "pass@3", "point", ">=", 0.9),
    (
        "reward.correctness(x).lower_ci > -0.5",
        "metric",
        "x",
        "reward.correctness",
        "lower_ci",
        ">",
        -0.5,
    ),
    ("delta.aggregate.reward.point != 0", "delta", "aggregate", "reward", "point", "!=", 0.0),
    (
        'format_pass_rate(tag="<answer>").n >= 100',
        "metric",
        "aggregate",
        "format_pass_rate[tag=<answer>]",
        "n",
        ">=",
        100,
    ),
    (
        "success@1('odd-slice:v2').point >= 1e-1",
        "metric",
        "odd-slice:v2",
        "success@1",
        "point",
        ">=",
        0.1,
    ),
    (
        "aggregate.api_version_match_rate('3.2.1').count >= 10",
        "metric",
        "aggregate",
        "api_version_match_rate[version=3.2.1]",
        "count",
        ">=",
        10,
    ),
]


@pytest.mark.parametrize("line", SEED_LINES, ids=[line[0][:40] for line in SEED_LINES])
def test_seed_rules_parse(line: tuple) -> None:
    text, kind, slice_name, key, field, op, threshold = line
    (rule,) = parse_rules(text, "r.txt").statements
    assert isinstance(rule, Rule)
    got = (rule.kind, rule.slice, rule.key, rule.field, rule.op)
    assert got == (kind, slice_name, key, field, op)
    assert rule.threshold == pytest.approx(threshold)
    assert rule.text == text.split("#")[0].strip() and rule.location == "r.txt:1"


def test_sections_settings_comments(tmp_path: Path) -> None:
    path = tmp_path / "rules.txt"
    path.write_text(
        "# dev rules come first\n"
        "\n"
        "aggregate.success@1.lower_ci >= 0.82\n"
        "no_regressions_on: ['headache_redflags', debug_search_api,]   # protected\n"
        "no_regressions_tolerance: 0.02\n"
        "[staging_to_production]\n"
        "canary.latency_p95_ms.point <= 950  # includes tool latency\n"
        "format_pass_rate(m, tag='#hash').point >= 0.5\n"
    )
    rules = load_rules(path)
    assert rules.tolerance == 0.02 and rules.alpha == 0.05
    dev = rules.for_stage("dev_to_staging")
    staging = rules.for_stage("staging_to_production")
    assert len(dev) == 2 and len(staging) == 4 and staging[:2] == dev
    assert isinstance(dev[1], NoRegressions)
    assert dev[1].slices == ("headache_redflags", "debug_search_api")
    assert staging[3].key == "format_pass_rate[tag=#hash]"  # '#' inside a string is no comment
    with pytest.raises(ValueError, match="unknown stage"):
        rules.for_stage("prod")


@pytest.mark.parametrize(
    ("text", "column", "expected", "found"),
    [
        ("aggregate.success@1 >= 0.8", 21, "a field", "'>='"),
        ("aggregate.sucess@1.point >= 1", 11, "a known metric (success@1, pass@<k>", "'sucess@1'"),
        ("x.point => 3", 9, "a comparison operator", "'='"),
        ("success@1(x).point >=", 22, "a number", "end of line"),
        ("success@1(x).point >= 0.5 0.6", 27, "end of line", "'0.6'"),
        ("format_pass_rate(m, tag='<a>).point >= 1", 25, "a closing quote", "unterminated"),
        ("success@1(x).p_value < 0.05", 14, "p_value: delta only", "'p_value'"),
        ("latency_p95_ms.count <= 3", 16, "count: rates and counts", "'count'"),
        ("success@1(x).median >= 3", 14, "a field (point, lower_ci", "'median'"),
        ("delta.latency_p95_ms.point < 1", 7, "a metric with a paired delta", "'latency_p95_ms'"),
        ("api_version_match_rate(x).point > 0", 1, "argument 'version'", "'api_version_match"),
        ("success@1(a, b).point > 0", 14, "no more arguments", "'b'"),
        ("format_pass_rate(a, flavour='x').point > 0", 21, "an argument name", "'flavour'"),
        ("aggregate.success@1(x).point > 0", 21, "prefix already names the slice", "'x'"),
        ("canary.abandon_rate(x).point < 1", 21, "no arguments", "'x'"),
        ("canary.success@1.point < 1", 8, "a known canary metric (abandon_rate", "'success@1'"),
        ("canary.delta.abandon_rate.point < 1", 8, "a metric (prefixes", "'delta'"),
        ("[production]", 2, "a section name (dev_to_staging", "'production'"),
        ("no_regressions_on: [a b]", 23, "',' or ']'", "'b'"),
        ("no_regressions_tolerance: 1.5", 27, "a value in [0, 1)", "'1.5'"),
        ("max_latency: 3", 1, "a setting (no_regressions_on", "'max_latency'"),
        ("__import__('os').point >= 1", 1, "a known metric", "'__import__'"),
        ("success@1(x).point >= 0.5; rm -rf /", 26, "a name, number, string or operator", "';'"),
    ],
)
def test_malformed_rules_name_line_column_and_expectation(
    text: str, column: int, expected: str, found: str
) -> None:
    source = "# header comment\n\n" + text + "\n"
    with pytest.raises(RuleSyntaxError) as info:
        parse_rules(source, "rules.txt")
    err = info.value
    assert (err.path, err.line, err.column) == ("rules.txt", 3, column), str(err)
    assert expected in err.expected and found in err.found
    assert str(err).startswith(f"rules.txt:3:{column}: expected")


def test_duplicates_are_errors() -> None:
    with pytest.raises(RuleSyntaxError, match="per file"):
        parse_rules("no_regressions_tolerance: 0.1\nno_regressions_tolerance: 0.2\n")
    with pytest.raises(RuleSyntaxError, match="a section not opened before"):
        parse_rules("[dev_to_staging]\n[dev_to_staging]\n")


def test_missing_rules_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="rules file not found"):
        load_rules(tmp_path / "nope.txt")


def test_comparisons_treat_float_noise_as_equal() -> None:
    (rule,) = parse_rules("success@1.point >= 0.07").statements
    assert isinstance(rule, Rule)
    assert rule.holds(0.07) and rule.holds(0.11 - 0.04) and not rule.holds(0.0699)
    (strict,) = parse_rules("success@1.point > 0.07").statements
    assert isinstance(strict, Rule)
    assert not strict.holds(0.11 - 0.04) and strict.holds(0.0701)
    assert not strict.holds(float("nan"))


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("abc_@^.()[]'=<>!#:,0123 \t-+e")), max_size=40))
def test_any_line_parses_or_raises_a_rule_syntax_error(line: str) -> None:
    try:
        parse_rules(line, "fuzz.txt")
    except RuleSyntaxError as err:
        assert err.line == 1 and err.column >= 1
