"""The import example's files in PyTorch: `cargo run --example import -- MODEL --out OUT`
writes an ONNX or Keras model's layers under PyTorch names with each module's config in the
metadata; here each file is read with safetensors.torch, every module is built from its config
as a torch.nn module (where torch.nn has the form) and as a wgrnn.torch one, loaded with
strict=True, and run on the fixture's inputs against what onnxruntime or Keras computed."""

import json
import os
import subprocess

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import wgrnn.torch as wt
from tolerance import OUT_ABS, compare

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
ONNX = os.path.join(REPO, "tests", "fixtures", "onnx")
KERAS = os.path.join(REPO, "tests", "fixtures", "keras_models")
# The files that are meant to be refused (tests/import_errors.rs checks how).
REFUSED = {"lstm_external.onnx", "hostile_huge_dims.keras", "hostile_int_kernel.keras",
           "hostile_missing_var.keras", "hostile_chunked_kernel.keras",
           "hostile_unwritten_kernel.keras", "hostile_shared_vars.keras"}
# The first run builds the example (debug) if the Rust suite has not.
CLI_TIMEOUT_S = 1800
MODELS = sorted(f for d in (ONNX, KERAS) for f in os.listdir(d)
                if f.endswith((".onnx", ".keras")) and f not in REFUSED)
# The models with a reset-before GRU, which torch.nn lacks: wgrnn.torch runs them alone.
RESET_BEFORE = {"gru_reset_before.onnx", "stacked_gru_before.keras"}


def cases(ext):
    return [(m, flavour) for m in MODELS if m.endswith(ext) for flavour in ("torch", "wgrnn")
            if not (flavour == "torch" and m in RESET_BEFORE)]


def export(model, tmp_path):
    """The example's file for `model`: its tensors and {module name: config}."""
    out = tmp_path / "out.safetensors"
    run = subprocess.run(["cargo", "run", "--quiet", "--example", "import", "--", model, "--out",
                          str(out)], cwd=REPO, capture_output=True, text=True,
                         timeout=CLI_TIMEOUT_S)
    assert run.returncode == 0, run.stdout + run.stderr
    with safe_open(str(out), "pt") as f:
        meta = f.metadata()
    configs = {k[: -len(".config")]: json.loads(v) for k, v in meta.items()
               if k.endswith(".config")}
    return load_file(str(out)), configs


def build(cfg, flavour):
    """The module of `cfg` as torch.nn ("torch") or as wgrnn.torch on the GPU ("wgrnn")."""
    if cfg["module"] == "embedding":
        return torch.nn.Embedding(cfg["num_embeddings"], cfg["embedding_dim"])
    if cfg["module"] == "linear":
        return torch.nn.Linear(cfg["in_features"], cfg["out_features"], bias=cfg["bias"])
    kw = dict(num_layers=cfg["num_layers"], bidirectional=cfg["bidirectional"],
              batch_first=cfg["batch_first"], bias=cfg["bias"])
    lib = torch.nn if flavour == "torch" else wt
    extra = {} if flavour == "torch" else dict(engine="gpu")
    if cfg["cell"] == "lstm":
        return lib.LSTM(cfg["input_size"], cfg["hidden_size"], proj_size=cfg["proj_size"],
                        **kw, **extra)
    if cfg["cell"] == "gru":
        if cfg["gru_reset"] == "before":
            assert flavour == "wgrnn", "torch.nn has no reset-before GRU"
            extra["reset_after"] = False
        return lib.GRU(cfg["input_size"], cfg["hidden_size"], **kw, **extra)
    nonlinearity = "relu" if cfg["cell"] == "rnn_relu" else "tanh"
    return lib.RNN(cfg["input_size"], cfg["hidden_size"], nonlinearity=nonlinearity, **kw,
                   **extra)


def reverse_each(x, lengths, batch_first):
    """Each sequence's valid steps in reverse order (padding stays in place): what runs a
    forward layer as ONNX's direction=reverse."""
    out = x.clone()
    for b, n in enumerate(lengths):
        if batch_first:
            out[b, :n] = x[b, :n].flip(0)
        else:
            out[:n, b] = x[:n, b].flip(0)
    return out


def run_rnn(m, cfg, x, lengths, state):
    """(y padded with zeros past each length, h_n, c_n or None) of `m` on `x`."""
    batch_first = cfg["batch_first"]
    steps = x.shape[1 if batch_first else 0]
    if cfg["reverse"]:
        x = reverse_each(x, lengths, batch_first)
    packed = lengths is not None and any(n != steps for n in lengths)
    inp = pack_padded_sequence(x, torch.tensor(lengths), batch_first=batch_first,
                               enforce_sorted=False) if packed else x
    y, hx = m(inp, state)
    if packed:
        y, _ = pad_packed_sequence(y, batch_first=batch_first, total_length=steps)
    if cfg["reverse"]:
        y = reverse_each(y, lengths, batch_first)
    h, c = hx if isinstance(hx, tuple) else (hx, None)
    return y, h, c


def modules_of(model, tensors, configs, flavour):
    forms = {cfg.get("gru_reset") for cfg in configs.values()}
    assert ("before" in forms) == (model in RESET_BEFORE), (model, forms)
    built = {}
    for name, cfg in configs.items():
        m = build(cfg, flavour)
        sd = {k[len(name) + 1:]: v for k, v in tensors.items() if k.startswith(name + ".")}
        m.load_state_dict(sd, strict=True)
        built[name] = m.eval()
    return built


@pytest.mark.parametrize("model,flavour", cases(".onnx"))
def test_onnx_export_runs_as_onnxruntime(tmp_path, model, flavour):
    tensors, configs = export(os.path.join(ONNX, model), tmp_path)
    assert len(configs) == 1, configs
    (name, cfg), = configs.items()
    built = modules_of(model, tensors, configs, flavour)
    io = load_file(os.path.join(ONNX, model.replace(".onnx", ".safetensors")))
    lengths = io["lengths"].tolist() if "lengths" in io else None
    state = None
    if "h0" in io:
        state = (io["h0"], io["c0"]) if cfg["cell"] == "lstm" else io["h0"]
    with torch.no_grad():
        y, h, c = run_rnn(built[name], cfg, io["x"], lengths, state)
    where = f"{model} via {flavour}"
    compare(f"{where}: y", y, io["y"], abs_=OUT_ABS, group=f"import {flavour}")
    compare(f"{where}: h_n", h, io["h_n"], abs_=OUT_ABS, group=f"import {flavour}")
    if "c_n" in io:
        compare(f"{where}: c_n", c, io["c_n"], abs_=OUT_ABS, group=f"import {flavour}")


ACTIVATIONS = {"linear": lambda t: t, "sigmoid": torch.sigmoid, "tanh": torch.tanh,
               "relu": torch.relu, "softmax": lambda t: torch.softmax(t, -1)}


@pytest.mark.parametrize("model,flavour", cases(".keras"))
def test_keras_export_runs_as_keras(tmp_path, model, flavour):
    """The modules in file order, as the Keras model chains them: an embedding's zero ids mark
    the padding (Keras's mask_zero), a recurrent module gives its sequence or its top layer's
    final states (forward then backward), a dense layer applies its activation."""
    tensors, configs = export(os.path.join(KERAS, model), tmp_path)
    built = modules_of(model, tensors, configs, flavour)
    fixture = os.path.join(KERAS, model.replace(".keras", ".safetensors"))
    io = load_file(fixture)
    with safe_open(fixture, "pt") as f:
        # The Keras model's layer order, which the file's metadata (a map) does not keep.
        order = [entry.split(":")[1] for entry in f.metadata()["expect.modules"].split(",")]
    assert sorted(order) == sorted(configs), (order, list(configs))
    value, lengths = io["ids"] if "ids" in io else io["x"], None
    with torch.no_grad():
        for name in order:
            cfg = configs[name]
            m = built[name]
            if cfg["module"] == "embedding":
                assert cfg["mask_zero"]
                lengths = (value != 0).sum(1).tolist()
                value = m(value)
            elif cfg["module"] == "linear":
                value = ACTIVATIONS[cfg["activation"]](m(value))
            else:
                y, h, _ = run_rnn(m, cfg, value, lengths, None)
                dirs = 2 if cfg["bidirectional"] else 1
                value = y if cfg["return_sequences"] else torch.cat(list(h[-dirs:]), -1)
    compare(f"{model} via {flavour}", value, io["out"], abs_=OUT_ABS, group=f"import {flavour}")
