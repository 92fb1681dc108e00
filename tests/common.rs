//! Shared test helpers: named tolerances, closeness checks that print the worst index, and random
//! data from a seed.

use wgrnn::core::{Real, SplitMix64, Tensor};

/// An error bound `max(abs, rel·|want|)`: absolute near zero, relative for large values.
#[derive(Clone, Copy, Debug)]
pub struct Tolerance {
    pub abs: f64,
    pub rel: f64,
}

/// f32 forward values against an f32 oracle (Keras on JAX): both round every op to f32, and
/// the sums here run over at most a few dozen terms, so differences stay within a few ulps of
/// O(1) values, far below 1e-5.
pub const F32_FORWARD: Tolerance = Tolerance {
    abs: 1e-5,
    rel: 1e-5,
};
/// f32 gradients: BPTT accumulates over every step and layer in another order than the oracle,
/// so allow 1e-4, relative where |value| > 1.
pub const F32_GRAD: Tolerance = Tolerance {
    abs: 1e-4,
    rel: 1e-4,
};

impl Tolerance {
    pub fn bound(&self, want: f64) -> f64 {
        self.abs.max(self.rel * want.abs())
    }
}

/// Panics with the worst element (index, got, want) when any element is out of tolerance.
pub fn assert_close<T: Real, U: Real>(what: &str, got: &[T], want: &[U], tol: Tolerance) {
    assert_eq!(
        got.len(),
        want.len(),
        "{what}: length {} vs {}",
        got.len(),
        want.len()
    );
    let mut worst: Option<(usize, f64)> = None;
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let (g, w) = (g.as_f64(), w.as_f64());
        let excess = (g - w).abs() / tol.bound(w);
        let bad = excess.is_nan() || excess > 1.0;
        if bad && worst.is_none_or(|(_, e)| excess > e || excess.is_nan()) {
            worst = Some((i, excess));
        }
    }
    if let Some((i, _)) = worst {
        panic!(
            "{what}: index {i}: got {}, want {} (|diff| {:.3e} > bound {:.3e}; abs {:e}, rel {:e})",
            got[i],
            want[i],
            (got[i].as_f64() - want[i].as_f64()).abs(),
            tol.bound(want[i].as_f64()),
            tol.abs,
            tol.rel
        );
    }
}

pub fn assert_tensor_close<T: Real, U: Real>(
    what: &str,
    got: &Tensor<T>,
    want: &Tensor<U>,
    tol: Tolerance,
) {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    assert_close(what, got.data(), want.data(), tol);
}

/// Uniform random tensor in [-scale, scale).
pub fn random<T: Real>(rng: &mut SplitMix64, shape: &[usize], scale: f64) -> Tensor<T> {
    Tensor::from_fn(shape.to_vec(), |_| T::from_f64(rng.uniform(-scale, scale)))
        .expect("a small test shape fits in memory")
}

/// The width and height of the PNG at `path`, from its header; a file that is not a PNG fails.
pub fn png_size(path: &std::path::Path) -> (u32, u32) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(
        &b[..8],
        b"\x89PNG\r\n\x1a\n",
        "{} is not a PNG",
        path.display()
    );
    let be = |o: usize| u32::from_be_bytes(b[o..o + 4].try_into().unwrap());
    (be(16), be(20))
}
