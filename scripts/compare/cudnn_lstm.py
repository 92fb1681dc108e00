#!/usr/bin/env python3
"""PyTorch's cuDNN LSTM at one shape, timed like wgrnn's bench CLI: one JSON line.

The comparison with cuDNN on a real GPU: fp32, TF32 off, sequence-major
input, median of N runs after warm-up, each run ending with a device sync. Forward only
("inference", under no_grad) or forward + backward ("training", gradients of sum(y) with
respect to the input and every parameter). Not part of the build or the tests; run it on a
machine with PyTorch and CUDA, e.g. from scripts/gpu-run.sh.

    python3 scripts/compare/cudnn_lstm.py --batch 64 --seq 100 --input 512 --hidden 512 [--training]
"""
import argparse
import json
import statistics
import time

import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seq", type=int, default=100)
    ap.add_argument("--input", type=int, default=512)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--cell", choices=["lstm", "gru"], default="lstm")
    ap.add_argument("--training", action="store_true")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    a = ap.parse_args()

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = False
    dev = torch.device("cuda")
    layer = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[a.cell]
    rnn = layer(a.input, a.hidden, num_layers=a.layers).to(dev).float()
    x = torch.randn(a.seq, a.batch, a.input, device=dev, requires_grad=a.training)

    def run():
        if a.training:
            rnn.zero_grad(set_to_none=True)
            x.grad = None
            y, _ = rnn(x)
            y.sum().backward()
        else:
            with torch.no_grad():
                rnn(x)
        torch.cuda.synchronize()

    for _ in range(a.warmup):
        run()
    times = []
    for _ in range(a.runs):
        t0 = time.perf_counter()
        run()
        times.append((time.perf_counter() - t0) * 1e3)
    ms = statistics.median(times)
    # The bench CLI's count: 2·(multiply-adds) of the input and recurrent products, ×3 with
    # backward.
    gates = {"lstm": 4, "gru": 3}[a.cell]
    flops = 0.0
    for l in range(a.layers):
        i = a.input if l == 0 else a.hidden
        flops += 2.0 * a.seq * a.batch * gates * a.hidden * (i + a.hidden)
    if a.training:
        flops *= 3
    print(json.dumps({
        "adapter": torch.cuda.get_device_name(0),
        "backend": f"CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}",
        "op": a.cell,
        "shape": {"batch": a.batch, "seq": a.seq, "input": a.input, "hidden": a.hidden,
                  "layers": a.layers, "bidirectional": False},
        "mode": "training" if a.training else "inference",
        "tf32": False,
        "ms": round(ms, 3),
        "gflops": round(flops / ms / 1e6, 3),
    }))


if __name__ == "__main__":
    main()
