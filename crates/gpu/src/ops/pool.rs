//! Masked pooling over time on the device (pool.wgsl), with the CPU reference's semantics
//! (`wgrnn_cpu::pool`): the mean or maximum of each sequence's valid steps, `x` `[T, B, F]`
//! (or `[B, T, F]` with `batch_first`) into `[B, F]`; padded steps are never read. Max ties go
//! to the first step. Lengths are the host slice the recurrent ops take
//! ([`GpuRnnInput::lengths`](crate::GpuRnnInput::lengths)), uploaded with the call, so a
//! trainer passes the same lengths to the layer and to its pooling.

use wgrnn_core::{PoolDims, PoolMode, Result};

use crate::runtime::context::Context;
use crate::runtime::pipeline::{Access, Kernel};
use crate::runtime::record::fold_x;
use crate::runtime::recording::Record;
use crate::runtime::shaders::Shader;
use crate::runtime::tensor::{DType, GpuTensor, OnContext, expect_f32, u32_of};
use crate::runtime::uniforms::pool::PoolParams;

const FORWARD: &[Access] = &[Access::Read, Access::Read, Access::ReadWrite];
const BACKWARD: &[Access] = &[Access::Read, Access::Read, Access::Read, Access::ReadWrite];

fn kernel(mode: PoolMode, backward: bool) -> Kernel {
    let (entry, bindings) = match (mode, backward) {
        (PoolMode::Mean, false) => ("pool_mean", FORWARD),
        (PoolMode::Max, false) => ("pool_max", FORWARD),
        (PoolMode::Mean, true) => ("pool_mean_backward", BACKWARD),
        (PoolMode::Max, true) => ("pool_max_backward", BACKWARD),
    };
    Kernel {
        shader: Shader::Pool,
        entry,
        bindings,
    }
}

/// Checks `x` and the lengths for `op`, and returns the dims and the kernel's parameters.
fn check(
    ctx: &Context,
    op: &'static str,
    x: &GpuTensor,
    lengths: Option<&[usize]>,
    batch_first: bool,
) -> Result<(PoolDims, PoolParams)> {
    x.check_context(ctx, op, "x")?;
    let dims = PoolDims::check(op, x.shape(), lengths, batch_first)?;
    expect_f32(op, "x", x, x.shape())?;
    // One invocation loops over the steps: twice in max's backward (arg max, then the writes).
    ctx.check_loop(op, "x", 2 * dims.seq_len as u64 + 2)?;
    let (s_t, s_b) = dims.strides();
    let p = PoolParams {
        n: u32_of(op, "x (B·F)", dims.batch * dims.features)?,
        features: u32_of(op, "x (F)", dims.features)?,
        seq_len: u32_of(op, "x (T)", dims.seq_len)?,
        s_t: u32_of(op, "x (stride of t)", s_t)?,
        s_b: u32_of(op, "x (stride of b)", s_b)?,
        ..Default::default()
    };
    Ok((dims, p))
}

/// The checked lengths on the device as u32 (each ≤ T, which fits), all T where none are given.
fn upload_lengths(ctx: &Context, dims: &PoolDims, lengths: Option<&[usize]>) -> Result<GpuTensor> {
    let lens: Vec<u32> = match lengths {
        Some(l) => l.iter().map(|&v| v as u32).collect(),
        None => vec![dims.seq_len as u32; dims.batch],
    };
    ctx.upload_u32(&[dims.batch], &lens)
}

/// The mean or maximum over each sequence's valid steps `0..lengths[b]` (all T without
/// lengths): `x` `[T, B, F]` (`[B, T, F]` with `batch_first`) into a new `[B, F]` tensor.
pub fn masked_pool<'c>(
    on: impl Record<'c>,
    x: &GpuTensor,
    lengths: Option<&[usize]>,
    mode: PoolMode,
    batch_first: bool,
) -> Result<GpuTensor> {
    const OP: &str = "masked_pool";
    let ctx = on.context();
    let (dims, p) = check(ctx, OP, x, lengths, batch_first)?;
    let lens = upload_lengths(ctx, &dims, lengths)?;
    let out = ctx.alloc(OP, "out", &dims.output_shape(), DType::F32)?;
    let mut rec = on.begin(OP);
    let groups = fold_x((p.n as usize).div_ceil(64));
    rec.dispatch(kernel(mode, false), &p, &[x, &lens, &out], groups)?;
    rec.finish()?;
    Ok(out)
}

/// Gradient of [`masked_pool`] with respect to `x`, given `dy` `[B, F]`: `dy / len` at every
/// valid step for the mean, `dy` at the maximum's step (the first, on ties) for the maximum,
/// 0 at the other steps and at every padded one. `x` is read only by the maximum.
pub fn masked_pool_backward<'c>(
    on: impl Record<'c>,
    x: &GpuTensor,
    lengths: Option<&[usize]>,
    mode: PoolMode,
    batch_first: bool,
    dy: &GpuTensor,
) -> Result<GpuTensor> {
    const OP: &str = "masked_pool_backward";
    let ctx = on.context();
    dy.check_context(ctx, OP, "dy")?;
    let (dims, p) = check(ctx, OP, x, lengths, batch_first)?;
    expect_f32(OP, "dy", dy, &dims.output_shape())?;
    let lens = upload_lengths(ctx, &dims, lengths)?;
    let dx = ctx.alloc(OP, "dx", x.shape(), DType::F32)?;
    let mut rec = on.begin(OP);
    let groups = fold_x((p.n as usize).div_ceil(64));
    rec.dispatch(kernel(mode, true), &p, &[x, &lens, dy, &dx], groups)?;
    rec.finish()?;
    Ok(dx)
}
