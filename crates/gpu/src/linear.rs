//! Dense layer `y = x·Wᵀ + b` over the last axis, as one packed GEMM.

use wgrnn_core::{Error, LinearConfig, Result};

use crate::buffer::{DType, GpuTensor};
use crate::context::Context;
use crate::gemm::{Out, Strided, gemm, pack};
use crate::record::Recorder;
use crate::weights::GpuWeights;

const OP: &str = "gpu linear_forward";

/// `y [..., out] = x [..., in] · Wᵀ + b` (the CPU reference's `linear_forward`).
pub fn linear_forward(
    ctx: &Context,
    w: &GpuWeights<LinearConfig>,
    x: &GpuTensor,
) -> Result<GpuTensor> {
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
    let mut rec = Recorder::new(ctx, OP);
    if rows > 0 {
        let xt = pack(&mut rec, Strided::rows(x, rows, fi, 0))?;
        let wt = pack(&mut rec, Strided::rows(w.get("weight")?, fo, fi, 0))?;
        let bias = if cfg.bias { Some(w.get("bias")?) } else { None };
        gemm(&mut rec, &xt, &wt, bias, Out::rows(&y, fo))?;
    }
    rec.submit()?;
    Ok(y)
}
