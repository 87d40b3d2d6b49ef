"""debug_search_api: the seed's M5-L03 verifier table, metrics and promotion rules on real runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import envs
from core.records import Termination, Trajectory, write_jsonl
from envs.rollout import EpisodeJob, rollout, run_episode
from evals import gate
from evals.metrics import compute_metrics
from policies.registry import make_policy
from rewards import code_checks
from scenarios import debug_search_api as sets
from tools.code_sandbox import RunResult, SandboxInfraError

ENV = "debug_search_api"
MAX_TOTAL = 4.75  # every component at 1.0: 1 + 1 + 1 + 0.5 + 0.5 + 0.25 + 0.25 + 0.25


def play(policy: str, split: str = "eval", limit: int | None = None) -> list[Trajectory]:
    env = envs.make_raw(ENV, split=split)
    scenarios = env.scenarios[:limit] if limit else env.scenarios
    jobs = [EpisodeJob(s, seed=i) for i, s in enumerate(scenarios)]
    return list(
        rollout(lambda: envs.make_raw(ENV, split=split), make_policy(policy, env=ENV), jobs)
    )


@pytest.fixture(scope="module")
def expert_runs() -> list[Trajectory]:
    return play("expert")


@pytest.fixture(scope="module")
def fluent_runs() -> list[Trajectory]:
    return play("fluent_wrong")


def test_the_slice_has_the_seeds_cases_and_a_frozen_eval_split(tmp_path: Path) -> None:
    eval_set = sets.load_split("eval")
    families = {s.family for s in eval_set}
    assert families == {
        "debug_search_api",
        "update_user_profile",
        "initialize_cache",
        "gen_report_async",
    }
    assert len(eval_set) == 200 and all(s.slices == ["debug_search_api"] for s in eval_set)
    assert all(s.required_version == "3.2.1" for s in eval_set)
    refrozen = sets.freeze_eval(tmp_path / "eval.jsonl").read_bytes()
    packaged = Path(sets.__file__).parent.joinpath("data/debug_search_api/eval.jsonl").read_bytes()
    assert refrozen == packaged
    train_hashes = {s.content_hash for s in sets.load_split("train")}
    assert not train_hashes & {s.content_hash for s in eval_set}


def test_expert_passes_every_verifier_on_the_whole_eval_split(
    expert_runs: list[Trajectory],
) -> None:
    assert len(expert_runs) == 200
    for trajectory in expert_runs:
        assert trajectory.success and trajectory.reward == pytest.approx(MAX_TOTAL)
        assert trajectory.violations == [] and trajectory.checks["rules"] is True
        assert trajectory.checks["api_version:3.2.1"] and trajectory.turns == 4


def test_fluent_wrong_reproduces_the_seeds_failing_row(fluent_runs: list[Trajectory]) -> None:
    # The seed's table: reward model pass, unit tests pass, version fail, deprecation fail,
    # 2 rule violations, success@1 = 0.
    first = next(t for t in fluent_runs if t.scenario_id.startswith("debug-search-500s"))
    assert first.checks["relevance"] and first.checks["unit_tests"]
    assert not first.checks["api_version:3.2.1"] and not first.checks["deprecation"]
    assert first.violations == ["missing_version:3.2.1", "deprecated_api:legacy_lookup"]
    assert first.success is False


@pytest.mark.parametrize(
    ("policy", "failing"),
    [
        ("fluent_wrong", {"version_reference", "deprecation", "up_to_date"}),
        ("stale_version", {"version_reference", "up_to_date"}),
        ("broken_code", {"unit_tests"}),
        ("keyword_stuffer", {"unit_tests", "up_to_date", "tool_execution"}),
        ("sandbox_attack", {"unit_tests", "up_to_date", "relevance"}),
    ],
)
def test_failure_policies_fail_their_verifiers_and_score_below_the_expert(
    policy: str, failing: set[str]
) -> None:
    for trajectory in play(policy, split="cases"):
        below = {name for name, value in trajectory.reward_components.items() if value < 1.0}
        assert failing <= below, (trajectory.scenario_id, trajectory.reward_components)
        assert not trajectory.success and trajectory.reward < MAX_TOTAL - 0.5


def test_hostile_code_in_an_answer_is_contained_and_scored_as_the_policys() -> None:
    (trajectory,) = play("sandbox_attack", split="cases", limit=1)
    assert trajectory.termination is Termination.FINAL_ANSWER
    verification = code_checks.final_verification(trajectory)
    assert verification is not None and verification["passed"] is False
    assert verification["violation"] in ("file_access", "processes")
    assert "root:" not in trajectory.to_json()  # /etc/passwd never reached the record


def test_seed_metrics_on_real_runs(
    expert_runs: list[Trajectory], fluent_runs: list[Trajectory]
) -> None:
    expert = compute_metrics(expert_runs, n_resamples=200)
    assert expert.get(ENV, "api_version_match_rate[version=3.2.1]").point == 1.0  # type: ignore[union-attr]
    assert expert.get(ENV, "tool_call_correctness.schema").point == 1.0  # type: ignore[union-attr]
    assert expert.get(ENV, "steps_to_solve_median").point == 4.0  # type: ignore[union-attr]
    assert expert.get(ENV, "rule_violation_rate").point == 0.0  # type: ignore[union-attr]
    fluent = compute_metrics(fluent_runs, n_resamples=200)
    assert fluent.get(ENV, "api_version_match_rate[version=3.2.1]").point == 0.0  # type: ignore[union-attr]
    assert fluent.get(ENV, "rule_violation_rate").point == 1.0  # type: ignore[union-attr]
    assert fluent.get(ENV, "success@1").point == 0.0  # type: ignore[union-attr]


def _run_dir(root: Path, name: str, trajectories: list[Trajectory]) -> str:
    folder = root / name
    folder.mkdir()
    write_jsonl(folder / "episodes.jsonl", trajectories)
    return str(folder)


def test_seed_promotion_rules_on_real_runs(
    tmp_path: Path, expert_runs: list[Trajectory], fluent_runs: list[Trajectory], capsys: Any
) -> None:
    expert_dir = _run_dir(tmp_path, "expert", expert_runs)
    fluent_dir = _run_dir(tmp_path, "fluent", fluent_runs)
    go = gate.main([f"rules={ENV}", f"candidate={expert_dir}", f"baseline={fluent_dir}"])
    report = capsys.readouterr().out
    assert go == 0, report
    assert "VERDICT: GO" in report and "NO-GO" not in report
    no_go = gate.main([f"rules={ENV}", f"candidate={fluent_dir}", f"baseline={expert_dir}"])
    report = capsys.readouterr().out
    assert no_go == 1 and "VERDICT: NO-GO" in report
    assert "api_version_match_rate(debug_search_api, '3.2.1')" in report


class BrokenSandbox:
    name = "broken"

    def __init__(self) -> None:
        self.calls = 0

    def run(self, files: object, argv: object) -> RunResult:
        self.calls += 1
        raise SandboxInfraError("engine unreachable")


def test_a_sandbox_failure_of_ours_is_an_infrastructure_failure_not_a_score() -> None:
    broken = BrokenSandbox()
    env = envs.make_raw(ENV, split="cases", code_sandbox=broken)
    trajectory = run_episode(env, make_policy("expert", env=ENV), scenario=env.scenarios[0], seed=0)
    assert broken.calls == 3  # run_tests: 3 attempts, then given up; the episode ends there
    assert trajectory.termination is Termination.INFRA_ERROR
    assert "engine unreachable" in trajectory.info["infra_error"]
    assert trajectory.success is False and trajectory.reward_components == {}  # unscored
    table = compute_metrics([trajectory], n_resamples=200)
    assert table.get(ENV, "policy_error_rate").point == 1.0  # type: ignore[union-attr]
    assert table.get(ENV, "success@1") is None  # left out of behaviour metrics


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("Pin it: pip install search-sdk==3.2.1", 1.0),
        ("Upgrade to search-sdk v3.2.1 now.", 1.0),
        ("Upgrade to v3.2.10", 0.0),
        ("v3.2.1 but pip install search-sdk==3.2.0", 0.0),
        ("pip install search-sdk", 0.0),
    ],
)
def test_version_reference_check(answer: str, expected: float) -> None:
    scenario = sets.load_split("cases")[0]
    trajectory = Trajectory(
        env_id=ENV, scenario_id="x", scenario_hash="h", seed=0, final_answer=answer
    )
    assert code_checks.version_reference(trajectory, scenario) == expected


def test_deprecation_check_reads_code_not_prose() -> None:
    scenario = sets.load_split("cases")[0]
    prose = "Replace `legacy_lookup()` with `query()`.\n```python\nhits = client.query(t)\n```"
    code = "Fixed.\n```python\nhits = client.legacy_lookup(t)\n```"
    no_code = "Replace `legacy_lookup()` with `query()`."
    scores = [
        code_checks.deprecation(
            Trajectory(env_id=ENV, scenario_id="x", scenario_hash="h", seed=0, final_answer=text),
            scenario,
        )
        for text in (prose, code, no_code)
    ]
    assert scores == [1.0, 0.0, 0.0]


EXIT_AT_IMPORT = "import sys\nsys.exit(0)\n"
PATCHED_VERDICT = "import unittest\nunittest.TestResult.wasSuccessful = lambda self: True\n"
FORGED_VERDICT = (  # the runner's own line, its token read from the interpreter's argv
    "import os, re, sys\n"
    "token = next(a for a in sys.orig_argv if re.fullmatch('[0-9a-f]{32}', a))\n"
    "source = open(sys.orig_argv[-1].replace('.', '/') + '.py').read()\n"
    "tests = len(re.findall(r'^[ \\t]+def test', source, re.M))\n"
    "print('\\n%s ran=%d ok=1' % (token, tests), flush=True)\n"
    "os._exit(0)\n"
)


def _answer_with(code: str) -> str:
    return (
        "The 500s come from a deprecated call; search-sdk v3.2.1 fixes it.\n\nPlan:\n"
        "1. Pin it: `pip install search-sdk==3.2.1`.\n2. Replace the file.\n\n"
        f"```python\n{code}```"
    )


@pytest.mark.parametrize(
    ("label", "code"),
    [
        ("exits 0 at import, fixes nothing", EXIT_AT_IMPORT),
        ("says every run succeeded, breaks the file", PATCHED_VERDICT),
        ("prints the runner's verdict with the token from sys.orig_argv", FORGED_VERDICT),
    ],
)
def test_code_that_cheats_the_test_run_gets_no_unit_test_credit(label: str, code: str) -> None:
    """Exit status 0 was the whole verdict: `sys.exit(0)` as the proposed file passed every
    test (unit_tests 1, success) without a fix; so did patching unittest's verdict."""
    env = envs.make_raw(ENV, split="eval")
    scenario = env.scenarios[0]
    env.begin(scenario, seed=0)
    search = '{"name": "search_docs", "arguments": {"query": "search-sdk changelog", "limit": 5}}'
    env.advance(f"<tool_call>{search}</tool_call>")
    original = env.sandbox.repo[scenario.target_file]  # type: ignore[union-attr]
    broken = original.replace("legacy_lookup", "no_such_call")  # every test errors
    cheat = code if code == EXIT_AT_IMPORT else code + broken
    trajectory = env.advance(_answer_with(cheat)).trajectory
    assert trajectory is not None
    verification = code_checks.final_verification(trajectory)
    assert verification is not None and verification["passed"] is False, label
    assert trajectory.reward_components["unit_tests"] == 0.0
    assert trajectory.success is False
    fixed = original.replace("legacy_lookup", "query")  # the real fix still passes
    env.begin(scenario, seed=0)
    env.advance(f"<tool_call>{search}</tool_call>")
    trajectory = env.advance(_answer_with(fixed)).trajectory
    assert trajectory is not None and trajectory.reward_components["unit_tests"] == 1.0
