"""`python -m evals.run env=refund_agent policy=expert split=eval`: evaluate one policy.

Contract
--------
* **Config**: `configs/eval.yaml` composed with Hydra overrides, validated into `EvalConfig`
  (env, policy, model, base_url, split, epochs, seed, batch_size, limit, max_turns, role,
  partners, out, resume, check_frozen, confidence, sampling, cost); `role` and `partners`
  go to multi-agent envs (`envs.multi_agent`: the role played, who plays the others).
* **Jobs**: for each env, each of the first `limit` scenarios of the split (file order) and
  each epoch in 0..epochs-1, one `EpisodeJob` whose seed is `episode_seed(seed, env,
  scenario content hash, epoch)`. Episodes are played by `envs.rollout.rollout`, the one
  loop, one call per env.
* **Run folder** (`out`, default `runs/eval/<env>-<policy>-<split>`):
  - `episodes.jsonl`: each episode is appended and flushed as it finishes; when the run
    ends the file is rewritten (atomically) sorted by (env, scenario_id, epoch), one line
    per key, so a resumed run leaves the same bytes as a clean one.
  - `metrics.json`: `compute_metrics` over this config's jobs, sorted by key.
  - `report.md`: `evals.report.render_run_report(table)`.
  - `manifest.json`: `evals.manifest.RunManifest` (written before the first episode).
  - `.lock`: held (`core.files.RunLock`) for the whole run: a second run with the same
    `out` exits 2 naming the holder (pid, host, command). Whole files are written
    atomically (a temporary name unique to the process, then `os.replace`).
* **Resume** (`resume=true`): refused (exit 2, naming the key) unless the folder's
  manifest agrees on every key that changes results (`evals.manifest.RESULT_KEYS`, model
  and tokenizer sha, reward spec, tools, scenario sets); `limit` and `epochs` may change.
  A torn last line is cut off (a bad line anywhere else is refused, exit 2, naming the
  file and line: a killed run cannot leave one); jobs whose (env, scenario_id, epoch) is
  in the file are skipped, except episodes lost to a policy error, which are played again
  (the newest record of a key wins). Each key is counted once.
* **Determinism**: same config, same bytes of `episodes.jsonl` and `metrics.json`.
  Scripted policies report no latency. Model policies do (`latency_ms`), so their files
  are byte-identical except latency, and `check_frozen` compares metrics without the
  timing metrics (`TIMING_METRICS`).
* **check_frozen=true**: a second, fresh run into `<out>-rerun`; exit 1 naming every
  metric that differs.
* **Exit codes**: 0 ok; 1 frozen check failed or the run broke; 2 bad config (unknown
  env/policy/split, missing model, refused resume), reported before any episode runs.

torch is imported only when `policy=hf`.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from configs import ConfigError, load
from core.files import FolderError, RunLock, atomic_write_text
from core.policy import Policy
from core.records import Trajectory, read_jsonl
from core.sampling import Sampling
from core.seeding import episode_seed
from envs.base import ToolEnv
from envs.rollout import EpisodeJob, rollout
from evals import manifest as mf
from evals.metrics import CostConfig, MetricTable, compute_metrics
from evals.progress import EpisodeProgress
from evals.report import completed_failed, render_run_report
from evals.stats import Estimate
from policies.openai_compat import EndpointOptions
from scenarios.schema import scenario_set_hash

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2
MODEL_POLICIES = ("hf", "openai")
TIMING_METRICS = frozenset({"latency_p95_ms", "cost_per_1k_tokens_usd"})
EPISODES, METRICS, REPORT, MANIFEST = "episodes.jsonl", "metrics.json", "report.md", "manifest.json"
Key = tuple[str, str, int]


class EvalConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    env: list[str] = Field(min_length=1)
    policy: str
    model: str | None = None
    base_url: str | None = None
    split: str = "eval"
    epochs: int = Field(default=1, ge=1)
    seed: int = Field(default=0, ge=0)
    batch_size: int = Field(default=16, ge=1)
    limit: int | None = Field(default=None, ge=1)
    max_turns: int | None = Field(default=None, ge=1)
    role: str | None = None  # multi-agent envs: the role evaluated (null: the env's learner)
    partners: dict[str, str] | None = None  # multi-agent envs: {role: policy} for the others
    out: str | None = None
    resume: bool = False
    check_frozen: bool = False
    confidence: float = Field(default=0.95, gt=0, lt=1)
    sampling: Sampling = Field(default_factory=Sampling)
    cost: CostConfig = Field(default_factory=CostConfig)
    endpoint: EndpointOptions = Field(default_factory=EndpointOptions)  # policy=openai
    max_infra_failure_rate: float = Field(default=0.05, ge=0, le=1)  # above: run incomplete
    infra_retries: int = Field(default=1, ge=0)  # replays of an episode lost to infrastructure

    @field_validator("env", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("policy", "model", "base_url", "split", "out", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int | float) else value

    @property
    def out_dir(self) -> Path:
        default = f"runs/eval/{'+'.join(self.env)}-{self.policy}-{self.split}"
        return Path(self.out or default)


@dataclass
class EnvPlan:
    """One env's share of the run: its jobs and how to build its env."""

    name: str
    kwargs: dict[str, Any]
    env: ToolEnv
    jobs: list[EpisodeJob] = field(default_factory=list)

    def make_env(self) -> ToolEnv:
        import envs

        return envs.make_raw(self.name, **self.kwargs)

    def key(self, job: EpisodeJob) -> Key:
        return (self.env.env_name, job.scenario.id, job.epoch)


def trajectory_key(trajectory: Trajectory) -> Key:
    return (trajectory.env_id, trajectory.scenario_id, trajectory.epoch)


def load_config(argv: Sequence[str]) -> EvalConfig:
    return load("eval", argv, EvalConfig)


def check_policy(cfg: EvalConfig) -> None:
    """A model policy has what it needs; a scripted one is known to every env of the run."""
    if cfg.policy == "hf" and not (cfg.model and (Path(cfg.model) / "config.json").is_file()):
        raise ConfigError(
            f"model: policy=hf needs model=<local model folder with config.json>, got "
            f"{cfg.model!r} (models are never downloaded)"
        )
    if cfg.policy == "hf":
        import importlib.util

        missing = [m for m in ("torch", "transformers") if importlib.util.find_spec(m) is None]
        if missing:
            raise ConfigError(
                f"policy: policy=hf needs {' and '.join(missing)} (toolgym's train extra): "
                "pip install 'toolgym[train]' (torch first, the build for your machine)"
            )
    if cfg.policy == "openai":
        for key in ("model", "base_url"):
            if not getattr(cfg, key):
                raise ConfigError(
                    f"{key}: policy=openai needs model=<name> and base_url=<http://host/v1>"
                )
    if cfg.policy in MODEL_POLICIES:
        return
    from policies.registry import POLICIES

    for env in cfg.env:
        try:
            POLICIES.resolve(cfg.policy, env)
        except KeyError:
            allowed = [*POLICIES.names(env), *MODEL_POLICIES]
            raise ConfigError(
                f"policy: unknown policy '{cfg.policy}' for env '{env}'; allowed: "
                f"{', '.join(allowed)}"
            ) from None
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"policy: '{cfg.policy}' for env '{env}' cannot load: {exc}") from exc


def plan_jobs(cfg: EvalConfig) -> list[EnvPlan]:
    import envs

    allowed = ", ".join(envs.ENVS.names())
    plans: list[EnvPlan] = []
    for name in cfg.env:
        try:
            envs.ENVS.entry(name)
        except KeyError:
            raise ConfigError(f"env: unknown env '{name}'; allowed: {allowed}") from None
        if name in (plan.name for plan in plans):
            raise ConfigError(f"env: '{name}' is listed twice")
        card = envs.card(name)
        if cfg.split not in card.splits:
            raise ConfigError(
                f"split: env '{name}' has no split '{cfg.split}'; declared: "
                + ", ".join(card.splits)
            )
        kwargs: dict[str, Any] = {"split": cfg.split}
        if cfg.max_turns is not None:
            kwargs["max_turns"] = cfg.max_turns
        for key in ("role", "partners"):  # multi-agent envs only: others reject them
            if getattr(cfg, key) is not None:
                kwargs[key] = getattr(cfg, key)
        if problem := card.settings_problem(kwargs):
            raise ConfigError(problem)
        try:
            env = envs.make_raw(name, **kwargs)
        except (ValueError, KeyError, OSError, TypeError) as exc:
            raise ConfigError(
                f"split: env '{name}' cannot load split '{cfg.split}' with {kwargs}: {exc}"
            ) from exc
        plan = EnvPlan(name, kwargs, env)
        for scenario in env.scenarios[: cfg.limit]:
            for epoch in range(cfg.epochs):
                seed = episode_seed(cfg.seed, env.env_name, scenario.content_hash, epoch)
                plan.jobs.append(EpisodeJob(scenario, seed, epoch))
        plans.append(plan)
    return plans


def make_policy(cfg: EvalConfig, env: str) -> Policy:
    """The policy that plays `env`: a model (shared by every env) or the env's scripted one."""
    if cfg.policy == "hf":
        from policies.hf import HFPolicy

        assert cfg.model is not None
        return HFPolicy(cfg.model, sampling=cfg.sampling, seed=cfg.seed)
    if cfg.policy == "openai":
        from policies.openai_compat import OpenAICompatPolicy

        assert cfg.model is not None and cfg.base_url is not None
        return OpenAICompatPolicy(
            cfg.model,
            cfg.base_url,
            seed=cfg.seed,
            sampling=cfg.sampling,
            max_concurrency=cfg.batch_size,
            **cfg.endpoint.model_dump(),
        )
    from policies.registry import make_policy as make_named

    return make_named(cfg.policy, env)


def make_policies(cfg: EvalConfig, plans: list[EnvPlan]) -> dict[str, Policy]:
    """One policy per env of the run; a model policy is built once and shared."""
    if cfg.policy in MODEL_POLICIES:
        shared = make_policy(cfg, plans[0].name)
        return {plan.name: shared for plan in plans}
    return {plan.name: make_policy(cfg, plan.name) for plan in plans}


def build_manifest(
    cfg: EvalConfig, plans: list[EnvPlan], policies: dict[str, Policy] | None
) -> mf.RunManifest:
    """The run's M5-L08 config. `policies` are needed only for scripted policies."""
    tokenizer, adapters = None, []
    if cfg.policy == "hf":
        folder = Path(str(cfg.model))
        llm = mf.model_sha(folder) or f"path:{folder.resolve()}"
        tokenizer, adapters = mf.tokenizer_sha(folder), mf.adapters(folder)
    elif cfg.policy == "openai":
        from policies.openai_compat import served_model

        assert cfg.model is not None and cfg.base_url is not None
        llm = f"openai:{cfg.model}@{cfg.base_url}"
        served = served_model(cfg.base_url, cfg.model)
        if served is not None:  # other weights behind the same name: another model
            llm += "#" + mf.combined_hash({key: str(value) for key, value in served.items()})
    else:
        assert policies is not None
        shas = sorted({mf.source_sha(policy) for policy in policies.values()})
        llm = f"scripted:{cfg.policy}@{'+'.join(shas)}"
    sets = {p.env.env_name: scenario_set_hash(p.env.scenarios) for p in plans}
    return mf.RunManifest(
        llm_sha=llm,
        tokenizer_sha=tokenizer,
        adapters=adapters,
        sampling=cfg.sampling.model_dump(),
        input_sha=mf.combined_hash(sets),
        scenario_sets=sets,
        reward_spec={p.env.env_name: dict(p.env.rubric.weights) for p in plans},
        verifiers={
            f"{p.env.env_name}.{name}": mf.function_sha(fn)
            for p in plans
            for name, fn in p.env.rubric.functions.items()
        },
        tools={p.env.env_name: dict(p.env.toolbox.versions) for p in plans},
        fixtures={p.env.env_name: mf.env_fixtures(p.name) for p in plans},
        env_versions={p.env.env_name: mf.env_version(p.name) for p in plans},
        code=mf.code_commit(),
        versions=mf.package_versions(),
        config=cfg.model_dump(mode="json"),
    )


def prepare_folder(out: Path, manifest: mf.RunManifest, resume: bool) -> dict[Key, Trajectory]:
    """Start a fresh folder, or check and load a resumable one (newest record per key)."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"out: {out} exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"out: cannot create {out}: {exc.strerror}") from None
    episodes = out / EPISODES
    found: dict[Key, Trajectory] = {}
    if resume and episodes.exists():
        try:
            previous = mf.RunManifest.model_validate_json((out / MANIFEST).read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"resume: cannot read {out / MANIFEST} to check the config: {exc}"
            ) from exc
        diff = mf.result_mismatch(previous, manifest)
        if diff is not None:
            raise ConfigError(f"resume: refusing to resume {out}: the config differs in {diff}")
        found = _load_episodes(episodes)
    elif not resume:
        for name in (EPISODES, METRICS, REPORT):
            (out / name).unlink(missing_ok=True)
    try:
        atomic_write_text(out / MANIFEST, manifest.model_dump_json(indent=2) + "\n")
    except OSError as exc:
        raise ConfigError(f"out: cannot write in {out}: {exc.strerror}") from None
    return found


def _load_episodes(episodes: Path) -> dict[Key, Trajectory]:
    """The newest record per key of a resumed file.

    A torn last line is what a killed writer leaves (appends are flushed line by line):
    it is cut off and its episode re-run. A bad line anywhere else was not written by a
    killed run (an edit, a disk fault, another program): resuming over it is refused,
    naming the file and line, rather than silently replaying episodes of a damaged file.
    """
    try:
        _drop_torn_tail(episodes)
        return {trajectory_key(t): t for t in read_jsonl(episodes)}
    except UnicodeDecodeError:
        number = next(
            n
            for n, line in enumerate(episodes.read_bytes().splitlines(), start=1)
            if not _is_utf8(line)
        )
        raise ConfigError(
            f"resume: {episodes}:{number}: not UTF-8; fix it or run with resume=false"
        ) from None
    except ValueError as exc:
        detail = str(exc).splitlines()[0][:200]
        raise ConfigError(
            f"resume: {detail}; a killed run only tears the last line, so this file was "
            "changed by something else: remove that line or run with resume=false"
        ) from None
    except OSError as exc:
        raise ConfigError(f"resume: cannot read {episodes}: {exc.strerror}") from None


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _drop_torn_tail(path: Path) -> None:
    """Cut a last line a killed writer left unfinished, so appends start on a fresh line."""
    with path.open("rb+") as fh:
        data = fh.read()
        if data and not data.endswith(b"\n"):
            fh.truncate(data.rfind(b"\n") + 1)


def play(
    plans: list[EnvPlan],
    policies: dict[str, Policy],
    cfg: EvalConfig,
    found: dict[Key, Trajectory],
    out: Path,
) -> dict[Key, Trajectory]:
    """Run every job not already done; append each finished episode to the JSONL."""
    done = {k for k, t in found.items() if not t.lost_to_infrastructure}
    wanted = [plan.key(job) for plan in plans for job in plan.jobs]
    kept = [found[k] for k in wanted if k in done]
    results = dict(found)
    progress = EpisodeProgress(
        len(wanted), done=len(kept), successes=sum(t.success for t in kept), desc=cfg.policy
    )
    with progress, (out / EPISODES).open("a", encoding="utf-8") as fh:
        for plan in plans:
            jobs = [job for job in plan.jobs if plan.key(job) not in done]
            if not jobs:
                continue
            batch = min(cfg.batch_size, len(jobs))
            episodes = rollout(
                plan.make_env,
                policies[plan.name],
                jobs,
                batch_size=batch,
                infra_retries=cfg.infra_retries,
            )
            for trajectory in episodes:
                fh.write(trajectory.to_json() + "\n")
                fh.flush()
                results[trajectory_key(trajectory)] = trajectory
                progress.update(trajectory)
    return results


def finalize(
    out: Path, results: dict[Key, Trajectory], plans: list[EnvPlan], cfg: EvalConfig
) -> MetricTable:
    """Rewrite the JSONL sorted; compute and write metrics and report for this config's jobs."""
    ordered = [results[k] for k in sorted(results)]
    atomic_write_text(out / EPISODES, "".join(t.to_json() + "\n" for t in ordered))
    wanted = {plan.key(job) for plan in plans for job in plan.jobs}
    counted = [t for t in ordered if trajectory_key(t) in wanted]
    table = compute_metrics(
        counted, cfg.cost, cfg.confidence, max_infra_failure_rate=cfg.max_infra_failure_rate
    )
    atomic_write_text(out / METRICS, table.model_dump_json(indent=2) + "\n")
    title = f"Eval: {cfg.policy} on {', '.join(cfg.env)} ({cfg.split})"
    atomic_write_text(out / REPORT, render_run_report(table, title=title))
    return table


def diff_metrics(
    a: MetricTable, b: MetricTable, ignore: frozenset[str] = TIMING_METRICS
) -> list[str]:
    """`slice/metric: a != b` for every metric (outside `ignore`) whose estimates differ."""
    diffs = []
    for name in sorted(set(a.slices) | set(b.slices)):
        left, right = a.slices.get(name, {}), b.slices.get(name, {})
        for key in sorted((set(left) | set(right)) - ignore):
            if left.get(key) != right.get(key):
                diffs.append(f"{name}/{key}: {_fmt(left.get(key))} != {_fmt(right.get(key))}")
    return diffs


def _fmt(estimate: Estimate | None) -> str:
    if estimate is None:
        return "absent"
    return f"{estimate.point:.6g} [{estimate.lower_ci:.6g}, {estimate.upper_ci:.6g}] n={estimate.n}"


def summarize(table: MetricTable) -> str:
    """One line per slice: completed / failed episodes, success@1 with its interval, reward;
    then the run's status (an incomplete run says so)."""
    level = f"{table.confidence:.0%} CI"
    head = f"{'slice':<28} {'done / failed':>13}  {'success@1 [' + level + ']':<28} {'reward':>8}"
    lines = [head]
    for name, metrics in table.slices.items():
        success, reward = metrics.get("success@1"), metrics.get("reward")
        n = completed_failed(metrics)
        cell = (
            f"{success.point:.3f} [{success.lower_ci:.3f}, {success.upper_ci:.3f}]"
            if success
            else "-"
        )
        mean = f"{reward.point:.3f}" if reward else "-"
        lines.append(f"{name:<28} {n:>13}  {cell:<28} {mean:>8}")
    if table.status is not None:
        complete = "complete" if table.status.complete else "INCOMPLETE RUN"
        lines.append(f"{complete}: {table.status.describe()}")
    return "\n".join(lines)


def evaluate(cfg: EvalConfig, plans: list[EnvPlan]) -> int:
    """Run (and, with check_frozen, rerun) the evaluation; print the summary."""
    policies = None if cfg.policy in MODEL_POLICIES else make_policies(cfg, plans)
    manifest = build_manifest(cfg, plans, policies)
    out = cfg.out_dir
    found = prepare_folder(out, manifest, cfg.resume)  # a refused resume stops here
    policies = policies or make_policies(cfg, plans)
    try:
        table = finalize(out, play(plans, policies, cfg, found, out), plans, cfg)
        print(summarize(table))
        print(f"report: {out / REPORT}")
        if not cfg.check_frozen:
            return EXIT_OK
        rerun = rerun_folder(out)
        config = {**manifest.config, "resume": False, "out": str(rerun)}
        found = prepare_folder(rerun, manifest.model_copy(update={"config": config}), False)
        second = finalize(rerun, play(plans, policies, cfg, found, rerun), plans, cfg)
    finally:
        for policy in {id(p): p for p in policies.values()}.values():
            close = getattr(policy, "close", None)
            if callable(close):
                close()
    diffs = diff_metrics(table, second)
    if diffs:
        print(f"check_frozen FAILED: {len(diffs)} metric(s) differ between {out} and {rerun}:")
        print("\n".join(f"  {line}" for line in diffs))
        return EXIT_FAILED
    print(f"check_frozen passed: metrics of {out} and {rerun} are identical")
    return EXIT_OK


def rerun_folder(out: Path) -> Path:
    """`<out>-rerun` beside `out` (for `out=.` too: the folder's real name is used)."""
    folder = out.resolve()
    if not folder.name:
        raise ConfigError(f"out: check_frozen needs a folder with a name beside it, not {out}")
    return folder.with_name(folder.name + "-rerun")


def lock_folders(cfg: EvalConfig, argv: Sequence[str]) -> list[RunLock]:
    """Hold the run folder (and the check_frozen rerun folder): one writer per folder."""
    folders = [cfg.out_dir, *([rerun_folder(cfg.out_dir)] if cfg.check_frozen else [])]
    command = " ".join(["python -m evals.run", *argv])
    locks: list[RunLock] = []
    try:
        for folder in folders:
            locks.append(RunLock(folder, command).acquire())
    except FolderError as exc:
        for lock in locks:
            lock.release()
        raise ConfigError(f"out: {exc}") from None
    return locks


def main(argv: Sequence[str] | None = None, *, freeze_heap: bool = False) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        cfg = load_config(argv)
        plans = plan_jobs(cfg)  # envs first: plugin envs declare their own policies
        check_policy(cfg)
        locks = lock_folders(cfg, argv)
        if freeze_heap:  # the process is ours: setup's objects (modules, scenarios) leave
            gc.collect()  # the collector's view, so a full collection landing inside an
            gc.freeze()  # env step scans only what the run has made since
        try:
            return evaluate(cfg, plans)
        finally:
            for lock in locks:
                lock.release()
    except ConfigError as exc:
        print(f"evals.run: bad config: {exc}", file=sys.stderr)
        return EXIT_CONFIG


if __name__ == "__main__":
    sys.exit(main(freeze_heap=True))
