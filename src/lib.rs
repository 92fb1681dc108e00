//! wgrnn: fast, exact recurrent layers (LSTM, GRU, Elman RNN), attention, embeddings and losses
//! on any GPU through wgpu, with an exact CPU reference.
//!
//! Conventions are PyTorch's: `weight_ih_l{k}[_reverse]` `[G·H, in]`, `weight_hh_l{k}[_reverse]`
//! `[G·H, H]`, gate orders LSTM i,f,g,o and GRU r,z,n (reset applied to `W_hn·h + b_hn`),
//! sequence-major `[T, B, F]` by default, states `[L·D, B, H]`, packed-sequence length semantics.
//!
//! - [`core`]: configs, host tensors, weight sets (safetensors), errors.
//! - [`cpu`]: the reference implementation of every op with gradients and `gradcheck`.
//! - [`gpu`]: the wgpu engine.
//! - [`import`]: the recurrent, embedding and dense layers of ONNX files and Keras 3 models,
//!   under PyTorch's names.

pub use wgrnn_core as core;
pub use wgrnn_cpu as cpu;
pub use wgrnn_gpu as gpu;
pub use wgrnn_import as import;

pub use wgrnn_core::{
    AttentionConfig, CellKind, DropoutConfig, EmbeddingConfig, Error, GruReset, LinearConfig,
    LoadOptions, OptimizerConfig, PoolMode, Reduction, Result, RnnConfig, Score, Tensor,
};
