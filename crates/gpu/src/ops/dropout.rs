//! Dropout on the device (PyTorch `nn.functional.dropout`), its mask drawn by Philox4x32-10
//! from (seed, stream, element index) exactly as `wgrnn_cpu::dropout` draws it: the same
//! arguments give the same mask on both, bit for bit.

use wgrnn_core::{DropoutConfig, Error, Result};

use crate::runtime::pipeline::{Access, Kernel};
use std::ops::Range;

use crate::runtime::record::{Recorder, fold_x};
use crate::runtime::recording::Record;
use crate::runtime::shaders::Shader;
use crate::runtime::tensor::{DType, GpuTensor, OnContext, u32_of};
use crate::runtime::uniforms::dropout::DropoutParams;

const APPLY: Kernel = Kernel {
    shader: Shader::Dropout,
    entry: "dropout_apply",
    bindings: &[Access::Read, Access::ReadWrite],
};

/// `x · m` into a new tensor, `m` the mask of (`cfg`, `seed`, `stream`); a copy of `x` when
/// `cfg` is inactive (inference, or `p` = 0).
fn apply<'c>(
    on: impl Record<'c>,
    op: &'static str,
    (arg, x): (&'static str, &GpuTensor),
    cfg: &DropoutConfig,
    seed: u64,
    stream: u32,
) -> Result<GpuTensor> {
    let ctx = on.context();
    x.check_context(ctx, op, arg)?;
    cfg.validate()?;
    if x.dtype() != DType::F32 {
        return Err(Error::invalid_argument(
            op,
            arg,
            format!("must be f32, is {:?} of shape {:?}", x.dtype(), x.shape()),
        ));
    }
    // The kernel's element index is a u32 (the counter's high word is 0 on the device).
    u32_of(op, arg, x.numel())?;
    let out = ctx.alloc(op, "out", x.shape(), DType::F32)?;
    let mut rec = on.begin(op);
    let mask = Mask { cfg, seed, stream };
    record(&mut rec, x, &out, &mask, 0..x.numel())?;
    rec.finish()?;
    Ok(out)
}

/// A dropout mask: its config and (seed, stream).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Mask<'a> {
    pub cfg: &'a DropoutConfig,
    pub seed: u64,
    pub stream: u32,
}

/// Records `out[i] = x[i] · m[i]` for the elements `range` of two tensors of one shape, `m`
/// the mask's multipliers by element index in the whole tensor (so a chunk of rows gets the
/// mask the whole tensor would); a copy where the mask is inactive. Indices must fit a u32.
pub(crate) fn record(
    rec: &mut Recorder<'_>,
    x: &GpuTensor,
    out: &GpuTensor,
    mask: &Mask<'_>,
    range: Range<usize>,
) -> Result<()> {
    if range.is_empty() {
        return Ok(());
    }
    if !mask.cfg.is_active() {
        rec.copy(x, range.start, out, range.start, range.len());
        return Ok(());
    }
    let (base, n) = (range.start as u32, range.len() as u32);
    let first = base / 4;
    let blocks = u32_of("dropout", "x", range.end.div_ceil(4))?;
    let p = DropoutParams {
        n,
        blocks,
        seed_lo: mask.seed as u32,
        seed_hi: (mask.seed >> 32) as u32,
        stream: mask.stream,
        threshold: mask.cfg.threshold(),
        scale: mask.cfg.scale() as f32,
        base,
    };
    let groups = fold_x(((blocks - first) as usize).div_ceil(64));
    rec.dispatch(APPLY, &p, &[x, out], groups)
}

/// `x` with each element kept with probability `1 − p` and scaled by `1 / (1 − p)`, else
/// zeroed (a product: NaN stays NaN), in training mode; a copy of `x` in inference mode or
/// with `p` = 0. Elements are indexed linearly over the whole tensor; `seed` and `stream`
/// choose the mask, the same one `wgrnn_cpu::dropout` draws from them. An error if `cfg.p` is
/// outside [0, 1) or `x` is not f32.
pub fn dropout<'c>(
    on: impl Record<'c>,
    x: &GpuTensor,
    cfg: &DropoutConfig,
    seed: u64,
    stream: u32,
) -> Result<GpuTensor> {
    apply(on, "dropout", ("x", x), cfg, seed, stream)
}

/// The gradient of [`dropout`] with respect to `x`: `dy` times the forward call's mask (pass
/// the same `cfg`, `seed` and `stream`; nothing is kept between the two calls).
pub fn dropout_backward<'c>(
    on: impl Record<'c>,
    dy: &GpuTensor,
    cfg: &DropoutConfig,
    seed: u64,
    stream: u32,
) -> Result<GpuTensor> {
    apply(on, "dropout_backward", ("dy", dy), cfg, seed, stream)
}
