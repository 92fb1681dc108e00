//! The wgpu engine of wgrnn. It mirrors the CPU reference (`wgrnn-cpu`) op for op: the same
//! configs and weight names, device tensors instead of host ones. Every call records all its
//! dispatches into one command encoder and submits once, or appends them to a [`Recording`]
//! that submits several calls at once; nothing is read back unless asked.

mod ops;
mod runtime;

// The op modules under their public paths.
pub use ops::matmul as gemm;
pub use ops::rnn::backward as rnn_backward;
pub use ops::{attention, bce, dropout, elementwise, embedding, linear, loss, optim, pool, rnn};
pub use runtime::shaders;

pub use attention::{
    GpuAttentionGrads, GpuAttentionInput, GpuAttentionOutput, attention_backward, attention_forward,
};
pub use bce::{
    GpuBce, GpuBceInput, binary_cross_entropy_with_logits,
    binary_cross_entropy_with_logits_backward, upload_mask,
};
pub use dropout::{dropout, dropout_backward};
pub use elementwise::{add, axpby, axpy_into, concat, narrow, narrow_backward};
pub use embedding::{GpuIds, embedding_backward, embedding_forward, upload_ids};
pub use gemm::matmul;
pub use linear::{GpuLinearGrads, linear_backward, linear_forward};
pub use loss::{
    GpuCrossEntropy, GpuTargets, cross_entropy, cross_entropy_backward, log_softmax, upload_targets,
};
pub use optim::{GpuOptimizer, GpuParams};
pub use pool::{masked_pool, masked_pool_backward};
pub use rnn::{
    GpuRnnInput, GpuRnnOutput, GpuRnnTape, rnn_forward, rnn_forward_train, small_batch_path,
};
pub use rnn_backward::{GpuRnnGrads, GpuRnnOutputGrads, rnn_backward};
pub use runtime::context::{AdapterSummary, Context, ContextOptions};
pub use runtime::pool::PoolStats;
pub use runtime::recording::{Record, Recording};
pub use runtime::tensor::{DType, GpuTensor};
pub use runtime::tuning::{CPU_LOOP_LIMIT, CPU_SMALL_BATCH_LIMIT, GemmBlock, SMALL_BATCH_LIMIT};
pub use runtime::weights::{DeviceLayout, GpuWeights};
