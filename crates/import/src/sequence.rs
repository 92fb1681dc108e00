//! Sequence reversal within each sequence's length: how a reverse-only recurrent layer (ONNX
//! `direction=reverse`) runs on a forward module.

use wgrnn_core::{Error, Result, Tensor, check_lengths};

const OP: &str = "reverse_sequences";

/// Reverses each sequence of `x` (`[T, B, F]`, or `[B, T, F]` with `batch_first`) within its
/// length: step t of sequence b becomes step `len_b − 1 − t`; the padded steps past `len_b`
/// stay where they are. `None` lengths are all T. Applying it twice gives `x` back, so the
/// same call turns a reverse layer's input into its forward module's input and that module's
/// output back into the reverse layer's.
pub fn reverse_sequences<T: Copy>(
    x: &Tensor<T>,
    lengths: Option<&[usize]>,
    batch_first: bool,
) -> Result<Tensor<T>> {
    let &[a, b, f] = x.shape() else {
        return Err(Error::invalid_argument(
            OP,
            "x",
            format!(
                "must have rank 3, has shape {}",
                wgrnn_core::error::fmt_shape(x.shape())
            ),
        ));
    };
    let (steps, batch) = if batch_first { (b, a) } else { (a, b) };
    if let Some(lengths) = lengths {
        check_lengths(OP, lengths, batch, steps)?;
    }
    // Offsets of step t of sequence s: F is contiguous in both layouts.
    let at = |t: usize, s: usize| {
        if batch_first {
            (s * steps + t) * f
        } else {
            (t * batch + s) * f
        }
    };
    let src = x.data();
    let mut out = src.to_vec();
    for s in 0..batch {
        let len = lengths.map_or(steps, |l| l[s]);
        for t in 0..len {
            let (from, to) = (at(len - 1 - t, s), at(t, s));
            out[to..to + f].copy_from_slice(&src[from..from + f]);
        }
    }
    Tensor::new(x.shape().to_vec(), out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sequence-major, two sequences of lengths 3 and 2 over T = 3, F = 1: the second keeps
    /// its padded last step in place.
    #[test]
    fn reverses_within_each_length() {
        let x = Tensor::new(vec![3, 2, 1], vec![1, 10, 2, 20, 3, 30]).unwrap();
        let y = reverse_sequences(&x, Some(&[3, 2]), false).unwrap();
        assert_eq!(y.data(), &[3, 20, 2, 10, 1, 30]);
        let back = reverse_sequences(&y, Some(&[3, 2]), false).unwrap();
        assert_eq!(back, x);
    }

    #[test]
    fn batch_first_reverses_along_the_second_axis() {
        let x = Tensor::new(vec![1, 3, 2], vec![1, 2, 3, 4, 5, 6]).unwrap();
        let y = reverse_sequences(&x, None, true).unwrap();
        assert_eq!(y.data(), &[5, 6, 3, 4, 1, 2]);
    }

    #[test]
    fn refuses_a_rank_other_than_three_and_bad_lengths() {
        let x = Tensor::new(vec![2, 2], vec![1, 2, 3, 4]).unwrap();
        let e = reverse_sequences(&x, None, false).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument { arg: "x", .. }), "{e}");
        let x = Tensor::new(vec![2, 1, 1], vec![1, 2]).unwrap();
        let e = reverse_sequences(&x, Some(&[3]), false).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Length {
                    index: 0,
                    value: 3,
                    ..
                }
            ),
            "{e}"
        );
    }
}
