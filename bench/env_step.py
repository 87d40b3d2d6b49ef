"""Benchmark: microseconds per `env.step` and episodes per second, on one core.

`step` here is everything the env does per assistant turn: parse the text, validate each
call against its schema, run the tool, record the trajectory, and (on the last step)
compute the decomposed rewards. Two workloads:

* math_tools, the peers' comparison episode: 5 calculator calls, then a final answer;
* refund_agent with the scripted expert over the frozen eval split (tool calls, simulated
  customer, faults, six reward components).

Policy time is excluded: actions are precomputed, so only env code is timed.
Run: `python bench/env_step.py [--episodes N]`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import envs
from envs.base import ToolEnv

CALC = (
    '<tool_call>\n{{"name": "calculator", "arguments": {{"expression": "{expr}"}}}}\n</tool_call>'
)


Episodes = list[tuple[dict[str, Any], list[str]]]


def math_script() -> list[str]:
    steps = [CALC.format(expr=f"{i} * 7 + 3") for i in range(5)]
    return [*steps, "<answer>31</answer>"]


def time_episode(
    env: ToolEnv, actions: list[str], seed: int, options: dict[str, Any]
) -> list[float]:
    env.reset(seed=seed, options=options)
    timings = []
    for action in actions:
        start = time.perf_counter_ns()
        _, _, terminated, truncated, _ = env.step(action)
        timings.append((time.perf_counter_ns() - start) / 1000)
        if terminated or truncated:
            break
    return timings


def expert_actions(env: ToolEnv) -> Episodes:
    """Record the expert's actions once per eval scenario, to replay them without the policy."""
    from envs.rollout import EpisodeJob, rollout
    from policies.registry import make_policy

    jobs = [EpisodeJob(s, seed=i) for i, s in enumerate(env.scenarios)]
    episodes = []
    played = rollout(lambda: env, make_policy("expert", env.env_name), jobs, batch_size=1)
    for trajectory, job in zip(played, jobs, strict=True):
        actions = [m.content for m in trajectory.messages if m.role == "assistant"]
        episodes.append(({"scenario": job.scenario}, actions))
    return episodes


def run(
    name: str, env: ToolEnv, episodes: list[tuple[dict[str, Any], list[str]]], repeat: int
) -> None:
    step_us: list[float] = []
    start = time.perf_counter()
    count = 0
    for r in range(repeat):
        for i, (options, actions) in enumerate(episodes):
            step_us.extend(time_episode(env, actions, seed=r * 1000 + i, options=options))
            count += 1
    wall = time.perf_counter() - start
    print(
        f"{name:<14} episodes={count:>6}  steps={len(step_us):>7}  "
        f"median µs/step={statistics.median(step_us):7.1f}  "
        f"p90 µs/step={statistics.quantiles(step_us, n=10)[-1]:7.1f}  "
        f"mean µs/step={statistics.fmean(step_us):7.1f}  "
        f"episodes/s (incl. reset)={count / wall:8.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=5000, help="math_tools episodes")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    math_env = envs.make_raw("math_tools", split="eval")
    math_episodes = [({"scenario": s}, math_script()) for s in math_env.scenarios]
    run("math_tools", math_env, math_episodes, repeat=max(1, args.episodes // len(math_episodes)))
    refund_env = envs.make_raw("refund_agent", split="eval")
    refund_episodes = expert_actions(refund_env)
    run("refund_agent", refund_env, refund_episodes, repeat=max(1, 2000 // len(refund_episodes)))


if __name__ == "__main__":
    main()
