"""The per-episode sandbox: frozen clock, in-memory database, fault plan, seeded rng.

Built fresh by the env at `reset` from the scenario; nothing in it touches the real world.
Tools receive it as their first argument (`ctx`). The same scenario and seed always give
the same sandbox, so the same actions give the same observations.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np

from core.records import ErrorKind, Fault
from tools.schema import CallError

FAULT_MESSAGES = {
    "http_500": "ERROR: HTTP 500 Internal Server Error from the service behind '{tool}'",
    "timeout": "ERROR: Timeout: '{tool}' did not answer within 30s",
}


class Sandbox:
    def __init__(
        self,
        *,
        now: datetime,
        db: dict[str, Any] | None = None,
        faults: Sequence[Fault] = (),
        rng: np.random.Generator | None = None,
    ) -> None:
        self.now = now
        self.db: dict[str, Any] = db if db is not None else {}  # owned: pass a fresh dict
        self.faults = {fault.tool: fault for fault in faults}
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.call_counts: dict[str, int] = {}
        self.events: list[dict[str, Any]] = []  # side effects, in order (refunds, escalations)

    def today(self) -> str:
        return self.now.date().isoformat()

    def record(self, event: str, **fields: Any) -> None:
        self.events.append({"event": event, **fields})

    def before_call(self, tool_name: str) -> CallError | None:
        """Count the call; return the injected fault if the plan says this call fails."""
        count = self.call_counts.get(tool_name, 0) + 1
        self.call_counts[tool_name] = count
        fault = self.faults.get(tool_name)
        if fault is None or (fault.first_n is not None and count > fault.first_n):
            return None
        kind = ErrorKind.TIMEOUT if fault.kind == "timeout" else ErrorKind.SERVICE_ERROR
        return CallError(kind, FAULT_MESSAGES[fault.kind].format(tool=tool_name))

    def snapshot(self) -> dict[str, Any]:
        """The end state rewards judge: database plus the ordered side effects.

        Not a copy: it is taken when the episode ends, after which nothing changes this
        sandbox (the next `reset` builds a new one)."""
        return {"db": self.db, "events": self.events}
