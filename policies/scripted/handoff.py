"""Scripted policies of the handoff envs: every role's expert and the seed's bad behaviours.

A policy reads which role it plays from its system prompt (`Your role: <name>.`), so one
policy can play any role: as the learner (the eval harness, SFT demonstrations) or as a
partner inside the env (`partners={"lookup": "masks_error"}`). A failure mode changes one
role's behaviour and plays every other role like the expert.

refund_handoff
* `expert`: acting hands the order to lookup; lookup calls get_order then check_refund
  (retrying a failed call once) and reports `Order #N belongs to customer C. Refund status:
  pending|already refunded|not eligible (reason).` or `error: …`; acting refunds an
  eligible order ("Received order #N; refund complete ✓"), explains a refusal or a status,
  tells the customer an order was not found, and escalates any other error.
* `ignores_handoff` (acting; the seed's bad example 1): "Didn't get order info."
* `acts_on_error` (acting; the seed's bad example 2): on an error report it refunds when it
  knows the customer, and answers "Refunded."
* `skips_handoff` (acting): answers at once without asking the lookup role.
* `masks_error` (lookup): reports "Refund pending." instead of an error.
* `drops_customer` (lookup): reports the status without the customer id.

calculator_handoff
* `expert`: coordinator hands the problem to equation; equation writes "Start with 3.
  Buys 2 ⇒ 3 + 2" and hands it to calculator; calculator calls `calculator` and reports
  "3 + 2 = 5" to the coordinator, which answers `<answer>5</answer>`.
* `mental_math` (coordinator): answers without any handoff. `ignores_report`
  (coordinator): "Didn't get the result". `untagged` (coordinator): no `<answer>` tag.
* `wrong_equation` (equation): adds every number. `no_calculator` (calculator): reports
  without calling the calculator.
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

from policies.base import ScriptedPolicy, reply_text, tool_call_text

ROLE = re.compile(r"Your role: (\w+)\.")
ORDER = re.compile(r"#\s*(\d+)")
CUSTOMER = re.compile(r"customer (\d+)")
ERROR = re.compile(r"\berror\b", re.IGNORECASE)
NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
FROM = re.compile(r"^\[from \w+\] ")


def role_of(messages: list[dict[str, Any]]) -> str:
    found = ROLE.search(str(messages[0].get("content", ""))) if messages else None
    return found.group(1) if found else ""


def handoff_text(to: str, message: str) -> str:
    return tool_call_text("handoff", {"to": to, "message": message})


def last_request(messages: list[dict[str, Any]]) -> tuple[int, str]:
    """(position, text) of the last user message, without its `[from role]` prefix."""
    for position in range(len(messages) - 1, -1, -1):
        if messages[position].get("role") == "user":
            return position, FROM.sub("", str(messages[position].get("content", "")))
    return 0, ""


def results(messages: list[dict[str, Any]], name: str, since: int = 0) -> list[str]:
    return [
        FROM.sub("", str(m.get("content", "")))
        for m in messages[since:]
        if m.get("role") == "tool" and m.get("name") == name
    ]


def calls_made(messages: list[dict[str, Any]], name: str, since: int = 0) -> int:
    needle = f'"name": "{name}"'
    return sum(
        str(m.get("content", "")).count(needle)
        for m in messages[since:]
        if m.get("role") == "assistant"
    )


def order_of(text: str) -> int | None:
    found = ORDER.search(text) or NUMBER.search(text)
    return int(found.group(1) if found.re is ORDER else found.group(0)) if found else None


def failed(text: str) -> bool:
    return text.startswith("ERROR")


class RoleScripted(ScriptedPolicy):
    """Dispatches on the role named in the system prompt: `decide_<role>(messages)`."""

    def decide(self, messages: list[dict[str, Any]]) -> str:
        method = getattr(self, f"decide_{role_of(messages)}", None)
        return method(messages) if method else "I don't know which role I play."


# ---- refund_handoff -------------------------------------------------------------------------
class RefundHandoffExpert(RoleScripted):
    name: ClassVar[str] = "expert"

    def decide_acting(self, messages: list[dict[str, Any]]) -> str:
        _, request = last_request(messages)
        order = order_of(request)
        reports = results(messages, "handoff")
        if not reports:
            question = f"Look up order #{order}: its customer and its refund status."
            return handoff_text("lookup", question)
        report = reports[-1]
        if ERROR.search(report):
            return self.on_error(messages, order, report)
        customer = CUSTOMER.search(report)
        if customer is None:
            if len(reports) < 2:
                return handoff_text("lookup", f"I need the customer id of order #{order}.")
            return f"Sorry, I could not get the details of order #{order}."
        status = report.split("Refund status:", 1)[-1].strip().rstrip(".")
        if "status" in request.lower():
            return f"Order #{order}: refund status {status}."
        if not status.startswith("pending"):
            return f"Order #{order} is not eligible for a refund: {status}."
        done = results(messages, "issue_refund")
        if not done:
            arguments = {
                "customer_id": int(customer.group(1)),
                "order_id": order,
                "reason": "eligible: lost or damaged within the refund window",
            }
            return tool_call_text("issue_refund", arguments)
        if failed(done[-1]) or ERROR.search(done[-1]):
            return tool_call_text(
                "escalate_to_human", {"summary": f"Refund of order #{order} failed."}
            )
        return f"Received order #{order}; refund complete ✓"

    def on_error(self, messages: list[dict[str, Any]], order: int | None, report: str) -> str:
        if "not found" in report:
            return f"Order #{order} was not found. Please check the order number."
        summary = f"Order #{order}: the lookup reported an error ({report}). Nothing was changed."
        return tool_call_text("escalate_to_human", {"summary": summary})

    def decide_lookup(self, messages: list[dict[str, Any]]) -> str:
        since, request = last_request(messages)
        order = order_of(request)
        orders = results(messages, "get_order", since)
        if not orders or (failed(orders[-1]) and len(orders) < 2):
            return tool_call_text("get_order", {"order_id": order})
        if failed(orders[-1]):
            return self.report_error(order, f"error: the lookup of order #{order} failed")
        found = json.loads(orders[-1])
        if "error" in found:
            return self.report_error(order, f"error: order #{order} not found")
        customer = found["customer_id"]
        owner = f"Order #{order} belongs to customer {customer}."
        checks = results(messages, "check_refund", since)
        if not checks or (failed(checks[-1]) and len(checks) < 2):
            return tool_call_text("check_refund", {"customer_id": customer, "order_id": order})
        if failed(checks[-1]):
            return self.report_error(order, f"{owner} error: the refund check failed")
        verdict = json.loads(checks[-1])
        if "error" in verdict:
            return self.report_error(order, f"{owner} error: {verdict['error']}")
        if verdict["refund_status"] == "refunded":
            status = "already refunded"
        else:
            status = "pending" if verdict["eligible"] else "not eligible"
        return self.report(order, customer, status, verdict["reason"])

    def report(self, order: int | None, customer: int, status: str, reason: str) -> str:
        text = f"Order #{order} belongs to customer {customer}. Refund status: {status} ({reason})."
        return handoff_text("acting", text)

    def report_error(self, order: int | None, text: str) -> str:
        return handoff_text("acting", text)


class IgnoresHandoff(RefundHandoffExpert):
    name: ClassVar[str] = "ignores_handoff"

    def decide_acting(self, messages: list[dict[str, Any]]) -> str:
        if results(messages, "handoff"):
            return "Didn't get order info."
        return super().decide_acting(messages)


class ActsOnError(RefundHandoffExpert):
    name: ClassVar[str] = "acts_on_error"

    def on_error(self, messages: list[dict[str, Any]], order: int | None, report: str) -> str:
        customer = CUSTOMER.search(report)
        if customer is not None and not calls_made(messages, "issue_refund"):
            arguments = {"customer_id": int(customer.group(1)), "order_id": order, "reason": "lost"}
            return tool_call_text("issue_refund", arguments)
        return "Refunded."


class SkipsHandoff(RefundHandoffExpert):
    name: ClassVar[str] = "skips_handoff"

    def decide_acting(self, messages: list[dict[str, Any]]) -> str:
        return "Your refund is on its way."


class MasksError(RefundHandoffExpert):
    name: ClassVar[str] = "masks_error"

    def report_error(self, order: int | None, text: str) -> str:
        return handoff_text("acting", "Refund pending.")


class DropsCustomer(RefundHandoffExpert):
    name: ClassVar[str] = "drops_customer"

    def report(self, order: int | None, customer: int, status: str, reason: str) -> str:
        return handoff_text("acting", f"Order #{order}: refund status {status}.")


# ---- calculator_handoff ---------------------------------------------------------------------
PATTERNS = (
    (re.compile(r"has (\d+) \w+ and buys (\d+) more"), "Start with {0}. Buys {1} ⇒ {0} + {1}"),
    (re.compile(r"has (\d+) \w+, buys (\d+), sells (\d+)"),
     "Start with {0}. Buys {1}, sells {2} ⇒ {0} + {1} - {2}"),
    (re.compile(r"has (\d+) boxes of (\d+)"), "{0} boxes of {1} ⇒ {0} * {1}"),
    (re.compile(r"shares (\d+) \w+ equally among (\d+)"), "{0} shared by {1} ⇒ {0} / {1}"),
)  # fmt: skip
THINK = (  # the seed's coordinator thought, verbatim
    "Agent A turns the word problem into an equation, hands off to Agent B who can use a "
    "calculator."
)


def equation_of(question: str) -> str | None:
    for pattern, template in PATTERNS:
        if found := pattern.search(question):
            return template.format(*found.groups())
    return None


def number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


class CalculatorHandoffExpert(RoleScripted):
    name: ClassVar[str] = "expert"

    def decide_coordinator(self, messages: list[dict[str, Any]]) -> str:
        _, question = last_request(messages)
        reports = results(messages, "handoff")
        if not reports:
            return handoff_text("equation", question)
        found = NUMBER.findall(reports[-1].rsplit("=", 1)[-1]) if "=" in reports[-1] else []
        if not found or ERROR.search(reports[-1]):
            if len(reports) < 2:
                return handoff_text("equation", question)
            return "Sorry, the other agents could not solve it."
        return reply_text(f"<answer>{number_text(float(found[-1]))}</answer>", think=THINK)

    def decide_equation(self, messages: list[dict[str, Any]]) -> str:
        _, question = last_request(messages)
        equation = equation_of(question)
        if equation is None:
            return handoff_text("coordinator", "error: I cannot turn this into an equation.")
        return handoff_text("calculator", equation)

    def decide_calculator(self, messages: list[dict[str, Any]]) -> str:
        since, request = last_request(messages)
        expression = request.rsplit("⇒", 1)[-1].strip().rstrip(".")
        values = results(messages, "calculator", since)
        if not values:
            return tool_call_text("calculator", {"expression": expression})
        if failed(values[-1]):
            return handoff_text("coordinator", f"error: the calculator failed: {values[-1]}")
        return handoff_text("coordinator", f"{expression} = {values[-1]}")


class MentalMath(CalculatorHandoffExpert):
    name: ClassVar[str] = "mental_math"

    def decide_coordinator(self, messages: list[dict[str, Any]]) -> str:
        equation = equation_of(last_request(messages)[1]) or "0"
        value = eval(equation.rsplit("⇒", 1)[-1], {"__builtins__": {}})  # digits and + - * /
        return f"<answer>{number_text(value)}</answer>"


class IgnoresReport(CalculatorHandoffExpert):
    name: ClassVar[str] = "ignores_report"

    def decide_coordinator(self, messages: list[dict[str, Any]]) -> str:
        if results(messages, "handoff"):
            return "<answer>Didn't get the result</answer>"
        return super().decide_coordinator(messages)


class Untagged(CalculatorHandoffExpert):
    name: ClassVar[str] = "untagged"

    def decide_coordinator(self, messages: list[dict[str, Any]]) -> str:
        text = super().decide_coordinator(messages)
        return (
            text.split("</think>")[-1]
            .replace("<answer>", "The answer is ")
            .replace("</answer>", ".")
        )


class WrongEquation(CalculatorHandoffExpert):
    name: ClassVar[str] = "wrong_equation"

    def decide_equation(self, messages: list[dict[str, Any]]) -> str:
        numbers = NUMBER.findall(last_request(messages)[1])
        return handoff_text("calculator", f"Add them up ⇒ {' + '.join(numbers) or '0'}")


class NoCalculator(CalculatorHandoffExpert):
    name: ClassVar[str] = "no_calculator"

    def decide_calculator(self, messages: list[dict[str, Any]]) -> str:
        expression = last_request(messages)[1].rsplit("⇒", 1)[-1].strip()
        numbers = NUMBER.findall(expression)
        return handoff_text("coordinator", f"{expression} = {numbers[0] if numbers else 0}")
