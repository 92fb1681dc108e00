//! Binary cross-entropy on logits on the CPU reference: values against the formula written
//! plainly in f64 (and by hand for |x| = 100 and 10⁴), reductions, masking, gradcheck, errors.

use wgrnn::core::{SplitMix64, Tensor, TensorMap};
use wgrnn::cpu::{
    BceInput, GradcheckOptions, binary_cross_entropy_with_logits as bce,
    binary_cross_entropy_with_logits_backward as bce_backward, gradcheck,
};
use wgrnn::{Error, Reduction};

use crate::common::{Tolerance, assert_close, random};

const GRADCHECK_REL: f64 = 1e-6;

/// f64 against f64: the reference and the oracle round differently (softplus against the
/// plain logs), a few ulps of values of at most 10⁴.
const F64: Tolerance = Tolerance {
    abs: 1e-13,
    rel: 1e-12,
};

/// `−log σ(x)` written plainly: `−ln(1 / (1 + e^−x))` where that is accurate in f64 (|x| ≤ 8,
/// where 1 − σ keeps 12 digits), and by hand where σ rounds to 0 or 1: `e^−x` for x ≥ 100 and
/// `−x + e^x` for x ≤ −100 (both exact to e^−200).
fn neg_log_sigmoid(x: f64) -> f64 {
    if x.abs() <= 8.0 {
        -(1.0 / (1.0 + (-x).exp())).ln()
    } else if x >= 100.0 {
        (-x).exp()
    } else if x <= -100.0 {
        -x + x.exp()
    } else {
        panic!("the oracle has no plain form for x = {x}")
    }
}

/// The element loss of PyTorch's documentation: `−w·[pw·y·log σ(x) + (1 − y)·log(1 − σ(x))]`,
/// with `log(1 − σ(x)) = log σ(−x)`.
fn oracle(x: f64, y: f64, w: f64, pw: f64) -> f64 {
    w * (pw * y * neg_log_sigmoid(x) + (1.0 - y) * neg_log_sigmoid(-x))
}

/// Logits from the oracle's domain: |x| ≤ 8, and every eighth ±100 or ±10⁴.
fn logits(rng: &mut SplitMix64, n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| match i % 8 {
            3 => [100.0, -100.0, 1e4, -1e4][(i / 8) % 4],
            _ => rng.uniform(-8.0, 8.0),
        })
        .collect()
}

struct Case {
    x: Tensor<f64>,
    y: Tensor<f64>,
    w: Tensor<f64>,
    pw: Tensor<f64>,
    mask: Tensor<bool>,
}

/// A [3, 4, 5] case with soft and hard targets, weights, positive weights per class and a
/// mask of about a third ignored, NaN in every ignored logit, target and weight.
fn case(seed: u64) -> Case {
    let mut rng = SplitMix64::new(seed);
    let shape = [3, 4, 5];
    let mask = Tensor::from_fn(shape, |_| rng.below(3) != 0).unwrap();
    let nan_where_ignored = |v: Vec<f64>| {
        let v = v
            .iter()
            .zip(mask.data())
            .map(|(&v, &m)| if m { v } else { f64::NAN })
            .collect();
        Tensor::new(shape, v).unwrap()
    };
    let x = nan_where_ignored(logits(&mut rng, 60));
    let y = (0..60)
        .map(|i| {
            if i % 2 == 0 {
                rng.below(2) as f64
            } else {
                rng.uniform(0.0, 1.0)
            }
        })
        .collect();
    let w = (0..60).map(|_| rng.uniform(0.2, 2.0)).collect();
    Case {
        x,
        y: nan_where_ignored(y),
        w: nan_where_ignored(w),
        pw: Tensor::from_fn([5], |_| rng.uniform(0.5, 3.0)).unwrap(),
        mask,
    }
}

impl Case {
    fn input(&self) -> BceInput<'_, f64> {
        BceInput::new(&self.x, &self.y)
            .weight(&self.w)
            .pos_weight(&self.pw)
            .mask(&self.mask)
    }

    /// The oracle's element losses, 0 where ignored.
    fn want(&self) -> Vec<f64> {
        (0..60)
            .map(|i| {
                let (x, y, w) = (self.x.data()[i], self.y.data()[i], self.w.data()[i]);
                if self.mask.data()[i] {
                    oracle(x, y, w, self.pw.data()[i % 5])
                } else {
                    0.0
                }
            })
            .collect()
    }
}

/// Every reduction against the oracle, large logits included; the loss is finite everywhere.
#[test]
fn bce_matches_the_plain_formula_in_every_reduction() {
    let c = case(1);
    let want = c.want();
    let count = c.mask.data().iter().filter(|&&m| m).count();
    let none = bce(c.input(), Reduction::None).unwrap();
    assert_eq!(none.loss.shape(), [3, 4, 5]);
    assert_eq!(none.count, count);
    assert!(none.loss.data().iter().all(|v| v.is_finite()));
    assert_close("none", none.loss.data(), &want, F64);
    let sum: f64 = want.iter().sum();
    let out = bce(c.input(), Reduction::Sum).unwrap();
    assert_eq!(out.loss.shape(), [] as [usize; 0]);
    assert_close("sum", out.loss.data(), &[sum], F64);
    let out = bce(c.input(), Reduction::Mean).unwrap();
    assert_close("mean", out.loss.data(), &[sum / count as f64], F64);
    // Without the optional parts: w = pw = 1, every element counted, mean over numel.
    let x = Tensor::new([4], vec![0.5, -100.0, 1e4, -3.0]).unwrap();
    let y = Tensor::new([4], vec![1.0, 1.0, 0.0, 0.25]).unwrap();
    let plain: Vec<f64> = (0..4)
        .map(|i| oracle(x.data()[i], y.data()[i], 1.0, 1.0))
        .collect();
    // By hand: softplus(100) ≈ 100 and softplus(10⁴) = 10⁴.
    assert!(
        (plain[1] - 100.0).abs() < 1e-12 && plain[2] == 1e4,
        "{plain:?}"
    );
    let out = bce(BceInput::new(&x, &y), Reduction::Mean).unwrap();
    assert_eq!(out.count, 4);
    assert_close(
        "plain mean",
        out.loss.data(),
        &[plain.iter().sum::<f64>() / 4.0],
        F64,
    );
}

/// NaN at ignored elements changes nothing (bit for bit), and with every element ignored the
/// loss and the gradient are 0.
#[test]
fn bce_ignored_elements_never_reach_the_result() {
    let c = case(2);
    let zeroed = |t: &Tensor<f64>| {
        let v = t
            .data()
            .iter()
            .map(|v| if v.is_nan() { 0.0 } else { *v })
            .collect();
        Tensor::new(t.shape().to_vec(), v).unwrap()
    };
    let (x0, y0, w0) = (zeroed(&c.x), zeroed(&c.y), zeroed(&c.w));
    let clean = BceInput::new(&x0, &y0)
        .weight(&w0)
        .pos_weight(&c.pw)
        .mask(&c.mask);
    for r in [Reduction::None, Reduction::Mean, Reduction::Sum] {
        let a = bce(c.input(), r).unwrap();
        assert_eq!(a, bce(clean, r).unwrap(), "{r:?}");
        let d = Tensor::full(a.loss.shape().to_vec(), 0.5).unwrap();
        let g = bce_backward(c.input(), r, &d).unwrap();
        assert_eq!(g, bce_backward(clean, r, &d).unwrap(), "{r:?}");
        assert!(g.data().iter().all(|v| v.is_finite()), "{r:?}");
    }
    let none = Tensor::full([3, 4, 5], false).unwrap();
    let all_ignored = c.input().mask(&none);
    for r in [Reduction::Mean, Reduction::Sum] {
        let out = bce(all_ignored, r).unwrap();
        assert_eq!((out.loss.data(), out.count), (&[0.0][..], 0), "{r:?}");
        let g = bce_backward(all_ignored, r, &Tensor::full([], 1.0).unwrap()).unwrap();
        assert!(g.data().iter().all(|&v| v == 0.0), "{r:?}");
    }
}

/// The gradient at large logits is finite and exact: w·(σ(x)·(1 + (pw − 1)·y) − pw·y) with σ
/// = 1 or 0.
#[test]
fn bce_gradient_at_large_logits() {
    let x = Tensor::new([4], vec![1e4, -1e4, 100.0, -100.0]).unwrap();
    let y = Tensor::new([4], vec![0.0, 1.0, 0.5, 0.5]).unwrap();
    let pw = Tensor::new([4], vec![1.0, 2.0, 3.0, 3.0]).unwrap();
    let g = bce_backward(
        BceInput::new(&x, &y).pos_weight(&pw),
        Reduction::Sum,
        &Tensor::full([], 1.0).unwrap(),
    )
    .unwrap();
    // σ(100) = 1 and σ(−100) = 3.7e-44 in f64: 1·(1 + 2·0.5) − 1.5 and −1.5.
    assert_close("dx", g.data(), &[1.0, -2.0, 0.5, -1.5], F64);
}

#[test]
fn gradcheck_bce_every_reduction() {
    let mut rng = SplitMix64::new(3);
    let shape = [3, 2, 4];
    let x: Tensor<f64> = random(&mut rng, &shape, 3.0);
    let y = Tensor::from_fn(shape, |_| rng.uniform(0.0, 1.0)).unwrap();
    let w = Tensor::from_fn(shape, |_| rng.uniform(0.5, 2.0)).unwrap();
    let pw = Tensor::from_fn([4], |_| rng.uniform(0.5, 3.0)).unwrap();
    let mask = Tensor::from_fn(shape, |i| i % 5 != 2).unwrap();
    for r in [Reduction::None, Reduction::Mean, Reduction::Sum] {
        let input = BceInput::new(&x, &y).weight(&w).pos_weight(&pw).mask(&mask);
        let dshape: Vec<usize> = if r == Reduction::None {
            shape.to_vec()
        } else {
            vec![]
        };
        let d: Tensor<f64> = random(&mut rng, &dshape, 1.0);
        let mut analytic = TensorMap::new();
        analytic.insert("x".into(), bce_backward(input, r, &d).unwrap());
        let mut inputs = TensorMap::new();
        inputs.insert("x".into(), x.clone());
        let loss = |m: &TensorMap<f64>| {
            let l = bce(
                BceInput {
                    logits: &m["x"],
                    ..input
                },
                r,
            )?
            .loss;
            Ok(l.data().iter().zip(d.data()).map(|(a, b)| a * b).sum())
        };
        let rep = gradcheck(&inputs, &analytic, loss, GradcheckOptions::default()).unwrap();
        assert!(rep.worst_rel_error < GRADCHECK_REL, "{r:?}: {rep}");
    }
}

/// Every shape the op checks is an error naming the argument, forward and backward.
#[test]
fn bce_shape_errors() {
    let x = Tensor::<f32>::zeros([2, 3]).unwrap();
    let y = x.clone();
    let short = Tensor::<f32>::zeros([2, 2]).unwrap();
    let mask = Tensor::full([3, 2], true).unwrap();
    let pw = Tensor::<f32>::zeros([2]).unwrap();
    let scalar = Tensor::<f32>::zeros([]).unwrap();
    let cases: [(BceInput<f32>, &str); 5] = [
        (BceInput::new(&x, &short), "targets"),
        (BceInput::new(&x, &y).weight(&short), "weight"),
        (BceInput::new(&x, &y).mask(&mask), "mask"),
        (BceInput::new(&x, &y).pos_weight(&pw), "pos_weight"),
        (
            BceInput::new(&scalar, &scalar).pos_weight(&pw),
            "pos_weight",
        ),
    ];
    for (input, arg) in cases {
        let e = bce(input, Reduction::Mean).unwrap_err();
        assert_eq!(e.op(), Some("binary_cross_entropy_with_logits"), "{e}");
        assert!(e.to_string().contains(&format!("`{arg}`")), "{e}");
        let e = bce_backward(input, Reduction::Mean, &scalar).unwrap_err();
        assert_eq!(e.op(), Some("binary_cross_entropy_with_logits_backward"));
        assert!(e.to_string().contains(&format!("`{arg}`")), "{e}");
    }
    let e = bce_backward(BceInput::new(&x, &y), Reduction::None, &scalar).unwrap_err();
    assert_eq!(
        e,
        Error::shape(
            "binary_cross_entropy_with_logits_backward",
            "dloss",
            &[2, 3],
            &[]
        )
    );
    let e = bce_backward(BceInput::new(&x, &y), Reduction::Sum, &x).unwrap_err();
    assert!(e.to_string().contains("`dloss`"), "{e}");
}
