"""Scenarios of the debug_search_api env (the seed's M5-L03 worked example and its slice).

"Getting a lot of 500s from debug_search_api logs…": the agent has a frozen docs corpus
(changelog: v3.2 deprecates `SearchClient.legacy_lookup()`, v3.2.1 is the fix), a small
repository snapshot with unit tests, and must answer with a plan and code. The slice
also holds the seed's sibling cases: `update_user_profile` (401s after the SDK upgrade),
`initialize_cache` (cache initialization failures after a deploy) and `gen_report_async`
(the async API), so it has 20+ version-pin cases, all requiring search-sdk 3.2.1.

Contract
--------
* `cases.yaml` holds one hand-written case per family; `expand(case, rng, n)` draws
  variants (service, counts, time window, request ids, log lines, wording) from the
  passed generator only; every variant needs the same fix as its case.
* `load_split("cases" | "train" | "eval")`: `eval` is the frozen `eval.jsonl` (written
  by `freeze_eval()`, byte-identical on re-freeze); `train` is drawn from `TRAIN_SEED`
  and never shares a content hash with eval. Files are read through importlib.resources.

    python -m scenarios.debug_search_api --freeze   # (re)write eval.jsonl
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import timedelta
from typing import Literal

import numpy as np
from pydantic import Field

from scenarios.schema import Scenario
from scenarios.splits import SPLITS, FrozenSplits

ENV = "debug_search_api"
DATA = "data/debug_search_api"
CORPUS_REF = f"scenarios:{DATA}/corpus"
REPO_REF = f"scenarios:{DATA}/repo.yaml"
REQUIRED_VERSION = "3.2.1"
SLICES = ("debug_search_api",)
TRAIN_SEED, TRAIN_PER_CASE = 20_260_311, 60
EVAL_SEED, EVAL_PER_CASE = 20_260_312, 50  # 200 cases: Wilson lower bound can reach 0.98
Family = Literal["debug_search_api", "update_user_profile", "initialize_cache", "gen_report_async"]

SERVICES = ("storefront-api", "catalog-worker", "search-gateway", "shop-backend", "web-bff")
OPENINGS: dict[str, tuple[str, ...]] = {
    "debug_search_api": (
        "Getting a lot of 500s from debug_search_api logs ({count} in the last {window} "
        "minutes on {service}). The failing call is `find_products` in app/search_service.py.",
        "Debug this issue for me: {service} returns HTTP 500 on product search, {count} "
        "errors in {window} minutes. It comes from `find_products` in app/search_service.py.",
        "Our search endpoint on {service} keeps failing with 500s ({count} since {window} "
        "minutes ago). Please fix `find_products` in app/search_service.py.",
    ),
    "update_user_profile": (
        "After the SDK upgrade, profile updates on {service} fail with 401 Unauthorized "
        "({count} in {window} minutes). See `update_user_profile` in app/profile.py.",
        "Auth errors since we upgraded search-sdk: `update_user_profile` (app/profile.py) "
        "gets 401s on {service}, {count} in the last {window} minutes.",
    ),
    "initialize_cache": (
        "Cache initialization fails right after every deploy of {service} ({count} failed "
        "starts in {window} minutes). The code is `initialize_cache` in app/cache.py.",
        "Post-deploy, {service} cannot initialize its cache: {count} errors in {window} "
        "minutes from `initialize_cache` in app/cache.py.",
    ),
    "gen_report_async": (
        "The nightly report job on {service} is flaky: {count} failures in {window} minutes "
        "from `gen_report_async` in app/reports.py (async search calls).",
        "Can you fix the async report? `gen_report_async` in app/reports.py fails on "
        "{service} ({count} errors in {window} minutes).",
    ),
}
LOG_LINES = {
    "debug_search_api": "ERROR {service} req={rid} search_sdk: HTTP 500 Internal Server Error "
    "(GET /v1/lookup)",
    "update_user_profile": "ERROR {service} req={rid} search_sdk: HTTP 401 Unauthorized "
    "(PATCH /v1/users/{uid}/profile)",
    "initialize_cache": "ERROR {service} deploy={rid} search_sdk: CacheInitError: cache "
    "initialization failed",
    "gen_report_async": "ERROR {service} job={rid} search_sdk: ResourceWarning: unclosed "
    "connection in run_async",
}
CLOSINGS = (
    "Give me a plan and the fixed code.",
    "What should we change? Plan plus code, please.",
    "Please send a short plan and the corrected code.",
)


class DebugScenario(Scenario):
    env: Literal["debug_search_api"] = "debug_search_api"
    family: Family
    opening: str = Field(min_length=1)
    target_file: str = Field(min_length=1)
    test_module: str = Field(min_length=1)
    deprecated_apis: list[str] = Field(min_length=1)  # call names the fix must not use
    required_version: str = REQUIRED_VERSION
    relevance_terms: list[str] = Field(min_length=1)  # what a relevant answer talks about
    fix_docs: list[str] = Field(min_length=1)  # documents that state the fixed version
    corpus: str = CORPUS_REF
    repo: str = REPO_REF


def expand(
    case: DebugScenario, rng: np.random.Generator, n: int, *, split: str
) -> list[DebugScenario]:
    """`n` variants of `case` drawn from `rng`; ids are `<case id>.<split>-NNN`."""
    return [_variant(case, rng, f"{case.id}.{split}-{i:03d}", split) for i in range(n)]


def _variant(
    case: DebugScenario, rng: np.random.Generator, scenario_id: str, split: str
) -> DebugScenario:
    service = SERVICES[int(rng.integers(len(SERVICES)))]
    count, window = int(rng.integers(12, 900)), int(rng.choice([5, 10, 15, 30, 60]))
    now = case.now + timedelta(days=int(rng.integers(0, 40)), minutes=int(rng.integers(0, 600)))
    templates = OPENINGS[case.family]
    text = templates[int(rng.integers(len(templates)))].format(
        service=service, count=count, window=window
    )
    lines = []
    for k in range(int(rng.integers(2, 4))):
        stamp = (now - timedelta(minutes=window - k)).strftime("%Y-%m-%dT%H:%M:%S")
        rid = f"{int(rng.integers(16**6)):06x}"
        line = LOG_LINES[case.family].format(
            service=service, rid=rid, uid=int(rng.integers(1, 9999))
        )
        lines.append(f"{stamp} {line}")
    closing = CLOSINGS[int(rng.integers(len(CLOSINGS)))]
    opening = f"{text}\nLog excerpt:\n" + "\n".join(lines) + f"\n{closing}"
    return case.model_copy(
        update={"id": scenario_id, "split": split, "now": now, "opening": opening}
    )


SETS = FrozenSplits(
    ENV,
    DebugScenario,
    expand,
    train=(TRAIN_SEED, TRAIN_PER_CASE),
    eval=(EVAL_SEED, EVAL_PER_CASE),
)
generate, freeze_eval, load_split = SETS.generate, SETS.freeze_eval, SETS.load_split


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=f"{ENV} scenario sets")
    parser.add_argument("--freeze", action="store_true", help="rewrite eval.jsonl")
    args = parser.parse_args(argv)
    if args.freeze:
        print(f"wrote {freeze_eval()}")
    for split in SPLITS:
        print(f"{split}: {len(load_split(split))} scenarios")


if __name__ == "__main__":
    main()
