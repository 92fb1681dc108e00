"""wgrnn's numpy level: Context, rnn_forward/rnn_backward, errors as exceptions."""

import os

import numpy as np
import pytest
import torch

import wgrnn
import wgrnn.torch as wt


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
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(y, yt.detach().numpy(), atol=tol)
    np.testing.assert_allclose(h, ht.detach().numpy(), atol=tol)
    dy = np.ones_like(y)
    dx, dh0, dc0, grads = wgrnn.rnn_backward(tape, dy=dy)
    gx, *gp = torch.autograd.grad(yt, [xt] + list(ref.parameters()), torch.ones_like(yt))
    np.testing.assert_allclose(dx, gx.numpy(), atol=10 * tol)
    for (name, _), g in zip(ref.named_parameters(), gp):
        np.testing.assert_allclose(grads[name], g.numpy(), atol=10 * tol, err_msg=name)
    assert dc0 is None and dh0.shape == (2, 2, 4)


def test_bad_shape_is_value_error_with_wgrnn_message():
    cfg = wgrnn.RnnConfig("lstm", 3, 4)
    w = weights_of(torch.nn.LSTM(3, 4))
    with pytest.raises(ValueError, match="rnn"):
        wgrnn.rnn_forward(cfg, w, np.zeros((5, 2, 7), np.float32))


def test_bad_config_and_missing_weight_are_value_errors():
    with pytest.raises(ValueError):
        wgrnn.RnnConfig("lstm", 3, 0)
    with pytest.raises(ValueError):
        wgrnn.RnnConfig("lstm", 3, 4, proj_size=4)
    with pytest.raises(ValueError):
        wgrnn.RnnConfig("conv", 3, 4)
    w = weights_of(torch.nn.LSTM(3, 4))
    del w["bias_hh_l0"]
    with pytest.raises(ValueError, match="bias_hh_l0"):
        wgrnn.rnn_forward(wgrnn.RnnConfig("lstm", 3, 4), w, np.zeros((5, 2, 3), np.float32))


def test_bad_lengths_and_engine_are_value_errors():
    cfg = wgrnn.RnnConfig("gru", 3, 4)
    w = weights_of(torch.nn.GRU(3, 4))
    x = np.zeros((5, 2, 3), np.float32)
    with pytest.raises(ValueError):
        wgrnn.rnn_forward(cfg, w, x, lengths=[6, 1])
    with pytest.raises(ValueError, match="engine"):
        wgrnn.rnn_forward(cfg, w, x, engine="tpu")
    with pytest.raises(ValueError, match="float64"):
        wgrnn.rnn_forward(cfg, {k: v.astype(np.float64) for k, v in w.items()},
                          x.astype(np.float64), engine="gpu")


def test_module_errors_are_value_errors():
    m = wt.LSTM(3, 4, engine="gpu")
    with pytest.raises(ValueError):
        m(torch.zeros(5, 2, 6))
    with pytest.raises(ValueError, match="float32"):
        wt.LSTM(3, 4, engine="gpu", dtype=torch.float64)(torch.zeros(5, 2, 3, dtype=torch.float64))
    with pytest.raises(ValueError):
        wt.RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError):
        wt.GRU(3, 4, engine="tpu")


def test_panic_is_runtime_error_and_interpreter_survives():
    with pytest.raises(RuntimeError, match="panicked"):
        wgrnn._native._panic_for_test()
    cfg = wgrnn.RnnConfig("rnn_tanh", 2, 3)
    w = weights_of(torch.nn.RNN(2, 3))
    y, *_ = wgrnn.rnn_forward(cfg, w, np.zeros((2, 1, 2), np.float32))
    assert y.shape == (2, 1, 3)
