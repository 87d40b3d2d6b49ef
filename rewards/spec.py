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


SUCCESS_AT = 1.0 - 1e-9  # a component's maximum is 1.0; allow float noise


class RewardError(RuntimeError):
    pass


class RewardSpec(BaseModel):
    """Weights per component name, and the components that define success.

    Components not named in `weights` get weight 0 (logged only). An episode succeeds
    when every component named in `success` reaches its maximum (1.0).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    weights: dict[str, float]
    success: tuple[str, ...] = ()

    def with_overrides(self, weights: Mapping[str, float] | None) -> RewardSpec:
        """This spec with some weights replaced; the others keep their values."""
        if not weights:
            return self
        return self.model_copy(update={"weights": {**self.weights, **dict(weights)}})

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
        unknown_success = sorted(set(spec.success) - set(functions))
        if unknown_success:
            raise ValueError(
                f"reward spec's success names unknown component(s) {unknown_success}; "
                f"known components: {sorted(functions)}"
            )
        self.functions = dict(functions)
        self.spec = spec
        self.weights = {name: spec.weights.get(name, 0.0) for name in functions}

    def succeeded(self, components: Mapping[str, float]) -> bool:
        """Success, defined once: every success component at its maximum (1.0)."""
        return bool(self.spec.success) and all(
            components.get(name, 0.0) >= SUCCESS_AT for name in self.spec.success
        )

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
