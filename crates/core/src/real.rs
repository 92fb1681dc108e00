//! The scalar types the reference runs in.

use std::fmt::{Debug, Display};
use std::iter::Sum;
use std::ops::{AddAssign, DivAssign, MulAssign, SubAssign};

/// A floating-point scalar: implemented for `f32` (what the GPU computes in) and `f64` (what
/// gradients are checked in).
pub trait Real:
    num_traits::Float
    + bytemuck::Pod
    + Default
    + Debug
    + Display
    + Send
    + Sync
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
    + Sum
    + 'static
{
    /// The safetensors dtype of this type.
    const DTYPE: safetensors::Dtype;
    /// Name used in error messages.
    const NAME: &'static str;
    fn from_f64(v: f64) -> Self;
    fn as_f64(self) -> f64;
}

impl Real for f32 {
    const DTYPE: safetensors::Dtype = safetensors::Dtype::F32;
    const NAME: &'static str = "f32";
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    fn as_f64(self) -> f64 {
        self as f64
    }
}

impl Real for f64 {
    const DTYPE: safetensors::Dtype = safetensors::Dtype::F64;
    const NAME: &'static str = "f64";
    fn from_f64(v: f64) -> Self {
        v
    }
    fn as_f64(self) -> f64 {
        self
    }
}
