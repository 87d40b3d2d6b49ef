"""Promotion rules in the seed's syntax: a tokenizer and a recursive-descent parser.

Contract
--------
`load_rules(path)` / `parse_rules(text, path)` return a `RuleSet`, or raise
`RuleSyntaxError` naming file, line, column, the offending token and what was expected.
Metric names, their arguments and fields are checked against `evals.metrics.METRICS`
(and `CANARY_METRICS`) at parse time; slices are checked when the rules are evaluated
(`evals.gate`), against the slices the run has. Nothing is `eval()`-ed.

Grammar (one statement per line; `#` starts a comment; blank lines are ignored)::

    line     := header | setting | rule
    header   := '[' ('dev_to_staging' | 'staging_to_production') ']'
    setting  := 'no_regressions_on' ':' '[' [value (',' value)*] [','] ']'
              | ('no_regressions_tolerance' | 'no_regressions_alpha') ':' NUMBER
    rule     := prefix* metric [args] '.' field op NUMBER
    prefix   := 'aggregate' '.' | 'delta' '.' | 'canary' '.'
    metric   := NAME ('.' NAME)*            e.g. success@1, tool_call_correctness.schema
    args     := '(' [arg (',' arg)*] ')'    first positional argument = the slice
    arg      := value | NAME '=' value
    value    := NAME | STRING | NUMBER
    field    := point | lower_ci | upper_ci | p_value | count | n
    op       := '<=' | '<' | '>=' | '>' | '==' | '!='

No slice (no argument, or the `aggregate.` prefix) means the `aggregate` slice; after
the prefix, positional arguments are the metric's own
(`aggregate.api_version_match_rate('3.2.1')`).
`p_value` exists only for `delta.` rules; `count` only for rates and counts.

Sections. Rules before any header belong to `dev_to_staging`; the
`staging_to_production` gate keeps every dev rule and adds its own (the seed: "Keep all
Dev→Staging rules"). `no_regressions_tolerance` and `no_regressions_alpha` apply to
the whole file and may be given once each; `no_regressions_on` may appear in any section.

`no_regressions_on: [s1, s2]` — for each listed slice, paired candidate − baseline
success@1 (`delta.success@1(s)`) fails when its point is below −tolerance, or when it is
negative and the paired test says the drop is significant (p < alpha; exact McNemar, or
Wilcoxon over scenarios when there are several epochs). A slice missing from either run
or without pairs is an error, not a pass. Defaults:
tolerance 0.0 (the seed: "If the model does worse on any of these … automatic no-go"),
alpha 0.05; `no_regressions_tolerance: 0.02` allows a 2-point drop that is not
significant. Comparisons treat values within 1e-9 (relative) of the threshold as equal.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from evals.metrics import AGGREGATE, CANARY_METRICS, METRICS, MetricRegistry, metric_key

STAGES = ("dev_to_staging", "staging_to_production")
FIELDS = ("point", "lower_ci", "upper_ci", "p_value", "count", "n")
OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    "<": operator.lt,
    ">=": operator.ge,
    ">": operator.gt,
    "==": operator.eq,
    "!=": operator.ne,
}
SETTINGS = ("no_regressions_on", "no_regressions_tolerance", "no_regressions_alpha")
_PREFIXES = ("aggregate", "delta", "canary")

_TOKEN = re.compile(
    r"""(?P<space>\s+)
      | (?P<comment>\#.*)
      | (?P<number>[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?)(?![A-Za-z_@^])
      | (?P<name>[A-Za-z_][A-Za-z0-9_@^\-]*)
      | (?P<string>'[^'\n]*'|"[^"\n]*")
      | (?P<op><=|>=|==|!=|<|>)
      | (?P<punct>[.(),\[\]:=])
    """,
    re.VERBOSE,
)


class RuleSyntaxError(ValueError):
    """A rules file could not be parsed; names file, line, column, token and expectation."""

    def __init__(self, path: str, line: int, column: int, found: str, expected: str, text: str):
        self.path, self.line, self.column = path, line, column
        self.found, self.expected = found, expected
        caret = " " * (column - 1) + "^"
        super().__init__(
            f"{path}:{line}:{column}: expected {expected}, found {found}\n    {text}\n    {caret}"
        )


@dataclass(frozen=True)
class Rule:
    """`<kind>.<metric>(<slice>, args).<field> <op> <threshold>`."""

    text: str  # the rule as written, without its comment
    location: str  # "file:line"
    section: str
    kind: str  # "metric" | "delta" | "canary"
    slice: str  # AGGREGATE when none is given; "canary" for canary rules
    metric: str  # the name as written: pass@3, reward.correctness
    key: str  # canonical table key, e.g. format_pass_rate[tag=<answer>]
    field: str
    op: str
    threshold: float

    def holds(self, value: float) -> bool:
        """Compare, treating values within 1e-9 (relative) of the threshold as equal."""
        if math.isnan(value):
            return False
        if math.isclose(value, self.threshold, rel_tol=1e-9, abs_tol=1e-12):
            return self.op in ("<=", ">=", "==")
        return OPERATORS[self.op](value, self.threshold)


@dataclass(frozen=True)
class NoRegressions:
    """`no_regressions_on: [...]`: each slice's success@1 must not drop (see module)."""

    text: str
    location: str
    section: str
    slices: tuple[str, ...]


@dataclass(frozen=True)
class RuleSet:
    path: str
    statements: tuple[Rule | NoRegressions, ...]
    tolerance: float = 0.0
    alpha: float = 0.05

    def for_stage(self, stage: str) -> list[Rule | NoRegressions]:
        """The statements a gate applies: its own section's and every earlier one's."""
        if stage not in STAGES:
            raise ValueError(f"unknown stage '{stage}'; stages: {', '.join(STAGES)}")
        allowed = STAGES[: STAGES.index(stage) + 1]
        return [s for s in self.statements if s.section in allowed]


@dataclass(frozen=True)
class _Token:
    kind: str  # number | name | string | op | punct | end
    text: str
    column: int

    def describe(self) -> str:
        return "end of line" if self.kind == "end" else f"'{self.text}'"


def load_rules(path: str | Path) -> RuleSet:
    """Read and parse a rules file (a missing file raises FileNotFoundError naming it;
    bytes that are not UTF-8 a `RuleSyntaxError` at their line and column)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"rules file not found: {path}")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:  # name the file, line and column, like a syntax error
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        line_end = data.find(b"\n", exc.start)
        line = data[line_start : line_end if line_end >= 0 else len(data)]
        raise RuleSyntaxError(
            str(path),
            data.count(b"\n", 0, exc.start) + 1,
            len(data[line_start : exc.start].decode("utf-8", "replace")) + 1,
            f"byte 0x{data[exc.start]:02x}",
            "UTF-8 text",
            line.decode("utf-8", "replace"),
        ) from None
    return parse_rules(text, str(path))


def parse_rules(
    text: str,
    path: str = "<rules>",
    registry: MetricRegistry = METRICS,
    canary_registry: MetricRegistry = CANARY_METRICS,
) -> RuleSet:
    """Parse rules text (see the module grammar); raise `RuleSyntaxError` on the first error."""
    section = STAGES[0]
    seen_sections: set[str] = set()
    statements: list[Rule | NoRegressions] = []
    settings: dict[str, float] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        parser = _LineParser(line, path, number, registry, canary_registry)
        if parser.peek().kind == "end":
            continue
        if parser.peek().text == "[":
            section = parser.header()
            if section in seen_sections:
                raise parser.error(parser.tokens[1], "a section not opened before")
            seen_sections.add(section)
        elif parser.peek(1).text == ":":
            name, value = parser.setting(section)
            if name in settings:
                raise parser.error(parser.tokens[0], f"one '{name}' per file (already set)")
            if isinstance(value, NoRegressions):
                statements.append(value)
            else:
                settings[name] = value
        else:
            statements.append(parser.rule(section))
    return RuleSet(
        path=path,
        statements=tuple(statements),
        tolerance=settings.get("no_regressions_tolerance", 0.0),
        alpha=settings.get("no_regressions_alpha", 0.05),
    )


def _tokenize(line: str, path: str, number: int) -> list[_Token]:
    tokens: list[_Token] = []
    pos = code_end = 0
    while pos < len(line):
        match = _TOKEN.match(line, pos)
        if match is None:
            bad = line[pos]
            what = "a closing quote" if bad in "'\"" else "a name, number, string or operator"
            found = "an unterminated string" if bad in "'\"" else f"'{bad}'"
            raise RuleSyntaxError(path, number, pos + 1, found, what, line)
        kind = match.lastgroup or ""
        if kind == "comment":
            break
        if kind != "space":
            tokens.append(_Token(kind, match.group(), pos + 1))
            code_end = match.end()
        pos = match.end()
    tokens.append(_Token("end", "", code_end + 1))
    return tokens


class _LineParser:
    """Recursive descent over one line's tokens."""

    def __init__(
        self, line: str, path: str, number: int, registry: MetricRegistry, canary: MetricRegistry
    ) -> None:
        self.line, self.path, self.number = line, path, number
        self.registry, self.canary = registry, canary
        self.tokens = _tokenize(line, path, number)
        self.pos = 0

    # -- token helpers ---------------------------------------------------------------
    def peek(self, ahead: int = 0) -> _Token:
        return self.tokens[min(self.pos + ahead, len(self.tokens) - 1)]

    def take(self) -> _Token:
        token = self.peek()
        self.pos = min(self.pos + 1, len(self.tokens) - 1)
        return token

    def accept(self, text: str) -> bool:
        if self.peek().text == text and self.peek().kind in ("punct", "op"):
            self.take()
            return True
        return False

    def expect(self, kinds: tuple[str, ...], expected: str, text: str | None = None) -> _Token:
        token = self.peek()
        if token.kind not in kinds or (text is not None and token.text != text):
            raise self.error(token, expected)
        return self.take()

    def end(self) -> None:
        self.expect(("end",), "end of line (or a # comment)")

    def error(self, token: _Token, expected: str) -> RuleSyntaxError:
        return RuleSyntaxError(
            self.path, self.number, token.column, token.describe(), expected, self.line
        )

    def code(self) -> str:
        """The statement as written, without its comment."""
        return self.line[: self.tokens[-1].column - 1].strip()

    # -- statements ------------------------------------------------------------------
    def header(self) -> str:
        self.expect(("punct",), "'['", "[")
        name = self.expect(("name",), f"a section name ({', '.join(STAGES)})")
        if name.text not in STAGES:
            raise self.error(name, f"a section name ({', '.join(STAGES)})")
        self.expect(("punct",), "']'", "]")
        self.end()
        return name.text

    def setting(self, section: str) -> tuple[str, float | NoRegressions]:
        name = self.expect(("name",), "a setting name")
        if name.text not in SETTINGS:
            raise self.error(name, f"a setting ({', '.join(SETTINGS)}) or a rule")
        self.expect(("punct",), "':'", ":")
        if name.text != "no_regressions_on":
            value = self.expect(("number",), f"a number for {name.text}")
            number = float(value.text)
            alpha = name.text == "no_regressions_alpha"
            if not 0.0 <= number < 1.0 or (alpha and number == 0.0):
                raise self.error(value, f"a value in {'(0' if alpha else '[0'}, 1) for {name.text}")
            self.end()
            return name.text, number
        slices = self.value_list()
        self.end()
        location = f"{self.path}:{self.number}"
        return name.text, NoRegressions(self.code(), location, section, slices)

    def value_list(self) -> tuple[str, ...]:
        self.expect(("punct",), "'[' starting a list of slices", "[")
        values: list[str] = []
        while not self.accept("]"):
            values.append(self.value("a slice name or ']'"))
            if not self.accept(","):
                self.expect(("punct",), "',' or ']'", "]")
                break
        return tuple(dict.fromkeys(values))

    def value(self, expected: str) -> str:
        token = self.expect(("name", "string", "number"), expected)
        return token.text[1:-1] if token.kind == "string" else token.text

    def rule(self, section: str) -> Rule:
        parts = [self.expect(("name",), "a rule, a setting or a [section] header")]
        while self.accept("."):
            parts.append(self.expect(("name",), "a metric or field name after '.'"))
        args: list[tuple[_Token, str | None, str]] = []
        if self.peek().text == "(":
            args = self.arguments()
            self.expect(("punct",), f"'.' and a field ({', '.join(FIELDS)})", ".")
            field_token = self.expect(("name",), f"a field ({', '.join(FIELDS)})")
        elif len(parts) > 1 and parts[-1].text in FIELDS:
            field_token = parts.pop()
        else:
            raise self.error(self.peek(), f"'(slice)' or '.' and a field ({', '.join(FIELDS)})")
        op = self.expect(("op",), f"a comparison operator ({', '.join(OPERATORS)})")
        threshold = self.expect(("number",), "a number")
        self.end()
        return self._build(section, parts, args, field_token, op.text, float(threshold.text))

    def arguments(self) -> list[tuple[_Token, str | None, str]]:
        """`(a, b, k='v')` → [(token, keyword or None, value)]."""
        self.expect(("punct",), "'('", "(")
        args: list[tuple[_Token, str | None, str]] = []
        while not self.accept(")"):
            start = self.peek()
            keyword = None
            if start.kind == "name" and self.peek(1).text == "=":
                keyword = self.take().text
                self.take()
            args.append((start, keyword, self.value("an argument (slice name, string or number)")))
            if not self.accept(","):
                self.expect(("punct",), "',' or ')'", ")")
                break
        return args

    def _build(
        self,
        section: str,
        parts: list[_Token],
        args: list[tuple[_Token, str | None, str]],
        field_token: _Token,
        op: str,
        threshold: float,
    ) -> Rule:
        kind, slice_name = "metric", None
        while len(parts) > 1 and parts[0].text in _PREFIXES:
            prefix = parts.pop(0)
            if prefix.text == AGGREGATE and slice_name is None and kind != "canary":
                slice_name = AGGREGATE
            elif prefix.text != AGGREGATE and kind == "metric" and slice_name is None:
                kind = prefix.text
            else:
                raise self.error(prefix, "a metric (prefixes: [delta.][aggregate.] or canary.)")
        name = ".".join(p.text for p in parts)
        named = _Token("name", name, parts[0].column)
        registry = self.canary if kind == "canary" else self.registry
        spec = registry.lookup(name)
        if spec is None:
            scope = "canary metric" if kind == "canary" else "metric"
            raise self.error(named, f"a known {scope} ({', '.join(registry.names())})")
        if kind == "delta" and not spec.delta:
            pairable = [s.name for s in registry.specs() if s.delta]
            raise self.error(named, f"a metric with a paired delta ({', '.join(pairable)})")
        self._check_field(kind, spec.counted, field_token)
        if kind == "canary" and args:
            raise self.error(args[0][0], "no arguments: canary metrics cover the whole log")
        slice_name, params = self._bind(spec.params, args, slice_name, named)
        for required in spec.required:
            if required not in params:
                raise self.error(named, f"argument '{required}' for {name}")
        return Rule(
            text=self.code(),
            location=f"{self.path}:{self.number}",
            section=section,
            kind=kind,
            slice="canary" if kind == "canary" else slice_name or AGGREGATE,
            metric=name,
            key=metric_key(name, params),
            field=field_token.text,
            op=op,
            threshold=threshold,
        )

    def _check_field(self, kind: str, counted: bool, token: _Token) -> None:
        if token.text not in FIELDS:
            raise self.error(token, f"a field ({', '.join(FIELDS)})")
        if token.text == "p_value" and kind != "delta":
            raise self.error(token, "point, lower_ci, upper_ci, count or n (p_value: delta only)")
        if token.text == "count" and (kind == "delta" or not counted):
            raise self.error(token, "point, lower_ci, upper_ci or n (count: rates and counts)")

    def _bind(
        self,
        params: tuple[str, ...],
        args: list[tuple[_Token, str | None, str]],
        slice_name: str | None,
        named: _Token,
    ) -> tuple[str | None, dict[str, str]]:
        """Arguments → (slice, {param: value}); the first positional one is the slice."""
        bound: dict[str, str] = {}
        positional = list(params)
        prefixed = slice_name is not None
        keywords_started = False
        for token, keyword, value in args:
            if keyword is None:
                if keywords_started:
                    raise self.error(token, "keyword arguments after positional ones")
                if slice_name is None:
                    slice_name = value
                elif positional:
                    bound[positional.pop(0)] = value
                elif prefixed:
                    raise self.error(token, "')': the 'aggregate.' prefix already names the slice")
                else:
                    extra = f"({', '.join(params)})" if params else "(none)"
                    raise self.error(token, f"')': no more arguments for {named.text} {extra}")
                continue
            keywords_started = True
            if keyword not in params:
                allowed = ", ".join(params) or "none"
                raise self.error(token, f"an argument name of {named.text} ({allowed})")
            if keyword in bound:
                raise self.error(token, f"'{keyword}' once")
            bound[keyword] = value
            if keyword in positional:
                positional.remove(keyword)
        return slice_name, bound
