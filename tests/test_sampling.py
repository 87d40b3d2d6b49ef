"""One definition of sampling settings (`core.sampling`), read the same way by every policy."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from core.sampling import Sampling


def test_greedy_clears_the_generation_configs_sampling_defaults() -> None:
    assert Sampling(temperature=0.0, top_p=0.5, top_k=7).generate_kwargs() == {
        "do_sample": False,
        "temperature": None,
        "top_p": None,
        "top_k": None,
    }


def test_sampling_passes_top_k_zero_explicitly_so_no_default_cut_applies() -> None:
    # a model's generation config often says top_k=50: 0 must reach `generate` as 0
    assert Sampling(temperature=0.8, top_p=0.95).generate_kwargs() == {
        "do_sample": True,
        "temperature": 0.8,
        "top_p": 0.95,
        "top_k": 0,
    }


def test_openai_params_name_the_turn_budget_max_tokens() -> None:
    params = Sampling(temperature=0.3, top_p=0.9, top_k=0, max_turn_tokens=40).openai_params()
    assert params == {"temperature": 0.3, "top_p": 0.9, "max_tokens": 40}
    assert Sampling(top_k=5).openai_params()["top_k"] == 5


@pytest.mark.parametrize(
    ("field", "value"),
    [("temperature", -0.1), ("top_p", 0.0), ("top_p", 1.5), ("top_k", -1), ("max_turn_tokens", 0)],
)
def test_out_of_range_settings_are_refused_naming_the_field(field: str, value: float) -> None:
    with pytest.raises(ValidationError, match=field):
        Sampling(**{field: value})


def test_the_old_eval_key_max_new_tokens_is_refused_not_ignored() -> None:
    with pytest.raises(ValidationError, match="max_new_tokens"):
        Sampling.model_validate({"max_new_tokens": 8})


def test_trainer_rollouts_and_evals_build_the_same_settings_type() -> None:
    pytest.importorskip("trl")
    from evals.run import EvalConfig
    from trainers.backends.trl import sampling_of

    trainer = {
        "temperature": 1.0,
        "top_p": 0.8,
        "top_k": 0,
        "max_turn_tokens": 128,
        "max_episode_tokens": 768,
    }
    rollout = sampling_of(trainer, seed=3)
    evaluated = EvalConfig(env=["math_tools"], policy="expert", sampling=trainer).sampling
    assert rollout == evaluated.model_copy(update={"seed": 3})
    assert rollout.generate_kwargs() == evaluated.generate_kwargs()
