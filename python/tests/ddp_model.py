"""The model and data of the data-parallel test, shared by the test (the single-process run)
and tests/ddp_worker.py (one replica of the two-process run)."""

import torch
from torch import nn

import wgrnn.torch as wt

STEPS = 4
BATCH = 8  # the whole batch; each of two replicas takes half of it
SEQ, FEATURES, HIDDEN = 6, 5, 8
LR = 0.2


class Model(nn.Module):
    """A bidirectional 2-layer wgrnn LSTM under a linear read-out of its last step."""

    def __init__(self, engine):
        super().__init__()
        torch.manual_seed(17)
        self.rnn = wt.LSTM(FEATURES, HIDDEN, num_layers=2, bidirectional=True, engine=engine)
        self.out = nn.Linear(2 * HIDDEN, 1)

    def forward(self, x):
        y, _ = self.rnn(x)
        return self.out(y[-1]).squeeze(-1)


def batch(step):
    """The whole batch of `step`: x [SEQ, BATCH, FEATURES] and a target per sequence."""
    g = torch.Generator().manual_seed(1000 + step)
    x = torch.randn(SEQ, BATCH, FEATURES, generator=g)
    return x, x.sum(dim=(0, 2)).tanh()


def train(model, part=slice(None)):
    """STEPS steps of SGD on the mean squared error of each batch's `part` of sequences."""
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    losses = []
    for step in range(STEPS):
        x, target = batch(step)
        loss = nn.functional.mse_loss(model(x[:, part]), target[part])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses
