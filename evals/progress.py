"""A progress bar over finished episodes, with the live success rate in its postfix.

`EpisodeProgress(total, done=..., successes=...)` starts at the episodes a resumed run
already has; `update(trajectory)` counts one finished episode. It draws a tqdm bar on
stderr when stderr is a terminal and stays silent otherwise (tests, CI logs), so it never
changes what a run writes.
"""

from __future__ import annotations

import sys
from types import TracebackType

from core.records import Trajectory


class EpisodeProgress:
    def __init__(self, total: int, *, done: int = 0, successes: int = 0, desc: str = "eval"):
        from tqdm import tqdm

        self.finished = done
        self.successes = successes
        self.errors = 0
        self._bar = tqdm(
            total=total,
            initial=done,
            desc=desc,
            unit="ep",
            file=sys.stderr,
            disable=not sys.stderr.isatty(),
            dynamic_ncols=True,
        )
        self._refresh()

    def update(self, trajectory: Trajectory) -> None:
        self.finished += 1
        self.successes += int(trajectory.success)
        self.errors += int(trajectory.lost_to_infrastructure)
        self._bar.update(1)
        self._refresh()

    @property
    def success_rate(self) -> float:
        return self.successes / self.finished if self.finished else 0.0

    def _refresh(self) -> None:
        postfix = {"success": f"{self.success_rate:.3f}"}
        if self.errors:
            postfix["policy_errors"] = str(self.errors)
        self._bar.set_postfix(postfix, refresh=False)

    def close(self) -> None:
        self._bar.close()

    def __enter__(self) -> EpisodeProgress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
