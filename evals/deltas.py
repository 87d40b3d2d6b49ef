"""Paired candidate − baseline deltas over the same frozen scenarios.

`compute_deltas(candidate, baseline)` returns a `DeltaTable` (slice → metric key →
`Delta`) for the metrics where pairing makes sense: success, rewards and their
components, per-episode rates and checks. Twins pair by (env_id, scenario_id, epoch), so
scenario difficulty cancels; pass/fail metrics use the exact McNemar test, continuous ones
the Wilcoxon signed-rank test (see `evals.stats.paired_deltas`), and runs with several
epochs are compared per scenario. Reads the same columnar `Episodes` as `compute_metrics`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from core.records import Trajectory
from evals import stats
from evals.metrics import METRICS, RULES_CHECK, DeltaTable, Episodes, check_keys
from evals.stats import Delta, PairingError, StatsConfig


def compute_deltas(
    candidate: Iterable[Trajectory] | Episodes,
    baseline: Iterable[Trajectory] | Episodes,
    *,
    only: Iterable[tuple[str, str]] | None = None,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> DeltaTable:
    """Paired candidate − baseline deltas per slice and metric (see `evals.stats`).

    Episodes pair by (env_id, scenario_id, epoch) and belong to a slice when both twins
    carry its tag; unpaired ones (and twins lost to a policy error) are excluded and
    counted (`Delta.n_unpaired`). `only` names the (slice, metric key) pairs wanted; one
    without a delta gets its reason in `DeltaTable.problems` (`get` raises it). Without
    `only`, every pairable metric of every shared slice is computed. Twins whose
    `scenario_hash` differs, or a key twice in one run, raise `PairingError`: the runs
    did not see the same frozen scenarios.
    """
    cfg = StatsConfig(confidence=confidence, n_resamples=n_resamples, seed=seed)
    cand, base = Episodes.of(candidate), Episodes.of(baseline)
    pairs = _pairs(cand, base)
    wanted: dict[str, list[str]] = {}
    for slice_name, key in only if only is not None else _pairable(cand, base):
        wanted.setdefault(slice_name, []).append(key)
    table = DeltaTable(confidence=confidence, slices={})
    for slice_name, keys in wanted.items():
        deltas, problems = _slice_deltas(cand, base, pairs, slice_name, keys, cfg)
        if deltas:
            table.slices[slice_name] = deltas
        if problems:
            table.problems[slice_name] = problems
    return table


def _pairs(cand: Episodes, base: Episodes) -> tuple[np.ndarray, np.ndarray]:
    """Indices (candidate, baseline) of twin episodes, neither lost to a policy error."""
    index: dict[str, dict[tuple[str, str, int], int]] = {}
    for run, eps in (("baseline", base), ("candidate", cand)):
        index[run] = {}
        for i, key in enumerate(eps.keys):
            if index[run].setdefault(key, i) != i:
                raise PairingError(f"{run} run has episode {key} twice: cannot pair")
    ci, bi, changed = [], [], []
    errored_c, errored_b = cand.cols["errored"], base.cols["errored"]
    for i, key in enumerate(cand.keys):
        j = index["baseline"].get(key)
        if j is not None and cand.hashes[i] != base.hashes[j]:
            changed.append(key)
        elif j is not None and not (errored_c[i] or errored_b[j]):
            ci.append(i)
            bi.append(j)
    if changed:
        raise PairingError(
            f"{len(changed)} scenarios differ between candidate and baseline (scenario_hash), "
            f"e.g. {changed[0]}: the runs did not use the same frozen scenarios"
        )
    return np.asarray(ci, dtype=int), np.asarray(bi, dtype=int)


def _pairable(cand: Episodes, base: Episodes) -> list[tuple[str, str]]:
    keys = ["success@1", "reward", "escalation_rate"]
    if RULES_CHECK in cand.checks and RULES_CHECK in base.checks:
        keys.append("rule_violation_rate")
    keys += [f"reward.{c}" for c in sorted(cand.components.keys() & base.components.keys())]
    for check in sorted(cand.checks.keys() & base.checks.keys()):
        keys += check_keys(check)
    return [(s, k) for s in sorted(cand.slices.keys() & base.slices.keys()) for k in keys]


def _values(eps: Episodes, key: str) -> tuple[str, np.ndarray, np.ndarray] | None:
    """(source, per-episode values, present mask) of a pairable metric key."""
    if key == "rule_violation_rate":
        if RULES_CHECK not in eps.checks:
            return None
        return key, eps.cols["violated"].astype(float), eps.checks[RULES_CHECK][1]
    if key in ("success@1", "reward", "escalation_rate"):
        column = {"success@1": "success", "escalation_rate": "escalated"}.get(key, key)
        return key, eps.cols[column].astype(float), np.ones(len(eps.keys), dtype=bool)
    if key.startswith("reward.") and key[len("reward.") :] in eps.components:
        return (key, *eps.components[key[len("reward.") :]])
    for check, (values, present) in eps.checks.items():
        if key in check_keys(check):
            return f"check:{check}", values, present
    return None


def _slice_deltas(
    cand: Episodes,
    base: Episodes,
    pairs: tuple[np.ndarray, np.ndarray],
    slice_name: str,
    keys: list[str],
    cfg: StatsConfig,
) -> tuple[dict[str, Delta], dict[str, str]]:
    """Deltas of one slice; keys pairing the same episodes share one bootstrap call."""
    if slice_name not in cand.slices or slice_name not in base.slices:
        have = ", ".join(sorted(cand.slices.keys() & base.slices.keys()))
        why = f"slice '{slice_name}' is not in both runs; shared slices: {have}"
        return {}, {key: f"delta.{key}: {why}" for key in keys}
    in_cand, in_base = cand.member(slice_name), base.member(slice_name)
    ci, bi = pairs
    problems: dict[str, str] = {}
    jobs: dict[str, _Job] = {}
    for key in keys:
        label = f"delta.{key} on slice '{slice_name}'"
        spec = METRICS.lookup(key.split("[")[0])
        found_c, found_b = _values(cand, key), _values(base, key)
        if spec is None or not spec.delta:
            problems[key] = f"{label}: this metric has no paired delta"
        elif found_c is None or found_b is None:
            problems[key] = f"{label}: absent in the {'baseline' if found_c else 'candidate'} run"
        elif found_c[0] in jobs:  # another key of a check already queued
            jobs[found_c[0]].keys.append(key)
        else:
            (source, cv, cp), (_, bv, bp) = found_c, found_b
            keep = (in_cand & cp)[ci] & (in_base & bp)[bi]
            unpaired = int((in_cand & cp).sum() + (in_base & bp).sum() - 2 * keep.sum())
            if not keep.any():
                problems[key] = (
                    f"{label}: no paired episodes (no (env_id, scenario_id, epoch) in both runs "
                    f"with this metric; {unpaired} unpaired episodes excluded)"
                )
                continue
            binary = spec.name not in ("reward", "reward.<component>")
            jobs[source] = _Job(cv[ci[keep]], bv[bi[keep]], binary, keep, unpaired, [key], label)
    groups: dict[bytes, list[_Job]] = {}
    for job in jobs.values():
        groups.setdefault(job.keep.tobytes(), []).append(job)
    deltas: dict[str, Delta] = {}
    for group in groups.values():
        results = stats.paired_deltas(
            np.stack([job.cand for job in group]),
            np.stack([job.base for job in group]),
            [job.binary for job in group],
            [job.label for job in group],
            clusters=cand.scenario[ci[group[0].keep]],
            n_unpaired=[job.unpaired for job in group],
            cfg=cfg,
        )
        for job, delta in zip(group, results, strict=True):
            deltas.update({key: delta for key in job.keys})
    return deltas, problems


@dataclass
class _Job:
    """One paired comparison: aligned values, the pairs kept, the keys it answers."""

    cand: np.ndarray
    base: np.ndarray
    binary: bool
    keep: np.ndarray  # over all pairs
    unpaired: int
    keys: list[str]
    label: str
