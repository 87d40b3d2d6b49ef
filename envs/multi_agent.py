"""Multi-agent episodes on the core: named roles take turns, hand off with a typed call.

Contract
--------
* **Roles** (`Role`): each has a name, its own system prompt (`role_prompt`), its own
  tools (a subset of the env's `tools`, plus `handoff`) and its own view of the
  conversation: its instructions, the messages addressed to it and its own tool results.
  Nothing else of the episode reaches a role.
* **Handoff**: `handoff(to, message)` passes control. If `to` is waiting on a handoff of
  its own (it asked and awaits the answer), the message is that call's tool result and the
  sender's call returns `Delivered to <to>.` at once (a report). Otherwise it is a request:
  `to` gets the message as a user message `[from <sender>] …` and the sender's call waits
  for whoever hands control back to it. A role that may not answer the user and replies
  in plain text reports that text to the role that last asked it (an implicit handoff).
  Calls after a handoff in the same turn are not run (error observations).
* **End**: a plain reply by a role with `answers_user` is the final answer to the user
  (`Termination.FINAL_ANSWER`); an episode-ending tool (escalation) ends it too. The
  learner's turn limit (`max_turns`) truncates; so does `partner_turn_limit` (all other
  roles' turns together), which bounds partners that never hand back.
* **Learner**: one role (`role=` kwarg, default the env's `default_role`) is played from
  outside through the episode protocol: `begin`/`advance` return only the learner's view
  and `StepResult.new_messages` holds what reached it since its last turn (tool results,
  the reply to its handoff, a new request). Every other role is a **partner** played
  inside the env as `partners[role]` says (`envs.partners`): one of the env's scripted
  policies (default `expert`; they read the role from their system prompt), a frozen
  model (`"hf:<folder>"`), self-play (`"self"`: the policy given to `bind_policy`, which
  `envs.rollout` calls with its own policy), or a `Policy` object. A partner that raises
  ends the episode as `Termination.POLICY_ERROR` (infrastructure, not scored).
* **Records**: `trajectory.messages` is the learner's view (assistant turns carry
  `name=<role>`, forwarded messages `name=<sender>`); `trajectory.tool_calls` holds every
  role's calls (`agent=<role>`, `turn` = the episode's global turn number);
  `trajectory.info` holds `learner`, `handoffs` (seq, from, to, message, kind: request /
  report / reply) and `views` (each role's whole view, for SFT export of any role).
* `drive_roles(names)` makes further roles external (the PettingZoo AEC wrapper drives all
  of them): `active_role`, `view(role)` and `play_turn(action)` are that lower level.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium as gym

from core.episode import EpisodeStart, StepResult
from core.policy import Policy, PolicyRequest
from core.records import (
    ErrorKind,
    Execution,
    Message,
    Termination,
    ToolCallRecord,
    Trajectory,
)
from envs.base import ToolEnv, _assistant_message, _plain
from envs.partners import Partners
from scenarios.schema import Scenario
from tools.calls import ParsedAction, ParsedCall, parse_action
from tools.sandbox import Sandbox
from tools.schema import render_tools_prompt, tool
from tools.toolbox import ToolInputError

HANDOFF = "handoff"


@tool(timeout_s=None)
def handoff(ctx: Sandbox, to: str, message: str) -> str:
    """Hand control to another role with a message; its answer comes back as this call's result.

    Args:
        to: The role to hand off to (named in your instructions).
        message: Everything that role needs: the facts, or the error you got.
    """
    if not message.strip():
        raise ToolInputError("message is empty: pass on the information the role needs")
    return "handoff"  # routed by the env (`MultiAgentEnv`), never shown as is


@dataclass(frozen=True, slots=True)
class Role:
    name: str
    tools: tuple[str, ...] = ()  # names of the env's tools this role may call
    handoff_to: tuple[str, ...] = ()  # roles it may hand off to
    answers_user: bool = False  # its plain reply is the final answer to the user


@dataclass(slots=True)
class _Turn:
    """What one role's turn did."""

    records: list[ToolCallRecord]
    target: str | None = None  # handed control to this role
    ended: Termination | None = None


class MultiAgentEnv(ToolEnv):
    """Several roles in one episode; one learner played through the episode protocol."""

    roles: ClassVar[Sequence[Role]] = ()
    default_role: ClassVar[str] = ""  # the learner when `role=` is not given
    default_partner: ClassVar[str] = "expert"
    default_partner_turn_limit: ClassVar[int] = 24

    def __init__(
        self,
        split: str = "train",
        *,
        role: str | None = None,
        partners: Mapping[str, Any] | None = None,
        partner_turn_limit: int | None = None,
        **kwargs: Any,
    ) -> None:
        name = type(self).__name__
        self.role_of = {r.name: r for r in self.roles}
        self.learner = role or self.default_role
        if self.learner not in self.role_of:
            raise ValueError(f"{name}: role {self.learner!r} unknown; roles: {list(self.role_of)}")
        tools_in_prompt = bool(kwargs.pop("tools_in_prompt", False))
        super().__init__(split, **kwargs)
        self.tools_prompt = None  # per role, below
        self.role_tools = {r.name: self._toolbox_of(r) for r in self.roles}
        self.role_tools_prompt = {
            r: render_tools_prompt(box.schemas) if tools_in_prompt else None
            for r, box in self.role_tools.items()
        }
        self.partners = Partners(
            name,
            list(self.role_of),
            self.learner,
            dict(partners or {}),
            self.policies,
            self.default_partner,
        )
        self.partner_turn_limit = partner_turn_limit or self.default_partner_turn_limit
        self._external = {self.learner}
        self._reset_state()

    # ---- hooks for subclasses ----------------------------------------------------------
    def role_prompt(self, role: Role, scenario: Scenario) -> str:
        raise NotImplementedError

    def user_request(self, scenario: Scenario) -> str:
        raise NotImplementedError

    @property
    def entry_role(self) -> str:
        """The role the user's request goes to: the first that answers the user."""
        return next(r.name for r in self.roles if r.answers_user)

    def opening_messages(self, scenario: Scenario) -> list[Message]:
        """The learner's opening: its instructions, and the user's request if it gets it."""
        opening = [Message(role="system", content=self._system_text(self.learner, scenario))]
        if self.learner == self.entry_role:
            opening.append(Message(role="user", content=self.user_request(scenario)))
        return opening

    # ---- configuration -------------------------------------------------------------------
    def bind_policy(self, policy: Policy) -> None:
        """The policy that plays partners configured as `"self"` (self-play)."""
        self.partners.bind(policy)

    def drive_roles(self, names: Sequence[str]) -> None:
        """Play these roles from outside too (`active_role` / `play_turn`)."""
        unknown = [n for n in names if n not in self.role_of]
        if unknown:
            raise ValueError(f"{self.env_name}: unknown role(s) {unknown}")
        self._external = {self.learner, *names}

    @property
    def active_role(self) -> str | None:
        return self._active

    def view(self, role: str) -> list[dict[str, Any]]:
        """A fresh copy of what `role` has seen so far."""
        chat = self._chat if role == self.learner else self._views[role]
        return copy.deepcopy(chat)

    def role_schemas(self, role: str) -> list[dict[str, Any]]:
        return self.role_tools[role].schemas

    # ---- the episode protocol -----------------------------------------------------------
    def begin(
        self,
        scenario: Scenario | str | None = None,
        *,
        seed: int | None = None,
        epoch: int = 0,
        policy: str = "",
    ) -> EpisodeStart:
        super().begin(scenario, seed=seed, epoch=epoch, policy=policy)
        assert self.trajectory is not None and self.scenario is not None
        self._reset_state()
        for role in self.roles:
            if role.name != self.learner:
                text = self._system_text(role.name, self.scenario)
                self._views[role.name] = [{"role": "system", "content": text}]
        entry = self.entry_role
        if entry != self.learner:
            request = self.user_request(self.scenario)
            self._views[entry].append({"role": "user", "content": request})
        self._active = entry
        self.trajectory.tools = self.role_schemas(self.learner)
        self.trajectory.info["learner"] = self.learner
        self._run_partners()
        if self._active != self.learner and self._ended is None:  # never handed to it
            note = "[env] The episode ended before anything was handed to you."
            self._append(Message(role="user", content=note))
        return EpisodeStart(
            messages=copy.deepcopy(self._chat),
            tools=self.role_schemas(self.learner),
            scenario_id=self.trajectory.scenario_id,
            slices=list(self.trajectory.slices),
            agent=self.learner,
        )

    def advance(self, action: str | dict[str, Any]) -> StepResult:
        trajectory = self.trajectory
        if trajectory is None or self.sandbox is None or trajectory.done:
            raise gym.error.ResetNeeded("call reset() before step(), and after an episode ends")
        trajectory.turns += 1
        first_new = len(self._chat) + 1
        if self._ended is not None or self._active != self.learner:
            # The others finished before the learner was asked: its turn is recorded only.
            self._append(_assistant_message(action, parse_action(action), self.learner))
            records: list[ToolCallRecord] = []
            self._ended = self._ended or Termination.HANDOFF_END
        else:
            records = self.play_turn(action)
            self._run_partners()
        return self._result(first_new, records)

    def play_turn(self, action: str | dict[str, Any]) -> list[ToolCallRecord]:
        """One turn of the active role (external); returns its tool-call records."""
        role = self._active
        assert role is not None and self.trajectory is not None
        self._seq += 1
        parsed = parse_action(self._bounded(action))
        self._add(role, _assistant_message(action, parsed, role))
        turn = self._run_turn(role, parsed)
        self._after_turn(role, parsed, turn)
        return turn.records

    # ---- internals ----------------------------------------------------------------------
    def _reset_state(self) -> None:
        self._views: dict[str, list[dict[str, Any]]] = {}
        self._pending: dict[str, str] = {}  # role -> id of its handoff call awaiting a reply
        self._caller: dict[str, str] = {}  # role -> who last asked it
        self._handoffs: list[dict[str, Any]] = []
        self._active: str | None = None
        self._ended: Termination | None = None
        self._seq = 0
        self._partner_turns = 0
        self._aborted = False

    def _toolbox_of(self, role: Role) -> Any:
        names = [*role.tools, HANDOFF] if role.handoff_to else list(role.tools)
        return self.toolbox.subset(names)

    def _system_text(self, role: str, scenario: Scenario) -> str:
        text = self.role_prompt(self.role_of[role], scenario)
        extra = self.role_tools_prompt.get(role)
        return f"{text}\n\n{extra}" if extra else text

    def _run_partners(self) -> None:
        while self._ended is None and self._active is not None:
            role = self._active
            if role in self._external:
                return
            if self._partner_turns >= self.partner_turn_limit:
                self._ended = Termination.TURN_LIMIT
                return
            self._partner_turns += 1
            try:
                action = self._partner_action(role)
            except Exception as exc:  # a partner's failure is infrastructure, not behaviour
                self.abort(Termination.POLICY_ERROR, f"partner {role}: {type(exc).__name__}: {exc}")
                self._ended, self._aborted = Termination.POLICY_ERROR, True
                return
            self.play_turn(action)

    def _partner_action(self, role: str) -> str | dict[str, Any]:
        assert self.trajectory is not None
        request = PolicyRequest(
            messages=self.view(role),
            tools=self.role_schemas(role),
            env_id=self.env_name,
            scenario_id=self.trajectory.scenario_id,
            seed=self.trajectory.seed,
            turn=self._seq,
            metadata={"role": role, "partner": True},
        )
        (response,) = self.partners.get(role).act([request])
        return response.action

    def _add(self, role: str, message: Message) -> None:
        if role == self.learner:
            self._append(message)
        else:
            chat = message.to_chat() if message.tool_calls else _plain(message)
            self._views[role].append(chat)

    def _run_turn(self, role: str, parsed: ParsedAction) -> _Turn:
        assert self.sandbox is not None and self.trajectory is not None
        turn = _Turn(records=[])
        for index, call in enumerate(parsed.calls):
            call_id = call.call_id or f"call_{self._seq}_{index}"
            if turn.target is not None:
                text = "ERROR: Not run: this turn already handed off control"
                self._record(role, turn, call, call_id, text, ErrorKind.INVALID_VALUE, None)
                continue
            outcome = self.role_tools[role].run(call, self.sandbox)
            if call.name == HANDOFF and outcome.error_kind is None:
                target = str(outcome.arguments["to"]) if outcome.arguments else ""
                problem = self._handoff_problem(role, target)
                if problem is None:
                    turn.target = target
                    message = str(outcome.arguments["message"]) if outcome.arguments else ""
                    self._handoff(role, target, message, call_id, call, turn)
                    continue
                self._record(role, turn, call, call_id, problem, ErrorKind.INVALID_VALUE, None)
                continue
            result = None if outcome.error_kind else outcome.text
            self._record(
                role, turn, call, call_id, outcome.text, outcome.error_kind, result, outcome
            )
            if outcome.ends_episode is not None:
                turn.ended = outcome.ends_episode
                break
        return turn

    def _handoff_problem(self, role: str, target: str) -> str | None:
        allowed = self.role_of[role].handoff_to
        if target in allowed:
            return None
        return (
            f"ERROR: Invalid value: cannot hand off to {target!r}; "
            f"you may hand off to: {', '.join(allowed)}"
        )

    def _handoff(
        self, role: str, target: str, message: str, call_id: str, call: ParsedCall, turn: _Turn
    ) -> None:
        waiting = self._pending.pop(target, None)
        kind = "reply" if waiting is not None else "request"
        self._handoffs.append(
            {"seq": self._seq, "from": role, "to": target, "message": message, "kind": kind}
        )
        if waiting is not None:  # an answer to `target`'s own handoff: its call returns it
            delivered = f"Delivered to {target}."
            self._record(role, turn, call, call_id, delivered, None, delivered)
            self._add(target, _tool_message(f"[from {role}] {message}", waiting))
        else:  # a request: `target` is asked, the sender's call waits for an answer
            self._record(role, turn, call, call_id, None, None, None, show=False)
            self._pending[role] = call_id
            self._caller[target] = role
            self._add(target, Message(role="user", content=f"[from {role}] {message}", name=role))

    def _record(
        self,
        role: str,
        turn: _Turn,
        call: ParsedCall,
        call_id: str,
        text: str | None,
        kind: ErrorKind | None,
        result: str | None,
        outcome: Any = None,
        *,
        show: bool = True,
    ) -> None:
        assert self.trajectory is not None
        execution = outcome.execution if outcome is not None else Execution.OK
        if kind is not None and outcome is None:
            execution = Execution.ERROR
        arguments = outcome.arguments if outcome is not None else call.arguments
        record = ToolCallRecord(
            turn=self._seq,
            index=len(turn.records),
            call_id=call_id,
            raw=call.raw,
            name=call.name,
            arguments=copy.deepcopy(arguments),
            valid=outcome.valid if outcome is not None else kind is None,
            error_kind=kind,
            error=text if kind else None,
            result=result,
            execution=execution,
            agent=role,
        )
        turn.records.append(record)
        self.trajectory.tool_calls.append(record)
        if show and text is not None:
            self._add(role, _tool_message(text, call_id, call.name or "invalid_call"))

    def _after_turn(self, role: str, parsed: ParsedAction, turn: _Turn) -> None:
        assert self.trajectory is not None
        if turn.ended is not None:
            self._ended = turn.ended
        elif turn.target is not None:
            self._active = turn.target
        elif not parsed.calls:
            if self.role_of[role].answers_user:
                self._ended = Termination.FINAL_ANSWER
                self.trajectory.final_answer = parsed.content
                return
            target = self._caller.get(role, self.entry_role)
            if target == role:  # nobody to report to: its reply is lost, it acts again
                return
            call = ParsedCall(raw=parsed.text, name=None)
            self._handoff_plain(role, target, parsed.content, call)

    def _handoff_plain(self, role: str, target: str, text: str, call: ParsedCall) -> None:
        """A plain reply of a role that does not answer the user: a report to its caller."""
        waiting = self._pending.pop(target, None)
        self._handoffs.append(
            {"seq": self._seq, "from": role, "to": target, "message": text, "kind": "report"}
        )
        if waiting is not None:
            self._add(target, _tool_message(f"[from {role}] {text}", waiting))
        else:
            self._caller[target] = role
            self._add(target, Message(role="user", content=f"[from {role}] {text}", name=role))
        self._active = target

    def _result(self, first_new: int, records: list[ToolCallRecord]) -> StepResult:
        trajectory = self.trajectory
        assert trajectory is not None
        max_turns = (self.scenario.max_turns if self.scenario else None) or self.max_turns
        ended = self._ended
        truncated = (ended is None and trajectory.turns >= max_turns) or (
            ended == Termination.TURN_LIMIT
        )
        done = ended is not None or truncated
        if done and not self._aborted and self.learner in self._pending:
            call_id = self._pending.pop(self.learner)
            self._append(_tool_message("The episode ended before an answer came back.", call_id))
        result = StepResult(
            assistant=copy.deepcopy(self._chat[first_new - 1]),
            new_messages=copy.deepcopy(self._chat[first_new:]),
            tool_calls=records,
            terminated=ended is not None and ended != Termination.TURN_LIMIT,
            truncated=truncated,
            turn=trajectory.turns,
        )
        if done:
            result.trajectory = self.close_episode()
            result.reward = result.trajectory.reward
        return result

    @property
    def ended(self) -> Termination | None:
        """Why the episode ended (None: it goes on)."""
        return self._ended

    def close_episode(self) -> Trajectory:
        """Score the episode once: it ended, or is cut here (`Termination.TURN_LIMIT`)."""
        trajectory = self.trajectory
        assert trajectory is not None
        if not trajectory.done:
            self._close_records()
            ended = self._ended
            self._ended = ended if ended is not None else Termination.TURN_LIMIT
            self._end(self._ended)
        return trajectory

    def _close_records(self) -> None:
        assert self.trajectory is not None
        self.trajectory.info["handoffs"] = copy.deepcopy(self._handoffs)
        views = {name: copy.deepcopy(view) for name, view in self._views.items()}
        views[self.learner] = copy.deepcopy(self._chat)
        self.trajectory.info["views"] = {r.name: views.get(r.name, []) for r in self.roles}


def _tool_message(text: str, call_id: str, name: str = HANDOFF) -> Message:
    return Message(role="tool", content=text, tool_call_id=call_id, name=name)
