"""refund_agent scenario data: file errors, the seeded generator, train/eval splits."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scenarios import refund_sets
from scenarios.loader import ScenarioFileError, load_scenarios
from scenarios.refund import APPROVAL_LIMIT_USD, REFUND_WINDOW_DAYS, RefundScenario
from scenarios.refund_sets import (
    EVAL_FILE,
    build_train,
    case_rng,
    expand,
    freeze_eval,
    generate,
    load_split,
)

ISSUE_SLICES = {
    "refund_happy",
    "refund_ineligible",
    "tool_correctness",
    "escalation_api_down",
    "already_refunded",
    "policy_exception",
    "transient_fault",
    "ask_order_number",
}
GOOD_CASE = """
- id: {id}
  slices: [refund_happy]
  now: 2026-03-10T09:00:00
  session_id: 90412
  opening: "My order #1001 is late."
  db:
    customers: {{42: {{name: Alice Smith}}}}
    sessions: {{90412: {customer}}}
    orders:
      1001: {{customer_id: 42, item: kettle, amount: {amount}, status: lost,
             shipped_on: 2026-02-25}}
  customer_sim: {{order_id: 1001}}
  expected: {{refunded_orders: [1001]}}
"""


def write_case(tmp_path: Path, **fields: object) -> Path:
    values = {"id": "bad-case", "customer": 42, "amount": 39.99, **fields}
    path = tmp_path / "cases.yaml"
    path.write_text(GOOD_CASE.format(**values))
    return path


# ---- file errors name the file, the scenario and the field ---------------------------------
def test_a_valid_case_file_loads(tmp_path: Path) -> None:
    [scenario] = load_scenarios(write_case(tmp_path), RefundScenario)
    assert scenario.customer_id == 42 and scenario.expected.refunded_orders == [1001]


def test_negative_amount_names_file_scenario_and_field(tmp_path: Path) -> None:
    path = write_case(tmp_path, id="negative-amount", amount=-5)
    with pytest.raises(ScenarioFileError) as error:
        load_scenarios(path, RefundScenario)
    message = str(error.value)
    assert str(path) in message
    assert "scenario 'negative-amount'" in message
    assert "db.orders.1001.amount" in message and "greater than 0" in message


def test_session_of_unknown_customer_names_file_scenario_and_field(tmp_path: Path) -> None:
    path = write_case(tmp_path, id="ghost-session", customer=7)
    with pytest.raises(ScenarioFileError) as error:
        load_scenarios(path, RefundScenario)
    message = str(error.value)
    assert str(path) in message and "scenario 'ghost-session'" in message
    assert "sessions.90412" in message and "unknown customer id 7" in message


def test_unknown_split_lists_the_allowed_names() -> None:
    with pytest.raises(ValueError, match=r"no split 'test'.*train, eval, cases"):
        load_split("test")


# ---- the hand-written cases ----------------------------------------------------------------
def test_every_issue_slice_has_at_least_two_cases() -> None:
    cases = load_split("cases")
    counts = refund_sets.slice_counts(cases)
    assert {name: counts[name] >= 2 for name in ISSUE_SLICES} == dict.fromkeys(ISSUE_SLICES, True)
    assert set(counts) <= ISSUE_SLICES


def test_case_expectations_follow_the_refund_policy() -> None:
    for case in load_split("cases"):
        assert ("escalation_api_down" in case.slices) == any(
            f.first_n is None for f in case.faults
        ), case.id
        assert ("transient_fault" in case.slices) == any(f.first_n for f in case.faults), case.id
        if {"escalation_api_down", "policy_exception"} & set(case.slices):
            assert case.expected.escalate and case.expected.refunded_orders == [], case.id
        if {"already_refunded", "refund_ineligible"} & set(case.slices):
            assert case.expected.refunded_orders == [], case.id
        if "ask_order_number" in case.slices:
            assert not re.search(r"\d", case.opening), case.id
        if "tool_correctness" in case.slices:
            assert case.db.customers[case.customer_id].name in case.opening, case.id


# ---- the generator -------------------------------------------------------------------------
def dumps(scenarios: list[RefundScenario]) -> list[str]:
    return [s.model_dump_json() for s in scenarios]


def test_expand_is_deterministic_per_seed() -> None:
    case = load_split("cases")[0]
    first = expand(case, np.random.default_rng(7), 5)
    assert dumps(first) == dumps(expand(case, np.random.default_rng(7), 5))
    assert dumps(first) != dumps(expand(case, np.random.default_rng(8), 5))
    assert len({s.content_hash for s in first}) == 5


def test_a_case_variants_do_not_depend_on_the_other_cases() -> None:
    cases = load_split("cases")
    alone = generate(cases[3:4], split="eval", seed=11, per_case=3)
    together = [
        s
        for s in generate(cases, split="eval", seed=11, per_case=3)
        if s.id in {v.id for v in alone}
    ]
    assert dumps(alone) == dumps(together)


def order_age(scenario: RefundScenario, order_id: int) -> int:
    return (scenario.now.date() - scenario.db.orders[order_id].shipped_on).days


def assert_same_behaviour(case: RefundScenario, variant: RefundScenario) -> None:
    """A variant needs what its case needs: same sides of every policy line."""
    target, new_target = case.customer_sim.order_id, variant.customer_sim.order_id
    assert target is not None and new_target is not None
    old, new = case.db.orders[target], variant.db.orders[new_target]
    assert new.status == old.status
    assert (new.amount > APPROVAL_LIMIT_USD) == (old.amount > APPROVAL_LIMIT_USD)
    in_window = order_age(case, target) <= REFUND_WINDOW_DAYS
    assert (order_age(variant, new_target) <= REFUND_WINDOW_DAYS) == in_window
    assert (target in case.db.refunds) == (new_target in variant.db.refunds)
    assert variant.expected.escalate == case.expected.escalate
    assert len(variant.expected.refunded_orders) == len(case.expected.refunded_orders)
    assert [(f.tool, f.first_n is None) for f in variant.faults] == [
        (f.tool, f.first_n is None) for f in case.faults
    ]
    assert (str(target) in case.opening) == (str(new_target) in variant.opening)
    name, new_name = (
        case.db.customers[case.customer_id].name,
        variant.db.customers[variant.customer_id].name,
    )
    assert (name in case.opening) == (new_name in variant.opening)
    assert variant.slices == case.slices and variant.split == "eval"


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_variants_keep_each_case_on_the_same_side_of_the_policy(seed: int) -> None:
    for case in load_split("cases"):
        for variant in expand(case, np.random.default_rng(seed), 2, split="eval"):
            assert_same_behaviour(case, variant)


def test_variants_vary_the_facts() -> None:
    case = load_split("cases")[0]
    variants = expand(case, case_rng(1, case.id), 40)
    assert len({v.session_id for v in variants}) == 40
    assert len({v.opening for v in variants}) > 10
    assert len({v.db.customers[v.customer_id].name for v in variants}) > 20
    assert len({v.customer_sim.persona for v in variants}) == 3
    faulty = next(c for c in load_split("cases") if c.faults)
    kinds = {f.kind for v in expand(faulty, case_rng(1, faulty.id), 20) for f in v.faults}
    assert kinds == {"http_500", "timeout"}


# ---- the splits ----------------------------------------------------------------------------
def test_train_and_eval_share_no_scenario_by_content() -> None:
    train, eval_set = load_split("train"), load_split("eval")
    assert len(train) >= 20 * len(load_split("cases")) and len(eval_set) >= 200
    assert not {s.content_hash for s in train} & {s.content_hash for s in eval_set}
    assert len({s.content_hash for s in train}) == len(train)
    assert {s.split for s in train} == {"train"} and {s.split for s in eval_set} == {"eval"}


def test_train_drops_variants_that_collide_with_held_out_content() -> None:
    cases = load_split("cases")[:3]
    full = build_train(cases, [], seed=5, per_case=4)
    held_out = [
        s.model_copy(update={"id": f"held-{i}", "split": "eval"}) for i, s in enumerate(full[::2])
    ]
    kept = build_train(cases, held_out, seed=5, per_case=4)
    assert len(kept) == len(full) - len(held_out)
    assert not {s.content_hash for s in kept} & {s.content_hash for s in held_out}


def test_every_issue_slice_is_in_the_eval_set() -> None:
    counts = refund_sets.slice_counts(load_split("eval"))
    assert all(counts[name] >= 20 for name in ISSUE_SLICES), counts


def test_refreezing_eval_gives_a_byte_identical_file(tmp_path: Path) -> None:
    fresh = freeze_eval(tmp_path / "eval.jsonl")
    assert fresh.read_bytes() == EVAL_FILE.read_bytes()


def test_eval_file_loads_the_split_and_splits_are_cached() -> None:
    scenarios = load_scenarios(EVAL_FILE, RefundScenario)
    assert [s.content_hash for s in scenarios] == [s.content_hash for s in load_split("eval")]
    first, second = load_split("eval"), load_split("eval")
    assert first == second and first is not second and first[0] is second[0]
