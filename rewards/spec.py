"""Reward functions and the spec that weights them.

A reward function is a small pure function `(trajectory, scenario) -> float` with a
name; it may read everything on the trajectory, including its `end_state` (the
sandbox's database and side effects at the end). A `RewardSpec` gives each component a
weight; a `Rubric` scores a trajectory into named components and their weighted total.
A component with weight 0 is still computed and logged, but not trained on. A function
that raises is an error (`RewardError`), never a silent 0.0.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from core.records import Trajectory

RewardFn = Callable[[Trajectory, Any], float]


class RewardError(RuntimeError):
    pass


class RewardSpec(BaseModel):
    """Weights per component name. Components not named get weight 0 (logged only)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    weights: dict[str, float]

    @classmethod
    def from_file(cls, path: Path) -> RewardSpec:
        try:
            data = yaml.safe_load(Path(path).read_text())
            return cls.model_validate(data)
        except (OSError, yaml.YAMLError, ValidationError) as exc:
            raise ValueError(
                f"{path}: not a reward spec ({{'weights': {{name: w}}}}): {exc}"
            ) from exc


class Rubric:
    def __init__(self, functions: Mapping[str, RewardFn], spec: RewardSpec) -> None:
        unknown = sorted(set(spec.weights) - set(functions))
        if unknown:
            raise ValueError(
                f"reward spec names unknown component(s) {unknown}; "
                f"known components: {sorted(functions)}"
            )
        self.functions = dict(functions)
        self.spec = spec
        self.weights = {name: spec.weights.get(name, 0.0) for name in functions}

    @property
    def max_total(self) -> float:
        """The best total any episode can reach (every component at its maximum, 1.0)."""
        return sum(w for w in self.weights.values() if w > 0)

    def score(self, trajectory: Trajectory, scenario: Any) -> tuple[float, dict[str, float]]:
        components: dict[str, float] = {}
        for name, fn in self.functions.items():
            try:
                components[name] = float(fn(trajectory, scenario))
            except Exception as exc:
                raise RewardError(
                    f"reward component '{name}' failed on scenario "
                    f"'{trajectory.scenario_id}': {type(exc).__name__}: {exc}"
                ) from exc
        total = sum(self.weights[name] * value for name, value in components.items())
        return round(total, 10), components
