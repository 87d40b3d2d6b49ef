"""stale_report's rewards (`rewards/freshness.py`) on episodes played by hand, values by hand.

The hand-written cases (`split="cases"`):

* `old-q1-report`: today is 2026-03-10; the attachment is Acme Corp's Q1 2025 report
  (revenue +0.5%); the latest indexed one is Q4 2025, revenue +7.4%. Stale.
* `old-q3-report`: Globex's Q3 2025 attachment (+13.2%); the latest is Q4 2025, -0.6%.
* `new-trading-update`: Acme Corp's Q1 2026 trading update (+9.1%), newer than the index.

`correct` pays 1 for "not the latest" plus the latest period and figure, 0.5 for the flag
alone, 0 otherwise on a stale case; 1 for the attachment's period and figure without a
stale flag on a new one. `used_current_state` pays 1 when `get_current_date` answered and
no "today is ..." in the answer differs from the date.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

import envs
from core.records import Trajectory
from envs.base import ToolEnv

CALL = '<tool_call>\n{{"name": "{name}", "arguments": {args}}}\n</tool_call>'
DATE = CALL.format(name="get_current_date", args="{}")
BAD_DATE = CALL.format(name="get_current_date", args='{"when": "now"}')  # no such parameter
SEARCH = CALL.format(name="search_docs", args='{"query": "Acme Corp earnings"}')


def play(case_id: str, *actions: str) -> Trajectory:
    return play_case_by_hand(envs.make_raw("stale_report", split="cases"), case_id, actions)


def play_case_by_hand(env: ToolEnv, case_id: str, actions: Sequence[str]) -> Trajectory:
    """One episode of the hand-written case `case_id`, the agent's turns given."""
    env.begin(next(s for s in env.scenarios if s.id == case_id), seed=0)
    for action in actions:
        result = env.advance(action)
        if result.done:
            assert result.trajectory is not None
            return result.trajectory
    raise AssertionError("episode did not end")


def scores(trajectory: Trajectory) -> tuple[float, float, list[str]]:
    components = trajectory.reward_components
    return components["used_current_state"], components["correct"], trajectory.violations


# ---- a stale attachment ------------------------------------------------------------------------
def test_checking_the_date_and_giving_the_latest_report_scores_full() -> None:
    played = play("old-q1-report", DATE, "Not the latest: Q4 2025 revenue grew 7.4%.")
    assert scores(played) == (1.0, 1.0, [])
    assert played.success


def test_saying_the_attachment_is_old_without_the_latest_figure_is_half() -> None:
    assert scores(play("old-q1-report", DATE, "This report is outdated.")) == (1.0, 0.5, [])


def test_the_latest_figure_without_saying_the_attachment_is_old_is_wrong() -> None:
    played = play("old-q1-report", DATE, "Q4 2025 revenue grew 7.4%.")
    assert scores(played) == (1.0, 0.0, ["trusted_stale_attachment"])


def test_trusting_the_attachment_scores_nothing() -> None:
    played = play("old-q1-report", DATE, "Revenue grew 0.5% in Q1 2025.")
    assert scores(played) == (1.0, 0.0, ["trusted_stale_attachment"])


def test_the_latest_figure_needs_its_period() -> None:
    played = play("old-q1-report", DATE, "Not the latest: revenue grew 7.4% last quarter.")
    assert scores(played) == (1.0, 0.5, [])


@pytest.mark.parametrize(
    "answer",
    [  # 17.4%, -7.4% and 27.45% are other figures than the latest +7.4%: the flag alone
        "Not the latest: Q4 2025 revenue grew 17.4%.",
        "Not the latest: Q4 2025 revenue grew -7.4%.",
        "Not the latest: Q4 2025 revenue grew 27.45%.",
    ],
)
def test_a_figure_is_read_whole_not_inside_a_longer_number(answer: str) -> None:
    assert scores(play("old-q1-report", DATE, answer)) == (1.0, 0.5, [])


@pytest.mark.parametrize(
    "answer",
    [  # Q4 2025 is -0.6%: "-0.6%", or "0.6%" beside a decline word (any case), gives it
        "Not the latest: Q4 2025 revenue grew -0.6%.",
        "Not the latest: in Q4 2025 revenue declined 0.6%.",
        "Not the latest. Q4 2025: Revenue Fell 0.6% year over year.",
    ],
)
def test_a_negative_figure_may_be_given_with_its_sign_or_in_words(answer: str) -> None:
    assert scores(play("old-q3-report", DATE, answer)) == (1.0, 1.0, [])


@pytest.mark.parametrize(
    "answer",
    [
        "Not the latest: in Q4 2025 revenue grew 0.6%.",  # the sign is lost
        "Not the latest: in Q4 2025 revenue declined 10.6%.",  # another figure
        "Not the latest: in Q4 2025 revenue declined 3.0%.",  # another figure
    ],
)
def test_a_negative_figure_in_words_needs_the_decline_and_the_number(answer: str) -> None:
    assert scores(play("old-q3-report", DATE, answer)) == (1.0, 0.5, [])


EVERY_FIGURE = ", ".join(f"{tenth / 10:.1f}%" for tenth in range(-300, 301))  # -30.0% .. 30.0%


def test_listing_every_plausible_figure_gives_none_of_them() -> None:
    """Keyword stuffing: "not the latest", the period, and every figure from -30.0% to
    30.0% contained the latest 7.4%, so `correct` paid 1 (success) without a search."""
    answer = f"Not the latest: Q4 2025 revenue grew one of {EVERY_FIGURE}."
    assert scores(play("old-q1-report", DATE, answer)) == (1.0, 0.5, [])


def test_the_attachments_old_figure_may_be_named_beside_the_latest() -> None:
    answer = "Not the latest: the Q1 2025 report said 0.5%, but Q4 2025 revenue grew 7.4%."
    assert scores(play("old-q1-report", DATE, answer)) == (1.0, 1.0, [])


def read(doc_id: str) -> str:
    return CALL.format(name="read_document", args=f'{{"doc_id": "{doc_id}"}}')


# the latest figure beside one the agent read in the index: Acme Corp's Q3 2025, -1.2%
TREND = "Not the latest: Q4 2025 revenue grew 7.4%, up from -1.2% in Q3 2025."


def test_a_figure_read_in_a_document_may_be_named_beside_the_latest() -> None:
    """Reading the Q3 and Q4 2025 reports and giving the trend scored correct 0.5 (no
    success): -1.2% was neither the latest's nor the attachment's figure. It is a figure
    the agent read, not a guess: correct 1."""
    played = play("old-q1-report", DATE, SEARCH, read("acme-corp-q3-2025"), TREND)
    assert scores(played) == (1.0, 1.0, [])
    assert played.success


@pytest.mark.parametrize(
    "looked_up",
    [
        (),  # nothing read: -1.2% is a guess
        (SEARCH,),  # the search's snippets give no figures
        (read("acme-corp-q2-2025"),),  # Q2 2025 is 12.3%: another figure than -1.2%
        (read("acme-corp-q3-2026"),),  # no such report: an error, nothing read
    ],
)
def test_a_figure_no_tool_returned_is_still_another_figure(looked_up: tuple[str, ...]) -> None:
    assert scores(play("old-q1-report", DATE, *looked_up, TREND)) == (1.0, 0.5, [])


# ---- a new attachment ---------------------------------------------------------------------------
def test_using_a_new_attachment_as_it_is_scores_full() -> None:
    played = play("new-trading-update", DATE, "Q1 2026 trading update: revenue grew 9.1%.")
    assert scores(played) == (1.0, 1.0, [])


def test_calling_a_new_attachment_stale_is_wrong_even_with_its_figure() -> None:
    answer = "Outdated! Q1 2026 trading update: revenue grew 9.1%."
    played = play("new-trading-update", DATE, answer)
    assert scores(played) == (1.0, 0.0, ["new_document_called_stale"])


def test_a_new_attachment_without_its_figure_is_not_used() -> None:
    played = play("new-trading-update", DATE, "The report looks fine to me.")
    assert scores(played) == (1.0, 0.0, [])


# ---- the date ---------------------------------------------------------------------------------
def test_a_new_attachments_figure_with_other_guesses_is_not_used() -> None:
    played = play("new-trading-update", DATE, "Q1 2026 trading update: revenue grew 9.1% or 3.0%.")
    assert scores(played) == (1.0, 0.0, [])


def test_an_answer_without_asking_the_date_does_not_use_the_current_state() -> None:
    played = play("old-q1-report", "Not the latest: Q4 2025 revenue grew 7.4%.")
    assert scores(played) == (0.0, 1.0, ["date_not_checked"])
    assert not played.success


def test_a_date_call_that_failed_is_no_check() -> None:
    played = play("old-q1-report", BAD_DATE, "Not the latest: Q4 2025 revenue grew 7.4%.")
    assert scores(played) == (0.0, 1.0, ["date_not_checked"])


def test_another_tool_that_answered_is_no_date_check() -> None:
    played = play("old-q1-report", SEARCH, "Not the latest: Q4 2025 revenue grew 7.4%.")
    assert scores(played) == (0.0, 1.0, ["date_not_checked"])


def test_stating_the_checked_date_as_today_keeps_the_current_state() -> None:
    for answer in (
        "Today is 2026-03-10. Not the latest: Q4 2025 revenue grew 7.4%.",
        "Today's date: 2026-03-10. Not the latest: Q4 2025 revenue grew 7.4%.",
    ):
        assert scores(play("old-q1-report", DATE, answer)) == (1.0, 1.0, []), answer


def test_stating_another_date_as_today_loses_the_current_state() -> None:
    for answer in (
        "Today is 2024-06-30. Not the latest: Q4 2025 revenue grew 7.4%.",
        "As of today (2024-06-30): not the latest, Q4 2025 revenue grew 7.4%.",
        "Today is 2026-03-10, or today = 2024-06-30. Not the latest: Q4 2025 grew 7.4%.",
    ):
        played = play("old-q1-report", DATE, answer)
        assert scores(played) == (0.0, 1.0, ["date_not_checked"]), answer


def test_every_broken_rule_is_listed_in_order() -> None:
    stale = play("old-q1-report", "Revenue grew 0.5% in Q1 2025.")
    assert stale.violations == ["trusted_stale_attachment", "date_not_checked"]
    new = play("new-trading-update", "This is stale.")
    assert new.violations == ["new_document_called_stale", "date_not_checked"]
