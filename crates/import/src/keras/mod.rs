//! Keras 3 `.keras` files: a zip archive of `config.json` (the model's layers) and
//! `model.weights.h5` (their variables), as wgrnn modules.
//!
//! **Maps.** The layers of a `Sequential` or `Functional` model, in the order of its config:
//! - `LSTM` (kernel `[I, 4H]`, recurrent kernel `[H, 4H]`, bias `[4H]`, gates i,f,c,o), `GRU`
//!   (gates z,r,h; `reset_after=True` with bias `[2, 3H]` is [`GruReset::After`], `False` with
//!   bias `[3H]` is [`GruReset::Before`]) and `SimpleRNN` (tanh or relu) become a recurrent
//!   module, `batch_first` as Keras's tensors are: kernels transposed, GRU gates reordered to
//!   r,z,n, the one Keras bias in `bias_ih` with a zero `bias_hh` (for GRU `reset_after=True`,
//!   its input and recurrent rows), no biases with `use_bias=False`.
//! - `Bidirectional` (`merge_mode="concat"`) becomes one bidirectional module, its
//!   `backward_layer` the `_reverse` direction.
//! - Recurrent layers stacked directly on one another (each below with
//!   `return_sequences=True`, the same cell, units, bias and directions) become one module of
//!   several layers, named after the first, as PyTorch's `num_layers`.
//! - `Embedding` becomes [`EmbeddingWeights`] (`mask_zero` is kept in [`EmbeddingModule`]; its
//!   mask becomes lengths through [`lengths_from_mask`]); `Dense` becomes [`LinearWeights`]
//!   (the kernel transposed; its activation kept by name in [`LinearModule`]).
//! - `InputLayer`, `Dropout` and `SpatialDropout1D` hold no weights and are skipped;
//!   `return_sequences` is kept in [`RnnModule`]; `unit_forget_bias` (an initialiser),
//!   `stateful`, `unroll` and the training-time `dropout`/`recurrent_dropout` do not change the
//!   weights or an inference call and are not read. Nor is `zero_output_for_mask`, which does
//!   change one: with a mask, `return_sequences=True` and `false` (Keras's default outside
//!   `Bidirectional`), Keras repeats the last valid output at padded steps where wgrnn gives
//!   zeros; valid steps and final states agree.
//!
//! **Refuses**, naming the layer and the key: `go_backwards` on a layer outside
//! `Bidirectional` (its outputs come reversed), `activation`/`recurrent_activation` other than
//! tanh/sigmoid (tanh or relu for SimpleRNN; `null`, Keras's linear, included), `merge_mode` other than concat (`null`, Keras's
//! two separate outputs, included; an absent key is concat), `Masking`
//! (masks by value), nested models and any other layer class, variables whose count, shapes or
//! types disagree with the config, and archives or HDF5 files that do not parse.
//!
//! [`GruReset::After`]: wgrnn_core::GruReset::After
//! [`GruReset::Before`]: wgrnn_core::GruReset::Before
//! [`EmbeddingWeights`]: wgrnn_core::EmbeddingWeights
//! [`LinearWeights`]: wgrnn_core::LinearWeights
//! [`EmbeddingModule`]: crate::EmbeddingModule
//! [`LinearModule`]: crate::LinearModule
//! [`RnnModule`]: crate::RnnModule

use std::io::{Cursor, Read};
use std::path::Path;

use serde_json::Value;

use crate::{Layer, Module, RnnModule, Source, host_tensor, unique_names};
use wgrnn_core::{Error, LoadOptions, Result, RnnConfig, RnnWeights, Tensor, TensorMap};

mod layers;
mod store;

use layers::{Entry, Parsed, RnnLayer};

const OP: &str = "keras::read";

/// The most deflate expands (1032:1): an archive member claiming or yielding more than this
/// many times its compressed size is refused before it is read, as is a `config.json` past
/// [`MAX_CONFIG_BYTES`].
const MAX_EXPANSION: u64 = 1032;
const MAX_CONFIG_BYTES: u64 = 64 << 20;

/// The modules of the `.keras` file at `path`, in the order of the model's layers.
pub fn read(path: impl AsRef<Path>) -> Result<Vec<Module>> {
    let path = path.as_ref();
    let bytes = Source::read_file(path)?;
    decode(&bytes, Source::new(OP, path.display().to_string()))
}

/// [`read`] of a file's bytes (errors name the file as `(bytes)`).
pub fn from_bytes(bytes: &[u8]) -> Result<Vec<Module>> {
    decode(bytes, Source::new(OP, "(bytes)"))
}

/// The sequence lengths a Keras `Embedding(mask_zero=True)` mask means, from ids `[B, T]`
/// (batch-major, as Keras takes them): row b's length is the count of its leading non-zero
/// ids. A row whose ids are 0 from its first step, or that has a non-zero id after a 0 (a
/// mask with holes, which lengths cannot say), is refused naming the row and the step.
pub fn lengths_from_mask(ids: &Tensor<i64>) -> Result<Vec<usize>> {
    const OP_MASK: &str = "lengths_from_mask";
    let &[b, t] = ids.shape() else {
        let shape = wgrnn_core::error::fmt_shape(ids.shape());
        let why = format!("must be [B, T] token ids, has shape {shape}");
        return Err(Error::invalid_argument(OP_MASK, "ids", why));
    };
    (0..b)
        .map(|row| {
            let r = &ids.data()[row * t..(row + 1) * t];
            let len = r.iter().take_while(|&&id| id != 0).count();
            if len == 0 {
                let why =
                    format!("row {row} starts with the padding id 0: a sequence needs a step");
                return Err(Error::invalid_argument(OP_MASK, "ids", why));
            }
            if let Some(step) = r[len..].iter().position(|&id| id != 0) {
                let why = format!(
                    "row {row} has id {} at step {} after padding at step {len}: a mask with \
                     holes is not a length",
                    r[len + step],
                    len + step
                );
                return Err(Error::invalid_argument(OP_MASK, "ids", why));
            }
            Ok(len)
        })
        .collect()
}

/// One member of the archive (of `archive_len` bytes), read whole within the expansion bound.
fn member(
    src: &Source,
    zip: &mut zip::ZipArchive<Cursor<&[u8]>>,
    name: &str,
    cap: u64,
    archive_len: usize,
) -> Result<Vec<u8>> {
    let archive_len = archive_len as u64;
    let mut f = zip
        .by_name(name)
        .map_err(|e| src.err("archive", name, format!("cannot be opened: {e}")))?;
    // A compressed size is only a claim: no member holds more compressed bytes than the
    // archive itself.
    let limit = f
        .compressed_size()
        .min(archive_len)
        .saturating_mul(MAX_EXPANSION)
        .min(cap);
    if f.size() > limit {
        return Err(src.err(
            "archive",
            name,
            format!(
                "claims {} bytes from {} compressed, more than deflate expands",
                f.size(),
                f.compressed_size()
            ),
        ));
    }
    // The declared size bounds the buffer; reading one byte past it shows a member that
    // yields more than it declares.
    let (mut out, size) = (Vec::new(), f.size());
    f.by_ref()
        .take(size.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| src.err("archive", name, format!("cannot be read: {e}")))?;
    if out.len() as u64 != f.size() {
        return Err(src.err(
            "archive",
            name,
            format!("yields {} bytes, its header says {}", out.len(), f.size()),
        ));
    }
    Ok(out)
}

fn decode(bytes: &[u8], src: Source) -> Result<Vec<Module>> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| src.err("archive", "zip", format!("is not a .keras archive: {e}")))?;
    let config = member(&src, &mut zip, "config.json", MAX_CONFIG_BYTES, bytes.len())?;
    let weights = member(&src, &mut zip, "model.weights.h5", u64::MAX, bytes.len())?;
    let config: Value = serde_json::from_slice(&config)
        .map_err(|e| src.err("config.json", "json", format!("does not parse: {e}")))?;
    // Keras datasets are contiguous, inside model.weights.h5: its length bounds the decoding.
    let src = src.with_budget(crate::decode_budget(weights.len()));
    let store = store::Store::open(&src, weights)?;
    let model = Entry::new(&src, &config, "model")?;
    let sequential = match model.class {
        "Sequential" => true,
        "Functional" | "Model" => false,
        other => {
            return Err(src.err(
                &model.item,
                "class_name",
                format!("is {other}, expected a Sequential or Functional model"),
            ));
        }
    };
    let entries = model
        .config
        .get("layers")
        .and_then(Value::as_array)
        .ok_or_else(|| src.err(&model.item, "layers", "is missing or not a list"))?;
    let mut parsed = Vec::new();
    let mut used = std::collections::HashMap::new();
    for (k, value) in entries.iter().enumerate() {
        let entry = Entry::new(&src, value, &format!("layers[{k}]"))?;
        if matches!(entry.class, "Sequential" | "Functional" | "Model") {
            return Err(src.err(&entry.item, "class_name", "is a nested model, which the importer does not read; save the inner model on its own"));
        }
        let path = format!("layers/{}", store_name(entry.class, &mut used));
        parsed.push(layers::parse(&src, &store, &entry, &path)?);
    }
    modules(&src, parsed, sequential)
}

/// Where Keras 3 keeps a layer's variables in its model's `layers` container: not under the
/// layer's name (auto-generated names vary between sessions) but under its class name in
/// snake case, numbered per class in the container's order (`lstm`, `lstm_1`, …), as
/// `saving_lib._save_container_state` writes them. Every layer of the class counts, weightless
/// ones included. (A `Sequential` model's container leaves out its `InputLayer`; as no other
/// class is `input_layer`, counting it changes no other layer's path.)
fn store_name(class: &str, used: &mut std::collections::HashMap<String, usize>) -> String {
    let base = snake_case(class);
    let n = used
        .entry(base.clone())
        .and_modify(|n| *n += 1)
        .or_insert(0);
    if *n == 0 { base } else { format!("{base}_{n}") }
}

/// Keras's `naming.to_snake_case`: non-word characters dropped, `_` before each capitalised
/// word (`(.)([A-Z][a-z]+)`) and between a lower-case letter and a capital (`([a-z])([A-Z])`),
/// then lower case: SimpleRNN → simple_rnn, LSTM → lstm, SpatialDropout1D → spatial_dropout1d.
fn snake_case(name: &str) -> String {
    let c: Vec<char> = name
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    // Pass 1: scanning left to right without overlap, a char followed by a capital and a run of
    // lower-case letters gets `_` after it (the regex consumes the word, so the next match
    // starts past it).
    let mut one = Vec::with_capacity(c.len() * 2);
    let mut i = 0;
    while i < c.len() {
        let word = i + 1 < c.len()
            && c[i + 1].is_ascii_uppercase()
            && c.get(i + 2).is_some_and(|x| x.is_ascii_lowercase());
        one.push(c[i]);
        if word {
            let mut j = i + 2;
            while c.get(j).is_some_and(|x| x.is_ascii_lowercase()) {
                j += 1;
            }
            one.push('_');
            one.extend_from_slice(&c[i + 1..j]);
            i = j;
        } else {
            i += 1;
        }
    }
    // Pass 2: `_` between a lower-case letter and a capital (non-overlapping pairs).
    let mut two = String::with_capacity(one.len() * 2);
    let mut i = 0;
    while i < one.len() {
        two.push(one[i]);
        if one[i].is_ascii_lowercase() && one.get(i + 1).is_some_and(|x| x.is_ascii_uppercase()) {
            two.push('_');
            two.push(one[i + 1]);
            i += 2;
        } else {
            i += 1;
        }
    }
    two.to_lowercase()
}

/// The parsed layers as modules, stacked recurrent layers of a `Sequential` model joined.
fn modules(src: &Source, parsed: Vec<Parsed>, sequential: bool) -> Result<Vec<Module>> {
    let mut found: Vec<(String, Layer)> = Vec::new();
    let mut stack: Vec<RnnLayer> = Vec::new();
    let flush = |stack: &mut Vec<RnnLayer>, found: &mut Vec<(String, Layer)>| -> Result<()> {
        if !stack.is_empty() {
            let layers = std::mem::take(stack);
            found.push((layers[0].name.clone(), Layer::Rnn(rnn_module(src, layers)?)));
        }
        Ok(())
    };
    for p in parsed {
        match p {
            Parsed::Skip => {}
            Parsed::Module(name, layer) => {
                flush(&mut stack, &mut found)?;
                found.push((name, layer));
            }
            Parsed::Rnn(layer) => {
                let joins =
                    sequential && stack.last().is_some_and(|below| stacks_on(below, &layer));
                if !joins {
                    flush(&mut stack, &mut found)?;
                }
                stack.push(layer);
            }
        }
    }
    flush(&mut stack, &mut found)?;
    let (names, layers): (Vec<String>, Vec<Layer>) = found.into_iter().unzip();
    Ok(unique_names(names)
        .into_iter()
        .zip(layers)
        .map(|(name, layer)| Module { name, layer })
        .collect())
}

/// Whether `upper` continues `below` as the next layer of one PyTorch module.
fn stacks_on(below: &RnnLayer, upper: &RnnLayer) -> bool {
    below.return_sequences
        && below.cell == upper.cell
        && below.gru_reset == upper.gru_reset
        && below.hidden == upper.hidden
        && below.bias == upper.bias
        && below.dirs.len() == upper.dirs.len()
        && upper.input == below.dirs.len() * below.hidden
}

fn rnn_module(src: &Source, layers: Vec<RnnLayer>) -> Result<RnnModule> {
    let first = &layers[0];
    let top = &layers[layers.len() - 1];
    let config = RnnConfig::new(first.cell, first.input, first.hidden)
        .layers(layers.len())
        .bidirectional(first.dirs.len() == 2)
        .batch_first(true)
        .bias(first.bias)
        .gru_reset(first.gru_reset);
    let (gh, h) = (first.cell.gates() * first.hidden, first.hidden);
    let mut tensors = TensorMap::new();
    for (k, layer) in layers.iter().enumerate() {
        for (d, w) in layer.dirs.iter().enumerate() {
            let sfx = RnnConfig::suffix(k, d);
            tensors.insert(
                format!("weight_ih{sfx}"),
                host_tensor(vec![gh, layer.input], w.weight_ih.clone())?,
            );
            tensors.insert(
                format!("weight_hh{sfx}"),
                host_tensor(vec![gh, h], w.weight_hh.clone())?,
            );
            if let Some((b_ih, b_hh)) = &w.bias {
                tensors.insert(
                    format!("bias_ih{sfx}"),
                    host_tensor(vec![gh], b_ih.clone())?,
                );
                tensors.insert(
                    format!("bias_hh{sfx}"),
                    host_tensor(vec![gh], b_hh.clone())?,
                );
            }
        }
    }
    let weights = RnnWeights::from_tensors(config, tensors, &LoadOptions::strict())
        .map_err(|e| src.err(&first.item, "weights", format!("do not form a module: {e}")))?;
    Ok(RnnModule {
        weights,
        reverse: false,
        return_sequences: top.return_sequences,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_names_follow_keras_snake_case_and_per_class_counters() {
        // Expected values from keras.src.utils.naming.to_snake_case.
        for (class, want) in [
            ("SimpleRNN", "simple_rnn"),
            ("LSTM", "lstm"),
            ("GRU", "gru"),
            ("SpatialDropout1D", "spatial_dropout1d"),
            ("InputLayer", "input_layer"),
            ("Bidirectional", "bidirectional"),
            ("HTTPRequestLSTM", "http_request_lstm"),
            ("Conv2DTranspose", "conv2d_transpose"),
            ("aBc", "a_bc"),
            ("ABCDef", "abc_def"),
            ("XyZw", "xy_zw"),
        ] {
            assert_eq!(snake_case(class), want, "{class}");
        }
        let mut used = std::collections::HashMap::new();
        let got: Vec<String> = ["LSTM", "Dropout", "LSTM", "Dropout", "LSTM"]
            .iter()
            .map(|c| store_name(c, &mut used))
            .collect();
        assert_eq!(got, ["lstm", "dropout", "lstm_1", "dropout_1", "lstm_2"]);
    }

    #[test]
    fn lengths_come_from_leading_non_zero_ids() {
        let ids = Tensor::new(vec![3, 4], vec![5, 1, 2, 3, 7, 7, 0, 0, 9, 0, 0, 0]).unwrap();
        assert_eq!(lengths_from_mask(&ids).unwrap(), [4, 2, 1]);
    }

    #[test]
    fn masks_that_are_not_lengths_are_refused_by_row_and_step() {
        let holes = Tensor::new(vec![2, 3], vec![1, 2, 3, 4, 0, 5]).unwrap();
        let e = lengths_from_mask(&holes).unwrap_err().to_string();
        assert!(
            e.contains("row 1 has id 5 at step 2 after padding at step 1"),
            "{e}"
        );
        let empty = Tensor::new(vec![1, 2], vec![0, 0]).unwrap();
        let e = lengths_from_mask(&empty).unwrap_err().to_string();
        assert!(e.contains("row 0 starts with the padding id 0"), "{e}");
        let flat = Tensor::new(vec![3], vec![1, 2, 3]).unwrap();
        let e = lengths_from_mask(&flat).unwrap_err();
        assert!(
            matches!(e, Error::InvalidArgument { arg: "ids", .. }),
            "{e}"
        );
    }
}
