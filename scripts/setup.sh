#!/usr/bin/env bash
# Set up a fresh clone: a virtualenv in .venv with the CPU build of torch and everything the
# trainers, evals and tests need (versions pinned in constraints.txt). Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# torch first, pinned: 2.13.0 is the CPU build this machine type has on disk (no CUDA download).
.venv/bin/python -m pip install -q torch==2.13.0
.venv/bin/python -m pip install -q -c constraints.txt -e ".[dev]"
echo "toolgym is set up in .venv ($(.venv/bin/python -c 'import torch, trl; print("torch", torch.__version__, "/ trl", trl.__version__)'))"
