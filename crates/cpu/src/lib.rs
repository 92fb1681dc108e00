//! The reference implementation of wgrnn: every op forward and backward, generic over f32 and
//! f64, written for clarity and checked against finite differences and Keras. The GPU engine is
//! tested against it and mirrors its API.
//!
//! The matrix helpers of `gemm` are not part of it: they trust the sizes their callers checked,
//! and outside the crate a short buffer read out of bounds.
//!
//! ```compile_fail
//! let m = wgrnn_cpu::gemm::Mat::new(&[0.0f64; 4], 2, 2);
//! ```

pub mod attention;
pub mod bce;
pub mod dropout;
pub mod elementwise;
pub mod embedding;
// The matrix helpers trust their callers' sizes (checked once per op, not per product), so
// they stay inside the crate.
pub(crate) mod gemm;
pub mod gradcheck;
pub mod linear;
pub mod loss;
pub mod optim;
pub mod pool;
pub mod rnn;

pub use attention::{
    AttentionGrads, AttentionInput, AttentionOutput, attention_backward, attention_forward,
};
pub use bce::{
    BceInput, BceOutput, binary_cross_entropy_with_logits,
    binary_cross_entropy_with_logits_backward,
};
pub use dropout::{dropout, dropout_backward, dropout_mask};
pub use elementwise::{concat, narrow, narrow_backward};
pub use embedding::{embedding_backward, embedding_forward};
pub use gradcheck::{GradcheckOptions, GradcheckReport, gradcheck};
pub use linear::{LinearGrads, linear_backward, linear_forward};
pub use loss::{CrossEntropyOutput, cross_entropy, cross_entropy_backward, log_softmax};
pub use optim::{Optimizer, clip_grad_norm};
pub use pool::{masked_pool, masked_pool_backward};
pub use rnn::{
    RnnGrads, RnnInput, RnnOutput, RnnOutputGrads, RnnTape, rnn_backward, rnn_forward,
    rnn_forward_train,
};

/// A zeroed buffer of `shape`'s elements, or an error naming `arg` where the host cannot hold
/// it: shapes come from the caller, and `vec!` would abort the process.
pub(crate) fn zeroed<T: wgrnn_core::Real>(
    op: &'static str,
    arg: &str,
    shape: &[usize],
) -> wgrnn_core::Result<Vec<T>> {
    wgrnn_core::tensor::try_filled(op, arg, shape, |_| T::zero())
}
