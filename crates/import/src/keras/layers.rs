//! Keras layers (their `config.json` entries and their variables) as PyTorch-named weights.

use serde_json::Value;

use super::store::{Store, Var};
use crate::convert::{GRU_FROM_ZRH, reorder_gates, transpose};
use crate::{EmbeddingModule, Layer, LinearModule, Source, host_tensor};
use wgrnn_core::{
    CellKind, EmbeddingConfig, EmbeddingWeights, GruReset, LinearConfig, LinearWeights,
    LoadOptions, Result, TensorMap,
};

/// One layer of the model as read, before stacked recurrent layers are joined.
#[derive(Debug)]
pub(crate) enum Parsed {
    /// A layer with nothing to import (an input, a dropout).
    Skip,
    Module(String, Layer),
    Rnn(RnnLayer),
}

/// One Keras recurrent layer (both directions of a `Bidirectional`), in PyTorch's layout.
#[derive(Debug)]
pub(crate) struct RnnLayer {
    pub name: String,
    pub item: String,
    pub cell: CellKind,
    pub gru_reset: GruReset,
    pub input: usize,
    pub hidden: usize,
    pub bias: bool,
    pub return_sequences: bool,
    /// Per direction: weight_ih `[G·H, I]`, weight_hh `[G·H, H]`, and the biases.
    pub dirs: Vec<DirWeights>,
}

#[derive(Debug)]
pub(crate) struct DirWeights {
    pub weight_ih: Vec<f32>,
    pub weight_hh: Vec<f32>,
    pub bias: Option<(Vec<f32>, Vec<f32>)>,
}

/// A layer's config entry: its class, its name and its `config` object.
pub(crate) struct Entry<'a> {
    pub class: &'a str,
    pub name: String,
    pub config: &'a serde_json::Map<String, Value>,
    pub item: String,
}

impl<'a> Entry<'a> {
    pub(crate) fn new(src: &Source, value: &'a Value, at: &str) -> Result<Self> {
        let class = value
            .get("class_name")
            .and_then(Value::as_str)
            .ok_or_else(|| src.err(at, "class_name", "is missing or not a string"))?;
        let config = value
            .get("config")
            .and_then(Value::as_object)
            .ok_or_else(|| {
                src.err(
                    format!("{at} ({class})"),
                    "config",
                    "is missing or not an object",
                )
            })?;
        let name = config
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or(at)
            .to_string();
        let item = format!("layer `{name}` ({class})");
        Ok(Self {
            class,
            name,
            config,
            item,
        })
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.config.get(key)
    }

    /// A boolean key, `default` when absent.
    fn flag(&self, src: &Source, key: &str, default: bool) -> Result<bool> {
        match self.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(v) => Err(src.err(&self.item, key, format!("is {v}, expected true or false"))),
        }
    }

    /// A size key (≥ 1).
    fn size(&self, src: &Source, key: &str) -> Result<usize> {
        self.get(key)
            .and_then(Value::as_u64)
            .and_then(|v| usize::try_from(v).ok())
            .filter(|&v| v >= 1)
            .ok_or_else(|| {
                src.err(
                    &self.item,
                    key,
                    format!("is {:?}, expected a size of at least 1", self.get(key)),
                )
            })
    }

    /// A string key, `default` when absent (activations, merge modes).
    fn string(&self, src: &Source, key: &str, default: &'a str) -> Result<&'a str> {
        match self.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::String(s)) => Ok(s),
            Some(v) => Err(src.err(
                &self.item,
                key,
                format!("is {v}, expected a name (custom objects are not read)"),
            )),
        }
    }
}

/// Checks a variable's shape.
fn expect_shape(src: &Source, item: &str, what: &str, var: &Var, want: &[usize]) -> Result<()> {
    if var.shape != want {
        return Err(src.err(
            item,
            what,
            format!("has shape {:?}, expected {want:?}", var.shape),
        ));
    }
    Ok(())
}

/// What wgrnn cannot compute: named, with the value found.
fn unsupported(src: &Source, item: &str, key: &str, what: String) -> wgrnn_core::Error {
    src.err(item, key, format!("{what}, which wgrnn does not compute"))
}

/// `e` as imported, its variables under `path` in model.weights.h5 (`layers/lstm_1`, by class
/// and position; the module keeps the config name).
pub(crate) fn parse(src: &Source, store: &Store, e: &Entry, path: &str) -> Result<Parsed> {
    match e.class {
        "InputLayer" | "Dropout" | "SpatialDropout1D" => Ok(Parsed::Skip),
        "Embedding" => embedding(src, store, e, path),
        "Dense" => dense(src, store, e, path),
        "LSTM" | "GRU" | "SimpleRNN" => {
            if e.flag(src, "go_backwards", false)? {
                let what = "is true: the layer reads the sequence backwards and returns its outputs reversed".into();
                return Err(unsupported(src, &e.item, "go_backwards", what));
            }
            let (cell, reset) = cell_of(src, e)?;
            let dir = direction(src, store, e, cell, reset, &format!("{path}/cell/vars"))?;
            Ok(Parsed::Rnn(rnn_layer(src, e, cell, reset, vec![dir])?))
        }
        "Bidirectional" => bidirectional(src, store, e, path),
        "Masking" => Err(unsupported(src, &e.item, "mask_value", "masks steps by their values (wgrnn masks by lengths: use Embedding(mask_zero=True) or pass lengths)".into())),
        other => Err(src.err(&e.item, "class_name", format!("is {other}, a layer the importer does not read (it reads LSTM, GRU, SimpleRNN, Bidirectional, Embedding, Dense, and skips InputLayer and Dropout)"))),
    }
}

fn embedding(src: &Source, store: &Store, e: &Entry, path: &str) -> Result<Parsed> {
    let (v, d) = (e.size(src, "input_dim")?, e.size(src, "output_dim")?);
    let mask_zero = e.flag(src, "mask_zero", false)?;
    let mut vars = store.vars(src, &e.item, &format!("{path}/vars"), 1)?;
    expect_shape(src, &e.item, "embeddings", &vars[0], &[v, d])?;
    let mut t = TensorMap::new();
    t.insert(
        "weight".into(),
        host_tensor(vec![v, d], std::mem::take(&mut vars[0].data))?,
    );
    let weights =
        EmbeddingWeights::from_tensors(EmbeddingConfig::new(v, d), t, &LoadOptions::strict())?;
    Ok(Parsed::Module(
        e.name.clone(),
        Layer::Embedding(EmbeddingModule { weights, mask_zero }),
    ))
}

fn dense(src: &Source, store: &Store, e: &Entry, path: &str) -> Result<Parsed> {
    let units = e.size(src, "units")?;
    let bias = e.flag(src, "use_bias", true)?;
    let activation = e.string(src, "activation", "linear")?.to_string();
    let vars = store.vars(
        src,
        &e.item,
        &format!("{path}/vars"),
        if bias { 2 } else { 1 },
    )?;
    let &[inputs, out] = vars[0].shape.as_slice() else {
        return Err(src.err(
            &e.item,
            "kernel",
            format!("has shape {:?}, expected [in, {units}]", vars[0].shape),
        ));
    };
    expect_shape(src, &e.item, "kernel", &vars[0], &[inputs, units])?;
    let mut t = TensorMap::new();
    t.insert(
        "weight".into(),
        host_tensor(vec![out, inputs], transpose(&vars[0].data, inputs, out))?,
    );
    if bias {
        expect_shape(src, &e.item, "bias", &vars[1], &[units])?;
        t.insert(
            "bias".into(),
            host_tensor(vec![units], vars[1].data.clone())?,
        );
    }
    let mut config = LinearConfig::new(inputs, units);
    config.bias = bias;
    let weights = LinearWeights::from_tensors(config, t, &LoadOptions::strict())?;
    Ok(Parsed::Module(
        e.name.clone(),
        Layer::Linear(LinearModule {
            weights,
            activation,
        }),
    ))
}

/// The cell of an LSTM, GRU or SimpleRNN entry, its activations checked.
fn cell_of(src: &Source, e: &Entry) -> Result<(CellKind, GruReset)> {
    // null is Keras's linear activation (no function), not the absent key's default.
    for key in ["activation", "recurrent_activation"] {
        if e.get(key).is_some_and(Value::is_null) {
            let what = "is null: Keras's linear activation".into();
            return Err(unsupported(src, &e.item, key, what));
        }
    }
    let act = e.string(src, "activation", "tanh")?;
    if e.class == "SimpleRNN" {
        return match act {
            "tanh" => Ok((CellKind::RnnTanh, GruReset::After)),
            "relu" => Ok((CellKind::RnnRelu, GruReset::After)),
            other => Err(unsupported(
                src,
                &e.item,
                "activation",
                format!("is {other} (SimpleRNN is read with tanh or relu)"),
            )),
        };
    }
    if act != "tanh" {
        return Err(unsupported(
            src,
            &e.item,
            "activation",
            format!("is {act} ({} is read with tanh)", e.class),
        ));
    }
    let rec = e.string(src, "recurrent_activation", "sigmoid")?;
    if rec != "sigmoid" {
        return Err(unsupported(
            src,
            &e.item,
            "recurrent_activation",
            format!("is {rec} ({} is read with sigmoid)", e.class),
        ));
    }
    if e.class == "LSTM" {
        return Ok((CellKind::Lstm, GruReset::After));
    }
    let reset = if e.flag(src, "reset_after", true)? {
        GruReset::After
    } else {
        GruReset::Before
    };
    Ok((CellKind::Gru, reset))
}

/// One direction's variables (kernel `[I, G·H]`, recurrent kernel `[H, G·H]`, bias) in
/// PyTorch's layout: transposed, GRU gates z,r,h reordered to r,z,n, and the biases split as
/// PyTorch holds them (one Keras bias goes to `bias_ih`, `bias_hh` is zero).
fn direction(
    src: &Source,
    store: &Store,
    e: &Entry,
    cell: CellKind,
    reset: GruReset,
    vars: &str,
) -> Result<DirWeights> {
    let h = e.size(src, "units")?;
    let bias = e.flag(src, "use_bias", true)?;
    let v = store.vars(src, &e.item, vars, if bias { 3 } else { 2 })?;
    let gh = h
        .checked_mul(cell.gates())
        .ok_or_else(|| src.err(&e.item, "units", format!("is {h}, too large to count")))?;
    let i = match v[0].shape.as_slice() {
        &[i, _] if i >= 1 => i,
        s => {
            return Err(src.err(
                &e.item,
                format!("{vars}/0 (kernel)"),
                format!("has shape {s:?}, expected [input, {gh}]"),
            ));
        }
    };
    expect_shape(src, &e.item, &format!("{vars}/0 (kernel)"), &v[0], &[i, gh])?;
    expect_shape(
        src,
        &e.item,
        &format!("{vars}/1 (recurrent_kernel)"),
        &v[1],
        &[h, gh],
    )?;
    let order: &[usize] = if cell == CellKind::Gru {
        &GRU_FROM_ZRH
    } else {
        &[0, 1, 2, 3][..cell.gates()]
    };
    let weight_ih = reorder_gates(&transpose(&v[0].data, i, gh), h, i, order);
    let weight_hh = reorder_gates(&transpose(&v[1].data, h, gh), h, h, order);
    let bias = if !bias {
        None
    } else if cell == CellKind::Gru && reset == GruReset::After {
        // reset_after=True: row 0 the input bias, row 1 the recurrent one.
        expect_shape(src, &e.item, &format!("{vars}/2 (bias)"), &v[2], &[2, gh])?;
        let (b_ih, b_hh) = v[2].data.split_at(gh);
        Some((
            reorder_gates(b_ih, h, 1, order),
            reorder_gates(b_hh, h, 1, order),
        ))
    } else {
        expect_shape(src, &e.item, &format!("{vars}/2 (bias)"), &v[2], &[gh])?;
        Some((reorder_gates(&v[2].data, h, 1, order), vec![0.0; gh]))
    };
    Ok(DirWeights {
        weight_ih,
        weight_hh,
        bias,
    })
}

fn rnn_layer(
    src: &Source,
    e: &Entry,
    cell: CellKind,
    gru_reset: GruReset,
    dirs: Vec<DirWeights>,
) -> Result<RnnLayer> {
    let hidden = e.size(src, "units")?;
    let input = dirs[0].weight_ih.len() / (cell.gates() * hidden);
    Ok(RnnLayer {
        name: e.name.clone(),
        item: e.item.clone(),
        cell,
        gru_reset,
        input,
        hidden,
        bias: e.flag(src, "use_bias", true)?,
        return_sequences: e.flag(src, "return_sequences", false)?,
        dirs,
    })
}

/// Both sides of a `Bidirectional` are recurrent layers, the forward one reading forwards and
/// the backward one (Keras sets it) backwards.
fn check_sides(src: &Source, e: &Entry, fwd: &Entry, bwd: &Entry, explicit: bool) -> Result<()> {
    for (side, entry) in [("layer", fwd), ("backward_layer", bwd)] {
        if !matches!(entry.class, "LSTM" | "GRU" | "SimpleRNN") {
            let why = format!("is a {}, expected LSTM, GRU or SimpleRNN", entry.class);
            return Err(src.err(&e.item, side, why));
        }
    }
    if fwd.flag(src, "go_backwards", false)? {
        let what = "is true: both directions read backwards".into();
        return Err(unsupported(src, &e.item, "layer.go_backwards", what));
    }
    if explicit && !bwd.flag(src, "go_backwards", false)? {
        let what = "is false: both directions read forwards".into();
        return Err(unsupported(
            src,
            &e.item,
            "backward_layer.go_backwards",
            what,
        ));
    }
    Ok(())
}

/// `Bidirectional(layer)`: the wrapped layer forward, its `backward_layer` (which Keras makes
/// with `go_backwards` and reverses back) as PyTorch's `_reverse` direction.
fn bidirectional(src: &Source, store: &Store, e: &Entry, path: &str) -> Result<Parsed> {
    // Keras's None (`null`) returns the two directions' outputs apart: not the default.
    if e.get("merge_mode").is_some_and(Value::is_null) {
        let what = "is null: the two directions' outputs returned apart (PyTorch's \
                    bidirectional output is their concatenation, merge_mode=\"concat\")"
            .into();
        return Err(unsupported(src, &e.item, "merge_mode", what));
    }
    let merge = e.string(src, "merge_mode", "concat")?;
    if merge != "concat" {
        let what = format!(
            "is {merge} (PyTorch's bidirectional output is the concatenation, merge_mode=\"concat\")"
        );
        return Err(unsupported(src, &e.item, "merge_mode", what));
    }
    let fwd_value = e
        .get("layer")
        .ok_or_else(|| src.err(&e.item, "layer", "is missing"))?;
    let fwd = Entry::new(src, fwd_value, &format!("{}.layer", e.name))?;
    let bwd = match e.get("backward_layer") {
        Some(v) if !v.is_null() => Entry::new(src, v, &format!("{}.backward_layer", e.name))?,
        _ => Entry::new(src, fwd_value, &format!("{}.layer", e.name))?,
    };
    let explicit = e.get("backward_layer").is_some_and(|v| !v.is_null());
    check_sides(src, e, &fwd, &bwd, explicit)?;
    let (cell, reset) = cell_of(src, &fwd)?;
    if cell_of(src, &bwd)? != (cell, reset)
        || bwd.size(src, "units")? != fwd.size(src, "units")?
        || bwd.flag(src, "use_bias", true)? != fwd.flag(src, "use_bias", true)?
    {
        return Err(src.err(
            &e.item,
            "backward_layer",
            "differs from `layer` in cell, units or use_bias; PyTorch's directions share them",
        ));
    }
    let f = direction(
        src,
        store,
        &fwd,
        cell,
        reset,
        &format!("{path}/forward_layer/cell/vars"),
    )?;
    let b = direction(
        src,
        store,
        &bwd,
        cell,
        reset,
        &format!("{path}/backward_layer/cell/vars"),
    )?;
    if b.weight_ih.len() != f.weight_ih.len() {
        return Err(src.err(
            &e.item,
            "backward_layer",
            "has another input size than `layer`",
        ));
    }
    let mut layer = rnn_layer(src, &fwd, cell, reset, vec![f, b])?;
    layer.name = e.name.clone();
    layer.item = e.item.clone();
    Ok(Parsed::Rnn(layer))
}
