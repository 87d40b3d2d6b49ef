"""Reward components of the multi-agent handoff envs (the seed's M5-L02 coordination table).

The seed's worked examples score: missing info handoff −1 and wrong final response −1
(total −2, twice), info passed correctly +1 and role execution correct +1 (total +2). As
named components (each at most 1.0, so an env's maximum is the sum of its positive weights):

* `handoff_info`: +1 when the information went through every hop and was used (the request
  names the order/problem, the report carries the facts or the error, the acting role's
  actions and final reply follow the report), −1 when any of it went missing.
* `role_execution`: 1 when the learner's role (`trajectory.info["learner"]`) did its own job,
  else 0 (acting: asked the lookup, then the right end state and reply, every refund after
  the report came back (a right guess without asking, or sent before the request in the
  same message, is luck, not the role's job); lookup: looked up and reported the facts;
  equation: a right expression of the question's own numbers (`⇒ 5`, the answer worked
  out in the head, is none); calculator: used the calculator on the question's numbers
  (in steps too: `8 + 2`, then `10 - 5`) and reported its value (the numbers after the
  report's last `=`: "8 + 2 - 5 = 6" reports 6, not 5); coordinator: the right `<answer>`).
* `wrong_final_response`: 1 when the final response is wrong ("Didn't get order info" when
  it was handed over, "Refunded." with no refund or after an error report, a missing fact),
  else 0. Weighted −1: it is a penalty.
* `wasted_calls`: the share of the learner's calls that were wasted: rejected as the
  agent's error (malformed, invalid, a handoff to a role it may not reach, a call after its
  handoff), or an exact repeat of one of its calls that already ran. Weighted −1. An episode
  with an erroneous learner call also gets no `role_execution` credit.
* `acted_on_error`: 1 when a role that received an error report then called an action tool
  (`issue_refund`), whether or not it ran, else 0. Weighted −1 ("you never want to take
  actions based on erroneous data from sub-agents").

A report is an error report when it says `error` (the lookup role is told to report failures
as `error: …`). Rewards read the handoff log and role views the env records in
`trajectory.info` (`envs.multi_agent`), the tool-call records (`agent`) and the end state.
"""

from __future__ import annotations

import re
from typing import Any

from core.records import Execution, Trajectory
from rewards.tags import tagged_answer
from rewards.tool_use import calculator_work, works_from
from tools.standard import evaluate_arithmetic

ERROR_WORD = re.compile(r"\berror\b", re.IGNORECASE)
NO_INFO = re.compile(r"\b(didn'?t|did not) (get|receive)\b", re.IGNORECASE)
REFUND_CLAIMS = ("refund complete", "refund issued", "refunded your", "have refunded", "i refunded")
NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
SENTENCE_END = re.compile(r"[\s.]+$")  # the spaces and periods that end a sentence
ACTION_TOOLS = ("issue_refund",)
REFUND_WEIGHTS = {
    "handoff_info": 1.0,
    "role_execution": 1.0,
    "wrong_final_response": -1.0,
    "acted_on_error": -1.0,
    "wasted_calls": -1.0,
}
MATH_WEIGHTS = {
    "handoff_info": 1.0,
    "role_execution": 1.0,
    "wrong_final_response": -1.0,
    "wasted_calls": -1.0,
}
SUCCESS = ("handoff_info", "role_execution")


# ---- reading the episode ------------------------------------------------------------------------
def handoffs(trajectory: Trajectory) -> list[dict[str, Any]]:
    """The handoff log (`envs.multi_agent` records it, and the learner, on every episode)."""
    return list(trajectory.info["handoffs"])


def learner(trajectory: Trajectory) -> str:
    return str(trajectory.info["learner"])


def is_error_report(text: str) -> bool:
    return bool(ERROR_WORD.search(text))


def claims_refund(text: str) -> bool:
    lowered = text.lower()
    return any(p in lowered for p in REFUND_CLAIMS) or lowered.strip().startswith("refunded")


def numbers(text: str) -> set[float]:
    return {float(n) for n in NUMBER.findall(text)}


def mentions(text: str, wanted: str) -> bool:
    """Case-insensitive substring; an all-digit `wanted` must appear as a whole number."""
    if wanted.isdigit():
        return float(wanted) in numbers(text)
    return wanted.lower() in text.lower()


def first(items: list[dict[str, Any]], **match: str) -> dict[str, Any] | None:
    return next((h for h in items if all(h.get(k) == v for k, v in match.items())), None)


def calls_by(trajectory: Trajectory, agent: str, name: str) -> list[Any]:
    return [c for c in trajectory.tool_calls if c.agent == agent and c.name == name]


def events(trajectory: Trajectory, kind: str) -> list[dict[str, Any]]:
    return [e for e in trajectory.end_state["events"] if e["event"] == kind]


def learner_calls(trajectory: Trajectory) -> list[Any]:
    role = learner(trajectory)
    return [c for c in trajectory.tool_calls if c.agent == role]


def _erroneous(call: Any) -> bool:
    return call.error_kind is not None and call.error_kind.is_agent_error


def wasted_calls(trajectory: Trajectory, scenario: Any) -> float:
    calls = learner_calls(trajectory)
    ran: set[tuple[str | None, str]] = set()
    wasted = 0
    for call in calls:
        key = (call.name, repr(sorted((call.arguments or {}).items())))
        if _erroneous(call) or key in ran:
            wasted += 1
        elif call.execution == Execution.OK:
            ran.add(key)
    return wasted / len(calls) if calls else 0.0


def clean(trajectory: Trajectory) -> bool:
    """No call of the learner was rejected as its own error."""
    return not any(_erroneous(c) for c in learner_calls(trajectory))


# ---- refund_handoff -----------------------------------------------------------------------------
def _lookup_report(trajectory: Trajectory, scenario: Any) -> dict[str, Any] | None:
    """The lookup's first report, when the acting role's first request named the order.

    Only the acting role starts and the lookup hands off only to it, once asked: the first
    handoff is the acting role's request, and every handoff of the lookup is a report."""
    items = handoffs(trajectory)
    if not items or not mentions(items[0]["message"], str(scenario.order_id)):
        return None
    return first(items, **{"from": "lookup"})


def report_carries_facts(report: dict[str, Any] | None, scenario: Any) -> bool:
    if report is None:
        return False
    text = report["message"]
    if scenario.expected.report == "error":
        return is_error_report(text)
    return (
        not is_error_report(text)
        and mentions(text, str(scenario.order_id))
        and mentions(text, str(scenario.expected.customer_id))
    )


def _refunds_of(trajectory: Trajectory, order_id: int) -> list[dict[str, Any]]:
    return [e for e in events(trajectory, "refund") if e.get("order_id") == order_id]


def refund_wrong_final_response(trajectory: Trajectory, scenario: Any) -> float:
    if events(trajectory, "escalation"):
        return 0.0  # the escalation summary is the response; whether it was due is role_execution
    reply = trajectory.final_answer
    if reply is None:
        return 1.0
    handed_over = bool(handoffs(trajectory))  # the acting role asked, and got an answer
    refunded = bool(_refunds_of(trajectory, scenario.order_id))
    wrong = (
        (claims_refund(reply) and (not refunded or scenario.expected.report == "error"))
        or (handed_over and bool(NO_INFO.search(reply)))
        or not all(mentions(reply, m) for m in scenario.expected.reply_mentions)
        or any(mentions(reply, m) for m in scenario.expected.reply_avoids)
    )
    return float(wrong)


def _acted_on_error(trajectory: Trajectory) -> bool:
    for report in handoffs(trajectory):
        if report["kind"] == "request" or not is_error_report(report["message"]):
            continue
        for call in trajectory.tool_calls:
            if (
                call.agent == report["to"]
                and call.name in ACTION_TOOLS
                and call.turn > report["seq"]
            ):
                return True
    return False


def acted_on_error(trajectory: Trajectory, scenario: Any) -> float:
    return float(_acted_on_error(trajectory))


def refund_handoff_info(trajectory: Trajectory, scenario: Any) -> float:
    report = _lookup_report(trajectory, scenario)
    if not report_carries_facts(report, scenario):
        return -1.0
    assert report is not None
    if is_error_report(report["message"]):
        reply = trajectory.final_answer
        used = not _acted_on_error(trajectory) and not (reply is not None and claims_refund(reply))
    elif scenario.expected.refund:
        customer = scenario.expected.customer_id
        used = _refunded_after_the_report(trajectory) and any(
            e.get("customer_id") == customer for e in _refunds_of(trajectory, scenario.order_id)
        )
    else:
        used = not refund_wrong_final_response(trajectory, scenario)
    return 1.0 if used else -1.0


def _refunded_after_the_report(trajectory: Trajectory) -> bool:
    """Every refund that ran came after the lookup's report: a refund sent before the
    request (in the same message) acted on nothing it had seen, even when it was right."""
    report = first(handoffs(trajectory), **{"from": "lookup"})
    return all(
        report is not None and call.turn > report["seq"]
        for call in trajectory.tool_calls
        if call.name in ACTION_TOOLS and call.execution == Execution.OK
    )


def _acting_did_its_job(trajectory: Trajectory, scenario: Any) -> bool:
    refunds = _refunds_of(trajectory, scenario.order_id)
    right_refund = (
        len(refunds) == 1 if scenario.expected.refund else not events(trajectory, "refund")
    )
    right_escalation = bool(events(trajectory, "escalation")) == scenario.expected.escalate
    return (
        bool(handoffs(trajectory))  # it asked (only it starts; a lookup's reply is a report)
        and _refunded_after_the_report(trajectory)
        and right_refund
        and right_escalation
        and not refund_wrong_final_response(trajectory, scenario)
        and not _acted_on_error(trajectory)
    )


def _lookup_did_its_job(trajectory: Trajectory, scenario: Any) -> bool:
    looked_up = any(
        (c.arguments or {}).get("order_id") == scenario.order_id and c.valid
        for c in calls_by(trajectory, "lookup", "get_order")
    )
    if scenario.expected.report == "ok":  # it also checked the refund of the right customer
        wanted = {"customer_id": scenario.expected.customer_id, "order_id": scenario.order_id}
        looked_up = looked_up and any(
            c.arguments == wanted and c.execution == Execution.OK
            for c in calls_by(trajectory, "lookup", "check_refund")
        )
    return looked_up and report_carries_facts(_lookup_report(trajectory, scenario), scenario)


def refund_role_execution(trajectory: Trajectory, scenario: Any) -> float:
    if learner(trajectory) == "lookup":
        return float(_lookup_did_its_job(trajectory, scenario) and clean(trajectory))
    return float(_acting_did_its_job(trajectory, scenario) and clean(trajectory))


REFUND_HANDOFF_REWARDS = {
    "handoff_info": refund_handoff_info,
    "role_execution": refund_role_execution,
    "wrong_final_response": refund_wrong_final_response,
    "acted_on_error": acted_on_error,
    "wasted_calls": wasted_calls,
}


# ---- calculator_handoff -------------------------------------------------------------------------
def expression_of(message: str) -> str:
    """The expression a message hands over: the text after the last `⇒`, else all of it."""
    return SENTENCE_END.sub("", message.rpartition("⇒")[2]).strip()


def expression_value(message: str) -> float | None:
    try:
        return float(evaluate_arithmetic(expression_of(message)))
    except (ValueError, ArithmeticError):
        return None


def equation_of(message: str, scenario: Any) -> bool:
    """The message hands over an equation of the problem: an expression of the question's
    own numbers whose value is the answer (not the answer worked out in the head, `⇒ 5`)."""
    return expression_value(message) == scenario.answer and works_from(
        expression_of(message), scenario.question
    )


def reported_values(message: str) -> set[float]:
    """The numbers a result states: after its last `=` (all of them when it has none), so
    the operands of "8 + 2 - 5 = 6" are not taken for its value."""
    return numbers(message.rpartition("=")[2])


def final_value(trajectory: Trajectory) -> float | None:
    reply = trajectory.final_answer
    answer = tagged_answer(reply) if reply is not None else None
    found = NUMBER.fullmatch(answer) if answer is not None else None
    return float(found.group(0)) if found else None


def _math_hops(trajectory: Trajectory) -> tuple[Any, Any, Any]:
    items = handoffs(trajectory)
    asked = first(items, **{"from": "coordinator", "to": "equation", "kind": "request"})
    equation = first(items, **{"from": "equation", "to": "calculator"})
    result = next(
        (h for h in items if h["from"] == "calculator" and h["to"] == "coordinator"), None
    )
    return asked, equation, result


def math_handoff_info(trajectory: Trajectory, scenario: Any) -> float:
    asked, equation, result = _math_hops(trajectory)
    ok = (
        asked is not None
        and numbers(scenario.question) <= numbers(asked["message"])
        and equation is not None
        and equation_of(equation["message"], scenario)
        and result is not None
        and float(scenario.answer) in reported_values(result["message"])
        and final_value(trajectory) == scenario.answer
    )
    return 1.0 if ok else -1.0


def math_wrong_final_response(trajectory: Trajectory, scenario: Any) -> float:
    reply = trajectory.final_answer
    return float(
        reply is None or final_value(trajectory) != scenario.answer or bool(NO_INFO.search(reply))
    )


def math_role_execution(trajectory: Trajectory, scenario: Any) -> float:
    return float(_math_role_did_its_job(trajectory, scenario) and clean(trajectory))


def _math_role_did_its_job(trajectory: Trajectory, scenario: Any) -> bool:
    role = learner(trajectory)
    _, equation, result = _math_hops(trajectory)
    if role == "equation":
        return equation is not None and equation_of(equation["message"], scenario)
    if role == "calculator":  # it computed the problem's arithmetic, not an answer it knew
        used = calculator_work(calls_by(trajectory, "calculator", "calculator"), scenario.question)
        values = {float(c.result) for c in used}  # the calculator's answers are numbers
        return result is not None and bool(values & reported_values(result["message"]))
    return result is not None and final_value(trajectory) == scenario.answer


MATH_HANDOFF_REWARDS = {
    "handoff_info": math_handoff_info,
    "role_execution": math_role_execution,
    "wrong_final_response": math_wrong_final_response,
    "wasted_calls": wasted_calls,
}
