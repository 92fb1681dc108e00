//! Joining and cutting tensors along one axis, PyTorch's `torch.cat(tensors, dim)` and
//! `Tensor.narrow(dim, start, length)`, with the gradient of `narrow` (the gradient of
//! `concat` is a `narrow` per part). The shape rules are `wgrnn_core::axis`'s, the device's too.

use wgrnn_core::axis::{AxisView, concat_shape, narrow_backward_axis, narrow_shape};
use wgrnn_core::tensor::try_with_capacity;
use wgrnn_core::{Real, Result, Tensor};

/// `parts` joined along `dim` (negative from the end) into a new tensor; every other axis
/// must agree. `concat(&[&a, &b], -1)` of two `[B, H]` is `[B, 2H]`, `torch.cat([a, b], -1)`.
pub fn concat<T: Copy>(parts: &[&Tensor<T>], dim: isize) -> Result<Tensor<T>> {
    const OP: &str = "concat";
    let shapes: Vec<&[usize]> = parts.iter().map(|p| p.shape()).collect();
    let (d, shape) = concat_shape(OP, &shapes, dim)?;
    let views = parts
        .iter()
        .enumerate()
        .map(|(i, p)| AxisView::of(OP, &format!("parts[{i}]"), p.shape(), d))
        .collect::<Result<Vec<_>>>()?;
    let total: usize = parts.iter().map(|p| p.numel()).sum();
    let mut out = try_with_capacity(OP, "out", total)?;
    // Every part has the same outer blocks; block o of the output is each part's block o.
    // An empty output may have as many as usize::MAX of them, all empty: none is visited.
    let outer = if total == 0 { 0 } else { views[0].outer };
    for o in 0..outer {
        for (p, v) in parts.iter().zip(&views) {
            out.extend_from_slice(&p.data()[o * v.block()..(o + 1) * v.block()]);
        }
    }
    Tensor::new(shape, out)
}

/// Steps `start..start + len` of axis `dim` of `x` (negative from the end), copied into a new
/// tensor: `narrow(&y, -1, 0, h)` of a `[B, 2H]` is its first H features.
pub fn narrow<T: Copy>(x: &Tensor<T>, dim: isize, start: usize, len: usize) -> Result<Tensor<T>> {
    const OP: &str = "narrow";
    let (d, shape) = narrow_shape(OP, x.shape(), dim, start, len)?;
    let v = AxisView::of(OP, "x", x.shape(), d)?;
    let mut out = try_with_capacity(OP, "out", x.numel() / x.shape()[d] * len)?;
    for o in 0..v.nonempty_blocks() {
        let at = o * v.block() + start * v.inner;
        out.extend_from_slice(&x.data()[at..at + len * v.inner]);
    }
    Tensor::new(shape, out)
}

/// Gradient of [`narrow`]: `dy` placed at `start` of axis `dim` of a zero tensor of
/// `input_shape` (the narrowed tensor's shape), PyTorch's `slice_backward`.
pub fn narrow_backward<T: Real>(
    dy: &Tensor<T>,
    input_shape: &[usize],
    dim: isize,
    start: usize,
) -> Result<Tensor<T>> {
    const OP: &str = "narrow_backward";
    let d = narrow_backward_axis(OP, dy.shape(), input_shape, dim, start)?;
    let v = AxisView::of(OP, "input_shape", input_shape, d)?;
    let mut dx: Vec<T> = crate::zeroed(OP, "dx", input_shape)?;
    let chunk = dy.shape()[d] * v.inner;
    for o in 0..v.nonempty_blocks() {
        let at = o * v.block() + start * v.inner;
        dx[at..at + chunk].copy_from_slice(&dy.data()[o * chunk..(o + 1) * chunk]);
    }
    Tensor::new(input_shape.to_vec(), dx)
}
