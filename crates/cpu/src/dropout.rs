//! Dropout (PyTorch `nn.functional.dropout`), its mask drawn from Philox4x32-10 by (seed,
//! stream, element index) as `wgrnn_core::philox` defines, so the GPU draws the same mask.
//!
//! Elements are indexed linearly over the whole tensor (row-major), from 0. The output is
//! `x · m` with `m` = `1 / (1 − p)` where kept and 0 where dropped, a product as in PyTorch:
//! a NaN or infinite element stays NaN even where dropped.

use wgrnn_core::philox::random_block;
use wgrnn_core::{DropoutConfig, Real, Result, Tensor};

/// The multipliers `m` of [`dropout`] for a tensor of `shape`: `1 / (1 − p)` where kept, 0
/// where dropped; all 1 in inference or with `p` = 0.
pub fn dropout_mask<T: Real>(
    shape: &[usize],
    cfg: &DropoutConfig,
    seed: u64,
    stream: u32,
) -> Result<Tensor<T>> {
    cfg.validate()?;
    let scale = T::from_f64(cfg.scale());
    let threshold = cfg.threshold();
    let mut data = crate::zeroed::<T>("dropout", "x", shape)?;
    if !cfg.is_active() {
        data.fill(T::one());
        return Tensor::new(shape.to_vec(), data);
    }
    // One Philox call per block of four elements, as the kernel draws them.
    for (block, chunk) in data.chunks_mut(4).enumerate() {
        let words = random_block(seed, stream, block as u64);
        for (m, &w) in chunk.iter_mut().zip(&words) {
            *m = if w >= threshold { scale } else { T::zero() };
        }
    }
    Tensor::new(shape.to_vec(), data)
}

/// `x` with each element kept with probability `1 − p` and scaled by `1 / (1 − p)`, else
/// zeroed, in training mode; `x` itself in inference mode. `seed` and `stream` choose the mask
/// (the same pair gives the same mask on the CPU and the GPU); an error if `cfg.p` is outside
/// [0, 1).
pub fn dropout<T: Real>(
    x: &Tensor<T>,
    cfg: &DropoutConfig,
    seed: u64,
    stream: u32,
) -> Result<Tensor<T>> {
    let m = dropout_mask::<T>(x.shape(), cfg, seed, stream)?;
    let mut out = m.into_data();
    out.iter_mut().zip(x.data()).for_each(|(m, &v)| *m *= v);
    Tensor::new(x.shape().to_vec(), out)
}

/// The gradient of [`dropout`] with respect to `x`: `dy` times the same mask (the same `cfg`,
/// `seed` and `stream` as the forward call).
pub fn dropout_backward<T: Real>(
    dy: &Tensor<T>,
    cfg: &DropoutConfig,
    seed: u64,
    stream: u32,
) -> Result<Tensor<T>> {
    dropout(dy, cfg, seed, stream)
}
