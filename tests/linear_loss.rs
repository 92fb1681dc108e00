//! Linear layer and softmax cross-entropy on the CPU reference.

use wgrnn::LinearConfig;
use wgrnn::core::{LinearWeights, LoadOptions, SplitMix64, Tensor, TensorMap};
use wgrnn::cpu::gradcheck::dot;
use wgrnn::cpu::{
    GradcheckOptions, cross_entropy, cross_entropy_backward, gradcheck, linear_backward,
    linear_forward, log_softmax,
};

use crate::common::random;

const GRADCHECK_REL: f64 = 1e-6;

#[test]
fn gradcheck_linear_with_and_without_bias() {
    for bias in [true, false] {
        let cfg = LinearConfig {
            bias,
            ..LinearConfig::new(4, 3)
        };
        let w = LinearWeights::<f64>::init(cfg.clone(), 1).unwrap();
        let mut rng = SplitMix64::new(2);
        let mut inputs = w.tensors().clone();
        inputs.insert("x".into(), random(&mut rng, &[2, 5, 4], 1.0));
        let dy = random(&mut rng, &[2, 5, 3], 1.0);
        let g = linear_backward(&w, &inputs["x"], &dy).unwrap();
        let mut analytic = g.weights.into_tensors();
        analytic.insert("x".into(), g.dx);
        let loss = |m: &TensorMap<f64>| {
            let w =
                LinearWeights::from_tensors(cfg.clone(), m.clone(), &LoadOptions::non_strict())?;
            Ok(dot(&linear_forward(&w, &m["x"])?, &dy))
        };
        let r = gradcheck(&inputs, &analytic, loss, GradcheckOptions::default()).unwrap();
        assert!(r.worst_rel_error < GRADCHECK_REL, "bias={bias}: {r}");
    }
}

#[test]
fn gradcheck_cross_entropy_with_ignore_index() {
    let mut rng = SplitMix64::new(3);
    let logits: Tensor<f64> = random(&mut rng, &[3, 2, 5], 3.0);
    let targets = Tensor::new([3, 2], vec![1, -100, 4, 0, -100, 2]).unwrap();
    let ignore = Some(-100);
    let dloss = 0.7;
    let g = cross_entropy_backward(&logits, &targets, ignore, dloss).unwrap();
    for r in [1, 4] {
        assert!(
            g.data()[r * 5..(r + 1) * 5].iter().all(|v| *v == 0.0),
            "ignored row {r} has a gradient"
        );
    }
    let mut inputs = TensorMap::new();
    inputs.insert("logits".to_string(), logits);
    let mut analytic = TensorMap::new();
    analytic.insert("logits".to_string(), g);
    let loss = |m: &TensorMap<f64>| Ok(dloss * cross_entropy(&m["logits"], &targets, ignore)?.loss);
    let r = gradcheck(&inputs, &analytic, loss, GradcheckOptions::default()).unwrap();
    assert!(r.worst_rel_error < GRADCHECK_REL, "{r}");
}

#[test]
fn cross_entropy_is_the_mean_nll_over_counted_targets() {
    // Two rows with hand-computable values: uniform logits give ln C; an ignored row adds nothing.
    let logits = Tensor::new(
        [3, 4],
        vec![0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 5.0, 1.0, 2.0, 3.0],
    )
    .unwrap();
    let targets = Tensor::new([3], vec![2, 0, -1]).unwrap();
    let out = cross_entropy(&logits, &targets, Some(-1)).unwrap();
    assert_eq!(out.count, 2);
    assert!((out.loss - 4f64.ln()).abs() < 1e-15, "{}", out.loss);
    let lp = log_softmax(&logits).unwrap();
    let row_sums: Vec<f64> = lp
        .data()
        .chunks(4)
        .map(|r| r.iter().map(|v| v.exp()).sum())
        .collect();
    assert!(
        row_sums.iter().all(|s| (s - 1.0).abs() < 1e-15),
        "{row_sums:?}"
    );
    // Every target ignored: loss 0 and zero gradient rather than NaN.
    let none = Tensor::new([3], vec![-1, -1, -1]).unwrap();
    assert_eq!(cross_entropy(&logits, &none, Some(-1)).unwrap().loss, 0.0);
    assert!(
        cross_entropy_backward(&logits, &none, Some(-1), 1.0)
            .unwrap()
            .data()
            .iter()
            .all(|v| *v == 0.0)
    );
}
