//! Log-softmax and softmax cross-entropy on the device (classes on the last axis).

use wgrnn_core::{Error, Result, Tensor};

use crate::runtime::context::Context;
use crate::runtime::pipeline::{Access, Kernel};
use crate::runtime::record::{fold_x, fold_y};
use crate::runtime::recording::Record;
use crate::runtime::shaders::Shader;
use crate::runtime::tensor::{DType, GpuTensor, OnContext};
use crate::runtime::uniforms::loss::{BackParams, RowParams};

const OP: &str = "cross_entropy";
const ROWS: Kernel = Kernel {
    shader: Shader::Loss,
    entry: "ce_rows",
    bindings: &[Access::Read, Access::Read, Access::ReadWrite],
};
const REDUCE: Kernel = Kernel {
    shader: Shader::Loss,
    entry: "ce_reduce",
    bindings: &[Access::Read, Access::ReadWrite],
};
const BACKWARD: Kernel = Kernel {
    shader: Shader::Loss,
    entry: "ce_backward",
    bindings: &[
        Access::Read,
        Access::Read,
        Access::Read,
        Access::Read,
        Access::ReadWrite,
    ],
};
const LOG_SOFTMAX: Kernel = Kernel {
    shader: Shader::Loss,
    entry: "log_softmax_rows",
    bindings: &[Access::Read, Access::ReadWrite],
};

/// Classes beyond which a row is one workgroup of 64 (`ce_rows_wide`, `log_softmax_rows_wide`)
/// instead of one invocation on GPUs, which gain from spreading a wide row.
const WIDE_CLASSES: usize = 4096;

/// The row kernel for `classes` and its workgroups: one invocation per row, or for wide rows a
/// workgroup. On an adapter with a loop limit (CPU adapters) one invocation per row is much
/// faster (lavapipe, 8,192 rows of 100 classes: 7 ms against 54; 2,048 rows of 10,000: 157
/// against 189), so it stays until its three loops over the row would reach the limit. Past
/// that the workgroup's `wide_loops` loops over every 64th class (2 for cross-entropy's
/// log-sum-exp, 3 for log-softmax, which also writes the row) must stay under it too.
fn row_kernel(
    ctx: &Context,
    op: &'static str,
    (narrow, wide, wide_loops): (Kernel, &'static str, u64),
    rows: usize,
    classes: usize,
) -> Result<(Kernel, [u32; 3])> {
    let widest_narrow = match ctx.loop_limit() {
        Some(limit) => (limit as usize - 64) / 3,
        None => WIDE_CLASSES,
    };
    let (kernel, per_group) = if classes > widest_narrow {
        // The strided loops over the row and two trees of six levels each.
        ctx.check_loop(op, "logits", wide_loops * classes.div_ceil(64) as u64 + 16)?;
        (
            Kernel {
                entry: wide,
                ..narrow
            },
            1,
        )
    } else {
        (narrow, 64)
    };
    Ok((kernel, fold_x(rows.div_ceil(per_group))))
}

/// Device marker of an ignored target.
pub const IGNORED: u32 = u32::MAX;

/// Class targets on the device (u32, ignored ones as [`IGNORED`]) with the class count they
/// were checked against, which [`cross_entropy`] holds to at most the logits' C: a target
/// outside the logits' classes is an error, never a row the kernel skips in silence.
#[derive(Clone, Debug)]
pub struct GpuTargets {
    targets: GpuTensor,
    classes: usize,
}

impl GpuTargets {
    /// The targets as a u32 device tensor.
    pub fn tensor(&self) -> &GpuTensor {
        &self.targets
    }

    /// The class count every target was checked against.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// Checks these targets against `logits [..., C]`: shape `[...]` and `C` classes.
    fn check(&self, op: &'static str, logits: &GpuTensor, c: usize) -> Result<()> {
        let lead = &logits.shape()[..logits.shape().len() - 1];
        if self.targets.shape() != lead {
            return Err(Error::shape(op, "targets", lead, self.targets.shape()));
        }
        // Targets checked against fewer classes are classes of these logits too.
        if self.classes > c {
            return Err(Error::InvalidArgument {
                op,
                arg: "targets",
                reason: format!(
                    "were checked against {} classes, more than the {c} of the logits {:?}",
                    self.classes,
                    logits.shape()
                ),
            });
        }
        Ok(())
    }
}

/// Uploads class targets after checking each lies in `0..classes` or equals `ignore_index`
/// (stored as [`IGNORED`]).
pub fn upload_targets(
    ctx: &Context,
    targets: &Tensor<i64>,
    classes: usize,
    ignore_index: Option<i64>,
) -> Result<GpuTargets> {
    let mut out = Vec::with_capacity(targets.numel());
    for (index, &id) in targets.data().iter().enumerate() {
        if Some(id) == ignore_index {
            out.push(IGNORED);
        } else if id < 0 || id as u64 >= classes as u64 || id >= IGNORED as i64 {
            return Err(Error::IdOutOfRange {
                op: "upload_targets",
                arg: "targets",
                index,
                id,
                limit: classes,
            });
        } else {
            out.push(id as u32);
        }
    }
    Ok(GpuTargets {
        targets: ctx.upload_u32(targets.shape(), &out)?,
        classes,
    })
}

/// Result of [`cross_entropy`]: device scalars, read only when asked.
#[derive(Clone, Debug)]
pub struct GpuCrossEntropy {
    /// `[loss, count]`: the mean NLL over counted targets (0 if none) and their number.
    pub loss: GpuTensor,
    /// Per row `[lse | nll | counted]` (3N floats), what backward needs.
    pub rows: GpuTensor,
}

fn rows_and_classes(op: &'static str, logits: &GpuTensor) -> Result<(usize, usize)> {
    match logits.shape().split_last() {
        Some((&c, lead)) if c > 0 && logits.dtype() == DType::F32 => Ok((lead.iter().product(), c)),
        _ => Err(Error::InvalidArgument {
            op,
            arg: "logits",
            reason: format!(
                "must be f32 [..., C] with C ≥ 1, has shape {:?}",
                logits.shape()
            ),
        }),
    }
}

/// Mean softmax cross-entropy of `logits [..., C]` against `targets [...]` (see
/// [`upload_targets`]), reduced in a fixed order so the result is bit-reproducible.
pub fn cross_entropy<'c>(
    on: impl Record<'c>,
    logits: &GpuTensor,
    targets: &GpuTargets,
) -> Result<GpuCrossEntropy> {
    let ctx = on.context();
    logits.check_context(ctx, OP, "logits")?;
    targets.tensor().check_context(ctx, OP, "targets")?;
    let (n, c) = rows_and_classes(OP, logits)?;
    targets.check(OP, logits, c)?;
    let targets = targets.tensor();
    let rows = ctx.alloc(OP, "rows", &[3, n], DType::F32)?;
    let loss = ctx.alloc(OP, "loss", &[2], DType::F32)?;
    let p = RowParams {
        rows: n as u32,
        classes: c as u32,
        ..Default::default()
    };
    // `ce_reduce` sums the rows in one workgroup of 64, each invocation every 64th row.
    ctx.check_loop(OP, "logits", n.div_ceil(64) as u64 + 8)?;
    let mut rec = on.begin(OP);
    let (kernel, groups) = row_kernel(ctx, OP, (ROWS, "ce_rows_wide", 2), n, c)?;
    rec.dispatch(kernel, &p, &[logits, targets, &rows], groups)?;
    rec.dispatch(REDUCE, &p, &[&rows, &loss], [1, 1, 1])?;
    rec.finish()?;
    Ok(GpuCrossEntropy { loss, rows })
}

/// Log-softmax over the last axis.
pub fn log_softmax<'c>(on: impl Record<'c>, logits: &GpuTensor) -> Result<GpuTensor> {
    let ctx = on.context();
    logits.check_context(ctx, "log_softmax", "logits")?;
    let (n, c) = rows_and_classes("log_softmax", logits)?;
    let out = ctx.alloc("log_softmax", "out", logits.shape(), DType::F32)?;
    let p = RowParams {
        rows: n as u32,
        classes: c as u32,
        ..Default::default()
    };
    let mut rec = on.begin("log_softmax");
    let (kernel, groups) = row_kernel(
        ctx,
        "log_softmax",
        (LOG_SOFTMAX, "log_softmax_rows_wide", 3),
        n,
        c,
    )?;
    rec.dispatch(kernel, &p, &[logits, &out], groups)?;
    rec.finish()?;
    Ok(out)
}

/// Gradient of [`cross_entropy`] with respect to the logits, scaled by `dloss`:
/// `(softmax − onehot)·dloss/count` on counted rows, 0 on ignored ones. Reads the count and the
/// saved log-sum-exps from `forward` on the device: no readback between loss and backward.
pub fn cross_entropy_backward<'c>(
    on: impl Record<'c>,
    logits: &GpuTensor,
    targets: &GpuTargets,
    forward: &GpuCrossEntropy,
    dloss: f32,
) -> Result<GpuTensor> {
    let ctx = on.context();
    const BOP: &str = "cross_entropy_backward";
    logits.check_context(ctx, BOP, "logits")?;
    targets.tensor().check_context(ctx, BOP, "targets")?;
    forward.loss.check_context(ctx, BOP, "forward.loss")?;
    forward.rows.check_context(ctx, BOP, "forward.rows")?;
    let (n, c) = rows_and_classes(BOP, logits)?;
    targets.check(BOP, logits, c)?;
    let targets = targets.tensor();
    if forward.rows.shape() != [3, n] {
        return Err(Error::shape(
            BOP,
            "forward.rows",
            &[3, n],
            forward.rows.shape(),
        ));
    }
    if forward.loss.shape() != [2] {
        return Err(Error::shape(
            BOP,
            "forward.loss",
            &[2],
            forward.loss.shape(),
        ));
    }
    let out = ctx.alloc(BOP, "dlogits", logits.shape(), DType::F32)?;
    let p = BackParams {
        rows: n as u32,
        classes: c as u32,
        dloss,
        ..Default::default()
    };
    let mut rec = on.begin(BOP);
    rec.dispatch(
        BACKWARD,
        &p,
        &[logits, targets, &forward.rows, &forward.loss, &out],
        fold_y(c.div_ceil(64), n.div_ceil(4)),
    )?;
    rec.finish()?;
    Ok(out)
}
