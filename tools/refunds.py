"""Customer-service tools over the sandbox's refund database (the seed's case study).

The database is JSON-native (string keys, ISO dates) so end states round-trip through
trajectory files unchanged. Lookups that find nothing *run* but return a wrong/empty
result (`Execution.WRONG`): `check_refund(session_id, ...)` is exactly that case, while
`check_refund("Alice Smith", ...)` is a type mismatch that never runs.
`issue_refund` enforces no policy: the agent decides, the rewards judge the end state.
Every body is a few dictionary lookups, bounded by construction, so the tools run inline
(`timeout_s=None`: no worker thread, see `tools.toolbox`).
"""

from __future__ import annotations

from typing import Any

from core.records import Execution
from core.refund_policy import refund_verdict
from tools.sandbox import Sandbox
from tools.schema import tool
from tools.toolbox import ToolResult


def _not_found(message: str) -> ToolResult:
    return ToolResult({"error": message}, Execution.WRONG)


def _session_customer(ctx: Sandbox, session_id: int) -> int | None:
    return ctx.db["sessions"].get(str(session_id))


@tool(timeout_s=None)
def get_customer_id(ctx: Sandbox, session_id: int) -> Any:
    """Look up the id of the customer in a chat session.

    Args:
        session_id: The chat session id (given in the system prompt).
    """
    customer_id = _session_customer(ctx, session_id)
    if customer_id is None:
        return _not_found(f"no session {session_id}")
    return {"customer_id": customer_id}


@tool(timeout_s=None)
def get_customer_name(ctx: Sandbox, session_id: int) -> Any:
    """Look up the name of the customer in a chat session.

    Args:
        session_id: The chat session id (given in the system prompt).
    """
    customer_id = _session_customer(ctx, session_id)
    if customer_id is None:
        return _not_found(f"no session {session_id}")
    return {"name": ctx.db["customers"][str(customer_id)]["name"]}


@tool(timeout_s=None)
def get_order(ctx: Sandbox, order_id: int) -> Any:
    """Get an order's details: owner, item, amount, status and ship date.

    Args:
        order_id: The order number.
    """
    order = ctx.db["orders"].get(str(order_id))
    if order is None:
        return _not_found(f"no order {order_id}")
    return {"order_id": order_id, **order}


@tool(timeout_s=None)
def track_order(ctx: Sandbox, order_id: int) -> Any:
    """Get the carrier's tracking status of an order.

    Args:
        order_id: The order number.
    """
    order = ctx.db["orders"].get(str(order_id))
    if order is None:
        return _not_found(f"no tracking for order {order_id}")
    note = order.get("tracking_note") or order["status"].replace("_", " ")
    return {
        "order_id": order_id,
        "status": order["status"],
        "carrier_note": note,
        "shipped_on": order["shipped_on"],
    }


@tool(timeout_s=None)
def check_refund(ctx: Sandbox, customer_id: int, order_id: int) -> Any:
    """Check an order's refund status and eligibility under the refund policy.

    Args:
        customer_id: The customer's numeric id (from get_customer_id), not their name.
        order_id: The order number.
    """
    verdict = refund_verdict(ctx.db, customer_id, order_id, ctx.now.date())
    if verdict is None:
        return _not_found(f"no refund found for customer {customer_id} and order {order_id}")
    return verdict


@tool(timeout_s=None)
def issue_refund(ctx: Sandbox, customer_id: int, order_id: int, reason: str) -> Any:
    """Refund an order in full. Check eligibility with check_refund first.

    Args:
        customer_id: The customer's numeric id.
        order_id: The order number to refund.
        reason: Why the refund is issued (e.g. "lost in transit").
    """
    order = ctx.db["orders"].get(str(order_id))
    if order is None or order["customer_id"] != customer_id:
        return _not_found(f"no order {order_id} for customer {customer_id}")
    refund_id = f"R-{order_id}-{len(ctx.events) + 1}"
    ctx.db["refunds"][str(order_id)] = {
        "amount": order["amount"],
        "reason": reason,
        "refunded_on": ctx.today(),
    }
    ctx.record(
        "refund",
        order_id=order_id,
        customer_id=customer_id,
        amount=order["amount"],
        refund_id=refund_id,
    )
    return {
        "refund_id": refund_id,
        "order_id": order_id,
        "amount": order["amount"],
        "status": "refunded",
    }
