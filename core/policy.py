"""The policy contract: many observations in, many assistant messages out.

Defined here, at the bottom of the import graph, because the one rollout loop
(`envs/rollout.py`) drives policies and envs must not import upward. `policies/` holds
the implementations (scripted, Hugging Face, OpenAI-compatible HTTP).

A policy answers a batch of `PolicyRequest`s (one per live episode) with one
`PolicyResponse` each, in order. It may report tokens and latency; the rollout loop
records them on the trajectory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(slots=True)
class PolicyRequest:
    messages: list[dict[str, Any]]  # the conversation so far, OpenAI/HF chat format
    tools: list[dict[str, Any]]  # JSON function schemas offered this episode
    env_id: str = ""
    scenario_id: str = ""
    seed: int | None = None
    turn: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class PolicyResponse:
    text: str = ""  # raw assistant text (Hermes <tool_call> blocks allowed)
    message: dict[str, Any] | None = None  # or an OpenAI-style message with tool_calls
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_ms: float | None = None

    @property
    def action(self) -> str | dict[str, Any]:
        return self.message if self.message is not None else self.text


@runtime_checkable
class Policy(Protocol):
    name: str

    def act(self, requests: Sequence[PolicyRequest]) -> list[PolicyResponse]: ...
