//! The one matrix product of the reference. Every op expresses its maths through it, in the same
//! shapes the GPU path uses (hoisted input projection, weight gradients over all T·B rows), so the
//! two can be read side by side.

use wgrnn_core::{Real, Result};

/// A row-major matrix view, optionally read transposed.
#[derive(Clone, Copy, Debug)]
pub struct Mat<'a, T> {
    pub data: &'a [T],
    pub rows: usize,
    pub cols: usize,
    pub transposed: bool,
}

impl<'a, T: Real> Mat<'a, T> {
    /// `data` as a `rows × cols` row-major matrix.
    pub fn new(data: &'a [T], rows: usize, cols: usize) -> Self {
        debug_assert_eq!(data.len(), rows * cols);
        Self {
            data,
            rows,
            cols,
            transposed: false,
        }
    }

    /// The transpose (`cols × rows`), without copying.
    pub fn t(self) -> Self {
        Self {
            transposed: !self.transposed,
            ..self
        }
    }

    fn shape(&self) -> (usize, usize) {
        if self.transposed {
            (self.cols, self.rows)
        } else {
            (self.rows, self.cols)
        }
    }

    /// (row stride, column stride) of the logical matrix.
    fn strides(&self) -> (usize, usize) {
        if self.transposed {
            (1, self.cols)
        } else {
            (self.cols, 1)
        }
    }
}

/// `out (m × n) += a (m × k) · b (k × n)`. Sums run in increasing k, so results are
/// deterministic. Shapes are checked by the callers (op argument validation); here a mismatch is a
/// bug, hence the assertion.
pub fn gemm_acc<T: Real>(a: Mat<'_, T>, b: Mat<'_, T>, out: &mut [T]) {
    let (m, k) = a.shape();
    let (k2, n) = b.shape();
    assert!(k == k2 && out.len() == m * n, "gemm: inner sizes differ");
    let (ars, acs) = a.strides();
    let (brs, bcs) = b.strides();
    for i in 0..m {
        let row = &mut out[i * n..(i + 1) * n];
        for p in 0..k {
            let av = a.data[i * ars + p * acs];
            if av == T::zero() {
                continue;
            }
            for (j, o) in row.iter_mut().enumerate() {
                *o += av * b.data[p * brs + j * bcs];
            }
        }
    }
}

/// `a · b` into a new buffer, reserved fallibly: its size is the product of two of the
/// caller's extents, which neither operand's size bounds.
pub fn gemm<T: Real>(a: Mat<'_, T>, b: Mat<'_, T>) -> Result<Vec<T>> {
    let mut out = crate::zeroed("gemm", "product", &[a.shape().0, b.shape().1])?;
    gemm_acc(a, b, &mut out);
    Ok(out)
}

/// Adds `bias` to every row of `out` (rows of width `bias.len()`).
pub fn add_row_bias<T: Real>(out: &mut [T], bias: &[T]) {
    for row in out.chunks_exact_mut(bias.len()) {
        for (o, b) in row.iter_mut().zip(bias) {
            *o += *b;
        }
    }
}

/// Column sums of a `rows × cols` matrix, accumulated into `out` (bias gradients).
pub fn col_sums_acc<T: Real>(m: &[T], cols: usize, out: &mut [T]) {
    for row in m.chunks_exact(cols) {
        for (o, v) in out.iter_mut().zip(row) {
            *o += *v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_transpose_combinations_match_the_definition() {
        // a: 2×3, b: 3×2, computed by hand: [[1,2,3],[4,5,6]]·[[1,0],[0,1],[1,1]] = [[4,5],[10,11]]
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let b = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0];
        let want = [4.0, 5.0, 10.0, 11.0];
        assert_eq!(gemm(Mat::new(&a, 2, 3), Mat::new(&b, 3, 2)).unwrap(), want);
        let at = [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]; // aᵀ stored 3×2
        let bt = [1.0, 0.0, 1.0, 0.0, 1.0, 1.0]; // bᵀ stored 2×3
        assert_eq!(
            gemm(Mat::new(&at, 3, 2).t(), Mat::new(&b, 3, 2)).unwrap(),
            want
        );
        assert_eq!(
            gemm(Mat::new(&a, 2, 3), Mat::new(&bt, 2, 3).t()).unwrap(),
            want
        );
        assert_eq!(
            gemm(Mat::new(&at, 3, 2).t(), Mat::new(&bt, 2, 3).t()).unwrap(),
            want
        );
    }
}
