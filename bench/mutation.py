"""Mutation score of the modules that decide rewards, parsed calls and GO/NO-GO (mutmut 3).

    python bench/mutation.py [paths=evals/stats.py,rewards/spec.py] [max_children=2]
        [recheck=notests|all|none] [constants=true] [workdir=/tmp/toolgym-mutation]
        [resume=false]

Contract
--------
For each module in `paths` (default: every module of `TESTS`), in turn:

1. a scratch copy of the working tree (the files git tracks or would track: no `.venv`,
   no `mutants/`) is laid in `workdir/<module>/`, its `pyproject.toml`'s `[tool.mutmut]`
   set to mutate that module only and to run only the module's test files (`TESTS`),
   fast tests only (`-m "not slow"`); mutmut then copies that tree into `mutants/`;
2. `mutmut run` mutates every function of the module (the full mutant set, no sample);
3. **fresh-process re-check.** mutmut maps tests to functions by tracing them in its own
   process, so a mutant in code that runs in a subprocess (a CLI test) gets no tests, and
   one in code that ran at import time is never switched on (and is credited to whichever
   test imported the module first). Each "no tests" mutant (`recheck=all`: each survivor
   too) is therefore applied to the scratch copy (`mutmut apply`) and the tests that reach
   its function, then, if it survives them, the module's every test file, are run in a
   fresh `pytest` process; a failure counts as killed;
4. **import-time constants.** mutmut 3 does not mutate module- or class-level code, so
   each number literal there (`DEFAULT_WEIGHTS["outcome"] = 2.0`, `BCA_MAX_N = 2000`) is
   changed to n + 1 in the scratch copy and checked the same way (fresh process).

`resume=true` updates the last scratch copy of each module and re-tests only the mutants
not killed before (after adding tests: killed stays killed), then re-checks each survivor
in a fresh process with the tests that reach its function.

It prints one row per module: killed, survived, timeout, score = (killed + timeout) /
(all − equivalent), and lists each survivor with its diff. `EQUIVALENT` names the
mutants that no test can kill because they do not change behaviour, each with its reason;
they are shown apart and left out of the score. A summary is written to
`workdir/summary.json`. Exit status: 0 when every module reaches `fail_under`
(default 90), 1 otherwise, 2 on a usage error or a mutmut failure.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mutation_equivalents import EQUIVALENT

ROOT = Path(__file__).resolve().parents[1]

# module → the test files that pin its values (run by mutmut and by the re-checks)
TESTS: dict[str, list[str]] = {
    "evals/stats.py": ["tests/test_stats.py", "tests/test_stats_values.py"],
    "evals/rules.py": ["tests/test_rules.py", "tests/test_rules_values.py"],
    "evals/gate.py": ["tests/test_gate_values.py"],
    "evals/deltas.py": ["tests/test_deltas_values.py", "tests/test_metrics.py"],
    "rewards/spec.py": ["tests/test_reward_spec.py"],
    "rewards/tool_use.py": ["tests/test_tool_use_rewards.py"],
    "rewards/refund.py": ["tests/test_refund_rewards.py", "tests/test_refund_reward_values.py"],
    "tools/calls.py": [
        "tests/test_call_parsing.py",
        "tests/test_tool_calling.py",
        "tests/test_tool_formats.py",
        "tests/test_toolbox.py",
        "tests/test_hostile_input.py",
    ],
    "tools/schema.py": [
        "tests/test_tool_schema_values.py",
        "tests/test_tool_schema.py",
        "tests/test_tools_json_schema.py",
        "tests/test_toolbox.py",
    ],
    "rewards/claims.py": ["tests/test_claims.py", "tests/test_claims_reading.py"],
    "rewards/freshness.py": ["tests/test_stale_report_values.py"],
    "rewards/code_checks.py": ["tests/test_debug_search_api_values.py"],
    "rewards/handoff.py": [
        "tests/test_refund_handoff.py",
        "tests/test_calculator_handoff.py",
        "tests/test_multi_agent.py",
        "tests/test_handoff_reward_values.py",
    ],
    "evals/audit.py": ["tests/test_audit.py", "tests/test_audit_values.py"],
    "rewards/tags.py": ["tests/test_tags.py"],
    "tools/standard.py": ["tests/test_calculator.py", "tests/test_tool_calling.py"],
}

# the packages mutmut copies into mutants/ (everything the tests import or read)
SOURCE_PATHS = [
    "core",
    "tools",
    "rewards",
    "scenarios",
    "envs",
    "policies",
    "evals",
    "trainers",
    "configs",
    "promotion",
    "toolgym",
]
PYTEST_ARGS = ["-p", "no:cacheprovider", "-m", "not slow"]
KILLED_CODES = {1, 3}
TIMEOUT_CODES = {-24, 24, 152, 255, 36}
NO_TESTS_CODES = {5, 33}


@dataclass
class ModuleResult:
    module: str
    killed: int = 0
    survived: int = 0
    timeout: int = 0
    equivalent: int = 0
    fresh_kills: int = 0  # of `killed`: killed only by the fresh-process re-check
    constants: int = 0  # of the total: import-time constant mutants
    survivors: dict[str, str] = field(default_factory=dict)  # name → diff
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return self.killed + self.survived + self.timeout

    @property
    def score(self) -> float:
        counted = self.total
        return 100.0 * (self.killed + self.timeout) / counted if counted else 100.0


def parse_args(argv: list[str]) -> dict[str, str]:
    options = {
        "paths": ",".join(TESTS),
        "max_children": "2",
        "recheck": "notests",
        "constants": "true",
        "workdir": "/tmp/toolgym-mutation",
        "fail_under": "90",
        "resume": "false",
    }
    for arg in argv:
        key, sep, value = arg.lstrip("-").partition("=")
        key = key.replace("-", "_")
        if not sep or key not in options:
            raise SystemExit(f"usage: unknown argument {arg!r}; keys: {', '.join(options)}")
        options[key] = value
    return options


def project_files() -> list[str]:
    """The files git tracks or would track (untracked work of others included, .venv not)."""
    out = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [p for p in out.split("\0") if p and (ROOT / p).is_file()]


def module_tests(module: str) -> list[str]:
    """The module's test files that exist (a missing one is skipped)."""
    return [t for t in TESTS[module] if (ROOT / t).is_file()]


def mutmut_section(module: str) -> str:
    tests = module_tests(module)
    return "\n".join(
        [
            "[tool.mutmut]",
            f"source_paths = {json.dumps(SOURCE_PATHS)}",
            f"only_mutate = {json.dumps([module])}",
            f"pytest_add_cli_args = {json.dumps(PYTEST_ARGS)}",
            f"pytest_add_cli_args_test_selection = {json.dumps(tests)}",
            "",
        ]
    )


def with_section(pyproject: str, section: str) -> str:
    """`pyproject` with its [tool.mutmut] table replaced by `section` (appended if absent)."""
    pattern = re.compile(r"^\[tool\.mutmut\]\n(?:(?!\[).*\n?)*", re.MULTILINE)
    stripped = pattern.sub("", pyproject)
    return stripped.rstrip("\n") + "\n\n" + section


def lay_scratch_copy(module: str, workdir: Path, resume: bool = False) -> Path:
    """A fresh copy of the project for `module` (with `resume`, the earlier copy updated:
    mutmut keeps its results and its generated mutants)."""
    scratch = workdir / module.replace("/", "__").removesuffix(".py")
    if scratch.exists() and not resume:
        shutil.rmtree(scratch)
    for rel in project_files():
        target = scratch / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, target)
    if not any((scratch / t).is_file() for t in TESTS[module]):
        raise RuntimeError(f"{module}: none of its test files exist: {TESTS[module]}")
    pyproject = scratch / "pyproject.toml"
    pyproject.write_text(with_section(pyproject.read_text(), mutmut_section(module)))
    return scratch


def quiet_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MUTANT_UNDER_TEST")}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    env.pop("PYTHONPATH", None)
    return env


def run_mutmut(scratch: Path, max_children: int, names: list[str] | None = None) -> None:
    """`mutmut run` on every mutant, or only on `names` (a resumed run re-tests these)."""
    log = scratch / "mutmut.log"
    with log.open("w") as out:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "mutmut",
                "run",
                "--max-children",
                str(max_children),
                *(names or []),
            ],
            cwd=scratch,
            env=quiet_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"mutmut run failed ({proc.returncode}) in {scratch}:\n{tail}")


def exit_codes(scratch: Path, module: str) -> dict[str, int | None]:
    meta = scratch / "mutants" / f"{module}.meta"
    return json.loads(meta.read_text())["exit_code_by_key"]


def tests_fail(scratch: Path, module: str, tests: list[str] | None = None) -> bool:
    """Run `tests` (default: the module's test files) in a fresh process; True when they
    fail (the mutant is killed)."""
    selected = tests or module_tests(module)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-x", "-q", *PYTEST_ARGS, *selected],
        cwd=scratch,
        env=quiet_env(),
        capture_output=True,
        timeout=900,
        check=False,
    )
    return proc.returncode not in (0, 5)


def recheck_in_fresh_process(scratch: Path, module: str, name: str) -> bool:
    """Apply one mutmut mutant to the scratch copy, run the tests, restore the source."""
    source = scratch / module
    original = source.read_text()
    try:
        subprocess.run(
            [sys.executable, "-m", "mutmut", "apply", name],
            cwd=scratch,
            env=quiet_env(),
            capture_output=True,
            check=True,
        )
        reaching = tests_reaching(scratch, name)
        # mutmut credits code that runs at import time to the one test that imported the
        # module first; a survivor of those tests gets the module's every test file
        return tests_fail(scratch, module, reaching) or (
            bool(reaching) and tests_fail(scratch, module)
        )
    finally:
        source.write_text(original)


def tests_reaching(scratch: Path, name: str) -> list[str]:
    """The test functions mutmut saw reach the mutant's function (empty: unknown), as
    node ids without parameters (pytest runs every case of each)."""
    stats = scratch / "mutants" / "mutmut-stats.json"
    if not stats.is_file():
        return []
    by_function = json.loads(stats.read_text()).get("tests_by_mangled_function_name", {})
    found = by_function.get(name.rpartition("__mutmut_")[0], [])
    return sorted({test.split("[", 1)[0] for test in found})


_DIFFS = """
import json, sys
from mutmut.mutation.diff_apply import get_diff_for_mutant
out = {}
for name in json.loads(sys.argv[1]):
    try:
        lines = get_diff_for_mutant(name).splitlines()
    except Exception as exc:  # one unreadable mutant does not hide the others
        lines = [f"-(no diff: {type(exc).__name__}: {exc})"]
    out[name] = "\\n".join(ln for ln in lines if ln[:1] in "+-" and ln[:3] not in ("+++", "---"))
print(json.dumps(out))
"""


def mutant_diffs(scratch: Path, names: list[str]) -> dict[str, str]:
    """The changed lines of each mutant (one process for all: `mutmut show` is slow)."""
    if not names:
        return {}
    proc = subprocess.run(
        [sys.executable, "-c", _DIFFS, json.dumps(names)],
        cwd=scratch,
        env=quiet_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        return {name: f"(no diff: {proc.stderr.strip()[-200:]})" for name in names}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def import_time_constants(source: str, module: str) -> list[tuple[str, int, int, int, str]]:
    """(name, line, start col, end col, literal) of each number in module/class-level code."""
    found: list[tuple[str, int, int, int, str]] = []
    tree = ast.parse(source)
    lines = source.splitlines()

    def visit(body: list[ast.stmt], owner: str) -> None:
        for stmt in body:
            if isinstance(stmt, ast.ClassDef):
                visit(stmt.body, f"{owner}{stmt.name}.")
                continue
            if not isinstance(stmt, ast.Assign | ast.AnnAssign):
                continue
            target = stmt.targets[0] if isinstance(stmt, ast.Assign) else stmt.target
            label = owner + (ast.unparse(target) if target is not None else "?")
            for node in ast.walk(stmt.value) if stmt.value is not None else []:
                is_number = isinstance(node, ast.Constant) and type(node.value) in (int, float)
                if is_number and node.lineno == node.end_lineno:
                    text = lines[node.lineno - 1][node.col_offset : node.end_col_offset]
                    found.append((label, node.lineno, node.col_offset, node.end_col_offset, text))

    visit(tree.body, f"{module.removesuffix('.py').replace('/', '.')}:")
    return found


def check_constants(
    scratch: Path, module: str, result: ModuleResult, survived_before: set[str] | None = None
) -> None:
    """Mutate each import-time number and run the tests in a fresh process; with
    `survived_before` (a resumed run), only the constants that survived last time."""
    path = scratch / module
    original = path.read_text()
    for label, line, start, end, text in import_time_constants(original, module):
        value = ast.literal_eval(text)
        mutated = repr(value + 1)
        lines = original.splitlines(keepends=True)
        row = lines[line - 1]
        lines[line - 1] = row[:start] + mutated + row[end:]
        name = f"{label}@L{line} {text}->{mutated}"
        try:
            path.write_text("".join(lines))
            again = survived_before is None or name in survived_before
            killed = tests_fail(scratch, module) if again else True
        finally:
            path.write_text(original)
        result.constants += 1
        if name in EQUIVALENT:
            result.equivalent += 1
        elif killed:
            result.killed += 1
            result.fresh_kills += 1
        else:
            result.survived += 1
            result.survivors[name] = f"-{row.strip()}\n+{lines[line - 1].strip()}"


def previous_survivors(options: dict[str, str], module: str) -> set[str] | None:
    """The survivors of the last run of `module` in this workdir (resume only)."""
    summary = Path(options["workdir"]) / "summary.json"
    if options["resume"] != "true" or not summary.is_file():
        return None
    for row in json.loads(summary.read_text()):
        if row["module"] == module:
            return set(row["survivors"])
    return None


def rechecked(code: int | None, mode: str) -> bool:
    """Whether a mutant mutmut did not kill gets the fresh-process re-check: `notests`
    (default) re-checks those mutmut ran no test for (code reached only in a subprocess
    or at import time); `all` also re-runs the survivors; `none` skips the re-check."""
    if mode == "all":
        return True
    return mode == "notests" and code in NO_TESTS_CODES


def mutate_module(module: str, options: dict[str, str]) -> ModuleResult:
    started = time.monotonic()
    resume = options["resume"] == "true"
    scratch = lay_scratch_copy(module, Path(options["workdir"]), resume)
    meta = scratch / "mutants" / f"{module}.meta"
    if resume and meta.is_file():  # killed stays killed: new tests can only kill more
        again = [n for n, code in exit_codes(scratch, module).items() if code not in KILLED_CODES]
        run_mutmut(scratch, int(options["max_children"]), again or None)
        # mutmut's in-process verdicts for tests added since the first run proved
        # unreliable (a mutant a new test kills in a fresh process stayed "survived")
        options = {**options, "recheck": "all"}
    else:
        run_mutmut(scratch, int(options["max_children"]))
    result = ModuleResult(module)
    for name, code in sorted(exit_codes(scratch, module).items()):
        if name in EQUIVALENT:
            result.equivalent += 1
        elif code in KILLED_CODES:
            result.killed += 1
        elif code in TIMEOUT_CODES:
            result.timeout += 1
        elif rechecked(code, options["recheck"]) and recheck_in_fresh_process(
            scratch, module, name
        ):
            result.killed += 1
            result.fresh_kills += 1
        else:
            result.survived += 1
            result.survivors[name] = ""
    result.survivors.update(mutant_diffs(scratch, list(result.survivors)))
    if options["constants"] == "true":
        check_constants(scratch, module, result, previous_survivors(options, module))
    result.seconds = time.monotonic() - started
    return result


def print_table(results: list[ModuleResult]) -> None:
    header = (
        f"{'module':<22} {'killed':>6} {'survived':>8} {'timeout':>7} {'equiv':>5} "
        f"{'score':>6}  (fresh-process kills, import-time constants, seconds)"
    )
    print(header)
    for r in results:
        print(
            f"{r.module:<22} {r.killed:>6} {r.survived:>8} {r.timeout:>7} {r.equivalent:>5} "
            f"{r.score:>5.1f}%  ({r.fresh_kills}, {r.constants}, {r.seconds:.0f})"
        )
    for r in results:
        for name, diff in r.survivors.items():
            print(f"\nSURVIVED {name}\n{diff}")
    listed = [(n, why) for n, why in EQUIVALENT.items() if any(r.module in n for r in results)]
    for name, why in listed:
        print(f"\nEQUIVALENT {name}: {why}")


def main(argv: list[str] | None = None) -> int:
    options = parse_args(sys.argv[1:] if argv is None else argv)
    modules = [m.strip() for m in options["paths"].split(",") if m.strip()]
    unknown = [m for m in modules if m not in TESTS]
    if unknown:
        print(f"unknown module(s) {unknown}; known: {', '.join(TESTS)}", file=sys.stderr)
        return 2
    Path(options["workdir"]).mkdir(parents=True, exist_ok=True)
    results = []
    for module in modules:
        try:
            results.append(mutate_module(module, options))
        except (RuntimeError, subprocess.CalledProcessError) as exc:
            print(f"{module}: {exc}", file=sys.stderr)
            return 2
        print(f"{module}: done ({results[-1].score:.1f}%)", file=sys.stderr, flush=True)
    print_table(results)
    summary = [{**asdict(r), "score": round(r.score, 1)} for r in results]
    (Path(options["workdir"]) / "summary.json").write_text(json.dumps(summary, indent=2))
    below = [r.module for r in results if r.score < float(options["fail_under"])]
    return 1 if below else 0


if __name__ == "__main__":
    sys.exit(main())
