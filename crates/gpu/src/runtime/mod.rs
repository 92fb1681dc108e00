//! The runtime: the device context, the buffer pool and device tensors, pipelines, recording,
//! the shader registry and adapter tuning. It knows kernels only as [`pipeline::Kernel`] values
//! that the ops hand it, and never imports an op module.

pub(crate) mod context;
pub(crate) mod memory;
pub(crate) mod pipeline;
pub(crate) mod pool;
pub(crate) mod record;
pub(crate) mod recording;
pub mod shaders;
pub(crate) mod tensor;
pub(crate) mod tuning;
pub(crate) mod uniforms;
pub(crate) mod weights;
