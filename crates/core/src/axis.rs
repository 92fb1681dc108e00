//! The shape rules of the ops that join and cut tensors along one axis (`concat`, `narrow`,
//! `narrow_backward`), shared by the CPU reference and the device so that both refuse the same
//! calls with the same errors. Axes are PyTorch's `dim`: negative ones count from the end.

use crate::error::{Error, Result, fmt_shape};
use crate::tensor::checked_numel;

/// A row-major shape seen around one axis: `outer` blocks (the product of the axes before
/// it), each of `extent` slices of `inner` elements (the product of the axes after it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AxisView {
    pub outer: usize,
    pub extent: usize,
    pub inner: usize,
}

impl AxisView {
    /// `shape` around axis `d` (< its rank); an error naming `arg` where a product
    /// overflows, as it can for an empty tensor of shape `[0, usize::MAX, 2]`.
    pub fn of(op: &'static str, arg: &str, shape: &[usize], d: usize) -> Result<Self> {
        let product = |axes: &[usize], which: &str| {
            checked_numel(axes).ok_or_else(|| {
                Error::too_large(
                    op,
                    format!(
                        "{arg} of shape {} (elements {which} dim {d})",
                        fmt_shape(shape)
                    ),
                    u64::MAX,
                    "elements",
                    "usize::MAX",
                    usize::MAX as u64,
                )
            })
        };
        Ok(Self {
            outer: product(&shape[..d], "before")?,
            extent: shape[d],
            inner: product(&shape[d + 1..], "after")?,
        })
    }

    /// The outer blocks that hold elements: `outer`, or 0 for an empty tensor, which may have
    /// up to usize::MAX empty ones (`[usize::MAX, 0]`) that a loop should not visit.
    pub fn nonempty_blocks(&self) -> usize {
        if self.block() == 0 { 0 } else { self.outer }
    }

    /// Elements of one outer block: `extent · inner` (no overflow once both products exist
    /// and the tensor's element count does).
    pub fn block(&self) -> usize {
        self.extent.saturating_mul(self.inner)
    }
}

/// `dim` of a tensor of `shape` (named `arg`) as an axis index: `-rank..rank`, negative ones
/// from the end, as PyTorch counts them.
pub fn resolve_dim(op: &'static str, arg: &str, shape: &[usize], dim: isize) -> Result<usize> {
    let rank = shape.len() as isize;
    let d = if dim < 0 { dim + rank } else { dim };
    if rank == 0 || !(0..rank).contains(&d) {
        return Err(Error::invalid_argument(
            op,
            "dim",
            format!(
                "is {dim}, outside {}..{rank} for {arg} of shape {}",
                -rank,
                fmt_shape(shape)
            ),
        ));
    }
    Ok(d as usize)
}

/// The axis and output shape of `concat(parts, dim)`: at least one part; every part of the
/// same rank as `parts[0]`, equal to it on every axis but `dim`.
pub fn concat_shape(
    op: &'static str,
    parts: &[&[usize]],
    dim: isize,
) -> Result<(usize, Vec<usize>)> {
    let Some(first) = parts.first() else {
        return Err(Error::invalid_argument(op, "parts", "is empty"));
    };
    let d = resolve_dim(op, "parts[0]", first, dim)?;
    let mut total = 0usize;
    for (i, p) in parts.iter().enumerate() {
        let mut want = first.to_vec();
        want[d] = p.get(d).copied().unwrap_or(0);
        if *p != want.as_slice() {
            return Err(Error::shape(op, format!("parts[{i}]"), &want, p));
        }
        total = total.checked_add(p[d]).ok_or_else(|| {
            Error::too_large(
                op,
                format!("parts (their extents along dim {d})"),
                u64::MAX,
                "elements",
                "usize::MAX",
                usize::MAX as u64,
            )
        })?;
    }
    let mut shape = first.to_vec();
    shape[d] = total;
    Ok((d, shape))
}

/// Checks that `start..start + len` is a non-empty part of axis `d` of `shape` (named `arg`).
fn check_range(
    op: &'static str,
    arg: &str,
    shape: &[usize],
    d: usize,
    start: usize,
    len: usize,
) -> Result<()> {
    if len == 0 || start.checked_add(len).is_none_or(|end| end > shape[d]) {
        return Err(Error::invalid_argument(
            op,
            "start, len",
            format!(
                "{start}..{} is not a non-empty part of dim {d} of {arg} (shape {})",
                start.saturating_add(len),
                fmt_shape(shape)
            ),
        ));
    }
    Ok(())
}

/// The axis and output shape of `narrow(x, dim, start, len)`: `x` with axis `dim` cut to
/// `start..start + len`, a non-empty part of it.
pub fn narrow_shape(
    op: &'static str,
    x: &[usize],
    dim: isize,
    start: usize,
    len: usize,
) -> Result<(usize, Vec<usize>)> {
    let d = resolve_dim(op, "x", x, dim)?;
    check_range(op, "x", x, d, start, len)?;
    let mut shape = x.to_vec();
    shape[d] = len;
    Ok((d, shape))
}

/// The axis of `narrow_backward(dy, input_shape, dim, start)`: `dy` is the gradient of a
/// `narrow(x, dim, start, len)` of an `x` of `input_shape`, so it equals `input_shape` but
/// on axis `dim`, where `start..start + len` lies in `input_shape`.
pub fn narrow_backward_axis(
    op: &'static str,
    dy: &[usize],
    input_shape: &[usize],
    dim: isize,
    start: usize,
) -> Result<usize> {
    let d = resolve_dim(op, "input_shape", input_shape, dim)?;
    let mut want = input_shape.to_vec();
    want[d] = dy.get(d).copied().unwrap_or(0);
    if dy != want.as_slice() {
        return Err(Error::shape(op, "dy", &want, dy));
    }
    check_range(op, "input_shape", input_shape, d, start, dy[d])?;
    Ok(d)
}
