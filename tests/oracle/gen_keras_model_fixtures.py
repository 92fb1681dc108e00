#!/usr/bin/env python3
"""Keras 3 `.keras` files for wgrnn's importer (`wgrnn::import::keras`), each with Keras's
outputs.

Every case writes `<case>.keras` (model.save) and `<case>.safetensors` with the model's input
(`ids`, int64 [B, T], or `x`, float32 [B, T, I]) and Keras's output `out` (model.predict on
JAX, float32). Its metadata `expect.modules` lists the modules the importer must find, in order,
as `kind:name` (kind: embedding, rnn, linear) joined by commas, and `expect.rnn.<name>` each
recurrent module's `cell,num_layers,bidirectional,gru_reset,bias,return_sequences`.

Cases:
- `embed_bilstm_dense`: Embedding(mask_zero=True) -> Bidirectional(LSTM) -> Dense; ids with
  trailing zeros (lengths 7, 4, 2), so the mask is lengths.
- `stacked_gru_before`: GRU(reset_after=False, return_sequences=True) twice: one module of two
  layers in the reset-before form.
- `simple_rnn_dense`: SimpleRNN(relu, return_sequences=True) -> SimpleRNN(tanh) ->
  Dense(sigmoid): two modules, as the cells differ.
- `bigru_after_stacked`: Bidirectional(GRU(reset_after=True, return_sequences=True)) twice:
  one bidirectional module of two layers.
- `lstm_nobias`: LSTM(use_bias=False, return_sequences=True).
- `renamed_lstms`: LSTM(4, name="lstm_1", return_sequences=True) -> Dropout ->
  LSTM(4, name="lstm", return_sequences=True) -> Dense(3, name="encoder"). Keras stores a
  layer's variables by class and position (`layers/lstm`, `layers/lstm_1`, `layers/dense`),
  never by name, so reading by name would swap the two same-shaped LSTMs.
- `functional_shifted_names`: a Functional model made after five other LSTMs in the session,
  so its unnamed LSTM(4, return_sequences=True) layers are auto-named `lstm_5` and `lstm_6`
  (stored at `layers/lstm` and `layers/lstm_1`), then Dense(2, name="head"): three modules.
- `hostile_*.keras` (no outputs): `lstm_nobias.keras` with its kernel `layers/lstm/cell/vars/0`
  replaced in model.weights.h5 (h5py): `hostile_huge_dims` a chunked float32 dataset of
  shape (2**40, 16) whose data was never written, `hostile_int_kernel` an int32 dataset,
  `hostile_missing_var` none at all, `hostile_chunked_kernel` the kernel's own values as a
  chunked gzip dataset, `hostile_unwritten_kernel` a contiguous (4096, 16) float32 dataset
  never written (256 KiB of fill values from a file of a few KiB). The importer must refuse
  each by name without allocating the huge one (`hostile` remakes them from the committed
  `lstm_nobias.keras`). `hostile_shared_vars` holds LSTM(256) variables of zeros (1 MiB)
  at `layers/lstm` and, by hard links, at `layers/lstm_1` .. `layers/lstm_7`: a config of
  eight such layers decodes eight copies.

Usage: gen_keras_model_fixtures.py OUT_DIR [CASE...]  (only the named cases when given; the
renamed_lstms and functional_shifted_names cases draw from their own seeds, so they can be
remade alone)
Needs: pip install keras jax safetensors numpy  (KERAS_BACKEND=jax is set here)
"""
import io, os, sys, zipfile

os.environ["KERAS_BACKEND"] = "jax"
import numpy as np
import keras
from keras import layers
from safetensors.numpy import save_file
import h5py

T, B = 7, 3


def rnn_meta(name, cell, L, bidir, reset="after", bias=True, seqs=True):
    return {f"expect.rnn.{name}": f"{cell},{L},{str(bidir).lower()},{reset},{str(bias).lower()},{str(seqs).lower()}"}


def save(out, case, model, inputs, modules, meta):
    model.save(os.path.join(out, case + ".keras"))
    (name, x), = inputs.items()
    y = model.predict(x, verbose=0)
    tensors = {name: x.astype(np.int64) if name == "ids" else x.astype(np.float32),
               "out": np.asarray(y, dtype=np.float32)}
    meta = dict(meta, **{"expect.modules": ",".join(modules)})
    save_file(tensors, os.path.join(out, case + ".safetensors"), metadata=meta)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    only = set(sys.argv[2:])
    if only:
        for case in sorted(only):
            ALONE[case](out)
        return
    keras.utils.set_random_seed(20)
    rng = np.random.default_rng(20)

    ids = rng.integers(1, 20, (B, T))
    for b, n in enumerate([7, 4, 2]):
        ids[b, n:] = 0
    m = keras.Sequential([
        keras.Input((T,), dtype="int32"),
        layers.Embedding(20, 6, mask_zero=True, name="embedding"),
        layers.Bidirectional(layers.LSTM(5), name="bidirectional"),
        layers.Dense(3, name="dense"),
    ])
    save(out, "embed_bilstm_dense", m, {"ids": ids},
         ["embedding:embedding", "rnn:bidirectional", "linear:dense"],
         rnn_meta("bidirectional", "lstm", 1, True, seqs=False))

    x = rng.standard_normal((B, T, 4)).astype(np.float32)
    m = keras.Sequential([
        keras.Input((T, 4)),
        layers.GRU(5, return_sequences=True, reset_after=False, name="gru"),
        layers.GRU(5, return_sequences=True, reset_after=False, name="gru_1"),
    ])
    save(out, "stacked_gru_before", m, {"x": x}, ["rnn:gru"],
         rnn_meta("gru", "gru", 2, False, reset="before"))

    x = rng.standard_normal((B, T, 3)).astype(np.float32)
    m = keras.Sequential([
        keras.Input((T, 3)),
        layers.SimpleRNN(4, activation="relu", return_sequences=True, name="simple_rnn"),
        layers.SimpleRNN(4, name="simple_rnn_1"),
        layers.Dense(2, activation="sigmoid", name="dense"),
    ])
    save(out, "simple_rnn_dense", m, {"x": x},
         ["rnn:simple_rnn", "rnn:simple_rnn_1", "linear:dense"],
         dict(rnn_meta("simple_rnn", "rnn_relu", 1, False),
              **rnn_meta("simple_rnn_1", "rnn_tanh", 1, False, seqs=False)))

    x = rng.standard_normal((B, T, 3)).astype(np.float32)
    m = keras.Sequential([
        keras.Input((T, 3)),
        layers.Bidirectional(layers.GRU(4, return_sequences=True), name="bidirectional"),
        layers.Bidirectional(layers.GRU(4, return_sequences=True), name="bidirectional_1"),
    ])
    save(out, "bigru_after_stacked", m, {"x": x}, ["rnn:bidirectional"],
         rnn_meta("bidirectional", "gru", 2, True))

    x = rng.standard_normal((B, T, 3)).astype(np.float32)
    m = keras.Sequential([
        keras.Input((T, 3)),
        layers.LSTM(4, use_bias=False, return_sequences=True, name="lstm"),
    ])
    save(out, "lstm_nobias", m, {"x": x}, ["rnn:lstm"],
         rnn_meta("lstm", "lstm", 1, False, bias=False))
    hostile_cases(out)
    renamed_lstms(out)
    functional_shifted_names(out)


def renamed_lstms(out):
    keras.backend.clear_session()
    keras.utils.set_random_seed(21)
    rng = np.random.default_rng(21)
    x = rng.standard_normal((B, T, 4)).astype(np.float32)
    m = keras.Sequential([
        keras.Input((T, 4)),
        layers.LSTM(4, return_sequences=True, name="lstm_1"),
        layers.Dropout(0.5),
        layers.LSTM(4, return_sequences=True, name="lstm"),
        layers.Dense(3, name="encoder"),
    ])
    save(out, "renamed_lstms", m, {"x": x}, ["rnn:lstm_1", "linear:encoder"],
         rnn_meta("lstm_1", "lstm", 2, False))


def functional_shifted_names(out):
    keras.backend.clear_session()
    keras.utils.set_random_seed(22)
    rng = np.random.default_rng(22)
    for _ in range(5):
        layers.LSTM(2)  # takes the names lstm .. lstm_4
    x = rng.standard_normal((B, T, 3)).astype(np.float32)
    inp = keras.Input((T, 3))
    a = layers.LSTM(4, return_sequences=True)
    b = layers.LSTM(4, return_sequences=True)
    assert (a.name, b.name) == ("lstm_5", "lstm_6"), (a.name, b.name)
    y = layers.Dense(2, name="head")(b(a(inp)))
    m = keras.Model(inp, y)
    save(out, "functional_shifted_names", m, {"x": x},
         ["rnn:lstm_5", "rnn:lstm_6", "linear:head"],
         dict(rnn_meta("lstm_5", "lstm", 1, False), **rnn_meta("lstm_6", "lstm", 1, False)))


def hostile(out, source, case, edit):
    """`source`.keras with model.weights.h5 edited by `edit(h5py.File)`, re-zipped (deflated)."""
    with zipfile.ZipFile(os.path.join(out, source + ".keras")) as z:
        members = {n: z.read(n) for n in z.namelist()}
    buf = io.BytesIO(members["model.weights.h5"])
    with h5py.File(buf, "r+") as f:
        edit(f)
    members["model.weights.h5"] = buf.getvalue()
    with zipfile.ZipFile(os.path.join(out, case + ".keras"), "w", zipfile.ZIP_DEFLATED) as z:
        for n, b in members.items():
            z.writestr(n, b)


def hostile_cases(out):
    var = "layers/lstm/cell/vars/0"

    def huge(f):
        del f[var]
        f.create_dataset(var, shape=(2 ** 40, 16), dtype="float32", chunks=(1, 16))

    def ints(f):
        del f[var]
        f.create_dataset(var, data=np.zeros((3, 16), dtype=np.int32))

    def missing(f):
        del f[var]

    def chunked(f):
        data = f[var][()]
        del f[var]
        f.create_dataset(var, data=data, chunks=(1, 16), compression="gzip")

    def unwritten(f):
        del f[var]
        f.create_dataset(var, shape=(4096, 16), dtype="float32")

    def shared(f):
        # LSTM(256) variables of zeros (1 MiB), reached as layers/lstm .. layers/lstm_7 by
        # hard links: eight config layers decode eight copies from one file.
        del f[var]
        del f["layers/lstm/cell/vars/1"]
        f.create_dataset(var, data=np.zeros((3, 1024), dtype=np.float32))
        f.create_dataset("layers/lstm/cell/vars/1", data=np.zeros((256, 1024), dtype=np.float32))
        for k in range(1, 8):
            f[f"layers/lstm_{k}"] = f["layers/lstm"]

    hostile(out, "lstm_nobias", "hostile_shared_vars", shared)
    hostile(out, "lstm_nobias", "hostile_chunked_kernel", chunked)
    hostile(out, "lstm_nobias", "hostile_unwritten_kernel", unwritten)
    hostile(out, "lstm_nobias", "hostile_huge_dims", huge)
    hostile(out, "lstm_nobias", "hostile_int_kernel", ints)
    hostile(out, "lstm_nobias", "hostile_missing_var", missing)


ALONE = {"renamed_lstms": renamed_lstms, "functional_shifted_names": functional_shifted_names,
         "hostile": hostile_cases}


if __name__ == "__main__":
    main()
