"""The one rollout loop: scenario → episode → trajectory.

`run_episode(env, policy, ...)` plays one episode; `rollout(make_env, policy, jobs)`
plays many, batching one policy call across all live episodes and refilling finished
slots, and yields each `Trajectory` as it finishes. Evals, the TRL backend and the verl
agent loop all go through here, so episodes are played the same way everywhere.

A policy that raises is an infrastructure failure, not a behaviour: the episode ends
with `Termination.POLICY_ERROR` and the error in `info["policy_error"]`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from core.policy import Policy, PolicyRequest, PolicyResponse
from core.records import Termination, TokenUsage, Trajectory
from envs.base import ToolEnv
from scenarios.schema import Scenario


@dataclass(frozen=True, slots=True)
class EpisodeJob:
    scenario: Scenario
    seed: int
    epoch: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class _Slot:
    env: ToolEnv
    job: EpisodeJob | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)


def run_episode(
    env: ToolEnv, policy: Policy, *, scenario: Scenario, seed: int, epoch: int = 0
) -> Trajectory:
    return next(rollout(lambda: env, policy, [EpisodeJob(scenario, seed, epoch)], batch_size=1))


def rollout(
    make_env: Callable[[], ToolEnv],
    policy: Policy,
    jobs: Iterable[EpisodeJob],
    *,
    batch_size: int = 32,
) -> Iterator[Trajectory]:
    """Play every job; yield trajectories as episodes finish."""
    pending = iter(jobs)
    slots = [_Slot(make_env()) for _ in range(max(1, batch_size))]
    live = [slot for slot in slots if _start(slot, pending, policy)]
    while live:
        requests = [_request(slot) for slot in live]
        try:
            responses = policy.act(requests)
            if len(responses) != len(requests):
                raise RuntimeError(
                    f"policy returned {len(responses)} responses for {len(requests)} requests"
                )
        except Exception as exc:
            for slot in live:
                yield _abort(slot, exc)
            live = [slot for slot in live if _start(slot, pending, policy)]
            continue
        next_live = []
        for slot, response in zip(live, responses, strict=True):
            done = _advance(slot, response)
            if done is not None:
                yield done
                if not _start(slot, pending, policy):
                    continue
            next_live.append(slot)
        live = next_live


def _start(slot: _Slot, pending: Iterator[EpisodeJob], policy: Policy) -> bool:
    job = next(pending, None)
    slot.job = job
    if job is None:
        return False
    slot.messages, _ = slot.env.reset(seed=job.seed, options={"scenario": job.scenario})
    trajectory = slot.env.trajectory
    assert trajectory is not None
    trajectory.epoch = job.epoch
    trajectory.policy = getattr(policy, "name", type(policy).__name__)
    return True


def _request(slot: _Slot) -> PolicyRequest:
    trajectory = slot.env.trajectory
    assert trajectory is not None and slot.job is not None
    return PolicyRequest(
        messages=slot.messages,
        tools=trajectory.tools,
        env_id=trajectory.env_id,
        scenario_id=trajectory.scenario_id,
        seed=slot.job.seed,
        turn=trajectory.turns,
        metadata=slot.job.metadata,
    )


def _advance(slot: _Slot, response: PolicyResponse) -> Trajectory | None:
    trajectory = slot.env.trajectory
    assert trajectory is not None
    _record_usage(trajectory, response)
    observation, _, terminated, truncated, _ = slot.env.step(response.action)
    slot.messages = observation
    return trajectory if terminated or truncated else None


def _record_usage(trajectory: Trajectory, response: PolicyResponse) -> None:
    if response.latency_ms is not None:
        trajectory.latency_ms.append(round(response.latency_ms, 3))
    if response.prompt_tokens is not None or response.completion_tokens is not None:
        usage = trajectory.tokens or TokenUsage()
        usage.prompt += response.prompt_tokens or 0
        usage.completion += response.completion_tokens or 0
        trajectory.tokens = usage


def _abort(slot: _Slot, exc: Exception) -> Trajectory:
    trajectory = slot.env.trajectory
    assert trajectory is not None
    trajectory.termination = Termination.POLICY_ERROR
    trajectory.info["policy_error"] = f"{type(exc).__name__}: {exc}"
    return trajectory
