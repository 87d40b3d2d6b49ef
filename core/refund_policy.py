"""The refund policy of the refund_agent env: its numbers and the one eligibility verdict.

Pure data and one pure function, at the bottom of the import graph so that every layer
reads the same rules without importing a sibling: the scenarios (the policy text the agent
is told, the variant generator), the tools (`check_refund` reports the verdict) and the
scripted policies. `refund_verdict` reads the sandbox's live JSON-native database (string
keys, ISO dates), so it judges the state the agent's own calls produced.
"""

from __future__ import annotations

from datetime import date
from typing import Any

REFUND_WINDOW_DAYS = 30
APPROVAL_LIMIT_USD = 500.0
REFUNDABLE_STATUSES = ("lost", "damaged")


def refund_verdict(
    db: dict[str, Any], customer_id: int, order_id: int, today: date
) -> dict[str, Any] | None:
    """What check_refund reports, from the live (JSON-native) database; None if no match."""
    order = db["orders"].get(str(order_id))
    if order is None or order["customer_id"] != customer_id:
        return None
    age = (today - date.fromisoformat(order["shipped_on"])).days
    past = db["refunds"].get(str(order_id))
    if past is not None:
        eligible, reason = False, f"already refunded on {past['refunded_on']}"
    elif order["status"] not in REFUNDABLE_STATUSES:
        eligible, reason = False, f"order status is '{order['status']}', not lost or damaged"
    elif age > REFUND_WINDOW_DAYS:
        eligible, reason = (
            False,
            f"shipped {age} days ago, outside the {REFUND_WINDOW_DAYS}-day window",
        )
    else:
        eligible, reason = True, f"order is {order['status']} and within the refund window"
    return {
        "order_id": order_id,
        "customer_id": customer_id,
        "order_status": order["status"],
        "amount": order["amount"],
        "refund_status": "refunded" if past is not None else "none",
        "eligible": eligible,
        "reason": reason,
    }
