"""The policy contract, and the base of scripted policies.

`Policy`, `PolicyRequest` and `PolicyResponse` are defined in `core.policy` (at the bottom
of the import graph, so the one rollout loop can drive any policy) and re-exported here:
a policy's `act(requests)` answers a batch of requests, one per live episode, with one
response each, in order.

`ScriptedPolicy` answers each request on its own with `decide(messages) -> str`, a pure
function of the conversation so far: the system prompt, the customer's words and the tool
results in it. It never sees the scenario, so it can only succeed by reading what the env
showed it, and the same conversation always gives the same text (exact replays). The
text is what a model would write: Hermes `<tool_call>` blocks (see `tool_call_text`),
optionally after a short `<think>`, or a plain reply to the customer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from core.policy import Policy, PolicyRequest, PolicyResponse
from core.render import hermes_call

__all__ = [
    "Policy",
    "PolicyRequest",
    "PolicyResponse",
    "ScriptedPolicy",
    "reply_text",
    "tool_call_text",
]


def tool_call_text(name: str, arguments: dict[str, Any], *, think: str | None = None) -> str:
    """One Hermes tool call, as a model following the chat template would write it."""
    block = hermes_call(name, arguments)
    return f"<think>{think}</think>\n{block}" if think else block


def reply_text(text: str, *, think: str | None = None) -> str:
    """A plain reply to the customer, optionally after a short thought."""
    return f"<think>{think}</think>\n{text}" if think else text


class ScriptedPolicy:
    """A rule-based policy: each episode's next message is `decide(conversation)`."""

    name: ClassVar[str] = "scripted"

    def act(self, requests: Sequence[PolicyRequest]) -> list[PolicyResponse]:
        return [PolicyResponse(text=self.decide(list(request.messages))) for request in requests]

    def decide(self, messages: list[dict[str, Any]]) -> str:
        """The next assistant message, from the conversation (observation) alone."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
