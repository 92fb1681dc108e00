//! The wgpu engine of wgrnn. It mirrors the CPU reference (`wgrnn-cpu`) op for op: the same
//! configs and weight names, device tensors instead of host ones. Every call records all its
//! dispatches into one command encoder and submits once; nothing is read back unless asked.

mod buffer;
mod context;
pub mod gemm;
mod pipeline;
mod record;
pub mod rnn;
pub mod shaders;
mod weights;

pub use buffer::{DType, GpuTensor, PoolStats};
pub use context::{AdapterSummary, Context, ContextOptions};
pub use gemm::matmul;
pub use rnn::{GpuRnnInput, GpuRnnOutput, GpuRnnTape, Mode, rnn_forward};
pub use weights::GpuWeights;
