"""Run parsed tool calls against a sandbox; never raise, never hang.

`Toolbox.run(call, ctx)` takes one `ParsedCall` and returns a `ToolOutcome`: the text the
agent sees (the result, capped in size, or an `ERROR: ...` message), the error kind, and
the graduated execution grade (`ok` / `wrong` / `error` / `fault`) that the
`tool_execution` reward reads. Order of checks: parse error → unknown tool → arguments
copied (JSON data only; the caller's dict is never kept) → schema validation → injected
fault → the tool body under its deadline → rendering the result. A body may be `async`
(an MCP client's call): it runs to completion on its own event loop (on the worker
thread, where no loop is running). Everything after the
lookup runs inside a guard: a body that raises (even an exception that cannot be printed),
or returns what cannot be shown (cycles, 2,000-deep nesting, ints past 4,300 digits,
objects whose `__str__` raises) gives a `tool_exception` observation; bytes and lone
surrogates become valid text (U+FFFD). Text past `max_output_chars` is cut with a note.

Timeouts: a tool with `timeout_s` runs on a worker thread and is answered, past its
deadline, with a typed `timeout` observation (`ErrorKind.TIMEOUT`, `Execution.FAULT`: the
tool failed, not the agent; `ToolOutcome.infrastructure` tells it from an injected fault).
A Python thread cannot be killed: the late body runs on in the background, its result is
discarded, and any side effect it still makes on the sandbox happens anyway. C code that
holds the GIL (a runaway regex) delays the deadline as well; only a subprocess bounds
that. Tools with `timeout_s=None` (bounded by construction) run inline, skipping the
thread hand-off (~20 µs on an idle core, ~70 µs on a busy one).

A toolbox is cheap to build from shared `Tool` objects; `subset(names)` gives the tools
one scenario offers. `schemas` / `schemas_copy()` hand out fresh copies every call.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import queue
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic_core import from_json, to_json

from core.records import ErrorKind, Execution, InfrastructureError, Termination
from tools.calls import ParsedCall
from tools.sandbox import Sandbox
from tools.schema import CallError, Tool, tool_from_json_schema

MAX_STUCK_WORKERS = 16  # timed-out bodies still running; past this, timed tools are refused
MAX_MESSAGE_CHARS = 1000  # an exception's own message, inside an error observation
SURROGATES = re.compile("[\ud800-\udfff]")
FLAT_ATOMS = frozenset((float, bool, type(None)))
SAFE_INT = 2**53
PLAIN_RESULTS = frozenset((str, dict, list, int, float, bool, type(None)))  # never awaitable
# json.dumps(result, sort_keys=True, default=str), without building an encoder per call
SORTED_JSON = json.JSONEncoder(sort_keys=True, default=str)
UNSORTED_JSON = json.JSONEncoder(default=str)


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
    truncated: int = 0  # characters cut from the result (0: shown whole)
    infrastructure: bool = False  # our failure, not the scenario's or the agent's (a real timeout)
    aborts: str | None = None  # an InfrastructureError: the env ends the episode, unscored


class Toolbox:
    def __init__(self, tools: Iterable[Tool], *, max_output_chars: int = 4096) -> None:
        self.tools: dict[str, Tool] = {}
        for item in tools:
            if item.name in self.tools:
                raise ValueError(f"two tools are named '{item.name}'")
            self.tools[item.name] = item
        if max_output_chars < 1:
            raise ValueError(f"max_output_chars must be >= 1, got {max_output_chars}")
        self.max_output_chars = max_output_chars
        self.versions = {name: item.version for name, item in self.tools.items()}
        self._schemas_text = "[" + ",".join(t.schema_text for t in self.tools.values()) + "]"

    @classmethod
    def from_json_schemas(
        cls,
        descriptions: Iterable[dict[str, Any]],
        handlers: Mapping[str, Callable[..., Any]] | None = None,
        *,
        max_output_chars: int = 4096,
        **tool_options: Any,
    ) -> Toolbox:
        """Tools from JSON-schema descriptions (MCP, OpenAI, BFCL), bodies by tool name."""
        handlers = dict(handlers or {})
        tools = [tool_from_json_schema(d, **tool_options) for d in descriptions]
        unknown = sorted(set(handlers) - {t.name for t in tools})
        if unknown:
            raise ValueError(f"handlers given for tools that are not described: {unknown}")
        tools = [t.with_handler(handlers[t.name]) if t.name in handlers else t for t in tools]
        return cls(tools, max_output_chars=max_output_chars)

    def subset(self, names: Iterable[str]) -> Toolbox:
        """A toolbox of some of these tools, in the order given (per-scenario tool sets)."""
        names = list(names)
        missing = [name for name in names if name not in self.tools]
        if missing:
            raise KeyError(
                f"no tool named {', '.join(map(repr, missing))} (have: {', '.join(self.tools)})"
            )
        return Toolbox([self.tools[name] for name in names], max_output_chars=self.max_output_chars)

    @property
    def schemas(self) -> list[dict[str, Any]]:
        """The OpenAI function schemas, a fresh copy each time (same as `schemas_copy()`)."""
        return from_json(self._schemas_text)  # ~40% faster than json.loads here

    def schemas_copy(self) -> list[dict[str, Any]]:
        return from_json(self._schemas_text)  # ~40% faster than json.loads here

    def run(self, call: ParsedCall, ctx: Sandbox) -> ToolOutcome:
        if call.error_kind is not None:
            message = valid_text(call.error or "ERROR: bad tool call")
            return _failed(message, call.error_kind, _json_copy(call.arguments))
        tool = self.tools.get(call.name) if isinstance(call.name, str) else None
        if tool is None:
            known = ", ".join(self.tools) or "none"
            return _failed(
                valid_text(f"ERROR: Unknown tool '{call.name!s:.100}'. Available tools: {known}"),
                ErrorKind.UNKNOWN_TOOL,
                _json_copy(call.arguments),
            )
        arguments = _json_copy(call.arguments if call.arguments is not None else {})
        if arguments is None:
            message = f"ERROR: Arguments of tool '{tool.name}' are not JSON data"
            return _failed(message, ErrorKind.MALFORMED_JSON, None)
        checked = tool.checker.check(tool.name, arguments)
        if isinstance(checked, CallError):
            return _failed(valid_text(checked.message), checked.kind, arguments)
        fault = ctx.before_call(tool.name)
        if fault is not None:
            return ToolOutcome(fault.message, Execution.FAULT, True, arguments, fault.kind)
        if tool.timeout_s is None:
            return _execute(tool, ctx, checked, arguments, self.max_output_chars)
        finished, value = WORKERS.call(
            lambda: _execute(tool, ctx, checked, arguments, self.max_output_chars), tool.timeout_s
        )
        if finished:
            return value
        message = f"ERROR: Timeout: '{tool.name}' did not answer within {tool.timeout_s:g}s"
        if value is not None:
            message = f"ERROR: Timeout: '{tool.name}' not run: {value}"
        kind = ErrorKind.TIMEOUT
        return ToolOutcome(message, Execution.FAULT, True, arguments, kind, infrastructure=True)


def _execute(
    tool: Tool, ctx: Sandbox, checked: dict[str, Any], arguments: dict[str, Any], limit: int
) -> ToolOutcome:
    """Run the body and render its result; never raises (runs on a worker or inline)."""
    try:
        result = tool.fn(ctx, **checked)
        if type(result) not in PLAIN_RESULTS and inspect.isawaitable(result):  # async body
            result = asyncio.run(_awaited(result))
    except ToolInputError as exc:
        message = f"ERROR: Invalid value: {exception_text(exc)}"
        return ToolOutcome(message, Execution.ERROR, True, arguments, ErrorKind.INVALID_VALUE)
    except InfrastructureError as exc:
        detail = f"tool '{tool.name}': {exception_text(exc)}"
        message = f"ERROR: Tool '{tool.name}' is unavailable"
        return ToolOutcome(
            message, Execution.FAULT, True, arguments, ErrorKind.SERVICE_ERROR,
            infrastructure=True, aborts=detail,
        )  # fmt: skip
    except (Exception, SystemExit) as exc:  # a tool that raises is an observation, never a crash
        message = f"ERROR: Tool '{tool.name}' failed: {type(exc).__name__}: {exception_text(exc)}"
        return ToolOutcome(message, Execution.ERROR, True, arguments, ErrorKind.TOOL_EXCEPTION)
    execution = Execution.OK
    if isinstance(result, ToolResult):
        execution, result = result.execution, result.content
    try:
        text = result if type(result) is str else render(result)
        if not text.isascii():
            text = valid_text(text)
    except Exception as exc:  # cycles, too deep, huge ints, a __str__ that raises
        message = (
            f"ERROR: Tool '{tool.name}' returned a result that cannot be shown as text: "
            f"{type(exc).__name__}: {exception_text(exc)}"
        )
        return ToolOutcome(message, Execution.ERROR, True, arguments, ErrorKind.TOOL_EXCEPTION)
    cut = len(text) - limit
    if cut > 0:
        text = text[:limit] + f"... [truncated {cut} characters]"
        return ToolOutcome(text, execution, True, arguments, None, tool.ends_episode, cut)
    return ToolOutcome(text, execution, True, arguments, None, tool.ends_episode)


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


def render(result: Any) -> str:
    """A tool's result as the agent sees it: text as is, anything else as JSON. May raise."""
    if isinstance(result, str):
        return result
    if isinstance(result, bytes | bytearray):
        return bytes(result).decode("utf-8", "replace")
    try:
        return SORTED_JSON.encode(result)
    except TypeError:  # keys of mixed types cannot be sorted: keep their order
        return UNSORTED_JSON.encode(result)


def valid_text(text: str) -> str:
    """Text that encodes as UTF-8: lone surrogates become U+FFFD (linear, cheap if ASCII)."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return SURROGATES.sub("\ufffd", text)
    return text


def exception_text(exc: BaseException) -> str:
    """An exception's message, clipped and valid; never raises."""
    try:
        text = str(exc)
    except Exception:
        return "<message unavailable>"
    return valid_text(text[:MAX_MESSAGE_CHARS])


def _json_copy(arguments: dict[str, Any] | None) -> dict[str, Any] | None:
    """A JSON-native copy of the caller's arguments (None if they are not JSON data)."""
    if not isinstance(arguments, dict):
        return None
    for key, value in arguments.items():  # the common case: flat, ASCII, small ints
        kind = type(value)
        if type(key) is not str:
            break
        if kind is str:
            if not value.isascii():
                break
        elif kind is int:
            if not -SAFE_INT < value < SAFE_INT:
                break
        elif kind not in FLAT_ATOMS:
            break
    else:
        return dict(arguments)  # a shallow copy is a full one: the values are immutable
    try:
        copied = from_json(to_json(arguments, inf_nan_mode="constants"))
    except Exception:  # cycles, nesting past the serializer's depth, huge ints, surrogates
        return None
    return copied if isinstance(copied, dict) else None


def _failed(message: str, kind: ErrorKind, arguments: dict[str, Any] | None) -> ToolOutcome:
    return ToolOutcome(message, Execution.ERROR, False, arguments, kind)


# ---- worker threads with a deadline ------------------------------------------------------
class _Job:
    __slots__ = ("done", "fn", "value")

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn
        self.value: Any = None
        self.done = threading.Lock()
        self.done.acquire()

    def run(self) -> None:
        try:
            self.value = self.fn()
        finally:
            self.done.release()


class _Worker:
    """One daemon thread fed through its own queue; abandoned once a job overruns."""

    def __init__(self, pool: _WorkerPool) -> None:
        self.pool = pool
        self.jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self.abandoned = False
        threading.Thread(target=self._loop, name="toolgym-tool", daemon=True).start()

    def _loop(self) -> None:
        while True:
            job = self.jobs.get()
            if job is not None:
                job.run()
            if self.abandoned:  # the caller gave up on this thread: leave
                self.pool.unstuck()
                return


class _WorkerPool:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []
        self._stuck = 0

    def call(self, fn: Callable[[], Any], timeout_s: float) -> tuple[bool, Any]:
        """(True, fn()) if it finished in time; (False, None) if not; (False, reason) if refused."""
        with self._lock:
            if self._stuck >= MAX_STUCK_WORKERS:
                return False, f"{self._stuck} earlier tool calls are still running"
            worker = self._idle.pop() if self._idle else None
        if worker is None:
            worker = _Worker(self)
        job = _Job(fn)
        worker.jobs.put(job)
        if job.done.acquire(timeout=timeout_s):
            with self._lock:
                self._idle.append(worker)
            return True, job.value
        with self._lock:
            self._stuck += 1
        worker.abandoned = True
        worker.jobs.put(None)  # wakes it if it finished meanwhile, so it leaves either way
        return False, None

    def unstuck(self) -> None:
        with self._lock:
            self._stuck -= 1


WORKERS = _WorkerPool()


def _reset_workers_after_fork() -> None:
    global WORKERS
    WORKERS = _WorkerPool()  # threads do not survive a fork: never hand a job to a dead one


os.register_at_fork(after_in_child=_reset_workers_after_fork)
