//! GPU backward (BPTT) against the CPU reference: every cell and configuration, accumulation,
//! bitwise determinism, pool reuse and errors.

use wgrnn::core::{RnnWeights, SplitMix64, Tensor};
use wgrnn::cpu::{RnnInput, RnnOutputGrads, rnn_backward, rnn_forward_train};
use wgrnn::gpu::{Context, GpuRnnInput, GpuRnnOutputGrads, GpuWeights, Mode};
use wgrnn::{CellKind, RnnConfig};

use crate::common::{Tolerance, assert_tensor_close, random};
use crate::gpu::{ctx, rnn_paths};

/// f32 gradients on the device against the f64 reference: BPTT sums over every step (and the
/// weight gradients over all T·B rows), so allow more than the forward's error.
pub const GPU_GRAD: Tolerance = Tolerance {
    abs: 1e-4,
    rel: 1e-4,
};

const CELLS: [CellKind; 4] = [
    CellKind::Lstm,
    CellKind::Gru,
    CellKind::RnnTanh,
    CellKind::RnnRelu,
];

struct Case {
    cfg: RnnConfig,
    t: usize,
    b: usize,
    lengths: Option<Vec<usize>>,
}

fn check_on(ctx: &Context, case: &Case, seed: u64) {
    let cfg = &case.cfg;
    let mut rng = SplitMix64::new(seed);
    let w = RnnWeights::<f64>::init(cfg.clone(), seed).unwrap();
    let x_shape = if cfg.batch_first {
        [case.b, case.t, cfg.input_size]
    } else {
        [case.t, case.b, cfg.input_size]
    };
    let x: Tensor<f64> = random(&mut rng, &x_shape, 1.0);
    let state = cfg.state_shape(case.b);
    let (h0, c0): (Tensor<f64>, Tensor<f64>) =
        (random(&mut rng, &state, 0.5), random(&mut rng, &state, 0.5));
    let y_shape = cfg.output_shape(wgrnn::core::RnnDims {
        seq_len: case.t,
        batch: case.b,
    });
    let dy: Tensor<f64> = random(&mut rng, &y_shape, 1.0);
    let (dh_n, dc_n): (Tensor<f64>, Tensor<f64>) =
        (random(&mut rng, &state, 1.0), random(&mut rng, &state, 1.0));
    let lstm = cfg.cell == CellKind::Lstm;

    let mut input = RnnInput::new(&x).h0(&h0);
    if lstm {
        input = input.c0(&c0);
    }
    input.lengths = case.lengths.as_deref();
    let (_, tape) = rnn_forward_train(&w, input).unwrap();
    let want = rnn_backward(
        &w,
        &tape,
        RnnOutputGrads {
            dy: Some(&dy),
            dh_n: Some(&dh_n),
            dc_n: lstm.then_some(&dc_n),
        },
    )
    .unwrap();

    let up = |t: &Tensor<f64>| ctx.upload(&t.cast()).unwrap();
    let gw = GpuWeights::upload(ctx, &w.cast::<f32>()).unwrap();
    let (gx, gh0, gc0, gdy, gdh, gdc) = (up(&x), up(&h0), up(&c0), up(&dy), up(&dh_n), up(&dc_n));
    let mut gin = GpuRnnInput::new(&gx).h0(&gh0);
    if lstm {
        gin = gin.c0(&gc0);
    }
    gin.lengths = case.lengths.as_deref();
    let out = wgrnn::gpu::rnn_forward(ctx, &gw, gin, Mode::Training).unwrap();
    let upstream = GpuRnnOutputGrads {
        dy: Some(&gdy),
        dh_n: Some(&gdh),
        dc_n: lstm.then_some(&gdc),
    };
    let got = wgrnn::gpu::rnn_backward(ctx, &gw, out.tape().unwrap(), upstream, None).unwrap();
    let what = format!(
        "{cfg:?} T={} B={} lengths={:?} {:?} small-batch limit {}",
        case.t,
        case.b,
        case.lengths,
        ctx.gemm_block(),
        ctx.small_batch_limit()
    );
    assert_tensor_close(
        &format!("{what}: dx"),
        &ctx.read(&got.dx).unwrap(),
        &want.dx,
        GPU_GRAD,
    );
    assert_tensor_close(
        &format!("{what}: dh0"),
        &ctx.read(&got.dh0).unwrap(),
        &want.dh0,
        GPU_GRAD,
    );
    if let (Some(g), Some(c)) = (&got.dc0, &want.dc0) {
        assert_tensor_close(&format!("{what}: dc0"), &ctx.read(g).unwrap(), c, GPU_GRAD);
    }
    let gw_host = got.weights.read(ctx).unwrap();
    for name in want.weights.names() {
        assert_tensor_close(
            &format!("{what}: grad {name}"),
            gw_host.get(&name).unwrap(),
            want.weights.get(&name).unwrap(),
            GPU_GRAD,
        );
    }
}

fn check(case: &Case, seed: u64) {
    for ctx in rnn_paths() {
        check_on(ctx, case, seed);
    }
}

#[test]
fn backward_matches_cpu_on_odd_sizes() {
    for (i, cell) in CELLS.into_iter().enumerate() {
        for (j, (inp, hid, t, b)) in [(1, 1, 1, 1), (3, 17, 4, 3), (17, 65, 3, 5), (5, 129, 2, 2)]
            .into_iter()
            .enumerate()
        {
            check(
                &Case {
                    cfg: RnnConfig::new(cell, inp, hid),
                    t,
                    b,
                    lengths: None,
                },
                400 + 10 * i as u64 + j as u64,
            );
        }
    }
}

#[test]
fn backward_matches_cpu_three_layers_bidirectional_uneven_lengths() {
    for (i, cell) in CELLS.into_iter().enumerate() {
        let cfg = RnnConfig::new(cell, 5, 17).layers(3).bidirectional(true);
        check(
            &Case {
                cfg: cfg.clone(),
                t: 6,
                b: 5,
                lengths: Some(vec![6, 1, 4, 6, 2]),
            },
            500 + i as u64,
        );
        check(
            &Case {
                cfg: cfg.batch_first(true),
                t: 5,
                b: 3,
                lengths: Some(vec![2, 5, 3]),
            },
            510 + i as u64,
        );
    }
}

#[test]
fn backward_matches_cpu_batch_one_single_step_no_bias() {
    for (i, cell) in CELLS.into_iter().enumerate() {
        check(
            &Case {
                cfg: RnnConfig::new(cell, 3, 9).bidirectional(true),
                t: 7,
                b: 1,
                lengths: None,
            },
            600 + i as u64,
        );
        check(
            &Case {
                cfg: RnnConfig::new(cell, 3, 9).layers(2),
                t: 1,
                b: 4,
                lengths: None,
            },
            610 + i as u64,
        );
        check(
            &Case {
                cfg: RnnConfig::new(cell, 4, 6).bias(false),
                t: 3,
                b: 2,
                lengths: Some(vec![3, 1]),
            },
            620 + i as u64,
        );
    }
}

/// A small LSTM call on the device: weights, input, lengths and upstream gradients.
struct Small {
    w: GpuWeights<RnnConfig>,
    x: wgrnn::gpu::GpuTensor,
    dy: wgrnn::gpu::GpuTensor,
}

fn small(ctx: &Context) -> Small {
    let cfg = RnnConfig::new(CellKind::Lstm, 5, 9)
        .layers(2)
        .bidirectional(true);
    let mut rng = SplitMix64::new(9);
    Small {
        w: GpuWeights::upload(ctx, &RnnWeights::<f32>::init(cfg, 3).unwrap()).unwrap(),
        x: ctx.upload(&random(&mut rng, &[6, 3, 5], 1.0)).unwrap(),
        dy: ctx.upload(&random(&mut rng, &[6, 3, 18], 1.0)).unwrap(),
    }
}

const LENS: [usize; 3] = [6, 2, 5];

fn grads(ctx: &Context, s: &Small, acc: Option<&GpuWeights<RnnConfig>>) -> wgrnn::gpu::GpuRnnGrads {
    let out = wgrnn::gpu::rnn_forward(
        ctx,
        &s.w,
        GpuRnnInput::new(&s.x).lengths(&LENS),
        Mode::Training,
    )
    .unwrap();
    let up = GpuRnnOutputGrads {
        dy: Some(&s.dy),
        ..Default::default()
    };
    wgrnn::gpu::rnn_backward(ctx, &s.w, out.tape().unwrap(), up, acc).unwrap()
}

fn bits(ctx: &Context, t: &wgrnn::gpu::GpuTensor) -> Vec<u32> {
    ctx.read(t)
        .unwrap()
        .data()
        .iter()
        .map(|v| v.to_bits())
        .collect()
}

#[test]
fn gradients_are_bit_identical_across_calls() {
    let ctx = ctx();
    let s = small(ctx);
    let (a, b) = (grads(ctx, &s, None), grads(ctx, &s, None));
    assert_eq!(bits(ctx, &a.dx), bits(ctx, &b.dx), "dx");
    assert_eq!(bits(ctx, &a.dh0), bits(ctx, &b.dh0), "dh0");
    for (name, t) in a.weights.tensors() {
        assert_eq!(
            bits(ctx, t),
            bits(ctx, b.weights.get(name).unwrap()),
            "{name}"
        );
    }
}

#[test]
fn gradients_accumulate_into_given_tensors() {
    let ctx = ctx();
    let s = small(ctx);
    let once = grads(ctx, &s, None).weights.read(ctx).unwrap();
    let acc = grads(ctx, &s, None).weights;
    let again = grads(ctx, &s, Some(&acc));
    // The accumulator itself was updated, and returned.
    for name in once.names() {
        assert!(
            again
                .weights
                .get(&name)
                .unwrap()
                .same_buffer(acc.get(&name).unwrap())
        );
        let got = ctx.read(acc.get(&name).unwrap()).unwrap();
        let twice = Tensor::from_fn(got.shape().to_vec(), |i| {
            2.0 * once.get(&name).unwrap().data()[i]
        });
        assert_tensor_close(
            &format!("accumulated {name}"),
            &got,
            &twice,
            Tolerance {
                abs: 1e-6,
                rel: 1e-6,
            },
        );
    }
}

/// 1,000 forward+backward calls of one shape leave the pool's allocation count unchanged.
#[test]
fn pool_does_not_grow_over_training_calls() {
    // A context of its own, so parallel tests do not disturb the count; small blocks, whose
    // kernels compile fast, since only allocations matter here.
    let ctx = Context::new()
        .unwrap()
        .with_gemm_block(wgrnn::gpu::GemmBlock::B8);
    let s = small(&ctx);
    drop(grads(&ctx, &s, None));
    ctx.sync().unwrap();
    let after_first = ctx.pool_stats().allocations;
    for i in 0..1000 {
        drop(grads(&ctx, &s, None));
        if i % 100 == 0 {
            ctx.sync().unwrap();
        }
    }
    ctx.sync().unwrap();
    assert_eq!(
        ctx.pool_stats().allocations,
        after_first,
        "{:?}",
        ctx.pool_stats()
    );
}

#[test]
fn backward_bad_inputs_are_errors() {
    let ctx = ctx();
    let s = small(ctx);
    let inference =
        wgrnn::gpu::rnn_forward(ctx, &s.w, GpuRnnInput::new(&s.x), Mode::Inference).unwrap();
    let e = inference.tape().unwrap_err();
    assert!(e.to_string().contains("Mode::Training"), "{e}");

    let out = wgrnn::gpu::rnn_forward(ctx, &s.w, GpuRnnInput::new(&s.x), Mode::Training).unwrap();
    let tape = out.tape().unwrap();
    let bad = ctx.zeros(&[6, 3, 9]).unwrap();
    let e = wgrnn::gpu::rnn_backward(
        ctx,
        &s.w,
        tape,
        GpuRnnOutputGrads {
            dy: Some(&bad),
            ..Default::default()
        },
        None,
    )
    .unwrap_err();
    assert_eq!(
        e,
        wgrnn::Error::shape("gpu rnn_backward", "dy", &[6, 3, 18], &[6, 3, 9])
    );
    let bad = ctx.zeros(&[4, 2, 9]).unwrap();
    let e = wgrnn::gpu::rnn_backward(
        ctx,
        &s.w,
        tape,
        GpuRnnOutputGrads {
            dh_n: Some(&bad),
            ..Default::default()
        },
        None,
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("`dh_n`") && e.to_string().contains("[4, 3, 9]"),
        "{e}"
    );
    // Weights or an accumulator of another shape do not fit the tape.
    let other = GpuWeights::upload(
        ctx,
        &RnnWeights::<f32>::init(RnnConfig::new(CellKind::Lstm, 5, 9), 1).unwrap(),
    )
    .unwrap();
    let e = wgrnn::gpu::rnn_backward(ctx, &other, tape, GpuRnnOutputGrads::default(), None)
        .unwrap_err();
    assert!(e.to_string().contains("`weights`"), "{e}");
    let e = wgrnn::gpu::rnn_backward(ctx, &s.w, tape, GpuRnnOutputGrads::default(), Some(&other))
        .unwrap_err();
    assert!(e.to_string().contains("`accumulate`"), "{e}");
}
