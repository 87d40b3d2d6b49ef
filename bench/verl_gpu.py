"""One-GPU check of the verl path and the capacity planner (no Ray or vLLM needed).

    python bench/verl_gpu.py [out=runs/bench/verl_gpu] [hidden=1024] [layers=16] [steps=3]
                             [episodes=32] [model=PATH]

1. A model: `model=PATH`, else the project's tiny architecture built at `hidden` x `layers`
   (random weights, the real tokenizer and chat template: memory and speed are what
   matter here, not what it says).
2. TRL GRPO on the GPU (`trainers.grpo backend=trl`, `steps` steps, eval off): seconds a
   step and peak memory (`torch.cuda.max_memory_allocated`), next to `trainers.plan`'s
   estimate for the same model, group, sequence length and precision (TRL keeps fp32
   weights and AdamW states under bf16 autocast: the plan is priced at fp32).
3. The verl agent loop (`trainers.verl_agent_loop.ToolgymAgentLoop`, built as verl's
   AgentLoopWorker builds it) with an HF generation server on the GPU behind verl's
   server-client interface: `episodes` refund episodes at once; seconds an episode and
   generated tokens a second. Skipped, with the reason, when verl is not installed.

Writes `<out>/verl_gpu.json` and prints it.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python bench/<name>.py` works too

ENV = "refund_agent"


def build_model(out: Path, hidden: int, layers: int) -> Path:
    from trainers.data import demonstrations, render_chat
    from trainers.tiny_model import build_tiny_model

    corpus = [
        render_chat([m.to_chat() for m in t.messages], t.tools) for t in demonstrations(ENV, 24)
    ]
    heads = max(1, hidden // 64)
    return build_tiny_model(
        out / "model", corpus, hidden_size=hidden, num_layers=layers, num_heads=heads,
        num_kv_heads=max(1, heads // 4), line_tokens=16,
    )  # fmt: skip


def trl_run(model: Path, out: Path, steps: int) -> dict[str, Any]:
    import torch
    from transformers import AutoTokenizer

    import envs
    from trainers import grpo, plan
    from trainers.backends.verl import longest_prompt
    from trainers.verl_data import split_rows

    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    overrides = [f"env={ENV}", f"model={model}", f"out={out / 'trl'}", "eval.enabled=false",
                 f"trainer.max_steps={steps}", "cpu_threads=null"]  # fmt: skip
    t0 = time.perf_counter()
    assert grpo.main(overrides) == 0
    wall = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated() / 1e9 if cuda else None
    cfg = grpo.load_config("grpo", overrides, grpo.GRPORunConfig)
    tokenizer = AutoTokenizer.from_pretrained(model)
    rows = split_rows(ENV, "train")[:64]
    tools = envs.make_raw(ENV, split="train").begin(rows[0]["scenario_id"]).tools
    prompt_len = longest_prompt(rows, tools, tokenizer)
    records = [
        json.loads(line) for line in (out / "trl" / "metrics.jsonl").read_text().splitlines()
    ]
    step_s = [r["timing/step_s"] for r in records if "timing/step_s" in r]
    config = json.loads((model / "config.json").read_text())
    spec = plan.TrainSpec(
        shape=plan.shape_from_hf_config(config), method="grpo", precision="fp32",
        group_size=cfg.trainer.num_generations, seq_len=prompt_len + cfg.trainer.max_episode_tokens,
        micro_batch=cfg.trainer.batch_size, rollout_sequences=cfg.trainer.batch_size,
        reference=cfg.trainer.beta > 0, reward_model=0,
        gpu_mem_gb=torch.cuda.get_device_properties(0).total_memory / 1e9 if cuda else 80.0,
    )  # fmt: skip
    estimate = plan.train_plan(spec)
    return {
        "params": spec.shape.params,
        "prompt_tokens": prompt_len,
        "steps": len(step_s),
        "step_s_mean": sum(step_s) / max(len(step_s), 1),
        "wall_s": wall,
        "peak_gb": peak,
        "plan_gb": estimate.total_gb,
        "plan_components_gb": estimate.components,
    }


def agent_loop_run(model_dir: Path, episodes: int) -> dict[str, Any]:
    try:
        from trainers import verl_agent_loop as va
    except ImportError as exc:
        return {"skipped": f"verl is not importable here: {exc}"}
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import envs
    from trainers.data import scenario_seed

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).to(device)
    server = va.HFGenerationServer(model, tokenizer, seed=0)
    config = va.compose(
        ["algorithm.adv_estimator=grpo", "actor_rollout_ref.rollout.name=vllm",
         "actor_rollout_ref.rollout.prompt_length=2048",
         "actor_rollout_ref.rollout.response_length=768"],
        extra={"toolgym": {"max_turn_tokens": 128}},
    )  # fmt: skip
    loop = va.instantiate_loop(config, server, tokenizer)
    scenarios = envs.make_raw(ENV, split="eval").scenarios[:episodes]
    rows = [
        {"env": ENV, "split": "eval", "scenario_id": s.id, "seed": scenario_seed(0, s)}
        for s in scenarios
    ]

    async def play_all() -> list[Any]:
        params = {"temperature": 1.0, "top_p": 1.0, "top_k": -1, "logprobs": True}
        return await asyncio.gather(*(loop.run(dict(params), **row) for row in rows))

    t0 = time.perf_counter()
    outputs = asyncio.run(play_all())
    wall = time.perf_counter() - t0
    generated = sum(sum(o.response_mask) for o in outputs)
    return {
        "episodes": len(outputs),
        "wall_s": wall,
        "s_per_episode_concurrent": wall / len(outputs),
        "generated_tokens_per_s": generated / wall,
        "mean_reward": sum(o.reward_score for o in outputs) / len(outputs),
    }


def main(argv: list[str]) -> int:
    import torch

    args = dict(a.split("=", 1) for a in argv)
    if not torch.cuda.is_available() and args.get("cpu") != "true":
        print("bench/verl_gpu.py: no CUDA device (cpu=true runs a CPU smoke test)", file=sys.stderr)
        return 2
    out = Path(args.get("out", "runs/bench/verl_gpu"))
    out.mkdir(parents=True, exist_ok=True)
    model = Path(args["model"]) if "model" in args else build_model(
        out, int(args.get("hidden", 1024)), int(args.get("layers", 16))
    )  # fmt: skip
    result = {
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
        "trl_grpo": trl_run(model, out, int(args.get("steps", 3))),
        "verl_agent_loop": agent_loop_run(model, int(args.get("episodes", 32))),
    }
    text = json.dumps(result, indent=2, default=float)
    (out / "verl_gpu.json").write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
