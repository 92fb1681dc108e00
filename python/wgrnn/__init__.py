"""wgrnn: fast, exact LSTM/GRU/RNN on any GPU through wgpu (Vulkan, Metal, DX12).

The low level works on numpy arrays with PyTorch's parameter names (``weight_ih_l0``,
``weight_hh_l0_reverse``, ...) and layouts (``[T, B, F]``, or ``[B, T, F]`` with
``batch_first``; states ``[L*D, B, H]``). ``wgrnn.torch`` wraps it as ``torch.nn`` modules.

Errors are Python exceptions carrying wgrnn's message: ``ValueError`` for bad shapes, lengths
and configurations, ``RuntimeError`` for device failures.
"""

import operator

import numpy as np

from . import _native
from ._native import Context, RnnConfig, RnnTape

__all__ = ["Context", "RnnConfig", "RnnTape", "rnn_forward", "rnn_backward"]

_DTYPES = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}


def _dtype_name(a):
    dt = np.asarray(a).dtype
    if dt not in _DTYPES:
        raise ValueError(f"wgrnn computes in float32 or float64, got {dt}")
    return _DTYPES[dt]


def _pack(a, dtype):
    """``(bytes, shape)`` of ``a`` as a C-contiguous array of ``dtype``; None stays None."""
    if a is None:
        return None
    a = np.ascontiguousarray(a, dtype=dtype)
    return (a.tobytes(), list(a.shape))


def _unpack(pair, dtype):
    if pair is None:
        return None
    buf, shape = pair
    return np.frombuffer(buf, dtype=dtype).reshape(shape)


def _count(n, name):
    """A non-negative integer (a Python, numpy or torch integer), else ValueError naming it."""
    try:
        value = operator.index(n)
    except TypeError:
        raise ValueError(f"rnn_forward: {name} must be integers, got {n!r}") from None
    if value < 0:
        raise ValueError(f"rnn_forward: {name} must be non-negative, got {value}")
    return value


def rnn_forward(config, weights, x, h0=None, c0=None, lengths=None, *, seed=0, train=False,
                engine="cpu", context=None):
    """Recurrent forward of ``config`` (a :class:`RnnConfig`) on numpy arrays.

    ``weights`` maps torch.nn's parameter names to arrays; ``x``'s dtype (float32 or float64)
    is the call's, and engine ``'gpu'`` takes float32 only. ``lengths`` gives each sequence's
    valid steps (packed-sequence semantics). ``train`` keeps a tape for :func:`rnn_backward`
    and applies the configured inter-layer dropout with masks drawn from ``seed``.

    Returns ``(y, h_n, c_n, tape)``; ``c_n`` is None except for LSTM, ``tape`` None unless
    ``train``.
    """
    name = _dtype_name(x)
    dt = np.float32 if name == "f32" else np.float64
    packed = {k: _pack(v, dt) for k, v in weights.items()}
    lengths = None if lengths is None else [_count(n, "lengths") for n in lengths]
    seed = _count(seed, "seed")
    if seed >= 2**64:
        raise ValueError(f"rnn_forward: seed {seed} does not fit in 64 bits")
    y, h, c, tape = _native.rnn_forward(
        config, packed, _pack(x, dt), _pack(h0, dt), _pack(c0, dt), lengths, seed,
        bool(train), engine, name, context)
    return _unpack(y, dt), _unpack(h, dt), _unpack(c, dt), tape


def rnn_backward(tape, dy=None, dh_n=None, dc_n=None):
    """Backward through a training call's ``tape``; an absent upstream gradient is zero.

    Returns ``(dx, dh0, dc0, grads)`` with ``grads`` mapping every parameter name to its
    gradient; ``dc0`` is None except for LSTM.
    """
    dt = np.float64 if tape.dtype == "f64" else np.float32
    dx, dh, dc, grads = _native.rnn_backward(tape, _pack(dy, dt), _pack(dh_n, dt), _pack(dc_n, dt))
    return (_unpack(dx, dt), _unpack(dh, dt), _unpack(dc, dt),
            {k: _unpack(v, dt) for k, v in grads.items()})

