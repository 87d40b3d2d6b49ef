"""`rewards.tags.tagged_answer`: what the answer tag holds, read in linear time."""

from __future__ import annotations

import time

import pytest

import envs
from rewards.tags import tagged_answer


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The result is <answer> 23 </answer>.", "23"),
        ("<answer>a<answer>b</answer>", "a<answer>b"),  # the first opening, the first closing
        ("<answer>1</answer> then <answer>2</answer>", "1"),
        ("<answer>\n\n</answer>", ""),
        ("<answer>never closed", None),
        ("</answer>5<answer>", None),  # a closing before the opening closes nothing
        ("no tag at all", None),
    ],
)
def test_the_first_closed_answer_is_read_stripped(text: str, expected: str | None) -> None:
    assert tagged_answer(text) == expected


def test_another_tag_is_read_the_same_way() -> None:
    assert tagged_answer("<final> 7 </final><answer>8</answer>", tag="final") == "7"


def test_thousands_of_unclosed_answer_tags_end_a_handoff_episode_in_milliseconds() -> None:
    # `<answer>(.*?)</answer>` rescanned to the end from every opening: 140-390 ms here.
    text = ("<answer><answer>\n" + "<answer>\n" * 3000)[:16384]
    env = envs.make_raw("calculator_handoff", split="eval")
    best = float("inf")
    for seed in range(3):
        env.begin(None, seed=seed)
        start = time.perf_counter()
        result = env.advance(text)
        best = min(best, time.perf_counter() - start)
        assert result.done and result.trajectory.final_answer == text
    assert best * 1000 < 50
