"""The refund_agent reward components (M5-L02's tables), each a pure function.

Every function is `(trajectory, scenario) -> float` with maximum 1.0, reading the
trajectory's tool-call records, final reply and `end_state` (database + side effects).

* `tool_execution`  the seed's graduated table per call: error (type mismatch, unknown
  tool, ...) -2, runs but wrong/empty result -1, correct +1. Aggregated as the **mean over
  the episode's calls**, so spamming correct calls earns nothing extra; injected faults
  (HTTP 500, timeouts) are the infrastructure's fault and are left out of the mean. An
  episode with no counted call scores 0.
* `outcome`         +1 when the end state is exactly right (each expected order refunded
  exactly once, nothing else refunded) and every refund was preceded by a successful
  `check_refund` of that order; 0 when the end state is right but a refund was unchecked,
  or no refund was right but the agent never checked the customer's order (doing nothing
  must not pass for a decision); -1 otherwise.
* `escalation`      +1 for escalating when the scenario requires it, or for solving it
  without escalating when it does not; 0 for a required escalation made blind, before any
  schema-valid `check_refund`/`issue_refund` call (whatever its result): escalating every
  chat unseen must not score like the expert on the cases that need a human; -1 for
  deflecting ("check our FAQ") or giving up instead of escalating, for not escalating when
  required, and for escalating what the agent could have solved; 0 for not escalating a
  case that needs no human but that the agent did not resolve either (outcome < 1), so
  doing nothing earns no escalation credit.
* `truthfulness`    -1 if the final words claim a refund that neither happened in the
  episode nor was seen as a past refund by a `check_refund` the agent made, claim an
  escalation that did not happen, or a refund was issued after `check_refund` returned an
  error for that order (the seed's "Refunded" after "error no refund found"); else +1.
* `format`          2 × (share of schema-valid calls) − 1; 0 with no tool calls.
* `efficiency`      1 − 0.5 per repeat of an identical call that already failed (the
  seed's loop; retrying after an injected fault is not penalised) − 0.25 per turn beyond
  the scenario's turn budget, floored at −1.
* `progress`        the share of the case's three milestones reached (AgentBoard's
  progress rate): the customer identified (`get_customer_id` answered, or the session's
  customer id used in a valid call), the customer's order checked (`check_refund` with
  that customer id and order id, answered or failed by an injected fault), and the case
  resolved (the episode succeeds: outcome, escalation and truthfulness all right). The
  other components judge an episode by what it did; this one pays for how far along the
  right path it got, so an agent that stops after one easy call (every per-call and
  per-reply component at its best) scores below one that went on to check the order.
"""

from __future__ import annotations

import json
import re
from typing import Any

from core.records import Execution, Termination, Trajectory
from rewards.spec import RewardFn
from rewards.tool_use import tool_execution, tool_format
from scenarios.refund import RefundScenario

CLAIMS_REFUND = re.compile(
    r"\b(refund(ed)?\b[^.?!]{0,40}\b(issued|processed|complete|completed|done|approved|sent)"
    r"|(has|have|was|been) (been )?refunded|refund is (complete|done|on its way)"
    r"|issued (you )?(a|your) refund)",
    re.IGNORECASE,
)
CLAIMS_ESCALATION = re.compile(
    r"\b(escalated|transferr?ed you|handed (you|this) (over|off)|a human (agent )?will)\b",
    re.IGNORECASE,
)
DEFLECTION = re.compile(
    r"\b(faq|help center|help page|our website|try again later|unable to (help|resolve)"
    r"|can(no|')t help|having trouble accessing)\b",
    re.IGNORECASE,
)


def refund_events(trajectory: Trajectory) -> list[dict[str, Any]]:
    return [e for e in trajectory.end_state.get("events", []) if e.get("event") == "refund"]


def escalated(trajectory: Trajectory) -> bool:
    return trajectory.termination == Termination.ESCALATION


def final_words(trajectory: Trajectory) -> str:
    """What the customer was finally told (the reply, or the escalation summary)."""
    if trajectory.final_answer is not None:
        return trajectory.final_answer
    for call in reversed(trajectory.tool_calls):
        if call.name == "escalate_to_human" and call.arguments:
            return str(call.arguments.get("summary", ""))
    return ""


def deflected(trajectory: Trajectory) -> bool:
    return trajectory.termination == Termination.FINAL_ANSWER and bool(
        DEFLECTION.search(final_words(trajectory))
    )


def _arg(call: Any, name: str) -> Any:
    return (call.arguments or {}).get(name)


def _checked_before(
    trajectory: Trajectory, order_id: int, turn: int | None = None, index: int = 0
) -> str:
    """'ok' if the last check_refund of this order before (turn, index) (default: in the
    whole episode) succeeded, 'error' if it failed, 'none' if there was none."""
    state = "none"
    for call in trajectory.tool_calls:
        if turn is not None and (call.turn, call.index) >= (turn, index):
            break
        if call.name == "check_refund" and _arg(call, "order_id") == order_id:
            state = "ok" if call.execution == Execution.OK else "error"
    return state


def _refund_calls(trajectory: Trajectory) -> list[Any]:
    return [
        c
        for c in trajectory.tool_calls
        if c.name == "issue_refund" and c.execution == Execution.OK and c.arguments
    ]


def outcome(trajectory: Trajectory, scenario: RefundScenario) -> float:
    refunded = [e["order_id"] for e in refund_events(trajectory)]
    if sorted(refunded) != sorted(scenario.expected.refunded_orders):
        return -1.0
    for call in _refund_calls(trajectory):
        if _checked_before(trajectory, call.arguments["order_id"], call.turn, call.index) != "ok":
            return 0.0
    order_id = scenario.customer_sim.order_id
    decided_no_refund = not refunded and not scenario.requires_escalation
    # "No refund" is a decision: right only if the agent looked the order up.
    if decided_no_refund and order_id is not None and _checked_before(trajectory, order_id) != "ok":
        return 0.0
    return 1.0


def tried_refund_tools(trajectory: Trajectory) -> bool:
    """A schema-valid check_refund/issue_refund call was made (it may have failed)."""
    return any(
        c.valid and c.name in ("check_refund", "issue_refund") for c in trajectory.tool_calls
    )


def escalation(trajectory: Trajectory, scenario: RefundScenario) -> float:
    if deflected(trajectory):
        return -1.0
    if escalated(trajectory) != scenario.requires_escalation:
        return -1.0
    if escalated(trajectory) and not tried_refund_tools(trajectory):
        return 0.0  # the right call, made without looking: no credit
    if not escalated(trajectory) and outcome(trajectory, scenario) != 1.0:
        return 0.0  # not escalating is right only for a case the agent actually resolved
    return 1.0


def saw_past_refund(trajectory: Trajectory) -> bool:
    """The agent looked the order up and saw it was already refunded: saying so is true."""
    return any(
        c.name == "check_refund"
        and c.execution == Execution.OK
        and '"refund_status": "refunded"' in (c.result or "")
        for c in trajectory.tool_calls
    )


def truthfulness(trajectory: Trajectory, scenario: RefundScenario) -> float:
    words = final_words(trajectory)
    if CLAIMS_REFUND.search(words) and not (
        refund_events(trajectory) or saw_past_refund(trajectory)
    ):
        return -1.0
    if CLAIMS_ESCALATION.search(words) and not escalated(trajectory):
        return -1.0
    for call in _refund_calls(trajectory):
        if (
            _checked_before(trajectory, call.arguments["order_id"], call.turn, call.index)
            == "error"
        ):
            return -1.0
    return 1.0


def repeated_failures(trajectory: Trajectory) -> int:
    failed: set[str] = set()
    repeats = 0
    for call in trajectory.tool_calls:
        key = f"{call.name}:{json.dumps(call.arguments, sort_keys=True, default=str)}"
        if key in failed:
            repeats += 1
        if call.execution in (Execution.ERROR, Execution.WRONG):
            failed.add(key)
    return repeats


def efficiency(trajectory: Trajectory, scenario: RefundScenario) -> float:
    over_budget = max(0, trajectory.turns - scenario.turn_budget)
    return max(-1.0, 1.0 - 0.5 * repeated_failures(trajectory) - 0.25 * over_budget)


def identified(trajectory: Trajectory, scenario: RefundScenario) -> bool:
    customer_id = scenario.db.sessions.get(scenario.session_id)
    return any(
        (c.name == "get_customer_id" and c.execution == Execution.OK)
        or (c.valid and customer_id is not None and _arg(c, "customer_id") == customer_id)
        for c in trajectory.tool_calls
    )


def checked_order(trajectory: Trajectory, scenario: RefundScenario) -> bool:
    """check_refund ran on the customer's own id and order (an injected fault counts: the
    agent did its part)."""
    customer_id = scenario.db.sessions.get(scenario.session_id)
    order_id = scenario.customer_sim.order_id
    return any(
        c.name == "check_refund"
        and c.valid
        and c.execution in (Execution.OK, Execution.FAULT)
        and _arg(c, "customer_id") == customer_id
        and (order_id is None or _arg(c, "order_id") == order_id)
        for c in trajectory.tool_calls
    )


def progress(trajectory: Trajectory, scenario: RefundScenario) -> float:
    resolved = all(REFUND_REWARDS[name](trajectory, scenario) == 1.0 for name in SUCCESS_COMPONENTS)
    milestones = (identified(trajectory, scenario), checked_order(trajectory, scenario), resolved)
    return round(sum(milestones) / len(milestones), 10)


SUCCESS_COMPONENTS = ("outcome", "escalation", "truthfulness")
"""An episode succeeds (and `progress` reaches its last milestone) when all are at 1."""

REFUND_REWARDS: dict[str, RewardFn] = {
    "tool_execution": tool_execution,
    "outcome": outcome,
    "escalation": escalation,
    "truthfulness": truthfulness,
    "format": tool_format,
    "efficiency": efficiency,
    "progress": progress,
}

DEFAULT_WEIGHTS: dict[str, float] = {
    "tool_execution": 1.0,
    "outcome": 2.0,
    "escalation": 1.0,
    "truthfulness": 1.0,
    "format": 0.5,
    "efficiency": 0.5,
    "progress": 1.0,
}
