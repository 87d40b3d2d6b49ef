"""Scenarios of the math_tools env: the seed's `math_basic` and `division_hard` slices.

Generated, not hand-written: `generate(split)` draws word problems ("Carly has 8 apples,
buys 2, sells 5. How many now?") and divisions ("What is 23 ÷ 13?") from a seeded rng.
`train` and `eval` use different seeds, and train drops any scenario whose content
hash is in eval, so the two never share a problem.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Literal

import numpy as np
from pydantic import Field

from scenarios.schema import Scenario

NAMES = ("Carly", "Ben", "Ada", "Omar", "Mei", "Lena", "Tom", "Priya")
THINGS = ("apples", "pencils", "stamps", "marbles", "books", "cards")
SPLIT_SEEDS = {"train": 1, "eval": 2}
SPLIT_SIZES = {"train": 400, "eval": 60}
NOW = datetime(2026, 3, 10, 9, 0, 0)


class MathScenario(Scenario):
    env: Literal["math_tools"] = "math_tools"
    question: str = Field(min_length=1)
    answer: float
    tolerance: float = Field(default=1e-6, ge=0)


def word_problem(rng: np.random.Generator, index: int) -> MathScenario:
    name, thing = str(rng.choice(NAMES)), str(rng.choice(THINGS))
    start, bought = int(rng.integers(2, 30)), int(rng.integers(1, 20))
    sold = int(rng.integers(1, start + bought))
    question = f"{name} has {start} {thing}, buys {bought}, sells {sold}. How many {thing} now?"
    return MathScenario(
        id=f"math_basic-{index}",
        slices=["math_basic"],
        now=NOW,
        question=question,
        answer=start + bought - sold,
    )


def division(rng: np.random.Generator, index: int) -> MathScenario:
    a, b = int(rng.integers(10, 999)), int(rng.integers(3, 97))
    return MathScenario(
        id=f"division_hard-{index}",
        slices=["division_hard"],
        now=NOW,
        question=f"What is {a} ÷ {b}? Give the result to 3 decimal places.",
        answer=round(a / b, 3),
        tolerance=1e-3,
    )


@cache
def generate(split: str) -> tuple[MathScenario, ...]:
    if split not in SPLIT_SEEDS:
        raise ValueError(f"math_tools: unknown split '{split}'; allowed: train, eval")
    rng = np.random.default_rng(SPLIT_SEEDS[split])
    made = [(word_problem if i % 2 == 0 else division)(rng, i) for i in range(SPLIT_SIZES[split])]
    if split == "train":
        held_out = {s.content_hash for s in generate("eval")}
        made = [s for s in made if s.content_hash not in held_out]
    return tuple(made)
