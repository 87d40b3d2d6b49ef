"""Scenarios of the stale_report env (the seed's M5-L02 "Handling Messy or Wrong Data").

"New earnings report attached, help me with…" — but the attachment may be old. Two
slices:

* `datetime_freshness`: the attachment is an old quarterly report; a newer one is in the
  frozen reports corpus. The agent must check today's date with the tool, compare, say
  the attachment is not the latest, and give the latest figure (found by search).
* `rag_new_document`: the attachment is genuinely new (published days ago, newer than
  anything in the corpus). The agent must check the date and use the attachment's figure,
  not call it stale.

Contract
--------
* The corpus (`data/stale_report/corpus/reports.jsonl`) holds quarterly reports of
  `COMPANIES` for 2025, written once by `write_corpus()` from `CORPUS_SEED`.
* `cases.yaml` holds hand-written cases; `expand(case, rng, n)` draws variants (company,
  attached quarter, today's date, figures of new documents, wording) from the passed
  generator only, keeping the case's slice. `load_split("cases" | "train" | "eval")`:
  `eval` is the frozen `eval.jsonl` (`freeze_eval()`, byte-identical on re-freeze), train
  never shares a content hash with it. Files are read through importlib.resources.

    python -m scenarios.stale_report --corpus --freeze
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from scenarios.schema import Scenario
from scenarios.splits import SPLITS, FrozenSplits

ENV = "stale_report"
DATA = "data/stale_report"
CORPUS_REF = f"scenarios:{DATA}/corpus"
SLICES = ("datetime_freshness", "rag_new_document")
CORPUS_SEED = 20_250_101
TRAIN_SEED, TRAIN_PER_CASE = 20_260_401, 40
EVAL_SEED, EVAL_PER_CASE = 20_260_402, 15
COMPANIES = ("Acme Corp", "Globex", "Initech", "Umbrella Labs", "Stark Foods", "Wayne Freight")
# (period, published) of the corpus reports: every scenario's today is after the last one.
QUARTERS = (
    ("Q1 2025", date(2025, 4, 24)),
    ("Q2 2025", date(2025, 7, 24)),
    ("Q3 2025", date(2025, 10, 23)),
    ("Q4 2025", date(2026, 2, 5)),
)
NEW_PERIOD = "Q1 2026 trading update"
TODAY_RANGE = (date(2026, 3, 2), 40)  # first possible today, and how many days after it
ASKS = (
    "New earnings report attached, help me with a summary: how fast is {company} growing?",
    "Here's the latest {company} earnings report. What's their revenue growth right now?",
    "Attached is {company}'s new report. Can you tell me their current revenue growth?",
)


class Attachment(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    title: str
    period: str
    published: date
    growth_pct: float


class StaleReportScenario(Scenario):
    env: Literal["stale_report"] = "stale_report"
    company: str
    opening: str = Field(min_length=1)
    attachment: Attachment
    stale: bool  # a newer report exists (datetime_freshness) or not (rag_new_document)
    latest_period: str  # the period whose figure a correct answer gives
    latest_growth_pct: float
    latest_doc: str | None = None  # corpus id of the latest report (None: the attachment)
    corpus: str = CORPUS_REF


def report_id(company: str, period: str) -> str:
    return f"{company.lower().replace(' ', '-')}-{period.lower().replace(' ', '-')}"


def report_text(company: str, period: str, published: date, growth: float) -> str:
    return (
        f"{company} earnings report, {period} (published {published.isoformat()}).\n"
        f"Revenue grew {growth:.1f}% year over year in {period}.\n"
        f"Operating margin was steady; guidance for the next quarter is unchanged."
    )


def write_corpus(path: Path | None = None) -> Path:
    """(Re)write the reports corpus: one report per company and quarter of 2025."""
    rng = np.random.default_rng(CORPUS_SEED)
    lines = []
    for company in COMPANIES:
        for period, published in QUARTERS:
            growth = round(float(rng.uniform(-4.0, 18.0)), 1)
            doc = {
                "id": report_id(company, period),
                "title": f"{company} {period} earnings report",
                "date": published.isoformat(),
                "version": period,
                "text": report_text(company, period, published, growth),
            }
            lines.append(json.dumps(doc, sort_keys=True))
    lines.append(
        json.dumps(
            {
                "id": "reading-earnings-reports",
                "title": "How to read an earnings report",
                "date": "2024-11-02",
                "text": "Check the period and the publication date first: a report is only "
                "the latest until the next quarter's report is published.",
            },
            sort_keys=True,
        )
    )
    target = path or Path(__file__).resolve().parent / DATA / "corpus" / "reports.jsonl"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target


@cache
def corpus_growth() -> dict[str, float]:
    """Report id → its revenue growth, read from the packaged corpus."""
    text = resources.files("scenarios").joinpath(DATA, "corpus", "reports.jsonl").read_text()
    found = {}
    for line in text.splitlines():
        doc = json.loads(line)
        if doc.get("version"):
            found[doc["id"]] = float(doc["text"].split("Revenue grew ")[1].split("%")[0])
    return found


def expand(
    case: StaleReportScenario, rng: np.random.Generator, n: int, *, split: str
) -> list[StaleReportScenario]:
    return [_variant(case, rng, f"{case.id}.{split}-{i:03d}", split) for i in range(n)]


def _variant(
    case: StaleReportScenario, rng: np.random.Generator, scenario_id: str, split: str
) -> StaleReportScenario:
    company = COMPANIES[int(rng.integers(len(COMPANIES)))]
    first, span = TODAY_RANGE
    today = first + timedelta(days=int(rng.integers(span)))
    now = datetime(today.year, today.month, today.day, int(rng.integers(8, 19)), 0)
    ask = ASKS[int(rng.integers(len(ASKS)))].format(company=company)
    return build(scenario_id, case.stale, company, now, ask, rng, split)


def build(
    scenario_id: str,
    stale: bool,
    company: str,
    now: datetime,
    ask: str,
    rng: np.random.Generator,
    split: str | None,
) -> StaleReportScenario:
    """One scenario: a stale attachment (an older corpus quarter) or a brand-new one."""
    growth = corpus_growth()
    latest_period, _ = QUARTERS[-1]
    if stale:
        period, published = QUARTERS[int(rng.integers(len(QUARTERS) - 1))]
        attached = growth[report_id(company, period)]
    else:
        period = NEW_PERIOD
        published = now.date() - timedelta(days=int(rng.integers(1, 10)))
        attached = round(float(rng.uniform(-4.0, 18.0)), 1)
    attachment = Attachment(
        title=f"{company} {period} earnings report",
        period=period,
        published=published,
        growth_pct=attached,
    )
    body = report_text(company, period, published, attached)
    opening = f"{ask}\n\n[attachment: {attachment.title}]\n{body}\n[end of attachment]"
    return StaleReportScenario(
        id=scenario_id,
        slices=["datetime_freshness" if stale else "rag_new_document"],
        split=split,
        now=now,
        company=company,
        opening=opening,
        attachment=attachment,
        stale=stale,
        latest_period=latest_period if stale else period,
        latest_growth_pct=growth[report_id(company, latest_period)] if stale else attached,
        latest_doc=report_id(company, latest_period) if stale else None,
    )


SETS = FrozenSplits(
    ENV,
    StaleReportScenario,
    expand,
    train=(TRAIN_SEED, TRAIN_PER_CASE),
    eval=(EVAL_SEED, EVAL_PER_CASE),
)
generate, freeze_eval, load_split = SETS.generate, SETS.freeze_eval, SETS.load_split


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=f"{ENV} corpus and scenario sets")
    parser.add_argument("--corpus", action="store_true", help="rewrite corpus/reports.jsonl")
    parser.add_argument("--freeze", action="store_true", help="rewrite eval.jsonl")
    args = parser.parse_args(argv)
    if args.corpus:
        print(f"wrote {write_corpus()}")
        corpus_growth.cache_clear()
    if args.freeze:
        print(f"wrote {freeze_eval()}")
    for split in SPLITS:
        print(f"{split}: {len(load_split(split))} scenarios")


if __name__ == "__main__":
    main()
