"""Tools over a frozen repository snapshot: list and read its files, run its unit tests.

Contract
--------
* A snapshot is a `{relative path: text}` mapping, read from package data (`load_repo`).
  Nothing the agent does changes it: `run_tests(path, code)` runs the snapshot's tests
  with `path` replaced by `code`, in a fresh directory of the code sandbox.
* The env attaches the snapshot and a code sandbox with a `RepoSandbox`; the tools read
  them from the episode's sandbox (`ctx`).
* `verify(ctx, path, code, test_module)` is the one way code is tested (tool and final
  check alike). Results of the same inputs are cached per process: the sandbox is
  deterministic for the same files, and the cache keeps large evals fast.
* A violation (timeout, memory, a denied action) is the code's failure: an observation
  and a failed test run. A failure of the sandbox itself (`SandboxInfraError`, after
  retries) is recorded in `ctx.infra_failures` and raised as `InfrastructureError`: the
  env ends such an episode as `Termination.INFRA_ERROR`, never as the policy's failure.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import secrets
from collections import OrderedDict
from dataclasses import dataclass
from functools import cache
from typing import Any

import yaml

from core.records import InfrastructureError
from tools.code_sandbox import CodeSandbox, RunResult, SandboxInfraError, run_with_retries
from tools.sandbox import Sandbox
from tools.schema import tool
from tools.toolbox import ToolInputError, ToolResult

MAX_FILE_CHARS = 4000
CACHE_SIZE = 1024
TEST_METHOD = re.compile(r"^[ \t]+def test\w*\(", re.MULTILINE)
RUNNER_FILE = "_toolgym_run_tests.py"
# Run in the code sandbox as `python _toolgym_run_tests.py TOKEN MODULE`. The token leaves
# `sys.argv` and `sys.orig_argv` (the interpreter's own copy, which code could read to print
# a verdict of its own) before the code under test is imported (the sandbox denies reading
# /proc/self/cmdline). After the run the framework is compared
# with a snapshot taken before it (unittest's classes, builtins) and every test that ran
# must still be a function of the test module: patching either is a failed run.
RUNNER = """\
import builtins, inspect, sys, unittest


CLASSES = (unittest.TestCase, unittest.TestResult, unittest.TextTestResult,
           unittest.TextTestRunner, unittest.TestSuite, unittest.TestLoader,
           unittest.suite.BaseTestSuite)


def _snapshot():
    state = {(c.__name__, k): v for c in CLASSES for k, v in vars(c).items()}
    state.update({("builtins", k): v for k, v in vars(builtins).items()})
    state.update({("unittest", k): v for k, v in vars(unittest).items()})
    return state


def _changed(before):
    after = _snapshot()  # modules may gain names (lazy imports); classes may not
    changed = [k for k, v in before.items() if after.get(k, before) is not v]
    names = {c.__name__ for c in CLASSES}
    changed += [k for k in after.keys() - before.keys() if k[0] in names]
    return sorted(".".join(k) for k in changed)


def _function(test):
    method = inspect.unwrap(getattr(type(test), test._testMethodName, None))
    return getattr(method, "__code__", None)


def _tests(suite):
    for item in suite:
        if isinstance(item, unittest.TestCase):
            yield item
        else:
            yield from _tests(item)


def _main():
    token, module = sys.argv[1], sys.argv[2]
    del sys.argv[1:]
    sys.orig_argv = [arg for arg in getattr(sys, "orig_argv", ()) if arg != token]
    before = _snapshot()
    loader = unittest.TestLoader()
    suite = loader.loadTestsFromName(module)
    tests = list(_tests(suite))
    result = unittest.TextTestRunner(verbosity=0).run(suite)
    changed = _changed(before)
    source = getattr(sys.modules.get(module), "__file__", None)
    replaced = [
        t.id() for t in tests
        if _function(t) is None or _function(t).co_filename != source
    ]
    if changed:
        print("the code changed the test framework: " + ", ".join(changed[:5]), file=sys.stderr)
    if replaced:
        print("the code replaced tests: " + ", ".join(replaced[:5]), file=sys.stderr)
    ok = (result.wasSuccessful() and not result.skipped and not loader.errors
          and not changed and not replaced and result.testsRun == len(tests))
    sys.stdout.flush()
    print("\\n%s ran=%d ok=%d" % (token, result.testsRun, ok), flush=True)


_main()
"""


@cache
def load_repo(ref: str) -> dict[str, str]:
    """A snapshot from a packaged YAML file `"package:path/repo.yaml"` ({path: text})."""
    from importlib import resources

    package, _, relative = ref.partition(":")
    node = resources.files(package)
    for part in relative.split("/"):
        node = node.joinpath(part)
    data = yaml.safe_load(node.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise ValueError(f"{ref}: a repository snapshot maps file paths to file texts")
    return dict(data)


@dataclass(frozen=True)
class Verification:
    """One test run of proposed code: passed, or why not."""

    passed: bool
    summary: str
    violation: str | None = None  # the sandbox violation kind, if any
    infra_error: str | None = None  # our side failed (after retries): not the code's fault

    def as_event(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "violation": self.violation,
            "infra_error": self.infra_error,
        }


class RepoSandbox(Sandbox):
    """A sandbox with a repository snapshot and a code sandbox to run its tests."""

    def __init__(
        self,
        *,
        repo: dict[str, str],
        test_module: str,
        code_sandbox: CodeSandbox,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.repo = repo
        self.test_module = test_module
        self.code_sandbox = code_sandbox
        self.infra_failures: list[str] = []


_RESULTS: OrderedDict[str, Verification] = OrderedDict()


def verify(ctx: RepoSandbox, path: str, code: str, test_module: str | None = None) -> Verification:
    """Run the snapshot's tests with `path` replaced by `code` (cached; never raises).

    The tests run under `RUNNER`, which prints a line with a fresh secret token, the
    number of tests run and the verdict after the run; they pass only when that line
    ends the output and says every test the module defines ran and passed. Exit status 0
    alone is no pass: code that exits at import (`sys.exit(0)`, `os._exit(0)`), patches
    unittest or replaces the tests would otherwise pass without fixing anything."""
    module = test_module or ctx.test_module
    files = {**ctx.repo, path: code}
    key = hashlib.sha256(
        json.dumps([ctx.code_sandbox.name, RUNNER, module, sorted(files.items())]).encode()
    ).hexdigest()
    if key in _RESULTS:
        _RESULTS.move_to_end(key)
        return _RESULTS[key]
    token = secrets.token_hex(16)
    try:
        result: RunResult = run_with_retries(
            ctx.code_sandbox, {**files, RUNNER_FILE: RUNNER}, [RUNNER_FILE, token, module]
        )
    except SandboxInfraError as exc:
        ctx.infra_failures.append(str(exc))
        return Verification(
            False, f"ERROR: the test runner failed on our side: {exc}", None, str(exc)
        )
    body, _, verdict = result.stdout.rstrip("\n").rpartition("\n")
    if not verdict.startswith(token):
        body, verdict = result.stdout, ""
    wanted = expected_tests(ctx.repo, module)
    passed = result.ok and verdict == f"{token} ran={wanted} ok=1" if wanted else False
    shown = dataclasses.replace(result, stdout=body.replace(token, ""))
    violation = result.error.kind if result.error else None
    verification = Verification(passed, shown.summary(), violation)
    _RESULTS[key] = verification
    if len(_RESULTS) > CACHE_SIZE:
        _RESULTS.popitem(last=False)
    return verification


def expected_tests(repo: dict[str, str], module: str) -> int:
    """How many tests `module` of the snapshot defines (`def test...` methods); 0 if none."""
    source = repo.get(module.replace(".", "/") + ".py", "")
    return len(TEST_METHOD.findall(source))


def _repo_of(ctx: Sandbox) -> RepoSandbox:
    if not isinstance(ctx, RepoSandbox):  # the env's wiring, not the agent's call
        raise RuntimeError("this env attached no repository to its sandbox")
    return ctx


@tool
def list_files(ctx: Sandbox) -> list[str]:
    """List the files of the repository."""
    return sorted(_repo_of(ctx).repo)


@tool
def read_file(ctx: Sandbox, path: str) -> str:
    """Read one file of the repository.

    Args:
        path: The file's path, e.g. "app/search_service.py".
    """
    repo = _repo_of(ctx).repo
    if path not in repo:
        raise ToolInputError(f"no file '{path}' in the repository (list_files shows them)")
    text = repo[path]
    return text if len(text) <= MAX_FILE_CHARS else text[:MAX_FILE_CHARS] + "... [truncated]"


@tool(timeout_s=60)  # its own sandbox enforces the wall limit (10 s), retries included
def run_tests(ctx: Sandbox, path: str, code: str) -> ToolResult:
    """Run the repository's unit tests with one file replaced by your code (nothing is saved).

    Args:
        path: The file to replace, e.g. "app/search_service.py".
        code: The complete new content of that file.
    """
    repo_ctx = _repo_of(ctx)
    if path not in repo_ctx.repo:
        raise ToolInputError(f"no file '{path}' in the repository (list_files shows them)")
    outcome = verify(repo_ctx, path, code)
    repo_ctx.record("test_run", path=path, **outcome.as_event())
    if outcome.infra_error is not None:  # ours, after retries: the env ends the episode unscored
        raise InfrastructureError(f"code sandbox: {outcome.infra_error}")
    status = "PASSED" if outcome.passed else "FAILED"
    return ToolResult(f"{status}\n{outcome.summary}")


REPO_TOOLS = (list_files, read_file, run_tests)
