#!/usr/bin/env bash
# Set up a fresh clone: a virtualenv in .venv with the CPU build of torch and everything the
# trainers, evals and tests need (versions pinned in constraints.txt). Safe to re-run.
#
#   bash scripts/setup.sh         # .venv: toolgym + train + dev extras (the main job)
#   bash scripts/setup.sh --all   # also .venv-verl (verl pins an older transformers than
#                                 # TRL, so it lives in its own venv) and, as root on
#                                 # Debian, headless chromium for the leaderboard page test
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
ALL=0
for arg in "$@"; do
  case "$arg" in
    --all) ALL=1 ;;
    *) echo "usage: bash scripts/setup.sh [--all]" >&2; exit 2 ;;
  esac
done
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# torch first, pinned: 2.13.0 is the CPU build this machine type has on disk (no CUDA download).
.venv/bin/python -m pip install -q torch==2.13.0
.venv/bin/python -m pip install -q -c constraints.txt -e ".[dev]"
echo "toolgym is set up in .venv ($(.venv/bin/python -c 'import torch, trl; print("torch", torch.__version__, "/ trl", trl.__version__)'))"

if [ "$ALL" = 1 ]; then
  if [ ! -x .venv-verl/bin/python ]; then
    "$PYTHON" -m venv .venv-verl
  fi
  .venv-verl/bin/python -m pip install -q --upgrade pip
  .venv-verl/bin/python -m pip install -q torch==2.13.0
  .venv-verl/bin/python -m pip install -q -e ".[verl]" pytest hypothesis
  echo "verl is set up in .venv-verl ($(.venv-verl/bin/python -c 'import verl; print("verl", verl.__version__)'))"
  if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    # Debian's headless browser and its driver, for tests/test_leaderboard.py's page test
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      chromium chromium-driver >/dev/null
  fi
  command -v chromium >/dev/null 2>&1 && echo "chromium: $(chromium --version 2>/dev/null)"
fi
