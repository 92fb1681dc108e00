//! Embedding lookup on the device.

use bytemuck::{Pod, Zeroable};
use wgrnn_core::{EmbeddingConfig, Error, Result, Tensor};

use crate::buffer::{DType, GpuTensor};
use crate::context::Context;
use crate::pipeline::{Access, Kernel};
use crate::record::Recorder;
use crate::shaders::Shader;
use crate::weights::GpuWeights;

const OP: &str = "gpu embedding_forward";
const GATHER: Kernel = Kernel {
    shader: Shader::Embedding,
    entry: "embedding_gather",
    bindings: &[Access::Read, Access::Read, Access::ReadWrite],
};

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct GatherParams {
    rows: u32,
    dim: u32,
    vocab: u32,
    _pad: u32,
}

/// Uploads token ids after checking each lies in `0..vocab` (the error names the first that
/// does not).
pub fn upload_ids(ctx: &Context, ids: &Tensor<i64>, vocab: usize) -> Result<GpuTensor> {
    let mut out = Vec::with_capacity(ids.numel());
    for (index, &id) in ids.data().iter().enumerate() {
        if id < 0 || id as u64 >= vocab as u64 || id > u32::MAX as i64 {
            return Err(Error::IdOutOfRange {
                op: "upload_ids",
                arg: "ids",
                index,
                id,
                limit: vocab,
            });
        }
        out.push(id as u32);
    }
    ctx.upload_u32(ids.shape(), &out)
}

/// `y[..., :] = weight[ids[...], :]`, `y` of shape `ids.shape() + [D]`. `ids` are u32 on the
/// device (see [`upload_ids`]); an id out of range yields a zero row, never an out-of-bounds read.
pub fn embedding_forward(
    ctx: &Context,
    w: &GpuWeights<EmbeddingConfig>,
    ids: &GpuTensor,
) -> Result<GpuTensor> {
    let cfg = w.config();
    if ids.dtype() != DType::U32 {
        return Err(Error::InvalidArgument {
            op: OP,
            arg: "ids",
            reason: "must be u32 (see upload_ids)".into(),
        });
    }
    let (rows, d) = (ids.numel(), cfg.embedding_dim);
    let mut shape = ids.shape().to_vec();
    shape.push(d);
    let y = ctx.alloc(OP, "y", &shape, DType::F32)?;
    let mut rec = Recorder::new(ctx, OP);
    let p = GatherParams {
        rows: rows as u32,
        dim: d as u32,
        vocab: cfg.num_embeddings as u32,
        _pad: 0,
    };
    let ry = rows.div_ceil(4);
    let (gy, gz) = if ry > 65535 {
        (65535, ry.div_ceil(65535))
    } else {
        (ry, 1)
    };
    rec.dispatch(
        GATHER,
        &p,
        &[w.get("weight")?, ids, &y],
        [d.div_ceil(64) as u32, gy as u32, gz as u32],
    )?;
    rec.submit()?;
    Ok(y)
}
