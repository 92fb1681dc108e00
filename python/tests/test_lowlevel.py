"""wgrnn's numpy level: Context, rnn_forward/rnn_backward, errors as exceptions."""

import os

import numpy as np
import pytest
import torch

import wgrnn
import wgrnn.torch as wt
from tolerance import OUT_ABS


def test_context_reports_its_adapter():
    ctx = wgrnn.Context()
    assert isinstance(ctx.adapter_name, str) and ctx.adapter_name
    assert ctx.backend in ("Vulkan", "Metal", "Dx12", "Gl")
    assert ctx.adapter_name in repr(ctx)
    # CI names the driver each run must use; the suite must run on that one, as the Rust one does.
    want = os.environ.get("WGPU_ADAPTER_NAME")
    if want:
        assert want.lower() in ctx.adapter_name.lower(), (ctx.adapter_name, want)
    print(f"adapter: {ctx.adapter_name} ({ctx.backend}, {ctx.device_type})")


# float64 against torch's float64 kernels: a few hundred operations' rounding at 1e-16 each.
F64_ABS = 1e-12
# Gradients here sum over 5 steps and 2 sequences of terms of size ~1: ten outputs' rounding.
GRAD_SUM_FACTOR = 10


def weights_of(module):
    return {k: v.detach().numpy() for k, v in module.state_dict().items()}


@pytest.mark.parametrize("engine,dtype", [("cpu", np.float32), ("cpu", np.float64), ("gpu", np.float32)])
def test_numpy_forward_backward_matches_torch(engine, dtype):
    torch.manual_seed(0)
    ref = torch.nn.GRU(3, 4, num_layers=2).to(torch.float64)
    cfg = wgrnn.RnnConfig("gru", 3, 4, num_layers=2)
    w = {k: v.astype(dtype) for k, v in weights_of(ref).items()}
    x = np.random.default_rng(0).standard_normal((5, 2, 3)).astype(dtype)
    y, h, c, tape = wgrnn.rnn_forward(cfg, w, x, train=True, engine=engine)
    assert c is None and y.dtype == dtype and y.flags.writeable
    xt = torch.from_numpy(x.astype(np.float64)).requires_grad_()
    yt, ht = ref(xt)
    tol = F64_ABS if dtype == np.float64 else OUT_ABS
    np.testing.assert_allclose(y, yt.detach().numpy(), atol=tol)
    np.testing.assert_allclose(h, ht.detach().numpy(), atol=tol)
    dy = np.ones_like(y)
    dx, dh0, dc0, grads = wgrnn.rnn_backward(tape, dy=dy)
    gx, *gp = torch.autograd.grad(yt, [xt] + list(ref.parameters()), torch.ones_like(yt))
    np.testing.assert_allclose(dx, gx.numpy(), atol=GRAD_SUM_FACTOR * tol)
    for (name, _), g in zip(ref.named_parameters(), gp):
        np.testing.assert_allclose(grads[name], g.numpy(), atol=GRAD_SUM_FACTOR * tol,
                                   err_msg=name)
    assert dc0 is None and dh0.shape == (2, 2, 4)


def test_bad_shape_is_value_error_with_wgrnn_message():
    cfg = wgrnn.RnnConfig("lstm", 3, 4)
    w = weights_of(torch.nn.LSTM(3, 4))
    with pytest.raises(ValueError,
                       match=r"rnn_forward: argument `x` has shape \[5, 2, 7\], expected \[5, 2, 3\]"):
        wgrnn.rnn_forward(cfg, w, np.zeros((5, 2, 7), np.float32))
    with pytest.raises(ValueError,
                       match=r"argument `h0` has shape \[1, 3, 4\], expected \[1, 2, 4\]"):
        wgrnn.rnn_forward(cfg, w, np.zeros((5, 2, 3), np.float32), h0=np.zeros((1, 3, 4)))


def test_bad_config_and_missing_weight_are_value_errors():
    with pytest.raises(ValueError, match="hidden_size must be at least 1"):
        wgrnn.RnnConfig("lstm", 3, 0)
    with pytest.raises(ValueError, match=r"proj_size 4 must be smaller than hidden_size \(4\)"):
        wgrnn.RnnConfig("lstm", 3, 4, proj_size=4)
    with pytest.raises(ValueError, match='unknown mode "conv"'):
        wgrnn.RnnConfig("conv", 3, 4)
    w = weights_of(torch.nn.LSTM(3, 4))
    del w["bias_hh_l0"]
    with pytest.raises(ValueError, match="missing tensor `bias_hh_l0`"):
        wgrnn.rnn_forward(wgrnn.RnnConfig("lstm", 3, 4), w, np.zeros((5, 2, 3), np.float32))


def test_bad_lengths_and_engine_are_value_errors():
    cfg = wgrnn.RnnConfig("gru", 3, 4)
    w = weights_of(torch.nn.GRU(3, 4))
    x = np.zeros((5, 2, 3), np.float32)
    with pytest.raises(ValueError, match=r"`lengths\[0\]` = 6 is outside 1..=5"):
        wgrnn.rnn_forward(cfg, w, x, lengths=[6, 1])
    for bad, what in [([-1, 1], "lengths must be non-negative"),
                      ([2.5, 1], "lengths must be integers")]:
        with pytest.raises(ValueError, match=what):
            wgrnn.rnn_forward(cfg, w, x, lengths=bad)
    with pytest.raises(ValueError, match="seed must be non-negative"):
        wgrnn.rnn_forward(cfg, w, x, seed=-1)
    with pytest.raises(ValueError, match="does not fit in 64 bits"):
        wgrnn.rnn_forward(cfg, w, x, seed=2**64)
    with pytest.raises(ValueError, match="engine"):
        wgrnn.rnn_forward(cfg, w, x, engine="tpu")
    with pytest.raises(ValueError, match="float64"):
        wgrnn.rnn_forward(cfg, {k: v.astype(np.float64) for k, v in w.items()},
                          x.astype(np.float64), engine="gpu")


def test_module_errors_are_value_errors():
    m = wt.LSTM(3, 4, engine="gpu")
    with pytest.raises(ValueError, match=r"`x` has shape \[5, 2, 6\], expected \[5, 2, 3\]"):
        m(torch.zeros(5, 2, 6))
    with pytest.raises(ValueError, match="float32"):
        wt.LSTM(3, 4, engine="gpu", dtype=torch.float64)(torch.zeros(5, 2, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="Unknown nonlinearity 'sigmoid'"):
        wt.RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="engine must be 'gpu' or 'cpu', got 'tpu'"):
        wt.GRU(3, 4, engine="tpu")


def test_panic_is_runtime_error_and_interpreter_survives():
    with pytest.raises(RuntimeError, match="panicked"):
        wgrnn._native._panic_for_test()
    cfg = wgrnn.RnnConfig("rnn_tanh", 2, 3)
    w = weights_of(torch.nn.RNN(2, 3))
    y, *_ = wgrnn.rnn_forward(cfg, w, np.zeros((2, 1, 2), np.float32))
    assert y.shape == (2, 1, 3)
