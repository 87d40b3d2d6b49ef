"""How a policy generates: one definition for evals, GRPO rollouts (TRL, verl) and the
in-training eval.

`Sampling` is the `sampling:` section of an eval config, the sampling keys of a trainer
config (`trainer.temperature`, `trainer.top_p`, ...) and what `TokenPolicy` / `HFPolicy` /
`OpenAICompatPolicy` read. `temperature == 0` is greedy. `top_k == 0` means no top-k cut:
it is passed to `generate` explicitly, because a model's generation config often carries
a default of 50 that would otherwise apply silently to evals but not to training.

Budgets: `max_turn_tokens` caps one assistant turn (HF's `max_new_tokens`, OpenAI's
`max_tokens`); `max_episode_tokens` caps every token after the prompt in a training
episode (model and env tokens; `None`: no cap, as in evals), and wins where the two
disagree (the trainers' configs refuse a turn cap above the episode cap). `seed` seeds
the sampling RNG where a policy takes one per call (`TokenPolicy`: seed + call index);
evals seed per batch from the run's seed instead.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Sampling(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    temperature: float = Field(default=0.0, ge=0)
    top_p: float = Field(default=1.0, gt=0, le=1)
    top_k: int = Field(default=0, ge=0)
    max_turn_tokens: int = Field(default=512, ge=1)
    max_episode_tokens: int | None = Field(default=None, ge=1)
    seed: int | None = None

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0

    def generate_kwargs(self) -> dict[str, Any]:
        """The sampling arguments of `transformers` `generate` (budgets left to the caller)."""
        if self.greedy:  # None clears a generation config's own sampling defaults
            return {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        return {
            "do_sample": True,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "top_k": self.top_k,
        }

    def openai_params(self) -> dict[str, Any]:
        """The request fields of an OpenAI-compatible chat completion (vLLM, SGLang, ...).

        `top_k` is not an OpenAI field; it is sent only when set, as vLLM and SGLang read it."""
        params: dict[str, Any] = {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_turn_tokens,
        }
        if self.top_k > 0:
            params["top_k"] = self.top_k
        return params
