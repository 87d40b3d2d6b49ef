"""Named scenario sets of refund_agent: `train` and the frozen `eval`."""

from __future__ import annotations

from pathlib import Path

from scenarios.loader import load_scenarios
from scenarios.refund import RefundScenario

DATA_DIR = Path(__file__).resolve().parent / "data" / "refund_agent"


def load_split(split: str, *, scenario_file: str | Path | None = None) -> list[RefundScenario]:
    if scenario_file is not None:
        return load_scenarios(Path(scenario_file), RefundScenario)
    return load_scenarios(DATA_DIR / "cases.yaml", RefundScenario)
