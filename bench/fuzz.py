"""`python bench/fuzz.py --actions 1000000`: fuzz every registered env with hostile turns.

Plays episodes on each env of `envs.ENVS.names()` (scenarios drawn with the seed), each
turn a `tools.fuzz.random_action` built from the env's own tool schemas and the numbers
the conversation mentioned, and checks the issue-10 targets:

* **crashes**: any exception out of `env.advance(action)` (counted, the first few shown
  with the action that caused them);
* **unsaveable**: a finished trajectory whose `to_json()` raises, is not UTF-8, or does
  not load back with `Trajectory.from_json`;
* **step time**: p50 / p99 / p99.9 / max of `advance` over every action (all actions are
  within the action space: at most `max_length` = 16,384 characters of text), and the
  action behind the max. Measured as this thread's CPU time (`time.thread_time`), so a
  shared machine's preemption does not count; wall-clock p99.9 and max are shown beside.

`--workers 2` splits the actions over two processes (seeds differ per worker). Prints one
table; exits 1 if any crash or unsaveable trajectory was found, else 0.

Measured 2026-12-02 (2 shared cores, six registered envs, `--workers 2`, defaults, the
setup heap frozen as `evals.run` freezes it): 999,996 actions, 263,234 episodes in 150 s:
0 crashes, 0 unsaveable; step CPU time p50 0.08 ms, p99 0.67 ms, p99.9 3.1 ms, max 14.8 ms
(refund_agent; every env under 15 ms; wall-clock max 33 ms with the other core's load).
Before this session's fixes the maxima were 67-91 ms (full-heap collections inside a step),
~75-560 ms (refund_agent's claim reading on a 16 KB reply; 27.6 s on 16K spaces) and
238 ms (calculator_handoff's answer regex on 16 KB of unclosed `<answer>` tags).
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing
import random
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

import envs
from core.records import Trajectory
from core.sanitize import sanitize
from tools.fuzz import random_action

NUMBER = re.compile(r"\b\d{1,9}\b")
SHOWN = 5


@dataclass
class Tally:
    actions: int = 0
    episodes: int = 0
    crashes: int = 0
    unsaveable: int = 0
    step_ms: list[float] = field(default_factory=list)  # CPU time of this thread
    wall_ms: list[float] = field(default_factory=list)
    slowest: tuple[float, str] = (0.0, "")
    samples: list[str] = field(default_factory=list)


def describe(action: object) -> str:
    """A short, always printable description of an action."""
    text = json.dumps(sanitize(action, max_nodes=50).value, ensure_ascii=True)
    size = len(action) if isinstance(action, str) else len(text)
    return f"{type(action).__name__}({size} chars): {text[:160]}"


def hints_from(messages: list[dict]) -> list[int | str]:
    found: list[int | str] = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            found.extend(int(n) for n in NUMBER.findall(content[:2000]))
    return found[-40:]


def fuzz_env(name: str, actions: int, seed: int, share: float, gc_in_step: bool = True) -> Tally:
    rng = random.Random(seed)
    env = envs.make_raw(name, split="eval")
    schemas = env.toolbox.schemas
    limit = env.action_space.max_length
    tally = Tally()
    # As `evals.run` does: what setup built (modules, scenarios) leaves the collector's
    # view, so a full collection landing inside a step scans only what the run made since.
    gc.collect()
    gc.freeze()
    while tally.actions < actions:
        start = env.begin(None, seed=rng.randrange(2**31))
        tally.episodes += 1
        hints = hints_from(start.messages)
        done = False
        while not done and tally.actions < actions:
            action = random_action(rng, schemas, hints, max_length=limit, pathological=share)
            tally.actions += 1
            if not gc_in_step:
                gc.disable()
            began, began_cpu = time.perf_counter(), time.thread_time()
            try:
                result = env.advance(action)
            except Exception as exc:  # the thing we count
                gc.enable()
                tally.crashes += 1
                if len(tally.samples) < SHOWN:
                    tally.samples.append(
                        f"crash {type(exc).__name__}: {exc!s:.120} <- {describe(action)}"
                    )
                break
            elapsed = (time.thread_time() - began_cpu) * 1000
            tally.wall_ms.append((time.perf_counter() - began) * 1000)
            gc.enable()
            tally.step_ms.append(elapsed)
            if elapsed > tally.slowest[0]:
                tally.slowest = (elapsed, describe(action))
            hints = hints_from(result.new_messages) or hints
            done = result.done
            if done:
                check_saveable(result.trajectory, tally, action)
    gc.unfreeze()
    return tally


def check_saveable(trajectory: Trajectory | None, tally: Tally, action: object) -> None:
    try:
        assert trajectory is not None
        line = trajectory.to_json()
        line.encode("utf-8")
        Trajectory.from_json(line)
    except Exception as exc:
        tally.unsaveable += 1
        if len(tally.samples) < SHOWN:
            tally.samples.append(
                f"unsaveable {type(exc).__name__}: {exc!s:.120} <- {describe(action)}"
            )


def work(job: tuple[str, int, int, float, bool]) -> tuple[str, Tally]:
    """One env's share; a job that cannot run is reported, not fatal to the others."""
    name, actions, seed, share, gc_in_step = job
    gc.collect()
    began = time.process_time()
    try:
        tally = fuzz_env(name, actions, seed, share, gc_in_step)
    except Exception as exc:  # e.g. the env cannot be built: say so, keep the other jobs
        tally = Tally(samples=[f"job failed before finishing: {type(exc).__name__}: {exc}"])
        tally.crashes = 1
    print(
        f"  done: {name} seed {seed}: {tally.actions:,} actions, {tally.crashes} crashes, "
        f"{tally.unsaveable} unsaveable, {time.process_time() - began:.0f} CPU s",
        flush=True,
    )
    return name, tally


def merge(parts: list[Tally]) -> Tally:
    total = Tally()
    for part in parts:
        total.actions += part.actions
        total.episodes += part.episodes
        total.crashes += part.crashes
        total.unsaveable += part.unsaveable
        total.step_ms.extend(part.step_ms)
        total.wall_ms.extend(part.wall_ms)
        total.slowest = max(total.slowest, part.slowest)
        total.samples.extend(part.samples[: SHOWN - len(total.samples)])
    return total


def row(label: str, tally: Tally) -> str:
    times = np.asarray(tally.step_ms) if tally.step_ms else np.zeros(1)
    wall = np.asarray(tally.wall_ms) if tally.wall_ms else np.zeros(1)
    p50, p99, p999 = np.percentile(times, [50, 99, 99.9])
    return (
        f"{label:<17} {tally.actions:>9,} {tally.episodes:>8,} {tally.crashes:>7} "
        f"{tally.unsaveable:>10} {p50:>8.3f} {p99:>8.3f} {p999:>8.3f} {times.max():>8.2f} "
        f"{np.percentile(wall, 99.9):>8.3f} {wall.max():>8.2f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actions", type=int, default=1_000_000, help="total, over all envs")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--env", action="append", help="default: every registered env")
    parser.add_argument(
        "--pathological",
        type=float,
        default=0.005,
        help="share of 16K-char repeated-snippet texts (each costs 10-300 ms to play)",
    )
    parser.add_argument(
        "--no-gc-in-step",
        action="store_true",
        help="hold the garbage collector off during `advance` (it runs between steps), to "
        "time the step's own work apart from collections of the whole heap",
    )
    args = parser.parse_args()
    names = args.env or envs.ENVS.names()
    shares = args.workers * len(names)
    jobs = [
        (
            name,
            args.actions // shares,
            args.seed * 1000 + worker * 100 + index,
            args.pathological,
            not args.no_gc_in_step,
        )
        for worker in range(args.workers)
        for index, name in enumerate(names)
    ]
    for name in names:  # import every env before forking: later edits to the tree can't bite
        envs.make_raw(name, split="eval")
    began = time.perf_counter()
    if args.workers > 1:
        with multiprocessing.get_context("fork").Pool(args.workers) as pool:
            results = list(pool.imap_unordered(work, jobs, chunksize=1))
    else:
        results = [work(job) for job in jobs]
    seconds = time.perf_counter() - began
    by_env = {name: merge([t for n, t in results if n == name]) for name in names}
    total = merge(list(by_env.values()))
    print(f"fuzzed {total.actions:,} actions in {seconds:.0f} s ({args.workers} worker(s))")
    print("step time = CPU time of `advance` (thread_time); wall = perf_counter, with preemption")
    print(
        f"{'env':<17} {'actions':>9} {'episodes':>8} {'crashes':>7} {'unsaveable':>10} "
        f"{'p50 ms':>8} {'p99 ms':>8} {'p99.9 ms':>8} {'max ms':>8} {'wall99.9':>8} {'wall max':>8}"
    )
    for name, tally in by_env.items():
        print(row(name, tally))
    print(row("all", total))
    for name, tally in by_env.items():
        print(f"slowest step, {name}: {tally.slowest[0]:.2f} ms <- {tally.slowest[1]}")
    for sample in total.samples:
        print(f"  {sample}")
    return 1 if total.crashes or total.unsaveable else 0


if __name__ == "__main__":
    sys.exit(main())
