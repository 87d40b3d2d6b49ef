"""Config loading: the YAML files are the one source of defaults.

Every entry point's pydantic model, built with no arguments beyond the required ones, must
give the same values as composing its YAML with no overrides: otherwise code that builds
a config object (the trainers' evals, the leaderboard) and a user on the command line get
different runs from the "same" defaults.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from configs import ConfigError, compose, load


def _models() -> list[tuple[str, type[BaseModel]]]:
    from evals.run import EvalConfig
    from trainers.grpo import GRPORunConfig
    from trainers.sft import SFTRunConfig

    return [("eval", EvalConfig), ("sft", SFTRunConfig), ("grpo", GRPORunConfig)]


def _defaults_of(model: type[BaseModel], raw: dict[str, Any]) -> dict[str, Any]:
    """The model's own defaults, filling only what it requires from the YAML."""
    required = {k: raw[k] for k, f in model.model_fields.items() if f.is_required()}
    return model.model_validate(required).model_dump(mode="json")


@pytest.mark.parametrize(("name", "model"), _models())
def test_model_defaults_equal_the_yaml(name: str, model: type[BaseModel]) -> None:
    raw = compose(name)
    from_yaml = model.model_validate(raw).model_dump(mode="json")
    from_code = _defaults_of(model, raw)
    differing = {
        key: (from_code.get(key), from_yaml[key])
        for key in from_yaml
        if not model.model_fields[key].is_required() and from_code.get(key) != from_yaml[key]
    }
    assert not differing, f"configs/{name}.yaml and its model disagree: {differing}"


def test_a_bad_value_names_the_key_and_the_input() -> None:
    from evals.run import EvalConfig

    with pytest.raises(ConfigError, match=r"^epochs: Input should be greater than or equal to 1"):
        load("eval", ["epochs=0"], EvalConfig)
