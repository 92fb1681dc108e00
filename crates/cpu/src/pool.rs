//! Masked pooling over time: the mean or maximum of each sequence's valid steps, with
//! packed-sequence lengths (sequence b has steps `0..lengths[b]`; padded steps are never read).
//!
//! Notation: `x` is `[T, B, F]` (sequence-major), or `[B, T, F]` with `batch_first`; the
//! output is `[B, F]`. Without lengths every sequence has all T steps.
//!
//! Max pooling compares with `>` from step 0 on, so ties go to the first step holding the
//! maximum, and its gradient goes to that step alone (PyTorch's `max(dim)` picks one index per
//! output too). Valid steps are assumed free of NaN: the device compiler may assume there are
//! none (WGSL allows it), so a NaN there gives no defined result on the GPU.

use wgrnn_core::{PoolDims, PoolMode, Real, Result, Tensor, tensor::expect_shape};

/// The valid steps of each sequence: `lengths`, or T for every one.
fn steps(dims: &PoolDims, lengths: Option<&[usize]>) -> Vec<usize> {
    lengths.map_or_else(|| vec![dims.seq_len; dims.batch], <[usize]>::to_vec)
}

/// The first valid step holding the maximum of feature `f` of sequence `b`, and the maximum.
fn arg_max<T: Real>(x: &[T], dims: &PoolDims, b: usize, f: usize, len: usize) -> (usize, T) {
    let (st, sb) = dims.strides();
    let mut best = (0, x[b * sb + f]);
    for t in 1..len {
        let v = x[t * st + b * sb + f];
        if v > best.1 {
            best = (t, v);
        }
    }
    best
}

/// The mean or maximum over each sequence's valid steps: `x` `[T, B, F]` (`[B, T, F]` with
/// `batch_first`) into `[B, F]`. The mean sums the steps in order and divides by the length.
pub fn masked_pool<T: Real>(
    x: &Tensor<T>,
    lengths: Option<&[usize]>,
    mode: PoolMode,
    batch_first: bool,
) -> Result<Tensor<T>> {
    const OP: &str = "masked_pool";
    let dims = PoolDims::check(OP, x.shape(), lengths, batch_first)?;
    let lens = steps(&dims, lengths);
    let (st, sb) = dims.strides();
    let xd = x.data();
    let mut out: Vec<T> = crate::zeroed(OP, "out", &dims.output_shape())?;
    for (b, &len) in lens.iter().enumerate() {
        for f in 0..dims.features {
            out[b * dims.features + f] = match mode {
                PoolMode::Max => arg_max(xd, &dims, b, f, len).1,
                PoolMode::Mean => {
                    let mut s = T::zero();
                    for t in 0..len {
                        s += xd[t * st + b * sb + f];
                    }
                    s / T::from_f64(len as f64)
                }
            };
        }
    }
    Tensor::new(dims.output_shape(), out)
}

/// Gradient of [`masked_pool`] with respect to `x`, given `dy` `[B, F]`: the mean spreads
/// `dy / len` over the valid steps, the maximum routes `dy` to its step (the first, on ties);
/// padded steps get 0. `x` is read only by the maximum.
pub fn masked_pool_backward<T: Real>(
    x: &Tensor<T>,
    lengths: Option<&[usize]>,
    mode: PoolMode,
    batch_first: bool,
    dy: &Tensor<T>,
) -> Result<Tensor<T>> {
    const OP: &str = "masked_pool_backward";
    let dims = PoolDims::check(OP, x.shape(), lengths, batch_first)?;
    expect_shape(OP, "dy", dy, &dims.output_shape())?;
    let lens = steps(&dims, lengths);
    let (st, sb) = dims.strides();
    let mut dx: Vec<T> = crate::zeroed(OP, "dx", x.shape())?;
    for (b, &len) in lens.iter().enumerate() {
        for f in 0..dims.features {
            let g = dy.data()[b * dims.features + f];
            match mode {
                PoolMode::Max => {
                    let (t, _) = arg_max(x.data(), &dims, b, f, len);
                    dx[t * st + b * sb + f] = g;
                }
                PoolMode::Mean => {
                    let share = g / T::from_f64(len as f64);
                    for t in 0..len {
                        dx[t * st + b * sb + f] = share;
                    }
                }
            }
        }
    }
    Tensor::new(x.shape().to_vec(), dx)
}
