"""The toolbox under hostile tools and callers: bounded time, results that cannot be
rendered, exceptions that cannot be printed, and shared data that must not leak."""

from __future__ import annotations

import ast
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.records import ErrorKind, Execution
from tools import refunds, standard, toolbox
from tools.calls import ParsedCall
from tools.sandbox import Sandbox
from tools.schema import DEFAULT_TIMEOUT_S, tool
from tools.toolbox import Toolbox

TOOLS_DIR = Path(__file__).resolve().parents[1] / "tools"


@tool(timeout_s=0.2)
def nap(ctx: Sandbox, seconds: float) -> str:
    """Sleep (a tool that hangs)."""
    time.sleep(seconds)
    return "rested"


@tool
def hand_back(ctx: Sandbox, what: str) -> Any:
    """Return a hostile value."""
    return hostile_value(what)


def hostile_value(what: str) -> Any:
    if what == "cycle":
        loop: list[Any] = []
        loop.append(loop)
        return loop
    if what == "deep":
        deep: list[Any] = []
        for _ in range(2000):
            deep = [deep]
        return deep
    if what == "huge_int":
        return 10**5000
    if what == "unprintable":
        return {"value": Unprintable()}
    if what == "mixed_keys":
        return {1: "a", "b": 2}
    raise AssertionError(what)


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no str for you")

    __repr__ = __str__


class UnprintableError(Exception):
    def __str__(self) -> str:
        raise RuntimeError("cannot print this error")


@tool
def raise_unprintable(ctx: Sandbox) -> str:
    """Fail with an exception whose message cannot be built."""
    raise UnprintableError()


@tool
def surrogate_text(ctx: Sandbox) -> Any:
    """Return text that is not valid Unicode, and bytes."""
    return "bad \ud800 text"


@tool
def raw_bytes(ctx: Sandbox) -> bytes:
    """Return bytes."""
    return b"caf\xc3\xa9 \xff"


@tool
def raise_surrogate(ctx: Sandbox) -> str:
    """Fail with a message that is not valid Unicode."""
    raise ValueError("broken \udcff message")


BOX = Toolbox([nap, hand_back, raise_unprintable, surrogate_text, raw_bytes, raise_surrogate])


def run(name: str, arguments: dict[str, Any] | None = None, box: Toolbox = BOX):
    call = ParsedCall(raw="", name=name, arguments=arguments or {})
    return box.run(call, Sandbox(now=datetime(2026, 3, 10)))


def test_tools_declare_a_timeout_with_a_default() -> None:
    assert hand_back.timeout_s == DEFAULT_TIMEOUT_S == 2.0
    assert nap.timeout_s == 0.2


def test_a_hanging_tool_is_cut_off_with_a_typed_timeout() -> None:
    start = time.perf_counter()
    outcome = run("nap", {"seconds": 3.0})
    elapsed = time.perf_counter() - start
    assert elapsed < 1.5
    assert outcome.text == "ERROR: Timeout: 'nap' did not answer within 0.2s"
    assert (outcome.error_kind, outcome.execution, outcome.valid, outcome.infrastructure) == (
        ErrorKind.TIMEOUT,
        Execution.FAULT,
        True,
        True,
    )
    # The toolbox goes on with a fresh worker: the next calls run normally.
    assert run("nap", {"seconds": 0.0}).text == "rested"
    assert run("nap", {"seconds": 0.01}).text == "rested"


def test_past_the_stuck_limit_timed_tools_are_refused_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(toolbox, "WORKERS", toolbox._WorkerPool())
    monkeypatch.setattr(toolbox, "MAX_STUCK_WORKERS", 1)
    assert run("nap", {"seconds": 1.0}).error_kind is ErrorKind.TIMEOUT  # one stuck
    start = time.perf_counter()
    refused = run("nap", {"seconds": 0.0})
    assert time.perf_counter() - start < 0.1
    assert refused.text == "ERROR: Timeout: 'nap' not run: 1 earlier tool calls are still running"
    assert refused.error_kind is ErrorKind.TIMEOUT and refused.infrastructure


@pytest.mark.parametrize(
    "call",
    [
        ParsedCall(raw="", name=["not", "hashable"], arguments={}),  # type: ignore[arg-type]
        ParsedCall(raw="", name="take", arguments=[1, 2]),  # type: ignore[arg-type]
    ],
)
def test_calls_built_by_hand_with_wrong_shapes_are_errors(call: ParsedCall) -> None:
    outcome = Toolbox([take]).run(call, Sandbox(now=datetime(2026, 3, 10)))
    assert outcome.error_kind in (ErrorKind.UNKNOWN_TOOL, ErrorKind.MALFORMED_JSON)
    assert not outcome.valid


@pytest.mark.parametrize("what", ["cycle", "deep", "huge_int", "unprintable"])
def test_unrenderable_results_are_tool_exceptions(what: str) -> None:
    outcome = run("hand_back", {"what": what})
    assert outcome.error_kind is ErrorKind.TOOL_EXCEPTION and outcome.valid
    assert outcome.execution is Execution.ERROR
    assert outcome.text.startswith("ERROR: Tool 'hand_back' returned a result that cannot be shown")
    outcome.text.encode("utf-8")  # always valid Unicode


def test_mixed_key_results_render_as_json() -> None:
    outcome = run("hand_back", {"what": "mixed_keys"})
    assert outcome.error_kind is None
    assert outcome.text == '{"1": "a", "b": 2}'


def test_an_exception_that_cannot_be_printed_is_still_an_observation() -> None:
    outcome = run("raise_unprintable")
    assert outcome.error_kind is ErrorKind.TOOL_EXCEPTION
    assert outcome.text == (
        "ERROR: Tool 'raise_unprintable' failed: UnprintableError: <message unavailable>"
    )


def test_lone_surrogates_and_bytes_become_valid_text() -> None:
    assert run("surrogate_text").text == "bad \ufffd text"
    assert run("raw_bytes").text == "café \ufffd"
    failed = run("raise_surrogate")
    assert failed.text == "ERROR: Tool 'raise_surrogate' failed: ValueError: broken \ufffd message"


def test_outputs_over_the_limit_are_cut_with_a_note() -> None:
    box = Toolbox([surrogate_text], max_output_chars=4)
    outcome = run("surrogate_text", box=box)
    assert outcome.text == "bad ... [truncated 6 characters]"
    assert outcome.truncated == 6


@tool
def take(ctx: Sandbox, what: str, nested: dict) -> str:
    """Accept anything."""
    return "ok"


def test_the_callers_arguments_are_copied_not_stored() -> None:
    arguments = {"what": "x", "nested": {"a": [1, 2]}}
    outcome = run("take", arguments, box=Toolbox([take]))
    assert outcome.text == "ok"
    arguments["nested"]["a"].append(3)
    arguments["added"] = True
    assert outcome.arguments == {"what": "x", "nested": {"a": [1, 2]}}


def test_schemas_handed_out_are_copies() -> None:
    box = Toolbox([standard.calculator, standard.get_current_date])
    handed = box.schemas_copy()
    handed[0]["function"]["name"] = "hijacked"
    handed[0]["function"]["parameters"]["properties"].clear()
    box.schemas[1]["function"]["description"] = "changed"
    standard.calculator.schema["function"]["name"] = "changed too"
    fresh = Toolbox([standard.calculator]).schemas_copy()[0]["function"]
    assert fresh["name"] == "calculator"
    assert list(fresh["parameters"]["properties"]) == ["expression"]
    assert box.schemas_copy()[1]["function"]["description"].startswith("Get today's date")


def test_subset_builds_a_per_episode_toolbox() -> None:
    full = Toolbox([standard.calculator, standard.get_current_date, refunds.check_refund])
    small = full.subset(["get_current_date", "calculator"])
    assert list(small.tools) == ["get_current_date", "calculator"]
    assert small.tools["calculator"] is standard.calculator
    assert [s["function"]["name"] for s in small.schemas_copy()] == [
        "get_current_date",
        "calculator",
    ]
    assert run("check_refund", {"customer_id": 1, "order_id": 2}, box=small).error_kind is (
        ErrorKind.UNKNOWN_TOOL
    )
    with pytest.raises(KeyError, match="'search'"):
        full.subset(["calculator", "search"])


def test_tools_import_nothing_above_them() -> None:
    upward = ("scenarios", "envs", "rewards", "policies", "evals", "trainers")
    for path in sorted(TOOLS_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                assert name.split(".")[0] not in upward, f"{path.name} imports {name}"


JSON_ISH = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats()
    | st.text(alphabet=st.characters(codec=None, min_codepoint=0, max_codepoint=0xDFFF)),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=12,
)
KEYS = st.sampled_from(["what", "nested", "expression"]) | st.text(max_size=8)


@settings(max_examples=80, deadline=None)
@given(
    name=st.sampled_from(["take", "hand_back", "calculator", "missing", ""]),
    arguments=st.dictionaries(KEYS, JSON_ISH, max_size=4),
)
def test_any_arguments_give_an_observation_never_an_exception(
    name: str, arguments: dict[str, Any]
) -> None:
    box = Toolbox([take, hand_back, standard.calculator])
    outcome = run(name, arguments, box=box)
    outcome.text.encode("utf-8")  # valid Unicode, whatever came in
    assert outcome.text.startswith("ERROR: ") == (outcome.error_kind is not None)
