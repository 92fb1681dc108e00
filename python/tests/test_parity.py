"""wgrnn.torch against torch.nn: outputs, gradients, state dicts, errors."""

import itertools

import numpy as np
import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

import wgrnn
import wgrnn.torch as wt

# f32 rounding of a few hundred operations per output; PyTorch's own CPU kernels differ from
# wgrnn in summation order, so exact equality is not expected.
OUT_ABS = 1e-5
# Gradients sum over every step; relative to each tensor's largest entry.
GRAD_REL = 1e-4

ENGINES = ["cpu", "gpu"]


def make(kind, engine, **kw):
    torch.manual_seed(1234)
    ref = getattr(torch.nn, kind)(**kw)
    ours = getattr(wt, kind)(engine=engine, **kw)
    ours.load_state_dict(ref.state_dict(), strict=True)
    return ref, ours


def states(kind, kw, batch):
    layers = kw.get("num_layers", 1) * (2 if kw.get("bidirectional") else 1)
    h_size = kw.get("proj_size", 0) or kw["hidden_size"]
    shape_h = (layers, batch, h_size) if batch else (layers, h_size)
    h0 = torch.randn(shape_h, requires_grad=True)
    if kind != "LSTM":
        return h0, [h0]
    shape_c = (layers, batch, kw["hidden_size"]) if batch else (layers, kw["hidden_size"])
    c0 = torch.randn(shape_c, requires_grad=True)
    return (h0, c0), [h0, c0]


def flatten(out):
    y, h = out
    return [y] + (list(h) if isinstance(h, tuple) else [h])


def compare(name, got, want, rel=None, abs_=None):
    err = (got - want).abs().max().item()
    if rel is not None:
        scale = max(want.abs().max().item(), 1e-12)
        assert err / scale <= rel, f"{name}: rel err {err / scale:.3e} > {rel} (max abs {err:.3e})"
    else:
        idx = np.unravel_index(int((got - want).abs().argmax()), got.shape)
        assert err <= abs_, f"{name}: err {err:.3e} at {idx}: got {got[idx]}, want {want[idx]}"


def check(kind, engine, kw, batch=3, seq=4, give_h0=False, train=False):
    ref, ours = make(kind, engine, **kw)
    ref.train(train)
    ours.train(train)
    torch.manual_seed(99)
    shape = (seq, kw["input_size"]) if batch == 0 else (
        (batch, seq, kw["input_size"]) if kw.get("batch_first") else (seq, batch, kw["input_size"]))
    x = torch.randn(shape, requires_grad=True)
    hx, leaves = states(kind, kw, batch) if give_h0 else (None, [])
    got, want = flatten(ours(x, hx)), flatten(ref(x, hx))
    for i, (g, w) in enumerate(zip(got, want)):
        assert g.shape == w.shape, f"output {i}: shape {tuple(g.shape)} != {tuple(w.shape)}"
        compare(f"output {i}", g.detach(), w.detach(), abs_=OUT_ABS)
    torch.manual_seed(7)
    ups = [torch.randn_like(w) for w in want]
    inputs_ours = [x] + leaves + list(ours.parameters())
    inputs_ref = [x] + leaves + list(ref.parameters())
    g_ours = torch.autograd.grad(got, inputs_ours, ups)
    g_ref = torch.autograd.grad(want, inputs_ref, ups)
    names = ["input"] + [f"state{i}" for i in range(len(leaves))] + [n for n, _ in ref.named_parameters()]
    for n, a, b in zip(names, g_ours, g_ref):
        compare(f"grad {n}", a, b, rel=GRAD_REL)


CONFIGS = [
    dict(num_layers=1),
    dict(num_layers=2),
    dict(num_layers=2, bidirectional=True),
    dict(batch_first=True),
    dict(bias=False, bidirectional=True),
    dict(num_layers=3, bidirectional=True),
]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("cfg,give_h0", list(itertools.product(range(len(CONFIGS)), [False, True])))
def test_parity(engine, kind, cfg, give_h0):
    kw = dict(input_size=5, hidden_size=6, **CONFIGS[cfg])
    check(kind, engine, kw, give_h0=give_h0)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("give_h0", [False, True])
def test_unbatched(engine, kind, give_h0):
    check(kind, engine, dict(input_size=4, hidden_size=5, num_layers=2, bidirectional=True),
          batch=0, give_h0=give_h0)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("kw", [dict(proj_size=3), dict(proj_size=3, num_layers=2, bidirectional=True)])
def test_lstm_proj(engine, kw):
    check("LSTM", engine, dict(input_size=5, hidden_size=6, **kw), give_h0=True)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("kind", ["RNN"])
def test_relu(engine, kind):
    check(kind, engine, dict(input_size=5, hidden_size=6, nonlinearity="relu", num_layers=2))


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
def test_train_mode_without_dropout(engine, kind):
    check(kind, engine, dict(input_size=5, hidden_size=6, num_layers=2), train=True)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_packed_unsorted(engine, kind, batch_first):
    kw = dict(input_size=4, hidden_size=5, num_layers=2, bidirectional=True, batch_first=batch_first)
    ref, ours = make(kind, engine, **kw)
    torch.manual_seed(5)
    lengths = torch.tensor([2, 5, 3, 5])
    x = torch.randn((4, 5, 4) if batch_first else (5, 4, 4), requires_grad=True)
    def run(m):
        p = pack_padded_sequence(x, lengths, batch_first=batch_first, enforce_sorted=False)
        y, h = m(p)
        assert torch.equal(y.batch_sizes, p.batch_sizes)
        assert torch.equal(y.sorted_indices, p.sorted_indices)
        return [y.data] + (list(h) if isinstance(h, tuple) else [h])
    got, want = run(ours), run(ref)
    for i, (g, w) in enumerate(zip(got, want)):
        compare(f"packed output {i}", g.detach(), w.detach(), abs_=OUT_ABS)
    ups = [torch.randn_like(w) for w in want]
    g_ours = torch.autograd.grad(got, [x] + list(ours.parameters()), ups)
    g_ref = torch.autograd.grad(want, [x] + list(ref.parameters()), ups)
    for i, (a, b) in enumerate(zip(g_ours, g_ref)):
        compare(f"packed grad {i}", a, b, rel=GRAD_REL)


GRADCHECK_CELLS = [
    ("LSTM", dict()),
    ("LSTM", dict(proj_size=2)),
    ("GRU", dict()),
    ("GRU", dict(reset_after=False)),
    ("RNN", dict()),
    ("RNN", dict(nonlinearity="relu")),
]


@pytest.mark.parametrize("kind,kw", GRADCHECK_CELLS)
def test_gradcheck_cpu_f64(kind, kw):
    """torch.autograd.gradcheck of the binding itself (engine='cpu', float64): every input,
    initial state and parameter of a 2-layer bidirectional layer of every cell."""
    torch.manual_seed(3)
    m = getattr(wt, kind)(3, 4, num_layers=2, bidirectional=True, engine="cpu",
                          dtype=torch.float64, **kw)
    h_size = kw.get("proj_size", 0) or 4
    x = torch.randn(3, 2, 3, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(4, 2, h_size, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(4, 2, 4, dtype=torch.float64, requires_grad=True) if kind == "LSTM" else None
    params = list(m.parameters())
    names = m._names

    def f(x, h0, c0, *ps):
        call = dict(config=m._config_eval, names=names, lengths=None, seed=0, train=True,
                    engine="cpu", context=None)
        return wt._Call.apply(call, x, h0, c0, *ps)

    inputs = (x, h0, c0, *params)
    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-7, rtol=1e-5)


def gru_reset_before_reference(m, x, h0):
    """The reset-before GRU written out in float64 with torch's autograd (ONNX's
    linear_before_reset=0): n = tanh(W_in x + b_in + W_hn (r * h) + b_hn), sequence-major,
    one layer, one or two directions, from `m`'s parameters."""
    p = {n: t.double() for n, t in m.named_parameters()}
    hidden = m.hidden_size
    outs, finals = [], []
    for d, sfx in enumerate(["_l0", "_l0_reverse"][: 2 if m.bidirectional else 1]):
        w_ih, w_hh = p["weight_ih" + sfx], p["weight_hh" + sfx]
        b_ih, b_hh = p["bias_ih" + sfx], p["bias_hh" + sfx]
        h = h0[d].double()
        steps = range(x.shape[0]) if d == 0 else reversed(range(x.shape[0]))
        ys = [None] * x.shape[0]
        for t in steps:
            gi = x[t].double() @ w_ih.T + b_ih
            gr, gz, gn = gi.split(hidden, -1)
            w_r, w_z, w_n = w_hh.split(hidden, 0)
            b_r, b_z, b_n = b_hh.split(hidden, 0)
            r = torch.sigmoid(gr + h @ w_r.T + b_r)
            z = torch.sigmoid(gz + h @ w_z.T + b_z)
            n = torch.tanh(gn + (r * h) @ w_n.T + b_n)
            h = (1 - z) * n + z * h
            ys[t] = h
        outs.append(torch.stack(ys))
        finals.append(h)
    return torch.cat(outs, -1), torch.stack(finals)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_gru_reset_before_against_an_explicit_loop(engine, bidirectional):
    torch.manual_seed(11)
    m = wt.GRU(4, 5, bidirectional=bidirectional, reset_after=False, engine=engine)
    x = torch.randn(6, 3, 4, requires_grad=True)
    h0 = torch.randn(2 if bidirectional else 1, 3, 5, requires_grad=True)
    got = m(x, h0)
    want = gru_reset_before_reference(m, x, h0)
    for i, (g, w) in enumerate(zip(got, want)):
        compare(f"output {i}", g.detach().double(), w.detach(), abs_=OUT_ABS)
    ups = [torch.randn_like(w) for w in want]
    leaves = [x, h0] + list(m.parameters())
    g_got = torch.autograd.grad(got, leaves, [u.float() for u in ups])
    g_want = torch.autograd.grad(want, leaves, ups)
    names = ["input", "h0"] + [n for n, _ in m.named_parameters()]
    for n, a, b in zip(names, g_got, g_want):
        compare(f"grad {n}", a.double(), b, rel=GRAD_REL)


@pytest.mark.parametrize("kind,kw", [("LSTM", dict(proj_size=2, num_layers=2)),
                                     ("GRU", dict(bidirectional=True)),
                                     ("RNN", dict(bias=False, nonlinearity="relu"))])
def test_state_dict_both_ways(kind, kw):
    ref = getattr(torch.nn, kind)(3, 4, **kw)
    ours = getattr(wt, kind)(3, 4, engine="cpu", **kw)
    assert list(ours.state_dict().keys()) == list(ref.state_dict().keys())
    ours.load_state_dict(ref.state_dict(), strict=True)
    for k, v in ref.state_dict().items():
        assert torch.equal(ours.state_dict()[k], v), k
    fresh = getattr(torch.nn, kind)(3, 4, **kw)
    ours2 = getattr(wt, kind)(3, 4, engine="cpu", **kw)
    fresh.load_state_dict(ours2.state_dict(), strict=True)
    for k, v in ours2.state_dict().items():
        assert torch.equal(fresh.state_dict()[k], v), k


def test_dropout_seed_from_torch_generator():
    m = wt.LSTM(3, 4, num_layers=2, dropout=0.5, engine="cpu")
    x = torch.randn(5, 2, 3)
    torch.manual_seed(11)
    a = m(x)[0]
    torch.manual_seed(11)
    b = m(x)[0]
    c = m(x)[0]
    assert torch.equal(a, b), "same torch seed, different dropout masks"
    assert not torch.equal(a, c), "a new draw gave the same masks"
    m.eval()
    assert torch.equal(m(x)[0], m(x)[0])
