"""Benchmark: is an eval generation-bound? Eval throughput against raw batched `generate`.

1. **Eval**: the HF policy plays `--episodes` refund_agent eval episodes through the one
   rollout loop (`envs.rollout.rollout`, `--batch` live episodes, one batched `generate` per
   turn across them), exactly as `evals.run` plays them. Wall time covers everything: env
   steps, chat-template rendering, tokenising, generation, decoding.
2. **Raw**: every `generate` call of the eval is recorded (its padded prompt batch and the
   number of tokens it generated) and replayed as a bare `model.generate` on the same
   prompts, forced to the same number of new tokens (`min_new_tokens = max_new_tokens`).
   That is the time generation alone needs for the same work.

Prints episodes/s and completion tokens/s of both, and the ratio eval / raw throughput
(= raw seconds / eval seconds; the target is >= 0.90: the rollout loop costs <= 10%), and
the share of the eval's own wall time spent inside `generate` (the same ratio measured in
one process at one time, so it does not drift with other load on a shared machine).
Where the time outside `generate` goes is split into render+tokenise (policy side), and
env + loop (the rest).

Run: `python bench/generation_efficiency.py [--model DIR] [--episodes 32] [--batch 16]
[--max-new-tokens 64] [--device cpu|cuda]`. Without `--model` the project's tiny model
for refund_agent is built (or reused from the cache) as training builds it.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one core per process, before torch loads

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TARGET = 0.90


@dataclass
class Recorder:
    """Wraps `model.generate`: keeps each call's inputs and how many tokens it made."""

    generate: Any
    calls: list[tuple[dict[str, Any], int]] = field(default_factory=list)
    seconds: float = 0.0

    def __call__(self, **kwargs: Any) -> Any:
        start = time.perf_counter()
        output = self.generate(**kwargs)
        self.seconds += time.perf_counter() - start
        steps = output.shape[1] - kwargs["input_ids"].shape[1]
        inputs = {k: kwargs[k] for k in ("input_ids", "attention_mask")}
        self.calls.append((inputs, steps))
        return output


def default_model() -> str:
    from trainers.sft import TinySpec, resolve_model

    path, _ = resolve_model("tiny", "refund_agent", TinySpec())
    return path


def play_eval(policy: Any, episodes: int, batch: int) -> tuple[list[Any], float]:
    import envs
    from envs.rollout import rollout
    from evals.run import load_config, plan_jobs

    cfg = load_config(["env=refund_agent", "policy=expert", f"limit={episodes}"])
    (plan,) = plan_jobs(cfg)
    start = time.perf_counter()
    done = list(rollout(lambda: envs.make_raw("refund_agent", split="eval"), policy, plan.jobs,
                        batch_size=batch))  # fmt: skip
    return done, time.perf_counter() - start


def replay_raw(recorder: Recorder, policy: Any) -> float:
    """The same generate calls, bare: same prompts, same number of new tokens."""
    import torch

    kwargs = policy._generation_kwargs()
    start = time.perf_counter()
    with torch.inference_mode():
        for inputs, steps in recorder.calls:
            if steps == 0:
                continue
            torch.manual_seed(0)
            recorder.generate(
                **inputs, **{**kwargs, "max_new_tokens": steps, "min_new_tokens": steps}
            )
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--episodes", type=int, default=32)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--device", default=None)
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from core.sampling import Sampling
    from policies.hf import HFPolicy

    model = args.model or default_model()
    policy = HFPolicy(
        model, sampling=Sampling(max_turn_tokens=args.max_new_tokens), device=args.device
    )
    recorder = Recorder(policy.model.generate)
    policy.model.generate = recorder  # type: ignore[method-assign]
    play_eval(policy, min(4, args.episodes), args.batch)  # warm-up: allocator, kernels
    recorder.calls.clear()
    recorder.seconds = 0.0
    trajectories, eval_s = play_eval(policy, args.episodes, args.batch)
    in_generate = recorder.seconds
    raw_s = replay_raw(recorder, policy)
    tokens = sum(t.tokens.completion for t in trajectories if t.tokens)
    turns = sum(t.turns for t in trajectories)
    ratio = raw_s / eval_s
    print(f"model: {model} ({policy.device}); {len(trajectories)} episodes, {turns} turns, "
          f"{len(recorder.calls)} generate calls, {tokens} completion tokens")  # fmt: skip
    print(f"{'':<8}{'seconds':>10}{'episodes/s':>12}{'tokens/s':>12}")
    for name, seconds in (("eval", eval_s), ("raw", raw_s)):
        rates = f"{len(trajectories) / seconds:>12.2f}{tokens / seconds:>12.1f}"
        print(f"{name:<8}{seconds:>10.2f}{rates}")
    outside = eval_s - in_generate
    print(f"eval time in generate: {in_generate:.2f} s; outside (render, tokenise, env, loop): "
          f"{outside:.2f} s ({outside / eval_s:.1%})")  # fmt: skip
    verdict = "meets" if ratio >= TARGET else "misses"
    print(f"ratio eval/raw throughput: {ratio:.3f} ({verdict} the {TARGET:.0%} target)")
    # Same process, same minutes: robust to other load on a shared machine, unlike the
    # replay (run later, under whatever load the machine has then).
    print(f"generation share of the eval's wall time: {in_generate / eval_s:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
