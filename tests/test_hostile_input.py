"""Hostile input and faults (issue 10), one test per class, each as a user would hit it.

Model output that crashes or stalls a step, episodes that cannot be saved, two evals
writing one folder, and user files that fail without naming themselves. Expected
messages are written out by hand.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

import envs
from core.files import FolderInUse, RunLock, atomic_write_text
from core.records import ErrorKind, Message, Trajectory
from envs.customer import ScriptedCustomer
from evals.rules import RuleSyntaxError, load_rules
from evals.run import EXIT_CONFIG, EXIT_OK, main
from scenarios.loader import ScenarioFileError, load_scenarios
from scenarios.math import MathScenario
from scenarios.refund import REFUND_SLICES, RefundScenario
from tests.conftest import lost_order_scenario
from tools.calls import MAX_CALLS_PER_TURN, parse_action, parse_text
from tools.standard import CalculatorError, evaluate_arithmetic

REPO = Path(__file__).resolve().parent.parent
CASES_FILE = REPO / "scenarios/data/refund_agent/cases.yaml"


def openai_call(arguments: Any, name: str = "calculator") -> dict[str, Any]:
    function = {"name": name, "arguments": arguments}
    return {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "function": function}]}


def deep_list(levels: int) -> list[Any]:
    root: list[Any] = []
    current = root
    for _ in range(levels):
        child: list[Any] = []
        current.append(child)
        current = child
    return root


def huge_int() -> int:
    limit = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        return 10**5000  # 5,001 digits: str() of it raises under the default 4,300 limit
    finally:
        sys.set_int_max_str_digits(limit)


def cyclic() -> dict[str, Any]:
    loop: dict[str, Any] = {}
    loop["self"] = loop
    return loop


# ---- the parser: never raises, cleans text, copies arguments --------------------------


def test_a_lone_surrogate_in_a_tool_call_body_becomes_a_replacement_character():
    text = '<tool_call>{"name": "calculator", "arguments": {"expression": "1+\ud800"}}</tool_call>'
    [call] = parse_action(text).calls
    assert call.error_kind is None and call.arguments == {"expression": "1+\ufffd"}
    assert "\ud800" not in call.raw and call.raw.endswith("</tool_call>")


def test_a_lone_surrogate_in_openai_arguments_text_becomes_a_replacement_character():
    [call] = parse_action(openai_call('{"expression": "2*\udc00"}')).calls
    assert call.error_kind is None and call.arguments == {"expression": "2*\ufffd"}


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        ({1: 2}, "a key that is not a string (int) at function.arguments"),
        (cyclic(), "a reference cycle at function.arguments.self"),
        (
            {"a": deep_list(2000)},
            "nesting deeper than 64 levels at function.arguments.a[0][0][0][0][0]...",
        ),
        ({"n": huge_int()}, "an integer longer than 1024 bits at function.arguments.n"),
        ({"b": b"\xff"}, "bytes at function.arguments.b"),
        ({"x": float("nan")}, "a non-finite number at function.arguments.x"),
        ({"s": {1, 2}}, "a set at function.arguments.s"),
    ],
    ids=["int-key", "cycle", "2000-deep", "5001-digit-int", "bytes", "nan", "set"],
)
def test_python_built_arguments_that_are_not_json_are_an_error_call(arguments, problem):
    [call] = parse_action(openai_call(arguments)).calls
    assert call.error_kind == ErrorKind.MALFORMED_JSON
    assert call.error == f"ERROR: Tool call is not plain JSON: {problem}"
    json.loads(call.raw)  # the raw record is still JSON text


def test_parsed_arguments_are_copies_not_the_callers_dict():
    arguments = {"expression": "1+1", "nested": {"k": [1]}}
    [call] = parse_action(openai_call(arguments)).calls
    arguments["nested"]["k"].append(2)
    arguments["expression"] = "changed"
    assert call.arguments == {"expression": "1+1", "nested": {"k": [1]}}


def test_a_turn_reads_at_most_the_call_cap_and_says_so():
    text = '<tool_call>{"name": "calculator", "arguments": {}}</tool_call>' * 100
    calls = parse_action(text).calls
    assert len(calls) == MAX_CALLS_PER_TURN + 1
    assert calls[-1].error == (
        f"ERROR: 100 tool calls in one turn; only the first {MAX_CALLS_PER_TURN} were read, "
        "the rest were not run"
    )


class CountingText(str):
    """A str that adds up how many characters its `find` calls scanned."""

    scanned = 0

    def find(self, sub: str, start: Any = None, end: Any = None) -> int:  # type: ignore[override]
        found = super().find(sub, start, end)
        stop = found + len(sub) if found >= 0 else len(self)
        CountingText.scanned += stop - (start or 0)
        return found


@pytest.mark.parametrize(
    "block", ["<tool_call></tool_call>", "<think></think>", "<think>a</think><tool_call>"]
)
def test_parsing_many_blocks_scans_the_text_a_bounded_number_of_times(block):
    text = CountingText(block * (16384 // len(block)))
    CountingText.scanned = 0
    parse_text(text)
    # A rescan per block (the quadratic bug) costs blocks * len / 2, about 5.6M here.
    assert CountingText.scanned <= 8 * len(text)


def fastest_ms(fn: Callable[[], object], repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best * 1000


def test_an_unclosed_answer_tag_before_thousands_of_newlines_is_scored_in_milliseconds():
    # The regex `<answer>\s*(.*?)\s*</answer>` took 15 s on this 3 KB text (cubic).
    action = "<answer>" + "\n" * 3000 + "x"

    def play() -> None:
        env = envs.make_raw("math_tools", split="eval")
        env.begin(None, seed=0)
        result = env.advance(action)
        assert result.terminated and result.trajectory.reward_components["answer_format"] == 0

    assert fastest_ms(play) < 50


def test_a_long_reply_with_many_confirmation_words_is_answered_in_linear_time():
    scenario = lost_order_scenario()
    history = [{"role": "user", "content": scenario.opening}]
    text = "?" + " ok" * 5000  # every "ok" used to rescan to the end looking for a "?"
    assert ScriptedCustomer().reply(text, scenario, history) is not None
    assert fastest_ms(lambda: ScriptedCustomer().reply(text, scenario, history)) < 5


@pytest.mark.parametrize("env_name", envs.ENVS.names())
def test_hostile_dict_actions_are_observations_and_the_episode_saves(env_name):
    hostile = [
        openai_call('{"expression": "\ud800"}'),
        openai_call({1: 2}),
        openai_call(cyclic()),
        openai_call({"a": deep_list(2000)}),
        openai_call({"n": huge_int()}),
        {"role": "assistant", "content": deep_list(2000)},
        {"role": "assistant", "content": "x\ud800", "tool_calls": [{"id": "\udfff"}]},
    ]
    env = envs.make_raw(env_name, split="eval")
    for action in hostile:
        env.begin(None, seed=1)
        result = env.advance(action)
        saved = env.trajectory.to_json()
        saved.encode("utf-8")  # writable to a UTF-8 file
        assert Trajectory.from_json(saved).turns == 1
        assert result.turn == 1


# ---- records: every trajectory can be saved ---------------------------------------------


def test_a_trajectory_with_hostile_values_saves_with_deterministic_replacements():
    trajectory = Trajectory(
        env_id="e",
        scenario_id="s",
        scenario_hash="h",
        seed=1,
        messages=[Message(role="user", content="a\ud800b")],
        info={"bytes": b"ok\xff", "loop": cyclic(), "deep": deep_list(2000)},
        end_state={"object": object()},
    )
    line = trajectory.to_json()
    assert line == trajectory.to_json()  # deterministic
    back = Trajectory.from_json(line)
    assert back.messages[0].content == "a\ufffdb"
    assert back.info["bytes"] == "ok\\xff"
    assert back.info["loop"] == {"self": "<cycle>"}
    assert back.end_state == {"object": "<object>"}
    depth, node = 0, back.info["deep"]
    while isinstance(node, list) and node:
        depth, node = depth + 1, node[0]
    assert node == "<too deep>" and depth == 64 - 2  # the trajectory and info are 2 levels


# ---- the run folder: one writer, atomic files, clean errors ------------------------------


def evaluate(out: Path | str, *overrides: str) -> int:
    return main(["env=refund_agent", "policy=expert", "split=eval", f"out={out}", *overrides])


def error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    return err


def test_a_second_writer_is_refused_naming_the_holder(tmp_path, capsys):
    out = tmp_path / "run"
    with RunLock(out, "python -m evals.run out=run (first)"):
        assert evaluate(out, "limit=1") == EXIT_CONFIG
    err = error_line(capsys)
    holder = f"pid {os.getpid()} on {socket.gethostname()} since "
    assert err.startswith(f"evals.run: bad config: out: {out} is in use by another run ({holder}")
    assert err.endswith(
        "command: python -m evals.run out=run (first)); wait for it to finish or choose "
        "another folder"
    )
    assert not (out / "episodes.jsonl").exists()  # refused before touching anything
    assert evaluate(out, "limit=1") == EXIT_OK  # the lock is free again


def test_a_lock_is_exclusive_within_one_process_too(tmp_path):
    with RunLock(tmp_path), pytest.raises(FolderInUse):
        RunLock(tmp_path).acquire()


def test_out_as_an_existing_file_exits_2_in_one_line(tmp_path, capsys):
    path = tmp_path / "afile"
    path.write_text("x")
    assert evaluate(path) == EXIT_CONFIG
    assert error_line(capsys) == f"evals.run: bad config: out: {path} exists and is not a folder"


def test_out_under_a_file_exits_2_in_one_line(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    path = tmp_path / "afile" / "run"
    assert evaluate(path) == EXIT_CONFIG
    assert error_line(capsys) == (
        f"evals.run: bad config: out: cannot write in {path}: Not a directory"
    )


def test_resume_over_a_corrupt_middle_line_names_file_and_line(tmp_path, capsys):
    out = tmp_path / "run"
    assert evaluate(out, "limit=3") == EXIT_OK
    lines = (out / "episodes.jsonl").read_text().splitlines(keepends=True)
    lines[1] = '{"broken\n'
    (out / "episodes.jsonl").write_text("".join(lines))
    capsys.readouterr()
    assert evaluate(out, "limit=3", "resume=true") == EXIT_CONFIG
    err = error_line(capsys)
    assert err.startswith(
        f"evals.run: bad config: resume: {out / 'episodes.jsonl'}:2: not a trajectory record"
    )
    assert err.endswith("remove that line or run with resume=false")


def test_out_dot_with_check_frozen_reruns_beside_the_folder(tmp_path, monkeypatch, capsys):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert evaluate(".", "limit=2", "check_frozen=true") == EXIT_OK
    assert (tmp_path / "work-rerun" / "metrics.json").is_file()
    assert (work / "episodes.jsonl").is_file()


def test_an_atomic_write_that_fails_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "metrics.json"
    atomic_write_text(path, "old\n")
    with pytest.raises(UnicodeEncodeError):
        atomic_write_text(path, "new \ud800\n")
    assert path.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


# ---- user files: one line naming file, line and field -----------------------------------


def write_cases(tmp_path: Path, old: str, new: str, name: str = "cases.yaml") -> Path:
    text = CASES_FILE.read_text()
    assert old in text
    path = tmp_path / name
    path.write_text(text.replace(old, new, 1))
    return path


def test_a_scenario_file_with_an_impossible_date_names_line_and_column(tmp_path):
    path = write_cases(tmp_path, "now: 2026-03-10T09:00:00", "now: 2026-02-30")
    with pytest.raises(ScenarioFileError) as error:
        load_scenarios(path, RefundScenario)
    line = 1 + CASES_FILE.read_text().split("now: 2026-03-10T09:00:00")[0].count("\n")
    assert str(error.value) == (
        f"{path}:{line}:8: not valid YAML: invalid date '2026-02-30': day is out of range for month"
    )


def test_a_scenario_file_that_is_not_utf8_names_the_line(tmp_path):
    path = tmp_path / "cases.yaml"
    path.write_bytes(b"- id: a\n  opening: caf\xe9\n")
    with pytest.raises(ScenarioFileError) as error:
        load_scenarios(path, RefundScenario)
    assert str(error.value) == f"{path}:2: not UTF-8 (byte 0xe9 at offset 22)"


def test_an_empty_scenario_list_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "cases.yaml"
    path.write_text("[]\n")
    with pytest.raises(ScenarioFileError) as error:
        load_scenarios(path, RefundScenario)
    assert str(error.value) == f"{path}: no scenarios in the file (an empty list)"


def test_an_unknown_slice_is_refused_when_the_env_declares_its_slices(tmp_path):
    path = write_cases(tmp_path, "slices: [refund_happy]", "slices: [refund_hapy]")
    assert load_scenarios(path, RefundScenario)  # without a declaration: accepted
    with pytest.raises(ScenarioFileError) as error:
        load_scenarios(path, RefundScenario, known_slices=REFUND_SLICES)
    known = ", ".join(sorted(REFUND_SLICES))
    assert str(error.value) == (
        f"{path}: scenario 'happy-lost-order' (#1): slices: unknown slice 'refund_hapy'; "
        f"known: {known}"
    )


def test_a_rules_file_that_is_not_utf8_names_line_and_column(tmp_path):
    path = tmp_path / "gate.rules"
    path.write_bytes(b"aggregate.success@1.lower_ci >= 0.8\n# caf\xe9\n")
    with pytest.raises(RuleSyntaxError) as error:
        load_rules(path)
    first = str(error.value).splitlines()[0]
    assert first == f"{path}:2:6: expected UTF-8 text, found byte 0xe9"
    assert (error.value.line, error.value.column) == (2, 6)


def test_a_calculator_input_with_a_lone_surrogate_is_the_callers_error():
    with pytest.raises(CalculatorError) as error:
        evaluate_arithmetic("1+\ud800")
    assert str(error.value) == "not an arithmetic expression: invalid Unicode text"


def test_a_math_scenario_given_to_refund_agent_is_a_type_error_naming_it():
    math = MathScenario(
        id="m1", env="math_tools", now=datetime(2026, 1, 1), question="1+1?", answer=2
    )
    env = envs.make_raw("refund_agent", split="eval")
    with pytest.raises(TypeError) as error:
        env.begin(math, seed=0)
    assert str(error.value) == (
        "refund_agent: scenario 'm1' is a MathScenario, expected a RefundScenario"
    )


def test_resume_over_an_episodes_file_that_is_not_utf8_names_the_line(tmp_path, capsys):
    out = tmp_path / "run"
    assert evaluate(out, "limit=2") == EXIT_OK
    lines = (out / "episodes.jsonl").read_bytes().splitlines(keepends=True)
    (out / "episodes.jsonl").write_bytes(lines[0] + b"\xff\n" + lines[1])
    capsys.readouterr()
    assert evaluate(out, "limit=2", "resume=true") == EXIT_CONFIG
    assert error_line(capsys) == (
        f"evals.run: bad config: resume: {out / 'episodes.jsonl'}:2: not UTF-8; fix it or run "
        "with resume=false"
    )


@pytest.mark.slow
def test_a_run_killed_with_sigkill_refuses_a_second_writer_then_resumes_byte_identical(
    tmp_path, capsys
):
    clean, out = tmp_path / "clean", tmp_path / "killed"
    args = ["env=refund_agent", "policy=expert", "split=eval", "limit=120"]
    child = subprocess.Popen(
        [sys.executable, "-m", "evals.run", *args, f"out={out}"],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        episodes = out / "episodes.jsonl"
        deadline = time.monotonic() + 300
        while not (episodes.exists() and episodes.read_bytes().count(b"\n") >= 5):
            assert child.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        assert evaluate(out, "limit=120") == EXIT_CONFIG  # the live run holds the folder
        assert f"is in use by another run (pid {child.pid} on " in error_line(capsys)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert evaluate(out, "limit=120", "resume=true") == EXIT_OK  # the kernel freed the lock
    assert evaluate(clean, "limit=120") == EXIT_OK
    for name in ("episodes.jsonl", "metrics.json"):
        assert (out / name).read_bytes() == (clean / name).read_bytes(), name
