"""Verifiers of debug_search_api (the seed's M5-L03 table), as reward components.

Each is `(trajectory, scenario) -> float` in [0, 1] and reads the final answer (plan,
install command, code blocks), the tool calls, and the end state's `final_verification`
event (the unit-test run the env made on the proposed code when the episode ended).

* `relevance` — **a cheap stand-in for a reward model**, not a judge of correctness:
  half for topic (share of the scenario's `relevance_terms` the answer mentions), half
  for form (a numbered plan of 2+ steps, 30..600 words). Like the seed's reward model it
  passes fluent but wrong answers ("Looks helpful"); the other verifiers catch those.
* `unit_tests` — 1 if the repository's tests passed with the proposed code (the last
  ```python block) in place of the target file, in the code sandbox.
* `version_reference` — 1 if the answer cites the fix release (`v3.2.1` or `==3.2.1`)
  and every `search-sdk==X` pin in it is that release.
* `deprecation` — 1 if the answer proposes code and no code block uses a deprecated API
  (`legacy_lookup`, …) of the scenario; 0 without code (nothing to check is no pass).
* `up_to_date` — 1 if the agent retrieved a document that states the fix release
  (a search hit or a read of one of the scenario's `fix_docs`): the seed's "using
  up-to-date information" component.

`rule_violations` lists the broken rules (the seed's "rule violation summary").
"""

from __future__ import annotations

import re
from typing import Any

from core.records import Execution, Trajectory

CODE_BLOCK = re.compile(r"```([\w+-]*)[^\n]*\n(.*?)```", re.DOTALL)
PIN = re.compile(r"search[-_]sdk\s*==\s*v?([0-9](?:[0-9A-Za-z.]*[0-9A-Za-z])?)", re.IGNORECASE)
STEP = re.compile(r"^\s*\d+[.)]\s+\S", re.MULTILINE)
FINAL_VERIFICATION = "final_verification"


def code_blocks(text: str) -> list[tuple[str, str]]:
    """(language, code) of every fenced block."""
    return [(lang.lower(), code) for lang, code in CODE_BLOCK.findall(text)]


def proposed_code(text: str) -> str | None:
    """The last ```python block of an answer: the proposed file."""
    blocks = [code for lang, code in code_blocks(text) if lang in ("python", "py")]
    return blocks[-1] if blocks else None


def final_answer(trajectory: Trajectory) -> str:
    """The answer's text ("" for an episode that ended without one)."""
    return trajectory.final_answer or ""


def final_verification(trajectory: Trajectory) -> dict[str, Any] | None:
    events = trajectory.end_state.get("events", [])
    found = [e for e in events if e.get("event") == FINAL_VERIFICATION]
    return found[-1] if found else None


def relevance(trajectory: Trajectory, scenario: Any) -> float:
    answer = final_answer(trajectory)
    if not answer.strip():
        return 0.0
    lowered = answer.lower()
    terms = scenario.relevance_terms
    topic = sum(term.lower() in lowered for term in terms) / len(terms)
    words = len(answer.split())
    form = float(len(STEP.findall(answer)) >= 2 and 30 <= words <= 600)
    return 0.5 * topic + 0.5 * form


def unit_tests(trajectory: Trajectory, scenario: Any) -> float:
    verification = final_verification(trajectory)
    return float(bool(verification and verification.get("passed")))


def version_reference(trajectory: Trajectory, scenario: Any) -> float:
    answer = final_answer(trajectory)
    version = scenario.required_version
    cited = re.search(rf"(?:\bv|==\s*){re.escape(version)}(?![\d.]*\d)", answer) is not None
    pins = PIN.findall(answer)
    return float(cited and all(pin == version for pin in pins))


def deprecated_uses(answer: str, deprecated: list[str]) -> list[str]:
    """Deprecated API names used in the answer's code blocks."""
    code = "\n".join(block for _, block in code_blocks(answer))
    return [name for name in deprecated if re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", code)]


def deprecation(trajectory: Trajectory, scenario: Any) -> float:
    answer = final_answer(trajectory)
    if proposed_code(answer) is None:
        return 0.0
    return float(not deprecated_uses(answer, scenario.deprecated_apis))


def up_to_date(trajectory: Trajectory, scenario: Any) -> float:
    wanted = set(scenario.fix_docs)
    for call in trajectory.tool_calls:
        if call.execution != Execution.OK or not call.arguments:
            continue
        if call.name == "read_document" and call.arguments.get("doc_id") in wanted:
            return 1.0
        if call.name == "search_docs" and any(f'"id": "{d}"' in str(call.result) for d in wanted):
            return 1.0
    return 0.0


def rule_violations(trajectory: Trajectory, scenario: Any) -> list[str]:
    """The seed's rules: the fix release is cited/pinned; no deprecated API in the code."""
    answer = final_answer(trajectory)
    found = []
    if not version_reference(trajectory, scenario):
        found.append(f"missing_version:{scenario.required_version}")
    found += [
        f"deprecated_api:{name}" for name in deprecated_uses(answer, scenario.deprecated_apis)
    ]
    if proposed_code(answer) is None:
        found.append("no_code")
    return found
