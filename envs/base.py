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

Subclasses supply scenarios, tools, the opening messages, optionally a user simulator
and `finish()` (end-of-episode checks). Multi-agent envs set `agent` (the role acting
now); messages and tool calls carry it, and `Termination.HANDOFF_END` ends such episodes.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from typing import Any, ClassVar, Protocol

import gymnasium as gym
import numpy as np

from core.records import Message, Termination, ToolCallRecord, Trajectory, fast_record
from rewards.spec import Rubric
from scenarios.schema import Scenario
from tools.calls import ParsedAction, parse_action
from tools.sandbox import Sandbox
from tools.schema import render_tools_prompt
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
    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi"]}
    env_name: ClassVar[str] = "tool_env"
    default_max_turns: ClassVar[int] = 10

    def __init__(
        self,
        scenarios: Sequence[Scenario],
        *,
        rubric: Rubric,
        toolbox: Toolbox,
        max_turns: int | None = None,
        tools_in_prompt: bool = False,
        render_mode: str | None = None,
    ) -> None:
        if not scenarios:
            raise ValueError(f"{type(self).__name__}: no scenarios to run")
        self.scenarios = list(scenarios)
        self._by_id = {s.id: s for s in self.scenarios}
        self.rubric = rubric
        self.toolbox = toolbox
        self.max_turns = max_turns or self.default_max_turns
        # For policies that get no `tools=` (plain completion endpoints): schemas in the prompt.
        self.tools_prompt = render_tools_prompt(toolbox.schemas) if tools_in_prompt else None
        self.render_mode = render_mode
        self.observation_space = Conversation()
        self.action_space = AssistantText()
        self.agent: str | None = None
        self.scenario: Scenario | None = None
        self.sandbox: Sandbox | None = None
        self.trajectory: Trajectory | None = None
        self._chat: list[dict[str, Any]] = []

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

    # ---- the Gymnasium API ------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        super().reset(seed=seed)
        scenario = self._choose(options or {})
        self.scenario = scenario
        self.sandbox = self.build_sandbox(scenario, self.np_random)
        self.agent = None
        opening = self.opening_messages(scenario)
        if self.tools_prompt and opening and opening[0].role == "system":
            system = opening[0].content + "\n\n" + self.tools_prompt
            opening[0] = Message(role="system", content=system)
        self._chat = [m.to_chat() for m in opening]
        self.trajectory = Trajectory(
            env_id=self.env_name,
            scenario_id=scenario.id,
            scenario_hash=scenario.content_hash,
            seed=seed,
            slices=list(scenario.slices),
            split=scenario.split,
            messages=opening,
            tools=self.toolbox.schemas,
        )
        info = {
            "scenario_id": scenario.id,
            "slices": list(scenario.slices),
            "tools": [dict(s) for s in self.toolbox.schemas],
        }
        return self._observation(), info

    def step(
        self, action: str | dict[str, Any]
    ) -> tuple[list[dict[str, Any]], float, bool, bool, dict[str, Any]]:
        trajectory, sandbox = self.trajectory, self.sandbox
        if trajectory is None or sandbox is None or trajectory.done:
            raise gym.error.ResetNeeded("call reset() before step(), and after an episode ends")
        trajectory.turns += 1
        turn = trajectory.turns
        parsed = parse_action(action)
        self._append(_assistant_message(action, parsed, self.agent))
        first_new = len(self._chat)
        ended, records = self._run_calls(parsed, turn, sandbox)
        if not parsed.calls:
            reply = self.user_reply(parsed)
            if reply is None:
                ended = Termination.FINAL_ANSWER
                trajectory.final_answer = parsed.content
            else:
                self._append(Message(role="user", content=reply))
        max_turns = (self.scenario.max_turns if self.scenario else None) or self.max_turns
        truncated = ended is None and turn >= max_turns
        info: dict[str, Any] = {
            "turn": turn,
            "new_messages": [dict(m) for m in self._chat[first_new:]],
            "tool_calls": records,
        }
        reward = 0.0
        if ended is not None or truncated:
            reward = self._end(ended or Termination.TURN_LIMIT, info)
        return self._observation(), reward, ended is not None, truncated, info

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        return "\n".join(f"[{m['role']}] {m['content']}" for m in self._chat)

    # ---- internals ------------------------------------------------------------------
    def _choose(self, options: dict[str, Any]) -> Scenario:
        if isinstance(options.get("scenario"), Scenario):
            return options["scenario"]
        if "scenario_id" in options:
            scenario_id = options["scenario_id"]
            if scenario_id not in self._by_id:
                raise KeyError(f"{self.env_name}: no scenario with id '{scenario_id}'")
            return self._by_id[scenario_id]
        return self.scenarios[int(self.np_random.integers(len(self.scenarios)))]

    def _run_calls(
        self, parsed: ParsedAction, turn: int, sandbox: Sandbox
    ) -> tuple[Termination | None, list[ToolCallRecord]]:
        records: list[ToolCallRecord] = []
        assert self.trajectory is not None
        for index, call in enumerate(parsed.calls):
            outcome = self.toolbox.run(call, sandbox)
            call_id = call.call_id or f"call_{turn}_{index}"
            records.append(
                fast_record(
                    ToolCallRecord,
                    dict(
                        turn=turn,
                        index=index,
                        call_id=call_id,
                        raw=call.raw,
                        name=call.name,
                        arguments=outcome.arguments,
                        valid=outcome.valid,
                        error_kind=outcome.error_kind,
                        error=outcome.text if outcome.error_kind else None,
                        result=None if outcome.error_kind else outcome.text,
                        execution=outcome.execution,
                        agent=self.agent,
                    ),
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
            if outcome.ends_episode is not None:
                self.trajectory.tool_calls.extend(records)
                return outcome.ends_episode, records
        self.trajectory.tool_calls.extend(records)
        return None, records

    def _end(self, termination: Termination, info: dict[str, Any]) -> float:
        trajectory, scenario, sandbox = self.trajectory, self.scenario, self.sandbox
        assert trajectory is not None and scenario is not None and sandbox is not None
        trajectory.termination = termination
        trajectory.end_state = sandbox.snapshot()
        total, components = self.rubric.score(trajectory, scenario)
        trajectory.reward = total
        trajectory.reward_components = components
        self.finish(trajectory, scenario, sandbox)
        info.update(
            reward_components=dict(components),
            success=trajectory.success,
            termination=termination.value,
            trajectory=trajectory,
        )
        return total

    def _append(self, message: Message) -> None:
        assert self.trajectory is not None
        self.trajectory.messages.append(message)
        self._chat.append(message.to_chat() if message.tool_calls else _plain(message))

    def _observation(self) -> list[dict[str, Any]]:
        return [dict(m) for m in self._chat]


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
    if isinstance(action, dict) and action.get("tool_calls"):
        try:
            return Message.model_validate(
                {
                    "role": "assistant",
                    "content": parsed.text,
                    "name": agent,
                    "tool_calls": action["tool_calls"],
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
