//! Process memory stays flat across repeated calls: a training loop must run for hours.
//!
//! A binary of its own, because it measures the resident memory of the whole process, which
//! tests running beside it in the parity binary would disturb. Linux only (`/proc/self/statm`).

#![cfg(target_os = "linux")]

#[path = "../examples/shared/checks.rs"]
#[allow(dead_code)]
mod checks;
#[path = "../examples/dates/data.rs"]
#[allow(dead_code)]
mod data;
#[path = "../examples/dates/model.rs"]
#[allow(dead_code)]
mod model;

use model::{Batch, Model, ModelConfig};
use wgrnn::core::{RnnWeights, Tensor};
use wgrnn::gpu::{self, Context, GpuOptimizer, GpuRnnInput, GpuRnnOutputGrads, GpuWeights};
use wgrnn::{CellKind, OptimizerConfig, RnnConfig, Score};

/// Growth allowed over the measured calls, in KiB: the allocator's own slack. A call that
/// leaks one compiled kernel (about 200 KiB on lavapipe) exceeds it within about 20 calls.
const SLACK_KIB: usize = 4 * 1024;
const WARMUP: usize = 10;
const CALLS: usize = 60;

fn rss_kib() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("resident pages in /proc/self/statm");
    pages * 4
}

/// Runs `f` WARMUP times (pipelines compile, the buffer pool fills), then CALLS times, and
/// asserts that resident memory grew by at most SLACK_KIB over the measured calls.
fn assert_flat(what: &str, ctx: &Context, mut f: impl FnMut()) {
    for _ in 0..WARMUP {
        f();
    }
    ctx.sync().unwrap();
    let before = rss_kib();
    for _ in 0..CALLS {
        f();
        ctx.sync().unwrap();
    }
    let grown = rss_kib().saturating_sub(before);
    eprintln!(
        "{what}: {grown} KiB over {CALLS} calls ({} B per call)",
        grown * 1024 / CALLS
    );
    assert!(
        grown <= SLACK_KIB,
        "{what}: resident memory grew {grown} KiB over {CALLS} calls (allowed {SLACK_KIB} KiB)"
    );
}

#[test]
fn repeated_calls_do_not_grow_memory() {
    let ctx = Context::new().unwrap_or_else(|e| panic!("GPU tests need an adapter: {e}"));
    eprintln!("memory test on {}", ctx.adapter());
    // Every cell, both directions, forward and backward, on the per-step path and on the
    // persistent small-batch path (limit 0 turns the latter off).
    for small_batch in [0, usize::MAX] {
        let ctx = Context::new().unwrap().with_small_batch_limit(small_batch);
        for cell in [CellKind::Lstm, CellKind::Gru, CellKind::RnnTanh] {
            let cfg = RnnConfig::new(cell, 12, 16).bidirectional(true);
            let w = GpuWeights::upload(&ctx, &RnnWeights::<f32>::init(cfg, 3).unwrap()).unwrap();
            let x = ctx
                .upload(&Tensor::<f32>::from_fn([5, 4, 12], |i| (i as f32 * 0.37).sin()).unwrap())
                .unwrap();
            let dy = ctx
                .upload(&Tensor::<f32>::full([5, 4, 32], 0.1).unwrap())
                .unwrap();
            assert_flat(
                &format!("{cell:?} small-batch limit {small_batch}"),
                &ctx,
                || {
                    let (_, out_tape) =
                        gpu::rnn_forward_train(&ctx, &w, GpuRnnInput::new(&x)).unwrap();
                    let up = GpuRnnOutputGrads {
                        dy: Some(&dy),
                        dh_n: None,
                        dc_n: None,
                    };
                    gpu::rnn_backward(&ctx, &w, &out_tape, up, None).unwrap();
                },
            );
        }
    }
    // The split steps of CPU adapters on 32-row blocks (B = 4 above takes 16-row blocks).
    let ctx0 = Context::new().unwrap().with_small_batch_limit(0);
    let (h, b) = (16, 20);
    let cfg = RnnConfig::new(CellKind::Lstm, 12, h);
    let w = GpuWeights::upload(&ctx0, &RnnWeights::<f32>::init(cfg, 3).unwrap()).unwrap();
    let x = ctx0
        .upload(&Tensor::<f32>::from_fn([5, b, 12], |i| (i as f32 * 0.37).sin()).unwrap())
        .unwrap();
    let dy = ctx0
        .upload(&Tensor::<f32>::full([5, b, h], 0.1).unwrap())
        .unwrap();
    assert_flat(&format!("LSTM H={h} B={b}"), &ctx0, || {
        let (_, out_tape) = gpu::rnn_forward_train(&ctx0, &w, GpuRnnInput::new(&x)).unwrap();
        let up = GpuRnnOutputGrads {
            dy: Some(&dy),
            dh_n: None,
            dc_n: None,
        };
        gpu::rnn_backward(&ctx0, &w, &out_tape, up, None).unwrap();
    });
    // Every optimizer update (its kernel branches on the kind), with and without clipping.
    let p = ctx
        .upload(&Tensor::<f32>::full([64, 8], 0.5).unwrap())
        .unwrap();
    let g = ctx
        .upload(&Tensor::<f32>::full([64, 8], 0.01).unwrap())
        .unwrap();
    for (name, cfg) in [
        ("sgd", OptimizerConfig::sgd(0.1, 0.0)),
        ("sgd momentum", OptimizerConfig::sgd(0.1, 0.9)),
        ("adam", OptimizerConfig::adam(0.01)),
        ("adamw", OptimizerConfig::adamw(0.01)),
        ("rmsprop", OptimizerConfig::rmsprop(0.01)),
    ] {
        for clip in [None, Some(1.0)] {
            let mut opt = GpuOptimizer::new(&ctx, cfg, &[&p]).unwrap();
            if let Some(c) = clip {
                opt = opt.with_clip_grad_norm(c).unwrap();
            }
            assert_flat(&format!("{name} clip {clip:?}"), &ctx, || {
                opt.step(&ctx, &[(&p, &g)]).unwrap();
            });
        }
    }
    // GEMMs on every path of CPU adapters' gemm_panel: whole panels in one window, and k in
    // chunks (the first with the bias, later ones accumulating), forward and backward.
    for (fi, rows) in [(24, 40), (300, 70)] {
        let w =
            wgrnn::core::LinearWeights::<f32>::init(wgrnn::LinearConfig::new(fi, 20), 3).unwrap();
        let gw = GpuWeights::upload(&ctx, &w).unwrap();
        let x = ctx
            .upload(&Tensor::full([rows, fi], 0.5f32).unwrap())
            .unwrap();
        let dy = ctx
            .upload(&Tensor::full([rows, 20], 0.25f32).unwrap())
            .unwrap();
        let big = ctx
            .upload(&Tensor::full([rows, 600], 0.5f32).unwrap())
            .unwrap();
        let wide = ctx
            .upload(&Tensor::full([600, 33], 0.5f32).unwrap())
            .unwrap();
        assert_flat(
            &format!("linear in={fi} rows={rows}, matmul k=600"),
            &ctx,
            || {
                gpu::linear_forward(&ctx, &gw, &x).unwrap();
                gpu::linear_backward(&ctx, &gw, &x, &dy, None).unwrap();
                gpu::matmul(&ctx, &big, &wide).unwrap();
            },
        );
    }
    // The main example's training step: embedding, bidirectional LSTM encoder, LSTM decoder,
    // attention, output layer, cross-entropy, backward through all of it, clipping and Adam.
    let (train, _) = data::generate(16, 7);
    let batch = Batch::new(&train).unwrap();
    for attention in [Some(Score::Additive), Some(Score::General), None] {
        let mut m = Model::new(
            &ctx,
            ModelConfig {
                embed: 8,
                hidden: 16,
                bidirectional: true,
                attention,
                lr: 0.01,
                seed: 2,
                dropout: 0.0,
            },
        )
        .unwrap();
        assert_flat(&format!("dates train step {attention:?}"), &ctx, || {
            m.train_step(&ctx, &batch).unwrap();
        });
    }
}
