"""The scenario contract: what happens in one episode, as validated data.

A `Scenario` carries its id, slice tags, the frozen "now", the fault plan, a turn
limit and optionally the subset of the env's tools offered in its episode; each env
subclasses it with its own typed fields (initial database, user messages, expected end
state, ...). Scenarios are frozen; `content_hash()` identifies a
scenario by content (not id), which is how train/eval disjointness is checked.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from datetime import datetime
from functools import cached_property

from pydantic import BaseModel, ConfigDict, Field

from core.records import Fault


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    env: str = Field(min_length=1)
    slices: list[str] = Field(default_factory=list)
    split: str | None = None
    now: datetime
    faults: list[Fault] = Field(default_factory=list)
    max_turns: int | None = Field(default=None, ge=1)
    # The tools offered in this episode (names of the env's tools); None: all of them.
    # (left out of dumps when None, so files and content hashes without it stay as they were)
    tools: list[str] | None = Field(default=None, exclude_if=lambda value: value is None)

    @cached_property
    def content_hash(self) -> str:
        """sha256 of the scenario's content, ignoring its id and split."""
        data = self.model_dump(mode="json", exclude={"id", "split"})
        blob = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def unknown_slices(scenario: Scenario, known: Collection[str]) -> list[str]:
    """The scenario's slice tags that are not in `known` (an env's declared slices)."""
    return [name for name in scenario.slices if name not in known]


def scenario_set_hash(scenarios: list[Scenario]) -> str:
    """One hash for a frozen scenario set (order-independent)."""
    joined = ",".join(sorted(s.content_hash for s in scenarios))
    return hashlib.sha256(joined.encode()).hexdigest()[:16]
