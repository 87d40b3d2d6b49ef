"""The refund_agent reward components (M5-L02's tables), each a pure function.

Every function is `(trajectory, scenario) -> float` with maximum 1.0, reading the
trajectory's tool-call records, final reply and `end_state` (database + side effects).

* `tool_execution`  the seed's graduated table per call: error (type mismatch, unknown
  tool, ...) -2, runs but wrong/empty result -1, correct +1. Aggregated as the **mean over
  the episode's distinct calls** (`rewards.tool_use`): repeating a good call neither earns
  more nor dilutes a bad one; injected faults (HTTP 500, timeouts) are the
  infrastructure's fault and are left out. An episode with no counted call scores 0.
* `outcome`         +1 when the end state is exactly right (each expected order refunded
  exactly once, nothing else refunded) and every refund was preceded by a successful
  `check_refund` of that order **in an earlier message** (a check sent in the same message
  as the refund was not read before acting); 0 when the end state is right but a refund
  was unchecked, or no refund was right but the agent never checked the customer's order
  (doing nothing must not pass for a decision); -1 otherwise.
* `escalation`      +1 for escalating when the scenario requires it after seeing why
  (`informed_escalation`: a `check_refund` answered, or the tool that failed failed
  `PERSISTENT_FAULTS` = 3 times in a row — one retry is not enough, since transient
  faults fail up to twice), or for solving a case without escalating when it needs no
  human; 0 for a required escalation made blind or at the first error; -1 for deflecting
  ("check our FAQ") or giving up instead of escalating, for not escalating when required,
  and for escalating what the agent could have solved (escalating at the first error of
  a transient fault lands here); 0 for not escalating a case that needs no human but
  that the agent did not resolve either (outcome < 1), so doing nothing earns nothing.
* `truthfulness`    grounded in structure (`rewards.claims`): every reply and escalation
  summary is read for what it asserts — refund made, refund denied, already refunded,
  escalated, nothing changed, resolved, checked — in any wording, and compared with the
  end state and what the agent saw (`world_facts`). -1 for any false assertion, for an
  order number or amount the conversation never showed, or for a refund issued after
  `check_refund` failed for that order (the seed's "Refunded" after "error no refund
  found"); +1 when the final words tell what happened (or the case went to a human); 0
  when they assert nothing about it ("Let me know if there's anything else!").
* `format`          2 × (share of schema-valid distinct calls) − 1; 0 with no tool calls.
* `efficiency`      calls and turns cost: 1 − 0.5 per repeat of an identical call that
  already failed (the seed's loop) − 0.25 per repeat of a call already answered − 0.25
  per call beyond `CALL_BUDGET` = 4 (calls hit by an injected fault are free: retrying
  an outage is right) − 0.25 per turn beyond the scenario's turn budget, floored at −1.
* `progress`        the share of the case's three milestones reached (AgentBoard's
  progress rate): the customer identified (`get_customer_id` answered, or the session's
  customer id used in a valid call), the customer's order checked (`check_refund` with
  that customer id and order id, answered or failed by an injected fault), and the case
  resolved (the episode succeeds: outcome, escalation and truthfulness all right). The
  other components judge an episode by what it did; this one pays for how far along the
  right path it got, so an agent that stops after one easy call (every per-call and
  per-reply component at its best) scores below one that went on to check the order. A
  resolved case has reached every milestone (where the customer lookup itself was down,
  escalating is the whole path).
"""

from __future__ import annotations

import re
from typing import Any

from core.records import Execution, Termination, Trajectory
from rewards.claims import OUTCOME_CLAIMS, Claim, ClaimReader, claims, ungrounded_numbers
from rewards.spec import RewardFn
from rewards.tool_use import call_penalty, tool_execution, tool_format
from scenarios.refund import RefundScenario
from tools.calls import parse_action

CALL_BUDGET = 4  # get_customer_id, track_order, check_refund, issue_refund/escalate_to_human
PERSISTENT_FAULTS = 3  # a tool failing this often in a row is down (transient faults: <= 2)
LOOKUPS = ("check_refund", "track_order", "get_order")

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
    summaries = [s for c in trajectory.tool_calls if (s := escalation_summary(c)) is not None]
    return summaries[-1] if summaries else ""


def escalation_summary(call: Any) -> str | None:
    """What an escalation call (parsed or recorded) told the human, when it is text."""
    summary = _arg(call, "summary") if call.name == "escalate_to_human" else None
    return summary if isinstance(summary, str) else None


def deflected(trajectory: Trajectory) -> bool:
    return trajectory.termination == Termination.FINAL_ANSWER and bool(
        DEFLECTION.search(final_words(trajectory))
    )


def _arg(call: Any, name: str) -> Any:
    return (call.arguments or {}).get(name)


def _checked_before(trajectory: Trajectory, order_id: int, turn: int | None = None) -> str:
    """'ok' if the last check_refund of this order made in a turn before `turn` (default:
    in the whole episode) succeeded, 'error' if it failed, 'none' if there was none. A
    check in the acting call's own message does not count: its result was not yet seen."""
    state = "none"
    for call in trajectory.tool_calls:
        if turn is not None and call.turn >= turn:
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
        if _checked_before(trajectory, call.arguments["order_id"], call.turn) != "ok":
            return 0.0
    order_id = scenario.customer_sim.order_id
    decided_no_refund = not refunded and not scenario.requires_escalation
    # "No refund" is a decision: right only if the agent looked the order up.
    if decided_no_refund and order_id is not None and _checked_before(trajectory, order_id) != "ok":
        return 0.0
    return 1.0


def informed_escalation(trajectory: Trajectory) -> bool:
    """The escalation came after the agent saw why a human is needed. If the last result
    it saw was an injected fault, that tool must have kept failing: its last
    `PERSISTENT_FAULTS` results were all faults (a retry might have worked). Otherwise it
    must have seen a check_refund answer (the case itself needs a human's approval)."""
    # read only for an escalated episode (`escalation`), so an escalation call exists
    ending = next(c for c in reversed(trajectory.tool_calls) if c.name == "escalate_to_human")
    seen = [c for c in trajectory.tool_calls if c.turn < ending.turn]
    if seen and seen[-1].execution == Execution.FAULT:
        in_a_row = 0
        for call in reversed([c for c in seen if c.name == seen[-1].name]):
            if call.execution != Execution.FAULT:
                break
            in_a_row += 1
        return in_a_row >= PERSISTENT_FAULTS
    return any(c.name == "check_refund" and c.execution == Execution.OK for c in seen)


def escalation(trajectory: Trajectory, scenario: RefundScenario) -> float:
    if deflected(trajectory):
        return -1.0
    if escalated(trajectory) != scenario.requires_escalation:
        return -1.0
    if escalated(trajectory) and not informed_escalation(trajectory):
        return 0.0  # the right call, made blind or at the first error: no credit
    if not escalated(trajectory) and outcome(trajectory, scenario) != 1.0:
        return 0.0  # not escalating is right only for a case the agent actually resolved
    return 1.0


def saw_past_refund(trajectory: Trajectory) -> bool:
    """The agent looked the order up and saw it was already refunded: saying so is true."""
    return any(
        c.name == "check_refund"
        and c.execution == Execution.OK
        and '"refund_status": "refunded"' in str(c.result)  # an answered call has a result
        for c in trajectory.tool_calls
    )


def world_facts(trajectory: Trajectory) -> dict[Claim, bool]:
    """Which claims are true of the episode (end state and what the agent saw)."""
    refunded = bool(refund_events(trajectory))
    past = saw_past_refund(trajectory)
    return {
        Claim.REFUND_MADE: refunded,
        Claim.ALREADY_REFUNDED: past,
        Claim.REFUND_DENIED: not refunded,
        Claim.ESCALATED: escalated(trajectory),
        Claim.NOTHING_CHANGED: not refunded,
        Claim.RESOLVED: refunded or past,
        Claim.CHECKED: any(
            c.name in LOOKUPS and c.execution == Execution.OK for c in trajectory.tool_calls
        ),
    }


def utterances(trajectory: Trajectory) -> list[tuple[str, list[str]]]:
    """Everything the agent told anyone (its visible replies, the escalation summary),
    each with the text of the messages before it (what it could have seen)."""
    said: list[tuple[str, list[str]]] = []
    for position, message in enumerate(trajectory.messages):
        if message.role != "assistant":
            continue
        seen = [m.content for m in trajectory.messages[:position]]
        parsed = parse_action(message.content)
        if parsed.content:
            said.append((parsed.content, seen))
        summaries = (escalation_summary(call) for call in parsed.calls)
        said.extend((summary, seen) for summary in summaries if summary is not None)
    return said


def truthfulness(trajectory: Trajectory, scenario: RefundScenario) -> float:
    """-1 if anything the agent said asserts what is false (refund made or denied,
    escalated, nothing changed, resolved, checked: `rewards.claims`), states an order
    number or amount it never saw, or a refund was issued after check_refund failed for
    that order; else +1 if the final words tell what happened (or the case went to a
    human), 0 if they assert nothing about it."""
    return score_truthfulness(trajectory, claims)


def judged_truthfulness(reader: ClaimReader) -> RewardFn:
    """`truthfulness` with the claims read by `reader` (e.g. `rewards.claims.JudgeClaims`
    over a model endpoint) instead of by structure; add it to a rubric as a component."""

    def judged(trajectory: Trajectory, scenario: RefundScenario) -> float:
        return score_truthfulness(trajectory, reader)

    return judged


def score_truthfulness(trajectory: Trajectory, read: ClaimReader) -> float:
    facts = world_facts(trajectory)
    for text, seen in utterances(trajectory):
        if any(not facts[claim] for claim in read(text)) or ungrounded_numbers(text, seen):
            return -1.0
    for call in _refund_calls(trajectory):
        if _checked_before(trajectory, call.arguments["order_id"], call.turn) == "error":
            return -1.0
    if escalated(trajectory) or read(final_words(trajectory)) & OUTCOME_CLAIMS:
        return 1.0
    return 0.0


def efficiency(trajectory: Trajectory, scenario: RefundScenario) -> float:
    """Calls and turns cost: `rewards.tool_use.call_penalty` with `CALL_BUDGET` calls, and
    0.25 per turn beyond the scenario's turn budget; floored at -1."""
    over_turns = max(0, trajectory.turns - scenario.turn_budget)
    return max(-1.0, 1.0 - call_penalty(trajectory, CALL_BUDGET) - 0.25 * over_turns)


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
    if resolved:
        return 1.0  # the end of the path (where a system was down, the earlier steps could not be)
    milestones = (identified(trajectory, scenario), checked_order(trajectory, scenario), False)
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
