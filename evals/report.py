"""Reports a person reads: the gate's go/no-go report and a run's per-slice metrics.

Contract
--------
Pure functions from records to text; nothing here computes a statistic.

* `GateResult` (built by `evals.gate`) holds the slice table, every rule's outcome and
  notes. `render_gate_text` prints it for a terminal, `render_gate_markdown` writes the
  same content as Markdown: the seed's "Example Results Table" (slice, baseline
  success@1, candidate success@1, the key metrics of the rules on that slice with ✓/✗),
  then each rule with its value, then `VERDICT: GO` or `VERDICT: NO-GO` naming every
  failing rule.
* `render_run_report(table)` renders one run's `MetricTable` as Markdown: the run's
  status first (`INCOMPLETE RUN` when infrastructure failures pass the threshold), a
  summary row per slice (completed and failed episodes, success@1 with its interval,
  reward, violation and escalation rates), then every metric of every slice with
  point, interval, n and method.
* `completed_failed(metrics)` is the `completed / failed` cell that stands next to the
  rates of a slice in every headline table (the gate's, the leaderboard's).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pydantic import BaseModel, Field

from evals.metrics import AGGREGATE, MetricTable
from evals.stats import Delta, Estimate

PASS, FAIL = "✓", "✗"


class RuleResult(BaseModel):
    """One rule (or one slice of `no_regressions_on`) checked against the runs."""

    text: str
    location: str
    slice: str
    value: float
    passed: bool
    detail: str  # the numbers behind the value: interval, n, test
    note: str  # short form for the slice table, e.g. "rule_violation_rate 0.62 → 0.05"


class SliceRow(BaseModel):
    slice: str
    baseline: Estimate | None = None  # success@1
    candidate: Estimate | None = None
    baseline_counts: str = "—"  # completed / failed episodes (`completed_failed`)
    candidate_counts: str = "—"
    notes: list[tuple[str, bool]] = Field(default_factory=list)


class GateResult(BaseModel):
    stage: str
    rules_path: str
    candidate: str
    baseline: str | None = None
    canary: str | None = None
    confidence: float = 0.95
    rows: list[SliceRow] = Field(default_factory=list)
    results: list[RuleResult] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)

    @property
    def go(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failing(self) -> list[RuleResult]:
        return [r for r in self.results if not r.passed]


def fmt(value: float | None) -> str:
    """A number as a person reads it: 4 significant digits, thousands without exponent."""
    if value is None:
        return "—"
    if abs(value) >= 1000 and value == value:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def fmt_estimate(est: Estimate | None) -> str:
    if est is None:
        return "—"
    return f"{fmt(est.point)} [{fmt(est.lower_ci)}, {fmt(est.upper_ci)}]"


def describe(est: Estimate) -> str:
    """The numbers behind a rule's value: point, interval, n, count, method."""
    count = f", count={est.count}" if est.count is not None else ""
    return (
        f"point {fmt(est.point)}, CI [{fmt(est.lower_ci)}, {fmt(est.upper_ci)}], "
        f"n={est.n}{count} ({est.method})"
    )


def describe_delta(delta: Delta) -> str:
    return (
        f"Δ {delta.point:+.4g}, CI [{delta.lower_ci:+.4g}, {delta.upper_ci:+.4g}], "
        f"p={delta.p_value:.3g} ({delta.test}), {delta.n_pairs} pairs by {delta.unit}, "
        f"{delta.n_unpaired} unpaired excluded"
    )


def note_for(key: str, field: str, value: float, baseline: float | None) -> str:
    """Short slice-table form: `rule_violation_rate 0.62 → 0.05` (baseline → candidate)."""
    label = key if field == "point" else f"{key}.{field}"
    if baseline is None:
        return f"{label} {fmt(value)}"
    return f"{label} {fmt(baseline)} → {fmt(value)}"


def _mark(passed: bool) -> str:
    return PASS if passed else FAIL


def _table_cells(result: GateResult) -> tuple[list[str], list[list[str]]]:
    header = [
        "Slice",
        "Baseline success@1",
        "Candidate success@1",
        "Completed/failed (base, cand)",
        "Other key metrics",
    ]
    rows = []
    for row in result.rows:
        notes = "; ".join(f"{text} {_mark(ok)}" for text, ok in row.notes)
        base = fmt(row.baseline.point) if row.baseline else "—"
        cand = fmt(row.candidate.point) if row.candidate else "—"
        name = "Aggregate" if row.slice == AGGREGATE else row.slice
        counts = f"{row.baseline_counts}, {row.candidate_counts}"
        rows.append([name, base, cand, counts, notes])
    return header, rows


def _verdict_lines(result: GateResult) -> list[str]:
    if result.go:
        return [f"VERDICT: GO ({len(result.results)} rules passed)"]
    lines = [f"VERDICT: NO-GO ({len(result.failing)} of {len(result.results)} rules failed)"]
    lines += [f"  {FAIL} {r.text}  [{r.location}]: {r.detail}" for r in result.failing]
    return lines


def render_gate_text(result: GateResult) -> str:
    """The gate report for a terminal."""
    header, rows = _table_cells(result)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        f"Promotion gate: {result.stage}   rules: {result.rules_path}",
        f"candidate: {result.candidate}   baseline: {result.baseline or '—'}"
        + (f"   canary: {result.canary}" if result.canary else ""),
        "",
    ]
    for cells in [header, ["-" * w for w in widths], *rows]:
        lines.append("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip())
    lines += ["", "Rules:"]
    for r in result.results:
        lines.append(f"  {_mark(r.passed)} {r.text}  → {fmt(r.value)}   [{r.location}]")
        lines.append(f"      {r.detail}")
    if result.notes:
        lines += ["", "Notes:", *(f"  - {n}" for n in result.notes)]
    return "\n".join([*lines, "", *_verdict_lines(result)]) + "\n"


def _md_cell(text: str) -> str:
    """Escape a table cell: `|` everywhere, `<` `>` outside code spans (else `<answer>`
    would vanish as an HTML tag)."""
    parts = text.replace("|", "\\|").split("`")
    for i in range(0, len(parts), 2):
        parts[i] = parts[i].replace("<", "&lt;").replace(">", "&gt;")
    return "`".join(parts)


def _md_row(cells: Iterable[str]) -> str:
    return "| " + " | ".join(_md_cell(c) for c in cells) + " |"


def _md_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    return [_md_row(header), _md_row("---" for _ in header), *(_md_row(r) for r in rows)]


def render_gate_markdown(result: GateResult) -> str:
    """The gate report as Markdown (same content as the terminal report)."""
    header, rows = _table_cells(result)
    lines = [
        f"# Promotion gate: {result.stage}",
        "",
        f"- rules: `{result.rules_path}`",
        f"- candidate: `{result.candidate}`",
        f"- baseline: `{result.baseline}`" if result.baseline else "- baseline: —",
        *([f"- canary log: `{result.canary}`"] if result.canary else []),
        f"- confidence level: {result.confidence:g}",
        "",
        *_md_table(header, rows),
        "",
        "## Rules",
        "",
        *_md_table(
            ["", "Rule", "Value", "Details", "Where"],
            (
                [_mark(r.passed), f"`{r.text}`", fmt(r.value), r.detail, f"`{r.location}`"]
                for r in result.results
            ),
        ),
    ]
    if result.notes:
        lines += ["", "## Notes", "", *(f"- {n}" for n in result.notes)]
    verdict = _verdict_lines(result)
    lines += ["", f"**{verdict[0]}**", *(f"- {v.strip()}" for v in verdict[1:])]
    return "\n".join(lines) + "\n"


_SUMMARY = [
    ("success@1", "success@1"),
    ("reward", "reward"),
    ("rule_violation_rate", "violations"),
    ("escalation_rate", "escalation"),
    ("tool_call_correctness.schema", "tool schema ok"),
    ("policy_error_rate", "policy errors"),
]


def completed_failed(metrics: dict[str, Estimate] | None) -> str:
    """`completed / failed` episodes of a slice (failed = lost to infrastructure)."""
    errors = (metrics or {}).get("policy_error_rate")
    if errors is None:
        return "—"
    failed = errors.count or 0
    return f"{errors.n - failed} / {failed}"


def status_lines(table: MetricTable) -> list[str]:
    """The run's completeness, first thing in a report: a clean result or an incomplete one."""
    status = table.status
    if status is None:
        return []
    if status.complete:
        return [f"Run status: complete ({status.describe()})."]
    return [
        f"**INCOMPLETE RUN**: {status.describe()}. Rates below cover completed episodes "
        "only; the gate and the leaderboard refuse this run unless `allow_incomplete=true`."
    ]


def render_run_report(table: MetricTable, title: str = "Eval report") -> str:
    """One run's metrics as Markdown: a summary per slice, then every metric with its CI."""
    level = f"{table.confidence:.0%}"
    names = sorted(table.slices, key=lambda s: (s == AGGREGATE, s))
    summary = []
    for name in names:
        metrics = table.slices[name]
        summary.append(
            [f"`{name}`", completed_failed(metrics)]
            + [fmt_estimate(metrics.get(key)) for key, _ in _SUMMARY]
        )
    lines = [
        f"# {title}",
        "",
        *([*status_lines(table), ""] if table.status else []),
        f"Point estimates with {level} confidence intervals; `n` counts the observations "
        "behind each number; `completed / failed` counts episodes (failed = lost to "
        "infrastructure, left out of every rate). Metrics a run does not produce are left "
        "out, not shown as zero.",
        "",
        *_md_table(["slice", "completed / failed", *(label for _, label in _SUMMARY)], summary),
    ]
    for name in names:
        rows = [
            [
                f"`{key}`",
                fmt(est.point),
                f"[{fmt(est.lower_ci)}, {fmt(est.upper_ci)}]",
                str(est.n),
                "" if est.count is None else str(est.count),
                est.method,
            ]
            for key, est in sorted(table.slices[name].items(), key=lambda kv: _order(kv[0]))
        ]
        lines += [
            "",
            f"## {name}",
            "",
            *_md_table(["metric", "point", f"{level} CI", "n", "count", "method"], rows),
        ]
    return "\n".join(lines) + "\n"


def _order(key: str) -> tuple[int, str]:
    """Outcome metrics first, then rewards, checks, tools, efficiency."""
    for rank, prefix in enumerate(
        [
            "success@1",
            "pass",
            "reward",
            "rule_violation",
            "escalation",
            "format",
            "math",
            "api_version",
            "check",
            "tool_call",
            "steps",
            "latency",
            "tokens",
            "cost",
            "policy",
        ]
    ):
        if key.startswith(prefix):
            return rank, key
    return 99, key
