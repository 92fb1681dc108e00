//! The runtime: the device context, the buffer pool and device tensors, pipelines, recording,
//! the shader registry and adapter tuning. It knows kernels only as [`pipeline::Kernel`] values
//! that the ops hand it, and never imports an op module.

pub(crate) mod buffer;
pub(crate) mod context;
pub(crate) mod pipeline;
pub(crate) mod record;
pub mod shaders;
pub(crate) mod weights;
