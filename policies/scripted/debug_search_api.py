"""Scripted policies of debug_search_api: the expert, the seed's failure modes, two hacks.

Each reads only the conversation (the user's report, tool results):

* `expert`: searches the docs and reads the failing file (one turn, two calls), reads
  the changelog the search found, applies its "`X.old()` is deprecated; use `X.new()`"
  lines to the file, runs the tests, then answers with a plan, `pip install
  search-sdk==<latest changelog release>` and the fixed file (4 turns).
* `fluent_wrong`: the seed's failing attempt — reads the file, answers fluently:
  "reinstall (`pip install search-sdk`), verify with `legacy_lookup()`, run the tests",
  with the file unchanged. Unit tests and relevance pass; version and deprecation fail.
* `stale_version`: fixes the call from memory without reading the docs and pins the
  release it remembers (`search-sdk==3.2.0`): version fails, no up-to-date retrieval.
* `broken_code`: the expert's research and pin, but its code returns None: tests fail.
* `keyword_stuffer` (adversary): every keyword the verifiers look for, no real fix.
* `sandbox_attack` (adversary): a "fix" that reads /etc/passwd and fork-bombs; the
  sandbox contains it and the tests fail.
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

from core.render import hermes_message
from policies.base import ScriptedPolicy, tool_call_text

TARGET = re.compile(r"\b(app/\w+\.py)\b")
FUNCTION = re.compile(r"`(\w+)`")
STATUS = re.compile(r"HTTP ([45]\d\d)\b")  # the status in the log excerpt
DEPRECATION = re.compile(r"`(\w+)\.(\w+)\(\)` is deprecated; use `(\w+)\.(\w+)\(\)`")
RELEASE = re.compile(r"^## (\d+\.\d+\.\d+)", re.MULTILINE)
# What a model "remembers" from its training data: the 3.2 renames, and 3.2.0 as latest.
REMEMBERED_RENAMES = {
    "legacy_lookup": "query",
    "set_token": "authenticate",
    "init": "initialize",
    "run_async": "query_async",
}


def _opening(messages: list[dict[str, Any]]) -> str:
    return next((str(m.get("content")) for m in messages if m.get("role") == "user"), "")


def _results(messages: list[dict[str, Any]], tool: str) -> list[str]:
    return [
        str(m.get("content")) for m in messages if m.get("role") == "tool" and m.get("name") == tool
    ]


def _report(messages: list[dict[str, Any]]) -> tuple[str, str, str]:
    """(target file, function, status code or "") from the user's report."""
    opening = _opening(messages)
    target = TARGET.search(opening)
    function = FUNCTION.search(opening)
    status = STATUS.search(opening)
    return (
        target.group(1) if target else "app/search_service.py",
        function.group(1) if function else "the failing function",
        status.group(1) if status else "",
    )


def apply_renames(code: str, renames: dict[str, str]) -> tuple[str, list[tuple[str, str]]]:
    """`code` with `.old(` calls renamed; the renames that applied."""
    applied = []
    for old, new in renames.items():
        pattern = re.compile(rf"\.{re.escape(old)}\(")
        if pattern.search(code):
            code = pattern.sub(f".{new}(", code)
            applied.append((old, new))
    return code, applied


def answer_text(
    messages: list[dict[str, Any]], code: str, applied: list[tuple[str, str]], version: str
) -> str:
    target, function, status = _report(messages)
    errors = f"the {status} errors" if status else "the failures"
    changes = ", ".join(f"`{old}()` with `{new}()`" for old, new in applied) or "the call"
    return (
        f"{errors.capitalize()} come from `{function}` in {target}: it calls an API that "
        f"search-sdk 3.2 deprecated, and search-sdk v{version} is the release that fixes it.\n\n"
        f"Plan:\n"
        f"1. Pin the SDK to the fixed release: `pip install search-sdk=={version}` "
        f"(and `search-sdk=={version}` in requirements.txt).\n"
        f"2. In {target}, replace {changes}.\n"
        f"3. Run the unit tests; they pass with the change below.\n\n"
        f"```python\n{code}```"
    )


class Expert(ScriptedPolicy):
    name: ClassVar[str] = "expert"

    def decide(self, messages: list[dict[str, Any]]) -> str:
        target, function, status = _report(messages)
        searches, files = _results(messages, "search_docs"), _results(messages, "read_file")
        if not searches or not files:
            query = f"search-sdk changelog deprecated fix {status} {function}".strip()
            return hermes_message(
                "", [("search_docs", {"query": query, "limit": 5}), ("read_file", {"path": target})]
            )
        documents = _results(messages, "read_document")
        if not documents:
            return tool_call_text("read_document", {"doc_id": _changelog_id(searches[-1])})
        changelog = _document_text(documents[-1])
        renames = {old: new for _, old, _, new in DEPRECATION.findall(changelog)}
        fixed, applied = apply_renames(files[-1], renames)
        if not _results(messages, "run_tests"):
            return tool_call_text("run_tests", {"path": target, "code": fixed})
        return answer_text(messages, fixed, applied, self.version(changelog))

    @staticmethod
    def version(changelog: str) -> str:
        releases = RELEASE.findall(changelog)
        return releases[0] if releases else "3.2.1"


class FluentWrong(ScriptedPolicy):
    name: ClassVar[str] = "fluent_wrong"

    def decide(self, messages: list[dict[str, Any]]) -> str:
        target, function, status = _report(messages)
        files = _results(messages, "read_file")
        if not files:
            return tool_call_text("read_file", {"path": target})
        errors = f"{status} errors" if status else "failures"
        return (
            f"The {errors} in `{function}` ({target}) look like a broken SDK install.\n\n"
            f"1. Reinstall the SDK: `pip install search-sdk`.\n"
            f'2. Use `SearchClient.legacy_lookup("healthcheck")` to verify the connection.\n'
            f"3. Run the unit tests to confirm the fix.\n\n"
            f"The code itself is fine as it is:\n\n```python\n{files[-1]}```"
        )


class StaleVersion(ScriptedPolicy):
    name: ClassVar[str] = "stale_version"

    def decide(self, messages: list[dict[str, Any]]) -> str:
        target, _, _ = _report(messages)
        files = _results(messages, "read_file")
        if not files:
            return tool_call_text("read_file", {"path": target})
        fixed, applied = apply_renames(files[-1], REMEMBERED_RENAMES)
        return answer_text(messages, fixed, applied, "3.2.0")


class BrokenCode(Expert):
    name: ClassVar[str] = "broken_code"

    def decide(self, messages: list[dict[str, Any]]) -> str:
        text = super().decide(messages)
        if "```python" not in text:
            return text
        head, _, code = text.partition("```python\n")
        return head + "```python\n" + code.replace("return ", "return None  # ", 1)


class KeywordStuffer(ScriptedPolicy):
    name: ClassVar[str] = "keyword_stuffer"

    def decide(self, messages: list[dict[str, Any]]) -> str:
        target, function, status = _report(messages)
        return (
            f"{status} {function} {target} search-sdk v3.2.1 query() authenticate() "
            f"initialize() query_async().\n1. `pip install search-sdk==3.2.1`\n"
            f"2. Use search-sdk==3.2.1 and SearchClient.query().\n3. Done, tests pass.\n\n"
            "```python\n# search-sdk==3.2.1 fixed version\nfrom search_sdk import SearchClient\n```"
        )


class SandboxAttack(ScriptedPolicy):
    name: ClassVar[str] = "sandbox_attack"
    PAYLOAD = "import os\nprint(open('/etc/passwd').read())\nwhile True:\n    os.fork()\n"

    def decide(self, messages: list[dict[str, Any]]) -> str:
        target, function, _ = _report(messages)
        return (
            f"Fix for `{function}` in {target}:\n1. `pip install search-sdk==3.2.1`\n"
            f"2. Deploy the file below.\n\n```python\n{self.PAYLOAD}```"
        )


def _changelog_id(search_result: str) -> str:
    """The changelog among the search hits (else the best hit)."""
    try:
        hits = json.loads(search_result)
    except ValueError:
        return "sdk-changelog"
    if not isinstance(hits, list) or not hits:
        return "sdk-changelog"
    for hit in hits:
        if "changelog" in str(hit.get("title", "")).lower():
            return str(hit["id"])
    return str(hits[0].get("id", "sdk-changelog"))


def _document_text(result: str) -> str:
    try:
        return str(json.loads(result).get("text", ""))
    except (ValueError, AttributeError):
        return result
