//! concat, narrow and narrow_backward on the CPU reference, along every axis: against loops
//! over multi-indices written here, the bidirectional-state use case by hand, and the adjoint
//! identities that make narrow_backward narrow's gradient and narrow concat's.

use wgrnn::core::{SplitMix64, Tensor};
use wgrnn::cpu::gradcheck::dot;
use wgrnn::cpu::{concat, narrow, narrow_backward};

use crate::common::random;

/// The multi-index of flat position `i` in a row-major `shape`.
pub fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for (k, &n) in shape.iter().enumerate().rev() {
        idx[k] = i % n;
        i /= n;
    }
    idx
}

/// The flat position of multi-index `idx` in a row-major `shape`.
pub fn ravel(idx: &[usize], shape: &[usize]) -> usize {
    idx.iter().zip(shape).fold(0, |acc, (&i, &n)| acc * n + i)
}

/// Parts for a concat along axis `d` of `base`: `base` with axis `d` set to each extent.
pub fn parts_along(
    rng: &mut SplitMix64,
    base: &[usize],
    d: usize,
    extents: &[usize],
) -> Vec<Tensor<f64>> {
    extents
        .iter()
        .map(|&e| {
            let mut s = base.to_vec();
            s[d] = e;
            random(rng, &s, 1.0)
        })
        .collect()
}

/// Each case: a shape, and the extents of the parts along each of its axes.
const CASES: [(&[usize], &[usize]); 4] = [
    (&[5], &[1, 3, 2]),
    (&[2, 3], &[3, 1]),
    (&[3, 1, 4], &[2, 1, 2]),
    (&[2, 3, 2, 3], &[1, 2]),
];

#[test]
fn concat_and_narrow_match_loops_over_every_axis() {
    let mut rng = SplitMix64::new(31);
    for (base, extents) in CASES {
        let rank = base.len() as isize;
        for dim in -rank..rank {
            let d = dim.rem_euclid(rank) as usize;
            let what = format!("{base:?} dim {dim}");
            let parts = parts_along(&mut rng, base, d, extents);
            let refs: Vec<&Tensor<f64>> = parts.iter().collect();
            let out = concat(&refs, dim).unwrap();
            let mut want_shape = base.to_vec();
            want_shape[d] = extents.iter().sum();
            assert_eq!(out.shape(), &want_shape[..], "{what}");
            for (i, v) in out.data().iter().enumerate() {
                // Find the part that holds index idx[d] of the output.
                let mut idx = unravel(i, out.shape());
                let mut p = 0;
                while idx[d] >= extents[p] {
                    idx[d] -= extents[p];
                    p += 1;
                }
                let want = parts[p].data()[ravel(&idx, parts[p].shape())];
                assert_eq!(*v, want, "{what}: concat[{i}] from part {p}");
            }
            // narrow takes each part back, and any other window too.
            let mut at = 0;
            for (p, &e) in parts.iter().zip(extents) {
                assert_eq!(
                    &narrow(&out, dim, at, e).unwrap(),
                    p,
                    "{what}: part at {at}"
                );
                at += e;
            }
            let (start, len) = (1, want_shape[d] - 1);
            let cut = narrow(&out, dim, start, len).unwrap();
            for (i, v) in cut.data().iter().enumerate() {
                let mut idx = unravel(i, cut.shape());
                idx[d] += start;
                assert_eq!(
                    *v,
                    out.data()[ravel(&idx, out.shape())],
                    "{what}: narrow[{i}]"
                );
            }
            let back = narrow_backward(&cut, out.shape(), dim, start).unwrap();
            for (i, v) in back.data().iter().enumerate() {
                let mut idx = unravel(i, out.shape());
                let want = if idx[d] >= start {
                    idx[d] -= start;
                    cut.data()[ravel(&idx, cut.shape())]
                } else {
                    0.0
                };
                assert_eq!(*v, want, "{what}: narrow_backward[{i}]");
            }
        }
    }
}

/// `torch.cat([h_n[0], h_n[1]], -1)`: the two directions' `[B, H]` side by side per row, and
/// narrowing the feature axis takes each back.
#[test]
fn two_states_side_by_side_along_the_last_axis() {
    let h_n = Tensor::new([2, 2, 3], (0..12).map(f64::from).collect()).unwrap();
    let fwd = narrow(&h_n, 0, 0, 1).unwrap().reshape([2, 3]).unwrap();
    let rev = narrow(&h_n, 0, 1, 1).unwrap().reshape([2, 3]).unwrap();
    let both = concat(&[&fwd, &rev], -1).unwrap();
    #[rustfmt::skip]
    let want = Tensor::new([2, 6], vec![
        0.0, 1.0, 2.0,   6.0, 7.0, 8.0,
        3.0, 4.0, 5.0,   9.0, 10.0, 11.0,
    ]).unwrap();
    assert_eq!(both, want);
    assert_eq!(narrow(&both, -1, 0, 3).unwrap(), fwd);
    assert_eq!(narrow(&both, 1, 3, 3).unwrap(), rev);
}

/// ⟨narrow(x), g⟩ = ⟨x, narrow_backward(g)⟩ for every x and g: narrow_backward is narrow's
/// transpose, hence its gradient (both are linear); and ⟨concat(parts), g⟩ = Σ ⟨part_i,
/// narrow(g, at_i, len_i)⟩, so narrowing is concat's gradient.
#[test]
fn narrow_backward_and_narrow_are_the_adjoints() {
    let mut rng = SplitMix64::new(32);
    for (base, extents) in CASES {
        let rank = base.len() as isize;
        for dim in -rank..rank {
            let d = dim.rem_euclid(rank) as usize;
            let what = format!("{base:?} dim {dim}");
            let parts = parts_along(&mut rng, base, d, extents);
            let refs: Vec<&Tensor<f64>> = parts.iter().collect();
            let x = concat(&refs, dim).unwrap();
            let g: Tensor<f64> = random(&mut rng, x.shape(), 1.0);
            let mut at = 0;
            let mut sum = 0.0;
            for (p, &e) in parts.iter().zip(extents) {
                let gp = narrow(&g, dim, at, e).unwrap();
                sum += dot(p, &gp);
                let lhs = dot(&narrow(&x, dim, at, e).unwrap(), &gp);
                let rhs = dot(&x, &narrow_backward(&gp, x.shape(), dim, at).unwrap());
                assert!((lhs - rhs).abs() < 1e-12, "{what} at {at}: {lhs} vs {rhs}");
                at += e;
            }
            let whole = dot(&x, &g);
            assert!((whole - sum).abs() < 1e-12, "{what}: {whole} vs {sum}");
        }
    }
}
