"""`python -m trainers.grpo env=refund_agent`: multi-turn GRPO against the real env.

The recipe, top to bottom: config → env and train scenarios → starting model (the SFT
checkpoint, built first if absent) → backend (`trl`: rollouts through the one loop,
one reward function per component) → checkpoints, metrics, manifest → evaluation of the
starting and the trained model on the frozen eval split, side by side.

Contract
--------
* **Config**: `configs/grpo.yaml` + Hydra overrides (`model=…`, `trainer.max_steps=…`,
  `trainer.num_generations=…`, `backend=trl`), validated into `GRPORunConfig`. A bad
  config (unknown env or backend, missing model folder, a batch size that is not a
  multiple of `num_generations`, …) stops before any work: exit code 2 and a message that
  names the key and the allowed values.
* **Start**: `model=sft` (default) uses `<sft_out>/final` (`runs/sft/<env>-tiny`), running
  `trainers.sft` with its defaults first, and saying so, when it is absent.
* **Run folder** (`runs/grpo/<env>[-<role>]-<model tag>`): `manifest.json` (`trainers.manifest`),
  `metrics.jsonl`, `tb/`, `checkpoints/`, `final/`, `eval/{start,trained}/` (the eval
  harness's folders) and `summary.json` (eval tables, wall times, the step's time shares).
  `resume=true` continues from the newest checkpoint (the config must match the folder's
  manifest except `trainer.max_steps`, `resume` and `eval`).
* **backend=verl** hands the whole command line to `trainers.backends.verl` (its own
  config, `configs/verl.yaml`, any verl key passed through, Ray across GPUs and nodes).
* **Eval**: `evals.run`'s harness with `policy=hf`, greedy by default, on every
  `eval.every`-th scenario of the frozen eval split (1 = all of it).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from configs import ConfigError
from core.files import FolderError
from core.sampling import Sampling
from trainers.sft import (
    RoleSettings,
    check_env,
    check_model,
    check_train_extra,
    load_config,
    model_tag,
    setup_process,
)

EXIT_OK, EXIT_CONFIG = 0, 2
AGGREGATE = "aggregate"


class GRPOTrainerSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_steps: int
    batch_size: int
    num_generations: int
    learning_rate: float = Field(gt=0)
    lr_scheduler: str = "constant"
    warmup_steps: int = Field(default=0, ge=0)
    max_grad_norm: float = Field(default=1.0, gt=0)
    beta: float = Field(default=0.0, ge=0)
    loss_type: str = "dapo"
    scale_rewards: str = "group"
    mask_truncated_completions: bool = True
    temperature: float = Field(default=1.0, gt=0)
    top_p: float = Field(default=0.8, gt=0, le=1)
    top_k: int = Field(default=0, ge=0)
    max_turn_tokens: int = Field(default=128, ge=1)
    max_episode_tokens: int = Field(default=768, ge=1)
    save_steps: int = Field(default=10, ge=1)
    save_total_limit: int = Field(default=2, ge=1)
    gradient_checkpointing: bool = False


class EvalSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    every: int = Field(default=3, ge=1)
    batch_size: int = Field(default=48, ge=1)
    temperature: float = Field(default=0.0, ge=0)
    max_turn_tokens: int = Field(default=128, ge=1)


class GRPORunConfig(RoleSettings):
    env: str
    backend: str = "trl"
    model: str = "sft"
    sft_out: str | None = None
    out: str | None = None
    seed: int = Field(default=0, ge=0)
    resume: bool = False
    cpu_threads: int | None = Field(default=1, ge=1)
    max_turns: int | None = Field(default=None, ge=1)
    trainer: GRPOTrainerSpec
    eval: EvalSpec = Field(default_factory=EvalSpec)

    @property
    def env_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"max_turns": self.max_turns} if self.max_turns else {}
        return kwargs | self.role_kwargs()


# ---- steps of the recipe --------------------------------------------------------------------
def start_model(cfg: GRPORunConfig) -> tuple[str, str, str | None]:
    """(model to load, its description, the SFT run it comes from); builds SFT if absent."""
    from trainers import sft

    if cfg.model == "sft":
        folder = sft.sft_folder(cfg, cfg.env, cfg.sft_out)
        final = folder / "final"
        if not (final / "config.json").is_file():
            print(f"[grpo] no SFT checkpoint at {final}: building it first (trainers.sft)")
            overrides = [f"env={cfg.env}", f"out={folder}", f"seed={cfg.seed}"]
            overrides += [f"role={cfg.role}"] if cfg.role else []
            overrides += [f"+partners.{r}={p}" for r, p in (cfg.partners or {}).items()]
            if cfg.cpu_threads is not None:
                overrides.append(f"cpu_threads={cfg.cpu_threads}")
            sft.run_sft(sft.load_config("sft", overrides, sft.SFTRunConfig))
        return str(final), f"sft:{final}", str(folder)
    model, base = sft.resolve_model(cfg.model, cfg.env, sft.default_tiny(cfg.env), cfg.seed)
    return model, base, None


def make_job(cfg: GRPORunConfig, model: str, out: Path) -> Any:
    import envs
    from trainers.backends import GRPOJob

    env = envs.make_raw(cfg.env, split="train", **cfg.env_kwargs)
    return GRPOJob(
        env_name=cfg.env,
        env_kwargs=cfg.env_kwargs,
        scenarios=list(env.scenarios),
        reward_weights=dict(env.rubric.weights),
        model_path=Path(model),
        out_dir=out,
        trainer=cfg.trainer.model_dump(),
        seed=cfg.seed,
        resume=cfg.resume,
    ), env


def validate(cfg: GRPORunConfig) -> Any:
    """Everything checkable before any work; returns the backend."""
    from trainers.backends import get_backend

    check_train_extra()
    check_env(cfg.env, cfg.env_kwargs)
    if "self" in (cfg.partners or {}).values():  # the token rollout records learner turns only
        raise ConfigError("partners: 'self' is not supported by GRPO; use hf:<model folder>")
    backend = get_backend(cfg.backend)
    check_model(cfg.model, extra=("sft",))
    job, _ = make_job(cfg, "unused", Path("unused"))
    backend.check(job)
    if cfg.trainer.max_turn_tokens > cfg.trainer.max_episode_tokens:
        raise ConfigError("trainer.max_turn_tokens: larger than trainer.max_episode_tokens")
    return backend


def write_manifest(cfg: GRPORunConfig, job: Any, env: Any, base: str, init: str | None) -> Any:
    from trainers import manifest as tm
    from trainers.backends.trl import sampling_of

    sampling = sampling_of(job.trainer, cfg.seed)
    folder = job.model_path if job.model_path.is_dir() else None
    manifest = tm.build_manifest(
        kind="grpo",
        backend=cfg.backend,
        env=env,
        scenarios=job.scenarios,
        model=base,
        folder=folder,
        sampling=sampling.model_dump(),
        config=cfg.model_dump(mode="json"),
        init_from=init,
    )
    old = tm.read_manifest(job.out_dir) if cfg.resume else None
    if old is not None:
        tm.check_resumable(old, manifest)
    tm.write_manifest(job.out_dir, manifest)
    return manifest


# ---- evaluation on the frozen eval split ------------------------------------------------------
def evaluate_model(
    env: str,
    model: str,
    out: Path,
    spec: EvalSpec,
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
) -> Any:
    """Play the eval harness's `policy=hf` on every `spec.every`-th eval scenario
    (`env_kwargs`, e.g. a multi-agent env's `role`, go to every env the harness builds)."""
    from evals import run as er

    cfg = er.EvalConfig(
        env=[env],
        policy="hf",
        model=model,
        split="eval",
        seed=seed,
        batch_size=spec.batch_size,
        out=str(out),
        sampling=Sampling(temperature=spec.temperature, max_turn_tokens=spec.max_turn_tokens),
    )
    plans = er.plan_jobs(cfg)
    for plan in plans:
        plan.jobs = plan.jobs[:: spec.every]
        plan.kwargs.update(env_kwargs or {})
    manifest = er.build_manifest(cfg, plans, None)
    found = er.prepare_folder(out, manifest, resume=False)
    policies = er.make_policies(cfg, plans)
    return er.finalize(out, er.play(plans, policies, cfg, found, out), plans, cfg)


def _cell(table: Any, slice_name: str, key: str) -> str:
    est = table.slices.get(slice_name, {}).get(key)
    if est is None:
        return "-"
    return f"{est.point:+.2f} [{est.lower_ci:+.2f},{est.upper_ci:+.2f}]"


def side_by_side(tables: dict[str, Any], metrics: Sequence[str]) -> str:
    """Per-slice table: n, then each metric for each model (point [95% CI])."""
    names = list(tables)
    slices = list(next(iter(tables.values())).slices)
    head = f"{'slice':<24} {'n':>4}  " + "  ".join(
        f"{m.replace('reward.', '') + ' ' + n:<21}" for m in metrics for n in names
    )
    lines = [head, "-" * len(head)]
    for name in slices:
        n = tables[names[0]].slices[name]["success@1"].n
        cells = [f"{_cell(tables[k], name, m):<21}" for m in metrics for k in names]
        lines.append(f"{name:<24} {n:>4}  " + "  ".join(cells))
    return "\n".join(lines)


PAIRED_METRICS = ("success@1", "reward")


def paired_change(candidate: Path, baseline: Path) -> dict[str, Any]:
    """Candidate − baseline over the same eval episodes (aggregate slice), with the eval
    harness's paired tests: exact McNemar for success@1, Wilcoxon for reward. Pairing
    makes this far more sensitive than comparing two confidence intervals."""
    from core.records import read_jsonl
    from evals.deltas import compute_deltas
    from evals.run import EPISODES

    deltas = compute_deltas(
        read_jsonl(candidate / EPISODES),
        read_jsonl(baseline / EPISODES),
        only=[(AGGREGATE, key) for key in PAIRED_METRICS],
    )
    return {key: deltas.get(AGGREGATE, key).model_dump() for key in PAIRED_METRICS}


def format_change(change: dict[str, Any], label: str) -> str:
    cells = [
        f"Δ{key} {d['point']:+.3f} [{d['lower_ci']:+.3f}, {d['upper_ci']:+.3f}] "
        f"({d['test']} p={d['p_value']:.2g}, {d['n_pairs']} pairs)"
        for key, d in change.items()
    ]
    return f"{label}: " + "; ".join(cells)


def table_summary(table: Any, keys: Sequence[str]) -> dict[str, Any]:
    return {
        name: {k: metrics[k].model_dump() for k in keys if k in metrics}
        for name, metrics in table.slices.items()
    }


# ---- entry point --------------------------------------------------------------------------
def run_dir(cfg: GRPORunConfig) -> Path:
    return Path(cfg.out or f"runs/grpo/{cfg.env}{cfg.role_tag}-{model_tag(cfg.model)}")


def run_grpo(cfg: GRPORunConfig, backend: Any) -> dict[str, Any]:
    """Train, then evaluate start vs trained; returns (and writes) the run summary.

    One writer per run folder: a second run into the same `out` is refused (`FolderInUse`,
    naming the holder) while the first is alive; a killed run's lock is freed by the kernel.
    """
    from core.files import RunLock

    out = run_dir(cfg)
    with RunLock(out):
        return _train_and_evaluate(cfg, backend, out)


def _train_and_evaluate(cfg: GRPORunConfig, backend: Any, out: Path) -> dict[str, Any]:
    import envs
    from trainers import manifest as tm

    t0 = time.perf_counter()
    model, base, init = start_model(cfg)
    sft_wall = time.perf_counter() - t0
    job, env = make_job(cfg, model, out)
    manifest = write_manifest(cfg, job, env, base, init)
    print(f"[grpo] {cfg.backend}: {len(job.scenarios)} train scenarios, start model {model}")
    result = backend.train(job)
    manifest.result = {
        "final_sha": tm.model_identity(str(result.final_dir), result.final_dir)[0],
        "steps": result.steps,
        "wall_s": round(result.wall_s, 3),
        "resumed_from": result.resumed_from,
        "step_shares": result.step_shares,
    }
    tm.write_manifest(out, manifest)
    summary: dict[str, Any] = {
        "start_model": model,
        "final_model": str(result.final_dir),
        "wall_s": {"start_model": round(sft_wall, 1), "grpo": round(result.wall_s, 1)},
        "step_shares": result.step_shares,
    }
    if cfg.eval.enabled:
        tables = {}
        for label, path in (("start", model), ("trained", str(result.final_dir))):
            t = time.perf_counter()
            folder = out / "eval" / label
            tables[label] = evaluate_model(
                cfg.env, path, folder, cfg.eval, cfg.seed, cfg.env_kwargs
            )
            summary["wall_s"][f"eval_{label}"] = round(time.perf_counter() - t, 1)
        headline = envs.card(cfg.env).headline_metrics  # what this env's authors compare
        summary["eval"] = {k: table_summary(v, headline) for k, v in tables.items()}
        change = paired_change(out / "eval" / "trained", out / "eval" / "start")
        summary["trained_vs_start"] = change
        print(side_by_side(tables, headline))
        print(format_change(summary["trained_vs_start"], "trained vs start (paired)"))
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "backend=verl" in argv:  # Ray + GPUs, its own config and venv: configs/verl.yaml
        from trainers.backends import verl

        return verl.main(argv)
    try:
        cfg = load_config("grpo", argv, GRPORunConfig)
        backend = validate(cfg)
    except ConfigError as exc:
        print(f"trainers.grpo: bad config: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    setup_process(cfg.cpu_threads)
    try:
        summary = run_grpo(cfg, backend)
    except FolderError as exc:  # another live run holds the folder, or it cannot be written
        print(f"trainers.grpo: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    shares = summary.get("step_shares") or {}
    if shares:
        print(
            "[grpo] a step: "
            + ", ".join(f"{k} {v:.1%}" for k, v in shares.items() if k != "step_seconds")
            + f" of {shares['step_seconds']:.1f}s"
        )
    print(f"[grpo] done: {summary['final_model']}  wall {summary['wall_s']}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
