"""How well a model copies ids: teacher-forced accuracy on the id digits of tool calls.

`id_digit_accuracy(model_dir, env_name, every, seed)` plays the expert on every `every`-th
scenario of the frozen **eval** split (read-only: a measurement, never training data),
renders each episode with the model's own chat template, and scores the model's greedy
next-token prediction on every digit inside an assistant `<tool_call>` (session ids,
customer ids, order ids: all copied from the context), and, separately, on every other
assistant token. A tool call with one wrong digit runs on a wrong id, so the first number
is the one that decides whether SFT can produce working tool calls.

    python -m trainers.copy_probe <model folder> [every=3]
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from typing import Any

_CALL = re.compile(r"<tool_call>.*?</tool_call>", re.S)
_TURN = re.compile(r"<\|im_start\|>assistant\n(.*?)<\|im_end\|>", re.S)


def eval_texts(env_name: str = "refund_agent", every: int = 3, seed: int = 0) -> list[Any]:
    """Expert episodes on every `every`-th eval scenario, as SFT rows (`trainers.data`)."""
    import envs
    from trainers.data import _play, sft_rows

    env = envs.make_raw(env_name, split="eval")
    scenarios = list(env.scenarios)[::every]
    return sft_rows(_play(env_name, "expert", scenarios, seed))


def _targets(text: str) -> tuple[set[int], set[int]]:
    """Character positions of (id digits in tool calls, other assistant characters)."""
    digits: set[int] = set()
    other: set[int] = set()
    for turn in _TURN.finditer(text):
        other.update(range(turn.start(1), turn.end(1)))
        for call in _CALL.finditer(text, turn.start(1), turn.end(1)):
            digits.update(i for i in range(call.start(), call.end()) if text[i].isdigit())
    return digits, other - digits


def score_rows(model: Any, tokenizer: Any, rows: list[dict[str, Any]]) -> dict[str, float]:
    """Teacher-forced greedy accuracy on id digits and on other assistant tokens."""
    import torch

    hits = {"digit": [0, 0], "other": [0, 0]}
    for row in rows:
        text = tokenizer.apply_chat_template(
            row["messages"], tools=json.loads(row["tools"]), tokenize=False
        )
        enc = tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)
        ids, offsets = enc["input_ids"], enc["offset_mapping"]
        digits, other = _targets(text)
        with torch.no_grad():
            pred = model(torch.tensor([ids])).logits[0].argmax(-1).tolist()
        for pos in range(1, len(ids)):
            start = offsets[pos][0]
            kind = "digit" if start in digits else "other" if start in other else None
            if kind is not None:
                hits[kind][0] += int(pred[pos - 1] == ids[pos])
                hits[kind][1] += 1
    return {f"{k}_acc": h[0] / max(h[1], 1) for k, h in hits.items()} | {
        f"{k}_n": float(h[1]) for k, h in hits.items()
    }


def id_digit_accuracy(
    model_dir: str, env_name: str = "refund_agent", every: int = 3, seed: int = 0
) -> dict[str, float]:
    """Load `model_dir` and score it on the eval split (see the module docstring)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    return score_rows(model, tokenizer, eval_texts(env_name, every, seed))


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: print the accuracies of each model folder given."""
    args = list(sys.argv[1:] if argv is None else argv)
    every = next((int(a.split("=", 1)[1]) for a in args if a.startswith("every=")), 3)
    folders = [a for a in args if not a.startswith("every=")]
    for folder in folders:
        print(folder, json.dumps(id_digit_accuracy(folder, every=every)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
