"""Named scenario sets of refund_agent: the seed's k→1 expansion, `train` and frozen `eval`.

Contract
--------
* `expand(case, rng, n)` turns one hand-written case into `n` variants: new customer
  names, customer/session/order ids, items, amounts, dates, fault kinds and timings,
  opening wording and persona. Every variant needs the same behaviour as its case: an
  amount stays on its side of the $500 approval limit, a ship age on its side of the
  30-day window, a status, a fault's tool and "fails every call" stay as they are. The
  only randomness is the `numpy.random.Generator` passed in.
* `load_split(split)` returns a list of scenarios for `cases` (the hand-written file),
  `train` (`TRAIN_PER_CASE` variants per case from `TRAIN_SEED`) or `eval` (the frozen
  file `eval.jsonl`, written once by `freeze_eval()` from `EVAL_SEED`). Any other name is
  a `ValueError` listing the allowed ones. A train scenario whose content hash equals an
  eval scenario's is dropped, so the two sets never share a scenario. Results are cached
  per process; each call returns a fresh list of the same frozen scenarios.
* Generation is deterministic: each case gets its own generator seeded from the split's
  seed and the case id, so re-freezing gives a byte-identical file and adding a case
  leaves the other cases' variants unchanged.

    python -m scenarios.refund_sets --freeze   # (re)write eval.jsonl
    python -m scenarios.refund_sets --stats    # scenarios per split and slice
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from scenarios.loader import load_scenarios
from scenarios.refund import APPROVAL_LIMIT_USD, REFUND_WINDOW_DAYS, RefundScenario
from scenarios.splits import case_rng

DATA_DIR = Path(__file__).resolve().parent / "data" / "refund_agent"
CASES_FILE = DATA_DIR / "cases.yaml"
EVAL_FILE = DATA_DIR / "eval.jsonl"
SPLITS = ("train", "eval", "cases")
TRAIN_SEED, TRAIN_PER_CASE = 20_260_101, 40
EVAL_SEED, EVAL_PER_CASE = 20_260_202, 12
KEEP_OWN_OPENING = 0.3  # chance a variant keeps its case's wording (with new facts)

FIRST_NAMES = (
    "Alice", "Marcus", "Priya", "Tom", "Grace", "Diego", "Hannah", "Olu", "Kenji", "Sofia",
    "Ben", "Lena", "Yusuf", "Amara", "Victor", "Clara", "Ivan", "Nora", "Fatima", "Luca",
    "Rosa", "Peter", "Mei", "Samir", "Ingrid", "Kwame", "Elena", "Raj", "Chloe", "Mateo",
    "Aisha", "Jonas", "Leila", "Oscar", "Zoe", "Hiroshi", "Nadia", "Felix", "Imani", "Arjun",
)  # fmt: skip
LAST_NAMES = (
    "Smith", "Webb", "Natarajan", "Oduya", "Liu", "Ramos", "Berg", "Adeyemi", "Sato", "Rossi",
    "Carter", "Fischer", "Demir", "Okafor", "Hale", "Mendes", "Petrov", "Lindqvist", "Zahra",
    "Bianchi", "Jimenez", "Novak", "Chen", "Haddad", "Larsen", "Mensah", "Popescu", "Kapoor",
    "Dubois", "Garcia", "Khan", "Weber", "Moreau", "Nilsson", "Tanaka", "Kowalski", "Silva",
)  # fmt: skip
ITEMS = (
    "blue kettle", "desk lamp", "yoga mat", "running shoes", "backpack", "headphones",
    "coffee grinder", "wool scarf", "board game", "toaster", "ceramic vase", "picture frame",
    "electric toothbrush", "glass teapot", "phone case", "bluetooth speaker", "charging cable",
    "hiking boots", "winter jacket", "wireless mouse", "table fan", "salad bowl", "rice cooker",
    "camping tent", "air fryer", "mechanical keyboard", "road bike helmet", "cast iron pan",
    "duvet cover", "tablet stand", "bookshelf", "floor rug", "office chair", "computer monitor",
)  # fmt: skip
PRICEY_ITEMS = (  # for amounts over the approval limit
    "laptop", "espresso machine", "electric scooter", "digital camera", "standing desk",
    "robot vacuum", "gaming chair", "smart watch", "sewing machine", "road bike", "sofa",
    "television", "drone", "washing machine",
)  # fmt: skip
PERSONAS = ("cooperative", "vague", "impatient")
FAULT_KINDS = ("http_500", "timeout")
NAME_INTROS = ("Hi, this is {name}. ", "Hello, my name is {name}. ", "{name} here. ")
ORDER_REFS = ("order #{n}", "order {n}", "order number {n}", "order no. {n}")
OPENINGS_WITH_NUMBER = {
    "lost": (
        "My {ref} is late. Tracking says it's lost. Help!",
        "Tracking for {ref} says the parcel was lost. I'd like a refund.",
        "Hi, my {item} ({ref}) got lost in the mail. What can you do?",
    ),
    "damaged": (
        "My {item} ({ref}) arrived damaged. I want a refund.",
        "{Ref} came broken, the {item} is unusable. Please refund it.",
        "The {item} from {ref} arrived smashed. Can I get my money back?",
    ),
    "delivered": (
        "I want a refund for {ref}, the {item}.",
        "Please refund {ref}. I don't want the {item} anymore.",
    ),
    "in_transit": (
        "My {ref} is late. Tracking says it's still on its way. Refund me please.",
        "{Ref} hasn't arrived yet and I'm tired of waiting. I want a refund.",
    ),
}
OPENINGS_WITHOUT_NUMBER = {
    "lost": (
        "My order is late. Tracking says it's lost. Help!",
        "The carrier lost my {item}. I'd like a refund.",
    ),
    "damaged": (
        "My {item} arrived broken. I want a refund.",
        "One of my orders came damaged. Please refund it.",
    ),
    "delivered": ("I want to return something I ordered and get a refund.",),
    "in_transit": (
        "Where is my stuff?! It's been weeks. I want a refund NOW.",
        "My {item} still hasn't arrived. Can I get a refund?",
    ),
}
T = TypeVar("T")


# ---- the generator ----------------------------------------------------------------------
def expand(
    case: RefundScenario, rng: np.random.Generator, n: int, *, split: str | None = None
) -> list[RefundScenario]:
    """`n` variants of `case`, drawn from `rng` only; ids are `<case id>.<split>-NNN`."""
    return [_variant(case, rng, f"{case.id}.{split or 'variant'}-{i:03d}", split) for i in range(n)]


def _variant(
    case: RefundScenario, rng: np.random.Generator, scenario_id: str, split: str | None
) -> RefundScenario:
    now = _draw_now(rng)
    customers = _renumber(rng, case.db.customers, 1, 100_000)
    sessions = _renumber(rng, case.db.sessions, 10_000, 100_000)
    orders = _renumber(rng, case.db.orders, 1_000, 100_000)
    names = dict(zip(case.db.customers, _draw_names(rng, len(case.db.customers)), strict=True))
    items = _draw_items(rng, case)
    db = _draw_db(case, rng, now, customers, sessions, orders, names, items)
    sim = case.customer_sim
    target = sim.order_id
    data: dict[str, Any] = {
        "id": scenario_id,
        "slices": list(case.slices),
        "split": split,
        "now": now.isoformat(),
        "faults": [_draw_fault(rng, fault.model_dump()) for fault in case.faults],
        "max_turns": case.max_turns,
        "session_id": sessions[case.session_id],
        "db": db,
        "customer_sim": {
            "order_id": orders[target] if target is not None else None,
            "persona": _pick(rng, PERSONAS),
            "max_replies": sim.max_replies,
        },
        "expected": {
            "refunded_orders": [orders[o] for o in case.expected.refunded_orders],
            "escalate": case.expected.escalate,
        },
        "turn_budget": case.turn_budget,
    }
    replacements = {str(old): str(new) for old, new in orders.items()}
    for old, name in names.items():
        old_name = case.db.customers[old].name
        replacements[old_name] = name
        replacements[old_name.split()[0]] = name.split()[0]
    replacements.update({case.db.orders[old].item: item for old, item in items.items()})
    data["opening"] = _draw_opening(case, rng, replacements, orders, names, items)
    return RefundScenario.model_validate(data)


def _draw_db(
    case: RefundScenario,
    rng: np.random.Generator,
    now: datetime,
    customers: dict[int, int],
    sessions: dict[int, int],
    orders: dict[int, int],
    names: dict[int, str],
    items: dict[int, str],
) -> dict[str, Any]:
    """The case's database with every fact redrawn, each on the same side of the policy."""
    db: dict[str, Any] = {"customers": {}, "sessions": {}, "orders": {}, "refunds": {}}
    for old, customer in case.db.customers.items():
        email = f"{names[old].split()[0].lower()}@example.com" if customer.email else ""
        db["customers"][customers[old]] = {"name": names[old], "email": email}
    for old_session, old_customer in case.db.sessions.items():
        db["sessions"][sessions[old_session]] = customers[old_customer]
    shipped: dict[int, date] = {}
    for old, order in case.db.orders.items():
        age = (case.now.date() - order.shipped_on).days
        shipped[old] = now.date() - timedelta(days=_draw_age(rng, age))
        db["orders"][orders[old]] = {
            "customer_id": customers[order.customer_id],
            "item": items[old],
            "amount": _draw_amount(rng, order.amount),
            "status": order.status,
            "shipped_on": shipped[old].isoformat(),
            "tracking_note": order.tracking_note,
        }
    for old, refund in case.db.refunds.items():
        age = (now.date() - shipped[old]).days
        refunded_on = shipped[old] + timedelta(days=int(rng.integers(0, age + 1)))
        db["refunds"][orders[old]] = {
            "amount": db["orders"][orders[old]]["amount"],
            "reason": refund.reason,
            "refunded_on": refunded_on.isoformat(),
        }
    return db


def _draw_now(rng: np.random.Generator) -> datetime:
    day = date(2025, 1, 1) + timedelta(days=int(rng.integers(0, 730)))
    hour, minute = int(rng.integers(8, 20)), 5 * int(rng.integers(0, 12))
    return datetime(day.year, day.month, day.day, hour, minute)


def _draw_age(rng: np.random.Generator, age: int) -> int:
    """Days since shipping, on the same side of the refund window as `age`."""
    if age <= REFUND_WINDOW_DAYS:
        return int(rng.integers(1, REFUND_WINDOW_DAYS - 2))
    return int(rng.integers(REFUND_WINDOW_DAYS + 5, 4 * REFUND_WINDOW_DAYS))


def _draw_amount(rng: np.random.Generator, amount: float) -> float:
    """A price near `amount` (log-normal), on the same side of the approval limit."""
    low, high = (5.0, APPROVAL_LIMIT_USD - 20) if amount <= APPROVAL_LIMIT_USD else (520.0, 2500.0)
    dollars = int(min(max(amount * float(np.exp(rng.normal(0.0, 0.6))), low), high))
    cents = _pick(rng, (0.0, 0.5, 0.95, 0.99, float(rng.integers(0, 100)) / 100))
    return round(dollars + cents, 2)


def _draw_fault(rng: np.random.Generator, fault: dict[str, Any]) -> dict[str, Any]:
    """Same tool; new kind; a transient fault fails its first 1 or 2 calls (2 if the case
    says 2: a retry-twice case stays one)."""
    first_n = None if fault["first_n"] is None else int(rng.integers(1, 3))
    if first_n is not None and fault["first_n"] >= 2:
        first_n = 2
    return {"tool": fault["tool"], "kind": _pick(rng, FAULT_KINDS), "first_n": first_n}


def _draw_items(rng: np.random.Generator, case: RefundScenario) -> dict[int, str]:
    """A distinct item per order, pricey ones for amounts over the approval limit."""
    pricey = [o for o, order in case.db.orders.items() if order.amount > APPROVAL_LIMIT_USD]
    cheap = [o for o in case.db.orders if o not in pricey]
    drawn = dict(zip(pricey, _sample(rng, PRICEY_ITEMS, len(pricey)), strict=True))
    drawn.update(zip(cheap, _sample(rng, ITEMS, len(cheap)), strict=True))
    return {o: drawn[o] for o in case.db.orders}


def _draw_names(rng: np.random.Generator, count: int) -> list[str]:
    firsts = _sample(rng, FIRST_NAMES, count)
    return [f"{first} {_pick(rng, LAST_NAMES)}" for first in firsts]


def _draw_opening(
    case: RefundScenario,
    rng: np.random.Generator,
    replacements: dict[str, str],
    orders: dict[int, int],
    names: dict[int, str],
    items: dict[int, str],
) -> str:
    """The case's opening with the new facts, or a fresh wording of the same request."""
    own = _substitute(case.opening, replacements)
    if rng.random() < KEEP_OWN_OPENING or case.customer_sim.order_id is None:
        return own
    target = case.customer_sim.order_id
    name = case.db.customers[case.customer_id].name
    with_number = re.search(rf"(?<!\d){target}(?!\d)", case.opening) is not None
    status = case.db.orders[target].status
    pools = OPENINGS_WITH_NUMBER if with_number else OPENINGS_WITHOUT_NUMBER
    ref = _pick(rng, ORDER_REFS).format(n=orders[target])
    text = _pick(rng, pools.get(status, (own,)))
    text = text.format(ref=ref, Ref=ref[0].upper() + ref[1:], item=items[target])
    if name in case.opening:
        text = _pick(rng, NAME_INTROS).format(name=names[case.customer_id]) + text
    return text


def _substitute(text: str, replacements: dict[str, str]) -> str:
    """Replace whole words/numbers in one pass (new values are never re-replaced)."""
    keys = sorted(replacements, key=len, reverse=True)
    pattern = re.compile(r"(?<![\w])(" + "|".join(re.escape(k) for k in keys) + r")(?![\w])")
    return pattern.sub(lambda m: replacements[m.group(1)], text)


def _renumber(rng: np.random.Generator, old: Iterable[int], low: int, high: int) -> dict[int, int]:
    """A new, distinct id in [low, high) for each old id."""
    keys = list(old)
    drawn = rng.choice(high - low, size=len(keys), replace=False)
    return {key: low + int(x) for key, x in zip(keys, drawn, strict=True)}


def _sample(rng: np.random.Generator, pool: Sequence[T], count: int) -> list[T]:
    return [pool[int(i)] for i in rng.choice(len(pool), size=count, replace=False)]


def _pick(rng: np.random.Generator, pool: Sequence[T]) -> T:
    return pool[int(rng.integers(len(pool)))]


# ---- the splits -------------------------------------------------------------------------
def generate(
    cases: Iterable[RefundScenario], *, split: str, seed: int, per_case: int
) -> list[RefundScenario]:
    return [
        s for case in cases for s in expand(case, case_rng(seed, case.id), per_case, split=split)
    ]


def build_train(
    cases: Sequence[RefundScenario],
    held_out: Iterable[RefundScenario],
    *,
    seed: int = TRAIN_SEED,
    per_case: int = TRAIN_PER_CASE,
) -> list[RefundScenario]:
    """Train variants, minus any whose content equals a held-out scenario (or an earlier one)."""
    seen = {s.content_hash for s in held_out}
    kept = []
    for scenario in generate(cases, split="train", seed=seed, per_case=per_case):
        if scenario.content_hash not in seen:
            seen.add(scenario.content_hash)
            kept.append(scenario)
    return kept


def freeze_eval(path: Path = EVAL_FILE, *, cases_file: Path = CASES_FILE) -> Path:
    """(Re)write the frozen eval set; the same cases always give the same bytes."""
    cases = load_scenarios(cases_file, RefundScenario)
    scenarios = generate(cases, split="eval", seed=EVAL_SEED, per_case=EVAL_PER_CASE)
    path = Path(path)
    path.write_text("".join(s.model_dump_json() + "\n" for s in scenarios), encoding="utf-8")
    return path


def load_split(split: str, *, scenario_file: str | Path | None = None) -> list[RefundScenario]:
    """The scenarios of a named split (or of `scenario_file`, if given)."""
    if split not in SPLITS:
        raise ValueError(
            f"refund_agent has no split '{split}'; allowed splits: {', '.join(SPLITS)} "
            "(or pass scenario_file=PATH)"
        )
    if scenario_file is not None:
        return load_scenarios(Path(scenario_file), RefundScenario)
    return list(_cached_split(split))


@cache
def _cached_split(split: str) -> tuple[RefundScenario, ...]:
    if split == "cases":
        return tuple(load_scenarios(CASES_FILE, RefundScenario))
    if split == "eval":
        if not EVAL_FILE.exists():
            raise FileNotFoundError(
                f"{EVAL_FILE} is missing: run `python -m scenarios.refund_sets --freeze`"
            )
        return tuple(load_scenarios(EVAL_FILE, RefundScenario))
    return tuple(build_train(_cached_split("cases"), _cached_split("eval")))


def slice_counts(scenarios: Iterable[RefundScenario]) -> Counter[str]:
    return Counter(tag for s in scenarios for tag in s.slices)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="refund_agent scenario sets")
    parser.add_argument("--freeze", action="store_true", help=f"rewrite {EVAL_FILE.name}")
    parser.add_argument("--stats", action="store_true", help="scenarios per split and slice")
    args = parser.parse_args(argv)
    if args.freeze:
        print(f"wrote {freeze_eval()}")
        _cached_split.cache_clear()
    if args.stats or not args.freeze:
        for split in SPLITS:
            scenarios = load_split(split)
            counts = ", ".join(f"{k}={v}" for k, v in sorted(slice_counts(scenarios).items()))
            print(f"{split}: {len(scenarios)} scenarios ({counts})")


if __name__ == "__main__":
    main()
