"""wgrnn.torch.LSTM / GRU against torch.nn.LSTM / GRU in one process: one JSON line per cell,
shape, layer and mode.

    python python/bench.py                      # the standard shapes, both cells, both modes
    python python/bench.py --shape 32,50,128,256 --cell lstm --runs 20

Shapes are B,T,I,H (sequence-major input [T, B, I], one layer). "forward" is an eval call under
no_grad; "forward+backward" a training call and the backward of sum(y) into the input and every
parameter. wgrnn's figures include what its users pay: the copies of the CPU tensors to the
adapter and back inside each call. torch runs on --torch-device (default: CUDA when torch has it,
else its CPU), with each run ending in a device sync; TF32 is off, so both compute in fp32.
Each line gives the median and the fastest of --runs runs after --warmup, with wgrnn's adapter
and torch's device, so lines from different machines do not get mixed up.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time

# Run as a script, this file's directory (python/) heads sys.path, and the package's sources
# there (without the built extension) would shadow the installed wgrnn.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import torch  # noqa: E402

import wgrnn  # noqa: E402
import wgrnn.torch as wt  # noqa: E402

# The standard shapes of docs/BENCHMARKS.md: B, T, I, H.
STANDARD = [(32, 50, 128, 256), (1, 100, 128, 256), (64, 100, 512, 512)]
# A call at B=64 T=100 I=512 H=512 takes seconds on a software adapter; fewer runs there.
LARGE_ELEMENTS = 64 * 512


def parse_shape(s):
    parts = [int(v) for v in s.split(",")]
    if len(parts) != 4 or min(parts) < 1:
        raise argparse.ArgumentTypeError(f"expected B,T,I,H (positive), got {s!r}")
    return tuple(parts)


def timed(fn, runs, warmup, sync):
    for _ in range(warmup):
        fn()
        sync()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times), min(times)


def bench_one(impl, cell, shape, mode, args, device, ctx, adapter):
    batch, seq, inputs, hidden = shape
    torch.manual_seed(0)
    if impl == "wgrnn":
        layer = {"lstm": wt.LSTM, "gru": wt.GRU}[cell](inputs, hidden, num_layers=args.layers,
                                                       context=ctx)
        dev = torch.device("cpu")
    else:
        layer = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](
            inputs, hidden, num_layers=args.layers).to(device)
        dev = device
    training = mode == "forward+backward"
    layer.train(training)
    x = torch.randn(seq, batch, inputs, device=dev, requires_grad=training)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

    def run():
        if training:
            layer.zero_grad(set_to_none=True)
            x.grad = None
            y, _ = layer(x)
            y.sum().backward()
        else:
            with torch.no_grad():
                layer(x)

    large = batch * hidden >= LARGE_ELEMENTS and args.runs_large is not None
    runs = args.runs_large if large else args.runs
    warmup = min(args.warmup, 1) if large else args.warmup
    median, fastest = timed(run, runs, warmup, sync)
    gates = {"lstm": 4, "gru": 3}[cell]
    flops = 2 * seq * batch * gates * hidden * (inputs + hidden) * (3 if training else 1)
    return {
        "bench": "python", "impl": impl, "cell": cell, "mode": mode, "batch": batch,
        "seq": seq, "input": inputs, "hidden": hidden, "layers": args.layers,
        "ms_median": round(median, 3), "ms_min": round(fastest, 3), "runs": runs,
        "gflops": round(flops / (median * 1e6), 2),
        "device": adapter if impl == "wgrnn" else torch_device_name(dev),
        "adapter": adapter, "torch_device": torch_device_name(device),
        "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
    }


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def torch_device_name(device):
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    return f"cpu: {cpu_name()}, {torch.get_num_threads()} threads"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shape", type=parse_shape, action="append",
                   help="B,T,I,H (repeatable; default: the three standard shapes)")
    p.add_argument("--cell", choices=["lstm", "gru"], action="append")
    p.add_argument("--mode", choices=["forward", "forward+backward"], action="append")
    p.add_argument("--impl", choices=["wgrnn", "torch"], action="append")
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--runs-large", type=int, default=3,
                   help="runs at B*H >= 64*512 (the large standard shape)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--torch-device", default="auto", help="auto, cpu or cuda")
    args = p.parse_args()
    if args.torch_device == "auto":
        args.torch_device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(args.torch_device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    ctx = wgrnn.Context()
    adapter = f"{ctx.adapter_name} ({ctx.backend}, {ctx.device_type})"
    for shape in args.shape or STANDARD:
        for cell in args.cell or ["lstm", "gru"]:
            for mode in args.mode or ["forward", "forward+backward"]:
                for impl in args.impl or ["wgrnn", "torch"]:
                    line = bench_one(impl, cell, shape, mode, args, device, ctx, adapter)
                    print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
