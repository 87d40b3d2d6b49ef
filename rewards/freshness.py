"""Reward components of stale_report (the seed's M5-L02 datetime and RAG examples).

* `used_current_state` — 1 if the agent asked the datetime tool for today's date
  (`get_current_date` answered without error) and never asserted a different "today"
  in its answer; 0 if it relied on its own idea of the date.
* `correct` — for a stale attachment (`datetime_freshness`): 1 if the answer says the
  attachment is not the latest *and* gives the latest report's period and figure, 0.5
  if it only says it is not the latest, 0 if it presents the old figure as current. For
  a genuinely new attachment (`rag_new_document`): 1 if the answer gives the
  attachment's period and figure without calling it outdated, else 0. A figure counts as
  given only when the answer states no other percentage than the latest report's, the
  attachment's and those of the documents the agent read: listing every plausible figure
  ("one of: -30.0% ... 30.0%") gives none.

`violations` lists the broken rules: `trusted_stale_attachment`, `new_document_called_stale`,
`date_not_checked`.
"""

from __future__ import annotations

import re
from typing import Any

from core.records import Execution, Trajectory

STALE_FLAG = re.compile(
    r"\b(not the latest|no longer (?:the )?(?:latest|current)|out[- ]of[- ]date|outdated|"
    r"stale|superseded|isn't the latest|is not current|not current|newer report)\b",
    re.IGNORECASE,
)
TODAY_CLAIM = re.compile(
    r"\btoday(?:'s date)?(?:\s+is|:|\s*=)?\s*\(?\s*(\d{4}-\d{2}-\d{2})", re.IGNORECASE
)
PERCENT = re.compile(r"(?<![\d.])(-?\d+(?:\.\d+)?)\s*%")
DECLINE = re.compile(r"\b(declin\w*|fell|shr[a-z]nk|down|contract\w*)\b", re.IGNORECASE)


def flags_stale(answer: str) -> bool:
    return STALE_FLAG.search(answer) is not None


def gives_figure(answer: str, period: str, growth_pct: float) -> bool:
    """The answer names the period and its growth (`-0.6%`, or `0.6%` with a decline word),
    each figure read whole: `17.4%` or `-7.4%` does not give `7.4%`."""
    if period not in answer:
        return False
    figure = f"{growth_pct:.1f}"
    if says_percent(answer, figure):
        return True
    negative = figure.startswith("-")
    return negative and says_percent(answer, figure[1:]) and bool(DECLINE.search(answer))


def stated_percents(answer: str) -> list[float]:
    """Every figure the answer states as a percentage (`7.4%`, `-0.6%`), read whole."""
    return [float(figure) for figure in PERCENT.findall(answer)]


def only_known_figures(answer: str, trajectory: Trajectory, scenario: Any) -> bool:
    """No percentage in the answer but the latest report's, the attachment's and those of
    the documents the agent read (tool results: "up from -1.2% in Q3 2025"), either sign
    (for "declined 0.6%"): an answer listing figures it never saw gives none of them."""
    known = {scenario.latest_growth_pct, scenario.attachment.growth_pct}
    for call in trajectory.tool_calls:  # a result is what a tool returned (errors have none)
        if call.result is not None:
            known.update(stated_percents(call.result))
    return {abs(value) for value in stated_percents(answer)} <= {abs(f) for f in known}


def says_percent(answer: str, figure: str) -> bool:
    """`figure`% stands in `answer` as a whole number (no digit, point or minus before it)."""
    return re.search(rf"(?<![\d.-]){re.escape(figure)}%", answer) is not None


def _answer(trajectory: Trajectory) -> str:
    return trajectory.final_answer or ""


def checked_date(trajectory: Trajectory) -> bool:
    return any(
        call.name == "get_current_date" and call.execution == Execution.OK
        for call in trajectory.tool_calls
    )


def used_current_state(trajectory: Trajectory, scenario: Any) -> float:
    today = scenario.now.date().isoformat()
    claims = TODAY_CLAIM.findall(_answer(trajectory))
    return float(checked_date(trajectory) and all(claim == today for claim in claims))


def correct(trajectory: Trajectory, scenario: Any) -> float:
    answer = _answer(trajectory)
    flagged = flags_stale(answer)
    latest = gives_figure(
        answer, scenario.latest_period, scenario.latest_growth_pct
    ) and only_known_figures(answer, trajectory, scenario)
    if scenario.stale:
        return 1.0 if flagged and latest else 0.5 if flagged else 0.0
    return float(latest and not flagged)


def violations(trajectory: Trajectory, scenario: Any) -> list[str]:
    answer = _answer(trajectory)
    found = []
    if scenario.stale and not flags_stale(answer):
        found.append("trusted_stale_attachment")
    if not scenario.stale and flags_stale(answer):
        found.append("new_document_called_stale")
    if not used_current_state(trajectory, scenario):
        found.append("date_not_checked")
    return found
