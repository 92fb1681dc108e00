//! GPU backward (BPTT) against the CPU reference: every cell and configuration, accumulation,
//! bitwise determinism, pool reuse and errors.

use wgrnn::core::{RnnWeights, SplitMix64, Tensor};
use wgrnn::cpu::{RnnInput, RnnOutputGrads, rnn_backward, rnn_forward_train};
use wgrnn::gpu::{Context, GpuRnnInput, GpuRnnOutputGrads, GpuWeights};
use wgrnn::{CellKind, RnnConfig};

use crate::cases::{CELLS, Case, Cell, dropout_cases, projection_cases};
use crate::common::{Tolerance, assert_tensor_close, random};
use crate::gpu::ctx;
use crate::gpu_rnn::GPU_F32;
use crate::paths::per_path;

/// f32 gradients on the device against the f64 reference: BPTT sums over every step (and the
/// weight gradients over all T·B rows), so allow more than the forward's error.
pub const GPU_GRAD: Tolerance = Tolerance {
    abs: 1e-4,
    rel: 1e-4,
};

/// `case` on `ctx`, forward (training) and backward, against the f64 reference: outputs, final
/// states, input and state gradients and every weight gradient. A context that stores `W_hh` as
/// f16 gets weights that f16 holds exactly.
fn check_on(ctx: &Context, case: &Case, seed: u64) {
    let cfg = &case.cfg;
    let mut rng = SplitMix64::new(seed);
    let mut w = RnnWeights::<f64>::init(cfg.clone(), seed).unwrap();
    if ctx.f16_weights() {
        round_w_hh_to_f16(&mut w, &mut rng);
    }
    let x: Tensor<f64> = random(&mut rng, &case.x_shape(), 1.0);
    let (state, cell_state) = (cfg.state_shape(case.b), cfg.cell_state_shape(case.b));
    let (h0, c0): (Tensor<f64>, Tensor<f64>) = (
        random(&mut rng, &state, 0.5),
        random(&mut rng, &cell_state, 0.5),
    );
    let y_shape = cfg.output_shape(wgrnn::core::RnnDims {
        seq_len: case.t,
        batch: case.b,
    });
    let dy: Tensor<f64> = random(&mut rng, &y_shape, 1.0);
    let (dh_n, dc_n): (Tensor<f64>, Tensor<f64>) = (
        random(&mut rng, &state, 1.0),
        random(&mut rng, &cell_state, 1.0),
    );
    let lstm = cfg.cell == CellKind::Lstm;

    let mut input = RnnInput::new(&x);
    if case.with_state {
        input = input.h0(&h0);
        if lstm {
            input = input.c0(&c0);
        }
    }
    input.lengths = case.lengths.as_deref();
    // The inter-layer dropout masks' seed, the same on both sides.
    input.seed = seed ^ 0x5eed;
    let (want_out, tape) = rnn_forward_train(&w, input).unwrap();
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
    let mut gin = GpuRnnInput::new(&gx);
    if case.with_state {
        gin = gin.h0(&gh0);
        if lstm {
            gin = gin.c0(&gc0);
        }
    }
    gin.lengths = case.lengths.as_deref();
    gin.seed = seed ^ 0x5eed;
    let (out, out_tape) = wgrnn::gpu::rnn_forward_train(ctx, &gw, gin).unwrap();
    let upstream = GpuRnnOutputGrads {
        dy: Some(&gdy),
        dh_n: Some(&gdh),
        dc_n: lstm.then_some(&gdc),
    };
    let got = wgrnn::gpu::rnn_backward(ctx, &gw, &out_tape, upstream, None).unwrap();
    let what = format!(
        "{cfg:?} T={} B={} lengths={:?} {:?} small-batch limit {} f16 W_hh {}",
        case.t,
        case.b,
        case.lengths,
        ctx.gemm_block(),
        ctx.small_batch_limit(),
        ctx.f16_weights()
    );
    assert_tensor_close(
        &format!("{what}: y"),
        &ctx.read(&out.y).unwrap(),
        &want_out.y,
        GPU_F32,
    );
    assert_tensor_close(
        &format!("{what}: h_n"),
        &ctx.read(&out.h_n).unwrap(),
        &want_out.h_n,
        GPU_F32,
    );
    if let (Some(g), Some(c)) = (&out.c_n, &want_out.c_n) {
        assert_tensor_close(&format!("{what}: c_n"), &ctx.read(g).unwrap(), c, GPU_F32);
    }
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

/// Rounds every `weight_hh_*` to a value f16 holds exactly (through f32, as the device gets
/// it), so that a context storing W_hh as f16 computes exactly the reference's function and is
/// held to the f32 tolerances: WGSL lets the f32 → f16 conversion pick either neighbour, so
/// only exactly representable weights make the check independent of the adapter's rounding.
/// With a projection the device stores W_hh·W_hr, so each `weight_hr_*` becomes a signed
/// selection (one ±1 per column), which keeps that product f16-exact too.
fn round_w_hh_to_f16(w: &mut RnnWeights<f64>, rng: &mut SplitMix64) {
    for name in w.names().into_iter().filter(|n| n.starts_with("weight_hh")) {
        for v in w.get_mut(&name).unwrap() {
            *v = half::f16::from_f32(*v as f32).to_f64();
        }
    }
    let (p, h) = (w.config().proj_size, w.config().hidden_size);
    for name in w.names().into_iter().filter(|n| n.starts_with("weight_hr")) {
        let hr = w.get_mut(&name).unwrap();
        hr.fill(0.0);
        for j in 0..h {
            let sign = if rng.below(2) == 0 { 1.0 } else { -1.0 };
            hr[rng.below(p) * h + j] = sign;
        }
    }
}

fn backward_matches_cpu_on_odd_sizes(ctx: &Context) {
    for (i, cell) in CELLS.into_iter().enumerate() {
        for (j, (inp, hid, t, b)) in [(1, 1, 1, 1), (3, 17, 4, 3), (17, 65, 3, 5), (5, 129, 2, 2)]
            .into_iter()
            .enumerate()
        {
            check_on(
                ctx,
                &Case {
                    cfg: cell.config(inp, hid),
                    t,
                    b,
                    lengths: None,
                    with_state: true,
                },
                400 + 10 * i as u64 + j as u64,
            );
        }
    }
}
per_path!(rnn: backward_matches_cpu_on_odd_sizes);

fn backward_matches_cpu_with_a_projection(ctx: &Context) {
    for (i, case) in projection_cases().iter().enumerate() {
        check_on(ctx, case, 950 + i as u64);
    }
}
per_path!(rnn: backward_matches_cpu_with_a_projection);

/// Inter-layer dropout: the device draws the reference's masks (the same seed), so training
/// outputs and gradients match it on every path.
fn backward_matches_cpu_with_dropout(ctx: &Context) {
    for (i, case) in dropout_cases().iter().enumerate() {
        check_on(ctx, case, 960 + i as u64);
    }
}
per_path!(rnn: backward_matches_cpu_with_dropout);

fn backward_matches_cpu_three_layers_bidirectional_uneven_lengths(ctx: &Context) {
    for (i, cell) in CELLS.into_iter().enumerate() {
        let cfg = cell.config(5, 17).layers(3).bidirectional(true);
        check_on(
            ctx,
            &Case {
                cfg: cfg.clone(),
                t: 6,
                b: 5,
                lengths: Some(vec![6, 1, 4, 6, 2]),
                with_state: true,
            },
            500 + i as u64,
        );
        check_on(
            ctx,
            &Case {
                cfg: cfg.batch_first(true),
                t: 5,
                b: 3,
                lengths: Some(vec![2, 5, 3]),
                with_state: true,
            },
            510 + i as u64,
        );
    }
}
per_path!(rnn: backward_matches_cpu_three_layers_bidirectional_uneven_lengths);

/// Unidirectional stacks run backward as a wavefront too: from the top layer down and from the
/// last chunk of steps back, each layer's dX over a chunk's rows before the layer below runs
/// that chunk. Chunks as in the forward's test; the lengths [9, 3, 7, 1] with T = 11 leave two
/// steps no sequence reaches, which no chunk covers.
fn backward_matches_cpu_on_stacked_layers_as_a_wavefront(ctx: &Context) {
    for (i, cell) in CELLS.into_iter().enumerate() {
        let seed = 900 + 10 * i as u64;
        let cases = [
            (cell.config(5, 17).layers(3), 11, 4, None),
            (cell.config(5, 17).layers(3), 11, 4, Some(vec![9, 3, 7, 1])),
            (cell.config(4, 9).layers(2).batch_first(true), 20, 3, None),
            (cell.config(3, 6).layers(2), 2, 5, Some(vec![2, 1, 2, 2, 1])),
        ];
        for (j, (cfg, t, b, lengths)) in cases.into_iter().enumerate() {
            let case = Case {
                cfg,
                t,
                b,
                lengths,
                with_state: true,
            };
            check_on(ctx, &case, seed + j as u64);
        }
    }
}
per_path!(rnn: backward_matches_cpu_on_stacked_layers_as_a_wavefront);

/// A long sequence, past what CPU adapters let one invocation loop (see the forward's test).
fn backward_matches_cpu_on_a_long_sequence(ctx: &Context) {
    let cells = [
        Cell::plain(CellKind::Lstm),
        Cell::plain(CellKind::Gru),
        Cell::GRU_BEFORE,
    ];
    for (i, cell) in cells.into_iter().enumerate() {
        check_on(
            ctx,
            &Case {
                cfg: cell.config(3, 32),
                t: 2100,
                b: 1,
                lengths: None,
                with_state: true,
            },
            630 + i as u64,
        );
    }
}
per_path!(rnn: backward_matches_cpu_on_a_long_sequence);

fn backward_matches_cpu_batch_one_single_step_no_bias(ctx: &Context) {
    for (i, cell) in CELLS.into_iter().enumerate() {
        check_on(
            ctx,
            &Case {
                cfg: cell.config(3, 9).bidirectional(true),
                t: 7,
                b: 1,
                lengths: None,
                with_state: true,
            },
            600 + i as u64,
        );
        check_on(
            ctx,
            &Case {
                cfg: cell.config(3, 9).layers(2),
                t: 1,
                b: 4,
                lengths: None,
                with_state: true,
            },
            610 + i as u64,
        );
        check_on(
            ctx,
            &Case {
                cfg: cell.config(4, 6).bias(false),
                t: 3,
                b: 2,
                lengths: Some(vec![3, 1]),
                with_state: true,
            },
            620 + i as u64,
        );
    }
}
per_path!(rnn: backward_matches_cpu_batch_one_single_step_no_bias);

/// The CPU adapters' reverse product works on blocks of 32 rows (or of the fewest of 16, 8 and
/// 4 that hold a smaller batch) and on chunks of dG's G·H columns that fit a window: 512 for
/// 32 rows, 1,024 for 16, 2,048 for 8, 4,096 for 4. Batches past one block (the second
/// partial, uneven lengths in both directions), and G·H past one chunk for every block height
/// (LSTM: H = 131 with 35 rows, H = 260 with 12, H = 520 with 6, H = 1,030 with 3: two chunks
/// each) must give the reference.
fn backward_matches_cpu_across_row_blocks_and_k_chunks(ctx: &Context) {
    let lengths: Vec<usize> = (0..37).map(|b| 1 + (b * 7) % 4).collect();
    for (i, cell) in CELLS.into_iter().enumerate() {
        check_on(
            ctx,
            &Case {
                cfg: cell.config(3, 7).bidirectional(true),
                t: 4,
                b: 37,
                lengths: Some(lengths.clone()),
                with_state: true,
            },
            800 + i as u64,
        );
    }
    for (j, (h, b)) in [(131, 35), (260, 12), (520, 6), (1030, 3)]
        .into_iter()
        .enumerate()
    {
        check_on(
            ctx,
            &Case {
                cfg: RnnConfig::new(CellKind::Lstm, 3, h),
                t: 2,
                b,
                lengths: Some((0..b).map(|r| 2 - r % 2).collect()),
                with_state: true,
            },
            810 + j as u64,
        );
    }
}
per_path!(rnn: backward_matches_cpu_across_row_blocks_and_k_chunks);

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
    let (_, out_tape) =
        wgrnn::gpu::rnn_forward_train(ctx, &s.w, GpuRnnInput::new(&s.x).lengths(&LENS)).unwrap();
    let up = GpuRnnOutputGrads {
        dy: Some(&s.dy),
        ..Default::default()
    };
    wgrnn::gpu::rnn_backward(ctx, &s.w, &out_tape, up, acc).unwrap()
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
    let _watch = crate::validation::watch();
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
    let _watch = crate::validation::watch();
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
        })
        .unwrap();
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
    let _watch = crate::validation::watch();
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
    let _watch = crate::validation::watch();
    let ctx = ctx();
    let s = small(ctx);
    let (_, out_tape) = wgrnn::gpu::rnn_forward_train(ctx, &s.w, GpuRnnInput::new(&s.x)).unwrap();
    let tape = &out_tape;
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
        wgrnn::Error::shape("rnn_backward", "dy", &[6, 3, 18], &[6, 3, 9])
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

/// f16 storage of W_hh, forward and backward, on every f16 path (the fused step kernels, the
/// split steps of CPU adapters, the persistent kernels; a unidirectional stack also as a
/// wavefront),
/// against the f64 reference with the same (f16-exact) weights.
fn f16_weight_storage_matches_cpu(ctx: &Context) {
    for (i, cell) in CELLS.into_iter().enumerate() {
        check_on(
            ctx,
            &Case {
                cfg: cell.config(5, 17).layers(2).bidirectional(true),
                t: 6,
                b: 5,
                lengths: Some(vec![6, 1, 4, 6, 2]),
                with_state: true,
            },
            700 + i as u64,
        );
        check_on(
            ctx,
            &Case {
                cfg: cell.config(17, 65),
                t: 3,
                b: 5,
                lengths: None,
                with_state: true,
            },
            710 + i as u64,
        );
        check_on(
            ctx,
            &Case {
                cfg: cell.config(4, 9).layers(2),
                t: 9,
                b: 3,
                lengths: Some(vec![9, 4, 7]),
                with_state: true,
            },
            720 + i as u64,
        );
    }
}
per_path!(f16: f16_weight_storage_matches_cpu);

/// The projection on the f16 paths, whose W_hh·W_hr is stored as f16 (see
/// [`round_w_hh_to_f16`]).
fn f16_weight_storage_matches_cpu_with_a_projection(ctx: &Context) {
    for (i, case) in projection_cases().iter().enumerate() {
        check_on(ctx, case, 980 + i as u64);
    }
}
per_path!(f16: f16_weight_storage_matches_cpu_with_a_projection);

fn f16_weight_storage_matches_cpu_with_dropout(ctx: &Context) {
    for (i, case) in dropout_cases().iter().enumerate() {
        check_on(ctx, case, 990 + i as u64);
    }
}
per_path!(f16: f16_weight_storage_matches_cpu_with_dropout);

/// With weights f16 cannot hold, the f16 context really computes with rounded weights: its
/// output differs from the f32 one, by no more than the rounding can explain.
fn f16_weight_storage_rounds_the_recurrent_weights(f16: &Context) {
    let f32_ctx = ctx();
    let cfg = RnnConfig::new(CellKind::Lstm, 8, 32);
    let w = RnnWeights::<f32>::init(cfg.clone(), 3).unwrap();
    let mut rng = SplitMix64::new(4);
    let x: Tensor<f32> = random(&mut rng, &[10, 4, 8], 1.0);
    let y = |ctx: &Context| {
        let gw = GpuWeights::upload(ctx, &w).unwrap();
        let gx = ctx.upload(&x).unwrap();
        let out = wgrnn::gpu::rnn_forward(ctx, &gw, GpuRnnInput::new(&gx));
        ctx.read(&out.unwrap().y).unwrap().into_data()
    };
    let (a, b) = (y(f32_ctx), y(f16));
    let worst = a
        .iter()
        .zip(&b)
        .map(|(p, q)| (p - q).abs())
        .fold(0f32, f32::max);
    // Each weight moves by at most 2^-10 of itself; through 10 steps of a 32-unit LSTM with
    // O(1) inputs that moves outputs by about 1e-4, far below 1e-2 and far above 0.
    assert!(
        worst > 0.0 && worst < 1e-2,
        "largest |y_f32 - y_f16| = {worst}: want > 0 (rounded) and < 1e-2"
    );
}
per_path!([f16_panel]: f16_weight_storage_rounds_the_recurrent_weights);

/// An unbatched call on the device (`x` `[T, I]`, states `[L·D, H]`) gives the batch-of-one
/// call's results and gradients bit for bit, with the batch axis dropped.
#[test]
fn unbatched_input_is_a_batch_of_one() {
    let _watch = crate::validation::watch();
    let ctx = ctx();
    let lstm = RnnConfig::new(CellKind::Lstm, 3, 5).proj_size(2);
    let gru = RnnConfig::new(CellKind::Gru, 3, 5);
    for cfg in [lstm, gru] {
        let cfg = cfg.layers(2).bidirectional(true).batch_first(true);
        let w = RnnWeights::<f32>::init(cfg.clone(), 5).unwrap();
        let gw = GpuWeights::upload(ctx, &w).unwrap();
        let mut rng = SplitMix64::new(6);
        let (t, ld, ps) = (4, 4, cfg.state_size());
        let up = |t: &Tensor<f32>| ctx.upload(t).unwrap();
        let x = up(&random(&mut rng, &[t, 3], 1.0));
        let h0 = up(&random(&mut rng, &[ld, ps], 0.5));
        let dy = up(&random(&mut rng, &[t, cfg.output_size()], 1.0));
        let view = |g: &wgrnn::gpu::GpuTensor, s: &[usize]| g.reshaped(s.to_vec()).unwrap();
        let (xb, h0b) = (view(&x, &[1, t, 3]), view(&h0, &[ld, 1, ps]));
        let dyb = view(&dy, &[1, t, cfg.output_size()]);
        let run = |x, h0, dy| {
            let (out, tape) =
                wgrnn::gpu::rnn_forward_train(ctx, &gw, GpuRnnInput::new(x).h0(h0)).unwrap();
            let up = GpuRnnOutputGrads {
                dy: Some(dy),
                ..Default::default()
            };
            let g = wgrnn::gpu::rnn_backward(ctx, &gw, &tape, up, None).unwrap();
            let mut all = vec![out.y.shape().to_vec(), out.h_n.shape().to_vec()];
            all.extend([g.dx.shape().to_vec(), g.dh0.shape().to_vec()]);
            let mut vals = bits(ctx, &out.y);
            for t in [&out.h_n, &g.dx, &g.dh0] {
                vals.extend(bits(ctx, t));
            }
            (all, vals)
        };
        let (shapes, got) = run(&x, &h0, &dy);
        let (_, want) = run(&xb, &h0b, &dyb);
        let what = format!("{cfg:?}");
        assert_eq!(
            shapes,
            [
                vec![t, cfg.output_size()],
                vec![ld, ps],
                vec![t, 3],
                vec![ld, ps]
            ],
            "{what}: shapes"
        );
        assert_eq!(got, want, "{what}: unbatched differs from a batch of one");
        let bad = wgrnn::gpu::rnn_forward(ctx, &gw, GpuRnnInput::new(&x).h0(&h0b)).unwrap_err();
        assert!(bad.to_string().contains("h0"), "{what}: {bad}");
    }
}
