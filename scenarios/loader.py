"""Load scenario files (YAML or JSONL) into validated scenario models.

A YAML file holds a list of scenarios (or `{scenarios: [...]}`); a JSONL file one per line.
Anything wrong is a `ScenarioFileError` naming the file, the scenario (id or position)
and the field, e.g. ``refunds.yaml: scenario 'happy-1' (#1): db.orders.7.amount: Input
should be greater than 0``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import ValidationError

from scenarios.schema import Scenario

S = TypeVar("S", bound=Scenario)


class ScenarioFileError(ValueError):
    pass


def load_scenarios(path: Path, model: type[S]) -> list[S]:
    path = Path(path)
    raw = _read(path)
    scenarios: list[S] = []
    seen: dict[str, int] = {}
    for position, item in enumerate(raw, start=1):
        label = _label(item, position)
        if not isinstance(item, dict):
            raise ScenarioFileError(
                f"{path}: {label}: expected a mapping, got {type(item).__name__}"
            )
        try:
            scenario = model.model_validate(item)
        except ValidationError as exc:
            raise ScenarioFileError(f"{path}: {label}: {_first_errors(exc)}") from None
        if scenario.id in seen:
            raise ScenarioFileError(
                f"{path}: {label}: duplicate id (also scenario #{seen[scenario.id]})"
            )
        seen[scenario.id] = position
        scenarios.append(scenario)
    return scenarios


def load_many(paths: Iterable[Path], model: type[S]) -> list[S]:
    return [s for path in sorted(paths) for s in load_scenarios(path, model)]


def _read(path: Path) -> list[Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioFileError(f"{path}: cannot read: {exc.strerror}") from None
    if path.suffix == ".jsonl":
        items = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    items.append(json.loads(line))
                except ValueError as exc:
                    raise ScenarioFileError(f"{path}:{number}: not JSON: {exc}") from None
        return items
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ScenarioFileError(f"{path}: not valid YAML: {exc}") from None
    if isinstance(data, dict) and "scenarios" in data:
        data = data["scenarios"]
    if not isinstance(data, list):
        raise ScenarioFileError(f"{path}: expected a list of scenarios at the top level")
    return data


def _label(item: Any, position: int) -> str:
    if isinstance(item, dict) and isinstance(item.get("id"), str):
        return f"scenario '{item['id']}' (#{position})"
    return f"scenario #{position}"


def _first_errors(exc: ValidationError, limit: int = 3) -> str:
    parts = []
    for error in exc.errors(include_url=False)[:limit]:
        field = ".".join(str(p) for p in error["loc"]) or "(root)"
        parts.append(f"{field}: {error['msg']}")
    more = exc.error_count() - limit
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")
