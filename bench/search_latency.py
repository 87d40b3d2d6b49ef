"""Benchmark: the search tool, the code sandbox, and steps of stale_report / debug_search_api.

Three tables, on one core:

* **search** — index build time and per-query latency (p50/p95) of `tools.search`
  (bm25s + snippet) on the packaged corpus and on synthetic corpora of 1k and 10k
  documents, next to rank_bm25's `BM25Okapi.get_scores` on the same tokens (the
  alternative library: pure Python, scores every document per query). Import times too.
* **sandbox** — latency of one run (a trivial script; the repository's unit tests) with
  namespaces and without, and the hostile corpus: each case, the typed error, wall time.
* **envs** — µs per `env.step` and episodes per second replaying the expert's actions
  (policy time excluded) for stale_report and debug_search_api; the latter cold (the
  verification cache cleared before each episode: every final answer runs the tests in
  the sandbox) and warm (repeated code answered from the cache).

Run: `python bench/search_latency.py [--queries N] [--episodes N]`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

WORDS = 5000
PACKAGED = "scenarios:data/debug_search_api/corpus"
QUERY_TERMS = 4


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def synthetic_corpus(n: int, seed: int = 0) -> Any:
    from tools.search import Corpus, Document

    rng = np.random.default_rng(seed)
    vocab = [f"w{i}" for i in range(WORDS)]
    weights = 1.0 / np.arange(1, WORDS + 1)  # Zipf-like, as in text
    weights /= weights.sum()
    docs = []
    for i in range(n):
        words = rng.choice(vocab, size=int(rng.integers(40, 200)), p=weights)
        docs.append(
            Document(id=f"d{i:05d}", title=f"doc {i}", date="2025-01-01", text=" ".join(words))
        )
    return Corpus(docs)


def queries(count: int, seed: int = 1) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(f"w{int(x)}" for x in rng.integers(0, 400, QUERY_TERMS)) for _ in range(count)]


def import_ms(module: str) -> float:
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout) * 1000


def bench_search(n_queries: int) -> None:
    from tools.search import SearchIndex, load_index, tokenize

    try:
        from rank_bm25 import BM25Okapi  # the alternative, for comparison only
    except ImportError:
        BM25Okapi = None
        print("rank_bm25 is not installed (pip install rank_bm25): bm25s rows only")

    load_index(PACKAGED)  # the first index pays bm25s's import (reported on its own)
    print(f"import bm25s: {import_ms('bm25s'):.0f} ms (only when an index is first built)")
    print(f"{'corpus':>10} {'library':>10} {'build ms':>9} {'p50 us':>8} {'p95 us':>8}")
    corpora = [("packaged", None), ("1k", 1000), ("10k", 10_000)]
    for label, size in corpora:
        corpus = load_index(PACKAGED).corpus if size is None else synthetic_corpus(size)
        started = time.perf_counter()
        index = SearchIndex(corpus)  # tokenizing + BM25 index (the corpus is already read)
        build = (time.perf_counter() - started) * 1000
        asked = queries(n_queries) if size else ["search-sdk 3.2.1 deprecated legacy_lookup 500"]
        ours = []
        for query in asked * (1 if size else n_queries):
            t = time.perf_counter_ns()
            index.search(query, limit=5)
            ours.append((time.perf_counter_ns() - t) / 1000)
        p50, p95 = percentile(ours, 50), percentile(ours, 95)
        print(f"{label:>10} {'bm25s':>10} {build:9.1f} {p50:8.0f} {p95:8.0f}")
        if BM25Okapi is None:
            continue
        tokens = [tokenize(f"{d.title}\n{d.text}") for d in index.corpus.documents]
        started = time.perf_counter()
        okapi = BM25Okapi(tokens)
        build = (time.perf_counter() - started) * 1000
        theirs = []
        for query in asked * (1 if size else n_queries):
            t = time.perf_counter_ns()
            okapi.get_scores(tokenize(query))
            theirs.append((time.perf_counter_ns() - t) / 1000)
        p50, p95 = percentile(theirs, 50), percentile(theirs, 95)
        print(f"{label:>10} {'rank_bm25':>10} {build:9.1f} {p50:8.0f} {p95:8.0f}")


def bench_sandbox() -> None:
    import yaml

    from tests.test_code_sandbox import LIMITS, hostile_corpus
    from tools.code_sandbox import Limits, SubprocessSandbox

    repo_file = Path(__file__).resolve().parents[1] / "scenarios/data/debug_search_api/repo.yaml"
    repo = yaml.safe_load(repo_file.read_text())
    for isolation in ("auto", "none"):
        box = SubprocessSandbox(Limits(), isolation=isolation)
        trivial = [box.run({"main.py": "print(1)"}, ["main.py"]).wall_s for _ in range(10)]
        tests = [
            box.run(repo, ["-m", "unittest", "-q", "tests.test_search_service"]).wall_s
            for _ in range(5)
        ]
        label = "namespaces" if box.prefix else "rlimits only"
        print(
            f"sandbox ({label}): trivial run p50 {statistics.median(trivial) * 1000:.0f} ms, "
            f"unit tests p50 {statistics.median(tests) * 1000:.0f} ms"
        )
    outside = Path(os.environ.get("TMPDIR", "/tmp")) / "toolgym-bench-secret.txt"
    outside.write_text("secret")
    print(f"{'hostile case':>16} {'typed error':>22} {'wall s':>7}")
    for name, (code, expected) in sorted(hostile_corpus(outside).items()):
        result = SubprocessSandbox(LIMITS).run({"main.py": code}, ["main.py"])
        got = type(result.error).__name__ if result.error else "none"
        mark = "" if isinstance(result.error, expected) else "  <- expected " + expected.__name__
        print(f"{name:>16} {got:>22} {result.wall_s:7.2f}{mark}")
    assert outside.read_text() == "secret"
    outside.unlink()


def replay(env_name: str, count: int, cold: bool) -> None:
    import envs
    from envs.rollout import EpisodeJob, rollout
    from policies.registry import make_policy
    from tools import repo

    env = envs.make_raw(env_name, split="eval")
    scenarios = env.scenarios[:: max(1, len(env.scenarios) // count)][:count]
    jobs = [EpisodeJob(s, seed=i) for i, s in enumerate(scenarios)]
    played = list(rollout(lambda: env, make_policy("expert", env=env_name), jobs, batch_size=1))
    episodes = [
        (job.scenario, [m.content for m in t.messages if m.role == "assistant"])
        for t, job in zip(played, jobs, strict=True)
    ]
    steps: list[float] = []
    started = time.perf_counter()
    for i, (scenario, actions) in enumerate(episodes):
        if cold:
            repo._RESULTS.clear()
        env.reset(seed=i, options={"scenario": scenario})
        for action in actions:
            t = time.perf_counter_ns()
            _, _, terminated, truncated, _ = env.step(action)
            steps.append((time.perf_counter_ns() - t) / 1000)
            if terminated or truncated:
                break
    elapsed = time.perf_counter() - started
    label = (
        f"{env_name}{' (cold)' if cold else ' (warm)' if env_name == 'debug_search_api' else ''}"
    )
    print(
        f"{label:>26}: {len(episodes) / elapsed:8.1f} episodes/s, step p50 "
        f"{percentile(steps, 50):8.0f} us, p95 {percentile(steps, 95):8.0f} us"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--episodes", type=int, default=40)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    bench_search(args.queries)
    bench_sandbox()
    replay("stale_report", args.episodes, cold=False)
    replay("debug_search_api", args.episodes, cold=False)
    replay("debug_search_api", min(args.episodes, 12), cold=True)


if __name__ == "__main__":
    main()
