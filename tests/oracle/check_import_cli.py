#!/usr/bin/env python3
"""Checks that the `import` example's safetensors files load into torch.nn modules.

For each OUT.safetensors written by `cargo run --release --example import -- MODEL --out OUT`,
every module's `<name>.config` metadata is turned into the matching torch.nn module
(nn.LSTM/nn.GRU/nn.RNN, nn.Embedding, nn.Linear), its tensors (prefix stripped) are loaded with
`load_state_dict(strict=True)`, and where an ONNX fixture's inputs and outputs are given beside
it (IO.safetensors), the PyTorch module is run on them and compared with onnxruntime's (2e-6).
A reverse or reset-before module has no torch.nn equivalent and is only loaded.

Usage: check_import_cli.py OUT.safetensors [IO.safetensors]
Needs: pip install torch safetensors
"""
import json, sys
import torch
from safetensors import safe_open
from safetensors.torch import load_file


def module_of(cfg):
    if cfg["module"] == "embedding":
        return torch.nn.Embedding(cfg["num_embeddings"], cfg["embedding_dim"])
    if cfg["module"] == "linear":
        return torch.nn.Linear(cfg["in_features"], cfg["out_features"], bias=cfg["bias"])
    kw = dict(num_layers=cfg["num_layers"], bidirectional=cfg["bidirectional"],
              batch_first=cfg["batch_first"], bias=cfg["bias"])
    if cfg["cell"] == "lstm":
        return torch.nn.LSTM(cfg["input_size"], cfg["hidden_size"], proj_size=cfg["proj_size"], **kw)
    if cfg["cell"] == "gru":
        return torch.nn.GRU(cfg["input_size"], cfg["hidden_size"], **kw)
    nl = "relu" if cfg["cell"] == "rnn_relu" else "tanh"
    return torch.nn.RNN(cfg["input_size"], cfg["hidden_size"], nonlinearity=nl, **kw)


def main():
    out = sys.argv[1]
    tensors = load_file(out)
    with safe_open(out, "pt") as f:
        meta = f.metadata()
    for key, text in sorted(meta.items()):
        name = key[: -len(".config")]
        cfg = json.loads(text)
        m = module_of(cfg)
        sd = {k[len(name) + 1:]: v for k, v in tensors.items() if k.startswith(name + ".")}
        m.load_state_dict(sd, strict=True)
        print(f"{name}: loaded into {type(m).__name__} ({len(sd)} tensors)")
        plain = cfg["module"] == "rnn" and not cfg["reverse"] and cfg["gru_reset"] == "after"
        if len(sys.argv) > 2 and plain:
            io = load_file(sys.argv[2])
            lens = io["lengths"].tolist()
            assert all(l == lens[0] for l in lens), "the check runs full-length cases only"
            state = None
            if "h0" in io:
                state = (io["h0"], io["c0"]) if cfg["cell"] == "lstm" else io["h0"]
            with torch.no_grad():
                y, st = m(io["x"], state)
            err = (y - io["y"]).abs().max().item()
            h = st[0] if cfg["cell"] == "lstm" else st
            err = max(err, (h - io["h_n"]).abs().max().item())
            assert err < 2e-6, f"{name}: PyTorch's outputs differ from onnxruntime's by {err}"
            print(f"{name}: torch.nn matches onnxruntime within {err:.1e}")


if __name__ == "__main__":
    main()
