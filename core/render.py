"""Message rendering, defined once: a tool call as the Hermes text a model writes.

The Qwen/Hermes chat format puts each call in its own block::

    <tool_call>
    {"name": "check_refund", "arguments": {"customer_id": 42, "order_id": 7}}
    </tool_call>

Scripted policies write their calls with `hermes_call`, and SFT export turns recorded
OpenAI-style calls back into the same text, so a model is trained on exactly the bytes the
rollouts produce and the env parses (`tools.calls`).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

OPEN_CALL, CLOSE_CALL = "<tool_call>", "</tool_call>"


def hermes_call(name: str, arguments: Mapping[str, Any] | str) -> str:
    """One `<tool_call>` block; `arguments` as a mapping or as OpenAI's JSON text."""
    if isinstance(arguments, str):
        with contextlib.suppress(ValueError):  # broken JSON text stays as the model wrote it
            arguments = json.loads(arguments)
    body = json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False)
    return f"{OPEN_CALL}\n{body}\n{CLOSE_CALL}"


def hermes_message(content: str, calls: Iterable[tuple[str, Mapping[str, Any] | str]]) -> str:
    """An assistant turn as text: its content, then one block per call."""
    blocks = [hermes_call(name, arguments) for name, arguments in calls]
    return "\n".join(part for part in (content, *blocks) if part)
