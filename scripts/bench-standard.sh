#!/usr/bin/env bash
# Runs the bench CLI over every standard shape (LSTM and GRU at B=32 T=50 I=128 H=256,
# B=1 T=100 I=128 H=256 and B=64 T=100 I=512 H=512; attention at B=32 Tq=Tk=64 D=256; GEMM
# 1024³) and prints one JSON line each: the figures docs/BENCHMARKS.md records. Extra arguments
# (e.g. --runs 3) go to each call but the B=64 T=100 I=512 H=512 ones, which take RUNS_LARGE.
#   BENCH=path   a bench binary built elsewhere (e.g. from an older commit) instead of this tree's
#   RUNS_LARGE   runs for B=64 T=100 I=512 H=512 (default 3; a call takes tens of seconds on lavapipe)
#   ONLY=rnn|stack|attention|gemm   one family only (stack: two-layer LSTMs, layer after layer
#                                   and as a wavefront)
# Environment such as WGRNN_F16_WEIGHTS=1 passes through to the bench.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${BENCH:-}" ]; then
  cargo build --release --example bench >&2
  BENCH=target/release/examples/bench
fi
large=${RUNS_LARGE:-3}
only=${ONLY:-all}
if [ "$only" = all ] || [ "$only" = gemm ]; then
  "$BENCH" gemm --m 1024 --k 1024 --n 1024 "$@"
fi
if [ "$only" = all ] || [ "$only" = rnn ]; then
  for cell in lstm gru; do
    for mode in "" --training; do
      "$BENCH" $cell --batch 32 --seq 50 --input 128 --hidden 256 $mode "$@"
      "$BENCH" $cell --batch 1 --seq 100 --input 128 --hidden 256 $mode "$@"
      "$BENCH" $cell --batch 64 --seq 100 --input 512 --hidden 512 $mode --runs "$large" --warmup 1
    done
  done
fi
if [ "$only" = all ] || [ "$only" = stack ]; then
  for wave in 0 1; do
    for mode in "" --training; do
      WGRNN_WAVEFRONT=$wave "$BENCH" lstm --layers 2 --batch 32 --seq 50 --input 128 --hidden 256 $mode "$@"
      WGRNN_WAVEFRONT=$wave "$BENCH" lstm --layers 2 --batch 64 --seq 100 --input 512 --hidden 512 $mode --runs "$large" --warmup 1
    done
  done
fi
if [ "$only" = all ] || [ "$only" = attention ]; then
  for score in dot scaleddot general additive; do
    for mode in "" --training; do
      "$BENCH" attention_$score --batch 32 --tq 64 --tk 64 --dim 256 $mode "$@"
    done
  done
fi
