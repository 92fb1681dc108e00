"""``wgrnn.torch.LSTM``, ``GRU`` and ``RNN``: drop-in replacements of torch.nn's layers.

Constructor arguments, defaults, parameter names and shapes are torch.nn's, so
``load_state_dict`` works both ways with ``strict=True``; ``engine='gpu'`` (the default) runs
wgrnn's wgpu engine in float32, ``engine='cpu'`` its CPU reference in the tensors' dtype
(float64 included, for ``torch.autograd.gradcheck``). Tensors must be on torch's CPU device;
they are copied to the adapter and back inside the call.
"""

import copy
import math
import numbers
import warnings

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from . import _native
from . import rnn_backward as _rnn_backward
from . import rnn_forward as _rnn_forward

__all__ = ["LSTM", "GRU", "RNN"]

# The range of the dropout seed drawn from torch's generator (any u64 is a valid seed).
_SEED_HIGH = 2**62


def _np(t):
    return None if t is None else t.detach().numpy()


def _check_tensor(t, name, engine):
    if t.device.type != "cpu":
        raise ValueError(
            f"wgrnn: {name} is on {t.device}; wgrnn takes CPU tensors and copies them to its "
            "own adapter, so move it with .cpu() first")
    if t.dtype not in (torch.float32, torch.float64):
        raise ValueError(f"wgrnn: {name} has dtype {t.dtype}; expected float32 or float64")
    if engine == "gpu" and t.dtype != torch.float32:
        raise ValueError(f"wgrnn: engine 'gpu' computes in float32 but {name} is {t.dtype}; "
                         "use engine='cpu' for float64")


class _Call(torch.autograd.Function):
    """One recurrent call with wgrnn's backward. Inputs: the call's settings, then x, h0, c0
    (None when absent) and the parameters in ``param_shapes`` order."""

    @staticmethod
    def forward(ctx, call, x, h0, c0, *params):
        weights = {name: _np(p) for name, p in zip(call["names"], params)}
        y, h_n, c_n, tape = _rnn_forward(
            call["config"], weights, _np(x), _np(h0), _np(c0), call["lengths"],
            seed=call["seed"], train=call["train"], engine=call["engine"],
            context=call["context"])
        ctx.tape, ctx.names = tape, call["names"]
        ctx.has_h0, ctx.has_c0 = h0 is not None, c0 is not None
        outs = [torch.from_numpy(y), torch.from_numpy(h_n)]
        if c_n is not None:
            outs.append(torch.from_numpy(c_n))
        return tuple(outs)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dy, dh_n, dc_n=None):
        if ctx.tape is None:
            raise RuntimeError("wgrnn: this call kept no tape for backward")
        dx, dh0, dc0, grads = _rnn_backward(ctx.tape, _np(dy), _np(dh_n), _np(dc_n))
        return (None, torch.from_numpy(dx),
                torch.from_numpy(dh0) if ctx.has_h0 else None,
                torch.from_numpy(dc0) if ctx.has_c0 else None,
                *(torch.from_numpy(grads[n]) for n in ctx.names))


def _size(value, name, minimum):
    """An int argument checked as torch.nn checks it (TypeError for a non-int, ValueError below
    `minimum`), so a bad size never reaches the extension as an overflow."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} should be of type int, got: {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be greater than zero" if minimum == 1 else
                         f"{name} should be a positive integer or zero to disable projections")
    return value


# torch.nn's mode names, by wgrnn's cell names.
_TORCH_MODES = {"lstm": "LSTM", "gru": "GRU", "rnn_tanh": "RNN_TANH", "rnn_relu": "RNN_RELU"}


class _RnnBase(nn.Module):
    def __init__(self, cell, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, reset_after=True, engine="gpu",
                 context=None, device=None, dtype=None):
        super().__init__()
        if engine not in ("gpu", "cpu"):
            raise ValueError(f"engine must be 'gpu' or 'cpu', got {engine!r}")
        if isinstance(dropout, bool) or not isinstance(dropout, numbers.Number) or \
                not 0.0 <= float(dropout) <= 1.0:
            raise ValueError("dropout should be a number in range [0, 1] representing the "
                             "probability of an element being zeroed")
        if float(dropout) == 1.0:
            # torch.nn accepts it and zeroes every inter-layer activation; wgrnn's dropout
            # takes p in [0, 1) (its scale 1/(1-p) must be finite), so say so now rather than
            # at the first training call.
            raise ValueError("wgrnn: dropout=1.0 is not supported (p must be below 1)")
        for flag, name in [(bias, "bias"), (batch_first, "batch_first")]:
            if not isinstance(flag, bool):
                raise TypeError(f"{name} should be of type bool, got: {type(flag).__name__}")
        _size(input_size, "input_size", 1)
        _size(hidden_size, "hidden_size", 1)
        _size(num_layers, "num_layers", 1)
        _size(proj_size, "proj_size", 0)
        if proj_size >= hidden_size:
            raise ValueError("proj_size has to be smaller than hidden_size")
        if dropout > 0 and num_layers == 1:
            # torch.nn's warning, word for word: code that filters it keeps working.
            warnings.warn("dropout option adds dropout after all but last recurrent layer, so "
                          "non-zero dropout expects num_layers greater than 1, but got "
                          f"dropout={dropout} and num_layers={num_layers}", stacklevel=3)
        self._cell, self.mode = cell, _TORCH_MODES[cell]
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first = bool(bias), bool(batch_first)
        self.dropout, self.bidirectional = float(dropout), bool(bidirectional)
        self.proj_size, self.reset_after = proj_size, bool(reset_after)
        self.engine, self.context = engine, context
        self._configs = {}
        shapes = self._config(0.0).param_shapes()
        self._names = [name for name, _ in shapes]
        for name, shape in shapes:
            self.register_parameter(
                name, nn.Parameter(torch.empty(shape, device=device, dtype=dtype)))
        self.reset_parameters()

    def _config(self, dropout):
        """The native config of the module's current settings with `dropout`: built on first
        use and kept, so that setting ``batch_first`` or ``dropout`` after construction takes
        effect in the next call, as it does in torch.nn."""
        key = (self.input_size, self.hidden_size, self.num_layers, self.bias, self.batch_first,
               float(dropout), self.bidirectional, self.proj_size, self.reset_after)
        if key not in self._configs:
            self._configs[key] = _native.RnnConfig(
                self._cell, self.input_size, self.hidden_size, num_layers=self.num_layers,
                bias=self.bias, batch_first=self.batch_first, dropout=float(dropout),
                bidirectional=self.bidirectional, proj_size=self.proj_size,
                reset_after=self.reset_after)
        return self._configs[key]

    def __getstate__(self):
        # The native configs and the context belong to this process: a copy or an unpickled
        # module rebuilds its configs and runs on the default context.
        state = self.__dict__.copy()
        state["_configs"], state["context"] = {}, None
        return state

    def __deepcopy__(self, memo):
        # deepcopy keeps the context (one device can serve both copies) and drops the configs.
        cls = self.__class__
        clone = cls.__new__(cls)
        memo[id(self)] = clone
        for k, v in self.__dict__.items():
            if k == "_configs":
                v = {}
            elif k != "context":
                v = copy.deepcopy(v, memo)
            clone.__dict__[k] = v
        return clone

    def reset_parameters(self):
        """U(-1/sqrt(H), 1/sqrt(H)) for every parameter, as torch.nn."""
        bound = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0.0
        with torch.no_grad():
            for name in self._names:
                getattr(self, name).uniform_(-bound, bound)

    def flatten_parameters(self):
        """Does nothing, as torch.nn's does off cuDNN: wgrnn keeps no flattened copy, so code
        written for torch.nn (which calls this after moving a model) runs unchanged."""

    @property
    def _all_weights(self):
        """The parameter names per layer and direction, as torch.nn keeps them."""
        per = len(self._names) // (self.num_layers * (2 if self.bidirectional else 1))
        return [self._names[i:i + per] for i in range(0, len(self._names), per)]

    @property
    def all_weights(self):
        """The parameters per layer and direction, as torch.nn's ``all_weights``."""
        return [[getattr(self, n) for n in names] for names in self._all_weights]

    @property
    def _flat_weights_names(self):
        return list(self._names)

    @property
    def _flat_weights(self):
        return [getattr(self, n) for n in self._names]

    def extra_repr(self):
        # torch.nn's text, then what only wgrnn has.
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        if not self.reset_after:
            s += ", reset_after=False"
        return s + f", engine={self.engine!r}"

    def _split_hx(self, hx):
        if self._cell == "lstm":
            if hx is None:
                return None, None
            if not isinstance(hx, (tuple, list)) or len(hx) != 2 or \
                    not all(isinstance(t, torch.Tensor) for t in hx):
                raise ValueError("LSTM expects hx as a tuple of two Tensors (h_0, c_0)")
            return hx[0], hx[1]
        if hx is not None and not isinstance(hx, torch.Tensor):
            raise ValueError(f"{type(self).__name__} expects hx as one Tensor")
        return hx, None

    def _run(self, x, h0, c0, lengths):
        params = [getattr(self, n) for n in self._names]
        for name, t in [("input", x), ("h_0", h0), ("c_0", c0)] + list(zip(self._names, params)):
            if t is not None:
                _check_tensor(t, name, self.engine)
        for name, t in [("h_0", h0), ("c_0", c0)] + list(zip(self._names, params)):
            if t is not None and t.dtype != x.dtype:
                raise ValueError(f"wgrnn: input is {x.dtype} but {name} is {t.dtype}")
        batch_dim = (0 if self.batch_first else 1) if x.dim() == 3 else None
        if batch_dim is not None and x.shape[batch_dim] == 0:
            return self._empty_batch(x, params)
        tensors = [x, h0, c0] + params
        grad = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)
        drop = self.training and self.dropout > 0
        # The seed comes from torch's generator, so torch.manual_seed makes runs reproducible.
        seed = int(torch.randint(0, _SEED_HIGH, (), dtype=torch.int64)) if drop else 0
        call = self._settings(self.dropout if drop else 0.0, seed, grad or drop, lengths)
        return _Call.apply(call, x, h0, c0, *params)

    def _settings(self, dropout, seed, train, lengths=None):
        """What :class:`_Call` takes besides the tensors: the native config with `dropout`,
        the parameter names, and the call's lengths, seed, mode, engine and context."""
        return dict(config=self._config(dropout), names=self._names, lengths=lengths, seed=seed,
                    train=train, engine=self.engine, context=self.context)

    def _empty_batch(self, x, params):
        """A batch of no sequences, which torch.nn answers with empty outputs: zeros of the
        right shapes, tied to the input and parameters so backward gives their (zero)
        gradients as torch.nn's does."""
        dirs = 2 if self.bidirectional else 1
        out_size = self.proj_size or self.hidden_size
        steps = x.shape[1 if self.batch_first else 0]
        y_shape = (0, steps, dirs * out_size) if self.batch_first else (steps, 0, dirs * out_size)
        tie = sum((t.sum() for t in [x] + params), x.new_zeros(())) * 0
        outs = [x.new_zeros(y_shape) + tie, x.new_zeros(self.num_layers * dirs, 0, out_size) + tie]
        if self._cell == "lstm":
            outs.append(x.new_zeros(self.num_layers * dirs, 0, self.hidden_size) + tie)
        return tuple(outs)

    def forward(self, input, hx=None):
        h0, c0 = self._split_hx(hx)
        if isinstance(input, PackedSequence):
            return self._forward_packed(input, h0, c0)
        outs = self._run(input, h0, c0, None)
        return self._result(outs)

    def _result(self, outs):
        if self._cell == "lstm":
            return outs[0], (outs[1], outs[2])
        return outs[0], outs[1]

    def _forward_packed(self, packed, h0, c0):
        # The padded batch in the caller's order; wgrnn takes the lengths unsorted.
        padded, lengths = pad_packed_sequence(packed, batch_first=self.batch_first)
        outs = self._run(padded, h0, c0, [int(n) for n in lengths])
        y = outs[0]
        # Repack in the input's own order of sequences, so sorted_indices are the input's.
        order = packed.sorted_indices
        if order is not None:
            y = y.index_select(0 if self.batch_first else 1, order)
            lengths = lengths.index_select(0, order.cpu())
        data = pack_padded_sequence(y, lengths, batch_first=self.batch_first).data
        out = PackedSequence(data, packed.batch_sizes, packed.sorted_indices,
                             packed.unsorted_indices)
        return self._result((out,) + tuple(outs[1:]))


class LSTM(_RnnBase):
    """torch.nn.LSTM on wgrnn (``proj_size`` included)."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, *, engine="gpu", context=None,
                 device=None, dtype=None):
        super().__init__("lstm", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, proj_size, True, engine, context, device, dtype)


class GRU(_RnnBase):
    """torch.nn.GRU on wgrnn; ``reset_after=False`` is the reset-before form (reset applied to
    h before ``W_hn``)."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, *, reset_after=True, engine="gpu",
                 context=None, device=None, dtype=None):
        super().__init__("gru", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, 0, reset_after, engine, context, device, dtype)


class RNN(_RnnBase):
    """torch.nn.RNN (Elman) on wgrnn, ``nonlinearity`` 'tanh' or 'relu'."""

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, *, engine="gpu",
                 context=None, device=None, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or "
                             "'relu'.")
        super().__init__(f"rnn_{nonlinearity}", input_size, hidden_size, num_layers, bias,
                         batch_first, dropout, bidirectional, 0, True, engine, context, device,
                         dtype)
        self.nonlinearity = nonlinearity
