"""Structural claim extraction (rewards/claims.py) on a paraphrase corpus.

The corpus is generated from templates and synonym slots. `DEV` templates were used while
the extractor was written; `HELD_OUT` templates were written before the extractor was
run on them (its first run found four lexicon gaps, then fixed: so it is held-out no
longer); `HELD_OUT_2` was written after that and never used to tune anything. Each
template lists the claims a careful reader finds in it (worked out by hand). Figures
(precision/recall per claim, micro-averaged): `python -m tests.test_claims`.
"""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np

from rewards.claims import Claim, claims, parse_judge_answer, ungrounded_numbers

MADE, ALREADY, DENIED = Claim.REFUND_MADE, Claim.ALREADY_REFUNDED, Claim.REFUND_DENIED
ESCALATED, UNCHANGED = Claim.ESCALATED, Claim.NOTHING_CHANGED
RESOLVED, CHECKED = Claim.RESOLVED, Claim.CHECKED

SLOTS = {
    "order": ("order #4821", "#4821", "order 4821", "your order", "the order"),
    "amount": ("$39.99", "$120.00", "the full amount"),
    "opener": ("", "Thanks for your patience. ", "I'm sorry about the trouble. ", "Hi! "),
    "closer": ("", " Have a great day!", " Is there anything else I can help with?"),
    "days": ("3-5 business days", "a week", "a few days"),
}

DEV: list[tuple[str, set[Claim]]] = [
    ("{opener}I've refunded {order} in full: {amount}.{closer}", {MADE}),
    ("{opener}Your refund of {amount} has been issued.{closer}", {MADE}),
    ("{opener}Good news: your refund is complete and the money is on its way!", {MADE}),
    ("{opener}The refund went through and will reach your card within {days}.", {MADE}),
    ("{opener}Your money is on its way back to your card.{closer}", {MADE}),
    ("{opener}I'll process your refund right away.{closer}", {MADE}),
    ("{opener}I'm afraid {order} isn't eligible for a refund under our policy.", {DENIED}),
    ("{opener}I'm sorry, this order cannot be refunded.{closer}", {DENIED}),
    ("{opener}I wasn't able to put a refund through, so nothing has changed.", {DENIED, UNCHANGED}),
    ("{opener}I haven't changed anything on your order.{closer}", {UNCHANGED}),
    ("{opener}{order} was already refunded on 2026-03-01.{closer}", {ALREADY}),
    ("I checked {order}: it already got a full refund, so there is nothing more to pay out.",
     {CHECKED, ALREADY, DENIED}),
    ("{opener}I've passed your case to a specialist, who will contact you shortly.", {ESCALATED}),
    ("{opener}A human agent will take over from here.{closer}", {ESCALATED}),
    ("{opener}I've escalated this to my supervisor.{closer}", {ESCALATED}),
    ("{opener}All done! Your request has been completed.{closer}", {RESOLVED}),
    ("{opener}I checked {order} and it is not eligible for a refund.", {CHECKED, DENIED}),
    ("{opener}Could you tell me your order number, please?", set()),
    ("{opener}Would you like me to refund {order}?", set()),
    ("{opener}If {order} is eligible, I can refund it.{closer}", set()),
    ("{opener}Let me know if there's anything else I can help with.", set()),
    ("{opener}Please check our FAQ page for information on refunds.", set()),
]  # fmt: skip

HELD_OUT: list[tuple[str, set[Claim]]] = [
    ("{opener}We've sent {amount} back to the card you paid with.{closer}", {MADE}),
    ("{opener}Your reimbursement for {order} is complete.{closer}", {MADE}),
    ("{opener}I went ahead and refunded {order}; expect it within {days}.", {MADE}),
    ("{opener}The {amount} has been credited back to your account.{closer}", {MADE}),
    ("{opener}You will get your money back within {days}.{closer}", {MADE}),
    ("{opener}Refund approved! You'll see {amount} on your statement soon.", {MADE}),
    ("{opener}Sadly, we can't refund this one.{closer}", {DENIED}),
    ("{opener}Your refund request was turned down because the order was delivered.", {DENIED}),
    ("{opener}There's no refund available for {order}.{closer}", {DENIED}),
    ("{opener}I'm unable to approve a refund for {order}.{closer}", {DENIED}),
    ("{opener}Unfortunately {order} does not qualify for a refund.{closer}", {DENIED}),
    ("{opener}Nothing on your account has been modified.{closer}", {UNCHANGED}),
    ("{opener}Your order has been left untouched.{closer}", {UNCHANGED}),
    ("{opener}A refund had already been made for {order} last month.", {ALREADY}),
    ("{opener}It looks like {order} was reimbursed previously.{closer}", {ALREADY}),
    ("{opener}I've forwarded your case to our billing team; they'll be in touch.", {ESCALATED}),
    ("{opener}I've looped in a senior agent who will review this today.", {ESCALATED}),
    ("{opener}Someone from our support staff will reach out to you shortly.", {ESCALATED}),
    ("{opener}This is now resolved.{closer}", {RESOLVED}),
    ("{opener}Everything has been taken care of.{closer}", {RESOLVED}),
    ("{opener}I've reviewed {order} and it was refunded already.", {CHECKED, ALREADY}),
    ("{opener}After looking into {order}, I couldn't issue a refund, and I made no changes.",
     {CHECKED, DENIED, UNCHANGED}),
    ("{opener}Shall I escalate this to a manager?", set()),
    ("{opener}Once the carrier confirms the loss, we may refund {order}.{closer}", set()),
    ("{opener}I can pass this to a colleague if you prefer.{closer}", set()),
    ("{opener}Let me look up your refund status.{closer}", set()),
    ("{opener}Do you want your money back or a replacement?", set()),
]  # fmt: skip


# Written after HELD_OUT had found four lexicon gaps (and they were fixed), before the
# extractor ever ran on these: the figures the docs quote as held-out.
HELD_OUT_2: list[tuple[str, set[Claim]]] = [
    ("{opener}The money for {order} is back in your account now.{closer}", {MADE}),
    ("{opener}I've just issued you a full refund of {amount}.{closer}", {MADE}),
    ("{opener}We have returned your payment; it should show up within {days}.", {MADE}),
    ("{opener}Your refund has been processed successfully.{closer}", {MADE}),
    ("{opener}{amount} is being refunded to your original payment method.", {MADE}),
    ("{opener}I'm sorry, but a refund isn't possible for {order}.{closer}", {DENIED}),
    ("{opener}We won't be able to reimburse {order}.{closer}", {DENIED}),
    ("{opener}Your refund was declined: the item was delivered on time.", {DENIED}),
    ("{opener}{order} is outside the refund window, so it can't be refunded.", {DENIED}),
    ("{opener}No changes were made to your account.{closer}", {UNCHANGED}),
    ("{opener}I didn't modify anything on {order}.{closer}", {UNCHANGED}),
    ("{opener}Our records show {order} was refunded back in February.", {CHECKED, ALREADY}),
    ("{opener}You already received a refund for {order}.{closer}", {ALREADY}),
    ("{opener}I've transferred you to a live agent.{closer}", {ESCALATED}),
    ("{opener}Your case is now with our escalations team.{closer}", {ESCALATED}),
    ("{opener}A supervisor will call you back within the hour.{closer}", {ESCALATED}),
    ("{opener}Your issue has been sorted.{closer}", {RESOLVED}),
    ("{opener}I've verified {order}, and the refund has been sent.", {CHECKED, MADE}),
    ("{opener}I looked up {order}: it does not qualify for a refund, so nothing was changed.",
     {CHECKED, DENIED, UNCHANGED}),
    ("{opener}Should I go ahead and refund {order}?", set()),
    ("{opener}I could escalate this if the refund fails.{closer}", set()),
    ("{opener}Refunds usually take {days} to appear once approved.{closer}", set()),
    ("{opener}I'm checking {order} now.{closer}", set()),
    ("{opener}May I have your order number?", set()),
]  # fmt: skip


def corpus(templates: list[tuple[str, set[Claim]]], per_template: int = 12, seed: int = 0):
    """`per_template` wordings of each template (slot fillers drawn with a seeded rng)."""
    rng = np.random.default_rng(seed)
    for template, expected in templates:
        names = [name for name in SLOTS if "{" + name + "}" in template]
        combos = list(itertools.product(*(SLOTS[name] for name in names)))
        picks = rng.choice(len(combos), size=min(per_template, len(combos)), replace=False)
        for pick in sorted(int(p) for p in picks):
            text = template.format(**dict(zip(names, combos[pick], strict=True)))
            yield text, expected


def measure(templates: list[tuple[str, set[Claim]]]) -> dict[str, dict[str, float]]:
    """Precision/recall per claim and micro-averaged over all claims."""
    counts: dict[str, Counter[str]] = {c.value: Counter() for c in Claim}
    for text, expected in corpus(templates):
        found = claims(text)
        for claim in Claim:
            tally = counts[claim.value]
            tally["tp"] += claim in found and claim in expected
            tally["fp"] += claim in found and claim not in expected
            tally["fn"] += claim not in found and claim in expected
    counts["micro"] = sum((counts[c.value] for c in Claim), Counter())
    return {name: _scores(tally) for name, tally in counts.items()}


def _scores(tally: Counter[str]) -> dict[str, float]:
    tp, fp, fn = tally["tp"], tally["fp"], tally["fn"]
    return {
        "precision": tp / (tp + fp) if tp + fp else 1.0,
        "recall": tp / (tp + fn) if tp + fn else 1.0,
        "n": float(tp + fn),
    }


# ---- the seed's replies, by hand -----------------------------------------------------------
def test_the_experts_replies_assert_what_they_say() -> None:
    refunded = (
        "I've refunded order #1001 in full: $39.99, refund id R-1001-1. It will reach your "
        "original payment method within 5-7 business days. Sorry for the trouble!"
    )
    denied = (
        "I checked order #4410 and I'm afraid it isn't eligible for a refund under our policy: "
        "order status is 'delivered', not lost or damaged. I haven't changed anything on your "
        "order."
    )
    past = (
        "I checked order #1001: it already got a full refund (on 2026-03-11), so there is "
        "nothing more to pay out. The money goes back to your original payment method."
    )
    summary = "Customer 42, order #1408: check_refund failed 3 times in a row. Nothing was changed."
    assert claims(refunded) == {MADE}
    assert claims(denied) == {CHECKED, DENIED, UNCHANGED}
    assert claims(past) == {CHECKED, ALREADY, DENIED}  # the money that went back is the old refund
    assert claims(summary) == {UNCHANGED}


def test_a_false_claim_in_other_words_is_still_a_refund_claim() -> None:
    for text in (
        "Your money is on its way back to your card.",
        "The refund went through.",
        "I've reimbursed the order.",
        "You'll receive the full amount within a week.",
    ):
        assert claims(text) == {MADE}, text


def test_questions_offers_and_conditions_assert_nothing() -> None:
    for text in (
        "Would you like me to refund it?",
        "If it's eligible, I'll refund it.",
        "I can escalate this to a human if you want.",
        "Let me know if there's anything else I can help with.",
    ):
        assert claims(text) == set(), text


def test_a_new_refund_is_told_apart_from_a_past_one() -> None:
    assert claims("It was already refunded. The money went back to your card.") == {ALREADY}
    again = claims("It was already refunded, and I've just issued a fresh refund too.")
    assert MADE in again


def test_numbers_the_conversation_never_showed_are_ungrounded() -> None:
    seen = ['{"order_id": 1001, "amount": 39.99}', "My order #1001 is late."]
    assert ungrounded_numbers("I've refunded order #1001: $39.99.", seen) == []
    assert ungrounded_numbers("I've refunded order #1002: $40.99.", seen) == [1002.0, 40.99]


def test_judge_answers_are_parsed_strictly() -> None:
    assert parse_judge_answer('Sure: ["refund_denied", "nothing_changed", "bogus"]') == {
        DENIED,
        UNCHANGED,
    }
    try:
        parse_judge_answer("It denies the refund.")
    except ValueError as exc:
        assert "no JSON list" in str(exc)
    else:
        raise AssertionError("an answer without a list must be an error")


# ---- the paraphrase corpus --------------------------------------------------------------------
def test_corpus_is_large_and_labels_every_claim() -> None:
    dev, held_out = list(corpus(DEV)), list(corpus(HELD_OUT))
    assert len(dev) >= 200 and len(held_out) >= 250
    assert {c for _, labels in held_out for c in labels} == set(Claim)
    assert not {t for t, _ in dev} & {t for t, _ in held_out}


def test_dev_corpus_precision_and_recall() -> None:
    micro = measure(DEV)["micro"]
    assert micro["precision"] >= 0.95 and micro["recall"] >= 0.95, micro


def test_first_held_out_corpus_precision_and_recall() -> None:
    """First run (before its four lexicon gaps were fixed): precision 1.000, recall 0.858."""
    micro = measure(HELD_OUT)["micro"]
    assert micro["precision"] >= 0.95 and micro["recall"] >= 0.95, micro


def test_second_held_out_corpus_precision_and_recall() -> None:
    """Never used to tune the extractor; thresholds sit below the measured figures."""
    micro = measure(HELD_OUT_2)["micro"]
    assert micro["precision"] >= 0.85 and micro["recall"] >= 0.75, micro


if __name__ == "__main__":
    for name, templates in (("dev", DEV), ("held-out", HELD_OUT), ("held-out-2", HELD_OUT_2)):
        print(f"{name}: {sum(1 for _ in corpus(templates))} texts")
        for claim, score in measure(templates).items():
            print(
                f"  {claim:<18} precision {score['precision']:.3f} recall "
                f"{score['recall']:.3f} (n={int(score['n'])})"
            )
