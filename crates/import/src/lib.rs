//! Imports trained models into wgrnn: the recurrent layers of ONNX files ([`onnx::read`]) and
//! the recurrent, embedding and dense layers of Keras 3 `.keras` files ([`keras::read`]), as
//! [`Module`]s whose weights carry PyTorch's names, shapes and gate orders, ready for
//! `wgrnn::cpu::rnn_forward`, `wgrnn::gpu::rnn_forward` or `torch.nn` (through safetensors).
//!
//! What each format maps to, and what it refuses, is said in [`onnx`] and [`keras`]. A file that
//! is malformed (truncated, corrupt, with sizes that disagree with its data) or that holds what
//! wgrnn does not compute is an [`Error::Import`] naming the file, the node or layer, and the
//! attribute, input or tensor at fault; no input makes the readers panic or allocate more than
//! a small multiple of the file's own size.

use std::path::Path;

use wgrnn_core::{EmbeddingWeights, Error, LinearWeights, Result, RnnWeights, Tensor, TensorMap};

mod convert;
pub mod keras;
pub mod onnx;
mod sequence;

pub use sequence::reverse_sequences;

/// One layer found in a model file, under the name it had there.
#[derive(Clone, Debug, PartialEq)]
pub struct Module {
    /// The layer's name in the file (Keras's layer name; for ONNX the PyTorch module path the
    /// exporter recorded, else the node's name), unique within the file and usable as a
    /// safetensors prefix (`<name>.weight_ih_l0`).
    pub name: String,
    pub layer: Layer,
}

/// What a [`Module`] holds.
#[derive(Clone, Debug, PartialEq)]
pub enum Layer {
    Rnn(RnnModule),
    Embedding(EmbeddingModule),
    Linear(LinearModule),
}

/// A recurrent layer (possibly several stacked layers, both directions) as one PyTorch
/// `nn.LSTM`/`nn.GRU`/`nn.RNN`.
#[derive(Clone, Debug, PartialEq)]
pub struct RnnModule {
    /// The config (cell, sizes, layers, directions, GRU reset form, layout) and the weights in
    /// PyTorch's names and gate orders.
    pub weights: RnnWeights<f32>,
    /// ONNX `direction=reverse`: one direction that reads each sequence from its last valid step
    /// to its first, its outputs at the steps they belong to. PyTorch has no such module; run it
    /// as the forward module it is stored as on [`reverse_sequences`] of the input, and reverse
    /// the output the same way (`h_n` needs nothing).
    pub reverse: bool,
    /// Keras `return_sequences`: whether the model passes on the whole output sequence (true)
    /// or only the last step's `h` (false, which is `h_n` of the top layer: both directions'
    /// with `Bidirectional`, forward then backward). Always true for ONNX.
    pub return_sequences: bool,
}

/// A Keras `Embedding` as PyTorch's `nn.Embedding`.
#[derive(Clone, Debug, PartialEq)]
pub struct EmbeddingModule {
    pub weights: EmbeddingWeights<f32>,
    /// Keras `mask_zero`: id 0 marks padding, and the layers after it skip those steps. wgrnn
    /// expresses this mask as sequence lengths ([`keras::lengths_from_mask`]); it is not
    /// PyTorch's `padding_idx` (row 0 is a trained row like any other).
    pub mask_zero: bool,
}

/// A Keras `Dense` as PyTorch's `nn.Linear`, and the activation Keras applies after it.
#[derive(Clone, Debug, PartialEq)]
pub struct LinearModule {
    pub weights: LinearWeights<f32>,
    /// Keras's name of the activation (`linear` for none, `sigmoid`, `softmax`, `relu`…): the
    /// caller applies it to the linear layer's output.
    pub activation: String,
}

impl Module {
    /// The module's tensors under PyTorch's parameter names (without a prefix).
    pub fn tensors(&self) -> &TensorMap<f32> {
        match &self.layer {
            Layer::Rnn(m) => m.weights.tensors(),
            Layer::Embedding(m) => m.weights.tensors(),
            Layer::Linear(m) => m.weights.tensors(),
        }
    }

    /// The module's config as one JSON object, the `<name>.config` metadata the `import`
    /// example writes: `module` (`rnn`, `embedding`, `linear`) and the fields that rebuild it
    /// (for `rnn`: `cell`, `input_size`, `hidden_size`, `num_layers`, `bidirectional`,
    /// `batch_first`, `bias`, `gru_reset`, `proj_size`, `reverse`, `return_sequences`).
    pub fn config_json(&self) -> String {
        let value = match &self.layer {
            Layer::Rnn(m) => {
                let c = m.weights.config();
                serde_json::json!({
                    "module": "rnn",
                    "cell": c.cell.name(),
                    "input_size": c.input_size,
                    "hidden_size": c.hidden_size,
                    "num_layers": c.num_layers,
                    "bidirectional": c.bidirectional,
                    "batch_first": c.batch_first,
                    "bias": c.bias,
                    "gru_reset": c.gru_reset.name(),
                    "proj_size": c.proj_size,
                    "reverse": m.reverse,
                    "return_sequences": m.return_sequences,
                })
            }
            Layer::Embedding(m) => {
                let c = m.weights.config();
                serde_json::json!({
                    "module": "embedding",
                    "num_embeddings": c.num_embeddings,
                    "embedding_dim": c.embedding_dim,
                    "mask_zero": m.mask_zero,
                })
            }
            Layer::Linear(m) => {
                let c = m.weights.config();
                serde_json::json!({
                    "module": "linear",
                    "in_features": c.in_features,
                    "out_features": c.out_features,
                    "bias": c.bias,
                    "activation": m.activation,
                })
            }
        };
        value.to_string()
    }
}

/// Where an import error happened: the reader and the file. Its `err` names the rest. It also
/// holds the file's decode budget: the bytes the reader may still decode weights into.
#[derive(Clone, Debug)]
pub(crate) struct Source {
    op: &'static str,
    path: String,
    budget: std::cell::Cell<u64>,
}

/// The decoded bytes a file of `len` bytes may yield in all: each weight is decoded once per
/// node or layer that uses it, so many nodes sharing one large constant could otherwise
/// allocate without bound.
pub(crate) fn decode_budget(len: usize) -> u64 {
    (len as u64).saturating_mul(4).saturating_add(1 << 20)
}

impl Source {
    pub(crate) fn new(op: &'static str, path: impl Into<String>) -> Self {
        Self {
            op,
            path: path.into(),
            budget: std::cell::Cell::new(u64::MAX),
        }
    }

    /// This source with a decode budget of `bytes`.
    pub(crate) fn with_budget(self, bytes: u64) -> Self {
        self.budget.set(bytes);
        self
    }

    /// Takes `bytes` from the decode budget before `item`'s `field` is decoded; past it, an
    /// error naming them.
    pub(crate) fn spend(&self, item: &str, field: &str, bytes: usize) -> Result<()> {
        let left = self.budget.get();
        match left.checked_sub(bytes as u64) {
            Some(rest) => {
                self.budget.set(rest);
                Ok(())
            }
            None => Err(self.err(
                item,
                field,
                format!(
                    "would decode {bytes} more bytes, past the {left} left of this file's \
                     budget (4 times its size plus 1 MiB, counting a weight shared by several \
                     nodes or layers once per use)"
                ),
            )),
        }
    }

    /// An [`Error::Import`] at `item` (a node, a layer, a part of the file) about `field`.
    pub(crate) fn err(
        &self,
        item: impl Into<String>,
        field: impl Into<String>,
        reason: impl Into<String>,
    ) -> Error {
        Error::Import {
            op: self.op,
            path: self.path.clone(),
            item: item.into(),
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The whole file, read once; the readers parse from memory.
    pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>> {
        std::fs::read(path).map_err(|e| Error::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })
    }
}

/// Builds a tensor whose element count the caller has already checked.
pub(crate) fn host_tensor(shape: Vec<usize>, data: Vec<f32>) -> Result<Tensor<f32>> {
    Tensor::new(shape, data)
}

/// Names made unique within a file, in order: a second `lstm` becomes `lstm_1`, and so on.
pub(crate) fn unique_names(names: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::BTreeSet::new();
    names
        .into_iter()
        .map(|name| {
            let mut candidate = name.clone();
            let mut k = 1;
            while !seen.insert(candidate.clone()) {
                candidate = format!("{name}_{k}");
                k += 1;
            }
            candidate
        })
        .collect()
}
