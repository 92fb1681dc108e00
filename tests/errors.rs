//! Every error the public API promises: bad configs, wrong shapes, bad lengths, out-of-range ids.
//! Each is an `Err` naming the op and argument, never a panic.

use wgrnn::core::{
    AttentionWeights, EmbeddingWeights, LinearWeights, OptimizerConfig, RnnWeights, TensorMap,
};
use wgrnn::cpu::{
    AttentionInput, GradcheckOptions, Optimizer, RnnInput, RnnOutputGrads, attention_backward,
    attention_forward, clip_grad_norm, cross_entropy, cross_entropy_backward, embedding_backward,
    embedding_forward, gradcheck, linear_backward, linear_forward, log_softmax, masked_pool,
    masked_pool_backward, rnn_backward, rnn_forward, rnn_forward_train,
};
use wgrnn::gpu;
use wgrnn::{
    AttentionConfig, CellKind, EmbeddingConfig, Error, GruReset, LinearConfig, PoolMode, RnnConfig,
    Score, Tensor,
};

fn z(shape: &[usize]) -> Tensor<f32> {
    Tensor::zeros(shape.to_vec()).unwrap()
}

/// Asserts `r` is an error whose message mentions every word of `needles`.
#[track_caller]
fn err_mentions<T: std::fmt::Debug>(r: wgrnn::Result<T>, needles: &[&str]) -> Error {
    let e = r.expect_err("expected an error");
    let msg = e.to_string();
    for n in needles {
        assert!(msg.contains(n), "error `{msg}` does not mention `{n}`");
    }
    e
}

#[test]
fn invalid_configs() {
    for (cfg, field) in [
        (RnnConfig::new(CellKind::Lstm, 0, 4), "input_size"),
        (RnnConfig::new(CellKind::Gru, 3, 0), "hidden_size"),
        (
            RnnConfig::new(CellKind::RnnTanh, 3, 4).layers(0),
            "num_layers",
        ),
    ] {
        let e = err_mentions(RnnWeights::<f32>::init(cfg.clone(), 0), &[field]);
        assert!(matches!(e, Error::InvalidConfig { .. }));
        err_mentions(RnnWeights::<f32>::zeros(cfg), &[field]);
    }
    let bad_dot = AttentionConfig {
        key_size: 5,
        ..AttentionConfig::new(Score::Dot, 4)
    };
    err_mentions(
        AttentionWeights::<f32>::init(bad_dot, 0),
        &["key_size", "query_size"],
    );
    let bad_add = AttentionConfig {
        attn_size: 0,
        ..AttentionConfig::new(Score::Additive, 4)
    };
    err_mentions(AttentionWeights::<f32>::init(bad_add, 0), &["attn_size"]);
    err_mentions(
        EmbeddingWeights::<f32>::init(EmbeddingConfig::new(5, 3).padding_idx(Some(5)), 0),
        &["padding_idx"],
    );
    err_mentions(
        EmbeddingWeights::<f32>::init(EmbeddingConfig::new(0, 3), 0),
        &["num_embeddings"],
    );
    err_mentions(
        LinearWeights::<f32>::init(LinearConfig::new(3, 0), 0),
        &["out_features"],
    );
}

#[test]
fn tensor_data_must_match_its_shape() {
    let e = err_mentions(Tensor::new([2, 3], vec![0.0f32; 5]), &["[2, 3]", "6", "5"]);
    assert_eq!(
        e,
        Error::DataLength {
            shape: vec![2, 3],
            len: 5
        }
    );
}

/// A shape whose element count overflows `usize` is a length error, not a wrapped count that
/// would let an empty buffer pass for a huge tensor.
#[test]
fn tensor_shapes_past_usize_are_refused() {
    let huge = [1usize << 40, 1 << 40, 1];
    let e = err_mentions(
        Tensor::<f32>::new(huge, vec![]),
        &["more than usize::MAX", "got 0"],
    );
    assert!(matches!(e, Error::DataLength { len: 0, .. }), "{e}");
    let e = Tensor::new([2, 3], vec![1.0f32; 6])
        .unwrap()
        .reshape(huge)
        .unwrap_err();
    assert!(matches!(e, Error::DataLength { len: 6, .. }), "{e}");
}

/// Hyper-parameters outside what `torch.optim` accepts are refused when the optimizer is made
/// or its rate changed: each would make every update NaN or climb the loss.
#[test]
fn optimizer_configs_out_of_domain() {
    let adam = |beta1, beta2, eps| OptimizerConfig::Adam {
        lr: 1e-3,
        beta1,
        beta2,
        eps,
        weight_decay: 0.0,
        decoupled: false,
    };
    let sgd = |lr, momentum, dampening, nesterov| OptimizerConfig::Sgd {
        lr,
        momentum,
        dampening,
        weight_decay: 0.0,
        nesterov,
    };
    for (cfg, field) in [
        (adam(1.0, 0.999, 1e-8), "beta1"),
        (adam(0.9, -0.1, 1e-8), "beta2"),
        (adam(0.9, 0.999, f64::NAN), "eps"),
        (OptimizerConfig::adam(-1e-3), "lr"),
        (OptimizerConfig::adam(f64::NAN), "lr"),
        (OptimizerConfig::adam(f64::INFINITY), "lr"),
        (sgd(0.1, -0.5, 0.0, false), "momentum"),
        // Valid in f64 but not in f32, the precision the device updates in: 1e39 is infinite
        // there, 1e-50 is 0, 0.999999999 rounds to 1, and lr / (1 − β1) or lr · wd overflow.
        (OptimizerConfig::adam(1e39), "lr"),
        (OptimizerConfig::sgd(1e39, 0.0), "lr"),
        (OptimizerConfig::sgd(1e-50, 0.0), "lr"),
        (sgd(0.1, 1e39, 0.0, false), "momentum"),
        (sgd(0.1, 0.9, -1e39, false), "dampening"),
        (adam(0.9, 0.999, 1e-50), "eps"),
        (adam(0.999_999_999, 0.999, 1e-8), "beta1"),
        (adam(0.9, 0.999_999_999, 1e-8), "beta2"),
        (
            OptimizerConfig::Adam {
                lr: 1e33,
                beta1: 0.999_999,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: 0.0,
                decoupled: false,
            },
            "lr / (1 - beta1)",
        ),
        (
            OptimizerConfig::Adam {
                lr: 1e30,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: 1e10,
                decoupled: true,
            },
            "lr * weight_decay",
        ),
        (
            OptimizerConfig::RmsProp {
                lr: 1e-2,
                alpha: 0.99,
                eps: 1e-50,
                weight_decay: 0.0,
                momentum: 0.0,
            },
            "eps",
        ),
        (sgd(0.1, 0.0, 0.0, true), "nesterov"),
        (sgd(0.1, 0.9, 0.1, true), "nesterov"),
        (
            OptimizerConfig::RmsProp {
                lr: 1e-2,
                alpha: -0.9,
                eps: 1e-8,
                weight_decay: 0.0,
                momentum: 0.0,
            },
            "alpha",
        ),
    ] {
        let e = err_mentions(cfg.validate(), &[field]);
        assert!(matches!(e, Error::InvalidConfig { .. }), "{e}");
        err_mentions(Optimizer::<f64>::new(cfg, &[2]), &[field]);
    }
    for cfg in [
        OptimizerConfig::adam(1e-3),
        OptimizerConfig::adamw(1e-3),
        OptimizerConfig::rmsprop(1e-2),
        sgd(0.1, 0.9, 0.0, true),
        sgd(0.0, 0.0, 0.5, false),
    ] {
        cfg.validate().unwrap();
    }
    err_mentions(OptimizerConfig::adam(1e-3).with_lr(-1.0), &["lr", "-1"]);
    assert_eq!(
        OptimizerConfig::sgd(0.1, 0.0).with_lr(0.5).unwrap(),
        OptimizerConfig::sgd(0.5, 0.0)
    );
    err_mentions(clip_grad_norm::<f64>(&mut [], -1.0), &["max_norm", "-1"]);
    err_mentions(
        OptimizerConfig::adam(1e-3).with_lr(1e39),
        &["lr", "finite in f32"],
    );
    for bound in [1e39, 1e-50, f64::INFINITY] {
        err_mentions(clip_grad_norm::<f64>(&mut [], bound), &["max_norm", "f32"]);
    }
    // The edges of f32 itself are still valid.
    OptimizerConfig::sgd(f32::MAX as f64, 0.0)
        .validate()
        .unwrap();
    OptimizerConfig::adam(f32::MIN_POSITIVE as f64)
        .validate()
        .unwrap();
    clip_grad_norm::<f64>(&mut [], 0.0).unwrap();
}

/// A step whose later parameter has the wrong size changes nothing: not the parameters before
/// it, not the momentum, not the step count.
#[test]
fn optimizer_step_checks_every_size_before_updating() {
    let mut opt = Optimizer::<f64>::new(OptimizerConfig::sgd(0.1, 0.9), &[2, 2]).unwrap();
    let (mut p0, mut p1) = (vec![1.0, 2.0], vec![3.0, 4.0, 5.0]);
    let (g0, g1) = (vec![1.0, 1.0], vec![1.0, 1.0, 1.0]);
    let e = err_mentions(
        opt.step(&mut [&mut p0, &mut p1], &[&g0, &g1]),
        &["params[1]", "[3]", "[2]"],
    );
    assert!(matches!(e, Error::Shape { .. }), "{e}");
    assert_eq!((p0.as_slice(), opt.t), (&[1.0, 2.0][..], 0));
    let mut p1 = vec![3.0, 4.0];
    err_mentions(
        opt.step(&mut [&mut p0, &mut p1], &[&g0, &g1]),
        &["grads[1]", "[3]", "[2]"],
    );
    assert_eq!((p0.as_slice(), opt.t), (&[1.0, 2.0][..], 0));
    // With sizes right, the first step takes the momentum buffer as the gradient (b = g).
    opt.step(&mut [&mut p0, &mut p1], &[&g0, &g0]).unwrap();
    assert_eq!((p0.as_slice(), opt.t), (&[0.9, 1.9][..], 1));
}

#[test]
fn rnn_input_shapes_and_lengths() {
    let cfg = RnnConfig::new(CellKind::Lstm, 3, 4).layers(2);
    let w = RnnWeights::<f32>::init(cfg, 0).unwrap();
    let x = z(&[5, 2, 3]);
    err_mentions(
        rnn_forward(&w, RnnInput::new(&z(&[5]))),
        &["rnn", "`x`", "rank 3", "unbatched"],
    );
    err_mentions(
        rnn_forward(&w, RnnInput::new(&z(&[5, 2, 3, 1]))),
        &["rnn", "`x`", "rank 3"],
    );
    // Unbatched x [T, I] takes states [L·D, H]: a 3-D one is refused by name, a 2-D one of
    // the wrong size by its shape.
    err_mentions(
        rnn_forward(&w, RnnInput::new(&z(&[5, 3])).h0(&z(&[2, 1, 4]))),
        &["`h0`", "2-D", "[5, 3]", "[2, 1, 4]"],
    );
    err_mentions(
        rnn_forward(&w, RnnInput::new(&z(&[5, 3])).c0(&z(&[2, 5]))),
        &["`c0`", "[2, 1, 5]", "[2, 1, 4]"],
    );
    let e = err_mentions(
        rnn_forward(&w, RnnInput::new(&z(&[5, 2, 4]))),
        &["`x`", "[5, 2, 4]", "[5, 2, 3]"],
    );
    assert_eq!(e, Error::shape("rnn_forward", "x", &[5, 2, 3], &[5, 2, 4]));
    err_mentions(
        rnn_forward(&w, RnnInput::new(&z(&[0, 2, 3]))),
        &["`x`", "T ≥ 1"],
    );
    err_mentions(
        rnn_forward(&w, RnnInput::new(&x).h0(&z(&[1, 2, 4]))),
        &["`h0`", "[1, 2, 4]", "[2, 2, 4]"],
    );
    err_mentions(
        rnn_forward(&w, RnnInput::new(&x).c0(&z(&[2, 3, 4]))),
        &["`c0`", "[2, 3, 4]", "[2, 2, 4]"],
    );
    err_mentions(
        rnn_forward(&w, RnnInput::new(&x).lengths(&[5])),
        &["`lengths`", "[1]", "[2]"],
    );
    let e = err_mentions(
        rnn_forward(&w, RnnInput::new(&x).lengths(&[5, 6])),
        &["lengths[1]", "6", "1..=5"],
    );
    assert_eq!(
        e,
        Error::Length {
            op: "rnn_forward",
            arg: "lengths",
            index: 1,
            value: 6,
            max: 5
        }
    );
    err_mentions(
        rnn_forward(&w, RnnInput::new(&x).lengths(&[0, 5])),
        &["lengths[0]", "= 0"],
    );

    let gru = RnnWeights::<f32>::init(RnnConfig::new(CellKind::Gru, 3, 4), 0).unwrap();
    err_mentions(
        rnn_forward(&gru, RnnInput::new(&x).c0(&z(&[1, 2, 4]))),
        &["`c0`", "only for LSTM", "gru"],
    );

    // With a projection h states are P wide and c states H wide.
    let proj = RnnConfig::new(CellKind::Lstm, 3, 4).proj_size(2);
    let w = RnnWeights::<f32>::init(proj, 0).unwrap();
    err_mentions(
        rnn_forward(&w, RnnInput::new(&x).h0(&z(&[1, 2, 4]))),
        &["`h0`", "[1, 2, 4]", "[1, 2, 2]"],
    );
    err_mentions(
        rnn_forward(&w, RnnInput::new(&x).c0(&z(&[1, 2, 2]))),
        &["`c0`", "[1, 2, 2]", "[1, 2, 4]"],
    );
}

/// The recurrent options PyTorch refuses, refused as it refuses them and named: a projection
/// outside LSTM or not below hidden_size, a dropout outside [0, 1) (NaN included), and the
/// GRU's reset form on another cell.
#[test]
fn rnn_variant_configs_out_of_domain() {
    let _watch = crate::validation::watch();
    let lstm = || RnnConfig::new(CellKind::Lstm, 3, 4);
    let gru = RnnConfig::new(CellKind::Gru, 3, 4);
    let relu = RnnConfig::new(CellKind::RnnRelu, 3, 4);
    let cases: [(RnnConfig, &[&str]); 8] = [
        (
            gru.proj_size(2),
            &["proj_size", "only supported for LSTM", "gru"],
        ),
        (relu.proj_size(2), &["proj_size", "rnn_relu"]),
        (
            lstm().proj_size(4),
            &["proj_size", "4", "smaller than hidden_size (4)"],
        ),
        (lstm().proj_size(9), &["proj_size", "9"]),
        (
            lstm().gru_reset(GruReset::Before),
            &["gru_reset", "before", "only for GRU", "lstm"],
        ),
        (lstm().dropout(1.0), &["dropout", "1", "[0, 1)"]),
        (lstm().dropout(-0.5), &["dropout", "-0.5"]),
        (lstm().dropout(f32::NAN), &["dropout", "NaN"]),
    ];
    for (cfg, words) in cases {
        let e = err_mentions(RnnWeights::<f32>::init(cfg.clone(), 0), words);
        assert!(
            matches!(
                e,
                Error::InvalidConfig {
                    config: "RnnConfig",
                    ..
                }
            ),
            "{e}"
        );
        err_mentions(gpu::GpuWeights::init(crate::gpu::ctx(), cfg, 0), words);
    }
}

/// A masked pooling call that must fail: x's shape, lengths, batch_first, dy's shape, and the
/// words its error must mention (both ops' errors; `dy` only backward's).
struct BadPool {
    x: Vec<usize>,
    lengths: Option<Vec<usize>>,
    batch_first: bool,
    dy: Vec<usize>,
    words: &'static [&'static str],
}

fn bad_pool_calls() -> Vec<BadPool> {
    let bad = |x: &[usize], lengths: Option<&[usize]>, batch_first, dy: &[usize], words| BadPool {
        x: x.to_vec(),
        lengths: lengths.map(<[usize]>::to_vec),
        batch_first,
        dy: dy.to_vec(),
        words,
    };
    vec![
        bad(
            &[5, 3],
            None,
            false,
            &[3, 1],
            &["`x`", "rank 3 [T, B, F]", "[5, 3]"],
        ),
        bad(
            &[2, 5],
            None,
            true,
            &[2, 1],
            &["`x`", "rank 3 [B, T, F]", "[2, 5]"],
        ),
        bad(
            &[0, 2, 3],
            None,
            false,
            &[2, 3],
            &["`x`", "T, B, F ≥ 1", "[0, 2, 3]"],
        ),
        bad(&[5, 2, 0], None, false, &[2, 0], &["`x`", "T, B, F ≥ 1"]),
        bad(
            &[5, 2, 3],
            Some(&[5]),
            false,
            &[2, 3],
            &["`lengths`", "[1]", "[2]"],
        ),
        bad(
            &[5, 2, 3],
            Some(&[0, 5]),
            false,
            &[2, 3],
            &["`lengths[0]`", "= 0", "1..=5"],
        ),
        bad(
            &[5, 2, 3],
            Some(&[5, 6]),
            false,
            &[2, 3],
            &["`lengths[1]`", "= 6", "1..=5"],
        ),
        bad(
            &[2, 5, 3],
            Some(&[6, 1]),
            true,
            &[2, 3],
            &["`lengths[0]`", "= 6", "1..=5"],
        ),
    ]
}

/// Every bad shape and length of masked pooling is an error naming the op and the argument;
/// a `dy` not `[B, F]` fails backward.
#[test]
fn masked_pool_shapes_and_lengths() {
    for c in bad_pool_calls() {
        let x = z(&c.x);
        let l = c.lengths.as_deref();
        let (fw, bw) = (
            masked_pool(&x, l, PoolMode::Max, c.batch_first),
            masked_pool_backward(&x, l, PoolMode::Mean, c.batch_first, &z(&c.dy)),
        );
        err_mentions(fw, &[&["masked_pool:"][..], c.words].concat());
        err_mentions(bw, &[&["masked_pool_backward:"][..], c.words].concat());
    }
    let e = err_mentions(
        masked_pool(&z(&[5, 2, 3]), Some(&[5, 6]), PoolMode::Mean, false),
        &["lengths"],
    );
    assert_eq!(
        e,
        Error::Length {
            op: "masked_pool",
            arg: "lengths",
            index: 1,
            value: 6,
            max: 5
        }
    );
    for batch_first in [false, true] {
        let e = masked_pool_backward(
            &z(&[4, 4, 3]),
            None,
            PoolMode::Max,
            batch_first,
            &z(&[3, 4]),
        );
        let e = err_mentions(e, &["masked_pool_backward", "`dy`", "[3, 4]", "[4, 3]"]);
        assert_eq!(
            e,
            Error::shape("masked_pool_backward", "dy", &[4, 3], &[3, 4])
        );
    }
}

/// The device refuses the same calls with the reference's errors, and an x that is not f32.
#[test]
fn device_masked_pool_errors_equal_the_reference() {
    let _watch = crate::validation::watch();
    let ctx = crate::gpu::ctx();
    for c in bad_pool_calls() {
        let x = z(&c.x);
        let (gx, gdy) = (ctx.upload(&x).unwrap(), ctx.upload(&z(&c.dy)).unwrap());
        let l = c.lengths.as_deref();
        for mode in [PoolMode::Mean, PoolMode::Max] {
            let want = masked_pool(&x, l, mode, c.batch_first).unwrap_err();
            let got = gpu::masked_pool(ctx, &gx, l, mode, c.batch_first).unwrap_err();
            assert_eq!(got, want, "{:?} {:?}", c.x, c.lengths);
            let want = masked_pool_backward(&x, l, mode, c.batch_first, &z(&c.dy)).unwrap_err();
            let got = gpu::masked_pool_backward(ctx, &gx, l, mode, c.batch_first, &gdy);
            assert_eq!(got.unwrap_err(), want, "{:?} {:?}", c.x, c.lengths);
        }
    }
    let gx = ctx.zeros(&[4, 2, 3]).unwrap();
    let want = masked_pool_backward(&z(&[4, 2, 3]), None, PoolMode::Max, false, &z(&[3, 2]));
    let got = gpu::masked_pool_backward(
        ctx,
        &gx,
        None,
        PoolMode::Max,
        false,
        &ctx.zeros(&[3, 2]).unwrap(),
    );
    assert_eq!(got.unwrap_err(), want.unwrap_err());
    let ids = ctx.upload_u32(&[4, 2, 3], &[0; 24]).unwrap();
    err_mentions(
        gpu::masked_pool(ctx, &ids, None, PoolMode::Mean, false),
        &["masked_pool", "`x`", "f32"],
    );
}

/// A concat, narrow or narrow_backward call that must fail.
enum BadCut {
    Concat(Vec<Vec<usize>>, isize),
    Narrow(Vec<usize>, isize, usize, usize),
    /// dy's shape, the input shape, dim, start.
    NarrowBackward(Vec<usize>, Vec<usize>, isize, usize),
}

impl BadCut {
    fn cpu(&self) -> Error {
        let r = match self {
            BadCut::Concat(shapes, dim) => {
                let parts: Vec<Tensor<f32>> = shapes.iter().map(|s| z(s)).collect();
                let refs: Vec<&Tensor<f32>> = parts.iter().collect();
                wgrnn::cpu::concat(&refs, *dim)
            }
            BadCut::Narrow(x, dim, start, len) => wgrnn::cpu::narrow(&z(x), *dim, *start, *len),
            BadCut::NarrowBackward(dy, input, dim, start) => {
                wgrnn::cpu::narrow_backward(&z(dy), input, *dim, *start)
            }
        };
        r.expect_err("expected an error")
    }

    fn gpu(&self, ctx: &gpu::Context) -> Error {
        let up = |s: &[usize]| ctx.upload(&z(s)).unwrap();
        let r = match self {
            BadCut::Concat(shapes, dim) => {
                let parts: Vec<_> = shapes.iter().map(|s| up(s)).collect();
                let refs: Vec<_> = parts.iter().collect();
                gpu::concat(ctx, &refs, *dim)
            }
            BadCut::Narrow(x, dim, start, len) => gpu::narrow(ctx, &up(x), *dim, *start, *len),
            BadCut::NarrowBackward(dy, input, dim, start) => {
                gpu::narrow_backward(ctx, &up(dy), input, *dim, *start)
            }
        };
        r.expect_err("expected an error")
    }
}

/// Each bad call and the words its error must mention.
fn bad_cuts() -> Vec<(BadCut, &'static [&'static str])> {
    use BadCut::*;
    let (s23, s33) = (vec![2, 3], vec![3, 3]);
    vec![
        (Concat(vec![], 0), &["concat", "`parts`", "is empty"]),
        (
            Concat(vec![s23.clone(), s23.clone()], 2),
            &["concat", "`dim`", "is 2", "-2..2", "[2, 3]"],
        ),
        (Concat(vec![s23.clone()], -3), &["`dim`", "is -3", "-2..2"]),
        (Concat(vec![vec![]], 0), &["`dim`", "is 0", "0..0", "[]"]),
        (
            Concat(vec![s23.clone(), s33.clone()], 1),
            &["`parts[1]`", "[3, 3]", "[2, 3]"],
        ),
        (
            Concat(vec![s23.clone(), vec![2, 3, 1]], 0),
            &["`parts[1]`", "[2, 3, 1]"],
        ),
        (
            Narrow(s23.clone(), 2, 0, 1),
            &["narrow", "`dim`", "is 2", "[2, 3]"],
        ),
        (
            Narrow(s23.clone(), -1, 2, 2),
            &["narrow", "`start, len`", "2..4", "dim 1", "[2, 3]"],
        ),
        (
            Narrow(s23.clone(), 0, 0, 0),
            &["`start, len`", "0..0", "dim 0"],
        ),
        (
            Narrow(s23.clone(), 0, usize::MAX, 2),
            &["`start, len`", "dim 0"],
        ),
        (
            NarrowBackward(vec![2, 2], s23.clone(), -3, 0),
            &["narrow_backward", "`dim`", "is -3"],
        ),
        (
            NarrowBackward(vec![2, 2], s33.clone(), -1, 0),
            &["narrow_backward", "`dy`", "[2, 2]", "[3, 2]"],
        ),
        (
            NarrowBackward(vec![2, 2], s23.clone(), 1, 2),
            &["`start, len`", "2..4", "[2, 3]"],
        ),
        (
            NarrowBackward(vec![2, 2, 1], s23, 1, 0),
            &["`dy`", "[2, 2, 1]"],
        ),
    ]
}

/// Every bad axis, shape and range of concat and narrow is an error naming the argument and
/// the shapes.
#[test]
fn concat_and_narrow_axes_shapes_and_ranges() {
    for (call, words) in bad_cuts() {
        let e = call.cpu();
        let msg = e.to_string();
        for w in words {
            assert!(msg.contains(w), "error `{msg}` does not mention `{w}`");
        }
    }
}

/// The device refuses the same calls with the reference's errors, and parts of two dtypes.
#[test]
fn device_concat_and_narrow_errors_equal_the_reference() {
    let _watch = crate::validation::watch();
    let ctx = crate::gpu::ctx();
    for (call, words) in bad_cuts() {
        assert_eq!(call.gpu(ctx), call.cpu(), "{words:?}");
    }
    let f = ctx.zeros(&[2, 3]).unwrap();
    let u = ctx.upload_u32(&[2, 3], &[0; 6]).unwrap();
    err_mentions(
        gpu::concat(ctx, &[&f, &u], 0),
        &["concat", "parts[1] is U32", "F32"],
    );
}

#[test]
fn rnn_backward_upstream_shapes_and_tape() {
    let cfg = RnnConfig::new(CellKind::Gru, 3, 4).bidirectional(true);
    let w = RnnWeights::<f32>::init(cfg, 0).unwrap();
    let x = z(&[5, 2, 3]);
    let (_, tape) = rnn_forward_train(&w, RnnInput::new(&x)).unwrap();
    let bad_dy = z(&[5, 2, 4]);
    err_mentions(
        rnn_backward(
            &w,
            &tape,
            RnnOutputGrads {
                dy: Some(&bad_dy),
                ..Default::default()
            },
        ),
        &["rnn_backward", "`dy`", "[5, 2, 8]"],
    );
    let bad_h = z(&[1, 2, 4]);
    err_mentions(
        rnn_backward(
            &w,
            &tape,
            RnnOutputGrads {
                dh_n: Some(&bad_h),
                ..Default::default()
            },
        ),
        &["`dh_n`", "[2, 2, 4]"],
    );
    let dc = z(&[2, 2, 4]);
    err_mentions(
        rnn_backward(
            &w,
            &tape,
            RnnOutputGrads {
                dc_n: Some(&dc),
                ..Default::default()
            },
        ),
        &["`dc_n`", "only for LSTM"],
    );
    // A tape from other weights' config cannot be used.
    let other = RnnWeights::<f32>::init(RnnConfig::new(CellKind::Gru, 3, 4), 0).unwrap();
    err_mentions(
        rnn_backward(&other, &tape, RnnOutputGrads::default()),
        &["`weights`", "tape"],
    );
}

#[test]
fn embedding_ids_out_of_range() {
    let w = EmbeddingWeights::<f32>::init(EmbeddingConfig::new(5, 3), 0).unwrap();
    let high = Tensor::new([2, 2], vec![0, 4, 5, 1]).unwrap();
    let e = err_mentions(
        embedding_forward(&w, &high),
        &["embedding", "ids[2]", "5", "0..5"],
    );
    assert_eq!(
        e,
        Error::IdOutOfRange {
            op: "embedding_forward",
            arg: "ids",
            index: 2,
            id: 5,
            limit: 5
        }
    );
    let neg = Tensor::new([2], vec![-1, 0]).unwrap();
    err_mentions(embedding_forward(&w, &neg), &["ids[0]", "-1"]);
    err_mentions(
        embedding_backward(&w, &high, &z(&[2, 2, 3])),
        &["embedding_backward", "ids[2]"],
    );
    let ok = Tensor::new([2, 2], vec![0, 4, 3, 1]).unwrap();
    err_mentions(
        embedding_backward(&w, &ok, &z(&[2, 2, 4])),
        &["`dy`", "[2, 2, 3]"],
    );
}

#[test]
fn attention_shapes_and_key_lengths() {
    let cfg = AttentionConfig {
        value_size: 2,
        ..AttentionConfig::new(Score::Additive, 4)
    };
    let w = AttentionWeights::<f32>::init(cfg, 0).unwrap();
    let (q, k, v) = (z(&[2, 3, 4]), z(&[2, 5, 4]), z(&[2, 5, 2]));
    let fwd = |q: &Tensor<f32>, k: &Tensor<f32>, v: &Tensor<f32>, l: Option<&[usize]>| {
        let mut i = AttentionInput::new(q, k, v);
        i.key_lengths = l;
        attention_forward(&w, i)
    };
    err_mentions(
        fwd(&z(&[2, 3, 5]), &k, &v, None),
        &["attention", "`query`", "[2, 3, 4]"],
    );
    err_mentions(fwd(&q, &z(&[3, 5, 4]), &v, None), &["`key`", "[2, 5, 4]"]);
    err_mentions(fwd(&q, &k, &z(&[2, 4, 2]), None), &["`value`", "[2, 5, 2]"]);
    err_mentions(fwd(&z(&[2, 3]), &k, &v, None), &["`query`", "rank 3"]);
    err_mentions(fwd(&q, &k, &v, Some(&[5])), &["`key_lengths`", "[2]"]);
    err_mentions(fwd(&q, &k, &v, Some(&[5, 6])), &["key_lengths[1]", "1..=5"]);
    err_mentions(fwd(&q, &k, &v, Some(&[0, 5])), &["key_lengths[0]"]);
    let out = fwd(&q, &k, &v, None).unwrap();
    let input = AttentionInput::new(&q, &k, &v);
    err_mentions(
        attention_backward(&w, input, &out, &z(&[2, 3, 4]), None),
        &["attention_backward", "`d_context`", "[2, 3, 2]"],
    );
    err_mentions(
        attention_backward(&w, input, &out, &z(&[2, 3, 2]), Some(&z(&[2, 3, 4]))),
        &["`d_weights`", "[2, 3, 5]"],
    );
}

#[test]
fn linear_and_loss_shapes_and_targets() {
    let w = LinearWeights::<f32>::init(LinearConfig::new(3, 2), 0).unwrap();
    err_mentions(
        linear_forward(&w, &z(&[4, 5])),
        &["linear", "`x`", "[..., 3]", "[4, 5]"],
    );
    err_mentions(linear_forward(&w, &z(&[3])), &["`x`", "leading axis"]);
    err_mentions(
        linear_backward(&w, &z(&[4, 3]), &z(&[4, 3])),
        &["linear_backward", "`dy`", "[4, 2]"],
    );

    let logits = z(&[2, 3, 5]);
    let t = |v: Vec<i64>, s: &[usize]| Tensor::new(s.to_vec(), v).unwrap();
    err_mentions(
        cross_entropy(&logits, &t(vec![0; 3], &[3]), None),
        &["cross_entropy", "`targets`", "[2, 3]", "[3]"],
    );
    let e = err_mentions(
        cross_entropy(&logits, &t(vec![0, 1, 5, 0, 0, 0], &[2, 3]), None),
        &["targets[2]", "0..5"],
    );
    assert!(matches!(
        e,
        Error::IdOutOfRange {
            index: 2,
            id: 5,
            limit: 5,
            ..
        }
    ));
    // ignore_index is exempt from the range check; other negatives are not.
    assert!(cross_entropy(&logits, &t(vec![0, -100, 1, 0, 0, 0], &[2, 3]), Some(-100)).is_ok());
    err_mentions(
        cross_entropy(&logits, &t(vec![0, -1, 1, 0, 0, 0], &[2, 3]), Some(-100)),
        &["targets[1]", "-1"],
    );
    err_mentions(
        cross_entropy_backward(&logits, &t(vec![9; 6], &[2, 3]), None, 1.0),
        &["cross_entropy_backward", "targets[0]"],
    );
    err_mentions(log_softmax(&z(&[2, 0])), &["log_softmax", "class"]);
}

/// Options under which a finite difference cannot be judged are refused: a step of 0, inf or
/// NaN, a floor of 0 (two exact zeros would compare as 0/0), a sample of 0 entries.
#[test]
fn gradcheck_options_out_of_domain() {
    let mut inputs = TensorMap::new();
    inputs.insert("a".to_string(), Tensor::<f64>::zeros([2]).unwrap());
    let grads = inputs.clone();
    let run = |opts| gradcheck(&inputs, &grads, |_| Ok(0.0), opts);
    let base = GradcheckOptions::default();
    for (opts, field) in [
        (GradcheckOptions { eps: 0.0, ..base }, "eps"),
        (
            GradcheckOptions {
                eps: f64::NAN,
                ..base
            },
            "eps",
        ),
        (
            GradcheckOptions {
                eps: f64::INFINITY,
                ..base
            },
            "eps",
        ),
        (GradcheckOptions { floor: 0.0, ..base }, "floor"),
        (
            GradcheckOptions {
                max_per_tensor: Some(0),
                ..base
            },
            "max_per_tensor",
        ),
    ] {
        let e = err_mentions(run(opts), &[field]);
        assert!(matches!(e, Error::InvalidConfig { .. }), "{e}");
    }
    let report = run(base).unwrap();
    assert_eq!((report.worst_rel_error, report.checked), (0.0, 2));
}

#[test]
fn gradcheck_needs_every_analytic_gradient() {
    let mut inputs = TensorMap::new();
    inputs.insert("a".to_string(), Tensor::<f64>::zeros([2]).unwrap());
    let e = err_mentions(
        gradcheck(
            &inputs,
            &TensorMap::new(),
            |_| Ok(0.0),
            GradcheckOptions::default(),
        ),
        &["gradcheck", "`a`"],
    );
    assert!(matches!(e, Error::MissingTensor { .. }));
    let mut wrong = TensorMap::new();
    wrong.insert("a".to_string(), Tensor::<f64>::zeros([3]).unwrap());
    err_mentions(
        gradcheck(&inputs, &wrong, |_| Ok(0.0), GradcheckOptions::default()),
        &["`a`", "[3]", "[2]"],
    );
}

/// Shapes past the host's memory are errors naming what they were for, not an aborted process
/// (`vec!` aborts on a failed allocation). Each asks for more than the 128 TiB of a 48-bit
/// address space, so that no overcommit policy grants it and then runs out while filling it.
#[test]
fn host_allocations_past_memory_are_errors() {
    let e = err_mentions(
        Tensor::<f32>::zeros([1 << 47]),
        &["Tensor::full", "[140737488355328]"],
    );
    assert!(
        matches!(e, Error::OutOfMemory { bytes, .. } if bytes == 1 << 49),
        "{e}"
    );
    err_mentions(
        Tensor::from_fn([1 << 40, 1 << 30], |i| i as f64),
        &["Tensor::from_fn", "shape"],
    );
    let e = err_mentions(
        EmbeddingWeights::<f32>::init(EmbeddingConfig::new(1 << 46, 4), 0),
        &["weight"],
    );
    assert!(matches!(e, Error::OutOfMemory { .. }), "{e}");
    for r in [
        RnnWeights::<f32>::init(RnnConfig::new(CellKind::Lstm, 1 << 23, 1 << 23), 0),
        RnnWeights::<f32>::zeros(RnnConfig::new(CellKind::Lstm, 1 << 23, 1 << 23)),
    ] {
        let e = err_mentions(r, &["weight_ih_l0", "[33554432, 8388608]"]);
        assert!(matches!(e, Error::OutOfMemory { .. }), "{e}");
    }
}

/// An empty device tensor may carry any extent; stacking, slicing or multiplying such shapes
/// overflowed the row and element counts (a panic with overflow checks, a wrapped count
/// without).
#[test]
fn device_shape_arithmetic_past_usize_is_an_error() {
    let _watch = crate::validation::watch();
    use wgrnn::gpu::{concat, matmul};
    let ctx = crate::gpu::ctx();
    let empty = ctx.zeros(&[0]).unwrap();
    let tall = empty.reshaped([usize::MAX, 0]).unwrap();
    let e = err_mentions(
        concat(ctx, &[&tall, &tall], 0),
        &["concat", "extents along dim 0"],
    );
    assert!(matches!(e, Error::TooLarge { .. }), "{e}");
    let wide = empty.reshaped([0, usize::MAX, 2]).unwrap();
    assert_eq!(wide.numel(), 0);
    err_mentions(
        concat(ctx, &[&wide], 0),
        &["concat", "elements after dim 0"],
    );
    let a = empty.reshaped([usize::MAX, 0]).unwrap();
    let b = empty.reshaped([0, 3]).unwrap();
    let e = err_mentions(matmul(ctx, &a, &b), &["matmul", "a rows", "u32::MAX"]);
    assert!(matches!(e, Error::TooLarge { .. }), "{e}");
}

/// Outputs whose size is the product of two of the caller's extents are bounded by neither
/// input: 2²² ids of a 2²⁴-wide table, or 2²² rows through a 1 → 2²⁴ layer, ask for 256 TiB
/// (past a 48-bit address space) from inputs of tens of MiB. Errors, not an aborted process.
#[test]
fn reference_outputs_past_memory_are_errors() {
    let wide = 1 << 24;
    let table = EmbeddingWeights::<f32>::init(EmbeddingConfig::new(1, wide), 0).unwrap();
    let ids = Tensor::new([1 << 22], vec![0i64; 1 << 22]).unwrap();
    let e = err_mentions(embedding_forward(&table, &ids), &["embedding", "output"]);
    assert!(
        matches!(e, Error::OutOfMemory { bytes, .. } if bytes == 1 << 48),
        "{e}"
    );
    let layer = LinearWeights::<f32>::init(LinearConfig::new(1, wide), 0).unwrap();
    let x = z(&[1 << 22, 1]);
    let e = err_mentions(linear_forward(&layer, &x), &["gemm", "[4194304, 16777216]"]);
    assert!(matches!(e, Error::OutOfMemory { .. }), "{e}");
}

/// Every error of weight loading by PyTorch's `load_state_dict` rules: names that do not fit
/// (missing first, then unexpected, with the op), a size mismatch even when not strict, one
/// parameter under two names, and a cell file asked of a config that is no cell.
#[test]
fn weight_loading_errors_name_the_keys() {
    use wgrnn::LoadOptions;
    let cfg = RnnConfig::new(CellKind::Gru, 2, 3);
    let w = RnnWeights::<f32>::init(cfg.clone(), 0).unwrap();
    let mut m = w.tensors().clone();
    m.remove("weight_hh_l0");
    m.insert("weight_ih_l1".into(), z(&[9, 3]));
    let e = err_mentions(
        RnnWeights::from_tensors(cfg.clone(), m.clone(), &LoadOptions::default()),
        &["rnn: missing tensor `weight_hh_l0`; unexpected tensor `weight_ih_l1`"],
    );
    assert_eq!(e.op(), Some("rnn"));
    // Not strict, a constructor still needs every tensor; loading into weights does not.
    err_mentions(
        RnnWeights::from_tensors(cfg.clone(), m.clone(), &LoadOptions::non_strict()),
        &["missing tensor `weight_hh_l0`"],
    );
    let mut into = w.clone();
    err_mentions(
        into.load_state_dict(m.clone(), &LoadOptions::with_prefix("")),
        &[
            "missing tensor `weight_hh_l0`",
            "unexpected tensor `weight_ih_l1`",
        ],
    );
    assert!(
        into.load_state_dict(m.clone(), &LoadOptions::non_strict())
            .is_ok()
    );

    m.insert("bias_hh_l0".into(), z(&[3]));
    err_mentions(
        into.load_state_dict(m.clone(), &LoadOptions::non_strict()),
        &["rnn", "`bias_hh_l0`", "[3]", "[9]"],
    );

    let mut both = w.tensors().clone();
    both.insert("weight_ih".into(), z(&[9, 2]));
    err_mentions(
        RnnWeights::from_tensors(cfg.clone(), both, &LoadOptions::non_strict()),
        &["rnn", "`state_dict`", "`weight_ih_l0`", "`weight_ih`"],
    );

    let two = RnnWeights::<f32>::init(cfg.clone().layers(2), 0).unwrap();
    err_mentions(two.to_cell_file(), &["num_layers", "is 2", "one layer"]);
    let bi = RnnWeights::<f32>::init(cfg.bidirectional(true), 0).unwrap();
    err_mentions(bi.to_cell_file(), &["bidirectional", "one direction"]);
    let lstm = RnnConfig::new(CellKind::Lstm, 2, 3);
    let proj = RnnWeights::<f32>::init(lstm.proj_size(2), 0).unwrap();
    err_mentions(proj.to_cell_file(), &["proj_size", "is 2", "nn.LSTMCell"]);
    let before = RnnConfig::new(CellKind::Gru, 2, 3).gru_reset(wgrnn::GruReset::Before);
    let before = RnnWeights::<f32>::init(before, 0).unwrap();
    err_mentions(before.to_cell_file(), &["gru_reset", "nn.GRUCell"]);

    // Other modules' weights follow the same rules.
    let lin = LinearWeights::<f32>::init(LinearConfig::new(2, 3), 0).unwrap();
    let mut lm = lin.tensors().clone();
    lm.remove("bias");
    err_mentions(
        LinearWeights::from_tensors(LinearConfig::new(2, 3), lm, &LoadOptions::default()),
        &["linear: missing tensor `bias`"],
    );
}
