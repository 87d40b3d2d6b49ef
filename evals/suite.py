"""A suite: the declared envs and splits every model of a leaderboard plays.

Contract
--------
* `load_suite(name, declared)` returns a suite's `SuiteEntry` list (`{env, split}`):
  one declared under `name`; `default`, every registered env on its `eval` split; or a
  registered env's name, that env on its `eval` split.
  An unknown or empty suite is a `ConfigError` naming it.
* `suite_keys(entries, epochs, limit)` lists the (env, scenario_id, epoch) episodes of the
  suite, planned by `evals.run` (first `limit` scenarios per split, file order).
* `suite_manifest(entries)` is what every ranked run must agree on (`SUITE_FIELDS`:
  scenario-set hashes, reward spec, tool versions, per env), built as `evals.run` builds
  a run manifest; `suite_mismatch(found, expected)` names the first difference.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from configs import ConfigError
from evals import run

SUITE_FIELDS = ("scenario_sets", "reward_spec", "tools")
Key = tuple[str, str, int]


class SuiteEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    env: str
    split: str = "eval"


def load_suite(name: str, declared: dict[str, list[SuiteEntry]]) -> list[SuiteEntry]:
    """The suite's entries: declared by name, `default` (every registered env), an env's name."""
    import envs

    if name in declared:
        entries = declared[name]
    elif name == "default":
        entries = [SuiteEntry(env=name) for name in envs.ENVS.names()]
    elif name in envs.ENVS.names():  # an env's own name: its frozen eval split
        entries = [SuiteEntry(env=name)]
    else:
        known = ", ".join(["default", *declared])
        raise ConfigError(
            f"suite: unknown suite '{name}'; declared: {known}; "
            f"or an env's name (its eval split): {', '.join(envs.ENVS.names())}"
        )
    if not entries:
        raise ConfigError(f"suites.{name}: the suite lists no env")
    return entries


def split_groups(entries: Sequence[SuiteEntry]) -> dict[str, list[str]]:
    """split -> envs: one eval run per split."""
    groups: dict[str, list[str]] = {}
    for entry in entries:
        groups.setdefault(entry.split, []).append(entry.env)
    return groups


def suite_manifest(entries: Sequence[SuiteEntry]) -> dict[str, Any]:
    """What every ranked run must agree on: scenario sets, reward spec and tool versions."""
    expected: dict[str, Any] = {name: {} for name in SUITE_FIELDS}
    for split, envs in split_groups(entries).items():
        argv = [f"env=[{','.join(envs)}]", f"split={split}", "policy=expert"]
        plans = run.plan_jobs(run.load_config(argv))
        built = run.build_manifest(run.load_config(argv), plans, {})
        for name in SUITE_FIELDS:
            expected[name].update(getattr(built, name))
    return expected


def suite_keys(entries: Sequence[SuiteEntry], epochs: int, limit: int | None) -> list[Key]:
    """The (env, scenario, epoch) keys every model must play."""
    keys: list[Key] = []
    for split, envs in split_groups(entries).items():
        argv = [f"env=[{','.join(envs)}]", f"split={split}", "policy=expert"]
        argv += [f"epochs={epochs}", *([f"limit={limit}"] if limit else [])]
        for plan in run.plan_jobs(run.load_config(argv)):
            keys.extend(plan.key(job) for job in plan.jobs)
    return keys


def suite_mismatch(found: dict[str, Any], expected: dict[str, Any]) -> str | None:
    """The first suite field in which a run's manifest differs from the suite's."""
    for name in SUITE_FIELDS:
        for env, value in expected[name].items():
            if found.get(name, {}).get(env) != value:
                got = found.get(name, {}).get(env)
                return f"{name}.{env}: run has {got!r}, the suite has {value!r}"
    return None
