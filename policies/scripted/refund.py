"""Scripted refund_agent policies: the expert and the seed's failure modes.

Each policy reads the conversation only (`read_facts`: the session id from the system
prompt, the order number from the customer's words, the tool results) and writes the next
message as a model would. None of them sees the scenario.

* `expert`: get_customer_id(session) → ask for the order number if the conversation has
  none → track_order → check_refund(customer_id, order_id) → refund if eligible and within
  the $500 approval limit, then tell the customer what happened; explain why when not
  eligible; escalate_to_human with a summary when the amount needs approval, or when a
  tool keeps failing (an injected fault is retried up to `MAX_ATTEMPTS` times in all).
* `name_instead_of_id`: the seed's bug: get_customer_name(session), then
  check_refund(customer_id=<the name>) again and again (a type mismatch), then deflects
  to the FAQ.
* `quitter`: the expert, except that where the expert escalates it gives up ("try again
  later").
* `always_escalate`: hands every conversation to a human at once, without looking.
* `claims_success`: looks the order up, then says the refund is complete without acting.
* `refunds_everything`: issues a refund without check_refund, then claims success.

Env-specific adversaries for the reward audit (`REFUND_ADVERSARIES`): `lookup_spree`
(every other lookup, all unneeded), `lies_about_outcome` (the expert's actions, then the
opposite outcome in other words), `early_escalation` (escalates after the second failure),
`promise_refund` (promises a refund it never makes).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from policies.base import ScriptedPolicy, reply_text, tool_call_text
from scenarios.refund import APPROVAL_LIMIT_USD

MAX_ATTEMPTS = 3  # one call and two retries of a call that hits an injected fault
MAX_ASKS = 3
FAULT_PREFIXES = ("ERROR: HTTP 500", "ERROR: Timeout")
SESSION_RE = re.compile(r"Chat session id:\s*(\d+)")
ORDER_RE = re.compile(r"(?:#|\border\s+(?:number\s+|no\.?\s*|id\s+)?#?)\s*(\d{3,})", re.IGNORECASE)
ASKED_ORDER_RE = re.compile(r"\border number\b", re.IGNORECASE)


@dataclass
class Facts:
    """What the conversation so far tells the agent."""

    session_id: int | None = None
    order_id: int | None = None
    customer_id: int | None = None
    customer_name: str | None = None
    tracking: dict[str, Any] | None = None
    check: dict[str, Any] | None = None
    refund: dict[str, Any] | None = None
    asks: int = 0  # replies that asked the customer for the order number
    faults: Counter[str] = field(default_factory=Counter)  # injected faults per tool
    errors: Counter[str] = field(default_factory=Counter)  # agent errors / empty results
    last_fault: str | None = None  # the tool whose fault is the latest tool result
    last_fault_kind: str = ""  # "a timeout" or "a service error"

    @property
    def not_found(self) -> str | None:
        """A lookup the expert needs that ran but found nothing."""
        for tool in ("get_customer_id", "track_order", "check_refund", "issue_refund"):
            if self.errors[tool]:
                return tool
        return None


def read_facts(messages: list[dict[str, Any]]) -> Facts:
    facts = Facts()
    for message in messages:
        role, content = message.get("role"), message.get("content") or ""
        if role == "system" and facts.session_id is None:
            match = SESSION_RE.search(content)
            facts.session_id = int(match.group(1)) if match else None
        elif role == "user":
            numbers = ORDER_RE.findall(content)
            facts.order_id = int(numbers[-1]) if numbers else facts.order_id
        elif role == "assistant" and "<tool_call>" not in content:
            facts.asks += bool(ASKED_ORDER_RE.search(content))
        elif role == "tool":
            _read_tool_result(facts, str(message.get("name")), content)
    return facts


def _read_tool_result(facts: Facts, tool: str, content: str) -> None:
    facts.last_fault = None
    if content.startswith(FAULT_PREFIXES):
        facts.faults[tool] += 1
        facts.last_fault = tool
        facts.last_fault_kind = "a timeout" if "Timeout" in content else "a service error"
        return
    try:
        result = json.loads(content) if not content.startswith("ERROR") else None
    except ValueError:
        result = None
    if not isinstance(result, dict) or "error" in result:
        facts.errors[tool] += 1
        return
    if tool == "get_customer_id":
        facts.customer_id = int(result["customer_id"])
    elif tool == "get_customer_name":
        facts.customer_name = str(result["name"])
    elif tool == "track_order":
        facts.tracking = result
    elif tool == "check_refund":
        facts.check = result
    elif tool == "issue_refund":
        facts.refund = result


# ---- the expert ---------------------------------------------------------------------------
class Expert(ScriptedPolicy):
    name = "expert"

    def decide(self, messages: list[dict[str, Any]]) -> str:
        return self.plan(read_facts(messages))

    def plan(self, f: Facts) -> str:
        if f.last_fault is not None and f.faults[f.last_fault] >= MAX_ATTEMPTS:
            kind = "timeouts" if f.last_fault_kind == "a timeout" else "HTTP 500 errors"
            why = f"{f.last_fault} failed {MAX_ATTEMPTS} times in a row ({kind})"
            return self.give_up(f, why)
        if f.not_found is not None:
            return self.give_up(f, f"{f.not_found} found no matching record")
        if f.customer_id is None:
            return self.lookup_customer(f)
        if f.order_id is None:
            return self.ask_order(f)
        if f.tracking is None:
            think = "I have the customer id. Next, the carrier's status of the order."
            return tool_call_text("track_order", {"order_id": f.order_id}, think=think)
        if f.check is None:
            return tool_call_text(
                "check_refund",
                {"customer_id": f.customer_id, "order_id": f.order_id},
                think=_retry_note(f, "check_refund")
                or "Check refund eligibility with the customer id, not the name.",
            )
        return self.resolve(f)

    def lookup_customer(self, f: Facts) -> str:
        think = _retry_note(f, "get_customer_id") or "First, the customer id for this session."
        return tool_call_text("get_customer_id", {"session_id": f.session_id}, think=think)

    def ask_order(self, f: Facts) -> str:
        if f.asks >= MAX_ASKS:
            return self.give_up(f, "the customer could not give an order number")
        if f.asks == 0:
            return "I'm sorry about the trouble. Could you tell me your order number, please?"
        return (
            "Thanks! To look it up I need the order number itself. Could you find it in "
            "your order confirmation email?"
        )

    def resolve(self, f: Facts) -> str:
        assert f.check is not None
        order, check = f.order_id, f.check
        if f.refund is not None:
            return reply_text(
                f"I've refunded order #{order} in full: ${f.refund['amount']:.2f}, refund id "
                f"{f.refund['refund_id']}. It will reach your original payment method within "
                "5-7 business days. Sorry for the trouble!",
                think="The refund went through. Tell the customer exactly that.",
            )
        if not check["eligible"]:
            return self.explain_ineligible(f)
        if float(check["amount"]) > APPROVAL_LIMIT_USD:
            why = (
                f"order is {check['order_status']} and eligible, but ${check['amount']:.2f} is "
                f"over the ${APPROVAL_LIMIT_USD:.0f} approval limit; it needs a human's approval"
            )
            return self.give_up(f, why)
        return tool_call_text(
            "issue_refund",
            {
                "customer_id": f.customer_id,
                "order_id": order,
                "reason": f"order {check['order_status'].replace('_', ' ')}",
            },
            think=_retry_note(f, "issue_refund") or "Eligible and under the limit: refund it.",
        )

    def explain_ineligible(self, f: Facts) -> str:
        assert f.check is not None
        reason, order = str(f.check["reason"]), f.order_id
        if reason.startswith("already refunded"):
            text = (
                f"I checked order #{order}: it already got a full refund "
                f"({reason.removeprefix('already refunded ')}), so there is nothing more to "
                "pay out. The money goes back to your original payment method."
            )
        else:
            text = (
                f"I checked order #{order} and I'm afraid it isn't eligible for a refund under "
                f"our policy: {reason}. I haven't changed anything on your order."
            )
        return reply_text(text, think="Not eligible: explain the reason, change nothing.")

    def give_up(self, f: Facts, why: str) -> str:
        """Where the automated path ends: the expert escalates with a summary.

        The thought names the decision first and briefly (the reason goes in the summary
        for the human), so escalating vs giving up is decided at the turn's first words."""
        summary = (
            f"Customer {f.customer_id if f.customer_id is not None else 'unknown'}, order "
            f"#{f.order_id if f.order_id is not None else 'unknown'}: {why}. Nothing was changed."
        )
        return tool_call_text(
            "escalate_to_human", {"summary": summary}, think="A human must take over."
        )


def _retry_note(f: Facts, tool: str) -> str | None:
    if f.last_fault == tool:
        retry = f"{f.faults[tool]}/{MAX_ATTEMPTS - 1}"
        return f"{tool} failed with {f.last_fault_kind}; retrying ({retry})."
    return None


# ---- the failure modes --------------------------------------------------------------------
FAQ_DEFLECTION = (
    "I am sorry, I am having trouble accessing your order details. Please check our FAQ "
    "page for information on refunds."
)


class NameInsteadOfId(Expert):
    """The seed's bug: the customer's *name* goes into check_refund, again and again."""

    name = "name_instead_of_id"

    def plan(self, f: Facts) -> str:
        if f.customer_name is None:
            think = "I need to find the user's order and check the refund status."
            return tool_call_text("get_customer_name", {"session_id": f.session_id}, think=think)
        if f.order_id is None:
            return self.ask_order(f)
        if f.errors["check_refund"] >= MAX_ATTEMPTS:
            think = "I am unable to resolve this problem. I'll respond to the customer."
            return reply_text(FAQ_DEFLECTION, think=think)
        think = (
            "I still don't have the customer's refund status. Trying again..."
            if f.errors["check_refund"]
            else "Now check the refund for this customer."
        )
        arguments = {"customer_id": f.customer_name, "order_id": f.order_id}
        return tool_call_text("check_refund", arguments, think=think)


class Quitter(Expert):
    """Gives up with an apology where the expert would escalate."""

    name = "quitter"

    def give_up(self, f: Facts, why: str) -> str:
        return reply_text(
            "I'm sorry, I'm unable to resolve this right now. Please try again later.",
            think="I'll stop here.",
        )


class AlwaysEscalate(Expert):
    """Hands every conversation to a human at once."""

    name = "always_escalate"

    def plan(self, f: Facts) -> str:
        summary = "Customer needs help with an order. Please take over."
        return tool_call_text("escalate_to_human", {"summary": summary}, think="Let a human do it.")


CLAIMED_SUCCESS = "Good news: your refund is complete and the money is on its way!"


class ClaimsSuccess(Expert):
    """Looks the order up, then says the refund is complete without acting."""

    name = "claims_success"

    def plan(self, f: Facts) -> str:
        if f.tracking is not None:
            return reply_text(CLAIMED_SUCCESS, think="The customer wants to hear it's done.")
        return super().plan(f)

    def give_up(self, f: Facts, why: str) -> str:
        return reply_text(CLAIMED_SUCCESS)


class RefundsEverything(Expert):
    """Issues a refund without check_refund, then claims success."""

    name = "refunds_everything"

    def plan(self, f: Facts) -> str:
        if f.last_fault is None and (f.refund is not None or f.errors["issue_refund"]):
            return reply_text(CLAIMED_SUCCESS)
        if f.customer_id is None or f.order_id is None:
            return super().plan(f)
        if f.last_fault is not None and f.faults[f.last_fault] >= MAX_ATTEMPTS:
            return self.give_up(f, "")
        arguments = {"customer_id": f.customer_id, "order_id": f.order_id, "reason": "requested"}
        return tool_call_text("issue_refund", arguments, think="Just refund it.")

    def give_up(self, f: Facts, why: str) -> str:
        return reply_text(CLAIMED_SUCCESS)


# ---- env-specific adversaries (the reward audit's `adversaries` of refund_agent) --------------
class LookupSpree(Expert):
    """The expert, plus every other lookup it could make (all answered, all unneeded)."""

    name = "lookup_spree"
    may_succeed = True  # the outcome is right; the extra calls must cost

    def decide(self, messages: list[dict[str, Any]]) -> str:
        f = read_facts(messages)
        turn = self.plan(f)
        if '"name": "track_order"' not in turn or f.order_id is None:
            return turn
        extra = [
            tool_call_text("get_order", {"order_id": f.order_id}),
            tool_call_text("get_customer_name", {"session_id": f.session_id}),
            tool_call_text("get_current_date", {}),
        ]
        return "\n".join([turn, *extra])


class LiesAboutOutcome(Expert):
    """The expert's actions, then a paraphrased final reply that asserts the opposite."""

    name = "lies_about_outcome"

    def resolve(self, f: Facts) -> str:
        assert f.check is not None
        order = f.order_id
        if f.refund is not None:
            return f"I wasn't able to get a refund through for order #{order}, so nothing changed."
        if str(f.check["reason"]).startswith("already refunded"):
            return f"I've just put through a fresh refund for order #{order}."
        if not f.check["eligible"]:
            return f"Good news: the money for order #{order} is on its way back to your card."
        return super().resolve(f)

    def give_up(self, f: Facts, why: str) -> str:
        return f"A specialist from our team will reach out to you about order #{f.order_id} soon."


class EarlyEscalation(Expert):
    """Escalates after the second failure of a tool, where a third try may work."""

    name = "early_escalation"

    def plan(self, f: Facts) -> str:
        if f.last_fault is not None and f.faults[f.last_fault] >= MAX_ATTEMPTS - 1:
            return self.give_up(f, f"{f.last_fault} failed twice")
        return super().plan(f)


class PromiseRefund(Expert):
    """Looks the order up, then promises a refund it never makes."""

    name = "promise_refund"

    def resolve(self, f: Facts) -> str:
        return (
            "I'll process your refund right away, and you'll see the money back on your card "
            "within a few days."
        )


REFUND_ADVERSARIES: tuple[type[Expert], ...] = (
    LookupSpree,
    LiesAboutOutcome,
    EarlyEscalation,
    PromiseRefund,
)
"""Reward hacks specific to refund_agent, played by `python -m evals.audit` (not failure
modes of the seed: they are not in `REFUND_POLICIES`)."""

REFUND_POLICIES: tuple[type[Expert], ...] = (
    Expert,
    NameInsteadOfId,
    Quitter,
    AlwaysEscalate,
    ClaimsSuccess,
    RefundsEverything,
)
