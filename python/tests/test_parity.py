"""wgrnn.torch against torch.nn: outputs, gradients, state dicts, errors."""

import itertools

import numpy as np
import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

import wgrnn
import wgrnn.torch as wt
from tolerance import GRAD_REL, OUT_ABS, compare

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


def label(kind, engine, kw, **extra):
    args = ", ".join(f"{k}={v}" for k, v in {**kw, **extra}.items()
                     if k not in ("input_size", "hidden_size") and v not in (False, None))
    return f"{kind}({args}) {engine}"


def check(kind, engine, kw, batch=3, seq=4, give_h0=False, train=False):
    ref, ours = make(kind, engine, **kw)
    where = label(kind, engine, kw, h0=give_h0, train=train, unbatched=batch == 0)
    group = f"{kind} {engine}"
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
        compare(f"{where}: output {i}", g.detach(), w.detach(), abs_=OUT_ABS, group=group)
    torch.manual_seed(7)
    ups = [torch.randn_like(w) for w in want]
    inputs_ours = [x] + leaves + list(ours.parameters())
    inputs_ref = [x] + leaves + list(ref.parameters())
    g_ours = torch.autograd.grad(got, inputs_ours, ups)
    g_ref = torch.autograd.grad(want, inputs_ref, ups)
    names = ["input"] + [f"state{i}" for i in range(len(leaves))] + [n for n, _ in ref.named_parameters()]
    for n, a, b in zip(names, g_ours, g_ref):
        compare(f"{where}: grad {n}", a, b, rel=GRAD_REL, group=group)


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
def test_parity_larger(engine, kind):
    """Sizes where the sums are long enough for f32 rounding to show: 64 hidden units, 20
    steps, 2 bidirectional layers."""
    kw = dict(input_size=32, hidden_size=64, num_layers=2, bidirectional=True)
    check(kind, engine, kw, batch=8, seq=20, give_h0=True)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("give_h0", [False, True])
def test_unbatched(engine, kind, give_h0):
    check(kind, engine, dict(input_size=4, hidden_size=5, num_layers=2, bidirectional=True),
          batch=0, give_h0=give_h0)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("kind,kw", [("LSTM", dict(batch_first=True, proj_size=3)),
                                     ("GRU", dict(batch_first=True)),
                                     ("LSTM", dict(proj_size=2, bidirectional=True))])
def test_unbatched_batch_first_and_projection(engine, kind, kw):
    """An unbatched input is [T, F] whatever batch_first says, as in torch.nn."""
    check(kind, engine, dict(input_size=4, hidden_size=5, **kw), batch=0, give_h0=True)


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


PACKED = [
    ("LSTM", dict(num_layers=2, bidirectional=True)),
    ("GRU", dict(num_layers=2, bidirectional=True)),
    ("RNN", dict(num_layers=2, bidirectional=True)),
    ("LSTM", dict(proj_size=3, bidirectional=True)),
    ("GRU", dict(reset_after=False, bidirectional=True)),
]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("case", range(len(PACKED)))
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("give_h0", [False, True])
@pytest.mark.parametrize("enforce_sorted", [False, True])
def test_packed(engine, case, batch_first, give_h0, enforce_sorted):
    kind, extra = PACKED[case]
    kw = dict(input_size=4, hidden_size=5, batch_first=batch_first, **extra)
    reset_after = kw.pop("reset_after", True)
    if reset_after:
        ref, ours = make(kind, engine, **kw)
    else:
        # torch.nn has no reset-before GRU: the reference is an explicit loop, below.
        ref, ours = None, wt.GRU(engine=engine, reset_after=False, **kw)
    where = label(kind, engine, kw if reset_after else {**kw, "reset_after": False}, h0=give_h0,
                  sorted=enforce_sorted, packed=True)
    group = f"{kind} {engine}"
    torch.manual_seed(5)
    lengths = torch.tensor([5, 5, 3, 2]) if enforce_sorted else torch.tensor([2, 5, 3, 5])
    x = torch.randn((4, 5, 4) if batch_first else (5, 4, 4), requires_grad=True)
    hx, leaves = states(kind, kw, 4) if give_h0 else (None, [])

    def run(m):
        p = pack_padded_sequence(x, lengths, batch_first=batch_first,
                                 enforce_sorted=enforce_sorted)
        y, h = m(p, hx)
        assert isinstance(y, torch.nn.utils.rnn.PackedSequence)
        assert torch.equal(y.batch_sizes, p.batch_sizes)
        for a, b in [(y.sorted_indices, p.sorted_indices),
                     (y.unsorted_indices, p.unsorted_indices)]:
            assert (a is None and b is None) or torch.equal(a, b)
        return [y.data] + (list(h) if isinstance(h, tuple) else [h])

    got = run(ours)
    if ref is not None:
        want = run(ref)
        ref_leaves = list(ref.parameters())
    else:
        want = gru_reset_before_packed(ours, x, lengths, batch_first, hx)
        ref_leaves = list(ours.parameters())
    for i, (g, w) in enumerate(zip(got, want)):
        assert g.shape == w.shape, f"{where}: output {i}: {tuple(g.shape)} != {tuple(w.shape)}"
        compare(f"{where}: output {i}", g.detach().to(w.dtype), w.detach(), abs_=OUT_ABS,
                group=group)
    torch.manual_seed(7)
    ups = [torch.randn_like(w) for w in want]
    g_ours = torch.autograd.grad(got, [x] + leaves + list(ours.parameters()),
                                 [u.to(g.dtype) for u, g in zip(ups, got)])
    g_ref = torch.autograd.grad(want, [x] + leaves + ref_leaves, ups)
    names = ["input"] + [f"state{i}" for i in range(len(leaves))] + ours._names
    for n, a, b in zip(names, g_ours, g_ref):
        compare(f"{where}: grad {n}", a.to(b.dtype), b, rel=GRAD_REL, group=group)


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
    call = m._settings(0.0, seed=0, train=True)

    def f(x, h0, c0, *ps):
        return wt._Call.apply(call, x, h0, c0, *ps)

    inputs = (x, h0, c0, *params)
    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-7, rtol=1e-5)


def gru_reset_before_reference(m, x, h0, lengths=None):
    """The reset-before GRU written out in float64 with torch's autograd (ONNX's
    linear_before_reset=0): n = tanh(W_in x + b_in + W_hn (r * h) + b_hn), sequence-major,
    one layer, one or two directions, from `m`'s parameters. With `lengths`, sequence b runs
    its first lengths[b] steps only (the reverse direction from its own last step), and its
    outputs past them are zero: packed-sequence semantics."""
    p = {n: t.double() for n, t in m.named_parameters()}
    hidden, steps_n, batch = m.hidden_size, x.shape[0], x.shape[1]
    lengths = [steps_n] * batch if lengths is None else [int(n) for n in lengths]
    outs, finals = [], []
    for d, sfx in enumerate(["_l0", "_l0_reverse"][: 2 if m.bidirectional else 1]):
        w_ih, w_hh = p["weight_ih" + sfx], p["weight_hh" + sfx]
        b_ih, b_hh = p["bias_ih" + sfx], p["bias_hh" + sfx]
        w_r, w_z, w_n = w_hh.split(hidden, 0)
        b_r, b_z, b_n = b_hh.split(hidden, 0)
        ys = [[torch.zeros(hidden, dtype=torch.float64)] * batch for _ in range(steps_n)]
        last = []
        for b in range(batch):
            h = (torch.zeros(hidden, dtype=torch.float64) if h0 is None else h0[d, b].double())
            order = range(lengths[b]) if d == 0 else reversed(range(lengths[b]))
            for t in order:
                gr, gz, gn = (x[t, b].double() @ w_ih.T + b_ih).split(hidden, -1)
                r = torch.sigmoid(gr + h @ w_r.T + b_r)
                z = torch.sigmoid(gz + h @ w_z.T + b_z)
                n = torch.tanh(gn + (r * h) @ w_n.T + b_n)
                h = (1 - z) * n + z * h
                ys[t][b] = h
            last.append(h)
        outs.append(torch.stack([torch.stack(row) for row in ys]))
        finals.append(torch.stack(last))
    return torch.cat(outs, -1), torch.stack(finals)


def gru_reset_before_packed(m, x, lengths, batch_first, h0):
    """What a reset-before GRU returns for a PackedSequence of `x`, from the explicit loop."""
    xs = x.transpose(0, 1) if batch_first else x
    y, h_n = gru_reset_before_reference(m, xs, h0, lengths)
    if batch_first:
        y = y.transpose(0, 1)
    packed = pack_padded_sequence(y, lengths, batch_first=batch_first, enforce_sorted=False)
    return [packed.data, h_n]


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
        compare(f"GRU(reset_after=False, bidirectional={bidirectional}) {engine}: output {i}",
                g.detach().double(), w.detach(), abs_=OUT_ABS, group=f"GRU {engine}")
    ups = [torch.randn_like(w) for w in want]
    leaves = [x, h0] + list(m.parameters())
    g_got = torch.autograd.grad(got, leaves, [u.float() for u in ups])
    g_want = torch.autograd.grad(want, leaves, ups)
    names = ["input", "h0"] + [n for n, _ in m.named_parameters()]
    for n, a, b in zip(names, g_got, g_want):
        compare(f"GRU(reset_after=False, bidirectional={bidirectional}) {engine}: grad {n}",
                a.double(), b, rel=GRAD_REL, group=f"GRU {engine}")


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


def forward_backward(m, x, hx, seed=21):
    """Outputs and every gradient of one call, for comparing calls bit for bit."""
    torch.manual_seed(seed)
    out = flatten(m(x, hx))
    ups = [torch.ones_like(o) * 0.5 + torch.arange(o.numel()).reshape(o.shape) * 1e-3
           for o in out]
    leaves = [x] + (list(hx) if isinstance(hx, tuple) else [hx]) + list(m.parameters())
    grads = torch.autograd.grad(out, leaves, ups)
    return [o.detach() for o in out] + list(grads)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("kind,kw", [("LSTM", dict(num_layers=2, bidirectional=True)),
                                     ("LSTM", dict(proj_size=3)),
                                     ("GRU", dict(num_layers=2, dropout=0.3)),
                                     ("RNN", dict(bidirectional=True, nonlinearity="relu"))])
def test_bit_identical_across_calls(engine, kind, kw):
    """The same inputs give the same bits, outputs and gradients, call after call (dropout
    with the same torch seed included); a fresh module with the same state dict too."""
    torch.manual_seed(2)
    m = getattr(wt, kind)(6, 7, engine=engine, **kw).train()
    x = torch.randn(9, 4, 6, requires_grad=True)
    hx, _ = states(kind, dict(hidden_size=7, **kw), 4)
    first = forward_backward(m, x, hx)
    again = [forward_backward(m, x, hx) for _ in range(3)]
    twin = getattr(wt, kind)(6, 7, engine=engine, **kw).train()
    twin.load_state_dict(m.state_dict(), strict=True)
    again.append(forward_backward(twin, x, hx))
    for call, results in enumerate(again):
        for i, (a, b) in enumerate(zip(results, first)):
            if not torch.equal(a, b):
                at = tuple((a != b).nonzero()[0].tolist())
                raise AssertionError(f"call {call + 1}, result {i}: first difference at {at}: "
                                     f"got {a[at].item()!r}, first call {b[at].item()!r}")


def test_tensor_on_another_device_is_refused():
    """A tensor that does not live on torch's CPU device is refused with the fix in the
    message (meta tensors stand in for an accelerator's)."""
    m = wt.LSTM(3, 4, engine="cpu")
    x = torch.empty(5, 2, 3, device="meta")
    with pytest.raises(ValueError, match=r"input is on meta.*\.cpu\(\)"):
        m(x)
    m_meta = wt.GRU(3, 4, engine="cpu", device="meta")
    with pytest.raises(ValueError, match=r"weight_ih_l0 is on meta"):
        m_meta(torch.randn(5, 2, 3))


@pytest.mark.parametrize("kind,kw", [("LSTM", dict(num_layers=2, bidirectional=True)),
                                     ("LSTM", dict(proj_size=2)), ("GRU", dict(bias=False)),
                                     ("RNN", dict(nonlinearity="relu"))])
def test_same_seed_same_initial_weights_as_torch(kind, kw):
    """From one torch seed a wgrnn layer draws exactly torch.nn's initial weights, so swapping
    the class leaves a seeded experiment's starting point as it was."""
    torch.manual_seed(8)
    ref = getattr(torch.nn, kind)(3, 4, **kw)
    torch.manual_seed(8)
    ours = getattr(wt, kind)(3, 4, **kw)
    for k, v in ref.state_dict().items():
        assert torch.equal(ours.state_dict()[k], v), k


@pytest.mark.parametrize("kind,kw", [("LSTM", dict(num_layers=2, bidirectional=True)),
                                     ("LSTM", dict(proj_size=2, bias=False)),
                                     ("GRU", dict(num_layers=3)), ("RNN", dict())])
def test_torch_nn_attributes(kind, kw):
    """What code written for torch.nn reaches for besides forward: flatten_parameters(),
    all_weights and _all_weights, per layer and direction in torch.nn's order."""
    ref = getattr(torch.nn, kind)(3, 4, **kw)
    ours = getattr(wt, kind)(3, 4, engine="cpu", **kw)
    ours.flatten_parameters()
    assert ours._all_weights == ref._all_weights
    assert [[tuple(p.shape) for p in ps] for ps in ours.all_weights] == \
        [[tuple(p.shape) for p in ps] for ps in ref.all_weights]


@pytest.mark.parametrize("engine", ENGINES)
def test_non_contiguous_input_and_states(engine):
    """Strided views (a transposed batch-first tensor, a slice of states) give torch's
    results and gradients."""
    ref, ours = make("LSTM", engine, input_size=4, hidden_size=5, num_layers=2)
    torch.manual_seed(4)
    base = torch.randn(3, 6, 4, requires_grad=True)
    x = base.transpose(0, 1)
    h_all = torch.randn(2, 3, 10, requires_grad=True)
    hx = (h_all[..., ::2], torch.randn(2, 3, 5))
    assert not x.is_contiguous() and not hx[0].is_contiguous()
    got, want = flatten(ours(x, hx)), flatten(ref(x, hx))
    for i, (g, w) in enumerate(zip(got, want)):
        compare(f"LSTM strided {engine}: output {i}", g.detach(), w.detach(), abs_=OUT_ABS,
                group=f"LSTM {engine}")
    ups = [torch.randn_like(w) for w in want]
    for n, a, b in zip(["input", "h0"], torch.autograd.grad(got, [base, h_all], ups),
                       torch.autograd.grad(want, [base, h_all], ups)):
        compare(f"LSTM strided {engine}: grad {n}", a, b, rel=GRAD_REL, group=f"LSTM {engine}")


def test_dropout_on_one_layer_warns_as_torch_does():
    with pytest.warns(UserWarning) as ref:
        torch.nn.GRU(3, 4, dropout=0.5)
    with pytest.warns(UserWarning) as ours:
        wt.GRU(3, 4, dropout=0.5, engine="cpu")
    assert [str(w.message) for w in ours] == [str(w.message) for w in ref]


def test_copy_deepcopy_and_pickle():
    """Best-model copies, torch.save of a whole model and AveragedModel (a deepcopy) work, and
    the copies compute what the original does."""
    import copy
    import io
    m = wt.GRU(3, 4, num_layers=2, bidirectional=True, engine="cpu")
    x = torch.randn(5, 2, 3)
    want = m(x)[0]
    buf = io.BytesIO()
    torch.save(m, buf)
    buf.seek(0)
    for clone in [copy.deepcopy(m), torch.load(buf, weights_only=False),
                  torch.optim.swa_utils.AveragedModel(m).module]:
        assert torch.equal(clone(x)[0], want)
        assert clone.weight_ih_l0 is not m.weight_ih_l0


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("kind,kw", [("LSTM", dict(bidirectional=True)), ("LSTM", dict(proj_size=2)),
                                     ("GRU", dict(batch_first=True, num_layers=2)), ("RNN", dict())])
def test_empty_batch_as_torch(engine, kind, kw):
    """A batch of no sequences gives torch.nn's empty outputs and zero gradients."""
    ref, ours = make(kind, engine, input_size=3, hidden_size=4, **kw)
    shape = (0, 5, 3) if kw.get("batch_first") else (5, 0, 3)
    x = torch.randn(shape, requires_grad=True)
    got, want = flatten(ours(x)), flatten(ref(x))
    assert [tuple(t.shape) for t in got] == [tuple(t.shape) for t in want]
    sum(t.sum() for t in got).backward()
    assert all(p.grad is not None and not p.grad.any() for p in ours.parameters())


@pytest.mark.parametrize("engine", ENGINES)
def test_settings_changed_after_construction_take_effect(engine):
    """torch.nn reads batch_first and dropout at each call; so does wgrnn."""
    ref, ours = make("LSTM", engine, input_size=3, hidden_size=4, num_layers=2)
    x = torch.randn(2, 5, 3)
    ref.batch_first = ours.batch_first = True
    compare("batch_first set later", ours(x)[0].detach(), ref(x)[0].detach(), abs_=OUT_ABS)
    packed = pack_padded_sequence(x, torch.tensor([5, 3]), batch_first=True)
    compare("batch_first set later, packed", ours(packed)[0].data.detach(),
            ref(packed)[0].data.detach(), abs_=OUT_ABS)
    ours.train()
    ours.dropout = 0.5
    torch.manual_seed(1)
    assert not torch.equal(ours(x)[0], ours.eval()(x)[0]), "dropout set later had no effect"


def test_arguments_checked_as_torch_checks_them():
    """The arguments torch.nn checks, with its exceptions: bias and batch_first are bools,
    bidirectional any truthy value, sizes ints in range."""
    m = wt.LSTM(3, 4, bidirectional=1, engine="cpu")
    ref = torch.nn.LSTM(3, 4, bidirectional=1)
    assert m.bidirectional is True and list(m.state_dict()) == list(ref.state_dict())
    for kw, err in [(dict(hidden_size=0), ValueError), (dict(hidden_size=-1), ValueError),
                    (dict(num_layers=0), ValueError), (dict(hidden_size=2.5), TypeError),
                    (dict(proj_size=-1), ValueError), (dict(proj_size=4), ValueError),
                    (dict(dropout=1.5), ValueError), (dict(dropout="0.1"), ValueError),
                    (dict(input_size=-3), ValueError), (dict(input_size=0), ValueError),
                    (dict(bias=1), TypeError), (dict(batch_first=0), TypeError)]:
        args = {**dict(input_size=3, hidden_size=4), **kw}
        with pytest.raises(err):
            torch.nn.LSTM(**args)
        with pytest.raises(err):
            wt.LSTM(engine="cpu", **args)


def test_dropout_one_is_refused_at_construction():
    torch.nn.LSTM(3, 4, num_layers=2, dropout=1.0)
    with pytest.raises(ValueError, match="dropout=1.0 is not supported"):
        wt.LSTM(3, 4, num_layers=2, dropout=1.0)


def test_hx_checked_as_torch_checks_it():
    m = wt.LSTM(3, 4, engine="cpu")
    x = torch.randn(5, 2, 3)
    h, c = torch.zeros(1, 2, 4), torch.zeros(1, 2, 4)
    for bad in [(None, c), (h, None), h, (h, c, c)]:
        with pytest.raises(ValueError, match="hx"):
            m(x, bad)
    with pytest.raises(ValueError, match="h_0 is torch.float64"):
        m(x, (h.double(), c))
    with pytest.raises(ValueError, match="one Tensor"):
        wt.GRU(3, 4, engine="cpu")(x, (h,))


@pytest.mark.parametrize("kind,kw", [("LSTM", dict()), ("LSTM", dict(proj_size=2, num_layers=2)),
                                     ("GRU", dict(bias=False, batch_first=True, dropout=0.5,
                                                  num_layers=3, bidirectional=True)),
                                     ("RNN", dict(nonlinearity="relu"))])
def test_repr_and_mode_as_torch(kind, kw):
    ref = getattr(torch.nn, kind)(3, 4, **kw)
    ours = getattr(wt, kind)(3, 4, engine="cpu", **kw)
    assert repr(ours) == repr(ref)[:-1] + ", engine='cpu')"
    assert ours.mode == ref.mode
    assert ours._flat_weights_names == ref._flat_weights_names
    assert [tuple(p.shape) for p in ours._flat_weights] == \
        [tuple(p.shape) for p in ref._flat_weights]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
def test_dropout_eval_is_torch_and_train_differs(engine, kind):
    """With dropout > 0, eval computes torch.nn's eval outputs (no dropout at all), and a
    training call does not."""
    ref, ours = make(kind, engine, input_size=4, hidden_size=5, num_layers=3, dropout=0.4)
    ref.eval()
    ours.eval()
    x = torch.randn(6, 3, 4)
    compare(f"{kind} dropout=0.4 eval {engine}", ours(x)[0].detach(), ref(x)[0].detach(),
            abs_=OUT_ABS, group=f"{kind} {engine}")
    ours.train()
    torch.manual_seed(3)
    assert not torch.equal(ours(x)[0], ref(x)[0].detach())


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_gradcheck_with_dropout_masks(kind):
    """Backward goes through the masks forward drew: gradcheck of a training call with
    inter-layer dropout at a fixed seed (each finite-difference call redraws the same masks)."""
    torch.manual_seed(5)
    m = getattr(wt, kind)(3, 4, num_layers=3, dropout=0.5, engine="cpu", dtype=torch.float64)
    x = torch.randn(4, 2, 3, dtype=torch.float64, requires_grad=True)
    call = m._settings(0.5, seed=1234, train=True)
    undropped = m._settings(0.0, seed=1234, train=True)
    params = list(m.parameters())
    with_masks = wt._Call.apply(call, x, None, None, *params)[0]
    without = wt._Call.apply(undropped, x, None, None, *params)[0]
    assert not torch.equal(with_masks, without), "the masks dropped nothing"
    assert torch.autograd.gradcheck(lambda x, *ps: wt._Call.apply(call, x, None, None, *ps),
                                    (x, *params), eps=1e-6, atol=1e-7, rtol=1e-5)


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
def test_gradcheck_through_the_module_with_packed_lengths(kind):
    """gradcheck of the module's own forward on a PackedSequence (unsorted lengths, h0 given),
    with the parameters swapped in by torch.func.functional_call: the packing, the lengths and
    the state paths of the binding, in float64."""
    torch.manual_seed(6)
    m = getattr(wt, kind)(3, 4, num_layers=2, bidirectional=True, engine="cpu",
                          dtype=torch.float64)
    x = torch.randn(5, 3, 3, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(4, 3, 4, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(4, 3, 4, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([3, 5, 2])
    names = [n for n, _ in m.named_parameters()]

    def f(x, h0, c0, *ps):
        packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
        hx = (h0, c0) if kind == "LSTM" else h0
        y, h = torch.func.functional_call(m, dict(zip(names, ps)), (packed, hx))
        return (y.data,) + (h if isinstance(h, tuple) else (h,))

    inputs = (x, h0, c0 if kind == "LSTM" else c0.detach(), *m.parameters())
    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-7, rtol=1e-5)
