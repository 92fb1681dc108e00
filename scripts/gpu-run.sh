#!/usr/bin/env bash
# What a GPU machine runs for docs/BENCHMARKS.md (see "Measuring on a GPU machine" there):
# wgrnn's standard shapes with a bench binary built elsewhere, then PyTorch's cuDNN LSTM and
# GRU at the shapes the targets name. Writes JSON lines to $OUT/gpu.jsonl (or ./gpu.jsonl).
#   BENCH=path      the bench CLI to run (default .gpu/bench, copied with the checkout)
#   ONLY=...        passed to scripts/bench-standard.sh (default: every family, stacks included)
#   CUDNN=0         skip the PyTorch runs
#   PYBENCH=0       skip python/bench.py (wgrnn.torch against torch.nn on CUDA, in one process;
#                   needs the wheel built elsewhere in .gpu/, and torch and numpy installed)
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-.}/gpu.jsonl
: > "$out"
# A bare machine may lack the Vulkan loader: unpack the packages copied into .gl/ where none is
# installed.
if ! ldconfig -p | grep -q libvulkan && ls .gl/*.deb >/dev/null 2>&1; then
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
export BENCH=${BENCH:-.gpu/bench}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | sed 's/^/# /' >> "$out"
BENCH=$BENCH ONLY=${ONLY:-all} bash scripts/bench-standard.sh >> "$out" 2>&1
if [ "${CUDNN:-1}" != 0 ]; then
  for cell in lstm gru; do
    for mode in "" --training; do
      python3 scripts/compare/cudnn_lstm.py --cell $cell --batch 64 --seq 100 --input 512 --hidden 512 $mode >> "$out" 2>&1
      python3 scripts/compare/cudnn_lstm.py --cell $cell --batch 32 --seq 50 --input 128 --hidden 256 $mode >> "$out" 2>&1
      python3 scripts/compare/cudnn_lstm.py --cell $cell --batch 1 --seq 100 --input 128 --hidden 256 $mode >> "$out" 2>&1
    done
    python3 scripts/compare/cudnn_lstm.py --cell $cell --layers 2 --batch 64 --seq 100 --input 512 --hidden 512 --training >> "$out" 2>&1
  done
fi
if [ "${PYBENCH:-1}" != 0 ]; then
  wheel=$(ls .gpu/wgrnn-*.whl 2>/dev/null | head -n 1)
  if [ -n "$wheel" ]; then
    # Unpacked beside the machine's own torch (CUDA), without a venv (a bare image may lack
    # ensurepip) and without reaching an index.
    python3 -m pip install --quiet --no-deps --no-index --target .gpu/py "$wheel" >> "$out" 2>&1 &&
      PYTHONPATH=.gpu/py python3 python/bench.py >> "$out" 2>&1 ||
      echo "# python/bench.py failed (see above)" >> "$out"
  else
    echo "# python/bench.py skipped: no .gpu/wgrnn-*.whl" >> "$out"
  fi
fi
cat "$out"
