"""Scenarios of the refund_agent env (the seed's "My order is late. Tracking says it's lost").

A `RefundScenario` holds the sandbox's initial database (customers, sessions, orders,
past refunds), the customer's opening message, what the simulated customer knows and
how they behave, and the expected end state: which orders must be refunded exactly
once, and whether the case must go to a human.

The refund policy text the agent is told lives here; its numbers and the eligibility
verdict live in `core.refund_policy`, so the generator, the tools and the rewards agree.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.refund_policy import APPROVAL_LIMIT_USD, REFUND_WINDOW_DAYS  # rules live in core
from scenarios.schema import Scenario

REFUND_SLICES = (
    "refund_happy",
    "refund_ineligible",
    "tool_correctness",
    "escalation_api_down",
    "already_refunded",
    "policy_exception",
    "transient_fault",
    "ask_order_number",
)

REFUND_POLICY = f"""Refund policy:
1. An order is refundable only if its status is lost or damaged, and its ship date is within
   {REFUND_WINDOW_DAYS} days of today.
2. An order that was already refunded is never refunded again.
3. Always call check_refund(customer_id, order_id) before issue_refund, and never act on an
   error result.
4. Refunds over ${APPROVAL_LIMIT_USD:.0f}, or any exception to this policy, need a human: call
   escalate_to_human with a summary.
5. If the systems you need keep failing, escalate_to_human instead of giving up.
6. Tell the customer only what actually happened."""


class Customer(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(min_length=1)
    email: str = ""


class Order(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    customer_id: int
    item: str = Field(min_length=1)
    amount: float = Field(gt=0)
    status: Literal["processing", "in_transit", "delivered", "lost", "damaged"]
    shipped_on: date
    tracking_note: str = ""


class PastRefund(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    amount: float = Field(gt=0)
    reason: str = ""
    refunded_on: date


class RefundDB(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    customers: dict[int, Customer]
    sessions: dict[int, int] = Field(description="session id -> customer id")
    orders: dict[int, Order]
    refunds: dict[int, PastRefund] = Field(default_factory=dict, description="order id -> refund")

    @model_validator(mode="after")
    def _references_exist(self) -> RefundDB:
        for session_id, customer_id in self.sessions.items():
            if customer_id not in self.customers:
                raise ValueError(f"sessions.{session_id}: unknown customer id {customer_id}")
        for order_id, order in self.orders.items():
            if order.customer_id not in self.customers:
                raise ValueError(
                    f"orders.{order_id}.customer_id: unknown customer {order.customer_id}"
                )
        for order_id in self.refunds:
            if order_id not in self.orders:
                raise ValueError(f"refunds.{order_id}: unknown order id")
        return self


class CustomerSim(BaseModel):
    """What the simulated customer knows and how they answer."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    order_id: int | None = None  # the number they give when asked
    persona: Literal["cooperative", "vague", "impatient"] = "cooperative"
    max_replies: int = Field(default=3, ge=0)


class Expected(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    refunded_orders: list[int] = Field(default_factory=list)  # refunded exactly once
    escalate: bool = False


class RefundScenario(Scenario):
    env: Literal["refund_agent"] = "refund_agent"
    session_id: int
    opening: str = Field(min_length=1)
    db: RefundDB
    customer_sim: CustomerSim = Field(default_factory=CustomerSim)
    expected: Expected
    turn_budget: int = Field(default=8, ge=1)

    @model_validator(mode="after")
    def _consistent(self) -> RefundScenario:
        if self.session_id not in self.db.sessions:
            raise ValueError(f"session_id {self.session_id} is not in db.sessions")
        for order_id in self.expected.refunded_orders:
            if order_id not in self.db.orders:
                raise ValueError(f"expected.refunded_orders: unknown order id {order_id}")
        order_id = self.customer_sim.order_id
        if order_id is not None and order_id not in self.db.orders:
            raise ValueError(f"customer_sim.order_id: unknown order id {order_id}")
        return self

    @property
    def customer_id(self) -> int:
        return self.db.sessions[self.session_id]

    @property
    def requires_escalation(self) -> bool:
        return self.expected.escalate
