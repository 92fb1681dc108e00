#!/usr/bin/env bash
# The tests, both suites: the Rust workspace (`cargo test --workspace`), then the Python
# package's pytest suite (python/tests) against torch itself.
#
# The Python suite runs in a virtual environment made on first use ($WGRNN_VENV, default .venv)
# with torch (PyPI's default wheel), numpy and pytest; the package is rebuilt from ./python by
# `pip install` on every run, so the tests see the working tree.
#   scripts/test.sh               both suites
#   scripts/test.sh --rust ARGS   `cargo test --workspace ARGS` alone
#   scripts/test.sh --python ARGS pytest alone (ARGS go to pytest)
# Both need an adapter (see the README); a machine without one fails rather than skipping.
set -euo pipefail
cd "$(dirname "$0")/.."

suite=both
case "${1:-}" in
  --rust) suite=rust; shift ;;
  --python) suite=python; shift ;;
esac

rust() {
  cargo test --workspace "$@"
}

python_suite() {
  local venv=${WGRNN_VENV:-.venv} py=${PYTHON:-python3}
  if [[ ! -x $venv/bin/python ]]; then
    "$py" -m venv "$venv"
  fi
  # torch only when missing: its wheel is large, and an existing one is kept between runs.
  if ! "$venv/bin/python" -c 'import torch, numpy, pytest' 2>/dev/null; then
    "$venv/bin/python" -m pip install --quiet torch numpy pytest
  fi
  # --no-deps: numpy is there; the build (maturin, from PyPI) shares cargo's target directory.
  "$venv/bin/python" -m pip install --quiet --no-deps --force-reinstall ./python
  # The installed package is what the tests import (python/ itself is never on sys.path).
  "$venv/bin/python" -m pytest python/tests -p no:cacheprovider "$@"
}

case $suite in
  rust) rust "$@" ;;
  python) python_suite "$@" ;;
  both)
    rust "$@"
    python_suite
    ;;
esac
