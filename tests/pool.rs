//! Masked pooling on the CPU reference: a hand-computed batch, loops over each sequence
//! written here, gradcheck in f64, with NaN at every padded step.

use wgrnn::PoolMode;
use wgrnn::core::{Real, SplitMix64, Tensor, TensorMap};
use wgrnn::cpu::gradcheck::dot;
use wgrnn::cpu::{GradcheckOptions, gradcheck, masked_pool, masked_pool_backward};

use crate::common::random;

const GRADCHECK_REL: f64 = 1e-6;

/// Where `x[t, b, f]` of `[T, B, F]` (or `[B, T, F]`) lies, written out for the tests.
pub fn position(batch_first: bool, (t, b, f): (usize, usize, usize), shape: &[usize]) -> usize {
    if batch_first {
        (b * shape[1] + t) * shape[2] + f
    } else {
        (t * shape[1] + b) * shape[2] + f
    }
}

/// The shape of `x` for T, B, F in the layout.
pub fn layout(batch_first: bool, t: usize, b: usize, f: usize) -> Vec<usize> {
    if batch_first {
        vec![b, t, f]
    } else {
        vec![t, b, f]
    }
}

/// Uneven lengths in 1..=T for B sequences, one of them T.
pub fn uneven_lengths(t: usize, b: usize) -> Vec<usize> {
    (0..b)
        .map(|i| if i == b / 2 { t } else { 1 + (7 * i + 3) % t })
        .collect()
}

/// `x` of T, B, F in the layout with distinct values in [-1, 1] (a shuffled grid with steps of
/// 1/64, finer past 128 elements, so max pooling has no ties and moving one value of a small
/// tensor by a gradcheck step never reorders two), and NaN at every padded step.
pub fn padded_input<T: Real>(
    rng: &mut SplitMix64,
    (t, b, f): (usize, usize, usize),
    lengths: &[usize],
    batch_first: bool,
) -> Tensor<T> {
    let shape = layout(batch_first, t, b, f);
    let n = t * b * f;
    let half = (n as f64 / 2.0).max(64.0);
    let mut grid: Vec<f64> = (0..n).map(|i| (i as f64 - n as f64 / 2.0) / half).collect();
    for i in (1..n).rev() {
        grid.swap(i, rng.below(i + 1));
    }
    let mut x = Tensor::new(shape.clone(), grid.into_iter().map(T::from_f64).collect()).unwrap();
    for (bi, &len) in lengths.iter().enumerate() {
        for ti in len..t {
            for fi in 0..f {
                x.data_mut()[position(batch_first, (ti, bi, fi), &shape)] = T::nan();
            }
        }
    }
    x
}

/// The valid steps of feature `f` of sequence `b`, gathered step by step.
fn sequence(x: &Tensor<f64>, batch_first: bool, b: usize, f: usize, len: usize) -> Vec<f64> {
    (0..len)
        .map(|t| x.data()[position(batch_first, (t, b, f), x.shape())])
        .collect()
}

#[test]
fn a_hand_computed_batch_in_both_layouts() {
    let nan = f64::NAN;
    // [T=3, B=2, F=2]; sequence 0 has 2 steps, its third is padding. Sequence 1's feature 1
    // holds its maximum 4 at steps 0 and 1: the first takes the gradient.
    #[rustfmt::skip]
    let x = Tensor::new([3, 2, 2], vec![
        1.0, -2.0,   0.5, 4.0,
        3.0, -1.0,   2.0, 4.0,
        nan, nan,   -1.0, 1.0,
    ]).unwrap();
    let lengths = [2, 3];
    let dy = Tensor::new([2, 2], vec![1.0, 2.0, 3.0, 6.0]).unwrap();
    #[rustfmt::skip]
    let cases = [
        (PoolMode::Mean, vec![2.0, -1.5, 0.5, 3.0], vec![
            0.5, 1.0,   1.0, 2.0,
            0.5, 1.0,   1.0, 2.0,
            0.0, 0.0,   1.0, 2.0,
        ]),
        (PoolMode::Max, vec![3.0, -1.0, 2.0, 4.0], vec![
            0.0, 0.0,   0.0, 6.0,
            1.0, 2.0,   3.0, 0.0,
            0.0, 0.0,   0.0, 0.0,
        ]),
    ];
    for (mode, y, dx) in cases {
        let dx = Tensor::new([3, 2, 2], dx).unwrap();
        for batch_first in [false, true] {
            let (x, dx) = if batch_first {
                (
                    x.swap_leading_axes().unwrap(),
                    dx.swap_leading_axes().unwrap(),
                )
            } else {
                (x.clone(), dx.clone())
            };
            let what = format!("{mode:?} batch_first={batch_first}");
            let got = masked_pool(&x, Some(&lengths), mode, batch_first).unwrap();
            assert_eq!(got.shape(), &[2, 2], "{what}");
            assert_eq!(got.data(), &y[..], "{what}: y");
            let got = masked_pool_backward(&x, Some(&lengths), mode, batch_first, &dy).unwrap();
            assert_eq!(got, dx, "{what}: dx");
        }
    }
}

#[test]
fn matches_loops_over_each_sequence() {
    let mut rng = SplitMix64::new(11);
    for (t, b, f) in [(1, 1, 1), (3, 4, 2), (7, 5, 3), (17, 3, 4)] {
        let lengths = uneven_lengths(t, b);
        for batch_first in [false, true] {
            let x: Tensor<f64> = padded_input(&mut rng, (t, b, f), &lengths, batch_first);
            let dy: Tensor<f64> = random(&mut rng, &[b, f], 1.0);
            for mode in [PoolMode::Mean, PoolMode::Max] {
                let what = format!("{mode:?} T={t} B={b} F={f} batch_first={batch_first}");
                let y = masked_pool(&x, Some(&lengths), mode, batch_first).unwrap();
                let dx = masked_pool_backward(&x, Some(&lengths), mode, batch_first, &dy).unwrap();
                let mut want_dx = vec![0.0; x.numel()];
                for (bi, &len) in lengths.iter().enumerate() {
                    for fi in 0..f {
                        let s = sequence(&x, batch_first, bi, fi, len);
                        let g = dy.data()[bi * f + fi];
                        let (want, grads): (f64, Vec<(usize, f64)>) = match mode {
                            PoolMode::Mean => (
                                s.iter().sum::<f64>() / len as f64,
                                (0..len).map(|ti| (ti, g / len as f64)).collect(),
                            ),
                            PoolMode::Max => {
                                let m = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                                let at = s.iter().position(|v| *v == m).unwrap();
                                (m, vec![(at, g)])
                            }
                        };
                        let got = y.data()[bi * f + fi];
                        assert!(
                            (got - want).abs() <= 1e-12 * want.abs().max(1.0),
                            "{what}: y[{bi}, {fi}]: got {got}, want {want}"
                        );
                        for (ti, v) in grads {
                            want_dx[position(batch_first, (ti, bi, fi), x.shape())] = v;
                        }
                    }
                }
                for (i, (got, want)) in dx.data().iter().zip(&want_dx).enumerate() {
                    assert!(
                        (got - want).abs() <= 1e-12 * want.abs().max(1.0),
                        "{what}: dx[{i}]: got {got}, want {want}"
                    );
                }
            }
        }
    }
}

#[test]
fn no_lengths_pools_every_step() {
    let mut rng = SplitMix64::new(12);
    for batch_first in [false, true] {
        let x: Tensor<f64> = random(&mut rng, &layout(batch_first, 5, 3, 2), 1.0);
        let dy: Tensor<f64> = random(&mut rng, &[3, 2], 1.0);
        for mode in [PoolMode::Mean, PoolMode::Max] {
            let full = [5, 5, 5];
            assert_eq!(
                masked_pool(&x, None, mode, batch_first).unwrap(),
                masked_pool(&x, Some(&full), mode, batch_first).unwrap()
            );
            assert_eq!(
                masked_pool_backward(&x, None, mode, batch_first, &dy).unwrap(),
                masked_pool_backward(&x, Some(&full), mode, batch_first, &dy).unwrap()
            );
        }
    }
}

/// The NaN at the padded steps stay in the perturbed inputs: a padded read would make the
/// loss NaN and the check fail.
#[test]
fn gradcheck_of_mean_and_max() {
    let mut rng = SplitMix64::new(13);
    for (t, b, f) in [(1, 2, 3), (4, 3, 2), (6, 5, 1)] {
        let lengths = uneven_lengths(t, b);
        for batch_first in [false, true] {
            let x: Tensor<f64> = padded_input(&mut rng, (t, b, f), &lengths, batch_first);
            let dy: Tensor<f64> = random(&mut rng, &[b, f], 1.0);
            for mode in [PoolMode::Mean, PoolMode::Max] {
                let dx = masked_pool_backward(&x, Some(&lengths), mode, batch_first, &dy).unwrap();
                let inputs = TensorMap::from([("x".to_string(), x.clone())]);
                let analytic = TensorMap::from([("x".to_string(), dx)]);
                let loss = |m: &TensorMap<f64>| {
                    Ok(dot(
                        &masked_pool(&m["x"], Some(&lengths), mode, batch_first)?,
                        &dy,
                    ))
                };
                let r = gradcheck(&inputs, &analytic, loss, GradcheckOptions::default()).unwrap();
                assert!(
                    r.worst_rel_error < GRADCHECK_REL,
                    "{mode:?} T={t} B={b} F={f} batch_first={batch_first}: {r}"
                );
            }
        }
    }
}
