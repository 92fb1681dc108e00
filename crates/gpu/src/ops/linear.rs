//! Dense layer `y = x·Wᵀ + b` over the last axis, as one packed GEMM.

use wgrnn_core::{Error, LinearConfig, Result};

use crate::ops::matmul::{Out, Strided, check_packed_matrices, gemm, pack, pack_lhs};
use crate::runtime::context::Context;
use crate::runtime::recording::Record;
use crate::runtime::tensor::{DType, GpuTensor, OnContext, expect_f32};
use crate::runtime::weights::{DeviceLayout, GpuWeights, check_accumulator, grads_or};

const OP: &str = "linear_forward";

/// `y [..., out] = x [..., in] · Wᵀ + b` (the CPU reference's `linear_forward`).
pub fn linear_forward<'c>(
    on: impl Record<'c>,
    w: &GpuWeights<LinearConfig>,
    x: &GpuTensor,
) -> Result<GpuTensor> {
    let ctx = on.context();
    w.check_context(ctx, OP, "w")?;
    x.check_context(ctx, OP, "x")?;
    let cfg = w.config();
    let (fi, fo) = (cfg.in_features, cfg.out_features);
    let rows = match x.shape().split_last() {
        Some((&f, lead)) if f == fi && !lead.is_empty() && x.dtype() == DType::F32 => {
            lead.iter().product::<usize>()
        }
        _ => {
            return Err(Error::InvalidArgument {
                op: OP,
                arg: "x",
                reason: format!(
                    "must be f32 [..., {fi}] with at least one leading axis, has shape {:?}",
                    x.shape()
                ),
            });
        }
    };
    let mut shape = x.shape().to_vec();
    if let Some(l) = shape.last_mut() {
        *l = fo;
    }
    let y = ctx.alloc(OP, "y", &shape, DType::F32)?;
    let mut rec = on.begin(OP);
    if rows > 0 {
        let xt = pack_lhs(&mut rec, Strided::rows(x, rows, fi, 0))?;
        let wt = pack(&mut rec, Strided::rows(w.get("weight")?, fo, fi, 0))?;
        let bias = if cfg.bias { Some(w.get("bias")?) } else { None };
        gemm(&mut rec, &xt, &wt, bias, Out::rows(&y, fo))?;
    }
    rec.finish()?;
    Ok(y)
}

/// Gradients of a linear layer.
#[derive(Clone, Debug)]
pub struct GpuLinearGrads {
    pub dx: GpuTensor,
    pub weights: GpuWeights<LinearConfig>,
}

/// `dx = dy·W`, `dW = dyᵀ·x`, `db = Σ rows of dy`; with `accumulate`, the parameter gradients
/// are added into those tensors.
pub fn linear_backward<'c>(
    on: impl Record<'c>,
    w: &GpuWeights<LinearConfig>,
    x: &GpuTensor,
    dy: &GpuTensor,
    accumulate: Option<&GpuWeights<LinearConfig>>,
) -> Result<GpuLinearGrads> {
    let ctx = on.context();
    const BOP: &str = "linear_backward";
    w.check_context(ctx, BOP, "w")?;
    x.check_context(ctx, BOP, "x")?;
    dy.check_context(ctx, BOP, "dy")?;
    check_accumulator(ctx, BOP, w, accumulate)?;
    let cfg = w.config();
    let (fi, fo) = (cfg.in_features, cfg.out_features);
    let rows = match x.shape().split_last() {
        Some((&f, lead)) if f == fi && !lead.is_empty() && x.dtype() == DType::F32 => {
            lead.iter().product::<usize>()
        }
        _ => {
            let reason = format!(
                "must be f32 [..., {fi}] with at least one leading axis, has shape {:?}",
                x.shape()
            );
            return Err(Error::InvalidArgument {
                op: BOP,
                arg: "x",
                reason,
            });
        }
    };
    let mut y_shape = x.shape().to_vec();
    if let Some(l) = y_shape.last_mut() {
        *l = fo;
    }
    expect_f32(BOP, "dy", dy, &y_shape)?;
    let grads = grads_or(ctx, BOP, cfg, accumulate)?;
    let add = accumulate.is_some();
    let dx = ctx.alloc(BOP, "dx", x.shape(), DType::F32)?;
    let mut rec = on.begin(BOP);
    if rows == 0 {
        rec.clear(&dx);
        if !add {
            for t in grads.tensors().values() {
                rec.clear(t);
            }
        }
    } else {
        let dy_rows = pack_lhs(&mut rec, Strided::rows(dy, rows, fo, 0))?;
        let w_cols = pack(&mut rec, Strided::cols(w.get("weight")?, fo, fi, 0))?;
        gemm(&mut rec, &dy_rows, &w_cols, None, Out::rows(&dx, fi))?;
        let dy_t = pack_lhs(&mut rec, Strided::cols(dy, rows, fo, 0))?;
        let x_t = pack(&mut rec, Strided::cols(x, rows, fi, 0))?;
        gemm(
            &mut rec,
            &dy_t,
            &x_t,
            None,
            Out::rows(grads.get("weight")?, fi).accumulate(add),
        )?;
        if cfg.bias {
            crate::ops::reduce::col_sum(&mut rec, dy, 0, rows, fo, grads.get("bias")?, add)?;
        }
    }
    rec.finish()?;
    Ok(GpuLinearGrads { dx, weights: grads })
}

impl DeviceLayout for LinearConfig {
    fn check_device(&self, ctx: &Context) -> Result<()> {
        check_packed_matrices(ctx, "GpuWeights", self)
    }
}
