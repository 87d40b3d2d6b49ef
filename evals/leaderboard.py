"""`python -m evals.leaderboard suite=default models=[expert,hf:PATH,openai:URL:MODEL]`.

Contract
--------
* **Suite** (`evals.suite`): a declared list of `{env, split}` (`configs/leaderboard.yaml`,
  key `suites`; a new one on the command line: `'+suites.NAME=[{env: my_env, split: eval}]'`);
  `default` is every registered env on its `eval` split, an env's name that env's `eval`
  split. Every model plays the same
  episodes: the first `limit` scenarios of each split × `epochs`, seeded as `evals.run`
  seeds them.
* **Models**: a scripted policy name (it must exist for every env of the suite), `hf:PATH`
  (a local model folder), `openai:URL:MODEL` (the model name follows the URL's last
  colon), or `run:RUN_DIR` (an existing eval run, ranked as it is); any of them labelled
  `LABEL=SPEC` (quoted on the command line: `models=[expert,'sft=hf:runs/sft']`). Each
  model's eval runs through `evals.run`'s functions in `<out>/runs/<label>/<split>`,
  **resumed** when the folder exists, and **reused** without playing anything when its
  manifest hash (`manifest_hash`: model, sampling, scenarios,
  reward spec, verifiers, tools and the result-changing config) matches and every episode
  is there.
* **Refused, not ranked** (listed with the reason): a run whose manifest does not match
  the suite (scenario-set hash, reward spec or tool versions differ), a model that cannot
  be built (unknown policy for an env, missing folder), and an incomplete run (episodes
  lost to infrastructure or missing, over `max_infra_failure_rate`) unless
  `allow_incomplete=true`.
* **Ranking**: by the suite score = success@1 over every episode of the suite, pooled
  (the `aggregate` slice; its interval is `evals.stats.rate`'s, clustered by scenario),
  ties in the point broken by mean reward. Neighbours are compared with the gate's paired
  test (`evals.deltas.compute_deltas`, McNemar on twin episodes): when p >= `alpha` the
  lower one is **tied** with the one above and shares its rank (a chain of ties shares the
  first rank of the chain).
* **Outputs** in `out`: `leaderboard.json` (`Leaderboard`), `leaderboard.md` and a
  self-contained `leaderboard.html` (`evals.leaderboard_pages`). Each row shows
  completed/failed episodes, the score with its interval, reward, pass^k (k = epochs),
  cost per 1k tokens and p95 latency (absent when not measured), success@1 per slice, and
  links to its runs' manifest and report. Exit status: 0 done (refusals are listed), 2 bad
  config (the message names the key).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from configs import ConfigError, load
from core.files import atomic_write_text
from core.records import Trajectory, read_jsonl
from core.sampling import Sampling
from evals import manifest as mf
from evals import run
from evals.deltas import compute_deltas
from evals.leaderboard_pages import render_html, render_markdown
from evals.metrics import AGGREGATE, CostConfig, Episodes, MetricTable, RunStatus, compute_metrics
from evals.stats import Estimate, PairingError
from evals.suite import (
    SUITE_FIELDS,
    Key,
    SuiteEntry,
    load_suite,
    split_groups,
    suite_keys,
    suite_manifest,
    suite_mismatch,
)
from policies.openai_compat import EndpointOptions

SCORE = "success@1"
AGGREGATE_DOC = (
    "success@1 over every episode of the suite, pooled (slice `aggregate`), with its "
    "confidence interval clustered by scenario; ties in the point broken by mean reward"
)
IDENTITY_FIELDS = ("llm_sha", "tokenizer_sha", "adapters", "sampling", "scenario_sets")


class LeaderboardConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    suite: str = "default"
    models: list[str] = Field(min_length=1)
    out: str | None = None
    epochs: int = Field(default=1, ge=1)
    limit: int | None = Field(default=None, ge=1)
    seed: int = Field(default=0, ge=0)
    batch_size: int = Field(default=16, ge=1)
    confidence: float = Field(default=0.95, gt=0, lt=1)
    alpha: float = Field(default=0.05, gt=0, lt=1)
    n_resamples: int = Field(default=2000, ge=100)
    allow_incomplete: bool = False
    max_infra_failure_rate: float = Field(default=0.05, ge=0, le=1)
    sampling: Sampling = Field(default_factory=Sampling)
    cost: CostConfig = Field(default_factory=CostConfig)
    endpoint: EndpointOptions = Field(default_factory=EndpointOptions)
    suites: dict[str, list[SuiteEntry]] = Field(default_factory=dict)

    @property
    def out_dir(self) -> Path:
        return Path(self.out or f"runs/leaderboard/{self.suite}")


@dataclass(frozen=True)
class ModelSpec:
    label: str
    kind: Literal["scripted", "hf", "openai", "run"]
    target: str  # policy name, model folder, model name, or run folder
    base_url: str | None = None


class Row(BaseModel):
    """One ranked model."""

    rank: int
    tied_with_above: bool
    model: str
    spec: str
    status: RunStatus
    score: Estimate
    reward: Estimate | None = None
    pass_k: Estimate | None = None
    cost_per_1k_tokens_usd: Estimate | None = None
    latency_p95_ms: Estimate | None = None
    slices: dict[str, Estimate] = Field(default_factory=dict)  # slice -> success@1
    vs_above: dict[str, Any] | None = None  # the paired test against the row above
    manifests: list[str] = Field(default_factory=list)  # relative to the leaderboard folder
    reports: list[str] = Field(default_factory=list)
    reused: bool = False


class Refusal(BaseModel):
    model: str
    spec: str
    reason: str


class Leaderboard(BaseModel):
    suite: str
    entries: list[SuiteEntry]
    aggregate: str = AGGREGATE_DOC
    k: int
    confidence: float
    alpha: float
    episodes: int  # per model
    suite_manifest: dict[str, Any]
    slices: list[str]
    rows: list[Row]
    refused: list[Refusal] = Field(default_factory=list)


@dataclass
class ModelRun:
    spec: ModelSpec
    text: str
    trajectories: list[Trajectory] = field(default_factory=list)
    run_dirs: list[Path] = field(default_factory=list)
    reused: bool = True


class RefusedError(Exception):
    """A model cannot be ranked on this suite (the message says why)."""


def parse_model(text: str) -> ModelSpec:
    """`expert`, `hf:PATH`, `openai:URL:MODEL`, `run:DIR`, optionally `LABEL=` first."""
    label, _, spec = text.partition("=") if "=" in text.split(":", 1)[0] else ("", "", text)
    kind, _, rest = spec.partition(":")
    if kind == "hf" and rest:
        return ModelSpec(label or Path(rest).name, "hf", rest)
    if kind == "run" and rest:
        return ModelSpec(label or Path(rest).name, "run", rest)
    if kind == "openai":
        url, _, name = rest.rpartition(":")
        if not url.startswith(("http://", "https://")) or not name:
            raise ConfigError(f"models: '{text}': write openai:http://HOST:PORT/v1:MODEL")
        return ModelSpec(label or name, "openai", name, url)
    if ":" in spec or not spec:
        raise ConfigError(f"models: '{text}': expected NAME, hf:PATH, openai:URL:MODEL or run:DIR")
    return ModelSpec(label or spec, "scripted", spec)


def eval_argv(cfg: LeaderboardConfig, spec: ModelSpec, envs: list[str], split: str) -> list[str]:
    """The `evals.run` overrides that play `spec` on one split group of the suite."""
    out = cfg.out_dir / "runs" / _slug(spec.label) / split
    argv = [
        f"env=[{','.join(envs)}]",
        f"split={split}",
        f"out={out}",
        f"epochs={cfg.epochs}",
        f"seed={cfg.seed}",
        f"batch_size={cfg.batch_size}",
        f"confidence={cfg.confidence}",
        f"max_infra_failure_rate={cfg.max_infra_failure_rate}",
        "resume=true",
        *(f"sampling.{k}={v}" for k, v in cfg.sampling.model_dump(exclude_none=True).items()),
        *(f"cost.{k}={_hydra(v)}" for k, v in cfg.cost.model_dump().items()),
        *(f"endpoint.{k}={v}" for k, v in cfg.endpoint.model_dump().items()),
    ]
    if cfg.limit is not None:
        argv.append(f"limit={cfg.limit}")
    if spec.kind == "scripted":
        return [*argv, f"policy={spec.target}"]
    if spec.kind == "hf":
        return [*argv, "policy=hf", f"model={spec.target}"]
    return [*argv, "policy=openai", f"model={spec.target}", f"base_url={spec.base_url}"]


def _hydra(value: Any) -> str:
    return "null" if value is None else str(value)


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in label) or "model"


def manifest_hash(manifest: mf.RunManifest) -> str:
    """What fixes a run's episodes: model, sampling, scenarios, rewards, tools, config."""
    keys = (*mf.RESULT_KEYS, "epochs", "limit")
    identity = {name: getattr(manifest, name) for name in IDENTITY_FIELDS}
    identity |= {name: getattr(manifest, name) for name in (*SUITE_FIELDS, "verifiers")}
    identity["config"] = {key: manifest.config.get(key) for key in keys}
    identity["tool_format"] = _tool_format(manifest)  # not in RESULT_KEYS, changes episodes
    blob = json.dumps(identity, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def play_model(cfg: LeaderboardConfig, spec: ModelSpec, entries: Sequence[SuiteEntry]) -> ModelRun:
    """Run (resume, or reuse by manifest hash) one model's evals over the suite."""
    result = ModelRun(spec, "")
    if spec.kind == "run":
        result.run_dirs.append(Path(spec.target))
        return result
    for split, envs in split_groups(entries).items():
        try:
            eval_cfg = run.load_config(eval_argv(cfg, spec, envs, split))
            plans = run.plan_jobs(eval_cfg)
            run.check_policy(eval_cfg)
            scripted = (
                None
                if eval_cfg.policy in run.MODEL_POLICIES
                else run.make_policies(eval_cfg, plans)
            )
            manifest = run.build_manifest(eval_cfg, plans, scripted)
        except ConfigError as exc:
            raise RefusedError(f"cannot build its eval on split '{split}': {exc}") from exc
        out = eval_cfg.out_dir
        result.run_dirs.append(out)
        old = _read_manifest(out)
        if old is not None and _reusable(
            out, old, manifest, {p.key(j) for p in plans for j in p.jobs}
        ):
            continue
        result.reused = False
        if old is not None and _stale(old, manifest):
            # The folder is ours and holds an older model or config: replace it, never mix.
            eval_cfg = eval_cfg.model_copy(update={"resume": False})
        try:
            run.evaluate(eval_cfg, plans)
        except ConfigError as exc:  # e.g. a folder another writer holds
            raise RefusedError(f"{out}: {exc}") from exc
    return result


def _tool_format(manifest: mf.RunManifest) -> Any:
    """How an endpoint's replies are read (None for policies that are not endpoints)."""
    if manifest.config.get("policy") != "openai":
        return None
    return (manifest.config.get("endpoint") or {}).get("tool_format")


def _stale(old: mf.RunManifest, new: mf.RunManifest) -> bool:
    """The folder's run would give other episodes: another model, config or tool format."""
    return mf.result_mismatch(old, new) is not None or _tool_format(old) != _tool_format(new)


def _read_manifest(out: Path) -> mf.RunManifest | None:
    try:
        return mf.RunManifest.model_validate_json((out / run.MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def _reusable(out: Path, old: mf.RunManifest, manifest: mf.RunManifest, keys: set[Key]) -> bool:
    try:
        done = {
            run.trajectory_key(t)
            for t in read_jsonl(out / run.EPISODES)
            if not t.lost_to_infrastructure
        }
    except (OSError, ValueError):
        return False
    return manifest_hash(old) == manifest_hash(manifest) and keys <= done


def collect(
    model: ModelRun, expected: dict[str, Any], keys: list[Key], cfg: LeaderboardConfig
) -> tuple[list[Trajectory], RunStatus]:
    """The model's episodes of the suite's keys, checked against the suite's manifest."""
    found: dict[Key, Trajectory] = {}
    manifests: dict[str, Any] = {name: {} for name in SUITE_FIELDS}
    for folder in model.run_dirs:
        try:
            data = json.loads((folder / run.MANIFEST).read_text())
            episodes = list(read_jsonl(folder / run.EPISODES))
        except (OSError, ValueError) as exc:
            raise RefusedError(f"{folder}: not a readable eval run: {exc}") from exc
        for name in SUITE_FIELDS:
            manifests[name].update(data.get(name) or {})
        found.update({run.trajectory_key(t): t for t in episodes})
    mismatch = suite_mismatch(manifests, expected)
    if mismatch is not None:
        raise RefusedError(f"manifest does not match the suite: {mismatch}")
    kept = [found[k] for k in keys if k in found]
    failed = sum(t.lost_to_infrastructure for t in kept)
    status = RunStatus(
        episodes=len(keys),
        completed=len(kept) - failed,
        failed=failed + len(keys) - len(kept),  # a missing episode is lost too
        max_infra_failure_rate=cfg.max_infra_failure_rate,
    )
    if not status.complete and not cfg.allow_incomplete:
        raise RefusedError(f"incomplete run: {status.describe()} (allow_incomplete=true ranks it)")
    return kept, status


@dataclass
class _Entry:
    model: ModelRun
    episodes: Episodes
    status: RunStatus
    table: MetricTable


def rank(entries: list[_Entry], cfg: LeaderboardConfig, out: Path) -> list[Row]:
    """Order by the suite score (then reward); mark neighbours the paired test cannot split."""

    def order(entry: _Entry) -> tuple[float, float, str]:
        agg = entry.table.slices[AGGREGATE]
        reward = agg.get("reward")
        return (-agg[SCORE].point, -(reward.point if reward else 0.0), entry.model.spec.label)

    rows: list[Row] = []
    ordered = sorted(entries, key=order)
    for i, entry in enumerate(ordered):
        vs_above, tied = None, False
        if i > 0:
            vs_above = _paired(entry, ordered[i - 1], cfg)
            tied = vs_above.get("p_value", 0.0) >= cfg.alpha
        agg = entry.table.slices[AGGREGATE]
        rows.append(
            Row(
                rank=rows[-1].rank if tied else i + 1,
                tied_with_above=tied,
                model=entry.model.spec.label,
                spec=entry.model.text,
                status=entry.status,
                score=agg[SCORE],
                reward=agg.get("reward"),
                pass_k=agg.get(f"pass^{cfg.epochs}"),
                cost_per_1k_tokens_usd=agg.get("cost_per_1k_tokens_usd"),
                latency_p95_ms=agg.get("latency_p95_ms"),
                slices={
                    name: metrics[SCORE]
                    for name, metrics in entry.table.slices.items()
                    if SCORE in metrics
                },
                vs_above=vs_above,
                manifests=[_link(d / run.MANIFEST, out) for d in entry.model.run_dirs],
                reports=[_link(d / run.REPORT, out) for d in entry.model.run_dirs],
                reused=entry.model.reused,
            )
        )
    return rows


def _paired(entry: _Entry, above: _Entry, cfg: LeaderboardConfig) -> dict[str, Any]:
    """McNemar on twin episodes (as the gate pairs them): this row minus the row above."""
    try:
        delta = compute_deltas(
            entry.episodes,
            above.episodes,
            only=[(AGGREGATE, SCORE)],
            confidence=cfg.confidence,
            n_resamples=cfg.n_resamples,
            seed=cfg.seed,
        ).get(AGGREGATE, SCORE)
    except PairingError as exc:
        return {"error": str(exc)}
    return {"model": above.model.spec.label, **delta.model_dump()}


def _link(path: Path, out: Path) -> str:
    return Path(os.path.relpath(path.resolve(), out.resolve())).as_posix()


def build(cfg: LeaderboardConfig) -> Leaderboard:
    """Run or reuse every model's evals, refuse what cannot be ranked, rank the rest."""
    specs = [parse_model(text) for text in cfg.models]
    labels = [spec.label for spec in specs]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"models: labels must differ, got {labels}; write LABEL=SPEC")
    suite_entries = load_suite(cfg.suite, cfg.suites)
    expected = suite_manifest(suite_entries)
    keys = suite_keys(suite_entries, cfg.epochs, cfg.limit)
    out = cfg.out_dir
    ranked: list[_Entry] = []
    refused: list[Refusal] = []
    for spec, text in zip(specs, cfg.models, strict=True):
        try:
            model = play_model(cfg, spec, suite_entries)
            model.text = text
            kept, status = collect(model, expected, keys, cfg)
            table = compute_metrics(
                kept,
                cfg.cost,
                cfg.confidence,
                n_resamples=cfg.n_resamples,
                seed=cfg.seed,
                max_infra_failure_rate=cfg.max_infra_failure_rate,
            )
            if SCORE not in table.slices[AGGREGATE]:
                raise RefusedError("no completed episode to score")
        except RefusedError as exc:
            refused.append(Refusal(model=spec.label, spec=text, reason=str(exc)))
            continue
        ranked.append(_Entry(model, Episodes.of(kept), status, table))
    rows = rank(ranked, cfg, out)
    slices = sorted({s for row in rows for s in row.slices}, key=lambda s: (s == AGGREGATE, s))
    return Leaderboard(
        suite=cfg.suite,
        entries=suite_entries,
        k=cfg.epochs,
        confidence=cfg.confidence,
        alpha=cfg.alpha,
        episodes=len(keys),
        suite_manifest=expected,
        slices=slices,
        rows=rows,
        refused=refused,
    )


def load_config(argv: Sequence[str]) -> LeaderboardConfig:
    return load("leaderboard", argv, LeaderboardConfig)


def write(board: Leaderboard, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "leaderboard.json", board.model_dump_json(indent=2) + "\n")
    atomic_write_text(out / "leaderboard.md", render_markdown(board))
    atomic_write_text(out / "leaderboard.html", render_html(board))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        cfg = load_config(argv)
        board = build(cfg)
        write(board, cfg.out_dir)
    except ConfigError as exc:
        print(f"evals.leaderboard: bad config: {exc}", file=sys.stderr)
        return run.EXIT_CONFIG
    print(render_markdown(board), end="")
    print(f"leaderboard: {cfg.out_dir / 'leaderboard.html'}")
    return run.EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
