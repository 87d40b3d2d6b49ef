"""Benchmark: the eval harness on one core — episodes/s, and metrics + deltas on ~10k episodes.

1. A scripted (expert) evaluation of refund_agent over the frozen eval split, `--epochs`
   samples per scenario, through the harness's own stages (`evals.run`): play (the rollout
   plus the flushed JSONL append) and finalize (sorted rewrite, `compute_metrics`, report).
2. A 10k-episode run: the expert's trajectories replicated with distinct epochs (as if
   `epochs=K`) up to at least `--episodes`, and the same for a baseline policy
   (`--baseline`, default always_escalate). Timed: `compute_metrics` on the candidate and
   `compute_deltas(candidate, baseline)`; the target is under 10 s together.

Run: `python bench/eval_harness.py [--epochs 4] [--episodes 10000] [--baseline NAME]`.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one core, before numpy loads its BLAS

import argparse  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.records import Trajectory  # noqa: E402
from evals import run as harness  # noqa: E402
from evals.deltas import compute_deltas  # noqa: E402
from evals.metrics import compute_metrics  # noqa: E402

TARGET_S = 10.0


def evaluate(policy: str, epochs: int, out: Path) -> tuple[list[Trajectory], float, float]:
    """One harness run; returns its episodes, play seconds and finalize seconds."""
    cfg = harness.load_config([f"policy={policy}", f"epochs={epochs}", f"out={out}"])
    plans = harness.plan_jobs(cfg)
    agents = harness.make_policies(cfg, plans)
    found = harness.prepare_folder(out, harness.build_manifest(cfg, plans, agents), resume=False)
    start = time.perf_counter()
    results = harness.play(plans, agents, cfg, found, out)
    played = time.perf_counter() - start
    start = time.perf_counter()
    harness.finalize(out, results, plans, cfg)
    return [results[k] for k in sorted(results)], played, time.perf_counter() - start


def replicate(episodes: list[Trajectory], epochs: int, at_least: int) -> list[Trajectory]:
    """Copies of a run with shifted epochs, as if it had been run with more epochs."""
    copies = math.ceil(at_least / len(episodes))
    return [
        t.model_copy(update={"epoch": t.epoch + copy * epochs})
        for copy in range(copies)
        for t in episodes
    ]


def row(stage: str, n: int | str, seconds: float, note: str = "") -> str:
    return f"| {stage:<46} | {n!s:>6} | {seconds:>8.2f} | {note:<22} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4, help="expert epochs actually played")
    parser.add_argument("--episodes", type=int, default=10_000, help="size of the metrics run")
    parser.add_argument("--baseline", default="always_escalate", help="scripted baseline")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    with tempfile.TemporaryDirectory() as tmp:
        expert, played, finalized = evaluate("expert", args.epochs, Path(tmp) / "expert")
        baseline, _, _ = evaluate(args.baseline, args.epochs, Path(tmp) / "baseline")
    candidate = replicate(expert, args.epochs, args.episodes)
    reference = replicate(baseline, args.epochs, args.episodes)
    start = time.perf_counter()
    table = compute_metrics(candidate)
    metrics_s = time.perf_counter() - start
    start = time.perf_counter()
    deltas = compute_deltas(candidate, reference)
    deltas_s = time.perf_counter() - start
    n, total = len(candidate), metrics_s + deltas_s
    lines = [
        f"| {'stage':<46} | {'n':>6} | {'seconds':>8} | {'rate':<22} |",
        f"|{'-' * 48}|{'-' * 8}|{'-' * 10}|{'-' * 24}|",
        row(
            "expert eval: play (rollout + JSONL)",
            len(expert),
            played,
            f"{len(expert) / played:,.0f} episodes/s",
        ),
        row("expert eval: finalize (sort, metrics, report)", len(expert), finalized),
        row(
            "compute_metrics",
            n,
            metrics_s,
            f"{sum(len(m) for m in table.slices.values())} estimates",
        ),
        row(
            f"compute_deltas vs {args.baseline}",
            n,
            deltas_s,
            f"{sum(len(m) for m in deltas.slices.values())} deltas",
        ),
        row(
            "metrics + deltas",
            n,
            total,
            f"target < {TARGET_S:.0f} s: {'ok' if total < TARGET_S else 'MISSED'}",
        ),
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
