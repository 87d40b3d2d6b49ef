"""The letter_count env: count a letter in a word with the `count_letter` tool.

Everything the gym needs is declared on the class: tools, rewards and weights, which
components define success, splits and slices, the expert and failure-mode policies,
promotion rules and headline metrics.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar, Literal

import numpy as np

from toolgym import (
    Message,
    RewardFn,
    Scenario,
    Tool,
    ToolEnv,
    Trajectory,
    tagged_answer,
    tool,
    tool_execution,
)

WORDS = ("strawberry", "banana", "mississippi", "bookkeeper", "committee", "parallel")


class LetterScenario(Scenario):
    env: Literal["letter_count"] = "letter_count"
    word: str
    letter: str


@tool
def count_letter(ctx: Any, word: str, letter: str) -> int:
    """Count how often a letter occurs in a word.

    Args:
        word: the word to search.
        letter: a single letter.
    """
    return word.count(letter)


def correct(trajectory: Trajectory, scenario: Any) -> float:
    answer = tagged_answer(trajectory.final_answer or "")
    expected = scenario.word.count(scenario.letter)
    return float(answer is not None and answer.isdecimal() and int(answer) == expected)


def generate(split: str) -> list[LetterScenario]:
    """24 questions per split; train drops any question the frozen eval split asks."""
    rng = np.random.default_rng({"train": 1, "eval": 2}[split])
    made = []
    for i in range(24):
        word = str(rng.choice(WORDS))
        letter = str(rng.choice(sorted(set(word))))
        slice_name = "repeated" if word.count(letter) > 1 else "single"
        made.append(
            LetterScenario(
                id=f"{split}-{i}",
                slices=[slice_name],
                now=datetime(2026, 1, 1),
                word=word,
                letter=letter,
                split=split,
            )
        )
    if split == "train":
        held_out = {s.content_hash for s in generate("eval")}
        made = [s for s in made if s.content_hash not in held_out]
    return made


class LetterCountEnv(ToolEnv):
    env_name: ClassVar[str] = "letter_count"
    description: ClassVar[str] = "Count a letter in a word with a tool."
    default_max_turns: ClassVar[int] = 4
    scenario_type: ClassVar[type[Scenario]] = LetterScenario
    tools: ClassVar[Sequence[Tool]] = (count_letter,)
    rewards: ClassVar[Mapping[str, RewardFn]] = {
        "correct": correct,
        "tool_execution": tool_execution,
    }
    default_weights: ClassVar[Mapping[str, float]] = {"correct": 1.0, "tool_execution": 0.5}
    success_components: ClassVar[Sequence[str]] = ("correct",)
    slices: ClassVar[Sequence[str]] = ("single", "repeated")
    policies: ClassVar[Mapping[str, str]] = {
        "expert": "letter_count_env.policies:Expert",
        "guesser": "letter_count_env.policies:Guesser",
    }
    expert: ClassVar[str | None] = "expert"
    failure_modes: ClassVar[Sequence[str]] = ("guesser",)
    demo_mix: ClassVar[Mapping[str, float]] = {"guesser": 0.25}
    promotion_rules: ClassVar[str | None] = "letter_count_env:rules/letter_count.rules"
    headline_metrics: ClassVar[Sequence[str]] = ("success@1", "reward.correct")
    data_files: ClassVar[Sequence[str]] = ("letter_count_env:rules",)

    @classmethod
    def load_split(cls, split: str) -> list[Scenario]:
        return list(generate(split))

    def opening_messages(self, scenario: Scenario) -> list[Message]:
        assert isinstance(scenario, LetterScenario)
        return [
            Message(role="system", content="Use count_letter, then reply <answer>N</answer>."),
            Message(role="user", content=f"How many {scenario.letter}'s are in {scenario.word}?"),
        ]
