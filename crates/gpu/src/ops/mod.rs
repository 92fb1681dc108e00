//! The ops, one module per family, each named like the shader file it runs (`matmul` runs
//! matmul.wgsl, `recurrent` runs recurrent.wgsl…); `linear` composes `matmul`. They build on
//! the runtime and record into its [`Recorder`](crate::runtime::record::Recorder).

pub mod attention;
pub mod bce;
pub mod dropout;
pub mod elementwise;
pub mod embedding;
pub mod linear;
pub mod loss;
pub mod matmul;
pub mod optim;
pub(crate) mod pack;
pub mod pool;
pub(crate) mod recurrent;
pub(crate) mod reduce;
pub mod rnn;
