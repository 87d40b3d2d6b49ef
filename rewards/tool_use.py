"""Reward components any tool-using env can share.

* `tool_execution`: the seed's graduated table per call (error -2, runs but wrong -1,
  correct +1), averaged over the episode's calls; injected faults are left out; 0 with
  no counted call.
* `tool_format`: 2 × (share of schema-valid calls) − 1; 0 with no tool calls.
"""

from __future__ import annotations

from typing import Any

from core.records import Execution, Trajectory

EXECUTION_SCORE = {Execution.OK: 1.0, Execution.WRONG: -1.0, Execution.ERROR: -2.0}


def tool_execution(trajectory: Trajectory, scenario: Any) -> float:
    scores = [
        EXECUTION_SCORE[c.execution]
        for c in trajectory.tool_calls
        if c.execution != Execution.FAULT
    ]
    return sum(scores) / len(scores) if scores else 0.0


def tool_format(trajectory: Trajectory, scenario: Any) -> float:
    calls = trajectory.tool_calls
    if not calls:
        return 0.0
    return 2.0 * sum(c.valid for c in calls) / len(calls) - 1.0
