//! The GPU recurrent forward against the CPU reference on random shapes.

use wgrnn::core::{RnnWeights, SplitMix64, Tensor};
use wgrnn::cpu::{RnnInput, rnn_forward};
use wgrnn::gpu::{Context, GpuRnnInput, GpuWeights, matmul};
use wgrnn::{CellKind, RnnConfig};

use crate::cases::{CELLS, Case, Cell, projection_cases};
use crate::common::{Tolerance, assert_tensor_close, random};
use crate::gpu::{blockings, without_wavefront};
use crate::paths::per_path;

/// f32 on the device against the f64 reference: each output is a sum of up to a few hundred
/// f32 products per step, compounded over the steps of a sequence, so allow a few hundred ulps.
pub const GPU_F32: Tolerance = Tolerance {
    abs: 2e-5,
    rel: 1e-4,
};

fn matmul_matches_cpu_for_sizes_off_the_tiles(ctx: &Context) {
    let mut rng = SplitMix64::new(1);
    for (m, k, n) in [
        (1, 1, 1),
        (3, 17, 5),
        (17, 3, 65),
        (65, 129, 9),
        (129, 64, 130),
        // CPU adapters' `gemm_panel`: several windows of whole 64-row panels (k = 100), and
        // k split into chunks that fit a window, the last one partial (k = 600).
        (200, 100, 40),
        (70, 600, 33),
    ] {
        let a: Tensor<f64> = random(&mut rng, &[m, k], 1.0);
        let b: Tensor<f64> = random(&mut rng, &[k, n], 1.0);
        // The textbook triple loop in f64, independent of the reference crate's GEMM.
        let want: Vec<f64> = (0..m * n)
            .map(|o| {
                let (i, j) = (o / n, o % n);
                (0..k)
                    .map(|p| a.data()[i * k + p] * b.data()[p * n + j])
                    .sum()
            })
            .collect();
        let g = matmul(
            ctx,
            &ctx.upload(&a.cast()).unwrap(),
            &ctx.upload(&b.cast()).unwrap(),
        );
        let got = ctx.read(&g.unwrap()).unwrap();
        let what = format!(
            "matmul {m}x{k}x{n} {:?} subgroups {}",
            ctx.gemm_block(),
            ctx.subgroups()
        );
        let want = Tensor::new([m, n], want).unwrap();
        assert_tensor_close(&what, &got, &want, GPU_F32);
    }
}
per_path!(gemm: matmul_matches_cpu_for_sizes_off_the_tiles);

/// `case` on `ctx`, in inference and training mode, against the f64 reference: y, h_n, c_n.
fn check(ctx: &Context, case: &Case, seed: u64) {
    let cfg = &case.cfg;
    let mut rng = SplitMix64::new(seed);
    let w = RnnWeights::<f64>::init(cfg.clone(), seed).unwrap();
    let x: Tensor<f64> = random(&mut rng, &case.x_shape(), 1.0);
    let h0: Tensor<f64> = random(&mut rng, &cfg.state_shape(case.b), 0.5);
    let c0: Tensor<f64> = random(&mut rng, &cfg.cell_state_shape(case.b), 0.5);
    let mut input = RnnInput::new(&x);
    if case.with_state {
        input = input.h0(&h0);
        if cfg.cell == CellKind::Lstm {
            input = input.c0(&c0);
        }
    }
    if let Some(l) = &case.lengths {
        input = input.lengths(l);
    }
    let want = rnn_forward(&w, input).unwrap();

    let gw = GpuWeights::upload(ctx, &w.cast::<f32>()).unwrap();
    let (gx, gh0, gc0) = (
        ctx.upload(&x.cast()).unwrap(),
        ctx.upload(&h0.cast()).unwrap(),
        ctx.upload(&c0.cast()).unwrap(),
    );
    let mut gin = GpuRnnInput::new(&gx);
    if case.with_state {
        gin = gin.h0(&gh0);
        if cfg.cell == CellKind::Lstm {
            gin = gin.c0(&gc0);
        }
    }
    gin.lengths = case.lengths.as_deref();
    let what = format!(
        "{cfg:?} T={} B={} lengths={:?} {:?} small-batch limit {}",
        case.t,
        case.b,
        case.lengths,
        ctx.gemm_block(),
        ctx.small_batch_limit()
    );
    for training in [false, true] {
        let out = if training {
            wgrnn::gpu::rnn_forward_train(ctx, &gw, gin).unwrap().0
        } else {
            wgrnn::gpu::rnn_forward(ctx, &gw, gin).unwrap()
        };
        let mode = if training { "training" } else { "inference" };
        assert_tensor_close(
            &format!("{what} {mode:?}: y"),
            &ctx.read(&out.y).unwrap(),
            &want.y,
            GPU_F32,
        );
        assert_tensor_close(
            &format!("{what} {mode:?}: h_n"),
            &ctx.read(&out.h_n).unwrap(),
            &want.h_n,
            GPU_F32,
        );
        if let (Some(g), Some(c)) = (&out.c_n, &want.c_n) {
            assert_tensor_close(
                &format!("{what} {mode:?}: c_n"),
                &ctx.read(g).unwrap(),
                c,
                GPU_F32,
            );
        }
    }
}

fn forward_matches_cpu_on_odd_sizes(ctx: &Context) {
    for (i, cell) in CELLS.into_iter().enumerate() {
        for (j, (inp, hid, t, b)) in [(1, 1, 1, 1), (3, 17, 4, 3), (17, 65, 3, 5), (5, 129, 2, 2)]
            .into_iter()
            .enumerate()
        {
            let case = Case {
                cfg: cell.config(inp, hid),
                t,
                b,
                lengths: None,
                with_state: j % 2 == 1,
            };
            check(ctx, &case, 100 + 10 * i as u64 + j as u64);
        }
    }
}
per_path!(rnn: forward_matches_cpu_on_odd_sizes);

fn forward_matches_cpu_with_a_projection(ctx: &Context) {
    for (i, case) in projection_cases().iter().enumerate() {
        check(ctx, case, 900 + i as u64);
    }
}
per_path!(rnn: forward_matches_cpu_with_a_projection);

fn forward_matches_cpu_three_layers_bidirectional_uneven_lengths(ctx: &Context) {
    for (i, cell) in CELLS.into_iter().enumerate() {
        let cfg = cell.config(5, 17).layers(3).bidirectional(true);
        check(
            ctx,
            &Case {
                cfg: cfg.clone(),
                t: 6,
                b: 5,
                lengths: Some(vec![6, 1, 4, 6, 2]),
                with_state: true,
            },
            200 + i as u64,
        );
        check(
            ctx,
            &Case {
                cfg: cfg.batch_first(true),
                t: 5,
                b: 3,
                lengths: Some(vec![2, 5, 3]),
                with_state: false,
            },
            210 + i as u64,
        );
    }
}
per_path!(rnn: forward_matches_cpu_three_layers_bidirectional_uneven_lengths);

/// On CPU adapters the steps read h_prev through uniform windows, per block of 32 rows, from
/// two buffers in turn (the product per direction and block, then the cell kernel). B = 19 is
/// one partial block; B = 37 two blocks, the second partial.
fn forward_matches_cpu_when_h_prev_fits_a_window(ctx: &Context) {
    for (i, cell) in CELLS.into_iter().enumerate() {
        for b in [19, 37] {
            check(
                ctx,
                &Case {
                    cfg: cell.config(6, 7).layers(2).bidirectional(true),
                    t: 5,
                    b,
                    lengths: Some((0..b).map(|r| 1 + r % 5).collect()),
                    with_state: true,
                },
                400 + i as u64,
            );
        }
    }
}
per_path!(rnn: forward_matches_cpu_when_h_prev_fits_a_window);

/// The split steps of CPU adapters read h_prev in blocks of 32 rows, or of the fewest of 16, 8
/// and 4 that hold the batch (H = 300 with B = 12, 7 and 3), and k in chunks that fit a window:
/// 512 of 32 rows (H = 520, B = 20: two chunks), 1,024 of 16 (H = 1,030, B = 10: two chunks),
/// 2,048 of 8 (Elman, H = 2,050, B = 6: two chunks). Every cell; bidirectional, uneven lengths.
fn forward_matches_cpu_on_small_row_blocks_and_chunked_k(ctx: &Context) {
    for (i, cell) in CELLS.into_iter().enumerate() {
        let mut shapes = vec![(300, 12), (300, 7), (300, 3), (520, 20), (1030, 10)];
        if matches!(cell.kind, CellKind::RnnTanh) {
            shapes.push((2050, 6));
        }
        for (j, (h, b)) in shapes.into_iter().enumerate() {
            check(
                ctx,
                &Case {
                    cfg: cell.config(4, h).bidirectional(true),
                    t: 3,
                    b,
                    lengths: Some((0..b).map(|r| 3 - r % 3).collect()),
                    with_state: true,
                },
                420 + 10 * i as u64 + j as u64,
            );
        }
    }
}
per_path!(rnn: forward_matches_cpu_on_small_row_blocks_and_chunked_k);

/// A long sequence: CPU adapters end an invocation's loops after 65,535 iterations
/// (`CPU_LOOP_LIMIT`), which the persistent kernels (one invocation looping over every step)
/// would pass at T = 2,100 with H = 32, so there the per-step kernels must run instead. Every
/// path, the persistent context included. The reset-before GRU's two passes a step count twice.
fn forward_matches_cpu_on_a_long_sequence(ctx: &Context) {
    let cells = [
        Cell::plain(CellKind::Lstm),
        Cell::plain(CellKind::Gru),
        Cell::GRU_BEFORE,
    ];
    for (i, cell) in cells.into_iter().enumerate() {
        check(
            ctx,
            &Case {
                cfg: cell.config(3, 32),
                t: 2100,
                b: 1,
                lengths: None,
                with_state: true,
            },
            330 + i as u64,
        );
    }
}
per_path!(rnn: forward_matches_cpu_on_a_long_sequence);

fn forward_matches_cpu_batch_one_single_step_no_bias(ctx: &Context) {
    for (i, cell) in CELLS.into_iter().enumerate() {
        check(
            ctx,
            &Case {
                cfg: cell.config(3, 9).bidirectional(true),
                t: 7,
                b: 1,
                lengths: None,
                with_state: true,
            },
            300 + i as u64,
        );
        check(
            ctx,
            &Case {
                cfg: cell.config(3, 9).layers(2),
                t: 1,
                b: 4,
                lengths: None,
                with_state: true,
            },
            310 + i as u64,
        );
        check(
            ctx,
            &Case {
                cfg: cell.config(4, 6).bias(false),
                t: 3,
                b: 2,
                lengths: Some(vec![3, 1]),
                with_state: true,
            },
            320 + i as u64,
        );
    }
}
per_path!(rnn: forward_matches_cpu_batch_one_single_step_no_bias);

/// Unidirectional stacks run as a wavefront over layers × time: a layer's chunk of steps
/// (⌈T/8⌉) goes beside the next chunk of the layer below, after its own input projection over
/// the chunk's rows. T = 11 makes six chunks of two steps, the last of one; the longest of the
/// lengths [9, 3, 7, 1] nine steps in five chunks; T = 20 seven chunks of three; T = 2 two of
/// one. Every cell, 2 and 3 layers, batch-first output, with and without initial states.
fn forward_matches_cpu_on_stacked_layers_as_a_wavefront(ctx: &Context) {
    for (i, cell) in CELLS.into_iter().enumerate() {
        let seed = 700 + 10 * i as u64;
        let cases = [
            (cell.config(5, 17).layers(3), 11, 4, None, true),
            (
                cell.config(5, 17).layers(3),
                11,
                4,
                Some(vec![9, 3, 7, 1]),
                false,
            ),
            (
                cell.config(4, 9).layers(2).batch_first(true),
                20,
                3,
                None,
                true,
            ),
            (
                cell.config(3, 6).layers(2),
                2,
                5,
                Some(vec![2, 1, 2, 2, 1]),
                true,
            ),
        ];
        for (j, (cfg, t, b, lengths, with_state)) in cases.into_iter().enumerate() {
            let case = Case {
                cfg,
                t,
                b,
                lengths,
                with_state,
            };
            check(ctx, &case, seed + j as u64);
        }
    }
}
per_path!(rnn: forward_matches_cpu_on_stacked_layers_as_a_wavefront);

/// The wavefront only reorders independent work (each output is computed by the same kernels
/// over the same sums), so its forward and backward agree bit for bit with layer after layer,
/// on the GPUs' kernels and the split steps of CPU adapters.
fn wavefront_matches_layer_after_layer_bit_for_bit(wave: &Context) {
    let (_, plain) = without_wavefront()
        .into_iter()
        .find(|(w, _)| std::ptr::eq(*w, wave))
        .expect("a context without the wavefront beside this one");
    assert!(wave.layer_wavefront() && !plain.layer_wavefront());
    let block = wave.gemm_block();
    let projected = RnnConfig::new(CellKind::Lstm, 5, 19).proj_size(6);
    let dropped = RnnConfig::new(CellKind::Gru, 5, 19).dropout(0.4);
    let cfgs = CELLS.map(|cell| cell.config(5, 19));
    for cfg in cfgs.into_iter().chain([projected, dropped]) {
        let cfg = cfg.layers(3).batch_first(true);
        let what = format!(
            "{:?} {:?} proj_size {} dropout {}",
            cfg.cell, cfg.gru_reset, cfg.proj_size, cfg.dropout
        );
        let call = Call::new(cfg, 10, 3, &[10, 4, 7], 78);
        assert_same_bits(
            &format!("{what} {block:?}"),
            ["wavefront", "layer after layer"],
            &call.run(wave),
            &call.run(plain),
        );
    }
}
per_path!([tiled, panel]: wavefront_matches_layer_after_layer_bit_for_bit);

/// The persistent kernels run the same per-unit arithmetic in the same order as the per-step
/// kernels of the 8×8 blocking, so on one adapter their outputs and gradients agree bit for bit.
#[test]
fn persistent_path_matches_the_per_step_path_bit_for_bit() {
    let _watch = crate::validation::watch();
    let [_, per_step, _] = blockings();
    let persistent = crate::gpu::persistent();
    assert_eq!(per_step.gemm_block(), persistent.gemm_block());
    let projected = RnnConfig::new(CellKind::Lstm, 5, 19).proj_size(6);
    let cfgs = CELLS.map(|cell| cell.config(5, 19));
    for cfg in cfgs.into_iter().chain([projected]) {
        let cfg = cfg.layers(2).bidirectional(true);
        let (cell, b) = (cfg.cell, 3);
        let what = format!("{cell:?} {:?} proj_size {}", cfg.gru_reset, cfg.proj_size);
        assert!(!wgrnn::gpu::small_batch_path(per_step, cell, 19, b));
        assert!(wgrnn::gpu::small_batch_path(persistent, cell, 19, b));
        let call = Call::new(cfg, 6, b, &[6, 2, 4], 77);
        assert_same_bits(
            &what,
            ["persistent", "per-step"],
            &call.run(persistent),
            &call.run(per_step),
        );
    }
}

/// One training call's inputs and upstream gradient dy.
struct Call {
    w: RnnWeights<f32>,
    x: Tensor<f32>,
    h0: Tensor<f32>,
    c0: Tensor<f32>,
    dy: Tensor<f32>,
    lengths: Vec<usize>,
}

impl Call {
    fn new(cfg: RnnConfig, t: usize, b: usize, lengths: &[usize], seed: u64) -> Self {
        let mut rng = SplitMix64::new(seed);
        let dims = wgrnn::core::RnnDims {
            seq_len: t,
            batch: b,
        };
        let x_shape = if cfg.batch_first {
            [b, t, cfg.input_size]
        } else {
            [t, b, cfg.input_size]
        };
        Self {
            x: random(&mut rng, &x_shape, 1.0),
            h0: random(&mut rng, &cfg.state_shape(b), 0.5),
            c0: random(&mut rng, &cfg.cell_state_shape(b), 0.5),
            dy: random(&mut rng, &cfg.output_shape(dims), 1.0),
            w: RnnWeights::init(cfg, seed).unwrap(),
            lengths: lengths.to_vec(),
        }
    }

    /// Forward outputs, then every gradient, in a fixed order.
    fn run(&self, ctx: &wgrnn::gpu::Context) -> Vec<f32> {
        let gw = GpuWeights::upload(ctx, &self.w).unwrap();
        let up = |t: &Tensor<f32>| ctx.upload(t).unwrap();
        let (gx, gh0, gc0) = (up(&self.x), up(&self.h0), up(&self.c0));
        let mut input = GpuRnnInput::new(&gx).h0(&gh0).lengths(&self.lengths);
        if self.w.config().cell == CellKind::Lstm {
            input = input.c0(&gc0);
        }
        let (out, out_tape) = wgrnn::gpu::rnn_forward_train(ctx, &gw, input).unwrap();
        let mut all = ctx.read(&out.y).unwrap().into_data();
        all.extend(ctx.read(&out.h_n).unwrap().into_data());
        if let Some(c) = &out.c_n {
            all.extend(ctx.read(c).unwrap().into_data());
        }
        let gdy = ctx.upload(&self.dy).unwrap();
        let up = wgrnn::gpu::GpuRnnOutputGrads {
            dy: Some(&gdy),
            ..Default::default()
        };
        let g = wgrnn::gpu::rnn_backward(ctx, &gw, &out_tape, up, None).unwrap();
        all.extend(ctx.read(&g.dx).unwrap().into_data());
        all.extend(ctx.read(&g.dh0).unwrap().into_data());
        for t in g.weights.read(ctx).unwrap().tensors().values() {
            all.extend(t.data().iter().copied());
        }
        all
    }
}

fn assert_same_bits(what: &str, names: [&str; 2], got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: output lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            g.to_bits() == w.to_bits(),
            "{what}: output {i}: {} {g}, {} {w}",
            names[0],
            names[1]
        );
    }
}

/// A CPU adapter runs the persistent kernels' one workgroup on one core, so it takes that path
/// only for the smallest steps, and never the layer wavefront, which needs a device that runs
/// two dispatches at once. (Unless the environment overrides them.)
#[test]
fn small_batch_path_and_wavefront_defaults_follow_the_adapter() {
    let _watch = crate::validation::watch();
    let ctx = wgrnn::gpu::Context::new().unwrap();
    let cpu = ctx.adapter().device_type == "Cpu";
    if std::env::var_os("WGRNN_SMALL_BATCH").is_none() {
        let want = if cpu {
            wgrnn::gpu::CPU_SMALL_BATCH_LIMIT
        } else {
            wgrnn::gpu::SMALL_BATCH_LIMIT
        };
        assert_eq!(ctx.small_batch_limit(), want, "{}", ctx.adapter());
    }
    if std::env::var_os("WGRNN_WAVEFRONT").is_none() {
        assert_eq!(ctx.layer_wavefront(), !cpu, "{}", ctx.adapter());
    }
}

#[test]
fn small_batch_path_is_chosen_by_shape() {
    let _watch = crate::validation::watch();
    let ctx = wgrnn::gpu::Context::new()
        .unwrap()
        .with_small_batch_limit(wgrnn::gpu::SMALL_BATCH_LIMIT);
    use wgrnn::gpu::small_batch_path as path;
    // B·H up to the limit (1024): B = 1 latency and small models take it; B = 32 H = 256 not.
    assert!(path(&ctx, CellKind::Lstm, 256, 1));
    assert!(path(&ctx, CellKind::Gru, 256, 4));
    assert!(!path(&ctx, CellKind::Lstm, 256, 5));
    assert!(!path(&ctx, CellKind::Lstm, 256, 32));
    // Elman steps pack four units per work item.
    assert!(path(&ctx, CellKind::RnnTanh, 256, 16));
    assert!(!path(&ctx, CellKind::RnnRelu, 256, 17));
    let off = ctx.with_small_batch_limit(0);
    assert!(!path(&off, CellKind::Lstm, 1, 1));
}
