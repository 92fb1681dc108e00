"""python/bench.py prints one well-formed JSON line per implementation, cell, shape and mode."""

import json
import os
import subprocess
import sys

BENCH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench.py")


def test_bench_prints_a_json_line_per_case():
    out = subprocess.run([sys.executable, BENCH, "--shape", "2,3,4,5", "--shape", "1,2,3,4",
                          "--runs", "2", "--warmup", "1", "--torch-device", "cpu"], capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    seen = {(r["impl"], r["cell"], r["mode"], r["batch"], r["seq"], r["input"], r["hidden"])
            for r in lines}
    want = {(impl, cell, mode, *shape) for impl in ("wgrnn", "torch") for cell in ("lstm", "gru")
            for mode in ("forward", "forward+backward") for shape in ((2, 3, 4, 5), (1, 2, 3, 4))}
    assert seen == want and len(lines) == len(want)
    for r in lines:
        assert 0 < r["ms_min"] <= r["ms_median"], r
        assert r["runs"] == 2 and r["adapter"] and r["torch_device"].startswith("cpu"), r
        assert r["device"] == (r["adapter"] if r["impl"] == "wgrnn" else r["torch_device"]), r
