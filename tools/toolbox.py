"""Run parsed tool calls against a sandbox; never raise.

`Toolbox.run(call, ctx)` takes one `ParsedCall` and returns a `ToolOutcome`: the text the
agent sees (the result, capped in size, or an `ERROR: ...` message), the error kind, and
the graduated execution grade (`ok` / `wrong` / `error` / `fault`) that the
`tool_execution` reward reads. Order of checks: parse error → unknown tool → injected
fault → schema validation → the tool body (an exception there is an error observation).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from core.records import ErrorKind, Execution, Termination
from tools.calls import ParsedCall
from tools.sandbox import Sandbox
from tools.schema import CallError, Tool


class ToolInputError(ValueError):
    """Raised by a tool body when an argument is well-typed but unusable (agent's error)."""


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What a tool body may return to grade its own result (e.g. a lookup that found nothing)."""

    content: Any
    execution: Execution = Execution.OK


@dataclass(slots=True)
class ToolOutcome:
    text: str
    execution: Execution
    valid: bool
    arguments: dict[str, Any] | None = None
    error_kind: ErrorKind | None = None
    ends_episode: Termination | None = None


class Toolbox:
    def __init__(self, tools: Iterable[Tool], *, max_output_chars: int = 4096) -> None:
        self.tools: dict[str, Tool] = {}
        for item in tools:
            if item.name in self.tools:
                raise ValueError(f"two tools are named '{item.name}'")
            self.tools[item.name] = item
        self.max_output_chars = max_output_chars
        self.schemas = [item.schema for item in self.tools.values()]
        self.versions = {name: item.version for name, item in self.tools.items()}

    def run(self, call: ParsedCall, ctx: Sandbox) -> ToolOutcome:
        if call.error_kind is not None:
            return _failed(call.error or "ERROR: bad tool call", call.error_kind, call.arguments)
        tool = self.tools.get(call.name or "")
        if tool is None:
            known = ", ".join(self.tools) or "none"
            return _failed(
                f"ERROR: Unknown tool '{call.name}'. Available tools: {known}",
                ErrorKind.UNKNOWN_TOOL,
                call.arguments,
            )
        arguments = call.arguments or {}
        checked = tool.validate(arguments)
        if isinstance(checked, CallError):
            return _failed(checked.message, checked.kind, arguments)
        fault = ctx.before_call(tool.name)
        if fault is not None:
            return ToolOutcome(fault.message, Execution.FAULT, True, arguments, fault.kind)
        try:
            result = tool.fn(ctx, **checked)
        except ToolInputError as exc:
            message = f"ERROR: Invalid value: {exc}"
            return ToolOutcome(message, Execution.ERROR, True, arguments, ErrorKind.INVALID_VALUE)
        except Exception as exc:  # a tool that raises is an observation, never a crash
            return ToolOutcome(
                f"ERROR: Tool '{tool.name}' failed: {type(exc).__name__}: {exc}",
                Execution.ERROR,
                True,
                arguments,
                ErrorKind.TOOL_EXCEPTION,
            )
        execution = Execution.OK
        if isinstance(result, ToolResult):
            execution, result = result.execution, result.content
        return ToolOutcome(
            self._render(result), execution, True, arguments, None, tool.ends_episode
        )

    def _render(self, result: Any) -> str:
        text = (
            result if isinstance(result, str) else json.dumps(result, sort_keys=True, default=str)
        )
        if len(text) > self.max_output_chars:
            cut = len(text) - self.max_output_chars
            text = text[: self.max_output_chars] + f"... [truncated {cut} characters]"
        return text


def _failed(message: str, kind: ErrorKind, arguments: dict[str, Any] | None) -> ToolOutcome:
    return ToolOutcome(message, Execution.ERROR, False, arguments, kind)
