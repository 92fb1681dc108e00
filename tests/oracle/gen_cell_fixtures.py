#!/usr/bin/env python3
"""State dicts of PyTorch's single-step cells (nn.LSTMCell, nn.GRUCell, nn.RNNCell), saved as a
PyTorch user saves them, and each cell's outputs over a short sequence, to test that wgrnn loads
the cell names (`weight_ih`, `weight_hh`, `bias_ih`, `bias_hh`, no `_l0`) into a one-layer
unidirectional RnnConfig and computes what the cell computes.

Per case two files in OUT_DIR:
- <case>.safetensors: exactly `safetensors.torch.save_file(cell.state_dict(), path)` (f32).
- <case>_io.safetensors: x [T, B, I], h0 [1, B, H] (c0 for lstm), y [T, B, H] (the cell's h at
  every step), h_n [1, B, H] (c_n), f32, run in float64 on a copy of the saved f32 weights; the
  header's metadata gives cell, input_size, hidden_size, bias.

Usage: gen_cell_fixtures.py OUT_DIR [SEED]
Needs: pip install torch safetensors numpy
"""
import os, sys
import torch
from safetensors.torch import save_file

# (case, module class, cell name in wgrnn, constructor kwargs)
CASES = [
    ("lstm_cell", torch.nn.LSTMCell, "lstm", {}),
    ("lstm_cell_nobias", torch.nn.LSTMCell, "lstm", {"bias": False}),
    ("gru_cell", torch.nn.GRUCell, "gru", {}),
    ("rnn_tanh_cell", torch.nn.RNNCell, "rnn_tanh", {}),
    ("rnn_relu_cell", torch.nn.RNNCell, "rnn_relu", {"nonlinearity": "relu"}),
]
T, B, I, H = 3, 2, 3, 4


def run(cell, is_lstm, x, h0, c0):
    """The cell stepped over x: y[t] = h after step t, and the final state(s)."""
    h, c, ys = h0, c0, []
    for t in range(x.shape[0]):
        if is_lstm:
            h, c = cell(x[t], (h, c))
        else:
            h = cell(x[t], h)
        ys.append(h)
    return torch.stack(ys), h, c


def case(out, name, cls, cell_name, kwargs):
    cell = cls(I, H, **kwargs)  # PyTorch's own init: U(-1/sqrt(H), 1/sqrt(H))
    save_file(cell.state_dict(), os.path.join(out, f"{name}.safetensors"))
    ref = cls(I, H, **kwargs).double()
    ref.load_state_dict({k: v.double() for k, v in cell.state_dict().items()})
    is_lstm = cls is torch.nn.LSTMCell
    x = torch.randn(T, B, I, dtype=torch.float64)
    h0 = 0.5 * torch.randn(B, H, dtype=torch.float64)
    c0 = 0.5 * torch.randn(B, H, dtype=torch.float64) if is_lstm else None
    with torch.no_grad():
        y, h_n, c_n = run(ref, is_lstm, x, h0, c0)
    io = {"x": x, "h0": h0[None], "y": y, "h_n": h_n[None]}
    if is_lstm:
        io.update({"c0": c0[None], "c_n": c_n[None]})
    meta = {"cell": cell_name, "input_size": str(I), "hidden_size": str(H),
            "bias": "true" if kwargs.get("bias", True) else "false"}
    io = {k: v.float().contiguous() for k, v in io.items()}
    save_file(io, os.path.join(out, f"{name}_io.safetensors"), metadata=meta)


def main():
    out = sys.argv[1]
    torch.manual_seed(int(sys.argv[2]) if len(sys.argv) > 2 else 0)
    os.makedirs(out, exist_ok=True)
    for name, cls, cell_name, kwargs in CASES:
        case(out, name, cls, cell_name, kwargs)
        print(name)


if __name__ == "__main__":
    main()
