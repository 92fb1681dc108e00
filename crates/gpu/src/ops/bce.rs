//! Binary cross-entropy on logits on the device (PyTorch `BCEWithLogitsLoss`), with an
//! optional mask of ignored elements: the formula, the masking and the mean's divisor are
//! `wgrnn_cpu::bce`'s. Reductions run in a fixed order (chunks of 1,024 elements, then one
//! workgroup over the chunks), so a result is bit-reproducible; no float atomics.

use wgrnn_core::{Error, Reduction, Result, Tensor};

use crate::runtime::context::Context;
use crate::runtime::pipeline::{Access, Kernel};
use crate::runtime::record::fold_x;
use crate::runtime::recording::Record;
use crate::runtime::shaders::Shader;
use crate::runtime::tensor::{DType, GpuTensor, OnContext, expect_f32, u32_of};
use crate::runtime::uniforms::bce::BceParams;

const OP: &str = "binary_cross_entropy_with_logits";
const BOP: &str = "binary_cross_entropy_with_logits_backward";

// Every kernel but `bce_reduce` binds the five inputs first: logits, targets, weight,
// pos_weight, mask.
const ELEMENTS: Kernel = Kernel {
    shader: Shader::Bce,
    entry: "bce_elements",
    bindings: &[
        Access::Read,
        Access::Read,
        Access::Read,
        Access::Read,
        Access::Read,
        Access::ReadWrite,
    ],
};
const PARTIAL: Kernel = Kernel {
    shader: Shader::Bce,
    entry: "bce_partial",
    bindings: &[
        Access::Read,
        Access::Read,
        Access::Read,
        Access::Read,
        Access::Read,
        Access::ReadWrite,
        Access::ReadWrite,
    ],
};
const REDUCE: Kernel = Kernel {
    shader: Shader::Bce,
    entry: "bce_reduce",
    bindings: &[
        Access::Read,
        Access::Read,
        Access::ReadWrite,
        Access::ReadWrite,
    ],
};
const BACKWARD: Kernel = Kernel {
    shader: Shader::Bce,
    entry: "bce_backward",
    bindings: &[
        Access::Read,
        Access::Read,
        Access::Read,
        Access::Read,
        Access::Read,
        Access::Read,
        Access::Read,
        Access::ReadWrite,
    ],
};

/// Elements per chunk of `bce_partial` (64 invocations × 16).
const CHUNK: usize = 1024;

/// The inputs of [`binary_cross_entropy_with_logits`] on the device: f32 `logits` and
/// `targets` of one shape, optional f32 `weight` (same shape) and `pos_weight` `[C]` (C the
/// logits' last axis), and an optional u32 `mask` (same shape; 0 ignores the element, see
/// [`upload_mask`]).
#[derive(Clone, Copy, Debug)]
pub struct GpuBceInput<'a> {
    pub logits: &'a GpuTensor,
    pub targets: &'a GpuTensor,
    pub weight: Option<&'a GpuTensor>,
    pub pos_weight: Option<&'a GpuTensor>,
    pub mask: Option<&'a GpuTensor>,
}

impl<'a> GpuBceInput<'a> {
    pub fn new(logits: &'a GpuTensor, targets: &'a GpuTensor) -> Self {
        Self {
            logits,
            targets,
            weight: None,
            pos_weight: None,
            mask: None,
        }
    }

    pub fn weight(mut self, weight: &'a GpuTensor) -> Self {
        self.weight = Some(weight);
        self
    }

    pub fn pos_weight(mut self, pos_weight: &'a GpuTensor) -> Self {
        self.pos_weight = Some(pos_weight);
        self
    }

    pub fn mask(mut self, mask: &'a GpuTensor) -> Self {
        self.mask = Some(mask);
        self
    }

    /// The tensors the kernels bind, stand-ins (the logits, never read then) for absent ones.
    fn bound(&self) -> [&'a GpuTensor; 5] {
        let or = |t: Option<&'a GpuTensor>| t.unwrap_or(self.logits);
        [
            self.logits,
            self.targets,
            or(self.weight),
            or(self.pos_weight),
            or(self.mask),
        ]
    }

    /// Every check of the inputs, and the parameter block they give.
    fn check(&self, ctx: &Context, op: &'static str) -> Result<BceParams> {
        self.logits.check_context(ctx, op, "logits")?;
        self.targets.check_context(ctx, op, "targets")?;
        self.weight.check_context(ctx, op, "weight")?;
        self.pos_weight.check_context(ctx, op, "pos_weight")?;
        self.mask.check_context(ctx, op, "mask")?;
        let shape = self.logits.shape();
        expect_f32(op, "logits", self.logits, shape)?;
        expect_f32(op, "targets", self.targets, shape)?;
        if let Some(w) = self.weight {
            expect_f32(op, "weight", w, shape)?;
        }
        if let Some(m) = self.mask {
            if m.dtype() != DType::U32 {
                return Err(Error::invalid_argument(
                    op,
                    "mask",
                    format!("must be u32 (see upload_mask), is {:?}", m.dtype()),
                ));
            }
            if m.shape() != shape {
                return Err(Error::shape(op, "mask", shape, m.shape()));
            }
        }
        let classes = match (self.pos_weight, shape.last()) {
            (None, _) => 1,
            (Some(_), None) => {
                return Err(Error::invalid_argument(
                    op,
                    "pos_weight",
                    "needs logits with a class axis (the last); the logits are a scalar",
                ));
            }
            (Some(pw), Some(&c)) => {
                expect_f32(op, "pos_weight", pw, &[c])?;
                c.max(1)
            }
        };
        let n = u32_of(op, "logits", self.logits.numel())?;
        Ok(BceParams {
            n,
            classes: classes as u32,
            has_weight: self.weight.is_some() as u32,
            has_pos_weight: self.pos_weight.is_some() as u32,
            has_mask: self.mask.is_some() as u32,
            groups: self.logits.numel().div_ceil(CHUNK) as u32,
            ..Default::default()
        })
    }
}

/// A host mask on the device as u32 (1 counted, 0 ignored), for [`GpuBceInput::mask`].
pub fn upload_mask(ctx: &Context, mask: &Tensor<bool>) -> Result<GpuTensor> {
    let data: Vec<u32> = mask.data().iter().map(|&m| m as u32).collect();
    ctx.upload_u32(mask.shape(), &data)
}

/// Result of [`binary_cross_entropy_with_logits`]: device tensors, read only when asked.
#[derive(Clone, Debug)]
pub struct GpuBce {
    /// Shape `[]` for `Mean` and `Sum`; the logits' shape for `None` (0 where ignored).
    pub loss: GpuTensor,
    /// `[1]` u32: the elements that count (the mean's divisor).
    pub count: GpuTensor,
    reduction: Reduction,
}

impl GpuBce {
    /// The reduction the loss was computed with (backward applies the same).
    pub fn reduction(&self) -> Reduction {
        self.reduction
    }
}

fn reduction_code(r: Reduction) -> u32 {
    match r {
        Reduction::None => 0,
        Reduction::Mean => 1,
        Reduction::Sum => 2,
    }
}

/// The BCE-with-logits loss of `input` (`wgrnn_cpu::binary_cross_entropy_with_logits`'s
/// formula and masking), reduced by `reduction`; the count of counted elements beside it.
pub fn binary_cross_entropy_with_logits<'c>(
    on: impl Record<'c>,
    input: GpuBceInput,
    reduction: Reduction,
) -> Result<GpuBce> {
    let ctx = on.context();
    let mut p = input.check(ctx, OP)?;
    p.reduction = reduction_code(reduction);
    let n = input.logits.numel();
    let groups = p.groups as usize;
    // `bce_reduce` sums the chunks in one workgroup, each invocation every 64th chunk.
    ctx.check_loop(OP, "logits", groups.div_ceil(64) as u64 + 8)?;
    let loss_shape: &[usize] = match reduction {
        Reduction::None => input.logits.shape(),
        Reduction::Mean | Reduction::Sum => &[],
    };
    let elements = ctx.alloc(OP, "loss", loss_shape, DType::F32)?;
    // With `None` the reduced loss has no use but the count does: it goes to a scratch scalar.
    let reduced = match reduction {
        Reduction::None => ctx.alloc(OP, "loss", &[], DType::F32)?,
        Reduction::Mean | Reduction::Sum => elements.clone(),
    };
    let count = ctx.alloc(OP, "count", &[1], DType::U32)?;
    let sums = ctx.alloc(OP, "partial sums", &[groups.max(1)], DType::F32)?;
    let counts = ctx.alloc(OP, "partial counts", &[groups.max(1)], DType::U32)?;
    let [x, y, w, pw, m] = input.bound();
    let mut rec = on.begin(OP);
    if reduction == Reduction::None {
        let g = fold_x(n.div_ceil(64));
        rec.dispatch(ELEMENTS, &p, &[x, y, w, pw, m, &elements], g)?;
    }
    rec.dispatch(
        PARTIAL,
        &p,
        &[x, y, w, pw, m, &sums, &counts],
        fold_x(groups),
    )?;
    rec.dispatch(REDUCE, &p, &[&sums, &counts, &reduced, &count], [1, 1, 1])?;
    rec.finish()?;
    Ok(GpuBce {
        loss: elements,
        count,
        reduction,
    })
}

/// The gradient of [`binary_cross_entropy_with_logits`] with respect to the logits, for the
/// same `input` and its result `forward`, given `dloss` of the loss's shape (`[]` for `Mean` and
/// `Sum`, the logits' for `None`): `w·(σ(x)·(1 + (pw − 1)·y) − pw·y)` times `dloss / count`,
/// `dloss` or `dlossᵢ`; 0 where ignored. The count stays on the device: no readback.
pub fn binary_cross_entropy_with_logits_backward<'c>(
    on: impl Record<'c>,
    input: GpuBceInput,
    forward: &GpuBce,
    dloss: &GpuTensor,
) -> Result<GpuTensor> {
    let ctx = on.context();
    let mut p = input.check(ctx, BOP)?;
    p.reduction = reduction_code(forward.reduction);
    forward.count.check_context(ctx, BOP, "forward.count")?;
    dloss.check_context(ctx, BOP, "dloss")?;
    if forward.count.shape() != [1] || forward.count.dtype() != DType::U32 {
        return Err(Error::invalid_argument(
            BOP,
            "forward.count",
            format!(
                "must be the forward's u32 [1], is {:?} of shape {:?}",
                forward.count.dtype(),
                forward.count.shape()
            ),
        ));
    }
    let want: &[usize] = match forward.reduction {
        Reduction::None => input.logits.shape(),
        Reduction::Mean | Reduction::Sum => &[],
    };
    expect_f32(BOP, "dloss", dloss, want)?;
    let out = ctx.alloc(BOP, "dlogits", input.logits.shape(), DType::F32)?;
    let [x, y, w, pw, m] = input.bound();
    let mut rec = on.begin(BOP);
    let g = fold_x(input.logits.numel().div_ceil(64));
    rec.dispatch(
        BACKWARD,
        &p,
        &[x, y, w, pw, m, dloss, &forward.count, &out],
        g,
    )?;
    rec.finish()?;
    Ok(out)
}
