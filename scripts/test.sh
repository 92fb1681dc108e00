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
  # What the suite needs, installed once (torch's wheel is large; an existing one is kept): a
  # current pip (in-tree builds, so maturin sees the workspace above python/), maturin itself
  # (later runs build without reaching PyPI), torch, numpy, pytest, and safetensors for the
  # import example's files.
  if ! "$venv/bin/python" -c 'import torch, numpy, pytest, safetensors, maturin' 2>/dev/null; then
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet torch numpy pytest safetensors 'maturin>=1.5,<2'
  fi
  # --no-deps: numpy is there; --no-build-isolation: the venv's maturin builds (found on PATH),
  # sharing cargo's target directory with the Rust suite.
  PATH="$(cd "$venv/bin" && pwd):$PATH" "$venv/bin/python" -m pip install --quiet --no-deps --no-build-isolation --force-reinstall \
    ./python
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
