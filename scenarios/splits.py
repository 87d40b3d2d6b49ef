"""Frozen splits of a generated env, defined once: hand-written cases → train / frozen eval.

An env ships `data/<env>/cases.yaml` (hand-written cases) and `eval.jsonl` (variants drawn
once by `freeze_eval` and kept as a file). `train` is drawn at load time from the cases
with its own seed and drops any scenario whose content hash is in the frozen eval set, so
the two never share a scenario. Each case gets its own generator (`case_rng`: the split's
seed and the case id), so adding a case leaves the other cases' variants unchanged and
re-freezing gives a byte-identical file. Splits are cached per process; `load_split`
returns a fresh list of the same frozen scenarios.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import Generic, TypeVar

import numpy as np

from scenarios.loader import load_scenarios
from scenarios.schema import Scenario

S = TypeVar("S", bound=Scenario)
SPLITS = ("train", "eval", "cases")
# expand(case, rng, n, split=...) -> n variants of one case
Expand = Callable[..., list[S]]


def case_rng(seed: int, case_id: str) -> np.random.Generator:
    """The generator for one case of one split: depends on the seed and the case id only."""
    key = int(hashlib.sha256(case_id.encode()).hexdigest()[:8], 16)
    return np.random.default_rng([seed, key])


class FrozenSplits(Generic[S]):
    def __init__(
        self,
        env: str,
        model: type[S],
        expand: Expand[S],
        *,
        train: tuple[int, int],  # (seed, variants per case)
        eval: tuple[int, int],
    ) -> None:
        self.env, self.model, self.expand = env, model, expand
        self.folder = f"data/{env}"
        self.train, self.eval = train, eval
        self._cache: dict[str, tuple[S, ...]] = {}

    def generate(self, cases: Sequence[S], *, split: str, seed: int, per_case: int) -> list[S]:
        return [
            s
            for case in cases
            for s in self.expand(case, case_rng(seed, case.id), per_case, split=split)
        ]

    def load(self, name: str) -> list[S]:
        """A data file of the env, read as package data."""
        with resources.as_file(resources.files("scenarios").joinpath(self.folder, name)) as path:
            return load_scenarios(Path(path), self.model)

    def freeze_eval(self, path: Path | None = None) -> Path:
        """(Re)write the frozen eval set next to the cases (same cases → same bytes)."""
        seed, per_case = self.eval
        scenarios = self.generate(
            self.load("cases.yaml"), split="eval", seed=seed, per_case=per_case
        )
        target = path or Path(__file__).resolve().parent / self.folder / "eval.jsonl"
        target.write_text("".join(s.model_dump_json() + "\n" for s in scenarios), encoding="utf-8")
        if path is None:
            self._cache.clear()  # the packaged file changed
        return target

    def load_split(self, split: str) -> list[S]:
        if split not in SPLITS:
            raise ValueError(
                f"{self.env} has no split '{split}'; allowed splits: {', '.join(SPLITS)}"
            )
        if split not in self._cache:
            self._cache[split] = tuple(self._build(split))
        return list(self._cache[split])

    def _build(self, split: str) -> list[S]:
        if split == "cases":
            return self.load("cases.yaml")
        if split == "eval":
            return self.load("eval.jsonl")
        held_out = {s.content_hash for s in self.load_split("eval")}
        seed, per_case = self.train
        made = self.generate(self.load_split("cases"), split="train", seed=seed, per_case=per_case)
        return [s for s in made if s.content_hash not in held_out]
