"""The promotion gate: go/no-go for a candidate against a baseline, by promotion rules.

    python -m evals.gate rules=FILE|ENV|PKG:PATH candidate=RUN_DIR baseline=RUN_DIR \\
        [canary=LOG] [canary_model=NAME] [stage=dev_to_staging|staging_to_production] \\
        [confidence=0.95] [markdown=REPORT.md]

Contract
--------
* Settings come from `configs/gate.yaml` with Hydra overrides (`configs.compose`).
* A run dir holds `episodes.jsonl` (one `core.records.Trajectory` per line) and may hold
  `manifest.json`; its `"cost": {"gpu_hour_usd": …, "tokens_per_second": …}` feeds
  `cost_per_1k_tokens_usd` (the candidate's also prices the canary log).
* A canary log is JSONL, one served request per line (`CanaryRecord`): request_id, model,
  abandoned, safety_incident, latency_ms, prompt_tokens, completion_tokens and optional
  cost_usd (on every line or on none). Records of one model are used: `canary_model`,
  or the only model in the log. It feeds the `canary.<metric>` rules.
* Rules (`evals.rules`) are checked on the candidate's metrics, paired deltas against the
  baseline and canary metrics. The report (`evals.report`) prints the slice table, every
  rule with its value and ✓/✗, and `VERDICT: GO` or `VERDICT: NO-GO` naming each failing
  rule. Exit status: 0 GO, 1 NO-GO, 2 usage/config/rules/data error (the message names
  the file, line or key). A rule that cannot be checked — an unknown slice, a metric the
  run does not produce, a missing baseline or canary log — is an error, never a pass.
* An incomplete run (more episodes lost to infrastructure than the run's
  `max_infra_failure_rate`, from its manifest's config, default 0.05) is refused
  (exit 2) unless `allow_incomplete=true`; the slice table shows completed/failed counts.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from configs import ConfigError, compose
from core.records import read_jsonl
from evals import stats
from evals.deltas import compute_deltas
from evals.metrics import (
    AGGREGATE,
    DEFAULT_MAX_INFRA_FAILURE_RATE,
    CostConfig,
    DeltaTable,
    Episodes,
    MetricTable,
    compute_metrics,
    cost_per_1k,
)
from evals.report import (
    GateResult,
    RuleResult,
    SliceRow,
    completed_failed,
    describe,
    describe_delta,
    note_for,
    render_gate_markdown,
    render_gate_text,
)
from evals.rules import NoRegressions, Rule, RuleSet, RuleSyntaxError, load_rules
from evals.stats import Delta, Estimate, PairingError, StatsConfig


class GateError(Exception):
    """The gate cannot decide: bad settings, inputs or rules (exit status 2)."""


class GateSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rules: str
    candidate: str
    baseline: str | None = None
    canary: str | None = None
    canary_model: str | None = None
    stage: Literal["dev_to_staging", "staging_to_production"] = "dev_to_staging"
    confidence: float = Field(default=0.95, gt=0, lt=1)
    n_resamples: int = Field(default=2000, ge=100)
    seed: int = 0
    markdown: str | None = None
    allow_incomplete: bool = False  # judge a run despite too many infrastructure failures


class CanaryRecord(BaseModel):
    """One served request of a production/canary log."""

    model_config = ConfigDict(extra="ignore")
    request_id: str
    model: str
    abandoned: bool
    safety_incident: bool
    latency_ms: float = Field(ge=0)
    prompt_tokens: int = Field(ge=0)
    completion_tokens: int = Field(ge=0)
    cost_usd: float | None = Field(default=None, ge=0)


@dataclass
class Run:
    path: Path
    episodes: Episodes
    cost: CostConfig
    table: MetricTable


def load_run(path: str | Path, cfg: StatsConfig) -> Run:
    """Read a run dir (episodes.jsonl, optional manifest.json) and compute its metrics."""
    path = Path(path)
    episodes = path / "episodes.jsonl"
    if not episodes.is_file():
        raise GateError(f"{path}: not a run dir (no episodes.jsonl)")
    columns = Episodes.of(read_jsonl(episodes))
    if not columns.keys:
        raise GateError(f"{episodes}: no episodes")
    cost = CostConfig()
    limit = DEFAULT_MAX_INFRA_FAILURE_RATE
    manifest = path / "manifest.json"
    if manifest.is_file():
        try:
            data = json.loads(manifest.read_text())
            cost = CostConfig.model_validate(data.get("cost") or {})
            limit = float((data.get("config") or {}).get("max_infra_failure_rate", limit))
        except (ValueError, AttributeError, TypeError) as exc:
            raise GateError(f"{manifest}: bad 'cost' or 'config' entry: {exc}") from exc
    table = compute_metrics(
        columns,
        cost,
        cfg.confidence,
        n_resamples=cfg.n_resamples,
        seed=cfg.seed,
        max_infra_failure_rate=limit,
    )
    return Run(path, columns, cost, table)


def read_canary_log(path: str | Path, model: str | None = None) -> list[CanaryRecord]:
    """Parse a canary log; a malformed line is an error naming file and line."""
    path = Path(path)
    records: list[CanaryRecord] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise GateError(f"canary log {path}: {exc}") from exc
    for number, line in enumerate(lines, start=1):
        if line.strip():
            try:
                records.append(CanaryRecord.model_validate_json(line))
            except ValidationError as exc:
                raise GateError(f"{path}:{number}: not a canary record: {exc}") from exc
    models = sorted({r.model for r in records})
    if model is None and len(models) > 1:
        raise GateError(f"{path}: several models ({', '.join(models)}); pass canary_model=NAME")
    records = [r for r in records if model is None or r.model == model]
    if not records:
        raise GateError(f"{path}: no requests for model {model!r} (models: {', '.join(models)})")
    priced = sum(r.cost_usd is not None for r in records)
    if 0 < priced < len(records):
        raise GateError(f"{path}: cost_usd on {priced} of {len(records)} requests: all or none")
    return records


def canary_metrics(
    records: Sequence[CanaryRecord], cost: CostConfig, cfg: StatsConfig
) -> dict[str, Estimate]:
    """The `canary.<metric>` estimates of one model's served requests."""
    abandoned = np.array([r.abandoned for r in records])
    incidents = np.array([r.safety_incident for r in records])
    latency = np.array([r.latency_ms for r in records], dtype=float)
    tokens = np.array([r.prompt_tokens + r.completion_tokens for r in records], dtype=float)
    completion = np.array([r.completion_tokens for r in records], dtype=float)
    count, n = int(incidents.sum()), len(records)
    out: dict[str, Estimate | None] = {
        "abandon_rate": stats.rate(abandoned, cfg=cfg),
        "safety_incident_rate": stats.rate(incidents, cfg=cfg),
        "safety_incidents": Estimate(
            point=count, lower_ci=count, upper_ci=count, n=n, count=count, method="exact"
        ),
        "latency_p95_ms": stats.quantile(latency, 0.95, cfg),
        "tokens_per_request": stats.mean(tokens, cfg=cfg),
    }
    if records[0].cost_usd is not None:  # billed: $ per 1k prompt+completion tokens
        billed = np.array([r.cost_usd or 0.0 for r in records]) * 1000.0
        out["cost_per_1k_tokens_usd"] = stats.ratio(billed, tokens, cfg)
    else:
        throughput = stats.ratio(completion, latency / 1000.0, cfg)
        out["cost_per_1k_tokens_usd"] = cost_per_1k(cost, throughput, n)
    return {k: v for k, v in out.items() if v is not None}


@dataclass
class _Inputs:
    candidate: Run
    baseline: Run | None
    deltas: DeltaTable | None
    canary: dict[str, Estimate] | None
    ruleset: RuleSet


def _field(obj: Estimate | Delta, field: str, where: str) -> float:
    if field == "n":
        return float(obj.n_pairs if isinstance(obj, Delta) else obj.n)
    value = getattr(obj, field, None)
    if value is None:
        raise GateError(f"{where}: this metric has no '{field}'")
    return float(value)


def _check_rule(rule: Rule, inputs: _Inputs) -> RuleResult:
    where = f"{rule.location}: {rule.text}"
    if rule.kind == "canary":
        if inputs.canary is None:
            raise GateError(f"{where}: needs a canary log (canary=LOG)")
        est = inputs.canary.get(rule.key)
        if est is None:
            raise GateError(f"{where}: canary metric absent (no cost config or usable data)")
        return _result(rule, _field(est, rule.field, where), describe(est), None)
    table = inputs.candidate.table
    if rule.slice not in table.slices:
        known = ", ".join(sorted(table.slices))
        raise GateError(f"{where}: unknown slice '{rule.slice}'; the candidate run has: {known}")
    if rule.kind == "delta":
        if inputs.deltas is None:
            raise GateError(f"{where}: needs a baseline run (baseline=RUN_DIR)")
        try:
            delta = inputs.deltas.get(rule.slice, rule.key)
        except PairingError as exc:
            raise GateError(f"{where}: {exc}") from exc
        note = f"Δ {rule.key} = {delta.point:+.3g}, p={delta.p_value:.2g}"
        return _result(rule, _field(delta, rule.field, where), describe_delta(delta), note)
    est = table.get(rule.slice, rule.key)
    base = inputs.baseline.table.get(rule.slice, rule.key) if inputs.baseline else None
    if est is None and base is not None:  # the baseline has data the candidate lacks: fail
        return RuleResult(
            text=rule.text,
            location=rule.location,
            slice=rule.slice,
            value=float("nan"),
            passed=False,
            detail=f"absent in the candidate run (baseline: {describe(base)})",
            note=f"{rule.key} absent (e.g. no successful episode) ✗",
        )
    if est is None:
        present = ", ".join(sorted(table.slices[rule.slice]))
        raise GateError(
            f"{where}: metric '{rule.key}' is absent on slice '{rule.slice}' (no data: the env "
            f"does not produce it, or nothing it is computed from happened, e.g. no "
            f"successful episode); present: {present}"
        )
    value = _field(est, rule.field, where)
    base_value = getattr(base, rule.field, None) if base is not None else None
    return _result(rule, value, describe(est), note_for(rule.key, rule.field, value, base_value))


def _result(rule: Rule, value: float, detail: str, note: str | None) -> RuleResult:
    return RuleResult(
        text=rule.text,
        location=rule.location,
        slice=rule.slice,
        value=value,
        passed=rule.holds(value),
        detail=detail,
        note=note or f"{rule.key} {value:.4g}",
    )


def _check_no_regressions(stmt: NoRegressions, inputs: _Inputs) -> list[RuleResult]:
    """Per slice: fail if Δ success@1 < −tolerance, or Δ < 0 with paired p < alpha."""
    tol, alpha = inputs.ruleset.tolerance, inputs.ruleset.alpha
    if inputs.deltas is None:
        raise GateError(f"{stmt.location}: {stmt.text}: needs a baseline run (baseline=RUN_DIR)")
    results = []
    for name in stmt.slices:
        where = f"{stmt.location}: no_regressions_on '{name}'"
        if name not in inputs.candidate.table.slices:
            known = ", ".join(sorted(inputs.candidate.table.slices))
            raise GateError(f"{where}: unknown slice; the candidate run has: {known}")
        try:
            delta = inputs.deltas.get(name, "success@1")
        except PairingError as exc:
            raise GateError(f"{where}: {exc}") from exc
        worse = delta.point < -tol - 1e-12 or (delta.point < 0 and delta.p_value < alpha)
        rule = f"tolerance {tol:g}, α={alpha:g}"
        results.append(
            RuleResult(
                text=f"no_regressions_on: {name}",
                location=stmt.location,
                slice=name,
                value=delta.point,
                passed=not worse,
                detail=f"{describe_delta(delta)}; {rule}",
                note=f"no regression (Δ {delta.point:+.3g})",
            )
        )
    return results


def evaluate(statements: Sequence[Rule | NoRegressions], inputs: _Inputs) -> list[RuleResult]:
    """Check every statement; all problems are collected into one `GateError`."""
    results: list[RuleResult] = []
    problems: list[str] = []
    for stmt in statements:
        try:
            if isinstance(stmt, NoRegressions):
                results.extend(_check_no_regressions(stmt, inputs))
            else:
                results.append(_check_rule(stmt, inputs))
        except GateError as exc:
            problems.append(str(exc))
    if problems:
        raise GateError("rules cannot be checked:\n  " + "\n  ".join(problems))
    return results


def _rows(results: Sequence[RuleResult], inputs: _Inputs) -> list[SliceRow]:
    """The seed's results table: one row per slice (aggregate last, canary after)."""
    cand, base = inputs.candidate.table, inputs.baseline.table if inputs.baseline else None
    names = sorted(cand.slices, key=lambda s: (s == AGGREGATE, s))
    rows = []
    for name in [*names, *(["canary"] if inputs.canary is not None else [])]:
        notes: dict[str, bool] = {}
        for r in results:
            if r.slice == name:
                notes[r.note] = notes.get(r.note, True) and r.passed
        rows.append(
            SliceRow(
                slice=name,
                baseline=base.get(name, "success@1") if base else None,
                candidate=cand.get(name, "success@1"),
                baseline_counts=completed_failed(base.slices.get(name)) if base else "—",
                candidate_counts=completed_failed(cand.slices.get(name)),
                notes=list(notes.items()),
            )
        )
    return rows


def _notes(inputs: _Inputs) -> list[str]:
    notes = []
    for label, run in (("candidate", inputs.candidate), ("baseline", inputs.baseline)):
        errors = run.table.get(AGGREGATE, "policy_error_rate") if run else None
        if errors is not None and errors.count:
            notes.append(
                f"{label}: {errors.count} of {errors.n} episodes ended in policy_error "
                "(infrastructure) and are left out of every metric"
            )
    return notes


def rules_path(ref: str) -> Path:
    """A rules file from a path, a `package:path` resource, or an env name (its rules)."""
    if Path(ref).is_file():
        return Path(ref)
    import envs
    from envs.card import resource

    if ":" in ref and not Path(ref).drive:
        return Path(str(resource(ref)))
    if ref in envs.ENVS.names():
        declared = envs.card(ref).promotion_rules
        if declared is None:
            raise GateError(f"rules: env '{ref}' declares no promotion rules")
        return Path(str(resource(declared)))
    raise GateError(
        f"rules: '{ref}' is not a file, a 'package:path' resource or an env name "
        f"({', '.join(envs.ENVS.names())})"
    )


def run_gate(settings: GateSettings) -> GateResult:
    """Load rules and runs, compute what the rules need, check every rule."""
    ruleset = load_rules(rules_path(settings.rules))
    statements = ruleset.for_stage(settings.stage)
    cfg = StatsConfig(settings.confidence, settings.n_resamples, settings.seed)
    paired = [s for s in statements if isinstance(s, NoRegressions) or s.kind == "delta"]
    if paired and not settings.baseline:
        raise GateError(f"baseline=RUN_DIR is required by {paired[0].location}: {paired[0].text}")
    canary_rules = [s for s in statements if isinstance(s, Rule) and s.kind == "canary"]
    if canary_rules and not settings.canary:
        first = canary_rules[0]
        raise GateError(f"canary=LOG is required by {first.location}: {first.text}")
    records = read_canary_log(settings.canary, settings.canary_model) if settings.canary else None
    candidate = load_run(settings.candidate, cfg)
    baseline = load_run(settings.baseline, cfg) if settings.baseline else None
    for run in (candidate, baseline):
        status = run.table.status if run else None
        if run and status and not status.complete and not settings.allow_incomplete:
            raise GateError(
                f"{run.path}: incomplete run: {status.describe()}; rerun it with resume=true "
                "once the endpoint is healthy, or pass allow_incomplete=true"
            )
    deltas = None
    if baseline is not None:
        wanted = [(s.slice, s.key) for s in paired if isinstance(s, Rule)]
        wanted += [
            (name, "success@1") for s in paired if isinstance(s, NoRegressions) for name in s.slices
        ]
        deltas = compute_deltas(
            candidate.episodes,
            baseline.episodes,
            only=wanted,
            confidence=cfg.confidence,
            n_resamples=cfg.n_resamples,
            seed=cfg.seed,
        )
    canary = canary_metrics(records, candidate.cost, cfg) if records else None
    inputs = _Inputs(candidate, baseline, deltas, canary, ruleset)
    results = evaluate(statements, inputs)
    return GateResult(
        stage=settings.stage,
        rules_path=settings.rules,
        candidate=settings.candidate,
        baseline=settings.baseline,
        canary=settings.canary,
        confidence=settings.confidence,
        rows=_rows(results, inputs),
        results=results,
        notes=_notes(inputs),
    )


def settings_from_overrides(overrides: Sequence[str]) -> GateSettings:
    """Compose configs/gate.yaml with `key=value` overrides; errors name the key."""
    raw = compose("gate", overrides)
    for key in ("rules", "candidate"):
        if raw.get(key) in (None, ""):
            raise ConfigError(f"missing {key}=... (configs/gate.yaml key '{key}')")
    for key in ("rules", "candidate", "baseline", "canary", "canary_model", "markdown"):
        if raw.get(key) is not None:
            raw[key] = str(raw[key])
    try:
        return GateSettings.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"key '{e['loc'][0]}': {e['msg']}" for e in exc.errors())
        raise ConfigError(f"configs/gate.yaml: {problems}") from exc


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point: 0 GO, 1 NO-GO, 2 error."""
    overrides = list(sys.argv[1:] if argv is None else argv)
    try:
        settings = settings_from_overrides(overrides)
        result = run_gate(settings)
        if settings.markdown:
            Path(settings.markdown).write_text(render_gate_markdown(result), encoding="utf-8")
    except (ConfigError, GateError, RuleSyntaxError, OSError, ValueError) as exc:
        print(f"gate error: {exc}", file=sys.stderr)
        return 2
    print(render_gate_text(result), end="")
    return 0 if result.go else 1


if __name__ == "__main__":
    sys.exit(main())
