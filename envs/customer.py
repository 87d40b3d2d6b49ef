"""The simulated customer of refund_agent: deterministic, from the scenario's facts.

It answers the agent's questions (order number, confirmation) the way the scenario's
persona says (`cooperative`, `vague`: no number on the first ask, `impatient`), and
returns None when the agent's reply is not a question it can answer, which makes that
reply final. It is stateless: everything it needs is in the conversation, so replays are
exact. Any object with the same `reply` method (an LLM-played customer, tau-bench style)
can replace it.
"""

from __future__ import annotations

import re
from typing import Any

from scenarios.refund import RefundScenario

ASKS_ORDER = re.compile(r"\border\s*(number|no\.?|id|#)|\bwhich order\b", re.IGNORECASE)
# A confirmation phrase with a "?" somewhere after it. The "?" is not in the pattern:
# `phrase[^?]*\?` rescans to the end for every phrase (quadratic on long replies);
# searching for the phrase before the last "?" is the same test in linear time.
ASKS_CONFIRMATION = re.compile(
    r"\b(would you like|shall i|should i|do you want|can i go ahead|confirm|ok(ay)?)\b",
    re.IGNORECASE,
)


class ScriptedCustomer:
    name = "scripted"

    def reply(
        self, agent_text: str, scenario: RefundScenario, history: list[dict[str, Any]]
    ) -> str | None:
        if "?" not in agent_text:
            return None
        replies = sum(1 for m in history if m["role"] == "user") - 1
        sim = scenario.customer_sim
        if replies >= sim.max_replies:
            return None
        if ASKS_ORDER.search(agent_text):
            return self._order_answer(scenario, history)
        if ASKS_CONFIRMATION.search(agent_text, 0, agent_text.rfind("?")):
            return "Yes, please go ahead." if sim.persona != "impatient" else "Yes! Just do it."
        if sim.persona == "impatient":
            return "I've already explained. Please just sort out my order."
        return "I just want my order sorted out, please."

    def _order_answer(self, scenario: RefundScenario, history: list[dict[str, Any]]) -> str:
        sim = scenario.customer_sim
        if sim.order_id is None:
            return "Sorry, I don't have the order number."
        item = scenario.db.orders[sim.order_id].item
        asked_before = sum(
            1 for m in history if m["role"] == "assistant" and ASKS_ORDER.search(m["content"])
        )
        if sim.persona == "vague" and asked_before == 0:
            return f"It's the {item} I ordered, I don't have the number in front of me."
        if sim.persona == "impatient":
            return f"#{sim.order_id}. I've been waiting for weeks, please hurry."
        return f"Sure, it's order #{sim.order_id} (the {item})."
