//! Masked pooling on the device against the CPU reference: sizes off every tile (1, 3, 17,
//! 65, 129), both layouts, uneven lengths with NaN at every padded step, forward and backward.

use wgrnn::PoolMode;
use wgrnn::core::{SplitMix64, Tensor};
use wgrnn::cpu::{masked_pool, masked_pool_backward};
use wgrnn::gpu;

use crate::common::{Tolerance, assert_tensor_close, random};
use crate::gpu::ctx;
use crate::pool::{padded_input, uneven_lengths};

/// The mean on the device against the f64 reference: at most 129 f32 additions of |x| ≤ 1
/// and one division, so an error below 129·2⁻²⁴ ≈ 7.7e-6 plus a few ulps of the result.
const MEAN_F32: Tolerance = Tolerance {
    abs: 1e-5,
    rel: 1e-5,
};

/// T, B, F: each of 1, 3, 17, 65, 129 on every axis somewhere, and B·F past one workgroup.
const SHAPES: [(usize, usize, usize); 6] = [
    (1, 1, 1),
    (3, 17, 65),
    (17, 3, 129),
    (65, 1, 3),
    (129, 5, 17),
    (2, 129, 1),
];

#[test]
fn masked_pool_matches_cpu() {
    let _watch = crate::validation::watch();
    let ctx = ctx();
    let mut rng = SplitMix64::new(21);
    for (t, b, f) in SHAPES {
        let lengths = uneven_lengths(t, b);
        for batch_first in [false, true] {
            let x: Tensor<f32> = padded_input(&mut rng, (t, b, f), &lengths, batch_first);
            let dy: Tensor<f32> = random(&mut rng, &[b, f], 1.0);
            let (gx, gdy) = (ctx.upload(&x).unwrap(), ctx.upload(&dy).unwrap());
            let (x64, dy64) = (x.cast::<f64>(), dy.cast::<f64>());
            for mode in [PoolMode::Mean, PoolMode::Max] {
                let what = format!("{mode:?} T={t} B={b} F={f} batch_first={batch_first}");
                let l = Some(&lengths[..]);
                let y = ctx
                    .read(&gpu::masked_pool(ctx, &gx, l, mode, batch_first).unwrap())
                    .unwrap();
                let dx = gpu::masked_pool_backward(ctx, &gx, l, mode, batch_first, &gdy).unwrap();
                let dx = ctx.read(&dx).unwrap();
                match mode {
                    // A comparison and a copy: bit for bit the f32 reference, zeros included.
                    PoolMode::Max => {
                        let want = masked_pool(&x, l, mode, batch_first).unwrap();
                        assert_eq!(y, want, "{what}: y");
                        let want = masked_pool_backward(&x, l, mode, batch_first, &dy).unwrap();
                        assert_eq!(dx, want, "{what}: dx");
                    }
                    PoolMode::Mean => {
                        let want = masked_pool(&x64, l, mode, batch_first).unwrap();
                        assert_tensor_close(&format!("{what}: y"), &y, &want, MEAN_F32);
                        let want = masked_pool_backward(&x64, l, mode, batch_first, &dy64).unwrap();
                        assert_tensor_close(&format!("{what}: dx"), &dx, &want, MEAN_F32);
                    }
                }
            }
        }
    }
}

/// Without lengths every step counts; in a recording, forward and backward are one dispatch
/// each, and backward reads the input the recording holds.
#[test]
fn masked_pool_without_lengths_and_in_a_recording() {
    let _watch = crate::validation::watch();
    let ctx = ctx();
    let mut rng = SplitMix64::new(22);
    let x: Tensor<f32> = random(&mut rng, &[4, 3, 5], 1.0);
    let dy: Tensor<f32> = random(&mut rng, &[3, 5], 1.0);
    let (gx, gdy) = (ctx.upload(&x).unwrap(), ctx.upload(&dy).unwrap());
    for mode in [PoolMode::Mean, PoolMode::Max] {
        let mut rec = ctx.record();
        let y = gpu::masked_pool(&mut rec, &gx, None, mode, false).unwrap();
        let dx = gpu::masked_pool_backward(&mut rec, &gx, None, mode, false, &gdy).unwrap();
        // One dispatch each (the context is shared between tests, so its submit count is not
        // this test's alone).
        assert_eq!(rec.commands(), 2, "{mode:?}");
        rec.submit().unwrap();
        let want_y = masked_pool(&x.cast::<f64>(), None, mode, false).unwrap();
        let want_dx =
            masked_pool_backward(&x.cast::<f64>(), None, mode, false, &dy.cast()).unwrap();
        let what = format!("{mode:?} without lengths");
        assert_tensor_close(&what, &ctx.read(&y).unwrap(), &want_y, MEAN_F32);
        assert_tensor_close(&what, &ctx.read(&dx).unwrap(), &want_dx, MEAN_F32);
    }
}
