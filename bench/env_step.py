"""Benchmark: microseconds per `env.step` and episodes per second, on one core.

`step` here is everything the env does per assistant turn: parse the text, validate each
call against its schema, run the tool, record the trajectory, and (on the last step)
compute the decomposed rewards. Two workloads:

* math_tools, the peers' comparison episode (`../shared/bench-peers/`): 5 turns, each a
  calculator call on `(3 + 4) * 5 - 12` after "Let me compute it.", then a final answer
  that the env scores; printed with the peers' keys (`tool_step_median_us`, ...);
* refund_agent with the scripted expert over the frozen eval split (tool calls, simulated
  customer, faults, six reward components).

Policy time is excluded: actions are precomputed, so only env code is timed (wall time of
each `env.step`, as the peers time theirs).

    python bench/env_step.py [--episodes N]
    python bench/env_step.py --peers /path/to/peers/bin/python [--rounds 2]

`--peers` runs the peers' own scripts (gem-llm, skyrl-gym, installed in that interpreter)
and this one alternately, each pinned to the same core, and prints each round's medians
and our ratio to each peer (ratios from one sitting; absolute times vary with the load).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
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
    """The peers' episode: the same tool call five times, then the answer."""
    step = "Let me compute it.\n" + CALC.format(expr="(3 + 4) * 5 - 12")
    return [step] * 5 + ["The result is <answer>23</answer>"]


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


def run(name: str, env: ToolEnv, episodes: Episodes, repeat: int) -> dict[str, float]:
    """Play `repeat` rounds of `episodes`; print and return the medians (µs) and episodes/s."""
    tool_us: list[float] = []
    final_us: list[float] = []
    start = time.perf_counter()
    count = 0
    for r in range(repeat):
        for i, (options, actions) in enumerate(episodes):
            timings = time_episode(env, actions, seed=r * 1000 + i, options=options)
            tool_us.extend(timings[:-1])
            final_us.append(timings[-1])
            count += 1
    wall = time.perf_counter() - start
    figures = {
        "tool_step_median_us": statistics.median(tool_us),
        "tool_step_p90_us": statistics.quantiles(tool_us, n=10)[-1],
        "final_step(reward)_median_us": statistics.median(final_us),
        "episodes_per_s": count / wall,
    }
    shown = " ".join(f"{key}={value:.1f}" for key, value in figures.items())
    print(f"toolgym {name:<13} episodes={count} {shown}", flush=True)
    return figures


def peer_rounds(peers_python: str, rounds: int, episodes: int) -> None:
    """The peers' scripts and ours, alternately on one core; medians and our ratios."""
    here = Path(__file__).resolve()
    peer_dir = here.parents[2] / "shared" / "bench-peers"
    core = str(min(os.sched_getaffinity(0)))
    commands = {
        "gem-llm": [peers_python, str(peer_dir / "bench_gem.py"), str(episodes)],
        "skyrl-gym": [peers_python, str(peer_dir / "bench_skyrl.py"), str(episodes)],
        "toolgym": [sys.executable, str(here), "--episodes", str(episodes), "--math-only"],
    }
    key = re.compile(r"tool_step_median_us=([0-9.]+)")
    for round_number in range(1, rounds + 1):
        medians = {}
        for name, command in commands.items():
            out = subprocess.run(
                ["taskset", "-c", core, *command], capture_output=True, text=True, check=True
            ).stdout
            medians[name] = float(key.findall(out)[-1])
        ratios = "  ".join(
            f"toolgym/{name}={medians['toolgym'] / medians[name]:.2f}"
            for name in medians
            if name != "toolgym"
        )
        shown = "  ".join(f"{name}={value:.1f}" for name, value in medians.items())
        print(f"round {round_number}: median µs per tool step: {shown}  ratio: {ratios}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=5000, help="math_tools episodes")
    parser.add_argument("--math-only", action="store_true", help="skip refund_agent")
    parser.add_argument("--peers", metavar="PYTHON", help="interpreter with gem-llm, skyrl-gym")
    parser.add_argument("--rounds", type=int, default=2, help="with --peers: alternations")
    args = parser.parse_args()
    if args.peers:
        peer_rounds(args.peers, args.rounds, min(args.episodes, 2000))
        return
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    math_env = envs.make_raw("math_tools", split="eval")
    math_episodes = [({"scenario": s}, math_script()) for s in math_env.scenarios]
    run("math_tools", math_env, math_episodes, repeat=max(1, args.episodes // len(math_episodes)))
    if args.math_only:
        return
    refund_env = envs.make_raw("refund_agent", split="eval")
    refund_episodes = expert_actions(refund_env)
    run("refund_agent", refund_env, refund_episodes, repeat=max(1, 2000 // len(refund_episodes)))


if __name__ == "__main__":
    main()
