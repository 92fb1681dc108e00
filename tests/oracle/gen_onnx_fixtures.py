#!/usr/bin/env python3
"""ONNX files for wgrnn's importer (`wgrnn::import::onnx`), each with onnxruntime's outputs.

Every case writes `<case>.onnx` and `<case>.safetensors`. The safetensors file holds the
inputs the ONNX model was run with and onnxruntime's outputs, in wgrnn's layouts (numpy
transposes of onnxruntime's arrays, nothing else): `x` [T, B, I] ([B, T, I] for layout=1),
`h0`, `c0` [L*D, B, H] where the model takes them, `lengths` (int64, all T without
sequence_lens), `y` [T, B, D*H] ([B, T, D*H]), `h_n`, `c_n` [L*D, B, H]. Its metadata says what
the importer must find: `expect.name`, `expect.cell`, `expect.input_size`, `expect.hidden_size`,
`expect.num_layers`, `expect.bidirectional`, `expect.batch_first`, `expect.bias`,
`expect.gru_reset`, `expect.reverse`.

Cases:
- `torch_*`: `torch.onnx.export` of nn.LSTM/nn.GRU (the dynamo exporter, and the TorchScript one
  with dynamo=False) with h0 (and c0) as inputs: one node per layer, joined by
  Transpose+Reshape (bidirectional) or Squeeze (one direction). onnxruntime's outputs are
  checked against PyTorch's own (2e-6) before they are stored.
- `lstm_external.onnx`: `torch_lstm.onnx` saved with every tensor in `lstm_external.onnx.data`
  (what the exporter does to large weights), which the importer refuses by name (no outputs).
- hand-built single nodes (onnx.helper): GRU linear_before_reset=0 and =1, RNN relu
  bidirectional, LSTM direction=reverse, all with sequence_lens; LSTM layout=1 without B or
  states (onnxruntime runs layout 0 only, so its outputs are those of the same node with layout
  0 on the transposed input); RNN tanh whose weights are in the typed float_data fields and a Constant node.

Usage: gen_onnx_fixtures.py OUT_DIR
Needs: pip install torch onnx onnxscript onnxruntime safetensors numpy
"""
import os, sys
import numpy as np
import onnx
from onnx import helper, TensorProto
import onnxruntime as ort
import torch
from safetensors.numpy import save_file

OPSET = 20


def f32(a):
    return np.ascontiguousarray(np.asarray(a, dtype=np.float32))


def run(path, feeds):
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def expect(name, cell, I, H, L, bidir, batch_first=False, bias=True, gru_reset="after", reverse=False):
    return {"expect.name": name, "expect.cell": cell, "expect.input_size": str(I),
            "expect.hidden_size": str(H), "expect.num_layers": str(L),
            "expect.bidirectional": str(bidir).lower(), "expect.batch_first": str(batch_first).lower(),
            "expect.bias": str(bias).lower(), "expect.gru_reset": gru_reset,
            "expect.reverse": str(reverse).lower()}


def save(out, case, tensors, meta):
    tensors = {k: (np.ascontiguousarray(v, dtype=np.int64) if k == "lengths" else f32(v))
               for k, v in tensors.items()}
    save_file(tensors, os.path.join(out, case + ".safetensors"), metadata=meta)


class Wrap(torch.nn.Module):
    def __init__(self, rnn):
        super().__init__()
        self.rnn = rnn

    def forward(self, x, h0, c0=None):
        return self.rnn(x, h0 if c0 is None else (h0, c0))


def torch_case(out, rng, case, kind, I, H, L, bidir, dynamo=True, external=False, T=5, B=3):
    torch.manual_seed(int(rng.integers(1 << 31)))
    rnn = getattr(torch.nn, kind)(I, H, num_layers=L, bidirectional=bidir).eval()
    D = 2 if bidir else 1
    x = torch.randn(T, B, I)
    h0 = torch.randn(L * D, B, H) * 0.5
    args = (x, h0)
    names = ["x", "h0"]
    outs = ["y", "h_n"]
    if kind == "LSTM":
        args = args + (torch.randn(L * D, B, H) * 0.5,)
        names.append("c0")
        outs.append("c_n")
    path = os.path.join(out, case + ".onnx")
    kwargs = {"external_data": external} if dynamo else {}
    torch.onnx.export(Wrap(rnn), args, path, input_names=names, output_names=outs,
                      dynamo=dynamo, opset_version=OPSET, **kwargs)
    feeds = {n: a.numpy() for n, a in zip(names, args)}
    got = run(path, feeds)
    with torch.no_grad():
        y, st = rnn(*args[:1], args[1] if kind != "LSTM" else (args[1], args[2]))
    want = [y] + (list(st) if kind == "LSTM" else [st])
    for n, g, w in zip(outs, got, want):
        err = np.abs(g - w.numpy()).max()
        assert err < 2e-6, f"{case}: onnxruntime's {n} differs from PyTorch's by {err}"
    tensors = dict(feeds)
    tensors.update(dict(zip(outs, got)))
    tensors["lengths"] = np.full(B, T)
    save(out, case, tensors, expect("rnn", kind.lower(), I, H, L, bidir))


def external_case(out, source, case):
    model = onnx.load(os.path.join(out, source + ".onnx"))
    onnx.save(model, os.path.join(out, case + ".onnx"), save_as_external_data=True,
              all_tensors_to_one_file=True, location=case + ".onnx.data", size_threshold=0)


def weights(rng, D, G, H, I):
    s = 0.6 / np.sqrt(H)
    return (f32(rng.uniform(-s, s, (D, G * H, I))), f32(rng.uniform(-s, s, (D, G * H, H))),
            f32(rng.uniform(-s, s, (D, 2 * G * H))))


def seq_major(Y):
    # ONNX Y [T, D, B, H] -> wgrnn y [T, B, D*H]
    T, D, B, H = Y.shape
    return Y.transpose(0, 2, 1, 3).reshape(T, B, D * H)


def node_case(out, rng, case, op, I, H, attrs, D=1, lengths=None, T=5, B=3, states=True,
              bias=True, typed=False, layout=0, meta=None):
    """One recurrent node with its weights as initializers (or, with `typed`, W as a Constant
    node and every weight in float_data), run by onnxruntime."""
    G = {"LSTM": 4, "GRU": 3, "RNN": 1}[op]
    W, R, Bb = weights(rng, D, G, H, I)
    x = f32(rng.standard_normal((B, T, I) if layout else (T, B, I)))
    lens = np.array(lengths if lengths is not None else [T] * B, dtype=np.int32)
    h0 = f32(rng.standard_normal((D, B, H)) * 0.5)
    c0 = f32(rng.standard_normal((D, B, H)) * 0.5)
    inits = [helper.make_tensor("R", TensorProto.FLOAT, R.shape, R.flatten() if typed else R.tobytes(), raw=not typed)]
    nodes = []
    if typed:
        nodes.append(helper.make_node("Constant", [], ["W"], name="w_const",
                                      value=helper.make_tensor("Wc", TensorProto.FLOAT, W.shape, W.flatten())))
    else:
        inits.append(helper.make_tensor("W", TensorProto.FLOAT, W.shape, W.tobytes(), raw=True))
    if bias:
        inits.append(helper.make_tensor("B", TensorProto.FLOAT, Bb.shape, Bb.flatten() if typed else Bb.tobytes(), raw=not typed))
    xshape = list(x.shape)
    ins = [helper.make_tensor_value_info("x", TensorProto.FLOAT, xshape)]
    feeds = {"x": x}
    node_in = ["x", "W", "R", "B" if bias else ""]
    if lengths is not None:
        ins.append(helper.make_tensor_value_info("sequence_lens", TensorProto.INT32, [B]))
        feeds["sequence_lens"] = lens
        node_in.append("sequence_lens")
    else:
        node_in.append("")
    if states:
        ins.append(helper.make_tensor_value_info("h0", TensorProto.FLOAT, [D, B, H]))
        feeds["h0"] = h0
        node_in.append("h0")
        if op == "LSTM":
            ins.append(helper.make_tensor_value_info("c0", TensorProto.FLOAT, [D, B, H]))
            feeds["c0"] = c0
            node_in.append("c0")
    outs_names = ["Y", "Y_h"] + (["Y_c"] if op == "LSTM" else [])
    nodes.append(helper.make_node(op, node_in, outs_names, name=case, hidden_size=H, **attrs))
    ydims = [B, T, D, H] if layout else [T, D, B, H]
    sdims = [B, D, H] if layout else [D, B, H]
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ydims if n == "Y" else sdims)
            for n in outs_names]
    graph = helper.make_graph(nodes, case, ins, outs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 10
    onnx.checker.check_model(model)
    path = os.path.join(out, case + ".onnx")
    onnx.save(model, path)
    if layout:
        # onnxruntime runs layout 0 only: its oracle is the same node with layout 0 on the
        # transposed input (the states are not given in this case).
        node = model.graph.node[-1]
        for a in node.attribute:
            if a.name == "layout":
                a.i = 0
        model.graph.input[0].CopyFrom(helper.make_tensor_value_info("x", TensorProto.FLOAT, [T, B, I]))
        model.graph.output[0].CopyFrom(helper.make_tensor_value_info("Y", TensorProto.FLOAT, [T, D, B, H]))
        for o in model.graph.output[1:]:
            o.CopyFrom(helper.make_tensor_value_info(o.name, TensorProto.FLOAT, [D, B, H]))
        seq = os.path.join(out, case + ".layout0.tmp.onnx")
        onnx.save(model, seq)
        got = run(seq, dict(feeds, x=np.ascontiguousarray(x.transpose(1, 0, 2))))
        os.remove(seq)
        # Back to layout 1's shapes: Y [B, T, D, H], states [B, D, H].
        got = [got[0].transpose(2, 0, 1, 3)] + [s.transpose(1, 0, 2) for s in got[1:]]
    else:
        got = run(path, feeds)
    if layout:
        # Y [B, T, D, H] -> [B, T, D*H]; Y_h, Y_c [B, D, H] -> [D, B, H]
        y = got[0].reshape(B, T, D * H)
        states_out = [s.transpose(1, 0, 2) for s in got[1:]]
    else:
        y = seq_major(got[0])
        states_out = got[1:]
    tensors = {"x": x, "y": y, "h_n": states_out[0], "lengths": lens.astype(np.int64)}
    if op == "LSTM":
        tensors["c_n"] = states_out[1]
    if states:
        tensors["h0"] = h0
        if op == "LSTM":
            tensors["c0"] = c0
    save(out, case, tensors, meta)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(20)
    torch_case(out, rng, "torch_lstm", "LSTM", 3, 4, 1, False)
    torch_case(out, rng, "torch_lstm_2layer_bidir", "LSTM", 3, 4, 2, True)
    torch_case(out, rng, "torch_gru_2layer", "GRU", 3, 5, 2, False)
    torch_case(out, rng, "torch_gru_bidir", "GRU", 4, 3, 1, True)
    external_case(out, "torch_lstm", "lstm_external")
    torch_case(out, rng, "torchscript_lstm_2layer", "LSTM", 3, 4, 2, False, dynamo=False)
    torch_case(out, rng, "torchscript_gru_2layer_bidir", "GRU", 2, 3, 2, True, dynamo=False)
    lens = [5, 3, 1]
    node_case(out, rng, "gru_reset_before", "GRU", 3, 4, {"linear_before_reset": 0}, lengths=lens,
              meta=expect("gru_reset_before", "gru", 3, 4, 1, False, gru_reset="before"))
    node_case(out, rng, "gru_reset_after", "GRU", 3, 4, {"linear_before_reset": 1}, lengths=lens,
              meta=expect("gru_reset_after", "gru", 3, 4, 1, False))
    node_case(out, rng, "rnn_relu_bidir", "RNN", 3, 4,
              {"activations": ["Relu", "Relu"], "direction": "bidirectional"}, D=2, lengths=lens,
              meta=expect("rnn_relu_bidir", "rnn_relu", 3, 4, 1, True))
    node_case(out, rng, "lstm_reverse", "LSTM", 3, 4, {"direction": "reverse"}, lengths=lens,
              meta=expect("lstm_reverse", "lstm", 3, 4, 1, False, reverse=True))
    node_case(out, rng, "lstm_layout1_nobias", "LSTM", 3, 4, {"layout": 1}, states=False,
              bias=False, layout=1,
              meta=expect("lstm_layout1_nobias", "lstm", 3, 4, 1, False, batch_first=True, bias=False))
    node_case(out, rng, "rnn_tanh_typed", "RNN", 2, 3, {}, typed=True,
              meta=expect("rnn_tanh_typed", "rnn_tanh", 2, 3, 1, False))


if __name__ == "__main__":
    main()
