//! Core types of wgrnn: configs, host tensors, PyTorch-named weight sets, safetensors I/O and the
//! error type. No maths and no GPU live here; the CPU reference (`wgrnn-cpu`) and the GPU engine
//! (`wgrnn-gpu`) both build on these types.

pub mod axis;
pub mod config;
pub mod error;
pub mod io;
pub mod optim;
pub mod philox;
pub mod real;
pub mod rng;
pub mod tensor;
pub mod weights;

pub use config::{
    AttentionConfig, CellKind, DropoutConfig, EmbeddingConfig, GruReset, LinearConfig, ParamSpec,
    PoolDims, PoolMode, Reduction, RnnConfig, RnnDims, Score, check_lengths,
};
pub use error::{Error, Result};
pub use io::{LoadOptions, LoadReport, SafetensorsFile, StoredTensor};
pub use optim::{OptimizerConfig, clip_coefficient, validate_max_norm};
pub use real::Real;
pub use rng::SplitMix64;
pub use tensor::{Tensor, TensorMap};
pub use weights::{
    AttentionWeights, DirectionWeights, EmbeddingWeights, LinearWeights, ParamLayout, RnnWeights,
    Weights, pick_state_dict,
};
