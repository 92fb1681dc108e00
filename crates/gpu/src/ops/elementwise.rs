//! Elementwise combinations of device tensors of one shape, and joining and cutting tensors
//! along one axis (`concat`, `narrow`, `narrow_backward`; shape rules in `wgrnn_core::axis`).

use wgrnn_core::{Error, Result};

use wgrnn_core::axis::{AxisView, concat_shape, narrow_backward_axis, narrow_shape};

use crate::runtime::context::Context;
use crate::runtime::pipeline::{Access, Kernel};
use crate::runtime::record::{Recorder, fold_x};
use crate::runtime::recording::Record;
use crate::runtime::shaders::Shader;
use crate::runtime::tensor::{DType, GpuTensor, OnContext, u32_of};
use crate::runtime::uniforms::elementwise::{AxpbyParams, StridedParams};

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
const STRIDED_COPY: Kernel = Kernel {
    shader: Shader::Elementwise,
    entry: "strided_copy",
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

/// `outer` blocks of `chunk` elements, block o from `src_off + o·src_stride` of the source to
/// `dst_off + o·dst_stride` of the destination (offsets and strides in elements).
struct Blocks {
    outer: usize,
    chunk: usize,
    src_off: usize,
    src_stride: usize,
    dst_off: usize,
    dst_stride: usize,
}

/// Records the copy of `b` from `src` to `dst`: one buffer copy where the blocks are
/// contiguous on both sides (always along the first axis), else one `strided_copy` dispatch.
fn place(
    rec: &mut Recorder,
    op: &'static str,
    src: &GpuTensor,
    dst: &GpuTensor,
    b: Blocks,
) -> Result<()> {
    let n = b.outer * b.chunk;
    if n == 0 {
        return Ok(());
    }
    if b.outer == 1 || (b.src_stride == b.chunk && b.dst_stride == b.chunk) {
        rec.copy(src, b.src_off, dst, b.dst_off, n);
        return Ok(());
    }
    // Every index is below a bound tensor's element count, which the binding limit holds
    // under u32; u32_of keeps that an error rather than an assumption.
    let p = StridedParams {
        n: u32_of(op, "out (elements)", n)?,
        chunk: u32_of(op, "out (elements per block)", b.chunk)?,
        src_off: u32_of(op, "source offset", b.src_off)?,
        src_stride: u32_of(op, "source stride", b.src_stride)?,
        dst_off: u32_of(op, "destination offset", b.dst_off)?,
        dst_stride: u32_of(op, "destination stride", b.dst_stride)?,
        ..Default::default()
    };
    rec.dispatch(STRIDED_COPY, &p, &[src, dst], groups(n))
}

/// Steps `start..start + len` of axis `dim` of `x` (negative from the end, as PyTorch's
/// `Tensor.narrow(dim, start, length)`), copied into a new tensor: one direction's `h_n[d]`
/// of a bidirectional layer is `narrow(on, &h_n, 0, d, 1)`, the first H features of a
/// `[B, 2H]` tensor `narrow(on, &y, -1, 0, h)`. Any dtype; bits are copied.
pub fn narrow<'c>(
    on: impl Record<'c>,
    x: &GpuTensor,
    dim: isize,
    start: usize,
    len: usize,
) -> Result<GpuTensor> {
    const OP: &str = "narrow";
    let ctx = on.context();
    x.check_context(ctx, OP, "x")?;
    let (d, shape) = narrow_shape(OP, x.shape(), dim, start, len)?;
    let v = AxisView::of(OP, "x", x.shape(), d)?;
    let out = ctx.alloc(OP, "out", &shape, x.dtype())?;
    let mut rec = on.begin(OP);
    let b = Blocks {
        outer: v.nonempty_blocks(),
        chunk: len * v.inner,
        src_off: start * v.inner,
        src_stride: v.block(),
        dst_off: 0,
        dst_stride: len * v.inner,
    };
    place(&mut rec, OP, x, &out, b)?;
    rec.finish()?;
    Ok(out)
}

/// Gradient of [`narrow`]: `dy` placed at `start` of axis `dim` of a new zero tensor of
/// `input_shape` (the narrowed tensor's shape), PyTorch's `slice_backward`. The gradient of
/// [`concat()`] is a [`narrow()`] per part.
pub fn narrow_backward<'c>(
    on: impl Record<'c>,
    dy: &GpuTensor,
    input_shape: &[usize],
    dim: isize,
    start: usize,
) -> Result<GpuTensor> {
    const OP: &str = "narrow_backward";
    let ctx = on.context();
    dy.check_context(ctx, OP, "dy")?;
    let d = narrow_backward_axis(OP, dy.shape(), input_shape, dim, start)?;
    let v = AxisView::of(OP, "input_shape", input_shape, d)?;
    let dx = ctx.alloc(OP, "dx", input_shape, dy.dtype())?;
    let mut rec = on.begin(OP);
    rec.clear(&dx);
    let chunk = dy.shape()[d] * v.inner;
    let b = Blocks {
        outer: v.nonempty_blocks(),
        chunk,
        src_off: 0,
        src_stride: chunk,
        dst_off: start * v.inner,
        dst_stride: v.block(),
    };
    place(&mut rec, OP, dy, &dx, b)?;
    rec.finish()?;
    Ok(dx)
}

/// `parts` joined along axis `dim` (negative from the end, as PyTorch's
/// `torch.cat(tensors, dim)`) into a new tensor; the other axes and the dtype must agree (the
/// inverse of [`narrow`]). `torch.cat([h_n[0], h_n[1]], -1)` of two `[B, H]` is
/// `concat(on, &[&h0, &h1], -1)`, a `[B, 2H]`. One copy or dispatch per part.
pub fn concat<'c>(on: impl Record<'c>, parts: &[&GpuTensor], dim: isize) -> Result<GpuTensor> {
    const OP: &str = "concat";
    let ctx = on.context();
    for (i, p) in parts.iter().enumerate() {
        p.check_context(ctx, OP, &format!("parts[{i}]"))?;
    }
    let shapes: Vec<&[usize]> = parts.iter().map(|p| p.shape()).collect();
    let (d, shape) = concat_shape(OP, &shapes, dim)?;
    let dtype = parts[0].dtype();
    if let Some((i, p)) = parts.iter().enumerate().find(|(_, p)| p.dtype() != dtype) {
        return Err(Error::invalid_argument(
            OP,
            "parts",
            format!("parts[{i}] is {:?}, parts[0] {dtype:?}", p.dtype()),
        ));
    }
    let views = parts
        .iter()
        .enumerate()
        .map(|(i, p)| AxisView::of(OP, &format!("parts[{i}]"), p.shape(), d))
        .collect::<Result<Vec<_>>>()?;
    let out = ctx.alloc(OP, "out", &shape, dtype)?;
    let row = shape[d] * views[0].inner;
    let mut rec = on.begin(OP);
    let mut at = 0;
    for (p, v) in parts.iter().zip(&views) {
        let b = Blocks {
            outer: v.nonempty_blocks(),
            chunk: v.block(),
            src_off: 0,
            src_stride: v.block(),
            dst_off: at,
            dst_stride: row,
        };
        place(&mut rec, OP, p, &out, b)?;
        at += v.block();
    }
    rec.finish()?;
    Ok(out)
}
