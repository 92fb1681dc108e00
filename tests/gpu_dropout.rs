//! GPU dropout against the CPU reference: the same (seed, stream) gives the same mask bit for
//! bit, forward and backward, on sizes off every block and workgroup; inference copies; errors.

use wgrnn::core::{SplitMix64, Tensor};
use wgrnn::cpu::{dropout, dropout_backward, dropout_mask};
use wgrnn::gpu;
use wgrnn::{DropoutConfig, Error};

use crate::common::random;
use crate::gpu::{blockings, ctx};

/// Sizes off the kernel's blocks of 4 and workgroups of 64 blocks, and one past a million.
const SIZES: [usize; 7] = [1, 3, 17, 65, 129 * 3, 129 * 64 + 5, 1_000_003];

/// Bitwise equality of two f32 slices, naming the first differing index.
#[track_caller]
fn assert_bits(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    if let Some(i) = (0..got.len()).find(|&i| got[i].to_bits() != want[i].to_bits()) {
        panic!("{what}: index {i}: got {}, want {}", got[i], want[i]);
    }
}

/// Dropout of ones is the mask itself: it must equal the reference's bit for bit, for seeds
/// with high words, streams up to u32::MAX and several p.
#[test]
fn gpu_dropout_mask_is_the_cpu_mask_bit_for_bit() {
    let _watch = crate::validation::watch();
    let ctx = ctx();
    let keys = [
        (0.5, 0u64, 0u32),
        (0.1, 1, 1),
        (0.9, 0x0123_4567_89ab_cdef, 7),
        (0.3, u64::MAX, u32::MAX),
    ];
    for n in SIZES {
        let ones = ctx.upload(&Tensor::full([n], 1.0f32).unwrap()).unwrap();
        for (p, seed, stream) in keys {
            let cfg = DropoutConfig::new(p);
            let got = ctx.read(&gpu::dropout(ctx, &ones, &cfg, seed, stream).unwrap());
            let want = dropout_mask::<f32>(&[n], &cfg, seed, stream).unwrap();
            let what = format!("n = {n}, p = {p}, seed {seed:#x}, stream {stream}");
            assert_bits(&what, got.unwrap().data(), want.data());
        }
    }
}

/// Forward and backward on random data equal the f32 reference bit for bit (one product per
/// element on both sides), for a multi-axis tensor indexed linearly.
#[test]
fn gpu_dropout_forward_and_backward_match_cpu_bit_for_bit() {
    let _watch = crate::validation::watch();
    let ctx = ctx();
    let mut rng = SplitMix64::new(21);
    for shape in [vec![1], vec![3, 7], vec![5, 13, 65], vec![2, 129, 33]] {
        let x: Tensor<f32> = random(&mut rng, &shape, 3.0);
        let dy: Tensor<f32> = random(&mut rng, &shape, 3.0);
        let (gx, gdy) = (ctx.upload(&x).unwrap(), ctx.upload(&dy).unwrap());
        for cfg in [
            DropoutConfig::new(0.2),
            DropoutConfig::new(0.0),
            DropoutConfig::new(0.6).training(false),
        ] {
            let what = format!("{shape:?} {cfg:?}");
            let y = gpu::dropout(ctx, &gx, &cfg, 99, 2).unwrap();
            assert_eq!(y.shape(), x.shape());
            let want = dropout(&x, &cfg, 99, 2).unwrap();
            assert_bits(
                &format!("{what}: y"),
                ctx.read(&y).unwrap().data(),
                want.data(),
            );
            let dx = gpu::dropout_backward(ctx, &gdy, &cfg, 99, 2).unwrap();
            let want = dropout_backward(&dy, &cfg, 99, 2).unwrap();
            assert_bits(
                &format!("{what}: dx"),
                ctx.read(&dx).unwrap().data(),
                want.data(),
            );
            assert!(!y.same_buffer(&gx), "{what}: the output aliases x");
        }
    }
}

/// Calls recorded into one submit draw the masks of their own keys; a NaN stays NaN.
#[test]
fn gpu_dropout_records_and_keeps_nan() {
    let _watch = crate::validation::watch();
    let ctx = ctx();
    let cfg = DropoutConfig::new(0.5);
    let ones = ctx.upload(&Tensor::full([300], 1.0f32).unwrap()).unwrap();
    let mut rec = ctx.record();
    let a = gpu::dropout(&mut rec, &ones, &cfg, 5, 0).unwrap();
    let b = gpu::dropout(&mut rec, &ones, &cfg, 5, 1).unwrap();
    rec.submit().unwrap();
    for (t, stream) in [(a, 0), (b, 1)] {
        let want = dropout_mask::<f32>(&[300], &cfg, 5, stream).unwrap();
        assert_bits(
            &format!("stream {stream}"),
            ctx.read(&t).unwrap().data(),
            want.data(),
        );
    }
    let nan = ctx.upload(&Tensor::full([64], f32::NAN).unwrap()).unwrap();
    let y = ctx
        .read(&gpu::dropout(ctx, &nan, &cfg, 5, 0).unwrap())
        .unwrap();
    assert!(y.data().iter().all(|v| v.is_nan()), "{:?}", y.data());
}

/// Bad p, a u32 tensor and a tensor of another context are errors naming the argument.
#[test]
fn gpu_dropout_errors() {
    let _watch = crate::validation::watch();
    let [a, b, _] = blockings();
    let x = a.zeros(&[8]).unwrap();
    for p in [1.0, -0.5, f64::NAN] {
        let cfg = DropoutConfig::new(p);
        for e in [
            gpu::dropout(a, &x, &cfg, 0, 0).unwrap_err(),
            gpu::dropout_backward(a, &x, &cfg, 0, 0).unwrap_err(),
        ] {
            assert!(matches!(e, Error::InvalidConfig { field: "p", .. }), "{e}");
        }
    }
    let cfg = DropoutConfig::new(0.5);
    let ids = a.upload_u32(&[8], &[0; 8]).unwrap();
    let e = gpu::dropout(a, &ids, &cfg, 0, 0).unwrap_err();
    assert!(
        matches!(
            e,
            Error::InvalidArgument {
                op: "dropout",
                arg: "x",
                ..
            }
        ),
        "{e}"
    );
    let e = gpu::dropout_backward(a, &ids, &cfg, 0, 0).unwrap_err();
    assert!(
        matches!(
            e,
            Error::InvalidArgument {
                op: "dropout_backward",
                arg: "dy",
                ..
            }
        ),
        "{e}"
    );
    let e = gpu::dropout(b, &x, &cfg, 0, 0).unwrap_err();
    assert!(
        matches!(e, Error::ForeignContext { op: "dropout", .. }),
        "{e}"
    );
}
