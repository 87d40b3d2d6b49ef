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


# Bad overrides: one line naming what the user typed, never Hydra's multi-line advice to
# append the key with `+` (the models forbid unknown keys, so that advice fails next).


def _problem(name: str, overrides: list[str]) -> str:
    with pytest.raises(ConfigError) as caught:
        compose(name, overrides)
    return str(caught.value)


def test_a_misspelt_key_is_named_with_the_closest_known_key_on_one_line() -> None:
    message = _problem("eval", ["epoch=2"])
    assert "\n" not in message
    assert message.startswith("unknown key 'epoch' (did you mean 'epochs'?); known keys: ")
    assert "+epoch" not in message


def test_a_misspelt_nested_key_is_named_with_its_closest_known_key() -> None:
    message = _problem("grpo", ["trainer.max_step=2"])
    assert message.startswith("unknown key 'trainer.max_step' (did you mean 'trainer.max_steps'?)")


def test_an_override_that_does_not_parse_is_quoted_on_one_line() -> None:
    for bad, reason in (
        ("epochs=[1", "no viable alternative at input '[1'"),
        ("epochs", "missing EQUAL"),
    ):
        message = _problem("eval", ["seed=1", bad])
        assert "\n" not in message
        assert message.startswith(f"override '{bad}' does not parse: ")
        assert reason in message
        assert "known keys" not in message


def test_a_new_entry_of_a_named_table_is_advised_with_plus() -> None:
    # `suites` maps names to lists: a new suite is an addition, which Hydra spells `+`
    message = _problem("leaderboard", ["suites.mine=[{env: math_tools}]"])
    assert "\n" not in message
    assert "to add an entry to 'suites', write +suites.mine=[{env: math_tools}]" in message


def test_a_required_key_removed_is_named_without_dumping_the_config() -> None:
    from evals.run import EvalConfig

    with pytest.raises(ConfigError) as caught:
        load("eval", ["~env"], EvalConfig)
    assert str(caught.value) == "env: required, but not set"


def test_a_key_added_with_plus_that_the_model_does_not_know_is_an_unknown_key() -> None:
    from evals.run import EvalConfig

    with pytest.raises(ConfigError) as caught:
        load("eval", ["+epoch=2"], EvalConfig)
    assert str(caught.value).startswith("unknown key 'epoch' (did you mean 'epochs'?); known keys:")
