"""An incomplete run is never a clean result: counted, marked, and refused by the gate.

A run of 4 expert episodes where 1 was lost to the endpoint: 1 / 4 = 25% > 5%, so it is
incomplete; the rates cover the 3 completed episodes and every table says `3 / 1`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.records import Termination, Trajectory
from evals import gate, run
from evals.metrics import compute_metrics
from evals.report import render_run_report

RULES = "[dev_to_staging]\naggregate.success@1.point >= 0.5\n"


@pytest.fixture(scope="module")
def lossy_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "expert"
    assert run.main(["env=refund_agent", "policy=expert", "limit=4", f"out={out}"]) == 0
    episodes = [Trajectory.from_json(line) for line in (out / "episodes.jsonl").open()]
    episodes[0].termination, episodes[0].success = Termination.POLICY_ERROR, False
    (out / "episodes.jsonl").write_text("".join(t.to_json() + "\n" for t in episodes))
    (out / "rules.rules").write_text(RULES)
    return out


def test_metrics_count_and_mark_the_run(lossy_run):
    episodes = [Trajectory.from_json(line) for line in (lossy_run / "episodes.jsonl").open()]
    table = compute_metrics(episodes)
    status = table.status
    assert (status.episodes, status.completed, status.failed) == (4, 3, 1)
    assert status.infra_failure_rate == 0.25 and status.complete is False
    assert compute_metrics(episodes, max_infra_failure_rate=0.25).status.complete is True
    assert table.get("aggregate", "success@1").n == 3
    report = render_run_report(table)
    assert (
        "**INCOMPLETE RUN**: 3 of 4 episodes completed, 1 failed (infrastructure; 25.0% > 5%)"
        in (report)
    )
    summary = next(line for line in report.splitlines() if line.startswith("| `aggregate`"))
    assert summary.split("|")[2].strip() == "3 / 1"
    assert json.loads(table.model_dump_json())["status"]["complete"] is False


def test_the_gate_refuses_an_incomplete_run_unless_allowed(lossy_run, capsys):
    argv = [f"rules={lossy_run / 'rules.rules'}", f"candidate={lossy_run}"]
    assert gate.main(argv) == 2
    err = capsys.readouterr().err
    assert "incomplete run: 3 of 4 episodes completed, 1 failed" in err
    assert "allow_incomplete=true" in err
    assert gate.main([*argv, "allow_incomplete=true"]) == 0
    out = capsys.readouterr().out
    aggregate = next(line for line in out.splitlines() if line.startswith("Aggregate"))
    assert "—, 3 / 1" in aggregate  # completed/failed: no baseline, candidate 3 done 1 lost
