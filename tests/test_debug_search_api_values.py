"""debug_search_api's verifiers (`rewards/code_checks.py`) on episodes played by hand.

The case is `debug-search-500s`: the fix release is 3.2.1 (documents `sdk-changelog` and
`sdk-3.2.1-release-notes` state it), the deprecated API is `legacy_lookup`, the relevance
terms are `find_products`, `app/search_service.py` and `500`. The code sandbox is a
stand-in that passes or fails the unit tests as told and keeps the files it was given,
so each value below follows from the answer alone:

* relevance = 0.5 × share of the three terms named + 0.5 × (2+ numbered steps and
  30..600 words);
* unit_tests = 1 when the sandbox passed the last ```python block;
* version_reference = 1 when `v3.2.1` / `==3.2.1` is cited and every `search-sdk==` pin
  is 3.2.1; deprecation = 1 when there is code and no block calls `legacy_lookup`;
* up_to_date = 1 when a fix document was read, or listed by a search, successfully.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

import envs
from core.records import Trajectory
from rewards import code_checks
from tests.test_stale_report_values import play_case_by_hand
from tools.code_sandbox import RunResult
from tools.repo import expected_tests

CALL = '<tool_call>\n{{"name": "{name}", "arguments": {args}}}\n</tool_call>'
READ_FIX = CALL.format(name="read_document", args='{"doc_id": "sdk-changelog"}')
FIXED = "hits = client.query(term)\n"
PLAN = (
    "The 500 errors come from find_products in app/search_service.py: it calls an API "
    "that search-sdk 3.2 deprecated, and search-sdk v3.2.1 fixes it.\n\n"
    "1. Pin the SDK: pip install search-sdk==3.2.1\n"
    "2. Replace legacy_lookup() with query().\n"
    "3. Run the unit tests.\n\n"
)
ANSWER = PLAN + f"```python\n{FIXED}```\n"
SANDBOXES = itertools.count()
VERIFIERS = ("relevance", "unit_tests", "version_reference", "deprecation", "up_to_date")


class UnitTests:
    """A code sandbox that passes (or fails) the unit tests without running anything (a
    name of its own: the env caches verifications by sandbox name and files)."""

    def __init__(self, passed: bool = True) -> None:
        self.name = f"stand-in-{next(SANDBOXES)}"
        self.passed = passed
        self.files: list[Mapping[str, str]] = []

    def run(self, files: Mapping[str, str], argv: Sequence[str]) -> RunResult:
        self.files.append(dict(files))
        _, token, module = argv  # the test runner's verdict line: every test ran, and passed
        verdict = f"{token} ran={expected_tests(files, module)} ok={int(self.passed)}\n"
        return RunResult(0 if self.passed else 1, verdict, "", 0.0, self.name)


def play(*actions: str, sandbox: UnitTests | None = None) -> Trajectory:
    env = envs.make_raw("debug_search_api", split="cases", code_sandbox=sandbox or UnitTests())
    return play_case_by_hand(env, "debug-search-500s", actions)


def verifiers(trajectory: Trajectory) -> tuple[float, ...]:
    return tuple(trajectory.reward_components[name] for name in VERIFIERS)


def answer_only(text: str) -> Trajectory:
    return Trajectory(env_id="debug_search_api", scenario_id="x", scenario_hash="h", seed=0,
                      final_answer=text)  # fmt: skip


def case() -> Any:
    return next(s for s in envs.make_raw("debug_search_api", split="cases").scenarios)


# ---- the whole table -----------------------------------------------------------------------------
def test_a_read_fix_release_a_plan_and_passing_code_pass_every_verifier() -> None:
    played = play(READ_FIX, ANSWER)
    assert verifiers(played) == (1.0, 1.0, 1.0, 1.0, 1.0)
    assert played.violations == [] and played.success


def test_code_that_fails_the_unit_tests_loses_only_unit_tests() -> None:
    played = play(READ_FIX, ANSWER, sandbox=UnitTests(passed=False))
    assert verifiers(played) == (1.0, 0.0, 1.0, 1.0, 1.0)
    assert played.violations == [] and not played.success


def test_an_answer_without_code_fails_unit_tests_and_deprecation() -> None:
    played = play(READ_FIX, PLAN)
    assert verifiers(played) == (1.0, 0.0, 1.0, 0.0, 1.0)
    assert played.violations == ["no_code"]


# ---- unit tests: the last python block, in the target file ---------------------------------------
def test_the_last_python_block_is_the_proposed_file() -> None:
    sandbox = UnitTests()
    draft = "```python\nhits = client.legacy_lookup(term)\n```\n"
    play(READ_FIX, draft + "Better:\n" + ANSWER, sandbox=sandbox)
    assert [files["app/search_service.py"] for files in sandbox.files] == [FIXED]


def test_a_block_labelled_py_or_python_in_capitals_is_python() -> None:
    for label in ("py", "Python", "PY"):
        sandbox = UnitTests()
        played = play(READ_FIX, PLAN + f"```{label}\n{FIXED}```\n", sandbox=sandbox)
        assert [files["app/search_service.py"] for files in sandbox.files] == [FIXED], label
        assert verifiers(played) == (1.0, 1.0, 1.0, 1.0, 1.0), label


def test_a_block_in_another_language_is_not_the_proposed_file() -> None:
    sandbox = UnitTests()
    played = play(READ_FIX, PLAN + f"```bash\n{FIXED}```\n", sandbox=sandbox)
    assert sandbox.files == []
    assert played.violations == ["no_code"]


def test_the_last_verification_of_the_episode_is_the_one_that_counts() -> None:
    trajectory = answer_only("")
    trajectory.end_state = {
        "events": [
            {"event": "final_verification", "passed": False},
            {"event": "final_verification", "passed": True},
            {"event": "tool_note", "passed": False},
        ]
    }
    assert code_checks.unit_tests(trajectory, case()) == 1.0
    trajectory.end_state["events"].reverse()  # now a failed verification is the last one
    assert code_checks.unit_tests(trajectory, case()) == 0.0


def test_no_end_state_is_no_passed_verification() -> None:
    assert code_checks.final_verification(answer_only(ANSWER)) is None
    assert code_checks.unit_tests(answer_only(ANSWER), case()) == 0.0


def test_an_end_state_without_events_is_no_passed_verification() -> None:
    trajectory = answer_only(ANSWER)
    trajectory.end_state = {"orders": {}}
    assert code_checks.final_verification(trajectory) is None
    assert code_checks.unit_tests(trajectory, case()) == 0.0


# ---- version reference ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Upgrade to v3.2.1.", 1.0),  # a sentence's full stop is not part of the version
        ("pip install search-sdk==3.2.1.", 1.0),  # nor part of the pin
        ("pip install search-sdk==3.2.1...", 1.0),
        ("pip install search_sdk == v3.2.1", 1.0),
        ("Upgrade to v3.2.1.5 now.", 0.0),  # another release
        ("Upgrade to v3.2.10 now.", 0.0),
        ("Upgrade to 3.2.1 now.", 0.0),  # neither v3.2.1 nor ==3.2.1
        ("Upgrade to v3.2.1; pip install SEARCH-SDK==3.2.0", 0.0),  # a pin to another release
        ("Upgrade to v3.2.1; pip install search-sdk==3.2.1 or search-sdk==3.1.0", 0.0),
    ],
)
def test_the_fix_release_is_cited_and_every_pin_is_it(text: str, expected: float) -> None:
    assert code_checks.version_reference(answer_only(text), case()) == expected


# ---- deprecation ---------------------------------------------------------------------------------
def test_a_deprecated_call_in_the_code_fails_deprecation() -> None:
    code = "```python\nhits = client.legacy_lookup(term)\n```\n"
    played = play(READ_FIX, PLAN + code)
    assert verifiers(played) == (1.0, 1.0, 1.0, 0.0, 1.0)
    assert played.violations == ["deprecated_api:legacy_lookup"]


def test_a_deprecated_call_in_any_code_block_counts() -> None:
    # the python block (the proposal) is clean; the note after it calls legacy_lookup
    note = "```text\nlegacy_lookup(term)\n```\n"
    played = play(READ_FIX, PLAN + f"```python\n{FIXED}```\n" + note)
    assert played.reward_components["deprecation"] == 0.0
    assert played.violations == ["deprecated_api:legacy_lookup"]


def test_a_longer_name_containing_the_deprecated_one_is_not_it() -> None:
    for code in ("hits = client.legacy_lookup_v2(term)\n", "hits = my_legacy_lookup(term)\n"):
        played = play(READ_FIX, PLAN + f"```python\n{code}```\n")
        assert played.reward_components["deprecation"] == 1.0, code
        assert played.violations == [], code


# ---- relevance -----------------------------------------------------------------------------------
def words(n: int) -> str:
    """A numbered two-step plan of exactly `n` words (4 in the steps, n - 4 of filler)."""
    return "1. check\n2. fix\n" + " ".join(["word"] * (n - 4))


@pytest.mark.parametrize(("n", "form"), [(29, 0.0), (30, 0.5), (600, 0.5), (601, 0.0)])
def test_relevance_pays_half_for_a_plan_of_30_to_600_words(n: int, form: float) -> None:
    assert code_checks.relevance(answer_only(words(n)), case()) == form


def test_one_numbered_step_is_no_plan() -> None:
    assert code_checks.relevance(answer_only("1. check\n" + " ".join(["word"] * 40)), case()) == 0


def test_relevance_pays_the_other_half_for_the_share_of_terms_named() -> None:
    # 1 of 3 terms (any case): 0.5 × 1/3; all three: 0.5; plus no plan
    assert code_checks.relevance(answer_only("FIND_PRODUCTS breaks."), case()) == 0.5 / 3
    named = "find_products in app/search_service.py returns 500"
    assert code_checks.relevance(answer_only(named), case()) == 0.5


def test_an_empty_answer_is_not_relevant() -> None:
    assert code_checks.relevance(answer_only("   \n"), case()) == 0.0


# ---- up to date ----------------------------------------------------------------------------------
def test_a_search_that_listed_a_fix_document_is_up_to_date() -> None:
    search = CALL.format(name="search_docs", args='{"query": "search-sdk changelog", "limit": 1}')
    assert play(search, ANSWER).reward_components["up_to_date"] == 1.0


def test_a_search_that_listed_no_fix_document_is_not_up_to_date() -> None:
    search = CALL.format(name="search_docs", args='{"query": "forum 500 errors", "limit": 1}')
    assert play(search, ANSWER).reward_components["up_to_date"] == 0.0


def test_reading_another_document_or_failing_to_read_a_fix_one_is_not_up_to_date() -> None:
    other = CALL.format(name="read_document", args='{"doc_id": "forum-search-500-errors"}')
    failed = CALL.format(name="read_document", args='{"doc_id": "sdk-changelog", "page": 2}')
    assert play(other, ANSWER).reward_components["up_to_date"] == 0.0
    assert play(failed, ANSWER).reward_components["up_to_date"] == 0.0


def test_a_fix_document_read_after_a_failed_call_is_up_to_date() -> None:
    failed = CALL.format(name="read_document", args='{"doc_id": "no-such-document"}')
    assert play(failed, READ_FIX, ANSWER).reward_components["up_to_date"] == 1.0


def test_recalling_the_release_without_retrieving_it_is_not_up_to_date() -> None:
    played = play(ANSWER)
    assert verifiers(played) == (1.0, 1.0, 1.0, 1.0, 0.0)
    assert not played.success


# ---- the rule violations -------------------------------------------------------------------------
def test_every_broken_rule_is_listed_in_order() -> None:
    text = "Use legacy_lookup.\n```python\nclient.legacy_lookup(t)\n```\n"
    assert code_checks.rule_violations(answer_only(text), case()) == [
        "missing_version:3.2.1",
        "deprecated_api:legacy_lookup",
    ]
    assert code_checks.rule_violations(answer_only("Nothing to add."), case()) == [
        "missing_version:3.2.1",
        "no_code",
    ]
