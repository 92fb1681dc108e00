"""Data-parallel training through torch.distributed: two processes on loopback (gloo) with
DistributedDataParallel around a model containing wgrnn.torch.LSTM."""

import os
import socket
import subprocess
import sys

import pytest
import torch

import ddp_model
from tolerance import compare

HERE = os.path.dirname(os.path.abspath(__file__))
# Four SGD steps on parameters of size ~1: the replicas sum their halves' gradients in another
# order than one process does, which moves a parameter by a few f32 ulps per step.
PARAM_ABS = 1e-5
# A loss is a mean over 4 or 8 squared errors of size ~1: a few f32 ulps.
LOSS_REL = 1e-5
TIMEOUT_S = 300


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_replicas(tmp_path, engine, world=2):
    port = free_port()
    procs, outs = [], []
    for rank in range(world):
        out = tmp_path / f"rank{rank}.pt"
        env = dict(os.environ, RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                   MASTER_PORT=str(port), GLOO_SOCKET_IFNAME="lo",
                   PYTHONPATH=os.pathsep.join([HERE, os.environ.get("PYTHONPATH", "")]))
        procs.append(subprocess.Popen(
            [sys.executable, os.path.join(HERE, "ddp_worker.py"), str(out), engine],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
        outs.append(out)
    logs = []
    try:
        for p in procs:
            logs.append(p.communicate(timeout=TIMEOUT_S)[0])
    finally:
        for p in procs:
            p.kill()
    for rank, (p, log) in enumerate(zip(procs, logs)):
        assert p.returncode == 0, f"replica {rank} exited with {p.returncode}:\n{log}"
    return [torch.load(o) for o in outs]


@pytest.mark.parametrize("engine", ["gpu", "cpu"])
def test_ddp_two_processes_match_one(tmp_path, engine):
    replicas = run_replicas(tmp_path, engine)
    first = replicas[0]["state"]
    for rank, r in enumerate(replicas[1:], start=1):
        for name, value in r["state"].items():
            assert torch.equal(value, first[name]), \
                f"replica {rank} differs from replica 0 in {name}"
    single = ddp_model.Model(engine)
    start = {k: v.clone() for k, v in single.state_dict().items()}
    losses = ddp_model.train(single)
    moved = max((first[k] - start[k]).abs().max().item() for k in start)
    assert moved > 1e-3, f"training moved the parameters by only {moved:.2e}"
    for name, value in single.state_dict().items():
        compare(f"DDP {engine}: {name}", first[name], value, abs_=PARAM_ABS,
                group=f"DDP {engine}", measure="parameter abs")
    # Each replica's loss is its half's; their mean is the whole batch's.
    for step, want in enumerate(losses):
        got = sum(r["losses"][step] for r in replicas) / len(replicas)
        assert abs(got - want) <= LOSS_REL * max(1.0, abs(want)), (step, got, want)
