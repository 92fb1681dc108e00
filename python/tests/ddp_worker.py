"""One replica of the two-process data-parallel run (tests/test_distributed.py starts two):
torch.distributed over gloo on loopback, DistributedDataParallel around a model whose
recurrent layer is wgrnn's. Writes the replica's final state dict to argv[1]."""

import os
import sys

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

import ddp_model


def main(out_path, engine):
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        model = ddp_model.Model(engine)
        ddp = DistributedDataParallel(model)
        share = ddp_model.BATCH // world
        losses = ddp_model.train(ddp, slice(rank * share, (rank + 1) * share))
        torch.save({"state": model.state_dict(), "losses": losses}, out_path)
        # Both replicas leave together: rank 0 hosts the rendezvous store, and tearing it down
        # while the other still talks to it aborts the process in torch's C++ teardown.
        dist.barrier()
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
