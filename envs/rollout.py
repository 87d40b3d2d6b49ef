"""The one rollout loop: scenario → episode → trajectory.

`run_episode(env, policy, ...)` plays one episode; `rollout(make_env, policy, jobs)`
plays many, batching one policy call across all live episodes and refilling finished
slots, and yields each `Trajectory` as it finishes. Evals, the trainers' demonstrations
and the audit go through here; envs are driven only through the episode protocol
(`core.episode`: `begin`, `advance`, `abort`), so anything that speaks it can be played.

A policy that raises, or answers a batch with the wrong number of responses, is an
infrastructure failure, not a behaviour: those episodes end with
`Termination.POLICY_ERROR` and the error in `info["policy_error"]`; the others go on. A
batch call that fails is retried one request at a time, so one bad episode cannot take
its batch-mates down with it. An episode lost to infrastructure (the policy's server, or
our own side: `Termination.INFRA_ERROR`) is played again from the start, same seed, up to
`infra_retries` times; the attempts are recorded in `info["attempts"]`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from core.episode import EpisodeEnv
from core.policy import Policy, PolicyRequest, PolicyResponse
from core.records import Termination, TokenUsage, Trajectory
from scenarios.schema import Scenario


@dataclass(frozen=True, slots=True)
class EpisodeJob:
    scenario: Scenario
    seed: int
    epoch: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class _Slot:
    env: EpisodeEnv
    job: EpisodeJob | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)
    tools: list[dict[str, Any]] = field(default_factory=list)
    turn: int = 0
    usage: TokenUsage | None = None
    latency_ms: list[float] = field(default_factory=list)
    attempt: int = 0


def run_episode(
    env: EpisodeEnv, policy: Policy, *, scenario: Scenario, seed: int, epoch: int = 0
) -> Trajectory:
    return next(rollout(lambda: env, policy, [EpisodeJob(scenario, seed, epoch)], batch_size=1))


def rollout(
    make_env: Callable[[], EpisodeEnv],
    policy: Policy,
    jobs: Iterable[EpisodeJob],
    *,
    batch_size: int = 32,
    infra_retries: int = 0,
) -> Iterator[Trajectory]:
    """Play every job; yield trajectories as episodes finish."""
    pending = iter(jobs)
    name = getattr(policy, "name", type(policy).__name__)
    slots = [_Slot(_bound(make_env(), policy)) for _ in range(max(1, batch_size))]
    live = [slot for slot in slots if _start(slot, pending, name)]
    while live:
        answered = _act(policy, live)
        next_live = []
        for slot, response in zip(live, answered, strict=True):
            done = _abort(slot, response) if isinstance(response, str) else _advance(slot, response)
            if done is not None and done.lost_to_infrastructure and slot.attempt < infra_retries:
                assert slot.job is not None
                _begin(slot, slot.job, name, slot.attempt + 1)  # same job, same seed, again
                next_live.append(slot)
                continue
            if done is not None:
                if slot.attempt:
                    done.info["attempts"] = slot.attempt + 1
                yield done
                if not _start(slot, pending, name):
                    continue
            next_live.append(slot)
        live = next_live


def _act(policy: Policy, live: list[_Slot]) -> list[PolicyResponse | str]:
    """One batched policy call; on failure, one call per request (errors as strings)."""
    try:
        return _checked(policy, [_request(slot) for slot in live])
    except Exception as exc:
        if len(live) == 1:
            return [f"{type(exc).__name__}: {exc}"]
    answers: list[PolicyResponse | str] = []
    for slot in live:
        try:
            answers.extend(_checked(policy, [_request(slot)]))
        except Exception as exc:
            answers.append(f"{type(exc).__name__}: {exc}")
    return answers


def _checked(policy: Policy, requests: list[PolicyRequest]) -> list[PolicyResponse | str]:
    responses = policy.act(requests)
    if len(responses) != len(requests):
        raise RuntimeError(
            f"policy returned {len(responses)} responses for {len(requests)} requests"
        )
    return list(responses)


def _bound(env: EpisodeEnv, policy: Policy) -> EpisodeEnv:
    """A multi-agent env's self-play partners (`partners={role: "self"}`) play as `policy`."""
    bind = getattr(env, "bind_policy", None)
    if bind is not None:
        bind(policy)
    return env


def _start(slot: _Slot, pending: Iterator[EpisodeJob], policy_name: str) -> bool:
    job = next(pending, None)
    slot.job = job
    if job is None:
        return False
    _begin(slot, job, policy_name, 0)
    return True


def _begin(slot: _Slot, job: EpisodeJob, policy_name: str, attempt: int) -> None:
    start = slot.env.begin(job.scenario, seed=job.seed, epoch=job.epoch, policy=policy_name)
    slot.messages, slot.tools, slot.turn = start.messages, start.tools, 0
    slot.usage, slot.latency_ms, slot.attempt = None, [], attempt


def _request(slot: _Slot) -> PolicyRequest:
    assert slot.job is not None
    return PolicyRequest(
        messages=slot.messages,
        tools=slot.tools,
        env_id=slot.env.env_name,
        scenario_id=slot.job.scenario.id,
        seed=slot.job.seed,
        turn=slot.turn,
        metadata=slot.job.metadata,
    )


def _advance(slot: _Slot, response: PolicyResponse) -> Trajectory | None:
    _record_usage(slot, response)
    result = slot.env.advance(response.action)
    slot.turn = result.turn
    slot.messages = [*slot.messages, result.assistant, *result.new_messages]
    if result.trajectory is None:
        return None
    return _with_usage(result.trajectory, slot)


def _record_usage(slot: _Slot, response: PolicyResponse) -> None:
    if response.latency_ms is not None:
        slot.latency_ms.append(round(response.latency_ms, 3))
    if response.prompt_tokens is not None or response.completion_tokens is not None:
        usage = slot.usage or TokenUsage()
        usage.prompt += response.prompt_tokens or 0
        usage.completion += response.completion_tokens or 0
        slot.usage = usage


def _with_usage(trajectory: Trajectory, slot: _Slot) -> Trajectory:
    trajectory.latency_ms = list(slot.latency_ms)
    if slot.usage is not None:
        trajectory.tokens = slot.usage
    return trajectory


def _abort(slot: _Slot, error: str) -> Trajectory:
    return _with_usage(slot.env.abort(Termination.POLICY_ERROR, error), slot)
