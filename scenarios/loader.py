"""Load scenario files (YAML or JSONL) into validated scenario models.

A YAML file holds a list of scenarios (or `{scenarios: [...]}`); a JSONL file one per line.
Anything wrong is a `ScenarioFileError` naming the file, the scenario (id or position)
and the field, e.g. ``refunds.yaml: scenario 'happy-1' (#1): db.orders.7.amount: Input
should be greater than 0``; errors found while reading name the line (``cases.yaml:12:9:
invalid date '2026-02-30': day is out of range for month``, ``eval.jsonl:3: not UTF-8``).
A file with no scenarios is an error. With `known_slices`, a slice tag outside it is an
error too (the env declares the slices its scenarios may carry).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import ValidationError

from scenarios.schema import Scenario, unknown_slices

S = TypeVar("S", bound=Scenario)


class ScenarioFileError(ValueError):
    pass


class _Loader(yaml.SafeLoader):
    """SafeLoader whose bad timestamps are YAML errors with a position, not a bare ValueError."""

    def construct_yaml_timestamp(self, node: yaml.Node) -> Any:  # type: ignore[override]
        try:
            return super().construct_yaml_timestamp(node)  # type: ignore[arg-type]
        except ValueError as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"invalid date '{node.value}': {exc}", node.start_mark
            ) from None


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_timestamp)


def load_scenarios(
    path: Path, model: type[S], *, known_slices: Collection[str] | None = None
) -> list[S]:
    path = Path(path)
    raw = _read(path)
    if not raw:
        raise ScenarioFileError(f"{path}: no scenarios in the file (an empty list)")
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
        unknown = unknown_slices(scenario, known_slices) if known_slices is not None else []
        if unknown:
            raise ScenarioFileError(
                f"{path}: {label}: slices: unknown slice {', '.join(map(repr, unknown))}; "
                f"known: {', '.join(sorted(known_slices or ())) or 'none'}"
            )
        seen[scenario.id] = position
        scenarios.append(scenario)
    return scenarios


def load_many(
    paths: Iterable[Path], model: type[S], *, known_slices: Collection[str] | None = None
) -> list[S]:
    return [
        s for path in sorted(paths) for s in load_scenarios(path, model, known_slices=known_slices)
    ]


def _read(path: Path) -> list[Any]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ScenarioFileError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ScenarioFileError(
            f"{path}:{line}: not UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})"
        ) from None
    if path.suffix == ".jsonl":
        items = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    items.append(json.loads(line))
                except ValueError as exc:
                    raise ScenarioFileError(f"{path}:{number}: not JSON: {exc}") from None
                except RecursionError:
                    raise ScenarioFileError(
                        f"{path}:{number}: not JSON: nested too deeply"
                    ) from None
        return items
    try:
        data = yaml.load(text, Loader=_Loader)  # a SafeLoader: no arbitrary objects
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ScenarioFileError(f"{where}: not valid YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise ScenarioFileError(f"{path}: not valid YAML: {exc}") from None
    except RecursionError:
        raise ScenarioFileError(f"{path}: not valid YAML: nested too deeply") from None
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
