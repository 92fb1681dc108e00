//! Dropout on the CPU reference: the mask's statistics, its dependence on seed and stream, the
//! scaling, inference mode, the backward and a gradcheck.

use wgrnn::core::philox::{keep, uniform};
use wgrnn::core::{SplitMix64, Tensor, TensorMap};
use wgrnn::cpu::gradcheck::dot;
use wgrnn::cpu::{GradcheckOptions, dropout, dropout_backward, dropout_mask, gradcheck};
use wgrnn::{DropoutConfig, Error};

use crate::common::random;

const GRADCHECK_REL: f64 = 1e-6;

/// Elements of the statistical checks: the kept share's standard deviation is
/// √(p(1 − p)/n) ≤ 5e-4, so 4σ bounds are tight and a fair mask passes with probability
/// 1 − 6e-5 per check (and the seeds are fixed, so a pass is a pass for good).
const DRAWS: usize = 1_000_000;

/// Kept elements out of `m`.
fn kept(m: &Tensor<f64>) -> usize {
    m.data().iter().filter(|&&v| v != 0.0).count()
}

/// The kept share is 1 − p within 4σ for several p, and each kept value is exactly 1 / (1 − p).
#[test]
fn dropout_keeps_one_minus_p_within_four_sigma() {
    for (p, seed) in [(0.1, 1), (0.5, 2), (0.9, 3), (0.3, u64::MAX)] {
        let cfg = DropoutConfig::new(p);
        let m = dropout_mask::<f64>(&[DRAWS], &cfg, seed, 0).unwrap();
        let share = kept(&m) as f64 / DRAWS as f64;
        let sigma = (p * (1.0 - p) / DRAWS as f64).sqrt();
        assert!(
            (share - (1.0 - p)).abs() < 4.0 * sigma,
            "p = {p}: kept share {share}, want {} ± {}",
            1.0 - p,
            4.0 * sigma
        );
        let scale = 1.0 / (1.0 - p);
        assert!(m.data().iter().all(|&v| v == 0.0 || v == scale), "p = {p}");
    }
    // The uniforms of the same generator: mean 1/2 within 4σ (σ² = 1 / (12 n)).
    let mean = (0..DRAWS as u64)
        .map(|i| uniform(4, 2, i) as f64)
        .sum::<f64>()
        / DRAWS as f64;
    let sigma = (1.0 / (12.0 * DRAWS as f64)).sqrt();
    assert!((mean - 0.5).abs() < 4.0 * sigma, "uniform mean {mean}");
}

/// The mask is the one `keep` gives element by element (the stream's layout), the same for
/// the same (seed, stream) in f32 and f64, and another for another seed or stream: two
/// independent masks differ at a share 2p(1 − p) of the elements.
#[test]
fn dropout_masks_depend_on_seed_and_stream_only() {
    let n = 100_003;
    let p = 0.4;
    let cfg = DropoutConfig::new(p);
    let base = dropout_mask::<f64>(&[n], &cfg, 77, 5).unwrap();
    let threshold = cfg.threshold();
    for (i, &v) in base.data().iter().enumerate() {
        assert_eq!(v != 0.0, keep(77, 5, i as u64, threshold), "element {i}");
    }
    assert_eq!(base, dropout_mask::<f64>(&[n], &cfg, 77, 5).unwrap());
    let narrow = dropout_mask::<f32>(&[n], &cfg, 77, 5).unwrap();
    for (i, (a, b)) in narrow.data().iter().zip(base.data()).enumerate() {
        assert_eq!(*a != 0.0, *b != 0.0, "f32 and f64 masks differ at {i}");
    }
    // The shape does not matter, only the linear index.
    let square = dropout_mask::<f64>(&[7, 14_287], &cfg, 77, 5).unwrap();
    assert_eq!(&square.data()[..n], base.data());
    let expected = 2.0 * p * (1.0 - p) * n as f64;
    for (what, other) in [
        ("seed 78", dropout_mask::<f64>(&[n], &cfg, 78, 5).unwrap()),
        (
            "seed 77 + 2^32",
            dropout_mask(&[n], &cfg, 77 + (1 << 32), 5).unwrap(),
        ),
        ("stream 6", dropout_mask(&[n], &cfg, 77, 6).unwrap()),
    ] {
        let differ = base
            .data()
            .iter()
            .zip(other.data())
            .filter(|(a, b)| a != b)
            .count() as f64;
        let sigma = expected.sqrt();
        assert!(
            (differ - expected).abs() < 4.0 * sigma,
            "{what}: {differ} elements differ, want {expected} ± {}",
            4.0 * sigma
        );
    }
}

/// Forward is x times the mask, backward dy times the same mask; inference and p = 0 are the
/// identity.
#[test]
fn dropout_forward_and_backward_apply_one_mask() {
    let mut rng = SplitMix64::new(8);
    let x: Tensor<f64> = random(&mut rng, &[3, 5, 17], 2.0);
    let dy: Tensor<f64> = random(&mut rng, &[3, 5, 17], 2.0);
    let cfg = DropoutConfig::new(0.25);
    let m = dropout_mask::<f64>(x.shape(), &cfg, 9, 1).unwrap();
    let y = dropout(&x, &cfg, 9, 1).unwrap();
    let dx = dropout_backward(&dy, &cfg, 9, 1).unwrap();
    assert_eq!(y.shape(), x.shape());
    for i in 0..x.numel() {
        let kept = m.data()[i] != 0.0;
        let want = if kept { x.data()[i] / 0.75 } else { 0.0 };
        assert!((y.data()[i] - want).abs() <= 1e-15 * want.abs(), "y[{i}]");
        let want = if kept { dy.data()[i] / 0.75 } else { 0.0 };
        assert!((dx.data()[i] - want).abs() <= 1e-15 * want.abs(), "dx[{i}]");
    }
    for cfg in [
        DropoutConfig::new(0.5).training(false),
        DropoutConfig::new(0.0),
    ] {
        assert_eq!(dropout(&x, &cfg, 9, 1).unwrap(), x, "{cfg:?}");
        assert_eq!(dropout_backward(&dy, &cfg, 9, 1).unwrap(), dy, "{cfg:?}");
    }
    // A product, as PyTorch's: a NaN stays NaN where dropped.
    let nan = Tensor::full([64], f64::NAN).unwrap();
    assert!(
        dropout(&nan, &cfg, 9, 1)
            .unwrap()
            .data()
            .iter()
            .all(|v| v.is_nan())
    );
}

#[test]
fn gradcheck_dropout() {
    let mut rng = SplitMix64::new(10);
    let x: Tensor<f64> = random(&mut rng, &[4, 9], 1.0);
    let dy: Tensor<f64> = random(&mut rng, &[4, 9], 1.0);
    let cfg = DropoutConfig::new(0.35);
    let mut inputs = TensorMap::new();
    inputs.insert("x".into(), x);
    let mut analytic = TensorMap::new();
    analytic.insert("x".into(), dropout_backward(&dy, &cfg, 11, 3).unwrap());
    let loss = |m: &TensorMap<f64>| Ok(dot(&dropout(&m["x"], &cfg, 11, 3)?, &dy));
    let r = gradcheck(&inputs, &analytic, loss, GradcheckOptions::default()).unwrap();
    assert!(r.worst_rel_error < GRADCHECK_REL, "{r}");
}

/// p outside [0, 1) is an error naming `p`, on the forward and the backward.
#[test]
fn dropout_refuses_p_outside_zero_to_one() {
    let x = Tensor::<f32>::zeros([4]).unwrap();
    for p in [1.0, 1.5, -0.1, f64::NAN, f64::INFINITY] {
        let cfg = DropoutConfig::new(p);
        for r in [
            dropout(&x, &cfg, 0, 0),
            dropout_backward(&x, &cfg, 0, 0),
            dropout_mask(&[4], &cfg, 0, 0),
        ] {
            let e = r.unwrap_err();
            assert!(
                matches!(e, Error::InvalidConfig { field: "p", .. }),
                "p = {p}: {e}"
            );
            assert!(e.to_string().contains("p must be in [0, 1)"), "{e}");
        }
    }
}
