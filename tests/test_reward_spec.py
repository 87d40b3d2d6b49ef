"""rewards.spec: a spec file's weights, a rubric's totals and success, worked out by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.records import Trajectory
from rewards.spec import SUCCESS_AT, RewardError, RewardSpec, Rubric


def episode(scenario_id: str = "s-1") -> Trajectory:
    return Trajectory(env_id="toolgym/Test-v0", scenario_id=scenario_id, scenario_hash="h", seed=0)


def constant(value: float):
    return lambda trajectory, scenario: value


FUNCTIONS = {"outcome": constant(1.0), "format": constant(-0.5), "style": constant(0.25)}


def test_spec_file_gives_weights_and_success(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text("weights:\n  outcome: 2.0\n  format: 0.5\nsuccess: [outcome]\n")
    spec = RewardSpec.from_file(path)
    assert spec.weights == {"outcome": 2.0, "format": 0.5}
    assert spec.success == ("outcome",)


def test_spec_file_accepts_a_string_path(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text("weights: {outcome: 1.5}\n")
    spec = RewardSpec.from_file(str(path))  # type: ignore[arg-type]
    assert spec.weights == {"outcome": 1.5} and spec.success == ()


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("weights: {outcome: high}\n", "weights.outcome"),  # not a number
        ("weights: {outcome: 1.0}\nbonus: 2\n", "bonus"),  # unknown key
        ("weights: [outcome\n", "while parsing"),  # not YAML
        ("- 1\n- 2\n", "RewardSpec"),  # YAML, but not a mapping
    ],
)
def test_bad_spec_file_is_a_value_error_naming_the_file(
    tmp_path: Path, text: str, why: str
) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    with pytest.raises(ValueError) as raised:
        RewardSpec.from_file(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: not a reward spec ({{'weights': {{name: w}}}}): ")
    assert why in message


def test_missing_spec_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(ValueError, match=r"absent\.yaml: not a reward spec .*No such file"):
        RewardSpec.from_file(path)


def test_overrides_replace_only_the_named_weights() -> None:
    spec = RewardSpec(weights={"outcome": 2.0, "format": 0.5}, success=("outcome",))
    changed = spec.with_overrides({"format": 0.0, "style": 1.0})
    assert changed.weights == {"outcome": 2.0, "format": 0.0, "style": 1.0}
    assert changed.success == ("outcome",)
    assert spec.weights == {"outcome": 2.0, "format": 0.5}  # the original is unchanged
    assert spec.with_overrides(None) is spec
    assert spec.with_overrides({}) is spec


def test_total_is_the_weighted_sum_and_unnamed_components_weigh_zero() -> None:
    rubric = Rubric(FUNCTIONS, RewardSpec(weights={"outcome": 2.0, "format": 0.5}))
    total, components = rubric.score(episode(), None)
    assert components == {"outcome": 1.0, "format": -0.5, "style": 0.25}
    assert total == 1.75  # 2.0 x 1.0 + 0.5 x -0.5 + 0 x 0.25
    assert rubric.weights == {"outcome": 2.0, "format": 0.5, "style": 0.0}


def test_components_see_the_trajectory_and_the_scenario() -> None:
    def reads_both(trajectory: Trajectory, scenario: dict) -> float:
        return 1.0 if trajectory.scenario_id == "s-9" and scenario["hard"] else -1.0

    rubric = Rubric({"both": reads_both}, RewardSpec(weights={"both": 3.0}))
    assert rubric.score(episode("s-9"), {"hard": True}) == (3.0, {"both": 1.0})


def test_total_is_rounded_to_ten_decimals() -> None:
    rubric = Rubric({"a": constant(1.23456789012345)}, RewardSpec(weights={"a": 1.0}))
    assert rubric.score(episode(), None)[0] == 1.2345678901


def test_max_total_adds_only_positive_weights() -> None:
    spec = RewardSpec(weights={"outcome": 2.0, "format": 0.5, "style": -1.0})
    assert Rubric(FUNCTIONS, spec).max_total == 2.5
    assert Rubric(FUNCTIONS, RewardSpec(weights={})).max_total == 0.0


def test_success_needs_every_success_component_at_its_maximum() -> None:
    rubric = Rubric(FUNCTIONS, RewardSpec(weights={}, success=("outcome", "format")))
    assert rubric.succeeded({"outcome": 1.0, "format": 1.0}) is True
    assert rubric.succeeded({"outcome": 1.0, "format": 0.999}) is False
    assert rubric.succeeded({"outcome": 1.0}) is False  # a missing component is not 1.0
    assert rubric.succeeded({"outcome": SUCCESS_AT, "format": 1.0 - 1e-10}) is True  # float noise
    assert rubric.succeeded({"outcome": 1.0 - 2e-9, "format": 1.0}) is False


def test_without_success_components_nothing_succeeds() -> None:
    rubric = Rubric(FUNCTIONS, RewardSpec(weights={"outcome": 1.0}))
    assert rubric.succeeded({"outcome": 1.0, "format": 1.0, "style": 1.0}) is False


def test_unknown_weight_names_are_refused_listing_the_known_ones() -> None:
    with pytest.raises(ValueError) as raised:
        Rubric(FUNCTIONS, RewardSpec(weights={"outcom": 1.0, "zeta": 1.0}))
    assert str(raised.value) == (
        "reward spec names unknown component(s) ['outcom', 'zeta']; "
        "known components: ['format', 'outcome', 'style']"
    )


def test_unknown_success_names_are_refused_listing_the_known_ones() -> None:
    with pytest.raises(ValueError) as raised:
        Rubric(FUNCTIONS, RewardSpec(weights={}, success=("outcome", "won")))
    assert str(raised.value) == (
        "reward spec's success names unknown component(s) ['won']; "
        "known components: ['format', 'outcome', 'style']"
    )


def test_a_raising_component_is_an_error_naming_it_never_zero() -> None:
    def broken(trajectory: Trajectory, scenario: object) -> float:
        raise KeyError("order_id")

    rubric = Rubric({"outcome": constant(1.0), "truth": broken}, RewardSpec(weights={}))
    with pytest.raises(RewardError) as raised:
        rubric.score(episode("refund-7"), None)
    assert str(raised.value) == (
        "reward component 'truth' failed on scenario 'refund-7': KeyError: 'order_id'"
    )
    assert isinstance(raised.value.__cause__, KeyError)
