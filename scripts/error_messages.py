"""Print the table of docs/errors.md: every bad input tried for issue 10, run for real.

    .venv/bin/python scripts/error_messages.py > /tmp/table.md

Each case is played or loaded as a user would meet it (an env turn, `python -m evals.run`
through its `main`, `load_scenarios`, `load_rules`) and its exact message is captured;
the temporary folder prints as `<tmp>`.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import envs  # noqa: E402
from core.files import RunLock  # noqa: E402
from evals.rules import RuleSyntaxError, load_rules  # noqa: E402
from evals.run import main as run_main  # noqa: E402
from scenarios.loader import ScenarioFileError, load_scenarios  # noqa: E402
from scenarios.math import MathScenario  # noqa: E402
from scenarios.refund import REFUND_SLICES, RefundScenario  # noqa: E402
from tools.standard import CalculatorError, evaluate_arithmetic  # noqa: E402

TMP = Path(tempfile.mkdtemp())
CALL = '<tool_call>{"name": "calculator", "arguments": {"expression": "1"}}</tool_call>'
Row = tuple[str, str, str]


def hide_tmp(text: str) -> str:
    return text.replace(str(TMP), "<tmp>")


def openai(arguments: Any) -> dict[str, Any]:
    function = {"name": "calculator", "arguments": arguments}
    return {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "function": function}]}


def deep_list(levels: int) -> list[Any]:
    root: list[Any] = []
    node = root
    for _ in range(levels):
        node.append([])
        node = node[0]
    return root


def huge_int() -> int:
    sys.set_int_max_str_digits(0)
    try:
        return 10**5000
    finally:
        sys.set_int_max_str_digits(4300)


def model_rows() -> list[Row]:
    loop: dict[str, Any] = {}
    loop["self"] = loop
    cases: list[tuple[str, Any]] = [
        (
            "`<tool_call>` body with a lone surrogate (`1+\\ud800`)",
            CALL.replace('"1"', '"1+\ud800"'),
        ),
        ("OpenAI `arguments` text with a lone surrogate", openai('{"expression": "2*\udc00"}')),
        ("arguments dict with an int key `{1: 2}`", openai({1: 2})),
        ("arguments dict with a reference cycle", openai(loop)),
        ("arguments nested 2,000 deep", openai({"a": deep_list(2000)})),
        ("arguments with a 5,001-digit int", openai({"n": huge_int()})),
        ("arguments with bytes `b'\\xff'`", openai({"b": b"\xff"})),
        ("arguments with NaN", openai({"x": float("nan")})),
        ("arguments with a set", openai({"s": {1, 2}})),
        ("arguments with an arbitrary object", openai({"o": object()})),
        ("`arguments` a JSON list, not an object", openai("[1, 2]")),
        ("`tool_calls` entry without `function`", {"content": "", "tool_calls": [{"id": "x"}]}),
        ("100 `<tool_call>` blocks in one turn (the last observation)", CALL * 100),
        ("`<tool_call>` never closed", CALL.removesuffix("</tool_call>")),
        ("`</tool_call>` without an opening tag", '{"name": "calculator"}</tool_call>'),
        ("`<tool_call>` body that is not JSON", '<tool_call>{"name": calculator}</tool_call>'),
    ]
    rows = []
    for label, action in cases:
        env = envs.make_raw("math_tools", split="eval")
        env.begin(None, seed=0)
        result = env.advance(action)
        rows.append(("model output → observation", label, result.new_messages[-1]["content"]))
    try:
        evaluate_arithmetic("1+\ud800")
    except CalculatorError as exc:
        label = "calculator expression with a lone surrogate (a direct call)"
        rows.append(("tool input", label, f"ERROR: Invalid value: {exc} (kind invalid_value)"))
    return rows


def cli(label: str, *args: str, cwd: Path | None = None) -> Row:
    err, out, before = io.StringIO(), io.StringIO(), Path.cwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            code = run_main(["env=refund_agent", "policy=expert", "split=eval", *args])
    finally:
        os.chdir(before)
    line = err.getvalue().strip() or out.getvalue().strip().splitlines()[-1]
    return ("`python -m evals.run`", label, f"exit {code}: {hide_tmp(line)}")


def run_rows() -> list[Row]:
    (TMP / "afile").write_text("x")
    rows = [
        cli("`out=` an existing file", f"out={TMP / 'afile'}"),
        cli("`out=` under a file (unwritable path)", f"out={TMP / 'afile' / 'run'}"),
        cli("`out=` where no folder can be made (`/proc/toolgym`)", "out=/proc/toolgym"),
    ]
    with RunLock(TMP / "held", "python -m evals.run out=held limit=50"):
        rows.append(cli("a second run into a folder a live run holds", f"out={TMP / 'held'}"))
    run = TMP / "r1"
    cli("(a 3-episode run to damage)", f"out={run}", "limit=3")
    lines = (run / "episodes.jsonl").read_text().splitlines(keepends=True)
    (run / "episodes.jsonl").write_text("".join([lines[0], '{"broken\n', *lines[2:]]))
    rows.append(cli("`resume=true` over a corrupt middle line", f"out={run}", "resume=true"))
    (run / "episodes.jsonl").write_bytes(b"\xff\n")
    rows.append(cli("`resume=true` over a line that is not UTF-8", f"out={run}", "resume=true"))
    (TMP / "dot").mkdir()
    dot = ("`out=. check_frozen=true`", "out=.", "limit=2", "check_frozen=true")
    rows.append(cli(*dot, cwd=TMP / "dot"))
    rows.append(cli("`out=/ check_frozen=true`", "out=/", "limit=1", "check_frozen=true"))
    return rows


def file_rows() -> list[Row]:
    cases_text = (REPO / "scenarios/data/refund_agent/cases.yaml").read_text()
    bad_date = cases_text.replace("now: 2026-03-10T09:00:00", "now: 2026-02-30", 1)
    bad_slice = cases_text.replace("slices: [refund_happy]", "slices: [refund_hapy]", 1)
    cases: list[tuple[str, str, str | bytes]] = [
        ("invalid date `now: 2026-02-30`", "cases.yaml", bad_date),
        ("not UTF-8 (a Latin-1 `é`)", "latin.yaml", b"- id: a\n  opening: caf\xe9\n"),
        ("an empty list `[]`", "empty.yaml", "[]\n"),
        ("an empty file", "blank.yaml", ""),
        ("unknown slice `refund_hapy` (given the env's slices)", "slice.yaml", bad_slice),
        ("a JSONL line that is not JSON", "bad.jsonl", '{"id": "a"}\n{"id": \n'),
        ("a JSONL line nested 100,000 deep", "deep.jsonl", "[" * 100000 + "\n"),
        ("YAML nested 100,000 deep", "deep.yaml", "[" * 100000 + "\n"),
        ("YAML that does not parse (`- {id: a`)", "brace.yaml", "- {id: a\n"),
    ]
    rows = []
    for label, name, data in cases:
        path = TMP / name
        path.write_bytes(data if isinstance(data, bytes) else data.encode())
        rows.append(("scenario file", label, attempt(lambda p=path: _load(p), ScenarioFileError)))
    path = TMP / "latin.rules"
    path.write_bytes(b"aggregate.success@1.lower_ci >= 0.8\n# caf\xe9\n")
    message = attempt(lambda: load_rules(path), RuleSyntaxError).replace("\n", " ⏎ ")
    rows.append(("rules file (also `evals.gate`)", "not UTF-8 (a Latin-1 `é`)", message))
    math = MathScenario(id="m1", now=datetime(2026, 1, 1), question="1+1?", answer=2)
    env = envs.make_raw("refund_agent", split="eval")
    message = attempt(lambda: env.begin(math, seed=0), TypeError)
    rows.append(("env `begin`", "a math scenario given to refund_agent", f"TypeError: {message}"))
    return rows


def _load(path: Path) -> object:
    return load_scenarios(path, RefundScenario, known_slices=REFUND_SLICES)


def attempt(action: Callable[[], object], error: type[Exception]) -> str:
    try:
        action()
    except error as exc:
        return hide_tmp(str(exc))
    return "(accepted)"


def main() -> None:
    print("| where | bad input | exact message |\n| --- | --- | --- |")
    for where, label, message in [*model_rows(), *run_rows(), *file_rows()]:
        cell = message.replace("|", "\\|").replace("`", "'")
        print(f"| {where} | {label} | `{cell}` |")


if __name__ == "__main__":
    main()
