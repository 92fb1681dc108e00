//! Elementwise combinations of device tensors of one shape.

use wgrnn_core::{Error, Result};

use crate::runtime::context::Context;
use crate::runtime::pipeline::{Access, Kernel};
use crate::runtime::record::fold_x;
use crate::runtime::recording::Record;
use crate::runtime::shaders::Shader;
use crate::runtime::tensor::{DType, GpuTensor, OnContext};
use crate::runtime::uniforms::elementwise::AxpbyParams;

const AXPBY: Kernel = Kernel {
    shader: Shader::Elementwise,
    entry: "axpby",
    bindings: &[Access::Read, Access::Read, Access::ReadWrite],
};
const AXPY_INTO: Kernel = Kernel {
    shader: Shader::Elementwise,
    entry: "axpy_into",
    bindings: &[Access::Read, Access::ReadWrite],
};

fn check(
    ctx: &Context,
    op: &'static str,
    (xn, x): (&str, &GpuTensor),
    (yn, y): (&str, &GpuTensor),
) -> Result<()> {
    x.check_context(ctx, op, xn)?;
    y.check_context(ctx, op, yn)?;
    if x.dtype() != DType::F32 || y.dtype() != DType::F32 {
        return Err(Error::InvalidArgument {
            op,
            arg: "x, y",
            reason: "must be f32".into(),
        });
    }
    if x.shape() != y.shape() {
        return Err(Error::shape(op, yn.to_string(), x.shape(), y.shape()));
    }
    Ok(())
}

fn groups(n: usize) -> [u32; 3] {
    fold_x(n.div_ceil(64))
}

/// `a·x + b·y` into a new tensor.
pub fn axpby<'c>(
    on: impl Record<'c>,
    a: f32,
    x: &GpuTensor,
    b: f32,
    y: &GpuTensor,
) -> Result<GpuTensor> {
    const OP: &str = "axpby";
    let ctx = on.context();
    check(ctx, OP, ("x", x), ("y", y))?;
    let out = ctx.alloc(OP, "out", x.shape(), DType::F32)?;
    let mut rec = on.begin(OP);
    let p = AxpbyParams {
        n: x.numel() as u32,
        a,
        b,
        ..Default::default()
    };
    rec.dispatch(AXPBY, &p, &[x, y, &out], groups(x.numel()))?;
    rec.finish()?;
    Ok(out)
}

/// `x + y` into a new tensor.
pub fn add<'c>(on: impl Record<'c>, x: &GpuTensor, y: &GpuTensor) -> Result<GpuTensor> {
    axpby(on, 1.0, x, 1.0, y)
}

/// `acc += a·x` in place.
pub fn axpy_into<'c>(on: impl Record<'c>, acc: &GpuTensor, a: f32, x: &GpuTensor) -> Result<()> {
    const OP: &str = "axpy_into";
    let ctx = on.context();
    check(ctx, OP, ("x", x), ("acc", acc))?;
    if x.same_buffer(acc) {
        return Err(Error::InvalidArgument {
            op: OP,
            arg: "x",
            reason: "must not share storage with acc".into(),
        });
    }
    let mut rec = on.begin(OP);
    let p = AxpbyParams {
        n: x.numel() as u32,
        a,
        b: 1.0,
        ..Default::default()
    };
    rec.dispatch(AXPY_INTO, &p, &[x, acc], groups(x.numel()))?;
    rec.finish()
}

/// Rows `start..start + len` of `x` along its first axis, copied into a new tensor (for
/// example one direction's `h_n[d]` of a bidirectional layer).
pub fn narrow<'c>(
    on: impl Record<'c>,
    x: &GpuTensor,
    start: usize,
    len: usize,
) -> Result<GpuTensor> {
    const OP: &str = "narrow";
    let ctx = on.context();
    x.check_context(ctx, OP, "x")?;
    let Some((&rows, rest)) = x.shape().split_first() else {
        return Err(Error::InvalidArgument {
            op: OP,
            arg: "x",
            reason: "must have at least one axis".into(),
        });
    };
    if len == 0 || start.checked_add(len).is_none_or(|end| end > rows) {
        return Err(Error::InvalidArgument {
            op: OP,
            arg: "start, len",
            reason: format!(
                "rows {start}..{} are not a non-empty part of x's first axis (shape {:?})",
                start.saturating_add(len),
                x.shape()
            ),
        });
    }
    let row = row_len(OP, "x", x.shape())?;
    let shape: Vec<usize> = std::iter::once(len).chain(rest.iter().copied()).collect();
    let out = ctx.alloc(OP, "out", &shape, x.dtype())?;
    let mut rec = on.begin(OP);
    rec.copy(x, start * row, &out, 0, len * row);
    rec.finish()?;
    Ok(out)
}

/// Elements per row along the first axis of `shape`: an error where the product overflows, as
/// it can for an empty tensor reshaped to `[0, usize::MAX, 2]`.
fn row_len(op: &'static str, arg: &str, shape: &[usize]) -> Result<usize> {
    wgrnn_core::tensor::checked_numel(&shape[1..]).ok_or_else(|| Error::TooLarge {
        op,
        arg: format!("{arg} of shape {shape:?} (elements per row)"),
        size: u64::MAX,
        unit: "elements",
        limit_name: "usize::MAX",
        limit: usize::MAX as u64,
    })
}

/// `parts` stacked along their first axis into a new tensor; the other axes and the dtype
/// must agree (the inverse of [`narrow`]).
pub fn concat<'c>(on: impl Record<'c>, parts: &[&GpuTensor]) -> Result<GpuTensor> {
    const OP: &str = "concat";
    let ctx = on.context();
    for (i, p) in parts.iter().enumerate() {
        p.check_context(ctx, OP, &format!("parts[{i}]"))?;
    }
    let Some(first) = parts.first() else {
        return Err(Error::InvalidArgument {
            op: OP,
            arg: "parts",
            reason: "is empty".into(),
        });
    };
    let Some((_, rest)) = first.shape().split_first() else {
        return Err(Error::InvalidArgument {
            op: OP,
            arg: "parts[0]",
            reason: "must have at least one axis".into(),
        });
    };
    let mut rows = 0;
    for p in parts {
        if p.shape().len() != first.shape().len()
            || &p.shape()[1..] != rest
            || p.dtype() != first.dtype()
        {
            let want: Vec<usize> = std::iter::once(p.shape().first().copied().unwrap_or(0))
                .chain(rest.iter().copied())
                .collect();
            return Err(Error::shape(OP, "parts", &want, p.shape()));
        }
        rows = usize::checked_add(rows, p.shape()[0]).ok_or_else(|| Error::TooLarge {
            op: OP,
            arg: "parts (rows)".into(),
            size: u64::MAX,
            unit: "rows",
            limit_name: "usize::MAX",
            limit: usize::MAX as u64,
        })?;
    }
    let row = row_len(OP, "parts[0]", first.shape())?;
    let shape: Vec<usize> = std::iter::once(rows).chain(rest.iter().copied()).collect();
    let out = ctx.alloc(OP, "out", &shape, first.dtype())?;
    let mut rec = on.begin(OP);
    let mut at = 0;
    for p in parts {
        rec.copy(p, 0, &out, at, p.numel());
        at += p.numel();
    }
    debug_assert_eq!(at, rows * row);
    rec.finish()?;
    Ok(out)
}
