"""The multi-turn tool-using environment contract (`ToolEnv`).

* `reset(seed=None, options=None) -> (observation, info)`: picks a scenario (from
  `options["scenario"]`, `options["scenario_id"]`, or drawn with the seeded rng), builds a
  fresh sandbox (frozen clock, database, fault plan) and returns the conversation so
  far: a list of chat messages (system prompt with the rules, the customer's opening
  message). `info` holds the scenario id, slices and the tool schemas.
* `step(action) -> (observation, reward, terminated, truncated, info)`: `action` is the
  raw assistant text (Hermes `<tool_call>` blocks, `<think>`, `<answer>`) or an
  OpenAI-style message dict. Every tool call is parsed, validated and run; each becomes
  a `tool` message. A reply without tool calls goes to the user simulator: if it
  answers, the episode goes on; otherwise the reply is final. The observation is the
  whole conversation so far (a fresh list every call).
  - `terminated`: a final reply, an episode-ending tool (escalation), or a handoff end.
  - `truncated`: the turn limit was reached.
  - `reward`: 0.0 until the episode ends, then the weighted total of the reward
    components (sparse, so the returns of a whole episode sum to the total).
  - `info`: `turn`, `new_messages` and this turn's `tool_calls`; on the last step also
    `reward_components`, `success`, `termination` and the `trajectory` record.
* A malformed action never raises: it is an error observation, recorded on the
  trajectory with its kind, and a penalty through the rewards.
* A tool or hook that raises `InfrastructureError` (our sandbox or service failed, after
  its own retries) ends the episode with `Termination.INFRA_ERROR`, unscored: it is
  infrastructure, not behaviour. Injected faults stay observations.

Subclasses supply scenarios, tools, the opening messages, optionally a user simulator
and `finish()` (end-of-episode checks). Multi-agent envs set `agent` (the role acting
now); messages and tool calls carry it, and `Termination.HANDOFF_END` ends such episodes.
"""

from __future__ import annotations

import copy
import string
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Protocol

import gymnasium as gym
import numpy as np

from core.episode import EpisodeStart, StepResult
from core.records import (
    InfrastructureError,
    Message,
    Termination,
    ToolCallRecord,
    Trajectory,
    fast_record,
)
from rewards.spec import RewardFn, RewardSpec, Rubric
from scenarios.schema import Scenario
from tools.calls import ParsedAction, parse_action
from tools.sandbox import Sandbox
from tools.schema import Tool, render_tools_prompt
from tools.toolbox import Toolbox

ROLES = ("system", "user", "assistant", "tool")


class Conversation(gym.spaces.Space[list[dict[str, Any]]]):
    """Observation space: a list of chat messages `{"role": ..., "content": ...}`."""

    WORDS = ("order", "refund", "late", "lost", "help", "please", "42", "thanks", "?")

    def __init__(self, seed: int | None = None) -> None:
        super().__init__(shape=None, dtype=None, seed=seed)

    @property
    def is_np_flattenable(self) -> bool:
        return False

    def contains(self, x: Any) -> bool:
        return isinstance(x, list) and all(
            isinstance(m, dict) and m.get("role") in ROLES and isinstance(m.get("content"), str)
            for m in x
        )

    def sample(self, mask: Any = None, probability: Any = None) -> list[dict[str, Any]]:
        rng = self.np_random
        count = int(rng.integers(1, 4))
        return [
            {
                "role": str(rng.choice(ROLES)),
                "content": " ".join(rng.choice(self.WORDS, size=int(rng.integers(1, 6)))),
            }
            for _ in range(count)
        ]

    def __repr__(self) -> str:
        return "Conversation()"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Conversation)


class AssistantText(gym.spaces.Text):
    """Action space: raw assistant text (any characters) or an OpenAI-style message dict."""

    def __init__(self, max_length: int = 16384, seed: int | None = None) -> None:
        super().__init__(max_length, min_length=0, charset=string.printable, seed=seed)

    def contains(self, x: Any) -> bool:
        if isinstance(x, dict):
            return isinstance(x.get("content", ""), str | None)
        return isinstance(x, str) and len(x) <= self.max_length


class UserSimulator(Protocol):
    """Plays the customer. Returns the next user message, or None: the reply was final."""

    def reply(
        self, agent_text: str, scenario: Any, history: list[dict[str, Any]]
    ) -> str | None: ...


class ToolEnv(gym.Env[list[dict[str, Any]], str]):
    """A multi-turn tool-using env, declared by class attributes (see docs/writing-an-env.md).

    The declarations are read by the trainers, the eval harness, the reward audit and the
    leaderboard (through `envs.card(name)`); nothing there is specific to one env.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi"]}
    # ---- declarations (override in a subclass) -----------------------------------------
    env_name: ClassVar[str] = "tool_env"
    gym_id: ClassVar[str | None] = None  # default: toolgym/<CamelName>-v0
    description: ClassVar[str] = ""
    default_max_turns: ClassVar[int] = 10
    scenario_type: ClassVar[type[Scenario]] = Scenario
    tools: ClassVar[Sequence[Tool]] = ()
    rewards: ClassVar[Mapping[str, RewardFn]] = {}
    default_weights: ClassVar[Mapping[str, float]] = {}
    success_components: ClassVar[Sequence[str]] = ()  # all at 1.0 = success
    splits: ClassVar[Sequence[str]] = ("train", "eval")
    slices: ClassVar[Sequence[str]] = ()  # slice names scenarios may carry
    policies: ClassVar[Mapping[str, str]] = {}  # name -> "module:Class" (scripted policies)
    expert: ClassVar[str | None] = None  # key of `policies`: the honest expert
    failure_modes: ClassVar[Sequence[str]] = ()  # keys of `policies`: known bad behaviours
    adversaries: ClassVar[Sequence[str]] = ()  # keys of `policies`: env-specific reward hacks
    demo_mix: ClassVar[Mapping[str, float]] = {}  # SFT demonstration shares (default: expert)
    promotion_rules: ClassVar[str | None] = None  # "package:path/in/package.rules"
    headline_metrics: ClassVar[Sequence[str]] = ("success@1", "reward")
    data_files: ClassVar[Sequence[str]] = ()  # "package:folder" fixtures for the manifest

    def __init__(
        self,
        split: str = "train",
        *,
        scenarios: Sequence[Scenario] | None = None,
        reward_weights: Mapping[str, float] | None = None,
        max_turns: int | None = None,
        tools_in_prompt: bool = False,
        render_mode: str | None = None,
        rubric: Rubric | None = None,
        toolbox: Toolbox | None = None,
    ) -> None:
        name = type(self).__name__
        if scenarios is None:
            scenarios = self.load_split(split)
        if not scenarios:
            raise ValueError(f"{name}: no scenarios to run (split '{split}')")
        wrong = next((s for s in scenarios if not isinstance(s, self.scenario_type)), None)
        if wrong is not None:
            raise TypeError(
                f"{name}: scenario '{getattr(wrong, 'id', wrong)!s:.80}' is a "
                f"{type(wrong).__name__}, expected a {self.scenario_type.__name__}"
            )
        undeclared = [
            (s.id, name) for s in scenarios for name in s.slices if name not in self.slices
        ]
        if self.slices and undeclared:
            scenario_id, slice_name = undeclared[0]
            raise ValueError(
                f"{name}: scenario '{scenario_id}' has slice '{slice_name}', which the env does "
                f"not declare (declared: {', '.join(self.slices)})"
            )
        self.split = split
        self.scenarios = list(scenarios)
        self._by_id = {s.id: s for s in self.scenarios}
        spec = self.reward_spec().with_overrides(reward_weights)
        self.rubric = rubric or Rubric(self.rewards, spec)
        if not self.rubric.spec.success:
            raise ValueError(f"{name}: declare success_components (the components of success)")
        self.toolbox = toolbox or Toolbox(self.tools)
        if max_turns is not None and (isinstance(max_turns, bool) or max_turns < 1):
            raise ValueError(f"{name}: max_turns must be >= 1, got {max_turns!r}")
        self.max_turns = self.default_max_turns if max_turns is None else max_turns
        # For policies that get no `tools=` (plain completion endpoints): schemas in the prompt.
        self.tools_in_prompt = tools_in_prompt
        self.render_mode = render_mode
        self.observation_space = Conversation()
        self.action_space = AssistantText()
        self.agent: str | None = None
        self.scenario: Scenario | None = None
        self.sandbox: Sandbox | None = None
        self.trajectory: Trajectory | None = None
        self._chat: list[dict[str, Any]] = []
        self.episode_tools = self.toolbox
        self._subsets: dict[tuple[str, ...], Toolbox] = {}

    @classmethod
    def reward_spec(cls) -> RewardSpec:
        """The declared default weights and success components."""
        unknown = sorted(set(cls.default_weights) - set(cls.rewards))
        if unknown:
            raise ValueError(f"{cls.__name__}: default_weights name unknown component(s) {unknown}")
        return RewardSpec(weights=dict(cls.default_weights), success=tuple(cls.success_components))

    @classmethod
    def load_split(cls, split: str) -> list[Scenario]:
        """The scenarios of a named split (override: read files, run generators)."""
        raise ValueError(f"{cls.__name__}: no scenarios given and no split loader")

    # ---- hooks for subclasses -------------------------------------------------------
    def build_sandbox(self, scenario: Scenario, rng: np.random.Generator) -> Sandbox:
        return Sandbox(now=scenario.now, faults=scenario.faults, rng=rng)

    def opening_messages(self, scenario: Scenario) -> list[Message]:
        raise NotImplementedError

    def user_reply(self, parsed: ParsedAction) -> str | None:
        """Answer a reply that has no tool call; None means the reply was final."""
        return None

    def finish(self, trajectory: Trajectory, scenario: Scenario, sandbox: Sandbox) -> None:
        """Set `success`, `checks` and `violations` once the episode is scored."""

    # ---- the episode protocol (core.episode) ------------------------------------------
    def begin(
        self,
        scenario: Scenario | str | None = None,
        *,
        seed: int | None = None,
        epoch: int = 0,
        policy: str = "",
    ) -> EpisodeStart:
        """Start an episode on `scenario` (object, id, or None: drawn with the seed)."""
        super().reset(seed=seed)
        chosen = self._choose(scenario)
        self.scenario = chosen
        self.sandbox = self.build_sandbox(chosen, self.np_random)
        self.episode_tools = self._toolbox_for(chosen)
        self.agent = None
        opening = self.opening_messages(chosen)
        if self.tools_in_prompt and opening and opening[0].role == "system":
            system = opening[0].content + "\n\n" + render_tools_prompt(self._fresh_tools())
            opening[0] = Message(role="system", content=system)
        self._chat = [m.to_chat() for m in opening]
        tools = self._fresh_tools()
        self.trajectory = Trajectory(
            env_id=self.env_name,
            scenario_id=chosen.id,
            scenario_hash=chosen.content_hash,
            seed=seed,
            slices=list(chosen.slices),
            split=chosen.split,
            policy=policy or None,
            epoch=epoch,
            messages=opening,
            tools=tools,
            turns=0,
        )
        return EpisodeStart(
            messages=[_copy_message(m) for m in self._chat],
            tools=self._fresh_tools(),
            scenario_id=chosen.id,
            slices=list(chosen.slices),
            agent=self.agent,
        )

    def advance(self, action: str | dict[str, Any]) -> StepResult:
        """Play one assistant turn; return only what is new (see `core.episode`)."""
        trajectory, sandbox = self.trajectory, self.sandbox
        if trajectory is None or sandbox is None or trajectory.done:
            raise gym.error.ResetNeeded("call reset() before step(), and after an episode ends")
        turn = trajectory.turns + 1
        trajectory.__dict__["turns"] = turn  # set at begin; pydantic's __setattr__ is slow
        action = self._bounded(action)
        parsed = parse_action(action)
        self._append(_assistant_message(action, parsed, self.agent))
        first_new, calls_before = len(self._chat), len(trajectory.tool_calls)
        try:
            ended, records = self._run_calls(parsed, turn, sandbox)
            if not parsed.calls and ended is None:
                reply = self.user_reply(parsed)
                if reply is None:
                    ended = Termination.FINAL_ANSWER
                    trajectory.final_answer = parsed.content
                else:
                    self._append(Message(role="user", content=reply))
        except InfrastructureError as exc:  # ours, not the policy's: end unscored
            self.abort(Termination.INFRA_ERROR, str(exc))
            return StepResult(
                assistant=_copy_message(self._chat[first_new - 1]),
                new_messages=[_copy_message(m) for m in self._chat[first_new:]],
                tool_calls=trajectory.tool_calls[calls_before:],
                terminated=True,
                trajectory=trajectory,
                turn=turn,
            )
        max_turns = (self.scenario.max_turns if self.scenario else None) or self.max_turns
        truncated = ended is None and turn >= max_turns
        result = StepResult(
            assistant=_copy_message(self._chat[first_new - 1]),
            new_messages=[_copy_message(m) for m in self._chat[first_new:]],
            tool_calls=records,
            terminated=ended is not None,
            truncated=truncated,
            turn=turn,
        )
        if ended is not None or truncated:
            result.reward = self._end(ended or Termination.TURN_LIMIT)
            result.trajectory = trajectory
        return result

    def abort(self, cause: Termination, detail: str) -> Trajectory:
        """End the live episode for an infrastructure cause: recorded, not scored."""
        trajectory = self.trajectory
        if trajectory is None:
            raise gym.error.ResetNeeded("abort() needs a started episode")
        if not trajectory.done:
            trajectory.termination = cause
            trajectory.info[cause.value] = detail
        return trajectory

    # ---- the Gymnasium API (a thin layer over the protocol) ------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        options = options or {}
        scenario = options.get("scenario", options.get("scenario_id"))
        start = self.begin(scenario, seed=seed)
        info = {"scenario_id": start.scenario_id, "slices": start.slices, "tools": start.tools}
        return start.messages, info

    def step(
        self, action: str | dict[str, Any]
    ) -> tuple[list[dict[str, Any]], float, bool, bool, dict[str, Any]]:
        result = self.advance(action)
        info: dict[str, Any] = {
            "turn": result.turn,
            "new_messages": result.new_messages,
            "tool_calls": result.tool_calls,
        }
        if result.trajectory is not None:
            trajectory = result.trajectory
            info.update(
                reward_components=dict(trajectory.reward_components),
                success=trajectory.success,
                termination=trajectory.termination.value if trajectory.termination else None,
                trajectory=trajectory,
            )
        return self._observation(), result.reward, result.terminated, result.truncated, info

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        return "\n".join(f"[{m['role']}] {m['content']}" for m in self._chat)

    # ---- internals ------------------------------------------------------------------
    def _choose(self, scenario: Scenario | str | None) -> Scenario:
        if scenario is None:
            return self.scenarios[int(self.np_random.integers(len(self.scenarios)))]
        if isinstance(scenario, str):
            if scenario not in self._by_id:
                raise KeyError(f"{self.env_name}: no scenario with id '{scenario}'")
            return self._by_id[scenario]
        if not isinstance(scenario, self.scenario_type):
            raise TypeError(
                f"{self.env_name}: scenario '{getattr(scenario, 'id', scenario)!s:.80}' is a "
                f"{type(scenario).__name__}, expected a {self.scenario_type.__name__}"
            )
        return scenario

    def _bounded(self, action: str | dict[str, Any]) -> str | dict[str, Any]:
        """Hold an action to the action space's `max_length` (longer text is cut off)."""
        limit = self.action_space.max_length
        if isinstance(action, str):
            if len(action) <= limit:
                return action
            text = action
        elif isinstance(action, dict):
            if _dict_size(action, limit) <= limit:
                return action
            content = action.get("content")
            text = content if isinstance(content, str) else ""
        else:
            text = f"{action!r:.{limit}}"
        assert self.trajectory is not None
        self.trajectory.info["oversized_turns"] = self.trajectory.info.get("oversized_turns", 0) + 1
        return text[:limit]

    def _run_calls(
        self, parsed: ParsedAction, turn: int, sandbox: Sandbox
    ) -> tuple[Termination | None, list[ToolCallRecord]]:
        records: list[ToolCallRecord] = []
        assert self.trajectory is not None
        for index, call in enumerate(parsed.calls):
            outcome = self.episode_tools.run(call, sandbox)
            call_id = call.call_id or f"call_{turn}_{index}"
            records.append(
                fast_record(
                    ToolCallRecord,
                    {
                        "turn": turn,
                        "index": index,
                        "call_id": call_id,
                        "raw": call.raw,
                        "name": call.name,
                        "arguments": outcome.arguments,
                        "valid": outcome.valid,
                        "error_kind": outcome.error_kind,
                        "error": outcome.text if outcome.error_kind else None,
                        "result": None if outcome.error_kind else outcome.text,
                        "execution": outcome.execution,
                        "agent": self.agent,
                    },
                )
            )
            self._append(
                fast_record(
                    Message,
                    {
                        "role": "tool",
                        "content": outcome.text,
                        "tool_calls": None,
                        "tool_call_id": call_id,
                        "name": call.name or "invalid_call",
                    },
                )
            )
            if outcome.aborts is not None:
                self.trajectory.tool_calls.extend(records)
                raise InfrastructureError(outcome.aborts)
            if outcome.ends_episode is not None:
                self.trajectory.tool_calls.extend(records)
                return outcome.ends_episode, records
        self.trajectory.tool_calls.extend(records)
        return None, records

    def _end(self, termination: Termination) -> float:
        trajectory, scenario, sandbox = self.trajectory, self.scenario, self.sandbox
        assert trajectory is not None and scenario is not None and sandbox is not None
        trajectory.termination = termination
        trajectory.end_state = sandbox.snapshot()
        total, components = self.rubric.score(trajectory, scenario)
        trajectory.reward = total
        trajectory.reward_components = components
        trajectory.success = self.rubric.succeeded(components)
        self.finish(trajectory, scenario, sandbox)
        return total

    def _append(self, message: Message) -> None:
        assert self.trajectory is not None
        self.trajectory.messages.append(message)
        self._chat.append(message.to_chat() if message.tool_calls else _plain(message))

    def _observation(self) -> list[dict[str, Any]]:
        # Nested tool_calls are copied too: a caller must not reach the env's own records.
        return [_copy_message(m) for m in self._chat]

    def _fresh_tools(self) -> list[dict[str, Any]]:
        """A private copy of this episode's tool schemas (cheaper than deepcopy)."""
        return self.episode_tools.schemas_copy()

    def _toolbox_for(self, scenario: Scenario) -> Toolbox:
        """The tools a scenario offers: its own subset of the env's tools, or all of them."""
        if scenario.tools is None:
            return self.toolbox
        key = tuple(scenario.tools)
        if key not in self._subsets:
            try:
                self._subsets[key] = self.toolbox.subset(key)
            except KeyError as exc:
                raise ValueError(f"{self.env_name}: scenario '{scenario.id}': {exc}") from None
        return self._subsets[key]


def _copy_message(message: dict[str, Any]) -> dict[str, Any]:
    """A copy a caller may mutate: chat dicts are flat except an assistant's tool_calls."""
    copied = message.copy()
    if "tool_calls" in copied:  # only an assistant's structured calls nest (see `_append`)
        copied["tool_calls"] = copy.deepcopy(copied["tool_calls"])
    return copied


def _dict_size(action: dict[str, Any], limit: int) -> int:
    """Characters of text in an OpenAI-style message (stops counting past `limit`)."""
    size = len(action.get("content") or "") if isinstance(action.get("content"), str) else 0
    calls = action.get("tool_calls")
    if isinstance(calls, list):
        for call in calls:
            function = call.get("function") if isinstance(call, dict) else None
            arguments = function.get("arguments") if isinstance(function, dict) else None
            size += len(arguments) if isinstance(arguments, str) else 0
            if size > limit:
                break
    return size


def _plain(message: Message) -> dict[str, Any]:
    chat: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_call_id is not None:
        chat["tool_call_id"] = message.tool_call_id
    if message.name is not None:
        chat["name"] = message.name
    return chat


def _assistant_message(
    action: str | dict[str, Any], parsed: ParsedAction, agent: str | None
) -> Message:
    if isinstance(action, dict) and parsed.requests:
        try:  # the sanitised copies of the calls, never the caller's own objects
            return Message.model_validate(
                {
                    "role": "assistant",
                    "content": parsed.text,
                    "name": agent,
                    "tool_calls": parsed.requests,
                }
            )
        except ValueError:
            pass  # malformed structure: keep the text; the calls were recorded as errors
    return fast_record(
        Message,
        {
            "role": "assistant",
            "content": parsed.text,
            "tool_calls": None,
            "tool_call_id": None,
            "name": agent,
        },
    )
