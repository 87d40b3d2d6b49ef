"""The one episode protocol: how anything drives an env.

The rollout loop, the TRL backend, the verl agent loop, the HTTP env server and the reward
audit all play episodes through these three calls, never by reading an env's attributes:

    start = env.begin(scenario, seed=seed, epoch=0, policy="expert")   # -> EpisodeStart
    result = env.advance(action)                                       # -> StepResult
    trajectory = env.abort(Termination.POLICY_ERROR, "timeout after 30 s")

* `begin` takes a scenario object, a scenario id string (unknown id: `KeyError`), or None
  (drawn with the seeded rng). `EpisodeStart` holds fresh copies of the opening messages
  and the tool schemas offered this episode: a caller may mutate them freely.
* `advance` takes the assistant's turn (raw text, or an OpenAI-style message dict) and
  returns a `StepResult` with only what is new: the assistant's turn as the env recorded
  it (`assistant`), the messages the env appended after it (tool results, the simulated
  user's reply), this turn's tool-call records, and, once the episode is over, the
  finished `Trajectory` (reward = the env's weighted total, computed once; every
  component; success).
* `abort` ends a live episode for a cause outside the policy's behaviour (the policy's
  server died, a sandbox crashed): the trajectory records the cause and is not scored.

`EpisodeEnv` is the structural type of anything that speaks the protocol; `envs.base.ToolEnv`
implements it and builds Gymnasium's `reset`/`step` on top.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from core.records import Termination, ToolCallRecord, Trajectory


@dataclass(slots=True)
class EpisodeStart:
    """What a policy sees before its first turn."""

    messages: list[dict[str, Any]]  # opening conversation (system prompt, user's message)
    tools: list[dict[str, Any]]  # JSON function schemas offered this episode
    scenario_id: str
    slices: list[str] = field(default_factory=list)
    agent: str | None = None  # the role the learner plays (multi-agent envs)


@dataclass(slots=True)
class StepResult:
    """What one assistant turn produced: only the new part of the conversation."""

    assistant: dict[str, Any]  # the assistant's turn as the env recorded it
    new_messages: list[dict[str, Any]]  # appended after the assistant's turn
    tool_calls: list[ToolCallRecord]
    reward: float = 0.0  # 0 until the episode ends, then the weighted total
    terminated: bool = False
    truncated: bool = False
    trajectory: Trajectory | None = None  # the finished episode, once done
    turn: int = 0

    @property
    def done(self) -> bool:
        return self.terminated or self.truncated


@runtime_checkable
class EpisodeEnv(Protocol):
    """Anything that plays episodes by the protocol above."""

    env_name: str

    def begin(
        self, scenario: Any = None, *, seed: int | None = None, epoch: int = 0, policy: str = ""
    ) -> EpisodeStart: ...

    def advance(self, action: str | dict[str, Any]) -> StepResult: ...

    def abort(self, cause: Termination, detail: str) -> Trajectory: ...
