"""The handoff envs' reward components, value by value, on episodes played with hand-written turns.

Each test plays one hand-written case of `refund_handoff` or `calculator_handoff` with the
learner's turns (and, where it matters, a partner's turns) written out, and checks every
component and the total against values worked out by hand from `docs/rewards.md` and the
module docstring of `rewards/handoff.py`, with the designed weights:

* refund_handoff total = handoff_info + role_execution − wrong_final_response
  − acted_on_error − wasted_calls (an expert episode: 1 + 1 − 0 − 0 − 0 = 2);
* calculator_handoff total = handoff_info + role_execution − wrong_final_response
  − wasted_calls (an expert episode: 2).
"""

from __future__ import annotations

from typing import Any

import pytest

import envs
from envs.rollout import run_episode
from policies.base import ScriptedPolicy, tool_call_text
from tests.conftest import play_case

REFUND, MATH = "refund_handoff", "calculator_handoff"


def components(**changed: Any) -> dict[str, Any]:
    """refund_handoff's components: an expert episode's, with `changed` ones."""
    return {
        "handoff_info": 1.0,
        "role_execution": 1.0,
        "wrong_final_response": 0.0,
        "acted_on_error": 0.0,
        "wasted_calls": 0.0,
        **changed,
    }


def math_components(**changed: Any) -> dict[str, Any]:
    """calculator_handoff's components (refund_handoff's but acted_on_error)."""
    return {k: v for k, v in components(**changed).items() if k != "acted_on_error"}


PERFECT = components()  # total 2
NO_INFO_CREDIT = components(handoff_info=-1.0)  # total 0
ROLE_FAILED = components(role_execution=0.0)  # total 1
BROKEN = components(handoff_info=-1.0, role_execution=0.0, wrong_final_response=1.0)  # -2
MATH_PERFECT = math_components()  # total 2
MATH_NO_INFO_CREDIT = math_components(handoff_info=-1.0)  # total 0
MATH_BROKEN = math_components(handoff_info=-1.0, role_execution=0.0, wrong_final_response=1.0)


class Turns(ScriptedPolicy):
    """Plays the given turns in order (the last one again once they run out)."""

    name = "turns"

    def __init__(self, *turns: str) -> None:
        self.turns = turns

    def decide(self, messages: list[dict[str, Any]]) -> str:
        done = sum(m["role"] == "assistant" for m in messages)
        return self.turns[min(done, len(self.turns) - 1)]


def episode(
    env: str,
    case: str,
    *turns: str,
    role: str | None = None,
    max_turns: int | None = None,
    **partners: Any,
) -> Any:
    """One episode of a hand-written case: the learner plays `turns`, partners as named
    (the env's expert by default)."""
    kwargs: dict[str, Any] = {"partners": partners, "role": role, "max_turns": max_turns}
    made = envs.make_raw(env, split="cases", **kwargs)
    scenario = next(s for s in made.scenarios if s.id == case)
    return run_episode(made, Turns(*turns), scenario=scenario, seed=0)


def scores(trajectory: Any) -> tuple[dict[str, float], float]:
    return trajectory.reward_components, trajectory.reward


def handoff(to: str, message: str) -> str:
    return tool_call_text("handoff", {"to": to, "message": message})


def refund(customer: int, order: int, reason: str = "lost in transit") -> str:
    return tool_call_text(
        "issue_refund", {"customer_id": customer, "order_id": order, "reason": reason}
    )


def escalate(summary: str) -> str:
    return tool_call_text("escalate_to_human", {"summary": summary})


def get_order(order: int) -> str:
    return tool_call_text("get_order", {"order_id": order})


def check_refund(customer: int, order: int) -> str:
    return tool_call_text("check_refund", {"customer_id": customer, "order_id": order})


def calculator(expression: str) -> str:
    return tool_call_text("calculator", {"expression": expression})


def reporting(*reports: str) -> Turns:
    """A lookup partner that reports these texts, one per request, looking nothing up."""
    return Turns(*(handoff("acting", report) for report in reports))


ASK_123 = handoff("lookup", "Look up order #123.")
DONE_123 = "Received order #123; refund complete ✓"
REFUNDED_123 = (refund(42, 123), DONE_123)  # the acting role's right ending
REPORT_123 = "Order #123 belongs to customer 42. Refund status: pending."
MALFORMED = "<tool_call>not json</tool_call>"


def seed_123(*turns: str, **partners: Any) -> Any:
    """The seed's refund of order #123 (customer 42): the learner is the acting role."""
    return episode(REFUND, "seed_refund_123", *turns, **partners)


def status_123(*turns: str) -> Any:
    """The seed's status question on order #123: the reply must say "123" and "pending"
    and must not say "not eligible"."""
    return episode(REFUND, "seed_status_123", *turns)


def check_down(*turns: str) -> Any:
    """check_refund is down: the lookup reports "Order #9907 belongs to customer 64.
    error: …"; an escalation is due."""
    return episode(REFUND, "refund_check_down", handoff("lookup", "Look up order #9907."), *turns)


def lookup_down(*turns: str) -> Any:
    """get_order is down: the lookup reports "error: …"; an escalation is due."""
    return episode(REFUND, "lookup_down", handoff("lookup", "Look up order #8806."), *turns)


def as_lookup(case: str, *turns: str) -> Any:
    return episode(REFUND, case, *turns, role="lookup")


# ---- refund_handoff: the acting role (the default learner) ----------------------------------
def test_hand_written_expert_turns_score_two() -> None:
    assert scores(seed_123(ASK_123, *REFUNDED_123)) == (PERFECT, 2.0)


def test_a_refund_sent_before_the_request_in_the_same_message_used_no_report() -> None:
    """Refund first, then ask, in one message: the refund ran before the lookup's report
    existed. It scored 2.0 and success (right customer, right end state, it "asked"). Now:
    the report was not used (handoff_info -1) and the role acted blind (role_execution 0);
    the reply is still right (wrong_final_response 0): total -1."""
    trajectory = seed_123(refund(42, 123) + "\n" + ASK_123, DONE_123)
    assert trajectory.final_answer == DONE_123
    assert scores(trajectory) == (components(handoff_info=-1.0, role_execution=0.0), -1.0)
    assert not trajectory.success


def test_refunding_twice_fails_the_role_and_the_repeat_is_a_wasted_call() -> None:
    # 3 acting calls (handoff, refund, the same refund again): 1 wasted = 1/3. Two refund
    # events where exactly one is due: role 0. The first refund went to customer 42: info +1.
    trajectory = seed_123(ASK_123, refund(42, 123), *REFUNDED_123)
    third = pytest.approx(1 / 3)
    assert scores(trajectory) == (
        components(role_execution=0.0, wasted_calls=third),
        pytest.approx(1 - 1 / 3),
    )


def test_two_refunds_with_different_reasons_are_not_a_repeat_but_still_one_too_many() -> None:
    trajectory = seed_123(ASK_123, refund(42, 123, "damaged"), *REFUNDED_123)
    assert scores(trajectory) == (ROLE_FAILED, 1.0)


def test_a_request_that_does_not_name_the_order_earns_no_handoff_credit() -> None:
    # The lookup answers the right facts anyway; the acting role refunds correctly: role 1,
    # but the information did not go through the request: info −1. Total 0.
    ask = handoff("lookup", "Look up the customer's order, please.")
    trajectory = seed_123(ask, *REFUNDED_123, lookup=reporting(REPORT_123))
    assert scores(trajectory) == (NO_INFO_CREDIT, 0.0)


def test_a_request_naming_a_longer_order_number_does_not_name_the_order() -> None:
    # "#1234" is not order 123: an all-digit mention must be the whole number.
    ask = handoff("lookup", "Look up order #1234.")
    trajectory = seed_123(ask, *REFUNDED_123, lookup=reporting(REPORT_123))
    assert scores(trajectory) == (NO_INFO_CREDIT, 0.0)


def test_a_report_without_the_customer_breaks_the_chain() -> None:
    # drops_customer: "Order #123: refund status pending." twice; the expert acting role asks
    # again, then gives up ("Sorry, I could not get the details of order #123."): no refund,
    # no "refund complete" in the reply. -1 info, 0 role, 1 wrong reply: total -2.
    trajectory = play_case(REFUND, "seed_refund_123", partners={"lookup": "drops_customer"})
    assert trajectory.final_answer == "Sorry, I could not get the details of order #123."
    assert scores(trajectory) == (BROKEN, -2.0)


def test_a_report_without_the_order_number_breaks_the_chain() -> None:
    lookup = reporting("Customer 42. Refund status: pending.")
    assert scores(seed_123(ASK_123, *REFUNDED_123, lookup=lookup)) == (NO_INFO_CREDIT, 0.0)


def test_an_ok_case_reported_with_the_word_error_is_an_error_report_acted_on() -> None:
    # The report names order and customer but says "error": not the facts of an ok case
    # (info -1), and refunding after it is acting on an error report (role 0, acted 1).
    lookup = reporting("Order #123 belongs to customer 42. Refund status: pending (no error).")
    trajectory = seed_123(ASK_123, *REFUNDED_123, lookup=lookup)
    expected = components(handoff_info=-1.0, role_execution=0.0, acted_on_error=1.0)
    assert scores(trajectory) == (expected, -2.0)


def test_only_the_first_report_counts_not_a_later_correction() -> None:
    # The first report lacks the customer; asked again, the lookup corrects it. Info -1
    # (the first report), everything else right: total 0. Two different handoffs: no waste.
    again = handoff("lookup", "Which customer owns order #123?")
    lookup = reporting("Order #123: refund status pending.", REPORT_123)
    assert scores(seed_123(ASK_123, again, *REFUNDED_123, lookup=lookup)) == (NO_INFO_CREDIT, 0.0)


def test_a_later_request_is_not_the_one_that_names_the_order() -> None:
    # The first request names no order; a second one does, and its report is right. The
    # request that counts is the first: info -1.
    hello = handoff("lookup", "Are you there?")
    trajectory = seed_123(hello, ASK_123, *REFUNDED_123, lookup=reporting("Yes.", REPORT_123))
    assert scores(trajectory) == (NO_INFO_CREDIT, 0.0)


def test_claiming_a_refund_that_was_not_made_is_a_wrong_final_response() -> None:
    # Refund due, none made, "refund complete" said: info -1, role 0, wrong 1: total -2.
    trajectory = seed_123(ASK_123, DONE_123)
    assert trajectory.end_state["events"] == []
    assert scores(trajectory) == (BROKEN, -2.0)


@pytest.mark.parametrize(
    "claim",
    [
        "Refund complete for order #123: status pending.",
        "Refund issued for order #123, status pending.",
        "I have refunded your order #123 (it was pending).",
        "We have refunded order #123; status was pending.",
        "I refunded order #123, it was pending.",
        "Refunded: order #123 (pending).",
    ],
)
def test_every_refund_claim_without_a_refund_is_a_wrong_final_response(claim: str) -> None:
    # A status question answered with the right mentions ("123", "pending") but a refund
    # claimed that never happened: wrong 1; the report was ok and not used right: info -1.
    assert scores(status_123(ASK_123, claim)) == (BROKEN, -2.0)


def test_a_status_reply_that_claims_nothing_is_right() -> None:
    assert scores(status_123(ASK_123, "Order #123: refund status pending.")) == (PERFECT, 2.0)


def test_saying_no_info_arrived_after_a_report_is_a_wrong_final_response() -> None:
    # The reply names the order and "pending" (as the case wants) but says it got nothing.
    reply = "I didn't get the order info for #123; its refund is probably pending."
    assert scores(status_123(ASK_123, reply)) == (BROKEN, -2.0)


def test_saying_nothing_was_received_is_not_wrong_when_nothing_was_handed_over() -> None:
    # No handoff at all: "did not receive" is then true. The reply has what the case wants
    # ("123", "not found"), so it is not a wrong response; the info never went through (-1);
    # the end state and reply are right, but by luck: the acting role never asked (role 0).
    # Total -1.
    reply = "We did not receive order #123: it was not found."
    trajectory = episode(REFUND, "seed_refund_123_missing", reply)
    assert scores(trajectory) == (components(handoff_info=-1.0, role_execution=0.0), -1.0)


def test_a_right_refund_guessed_without_asking_the_lookup_earns_no_role_credit() -> None:
    # The acting role refunds customer 42 for order #123 and says what the case wants, but
    # never asked the lookup: it could not have known. Info -1, role 0: total -1 (was 0).
    trajectory = seed_123(*REFUNDED_123)
    assert scores(trajectory) == (components(handoff_info=-1.0, role_execution=0.0), -1.0)


def test_a_reply_missing_a_required_mention_is_wrong_even_after_the_right_refund() -> None:
    # The refund went to customer 42 (info +1), but "refund complete" is not said.
    trajectory = seed_123(ASK_123, refund(42, 123), "Received order #123; all done.")
    assert scores(trajectory) == (components(role_execution=0.0, wrong_final_response=1.0), 0.0)


def test_a_reply_with_a_phrase_the_case_forbids_is_wrong() -> None:
    reply = "Order #123: refund status pending, so it is not eligible yet."
    assert scores(status_123(ASK_123, reply)) == (BROKEN, -2.0)


def test_an_episode_cut_before_any_reply_has_a_wrong_final_response() -> None:
    # Two turns allowed: handoff, refund, then cut. The refund was right (info +1), but no
    # reply reached the user: wrong 1, so the role is not done either. Total 0.
    trajectory = episode(REFUND, "seed_refund_123", ASK_123, refund(42, 123), max_turns=2)
    assert trajectory.final_answer is None
    assert scores(trajectory) == (components(role_execution=0.0, wrong_final_response=1.0), 0.0)


def test_refunding_after_an_error_report_and_claiming_it_costs_three() -> None:
    # Refunding on the error report (acted 1) and saying so (wrong 1, though a refund was
    # made), no escalation (role 0), info not used (-1): -1 + 0 - 1 - 1 = -3.
    trajectory = check_down(refund(64, 9907), "Refund issued for order #9907.")
    assert [e["event"] for e in trajectory.end_state["events"]] == ["refund"]
    assert scores(trajectory) == ({**BROKEN, "acted_on_error": 1.0}, -3.0)


def test_a_refund_made_before_the_error_report_is_not_acting_on_it() -> None:
    # Refund first (blind), then the lookup reports the check's error, then escalation.
    # Not acted on the error (acted 0); the error report was heeded (info +1); a refund
    # that was not due: role 0; the escalation summary is the response (wrong 0). Total 1.
    trajectory = episode(
        REFUND,
        "refund_check_down",
        refund(64, 9907),
        handoff("lookup", "Look up order #9907."),
        escalate("Order #9907: the refund check failed."),
    )
    assert scores(trajectory) == (ROLE_FAILED, 1.0)


def test_an_invalid_refund_call_after_an_error_report_still_counts_as_acting_on_it() -> None:
    # issue_refund without its arguments, after the error report: acted 1 whether or not
    # it ran; it is the agent's error, 1 of 3 calls wasted, role 0. Info -1 (acted on it);
    # escalated: wrong 0. Total -1 + 0 - 0 - 1 - 1/3.
    invalid = tool_call_text("issue_refund", {"order_id": 9907})
    trajectory = check_down(invalid, escalate("Order #9907: the refund check failed."))
    expected = components(
        handoff_info=-1.0,
        role_execution=0.0,
        acted_on_error=1.0,
        wasted_calls=pytest.approx(1 / 3),
    )
    assert scores(trajectory) == (expected, pytest.approx(-2 - 1 / 3))


def test_the_word_error_in_a_request_is_not_an_error_report() -> None:
    ask = handoff("lookup", "Look up order #123; report any error.")
    assert scores(seed_123(ask, *REFUNDED_123)) == (PERFECT, 2.0)


def test_a_lookup_asked_with_the_word_error_has_not_received_an_error_report() -> None:
    # The lookup partner tries issue_refund (not its tool: rejected) after a request that
    # says "error": a request is not a report, so nobody acted on an error report.
    ask = handoff("lookup", "Look up order #123; an error on our side refunded nothing.")
    lookup = Turns(refund(42, 123), handoff("acting", REPORT_123))
    trajectory = seed_123(ask, *REFUNDED_123, lookup=lookup)
    assert [(c.agent, c.name) for c in trajectory.tool_calls][:2] == [
        ("acting", "handoff"), ("lookup", "issue_refund"),
    ]  # fmt: skip
    assert scores(trajectory) == (PERFECT, 2.0)


def test_claiming_a_refund_after_an_error_report_without_making_one_breaks_the_chain() -> None:
    # The lookup reports "error: ..."; no refund is made, but the reply claims one: info -1,
    # wrong 1, and no escalation (role 0). Total -2.
    trajectory = lookup_down("Refund issued for order #8806.")
    assert trajectory.end_state["events"] == []
    assert scores(trajectory) == (BROKEN, -2.0)


def test_escalating_a_case_that_needed_only_a_refund_fails_the_role() -> None:
    # Refund right (info +1), then an escalation nobody needed: role 0; the escalation
    # summary is the response, so nothing is a wrong reply. Total 1.
    trajectory = seed_123(ASK_123, refund(42, 123), escalate("Refunded order #123."))
    assert scores(trajectory) == (ROLE_FAILED, 1.0)


def test_refunding_an_order_whose_status_was_asked_fails_the_role() -> None:
    # Only the status was asked: a refund event where none is due is a wrong end state
    # (role 0). The reply itself is right and claims nothing: info +1, wrong 0. Total 1.
    trajectory = status_123(ASK_123, refund(42, 123), "Order #123: refund status pending.")
    assert scores(trajectory) == (ROLE_FAILED, 1.0)


def test_a_right_reply_without_the_required_escalation_fails_the_role() -> None:
    # An escalation is due; the reply claims nothing false: info +1 (not acted on, no
    # refund claimed), wrong 0 (no mentions required), role 0. Total 1.
    trajectory = lookup_down("Sorry, order #8806 could not be looked up right now.")
    assert scores(trajectory) == (ROLE_FAILED, 1.0)


def test_a_malformed_call_costs_the_role_and_counts_as_wasted() -> None:
    # Otherwise perfect; 1 of 3 acting calls (malformed, handoff, refund) is the agent's
    # error: wasted 1/3, role 0. Total 1 - 1/3.
    trajectory = seed_123(MALFORMED, ASK_123, *REFUNDED_123)
    expected = components(role_execution=0.0, wasted_calls=pytest.approx(1 / 3))
    assert scores(trajectory) == (expected, pytest.approx(1 - 1 / 3))


def test_each_wasted_call_counts() -> None:
    # 2 of 4 acting calls wasted (malformed, a handoff to "boss"): 0.5; role 0. Total 0.5.
    boss = handoff("boss", "Look up order #123.")
    trajectory = seed_123(MALFORMED, boss, ASK_123, *REFUNDED_123)
    assert scores(trajectory) == (components(role_execution=0.0, wasted_calls=0.5), 0.5)


def test_a_handoff_to_a_role_it_may_not_reach_is_wasted() -> None:
    trajectory = seed_123(handoff("boss", "Look up order #123."), ASK_123, *REFUNDED_123)
    expected = components(role_execution=0.0, wasted_calls=pytest.approx(1 / 3))
    assert scores(trajectory) == (expected, pytest.approx(1 - 1 / 3))


def test_a_partners_repeated_calls_do_not_count_against_the_learner() -> None:
    lookup = Turns(
        get_order(123), get_order(123), check_refund(42, 123), handoff("acting", REPORT_123)
    )
    trajectory = seed_123(ASK_123, *REFUNDED_123, lookup=lookup)
    assert [c.name for c in trajectory.tool_calls if c.agent == "lookup"] == [
        "get_order", "get_order", "check_refund", "handoff",
    ]  # fmt: skip
    assert scores(trajectory) == (PERFECT, 2.0)


def test_a_lookup_that_never_reports_leaves_no_information_and_no_reply() -> None:
    # The lookup partner calls get_order over and over until the partners' turn limit cuts
    # the episode: no report (info -1), no reply (wrong 1), no refund (role 0). Total -2.
    trajectory = seed_123(ASK_123, lookup=Turns(get_order(123)))
    assert trajectory.final_answer is None
    assert [h["from"] for h in trajectory.info["handoffs"]] == ["acting"]
    assert scores(trajectory) == (BROKEN, -2.0)


# ---- refund_handoff: the lookup role as the learner -----------------------------------------
def test_a_lookup_learner_that_repeats_a_lookup_wastes_a_quarter() -> None:
    # 4 lookup calls: get_order, the same get_order again (wasted), check_refund, handoff.
    again = get_order(123)
    trajectory = as_lookup(
        "seed_refund_123", again, again, check_refund(42, 123), handoff("acting", REPORT_123)
    )
    assert scores(trajectory) == (components(wasted_calls=0.25), 1.75)


def test_a_lookup_learner_retrying_a_failed_lookup_wastes_nothing() -> None:
    # lookup_down: get_order fails every time. Retried once, then the error reported; the
    # expert acting role escalates. The role asked for no refund check: role 1. Total 2.
    report = handoff("acting", "error: the lookup of order #8806 failed")
    trajectory = as_lookup("lookup_down", get_order(8806), get_order(8806), report)
    assert scores(trajectory) == (PERFECT, 2.0)


def test_a_lookup_learner_that_checks_the_wrong_customer_fails_its_role() -> None:
    # check_refund(41, 123) runs but finds nothing; the report is right anyway, and the
    # acting expert refunds customer 42: info +1, role 0. Total 1.
    report = handoff("acting", REPORT_123)
    trajectory = as_lookup("seed_refund_123", get_order(123), check_refund(41, 123), report)
    assert scores(trajectory) == (ROLE_FAILED, 1.0)


def test_a_lookup_learner_that_looks_up_another_order_fails_its_role() -> None:
    # Order #123 is missing; the lookup reads order 124 instead and reports #123 not found.
    # The error reached the acting expert ("Order #123 was not found."): info +1, role 0.
    report = handoff("acting", "error: order #123 not found")
    trajectory = as_lookup("seed_refund_123_missing", get_order(124), report)
    assert trajectory.final_answer == "Order #123 was not found. Please check the order number."
    assert scores(trajectory) == (ROLE_FAILED, 1.0)


def test_a_lookup_learner_that_reports_a_missing_order_does_its_role() -> None:
    report = handoff("acting", "error: order #123 not found")
    trajectory = as_lookup("seed_refund_123_missing", get_order(123), report)
    assert scores(trajectory) == (PERFECT, 2.0)


def with_another_order(case: str, order: int) -> Any:
    """`case` with a second order of the same customer in its database."""
    made = envs.make_raw(REFUND, split="cases")
    data = next(s for s in made.scenarios if s.id == case).model_dump(mode="json")
    data["db"]["orders"][str(order)] = {**data["db"]["orders"]["123"], "item": "kettle"}
    return type(made.scenarios[0]).model_validate(data)


def test_a_lookup_learner_that_checks_another_orders_refund_fails_its_role() -> None:
    # check_refund(42, 125) runs fine, but it is not order 123's check: role 0. The report
    # is right and the acting expert refunds 123 for customer 42: info +1. Total 1.
    case = with_another_order("seed_refund_123", 125)
    env = envs.make_raw(REFUND, scenarios=[case], role="lookup")
    turns = Turns(get_order(123), check_refund(42, 125), handoff("acting", REPORT_123))
    trajectory = run_episode(env, turns, scenario=case, seed=0)
    checks = [c for c in trajectory.tool_calls if c.name == "check_refund"]
    assert [c.execution.value for c in checks] == ["ok"]
    assert scores(trajectory) == (ROLE_FAILED, 1.0)


def test_a_lookup_learner_that_skips_the_order_lookup_fails_its_role() -> None:
    # It checks the refund of (42, 123) without get_order; the acting expert's refund of
    # order 123 is not the lookup's own lookup. Info +1, role 0. Total 1.
    trajectory = as_lookup("seed_refund_123", check_refund(42, 123), handoff("acting", REPORT_123))
    assert [e["event"] for e in trajectory.end_state["events"]] == ["refund"]
    assert scores(trajectory) == (ROLE_FAILED, 1.0)


def test_a_lookup_learner_whose_first_report_lacks_the_customer_fails_its_role() -> None:
    # The acting expert asks again and gets the full report, then refunds: the first report
    # is the one that counts: info -1, role 0; 4 different calls, none wasted. Total -1.
    trajectory = as_lookup(
        "seed_refund_123",
        get_order(123),
        check_refund(42, 123),
        handoff("acting", "Order #123: refund status pending."),
        handoff("acting", REPORT_123),
    )
    assert trajectory.final_answer == DONE_123
    assert scores(trajectory) == (components(handoff_info=-1.0, role_execution=0.0), -1.0)


def test_a_lookup_learner_with_a_malformed_call_fails_its_role() -> None:
    report = handoff("acting", REPORT_123)
    checked = (get_order(123), MALFORMED, check_refund(42, 123), report)
    trajectory = as_lookup("seed_refund_123", *checked)
    assert scores(trajectory) == (components(role_execution=0.0, wasted_calls=0.25), 0.75)


# ---- calculator_handoff (learner: the coordinator unless named) -----------------------------
CARLY = "Carly has 8 apples, buys 2, sells 5. How many now?"
ASK_CARLY = handoff("equation", CARLY)
EQUATION = "Start with 8. Buys 2, sells 5 ⇒ 8 + 2 - 5"
ANSWER = "<answer>5</answer>"
COMPUTED = (calculator("8 + 2 - 5"), handoff("coordinator", "8 + 2 - 5 = 5"))  # calculator role
ANSWERS_6 = Turns(ASK_CARLY, "<answer>6</answer>")  # a coordinator partner that answers 6


def math(*turns: str, role: str | None = None, **partners: Any) -> Any:
    return episode(MATH, "seed_carly_apples", *turns, role=role, **partners)


def writes(equation: str) -> Turns:
    """An equation partner that hands on this equation."""
    return Turns(handoff("calculator", equation))


def test_hand_written_coordinator_turns_score_two() -> None:
    assert scores(math(ASK_CARLY, ANSWER)) == (MATH_PERFECT, 2.0)


def test_a_problem_handed_over_without_all_its_numbers_breaks_the_chain() -> None:
    # The "5" is left out of the request; the equation partner writes the right equation
    # anyway, and the coordinator answers 5: info -1, role 1. Total 0.
    ask = handoff("equation", "Carly has 8 apples and buys 2, then sells some. How many now?")
    assert scores(math(ask, ANSWER, equation=writes(EQUATION))) == (MATH_NO_INFO_CREDIT, 0.0)


def test_a_wrong_equation_breaks_the_chain_even_if_the_answer_is_right() -> None:
    # 8 + 2 + 5 = 15 comes back; the coordinator answers 5 all the same: info -1, role 1.
    trajectory = math(ASK_CARLY, ANSWER, equation=writes("Add them up ⇒ 8 + 2 + 5"))
    assert scores(trajectory) == (MATH_NO_INFO_CREDIT, 0.0)


def test_a_result_that_does_not_carry_the_answer_breaks_the_chain() -> None:
    done = Turns(calculator("8 + 2 - 5"), handoff("coordinator", "Done."))
    assert scores(math(ASK_CARLY, ANSWER, calculator=done)) == (MATH_NO_INFO_CREDIT, 0.0)


@pytest.mark.parametrize("report", ["8 + 2 - 5 = 6", "8 + 2 - 5 = 5 + 1 = 6"])
def test_a_result_states_the_value_after_its_last_equals_sign(report: str) -> None:
    # The value is 6; the 5 among the operands, or in a step before, is not the result:
    # info -1 though the coordinator answers 5.
    six = Turns(calculator("8 + 2 - 5"), handoff("coordinator", report))
    assert scores(math(ASK_CARLY, ANSWER, calculator=six)) == (MATH_NO_INFO_CREDIT, 0.0)


@pytest.mark.parametrize(
    "equation",
    [
        "8 + 2 - 5",
        "Start with 8. Buys 2, sells 5 ⇒ 8 + 2 - 5.",
        "8, less the 5 sold after buying 2 ⇒ 8 - (5 - 2).",  # "(5 - 2)." alone does not parse
        "8 + 2 ⇒ 10 - 5 ⇒ 8 + 2 - 5",
    ],
)
def test_the_equation_is_read_after_the_last_arrow_without_a_final_period(equation: str) -> None:
    assert scores(math(ASK_CARLY, ANSWER, equation=writes(equation))) == (MATH_PERFECT, 2.0)


@pytest.mark.parametrize("equation", ["⇒ 5 / 0", "⇒ eight plus two minus five"])
def test_an_equation_that_cannot_be_evaluated_breaks_the_chain(equation: str) -> None:
    # The calculator partner reports "= 5" regardless; the coordinator answers 5: role 1.
    says_5 = Turns(handoff("coordinator", "The result = 5"))
    trajectory = math(ASK_CARLY, ANSWER, equation=writes(equation), calculator=says_5)
    assert scores(trajectory) == (MATH_NO_INFO_CREDIT, 0.0)


@pytest.mark.parametrize(
    "reply", ["<answer>5 apples</answer>", "<answer>5", "5", "<answer>five</answer>"]
)
def test_an_answer_that_is_not_a_tagged_number_is_wrong(reply: str) -> None:
    # info -1 (no final value), role 0, wrong 1: total -2.
    assert scores(math(ASK_CARLY, reply)) == (MATH_BROKEN, -2.0)


@pytest.mark.parametrize(
    "reply", ["<answer> 5 </answer>", "<answer>5.0</answer>", "So: <answer>5</answer> (8+2-5)"]
)
def test_a_tagged_number_equal_to_the_answer_is_right(reply: str) -> None:
    assert scores(math(ASK_CARLY, reply)) == (MATH_PERFECT, 2.0)


def test_the_first_answer_tag_is_the_answer() -> None:
    reply = "<answer>6</answer> or <answer>5</answer>"
    assert scores(math(ASK_CARLY, reply)) == (MATH_BROKEN, -2.0)


def test_saying_the_result_never_came_is_wrong_even_with_the_right_answer() -> None:
    # The value is right (info +1, role 1); "didn't get" is a wrong response: total 1.
    trajectory = math(ASK_CARLY, "<answer>5</answer> I didn't get the result.")
    assert scores(trajectory) == (math_components(wrong_final_response=1.0), 1.0)


def test_a_coordinator_that_answers_before_any_result_fails_its_role() -> None:
    # The right number with no result handed back: info -1 and role 0, reply right.
    expected = math_components(handoff_info=-1.0, role_execution=0.0)
    assert scores(math(ANSWER)) == (expected, -1.0)


def test_a_coordinator_with_a_malformed_call_fails_its_role() -> None:
    # 1 of 2 calls is the agent's error: wasted 0.5, role 0. Total 1 - 0.5.
    expected = math_components(role_execution=0.0, wasted_calls=0.5)
    assert scores(math(MALFORMED, ASK_CARLY, ANSWER)) == (expected, 0.5)


def test_the_problem_must_reach_the_equation_role_not_only_the_calculator() -> None:
    # The coordinator first pings the calculator ("Please stand by."), which answers with
    # the value; then it hands the problem to the equation role and the chain completes.
    # The hop that counts is the problem handed to the equation role: info +1. Total 2.
    ping = handoff("calculator", "Please stand by.")
    trajectory = math(ping, ASK_CARLY, ANSWER, calculator=Turns(*COMPUTED))
    assert [(h["from"], h["to"]) for h in trajectory.info["handoffs"]][:2] == [
        ("coordinator", "calculator"), ("calculator", "coordinator"),
    ]  # fmt: skip
    assert scores(trajectory) == (MATH_PERFECT, 2.0)


def test_a_coordinator_cut_before_answering_has_a_wrong_final_response() -> None:
    trajectory = episode(MATH, "seed_carly_apples", ASK_CARLY, max_turns=1)
    assert trajectory.final_answer is None
    assert scores(trajectory) == (MATH_BROKEN, -2.0)


def test_an_equation_learner_handing_on_the_right_equation_does_its_role() -> None:
    assert scores(math(handoff("calculator", EQUATION), role="equation")) == (MATH_PERFECT, 2.0)


def test_an_equation_learner_with_a_wrong_equation_fails_its_role() -> None:
    # 8 + 2 = 10 goes on; the coordinator expert answers 10: info -1, role 0, wrong 1.
    trajectory = math(handoff("calculator", "⇒ 8 + 2"), role="equation")
    assert trajectory.final_answer.endswith("<answer>10</answer>")
    assert scores(trajectory) == (MATH_BROKEN, -2.0)


def test_an_equation_learner_is_judged_on_its_equation_not_on_the_final_answer() -> None:
    # The coordinator partner answers 6 whatever it is told: the equation role did its
    # job (role 1); the chain broke at the end (info -1) and the reply is wrong. Total -1.
    trajectory = math(handoff("calculator", EQUATION), role="equation", coordinator=ANSWERS_6)
    expected = math_components(handoff_info=-1.0, wrong_final_response=1.0)
    assert scores(trajectory) == (expected, -1.0)


def test_a_calculator_learner_reporting_its_value_does_its_role() -> None:
    assert scores(math(*COMPUTED, role="calculator")) == (MATH_PERFECT, 2.0)


def test_a_calculator_learner_is_judged_on_its_report_not_on_the_final_answer() -> None:
    trajectory = math(*COMPUTED, role="calculator", coordinator=ANSWERS_6)
    expected = math_components(handoff_info=-1.0, wrong_final_response=1.0)
    assert scores(trajectory) == (expected, -1.0)


def test_a_calculator_learner_reporting_another_value_than_its_tool_fails_its_role() -> None:
    # The tool said 5; the report says 6; the coordinator expert answers 6: -1, 0, wrong 1.
    report = handoff("coordinator", "8 + 2 - 5 = 6")
    trajectory = math(calculator("8 + 2 - 5"), report, role="calculator")
    assert trajectory.final_answer.endswith("<answer>6</answer>")
    assert scores(trajectory) == (MATH_BROKEN, -2.0)


def test_a_calculator_learner_repeating_its_call_wastes_a_third() -> None:
    trajectory = math(calculator("8 + 2 - 5"), *COMPUTED, role="calculator")
    third = pytest.approx(1 / 3)
    assert scores(trajectory) == (math_components(wasted_calls=third), pytest.approx(2 - 1 / 3))


def test_a_calculator_learner_whose_call_failed_has_no_value_to_report() -> None:
    # "8 + 2 - 5 +" is not an expression (the agent's error: wasted 1/2, role 0); the
    # report's 5 is right, so the chain holds: info +1. Total 1 - 0.5.
    report = handoff("coordinator", "8 + 2 - 5 = 5")
    trajectory = math(calculator("8 + 2 - 5 +"), report, role="calculator")
    assert scores(trajectory) == (math_components(role_execution=0.0, wasted_calls=0.5), 0.5)
