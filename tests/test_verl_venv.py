"""The verl backend's tests, run in verl's own venv from the one test command.

verl 0.9.1 pins transformers below 5.11 while TRL needs newer, so verl lives in
`.venv-verl` (`bash scripts/setup.sh --all`). In `.venv` its tests skip with that reason;
these two tests run them where verl is importable, so `.venv/bin/python -m pytest` covers
the verl agent loop, config mapping, parquet data and (slow) local Ray workers too.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
VERL_PYTHON = Path(os.environ.get("TOOLGYM_VERL_PYTHON", REPO / ".venv-verl" / "bin" / "python"))

pytestmark = pytest.mark.skipif(
    not VERL_PYTHON.is_file(), reason="no .venv-verl: bash scripts/setup.sh --all"
)


def _pytest_in_verl_venv(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [str(VERL_PYTHON), "-m", "pytest", "-o", "addopts=", "-q", "-p", "no:cacheprovider", *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip


def test_verl_agent_loop_and_config_tests_pass_in_the_verl_venv() -> None:
    done = _pytest_in_verl_venv(
        "-m", "not slow", "tests/test_verl_agent_loop.py", "tests/test_verl_config.py"
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and " skipped" not in done.stdout


@pytest.mark.slow
def test_verl_ray_workers_test_passes_in_the_verl_venv() -> None:
    done = _pytest_in_verl_venv("tests/test_verl_ray.py")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and " skipped" not in done.stdout
