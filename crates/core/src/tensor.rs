//! A small host tensor: a shape and a row-major buffer. It is a carrier for arguments and results,
//! not a tensor library: ops index the buffer directly.

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::real::Real;

/// Row-major host tensor. `T` is a float type for activations and weights, `i64` for token ids.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Tensor<T> {
    shape: Vec<usize>,
    data: Vec<T>,
}

/// Tensors by name, in name order (deterministic iteration, as safetensors stores them).
pub type TensorMap<T> = BTreeMap<String, Tensor<T>>;

impl<T> Tensor<T> {
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    pub fn numel(&self) -> usize {
        self.data.len()
    }

    pub fn data(&self) -> &[T] {
        &self.data
    }

    pub fn data_mut(&mut self) -> &mut [T] {
        &mut self.data
    }

    pub fn into_data(self) -> Vec<T> {
        self.data
    }
}

/// The element count of `shape`, or `None` where the product overflows `usize`.
pub fn checked_numel(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))
}

/// `shape`'s elements as `f` of the flat index, in a buffer reserved fallibly: a shape from the
/// caller may ask for more than the host has, and `vec!` would abort the process then.
pub fn try_filled<T>(
    op: &'static str,
    arg: &str,
    shape: &[usize],
    f: impl FnMut(usize) -> T,
) -> Result<Vec<T>> {
    let arg = format!("{arg} {}", crate::error::fmt_shape(shape));
    let Some(n) = checked_numel(shape) else {
        return Err(Error::OutOfMemory {
            op,
            arg,
            bytes: u64::MAX,
        });
    };
    let mut v = try_with_capacity(op, &arg, n)?;
    v.extend((0..n).map(f));
    Ok(v)
}

/// An empty vector with room for exactly `n` elements, or [`Error::OutOfMemory`].
pub fn try_with_capacity<T>(op: &'static str, arg: &str, n: usize) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| Error::OutOfMemory {
        op,
        arg: arg.to_string(),
        bytes: (n as u64).saturating_mul(std::mem::size_of::<T>() as u64),
    })?;
    Ok(v)
}

impl<T: Copy> Tensor<T> {
    /// Builds a tensor; the buffer length must equal the product of the shape.
    pub fn new(shape: impl Into<Vec<usize>>, data: Vec<T>) -> Result<Self> {
        let shape = shape.into();
        if checked_numel(&shape) != Some(data.len()) {
            return Err(Error::DataLength {
                shape,
                len: data.len(),
            });
        }
        Ok(Self { shape, data })
    }

    /// A tensor of `value`; an error ([`Error::OutOfMemory`]) when the host cannot hold it.
    pub fn full(shape: impl Into<Vec<usize>>, value: T) -> Result<Self> {
        let shape = shape.into();
        let data = try_filled("Tensor::full", "shape", &shape, |_| value)?;
        Ok(Self { shape, data })
    }

    /// Builds a tensor from a function of the flat index; an error as [`Tensor::full`] gives.
    pub fn from_fn(shape: impl Into<Vec<usize>>, f: impl FnMut(usize) -> T) -> Result<Self> {
        let shape = shape.into();
        let data = try_filled("Tensor::from_fn", "shape", &shape, f)?;
        Ok(Self { shape, data })
    }

    /// Same data, another shape of the same element count.
    pub fn reshape(self, shape: impl Into<Vec<usize>>) -> Result<Self> {
        Self::new(shape, self.data)
    }

    /// Swaps the first two axes of a rank-3 tensor (`[T, B, F]` ⇄ `[B, T, F]`).
    pub fn swap_leading_axes(&self) -> Result<Self> {
        let &[a, b, f] = self.shape.as_slice() else {
            return Err(Error::InvalidArgument {
                op: "swap_leading_axes",
                arg: "self",
                reason: format!("must have rank 3, has shape {:?}", self.shape),
            });
        };
        let mut data = Vec::with_capacity(self.data.len());
        for j in 0..b {
            for i in 0..a {
                data.extend_from_slice(&self.data[(i * b + j) * f..(i * b + j + 1) * f]);
            }
        }
        Ok(Self {
            shape: vec![b, a, f],
            data,
        })
    }
}

impl<T: Real> Tensor<T> {
    /// A tensor of zeros; an error as [`Tensor::full`] gives.
    pub fn zeros(shape: impl Into<Vec<usize>>) -> Result<Self> {
        Self::full(shape, T::zero())
    }

    /// Converts every element to another float type (f32 ⇄ f64).
    pub fn cast<U: Real>(&self) -> Tensor<U> {
        Tensor {
            shape: self.shape.clone(),
            data: self.data.iter().map(|v| U::from_f64(v.as_f64())).collect(),
        }
    }
}

/// Checks that `t` has exactly `expected` as shape; the error names the op and argument.
pub fn expect_shape<T>(
    op: &'static str,
    arg: &str,
    t: &Tensor<T>,
    expected: &[usize],
) -> Result<()> {
    if t.shape != expected {
        return Err(Error::shape(op, arg, expected, &t.shape));
    }
    Ok(())
}
