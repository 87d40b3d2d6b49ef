"""Scripted policies of stale_report: the expert and the seed's failure modes.

Each reads only the conversation (the attachment in the user's message, tool results):

* `expert`: asks `get_current_date` and searches the reports index for the company (one
  turn, two calls). If an indexed report is newer than the attachment, it reads it and
  says the attachment is not the latest, giving the latest period and figure; otherwise
  it uses the attachment's figure.
* `trusts_attachment`: summarises the attachment as the latest, no tool at all.
* `own_clock`: no date tool: "today is 2024-06-30" (its training cut-off), so the
  attachment looks current.
* `always_stale`: the expert's steps, but it never believes an attachment is current
  (right on `datetime_freshness`, wrong on `rag_new_document`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date
from typing import Any, ClassVar

from core.render import hermes_message
from policies.base import ScriptedPolicy, tool_call_text

ATTACHMENT = re.compile(
    r"\n(?P<company>.+?) earnings report, (?P<period>.+?) "
    r"\(published (?P<published>\d{4}-\d{2}-\d{2})\)"
    r"\.\nRevenue grew (?P<growth>-?\d+(?:\.\d+)?)% "
)
REMEMBERED_TODAY = "2024-06-30"


@dataclass(frozen=True)
class Report:
    company: str
    period: str
    published: date
    growth: float


def attachment(messages: list[dict[str, Any]]) -> Report | None:
    opening = next((str(m.get("content")) for m in messages if m.get("role") == "user"), "")
    match = ATTACHMENT.search(opening)
    if match is None:
        return None
    return Report(
        match["company"],
        match["period"],
        date.fromisoformat(match["published"]),
        float(match["growth"]),
    )


def _tool(messages: list[dict[str, Any]], name: str) -> str | None:
    found = [
        str(m.get("content")) for m in messages if m.get("role") == "tool" and m.get("name") == name
    ]
    return found[-1] if found else None


def newest_hit(search_result: str, company: str) -> dict[str, Any] | None:
    """The most recent indexed report of `company` among the hits."""
    try:
        hits = json.loads(search_result)
    except ValueError:
        return None
    own = [h for h in hits if isinstance(h, dict) and str(h.get("title", "")).startswith(company)]
    return max(own, key=lambda h: str(h.get("date", "")), default=None)


def figure_of(document: str) -> float | None:
    try:
        text = str(json.loads(document).get("text", ""))
    except (ValueError, AttributeError):
        return None
    match = re.search(r"Revenue grew (-?\d+(?:\.\d+)?)%", text)
    return float(match.group(1)) if match else None


class Expert(ScriptedPolicy):
    name: ClassVar[str] = "expert"
    trusts_new: ClassVar[bool] = True  # believe an attachment nothing indexed supersedes

    def decide(self, messages: list[dict[str, Any]]) -> str:
        report = attachment(messages)
        if report is None:
            return "I could not find the attached report. Could you attach it again?"
        today, found = _tool(messages, "get_current_date"), _tool(messages, "search_docs")
        if today is None or found is None:
            query = f"{report.company} earnings report"
            return hermes_message(
                "", [("get_current_date", {}), ("search_docs", {"query": query, "limit": 10})]
            )
        newest = newest_hit(found, report.company)
        newer = newest is not None and str(newest["date"]) > report.published.isoformat()
        if newer or not self.trusts_new:
            if newest is None:
                return f"Today is {today}. I found no indexed {report.company} report to compare."
            document = _tool(messages, "read_document")
            if document is None:
                return tool_call_text("read_document", {"doc_id": newest["id"]})
            return self.stale_answer(report, today, newest, figure_of(document))
        age = (date.fromisoformat(today) - report.published).days
        return (
            f"Today is {today}. The attached {report.period} report was published "
            f"{report.published.isoformat()} ({age} days ago), and the index has nothing more "
            f"recent for {report.company}, so it is the current one.\n"
            f"{report.company}'s revenue grew {report.growth:.1f}% year over year "
            f"({report.period})."
        )

    @staticmethod
    def stale_answer(
        report: Report, today: str, newest: dict[str, Any], growth: float | None
    ) -> str:
        period = str(newest.get("version") or newest.get("title"))
        figure = f"{growth:.1f}%" if growth is not None else "not stated"
        return (
            f"From today's date ({today}) and the attached file, these are not the latest "
            f"earnings: the attachment covers {report.period} (published "
            f"{report.published.isoformat()}), but {report.company} published its {period} "
            f"report on {newest['date']}.\n"
            f"Latest figure: revenue grew {figure} year over year ({period})."
        )


class TrustsAttachment(ScriptedPolicy):
    name: ClassVar[str] = "trusts_attachment"

    def decide(self, messages: list[dict[str, Any]]) -> str:
        report = attachment(messages)
        if report is None:
            return "Please attach the report."
        return (
            f"Based on the new {report.period} report you attached, {report.company}'s revenue "
            f"grew {report.growth:.1f}% year over year ({report.period})."
        )


class OwnClock(ScriptedPolicy):
    name: ClassVar[str] = "own_clock"

    def decide(self, messages: list[dict[str, Any]]) -> str:
        report = attachment(messages)
        if report is None:
            return "Please attach the report."
        return (
            f"Today is {REMEMBERED_TODAY}, so the {report.period} report you attached is "
            f"recent. {report.company}'s revenue grew {report.growth:.1f}% year over year "
            f"({report.period})."
        )


class AlwaysStale(Expert):
    name: ClassVar[str] = "always_stale"
    trusts_new: ClassVar[bool] = False
