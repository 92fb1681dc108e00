//! concat, narrow and narrow_backward on the device against the CPU reference along every
//! axis, on sizes off every workgroup (1, 3, 17, 65, 129): bit for bit, since they copy.

use wgrnn::core::{SplitMix64, Tensor};
use wgrnn::cpu::{concat, narrow, narrow_backward};
use wgrnn::gpu;

use crate::concat::parts_along;
use crate::gpu::ctx;

/// The f32 bits of a tensor: copies must keep them, NaN payloads included.
fn bits(t: &Tensor<f32>) -> Vec<u32> {
    t.data().iter().map(|v| v.to_bits()).collect()
}

/// Each case: a shape, and the extents of the parts along each of its axes.
const CASES: [(&[usize], &[usize]); 4] = [
    (&[129], &[1, 65, 3]),
    (&[3, 17], &[17, 1]),
    (&[2, 65, 3], &[3, 1, 129]),
    (&[1, 3, 17, 2], &[65, 3]),
];

#[test]
fn concat_and_narrow_match_cpu_along_every_axis() {
    let _watch = crate::validation::watch();
    let ctx = ctx();
    let mut rng = SplitMix64::new(41);
    for (base, extents) in CASES {
        let rank = base.len() as isize;
        for dim in -rank..rank {
            let d = dim.rem_euclid(rank) as usize;
            let what = format!("{base:?} dim {dim}");
            let mut parts: Vec<Tensor<f32>> = parts_along(&mut rng, base, d, extents)
                .iter()
                .map(Tensor::cast)
                .collect();
            // A NaN with a payload in every part: the copy moves bits, not values.
            for p in &mut parts {
                let last = p.numel() - 1;
                p.data_mut()[last] = f32::from_bits(0x7fc0_1234);
            }
            let refs: Vec<&Tensor<f32>> = parts.iter().collect();
            let want = concat(&refs, dim).unwrap();
            let up: Vec<_> = parts.iter().map(|p| ctx.upload(p).unwrap()).collect();
            let up_refs: Vec<_> = up.iter().collect();
            let got = gpu::concat(ctx, &up_refs, dim).unwrap();
            let host = ctx.read(&got).unwrap();
            assert_eq!(host.shape(), want.shape(), "{what}");
            assert_eq!(bits(&host), bits(&want), "{what}: concat");
            let total = want.shape()[d];
            for (start, len) in [(0, 1), (1, total - 1), (total - 1, 1), (0, total)] {
                let w = narrow(&want, dim, start, len).unwrap();
                let g = ctx
                    .read(&gpu::narrow(ctx, &got, dim, start, len).unwrap())
                    .unwrap();
                assert_eq!(g.shape(), w.shape(), "{what}: narrow {start}, {len}");
                assert_eq!(bits(&g), bits(&w), "{what}: narrow {start}, {len}");
                let wb = narrow_backward(&w, want.shape(), dim, start).unwrap();
                let gw = ctx.upload(&w).unwrap();
                let gb = gpu::narrow_backward(ctx, &gw, want.shape(), dim, start).unwrap();
                let gb = ctx.read(&gb).unwrap();
                assert_eq!(
                    bits(&gb),
                    bits(&wb),
                    "{what}: narrow_backward {start}, {len}"
                );
            }
        }
    }
}

/// `torch.cat([h_n[0], h_n[1]], -1)` of a bidirectional layer's `[2, B, H]` final state, and
/// the feature axis narrowed back, in one recording; u32 tensors join the same way.
#[test]
fn two_states_side_by_side_in_a_recording() {
    let _watch = crate::validation::watch();
    let ctx = ctx();
    let (b, h) = (65, 17);
    let h_n = Tensor::from_fn(vec![2, b, h], |i| i as f32 * 0.5).unwrap();
    let g = ctx.upload(&h_n).unwrap();
    let mut rec = ctx.record();
    let fwd = gpu::narrow(&mut rec, &g, 0, 0, 1)
        .unwrap()
        .reshaped([b, h])
        .unwrap();
    let rev = gpu::narrow(&mut rec, &g, 0, 1, 1)
        .unwrap()
        .reshaped([b, h])
        .unwrap();
    let both = gpu::concat(&mut rec, &[&fwd, &rev], -1).unwrap();
    let back = gpu::narrow(&mut rec, &both, -1, h, h).unwrap();
    rec.submit().unwrap();
    let both = ctx.read(&both).unwrap();
    assert_eq!(both.shape(), &[b, 2 * h]);
    for r in 0..b {
        for j in 0..2 * h {
            let want = h_n.data()[(j / h) * b * h + r * h + j % h];
            let got = both.data()[r * 2 * h + j];
            assert_eq!(got, want, "row {r}, feature {j}");
        }
    }
    assert_eq!(
        ctx.read(&back).unwrap().data(),
        &h_n.data()[b * h..],
        "the reverse direction's half"
    );
    let ids = ctx.upload_u32(&[3, 2], &[1, 2, 3, 4, 5, 6]).unwrap();
    let more = ctx.upload_u32(&[3, 1], &[7, 8, 9]).unwrap();
    let joined = ctx
        .read_u32(&gpu::concat(ctx, &[&ids, &more], 1).unwrap())
        .unwrap();
    assert_eq!(joined.data(), &[1, 2, 7, 3, 4, 8, 5, 6, 9]);
}
#[test]
fn narrow_and_concat_along_the_first_axis() {
    let _watch = crate::validation::watch();
    let ctx = ctx();
    let x = Tensor::from_fn(vec![3, 4, 5], |i| i as f32 + 0.25).unwrap();
    let gx = ctx.upload(&x).unwrap();
    // Copies are exact: each part is the host slice bit for bit.
    let parts: Vec<_> = (0..3)
        .map(|r| gpu::narrow(ctx, &gx, 0, r, 1).unwrap())
        .collect();
    for (r, p) in parts.iter().enumerate() {
        let got = ctx.read(p).unwrap();
        assert_eq!(got.shape(), &[1, 4, 5]);
        assert_eq!(got.data(), &x.data()[r * 20..(r + 1) * 20], "row {r}");
    }
    let tail = ctx.read(&gpu::narrow(ctx, &gx, 0, 1, 2).unwrap()).unwrap();
    assert_eq!(tail.data(), &x.data()[20..]);
    // concat inverts narrow, in any grouping.
    let head = gpu::narrow(ctx, &gx, 0, 0, 1).unwrap();
    let rest = gpu::narrow(ctx, &gx, 0, 1, 2).unwrap();
    let back = ctx
        .read(&gpu::concat(ctx, &[&head, &rest], 0).unwrap())
        .unwrap();
    assert_eq!(back.shape(), x.shape());
    assert_eq!(back.data(), x.data());
    let refs: Vec<_> = parts.iter().collect();
    assert_eq!(
        ctx.read(&gpu::concat(ctx, &refs, 0).unwrap())
            .unwrap()
            .data(),
        x.data()
    );
    // Errors name the argument and the shapes.
    for (start, len) in [(3, 1), (2, 2), (0, 0), (usize::MAX, 2)] {
        let e = gpu::narrow(ctx, &gx, 0, start, len)
            .unwrap_err()
            .to_string();
        assert!(e.contains("start, len") && e.contains("[3, 4, 5]"), "{e}");
    }
    let other = ctx.zeros(&[1, 4, 6]).unwrap();
    let e = gpu::concat(ctx, &[&head, &other], 0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("parts") && e.contains("[1, 4, 6]"), "{e}");
    assert!(gpu::concat(ctx, &[], 0).is_err());
}
