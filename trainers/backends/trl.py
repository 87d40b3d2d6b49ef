"""backend=trl: multi-turn GRPO with TRL's `GRPOTrainer` and a custom `rollout_func`.

Contract
--------
* **Why `rollout_func`** (not `environment_factory`): our env's `step` takes the model's
  raw text and runs our own parser, validation, error observations and penalties, and a
  simulated customer answers between turns; `environment_factory` can only insert tool
  messages, parses calls itself and stops at the first turn without a call (see
  `.notes/trl_multiturn.md`). `rollout_func` lets the project's one loop play the episodes.
* **Rollouts** (`EpisodeRollouts`): TRL hands over the prompts already repeated
  `num_generations` times; each prompt names its scenario and seed (`trainers.data`), so
  all G episodes of a group share one scenario and one reset seed and differ only in
  the sampled tokens (their `epoch` is 0..G-1). Episodes are played by
  `trainers.token_rollout.play` (one batched `generate` per turn over every live episode);
  it returns `prompt_ids`, `completion_ids`, `env_mask` (0 on env/user/tool tokens: never
  trained on) and `logprobs=None` (TRL recomputes them), plus one key per reward
  component (named exactly like the component) and the tool-call counts.
* **Rewards**: the env's own total (`Trajectory.reward`, weighted once by its reward
  spec) is the one reward TRL trains on (`rewards/total/mean`, weight 1); every component
  is a further TRL reward function named like it with weight 0, so TRL logs each as
  `rewards/<component>/mean` without weighting anything again. The total's function also
  logs `tools/call_frequency` (calls per episode),
  `tools/failure_frequency` (share of calls that did not run correctly),
  `tools/error_frequency` (share rejected as invalid) and the rollout's timings.
* **Run folder**: `checkpoints/` (HF `checkpoint-N`), `metrics.jsonl` (every logged step,
  plus `timing/step_s`), `tb/` (TensorBoard), `final/` (model + tokenizer). A tqdm bar
  shows the live mean reward. `resume` continues from the newest `checkpoint-N`.

torch, transformers, datasets and trl are imported inside the functions that use them.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from configs import ConfigError
from core.records import Execution
from core.sampling import Sampling
from envs.base import ToolEnv
from envs.rollout import EpisodeJob
from trainers.backends import GRPOJob, GRPOResult
from trainers.data import grpo_rows, parse_job
from trainers.token_rollout import Episode

CHECKPOINTS, METRICS, TRACKER, FINAL = "checkpoints", "metrics.jsonl", "tb", "final"
TOTAL = "total"  # the env's weighted total: the only reward TRL trains on


def sampling_of(trainer: dict[str, Any], seed: int) -> Sampling:
    """The rollouts' `Sampling`: the trainer section's keys of the same names."""
    keys = (key for key in Sampling.model_fields if key != "seed")
    return Sampling(**{key: trainer[key] for key in keys}, seed=seed)


class EpisodeRollouts:
    """TRL's `rollout_func`: prompts (×G) → episodes through the one loop → token records."""

    def __init__(self, job: GRPOJob) -> None:
        self.job = job
        self.by_id = {s.id: s for s in job.scenarios}
        self.components = list(job.reward_weights)
        self.sampling = sampling_of(job.trainer, job.seed)
        self.pool: list[ToolEnv] = []
        self.cursor = 0
        self.totals: dict[str, float] = defaultdict(float)

    def make_env(self) -> ToolEnv:
        """Envs are built once and reused (`reset` rebuilds everything an episode uses)."""
        import envs

        if self.cursor == len(self.pool):
            kwargs = {**self.job.env_kwargs, "scenarios": self.job.scenarios}
            self.pool.append(envs.make_raw(self.job.env_name, **kwargs))
        self.cursor += 1
        return self.pool[self.cursor - 1]

    def jobs(self, prompts: list[list[dict[str, Any]]]) -> list[EpisodeJob]:
        seen: Counter[tuple[str, int]] = Counter()
        jobs = []
        for i, prompt in enumerate(prompts):
            scenario_id, seed = parse_job(prompt)
            epoch = seen[(scenario_id, seed)]
            seen[(scenario_id, seed)] += 1
            jobs.append(EpisodeJob(self.by_id[scenario_id], seed, epoch, {"episode": i}))
        return jobs

    def __call__(self, prompts: list[list[dict[str, Any]]], trainer: Any) -> dict[str, Any]:
        from trl.models.utils import unwrap_model_for_generation

        from trainers.token_rollout import TokenPolicy, play

        step_seed = self.sampling.seed * 1_000_003 + trainer.state.global_step
        sampling = self.sampling.model_copy(update={"seed": step_seed})
        self.cursor = 0
        with unwrap_model_for_generation(trainer.model_wrapped, trainer.accelerator) as model:
            policy = TokenPolicy(model, trainer.processing_class, sampling, name="grpo")
            episodes, timings = play(self.make_env, policy, self.jobs(prompts))
        for key, value in timings.items():
            self.totals[key] += value
        return self.pack(episodes, timings)

    def pack(self, episodes: list[Episode], timings: dict[str, float]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "prompt_ids": [e.tokens.prompt_ids for e in episodes],
            "completion_ids": [e.tokens.completion_ids for e in episodes],
            # an episode lost to infrastructure (after its retry) teaches nothing: no loss on it
            "env_mask": [
                [0] * len(e.tokens.env_mask)
                if e.trajectory.lost_to_infrastructure
                else e.tokens.env_mask
                for e in episodes
            ],
            "logprobs": None,
            "tool_calls": [len(e.trajectory.tool_calls) for e in episodes],
            "tool_failures": [_count(e, failed=True) for e in episodes],
            "tool_errors": [_count(e, failed=False) for e in episodes],
            "rollout_timing": dict(timings),  # not a list: TRL broadcasts it to every row
        }
        out[TOTAL] = [
            None if e.trajectory.lost_to_infrastructure else e.trajectory.reward for e in episodes
        ]
        for name in self.components:
            out[name] = [e.trajectory.reward_components.get(name) for e in episodes]
        return out


def _count(episode: Episode, *, failed: bool) -> int:
    calls = episode.trajectory.tool_calls
    if failed:
        return sum(c.execution != Execution.OK for c in calls)
    return sum(c.execution == Execution.ERROR for c in calls)


def component_reward(name: str, *, log_tools: bool = False) -> Any:
    """A TRL reward function returning the trajectories' `name` component."""

    def reward(completions: list[Any], **kwargs: Any) -> list[float | None]:
        if log_tools:
            _log_rollout(kwargs)
        return list(kwargs[name])

    reward.__name__ = reward.__qualname__ = name
    return reward


def _log_rollout(kwargs: dict[str, Any]) -> None:
    log = kwargs["log_metric"]
    calls, failures = sum(kwargs["tool_calls"]), sum(kwargs["tool_failures"])
    log("tools/call_frequency", calls / max(len(kwargs["tool_calls"]), 1))
    log("tools/failure_frequency", failures / calls if calls else 0.0)
    log("tools/error_frequency", sum(kwargs["tool_errors"]) / calls if calls else 0.0)
    timing = kwargs["rollout_timing"]
    timing = timing[0] if isinstance(timing, list) else timing
    for key, value in timing.items():
        log(f"timing/rollout_{key}_s", float(value))


def reward_functions(components: list[str]) -> list[Any]:
    """The env's total (trained on), then each component (logged only)."""
    return [component_reward(TOTAL, log_tools=True), *map(component_reward, components)]


def reward_weights(components: list[str]) -> list[float]:
    return [1.0] + [0.0] * len(components)


def last_checkpoint(folder: Path) -> Path | None:
    found = [p for p in folder.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()]
    return max(found, key=lambda p: int(p.name.split("-")[-1]), default=None)


def grpo_args(job: GRPOJob) -> Any:
    """The `GRPOConfig` of a job (CPU-friendly defaults come from configs/grpo.yaml)."""
    import torch
    from trl import GRPOConfig

    t = job.trainer
    cuda = torch.cuda.is_available()
    return GRPOConfig(
        output_dir=str(job.out_dir / CHECKPOINTS),
        use_cpu=not cuda,
        bf16=bool(cuda and torch.cuda.is_bf16_supported()),
        gradient_checkpointing=bool(t.get("gradient_checkpointing", False)),
        per_device_train_batch_size=int(t["batch_size"]),
        num_generations=int(t["num_generations"]),
        max_completion_length=int(t["max_episode_tokens"]),
        max_steps=int(t["max_steps"]),
        learning_rate=float(t["learning_rate"]),
        lr_scheduler_type=str(t["lr_scheduler"]),
        warmup_steps=int(t["warmup_steps"]),
        max_grad_norm=float(t["max_grad_norm"]),
        beta=float(t["beta"]),
        loss_type=str(t["loss_type"]),
        scale_rewards=str(t["scale_rewards"]),
        mask_truncated_completions=bool(t["mask_truncated_completions"]),
        temperature=float(t["temperature"]) or 1.0,
        top_p=float(t["top_p"]),
        reward_weights=reward_weights(list(job.reward_weights)),
        logging_steps=1,
        save_strategy="steps",
        save_steps=int(t["save_steps"]),
        save_total_limit=int(t["save_total_limit"]),
        report_to="none",  # the TensorBoard callback is added with the run's own folder
        seed=job.seed,
        disable_tqdm=True,
        dataloader_num_workers=0,
        remove_unused_columns=False,
    )


class TRLBackend:
    name = "trl"

    def check(self, job: GRPOJob) -> None:
        t = job.trainer
        batch, gens = int(t["batch_size"]), int(t["num_generations"])
        if gens < 2:
            raise ConfigError(f"trainer.num_generations: {gens} < 2; GRPO compares ≥ 2 samples")
        if batch % gens:
            allowed = [b for b in range(gens, 4 * gens + 1, gens)]
            raise ConfigError(
                f"trainer.batch_size: {batch} is not a multiple of trainer.num_generations="
                f"{gens}; allowed: multiples of {gens}, e.g. {allowed}"
            )
        if batch // gens > len(job.scenarios):
            raise ConfigError(
                f"trainer.batch_size: {batch // gens} scenarios a step, but the train split "
                f"has {len(job.scenarios)}"
            )
        if int(t["max_steps"]) < 1:
            raise ConfigError(f"trainer.max_steps: {t['max_steps']} < 1")
        if int(t["max_turn_tokens"]) > int(t["max_episode_tokens"]):
            raise ConfigError("trainer.max_turn_tokens: larger than trainer.max_episode_tokens")

    def train(self, job: GRPOJob) -> GRPOResult:
        os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
        from datasets import Dataset
        from transformers import AutoTokenizer
        from trl import GRPOTrainer

        import envs

        env = envs.make_raw(job.env_name, **{**job.env_kwargs, "scenarios": job.scenarios})
        dataset = Dataset.from_list(grpo_rows(env, job.scenarios, job.seed))
        tokenizer = AutoTokenizer.from_pretrained(job.model_path)
        tokenizer.padding_side = "left"
        rollouts = EpisodeRollouts(job)
        args = grpo_args(job)
        resume = last_checkpoint(job.out_dir / CHECKPOINTS) if job.resume else None
        callbacks = run_callbacks(
            job.out_dir, int(job.trainer["max_steps"]), "reward", fresh=resume is None
        )
        log = callbacks[-1]
        trainer = quiet(
            GRPOTrainer(
                model=str(job.model_path),
                reward_funcs=reward_functions(list(job.reward_weights)),
                args=args,
                train_dataset=dataset,
                processing_class=tokenizer,
                rollout_func=rollouts,
                callbacks=callbacks,
            )
        )
        start = time.perf_counter()
        trainer.train(resume_from_checkpoint=str(resume) if resume else None)
        wall = time.perf_counter() - start
        final = job.out_dir / FINAL
        trainer.save_model(str(final))
        tokenizer.save_pretrained(final)
        shares = step_shares(rollouts.totals, log.step_seconds)
        log.write({"event": "end", "wall_s": round(wall, 3), "step_shares": shares})
        return GRPOResult(
            final_dir=final,
            metrics_path=job.out_dir / METRICS,
            steps=trainer.state.global_step,
            wall_s=wall,
            step_shares=shares,
            resumed_from=str(resume) if resume else None,
        )


def step_shares(rollout: dict[str, float], step_seconds: float) -> dict[str, float]:
    """Where a GRPO step's time went: env code, generation, templating, the rest."""
    if step_seconds <= 0 or not rollout:
        return {}
    env, gen, tok = rollout["env"], rollout["generate"], rollout["tokenize"]
    rest = max(0.0, step_seconds - rollout["total"])
    shares = {"env": env, "generate": gen, "template_tokenize": tok, "train_and_other": rest}
    return {k: round(v / step_seconds, 4) for k, v in shares.items()} | {
        "step_seconds": round(step_seconds, 3)
    }


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def run_callbacks(out_dir: Path, total_steps: int, key: str, *, fresh: bool) -> list[Any]:
    """TensorBoard (`<out>/tb`) and `RunLog`: `metrics.jsonl` + a tqdm bar showing `key`."""
    from torch.utils.tensorboard import SummaryWriter
    from tqdm.auto import tqdm
    from transformers import TrainerCallback
    from transformers.integrations import TensorBoardCallback

    class RunLog(TrainerCallback):
        def __init__(self) -> None:
            self.path = out_dir / METRICS
            if fresh:
                self.path.unlink(missing_ok=True)
            self.bar: Any = None
            self.started = 0.0
            self.last_step_s: float | None = None
            self.step_seconds = 0.0

        def write(self, record: dict[str, Any]) -> None:
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps({k: _clean(v) for k, v in record.items()}) + "\n")

        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.bar = tqdm(total=total_steps, initial=state.global_step, desc=key, unit="step")

        def on_step_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.started = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.last_step_s = time.perf_counter() - self.started
            self.step_seconds += self.last_step_s
            if self.bar is not None:
                self.bar.update(1)

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            logs = dict(logs or {})
            record = {"step": state.global_step, **logs}
            if self.last_step_s is not None and "train_runtime" not in logs:
                record["timing/step_s"] = round(self.last_step_s, 4)
            self.write(record)
            if self.bar is not None and key in logs:
                self.bar.set_postfix({key: f"{logs[key]:.3f}"})

        def on_train_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if self.bar is not None:
                self.bar.close()

    (out_dir / TRACKER).mkdir(parents=True, exist_ok=True)
    tensorboard = TensorBoardCallback(tb_writer=SummaryWriter(log_dir=str(out_dir / TRACKER)))
    return [tensorboard, RunLog()]


def quiet(trainer: Any) -> Any:
    """Console output is the run's own progress bar: no per-log prints, no save bars."""
    from transformers import PrinterCallback
    from transformers.utils import logging as hf_logging

    trainer.remove_callback(PrinterCallback)
    hf_logging.disable_progress_bar()
    return trainer


def read_metrics(path: Path) -> list[dict[str, Any]]:
    with Path(path).open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
