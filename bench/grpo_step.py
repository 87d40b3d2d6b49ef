"""Where a GRPO step's time goes: env code vs generation vs the optimizer step.

    python bench/grpo_step.py [steps=5] [out=runs/bench/grpo_step] [grpo overrides ...]

Runs `trainers.grpo` for a few steps from the SFT checkpoint (built first if absent;
eval off) and reads its `metrics.jsonl`: per step, the rollout's wall time split into
`generate` (the batched `model.generate` calls), `tokenize` (chat templating and
tokenizing the env frames) and `env` (everything else in the rollout: the one loop,
parsing, validation, tools, the user simulator and the reward functions), and the whole
optimizer step (`timing/step_s`). The remainder, `train`, is TRL's loss forward/backward,
the optimizer step and its bookkeeping. Target: env under 5% of a step.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python bench/<name>.py` works too

PARTS = ("env", "generate", "tokenize")


def shares(records: list[dict[str, Any]]) -> dict[str, float]:
    """Summed seconds per part over the steps that logged timings, and their shares."""
    steps = [r for r in records if "timing/step_s" in r and "timing/rollout_total_s" in r]
    total = sum(r["timing/step_s"] for r in steps)
    parts = {p: sum(r[f"timing/rollout_{p}_s"] for r in steps) for p in PARTS}
    parts["train"] = max(0.0, total - sum(r["timing/rollout_total_s"] for r in steps))
    result = {f"{p}_s": round(v, 3) for p, v in parts.items()}
    result |= {f"{p}_share": round(v / total, 4) if total else 0.0 for p, v in parts.items()}
    return result | {"steps": len(steps), "step_s_mean": round(total / max(len(steps), 1), 3)}


def main(argv: Sequence[str] | None = None) -> int:
    from trainers import grpo, sft

    args = list(sys.argv[1:] if argv is None else argv)
    steps, out, rest = 5, Path("runs/bench/grpo_step"), []
    for item in args:
        if item.startswith("steps="):
            steps = int(item.split("=", 1)[1])
        elif item.startswith("out="):
            out = Path(item.split("=", 1)[1])
        else:
            rest.append(item)
    overrides = [f"out={out}", f"trainer.max_steps={steps}", "eval.enabled=false", *rest]
    cfg = grpo.load_config("grpo", overrides, grpo.GRPORunConfig)
    backend = grpo.validate(cfg)
    sft.setup_process(cfg.cpu_threads)
    grpo.run_grpo(cfg, backend)
    with (out / "metrics.jsonl").open(encoding="utf-8") as fh:
        result = shares([json.loads(line) for line in fh if line.strip()])
    print(json.dumps(result, indent=2))
    print(
        f"env code: {result['env_share']:.2%} of a step "
        f"(generation {result['generate_share']:.1%}, templating {result['tokenize_share']:.1%}, "
        f"train/optimizer {result['train_share']:.1%}); {result['step_s_mean']:.2f}s a step"
    )
    (out / "step_shares.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
