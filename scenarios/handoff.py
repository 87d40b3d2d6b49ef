"""Scenarios of the multi-agent handoff envs (the seed's "Training for Multi-Agent Coordination").

* `RefundHandoffScenario` (`refund_handoff`): the user asks the acting role to refund an
  order, or for its refund status; only the lookup role can read orders. The sandbox's
  database, injected faults on the lookup's tools, and the expected outcome: what the
  lookup must report (`ok` with the customer id, or an `error`), whether a refund or an
  escalation must happen, and what the final reply must (`reply_mentions`) and must not
  (`reply_avoids`) say (case-insensitive; an all-digit mention must appear as a number).
* `MathHandoffScenario` (`calculator_handoff`): a word problem ("Alice has 3 apples and
  buys 2 more. How many now?"), its reference expression and integer answer.

Sets: `cases` (hand-written, `data/<env>/cases.yaml`: the seed's order #123 of customer 42,
the apples problem, one case per situation), `train` (`TRAIN_PER_CASE` seeded variants per
case; math: a seeded generator) and `eval` (frozen `data/<env>/eval.jsonl`, written by
`python -m scenarios.handoff --freeze` from `EVAL_SEED`: the cases themselves, then their
variants). A train scenario whose content
hash is in eval is dropped. A variant keeps its case's behaviour: the status, the ship
age's side of the refund window, the fault's tool and whether it fails every call.
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.refund_policy import REFUND_WINDOW_DAYS
from scenarios.loader import load_scenarios
from scenarios.refund import RefundDB
from scenarios.schema import Scenario

DATA_DIR = Path(__file__).resolve().parent / "data"
SPLITS = ("train", "eval", "cases")
REFUND_HANDOFF_SLICES = ("handoff_info", "handoff_error_propagation")
MATH_HANDOFF_SLICES = ("handoff_math",)
TRAIN_SEED, EVAL_SEED = 20_261_201, 20_261_202
TRAIN_PER_CASE, EVAL_PER_CASE = 30, 6
MATH_SIZES = {"train": 300, "eval": 48}
NAMES = ("Alice", "Ben", "Carly", "Diego", "Mei", "Omar", "Priya", "Tom", "Lena", "Kenji")
ITEMS = ("headphones", "desk lamp", "backpack", "kettle", "running shoes", "phone case")
THINGS = ("apples", "pencils", "stamps", "marbles", "books", "cards")


class HandoffExpected(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    report: Literal["ok", "error"]
    customer_id: int | None = None  # what an ok report names (known even for some errors)
    refund: bool = False  # the order must be refunded exactly once
    escalate: bool = False
    reply_mentions: list[str] = Field(default_factory=list)
    reply_avoids: list[str] = Field(default_factory=list)


class RefundHandoffScenario(Scenario):
    env: Literal["refund_handoff"] = "refund_handoff"
    ask: Literal["refund", "status"]
    order_id: int
    opening: str = Field(min_length=1)
    db: RefundDB
    expected: HandoffExpected

    @model_validator(mode="after")
    def _consistent(self) -> RefundHandoffScenario:
        order = self.db.orders.get(self.order_id)
        if self.expected.report == "ok" and order is None:
            raise ValueError(f"expected.report 'ok' but order {self.order_id} is not in db.orders")
        if order is not None and self.expected.customer_id not in (None, order.customer_id):
            raise ValueError(
                f"expected.customer_id {self.expected.customer_id} does not own order "
                f"{self.order_id} (owner {order.customer_id})"
            )
        if self.expected.refund and (self.expected.report != "ok" or self.ask != "refund"):
            raise ValueError("expected.refund needs an ok report and a refund request")
        return self


class MathHandoffScenario(Scenario):
    env: Literal["calculator_handoff"] = "calculator_handoff"
    question: str = Field(min_length=1)
    expression: str = Field(min_length=1)
    answer: int


# ---- refund_handoff: k -> 1 expansion of the hand-written cases -------------------------------
def _variant(case: RefundHandoffScenario, rng: np.random.Generator, sid: str, split: str) -> Any:
    old_orders = sorted({*case.db.orders, case.order_id})
    drawn = rng.choice(np.arange(100, 100_000), size=len(old_orders), replace=False)
    order_ids = {old: int(new) for old, new in zip(old_orders, drawn, strict=True)}
    customer_ids = {old: int(rng.integers(1, 10_000)) for old in case.db.customers}
    now = datetime(2026, int(rng.integers(1, 13)), int(rng.integers(1, 28)), 9, 0)
    db = case.db.model_dump(mode="json")
    orders = {}
    for old, order in db["orders"].items():
        age = (case.now.date() - date.fromisoformat(order["shipped_on"])).days
        inside = age <= REFUND_WINDOW_DAYS
        new_age = int(rng.integers(1, REFUND_WINDOW_DAYS + 1) if inside else rng.integers(31, 90))
        order["shipped_on"] = (now.date() - timedelta(days=new_age)).isoformat()
        order["customer_id"] = customer_ids[order["customer_id"]]
        order["item"] = str(rng.choice(ITEMS))
        order["amount"] = round(float(rng.uniform(15, 450)), 2)
        orders[str(order_ids[int(old)])] = order
    customers = {
        str(customer_ids[int(old)]): {
            "name": f"{rng.choice(NAMES)} {chr(65 + int(rng.integers(26)))}."
        }
        for old in db["customers"]
    }
    refunds = {}
    for old, past in db["refunds"].items():
        past["refunded_on"] = (now.date() - timedelta(days=int(rng.integers(1, 10)))).isoformat()
        refunds[str(order_ids[int(old)])] = past
    swap = {str(old): str(new) for old, new in order_ids.items()}
    expected = case.expected.model_dump()
    if expected["customer_id"] is not None:
        expected["customer_id"] = customer_ids[expected["customer_id"]]
    expected["reply_mentions"] = [swap.get(m, m) for m in expected["reply_mentions"]]
    return RefundHandoffScenario.model_validate(
        {
            **case.model_dump(mode="json", exclude={"db", "expected", "id", "split", "now"}),
            "id": sid,
            "split": split,
            "now": now,
            "order_id": order_ids[case.order_id],
            "opening": case.opening.replace(f"#{case.order_id}", f"#{order_ids[case.order_id]}"),
            "db": {"customers": customers, "sessions": {}, "orders": orders, "refunds": refunds},
            "expected": expected,
            "faults": [_fault(rng, f.model_dump()) for f in case.faults],
        }
    )


def _fault(rng: np.random.Generator, fault: dict[str, Any]) -> dict[str, Any]:
    return {**fault, "kind": str(rng.choice(["http_500", "timeout"]))}


def _expand(cases: Sequence[Any], split: str, seed: int, per_case: int) -> list[Any]:
    made = []
    for number, case in enumerate(cases):
        rng = np.random.default_rng([seed, number])
        made += [_variant(case, rng, f"{case.id}.{split}-{i:03d}", split) for i in range(per_case)]
    return made


# ---- calculator_handoff: a seeded generator ---------------------------------------------------
def word_problem(rng: np.random.Generator, index: int, split: str) -> MathHandoffScenario:
    name, thing = str(rng.choice(NAMES)), str(rng.choice(THINGS))
    a, b = int(rng.integers(2, 40)), int(rng.integers(2, 20))
    kind = index % 4
    if kind == 0:
        question, expression = (
            f"{name} has {a} {thing} and buys {b} more. How many now?",
            f"{a} + {b}",
        )
    elif kind == 1:
        c = int(rng.integers(1, a + b))
        question = f"{name} has {a} {thing}, buys {b}, sells {c}. How many now?"
        expression = f"{a} + {b} - {c}"
    elif kind == 2:
        question = f"{name} has {a} boxes of {b} {thing} each. How many {thing} in all?"
        expression = f"{a} * {b}"
    else:
        question = f"{name} shares {a * b} {thing} equally among {b} friends. How many each?"
        expression = f"{a * b} / {b}"
    answer = round(eval(expression, {"__builtins__": {}}))  # digits and + - * / only
    return MathHandoffScenario(
        id=f"handoff_math-{split}-{index:03d}",
        split=split,
        slices=["handoff_math"],
        now=datetime(2026, 3, 10, 9, 0),
        question=question,
        expression=expression,
        answer=answer,
    )


# ---- splits ---------------------------------------------------------------------------------
def _paths(env: str) -> tuple[Path, Path]:
    return DATA_DIR / env / "cases.yaml", DATA_DIR / env / "eval.jsonl"


def _model(env: str) -> type[Scenario]:
    return RefundHandoffScenario if env == "refund_handoff" else MathHandoffScenario


def generate(env: str, split: str) -> list[Any]:
    """Freshly generated `train` or `eval` scenarios of `env` (eval is read frozen instead)."""
    seed = TRAIN_SEED if split == "train" else EVAL_SEED
    cases = list(_cached(env, "cases"))
    # The frozen eval set holds the hand-written cases themselves (the seed's examples) too.
    kept = [c.model_copy(update={"split": "eval"}) for c in cases] if split == "eval" else []
    if env == "refund_handoff":
        per_case = TRAIN_PER_CASE if split == "train" else EVAL_PER_CASE
        return kept + _expand(cases, split, seed, per_case)
    rng = np.random.default_rng(seed)
    return kept + [word_problem(rng, i, split) for i in range(MATH_SIZES[split])]


def freeze_eval(env: str) -> Path:
    """(Re)write the frozen eval set of `env`; the same code always gives the same bytes."""
    _, path = _paths(env)
    made = generate(env, "eval")
    path.write_text("".join(s.model_dump_json() + "\n" for s in made), encoding="utf-8")
    return path


def load_split(env: str, split: str) -> list[Any]:
    if split not in SPLITS:
        raise ValueError(f"{env} has no split '{split}'; allowed splits: {', '.join(SPLITS)}")
    return list(_cached(env, split))


@cache
def _cached(env: str, split: str) -> tuple[Any, ...]:
    cases_file, eval_file = _paths(env)
    if split == "cases":
        return tuple(load_scenarios(cases_file, _model(env)))
    if split == "eval":
        if not eval_file.exists():
            raise FileNotFoundError(
                f"{eval_file} is missing: run python -m scenarios.handoff --freeze"
            )
        return tuple(load_scenarios(eval_file, _model(env)))
    held_out = {s.content_hash for s in _cached(env, "eval")}
    return tuple(s for s in generate(env, "train") if s.content_hash not in held_out)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="handoff scenario sets")
    parser.add_argument("--freeze", action="store_true", help="rewrite both eval.jsonl files")
    args = parser.parse_args(argv)
    for env in ("refund_handoff", "calculator_handoff"):
        if args.freeze:
            print(f"wrote {freeze_eval(env)}")
            _cached.cache_clear()
        for split in SPLITS:
            found = load_split(env, split)
            counts = Counter(tag for s in found for tag in s.slices)
            print(
                f"{env} {split}: {len(found)} ({', '.join(f'{k}={v}' for k, v in counts.items())})"
            )


if __name__ == "__main__":
    main()
