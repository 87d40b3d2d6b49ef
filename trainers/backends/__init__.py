"""RL backends: one entry point (`python -m trainers.grpo backend=...`), several engines.

Contract
--------
A backend turns a `GRPOJob` into a trained checkpoint. The job holds only
framework-free things: the env's name and constructor kwargs, the train scenarios, the
reward spec (component → weight), the sampling/budget settings of the token rollouts,
the model folder to start from, the run folder and the trainer settings. Rollouts always
go scenario → `envs.rollout.rollout` (the one loop) → `Trajectory` with its reward
components (`trainers.token_rollout`), so every backend trains on the same episodes,
rewards and masks.

* `check(job)` raises `ConfigError` naming the key and the allowed values before any
  work (impossible batch sizes, ...).
* `train(job) -> GRPOResult` runs to `trainer.max_steps`, resuming from the last
  checkpoint in the run folder when `job.resume`; it writes `metrics.jsonl` (one JSON
  object per logged step), the tracker's logs and `checkpoints/`, and saves the final
  model and tokenizer (loadable with `from_pretrained`) in `final/`.

`BACKENDS` maps names to `"module:Class"`; a backend is imported only when chosen, so
`trl` (one machine, CPU or GPU) and, later, `verl` (Ray, many GPUs) can live side by side.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from configs import ConfigError
from scenarios.schema import Scenario

BACKENDS: dict[str, str] = {"trl": "trainers.backends.trl:TRLBackend"}


@dataclass
class GRPOJob:
    env_name: str
    env_kwargs: dict[str, Any]
    scenarios: list[Scenario]
    reward_weights: dict[str, float]  # every component, in the env rubric's order
    model_path: Path
    out_dir: Path
    trainer: dict[str, Any]  # the composed `trainer` config group
    seed: int = 0
    resume: bool = False


@dataclass
class GRPOResult:
    final_dir: Path
    metrics_path: Path
    steps: int
    wall_s: float
    step_shares: dict[str, float] = field(default_factory=dict)  # env/generate/train shares
    resumed_from: str | None = None


class Backend(Protocol):
    name: str

    def check(self, job: GRPOJob) -> None: ...

    def train(self, job: GRPOJob) -> GRPOResult: ...


def get_backend(name: str) -> Backend:
    """The backend registered as `name`; a `ConfigError` lists the allowed names."""
    if name not in BACKENDS:
        raise ConfigError(f"backend: unknown backend '{name}'; allowed: {', '.join(BACKENDS)}")
    module_name, _, attr = BACKENDS[name].partition(":")
    return getattr(importlib.import_module(module_name), attr)()
