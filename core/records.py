"""The records that cross module boundaries: one episode is one `Trajectory`.

Training (GRPO groups), evaluation (slices, metrics), SFT export and the leaderboard all
read the same record, so every fact about an episode lives here once:

* `Message`          one chat turn, OpenAI-style (role, content, tool_calls, tool_call_id).
* `ToolCallRecord`   one tool call the agent made: raw text, parsed arguments, the
                     validation outcome, the result or the error kind, and how the env
                     graded the execution (`ok`, `wrong`, `error`, `fault`).
* `Trajectory`       the whole episode: scenario, seed, slice tags, messages, tool calls,
                     termination reason, reward and its named components, per-episode
                     checks and rule violations, end state, tokens and timings.

Records are pydantic models; `Trajectory.to_json()` / `Trajectory.from_json()` round-trip
without loss (tests check this), and JSONL files hold one trajectory per line. `to_json()`
never fails: hostile values are replaced deterministically (`core.sanitize`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.sanitize import sanitize

BaseModelT = TypeVar("BaseModelT", bound=BaseModel)
Role = Literal["system", "user", "assistant", "tool"]


class ErrorKind(StrEnum):
    """Why a tool call did not run cleanly. The agent sees the message; logs see the kind."""

    MALFORMED_JSON = "malformed_json"
    MISSING_NAME = "missing_name"
    UNKNOWN_TOOL = "unknown_tool"
    MISSING_ARGUMENT = "missing_argument"
    UNEXPECTED_ARGUMENT = "unexpected_argument"
    TYPE_MISMATCH = "type_mismatch"
    INVALID_VALUE = "invalid_value"
    TOOL_EXCEPTION = "tool_exception"
    # Injected by a scenario's fault plan: the infrastructure failed, not the agent.
    SERVICE_ERROR = "service_error"
    TIMEOUT = "timeout"

    @property
    def is_agent_error(self) -> bool:
        """True when the agent's call was at fault (as opposed to an injected fault)."""
        return self not in (ErrorKind.SERVICE_ERROR, ErrorKind.TIMEOUT)


class Execution(StrEnum):
    """The graduated outcome of one tool call (the seed's -2 / -1 / +1 table)."""

    OK = "ok"  # ran and returned the right thing
    WRONG = "wrong"  # ran, but the result is wrong/empty for this task
    ERROR = "error"  # did not run: bad call (type mismatch, unknown tool, ...)
    FAULT = "fault"  # did not run: injected infrastructure failure


class Termination(StrEnum):
    FINAL_ANSWER = "final_answer"
    ESCALATION = "escalation"
    HANDOFF_END = "handoff_end"
    TURN_LIMIT = "turn_limit"
    POLICY_ERROR = "policy_error"  # the policy itself failed (infrastructure, not behaviour)
    INFRA_ERROR = "infra_error"  # our side failed (a sandbox, a service of ours): not scored

    @property
    def is_infrastructure(self) -> bool:
        """The episode was lost to infrastructure: retried, reported apart, never scored."""
        return self in (Termination.POLICY_ERROR, Termination.INFRA_ERROR)


class InfrastructureError(RuntimeError):
    """Raised by a tool or hook when our own infrastructure failed (after its own retries).

    The env ends the episode with `Termination.INFRA_ERROR` instead of scoring it: a
    crashed sandbox is not the policy's mistake. Injected faults (the scenario's HTTP 500s)
    are not this: they are observations the policy must handle."""


class Fault(BaseModel):
    """One injected failure: `tool` fails its first `first_n` calls (or every call if None)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    tool: str
    kind: Literal["http_500", "timeout"] = "http_500"
    first_n: int | None = Field(default=None, ge=1)


class FunctionCall(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    arguments: str  # JSON text, as OpenAI sends it


class ToolCallRequest(BaseModel):
    """A structured tool call inside an assistant message (OpenAI shape)."""

    model_config = ConfigDict(extra="forbid")
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Role
    content: str = ""
    tool_calls: list[ToolCallRequest] | None = None
    tool_call_id: str | None = None
    name: str | None = None  # tool name for role=tool; agent name in multi-agent episodes

    def to_chat(self) -> dict[str, Any]:
        """The dict a chat template or an OpenAI endpoint expects (no None fields)."""
        return self.model_dump(exclude_none=True)


class ToolCallRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")
    turn: int
    index: int  # position of the call within its assistant turn
    call_id: str
    raw: str  # the text (or JSON) the call was parsed from
    name: str | None
    arguments: dict[str, Any] | None  # parsed, before validation; None if unparseable
    valid: bool  # passed schema validation
    error_kind: ErrorKind | None = None
    error: str | None = None
    result: str | None = None
    execution: Execution
    agent: str | None = None  # which agent made the call (multi-agent episodes)


class TokenUsage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompt: int = 0
    completion: int = 0


class Trajectory(BaseModel):
    """One finished (or partial) episode. The single record every consumer reads."""

    model_config = ConfigDict(extra="forbid")
    env_id: str
    scenario_id: str
    scenario_hash: str
    seed: int | None
    slices: list[str] = Field(default_factory=list)
    split: str | None = None
    policy: str | None = None
    epoch: int = 0
    messages: list[Message] = Field(default_factory=list)
    tools: list[dict[str, Any]] = Field(default_factory=list)  # JSON schemas offered
    tool_calls: list[ToolCallRecord] = Field(default_factory=list)
    turns: int = 0  # assistant turns taken
    termination: Termination | None = None
    final_answer: str | None = None
    reward: float = 0.0
    reward_components: dict[str, float] = Field(default_factory=dict)
    success: bool = False
    checks: dict[str, bool] = Field(default_factory=dict)  # named pass/fail verifiers
    violations: list[str] = Field(default_factory=list)  # rule violations observed
    end_state: dict[str, Any] = Field(default_factory=dict)
    tokens: TokenUsage | None = None
    latency_ms: list[float] = Field(default_factory=list)  # one per policy call
    info: dict[str, Any] = Field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.termination is not None

    @property
    def lost_to_infrastructure(self) -> bool:
        """Ended by the policy server or our own side failing: unscored, replayed, apart."""
        return self.termination is not None and self.termination.is_infrastructure

    def to_json(self) -> str:
        """One JSON line. Never raises: a record holding values JSON cannot carry (lone
        surrogates, bytes that are not UTF-8, cycles, deep nesting, objects) is written
        through `core.sanitize`, which replaces them deterministically."""
        try:
            return self.model_dump_json()
        except (ValueError, TypeError, RecursionError):  # PydanticSerializationError is one
            return json.dumps(sanitize(self).value, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, line: str) -> Trajectory:
        return cls.model_validate_json(line)


def fast_record(cls: type[BaseModelT], values: dict[str, Any]) -> BaseModelT:
    """Build a record from already-trusted values, skipping validation (the env's hot path).

    `values` must name every field of `cls` (no defaults are filled in): the same contract
    as pydantic's `model_construct`, at a fraction of its cost.
    """
    record = object.__new__(cls)
    _set_dict(record, values)
    _set_fields_set(record, set(values))
    _set_extra(record, None)
    _set_private(record, None)
    return record


# BaseModel's own slot setters, called directly: half the cost of `object.__setattr__`.
_set_dict = BaseModel.__dict__["__dict__"].__set__
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__


def write_jsonl(path: Path, trajectories: Iterable[Trajectory], *, append: bool = False) -> None:
    """Write trajectories one per line; `append=True` adds to an existing file."""
    with path.open("a" if append else "w", encoding="utf-8") as fh:
        for trajectory in trajectories:
            fh.write(trajectory.to_json() + "\n")


def read_jsonl(path: Path) -> Iterator[Trajectory]:
    """Read trajectories back. A torn last line (a killed writer) is skipped, not fatal."""
    with path.open(encoding="utf-8") as fh:
        lines = fh.readlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield Trajectory.from_json(line)
        except ValueError as exc:
            if number == len(lines) and not line.endswith("\n"):
                return  # the writer died mid-line; the episode will be re-run
            raise ValueError(f"{path}:{number}: not a trajectory record: {_reason(exc)}") from exc


def _reason(exc: ValueError) -> str:
    """The first error of a pydantic ValidationError, with its field; else the message."""
    if not isinstance(exc, ValidationError):
        return str(exc)
    first = exc.errors(include_url=False)[0]
    field = ".".join(str(part) for part in first["loc"])
    return f"{field}: {first['msg']}" if field else first["msg"]
