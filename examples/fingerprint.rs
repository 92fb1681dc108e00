//! Prints a digest of the outputs and gradients of every recurrent path (cell × layout ×
//! directions × kernel path) on the default adapter. A change that claims to keep behaviour
//! bit for bit (a refactor of kernels or schedule) must leave every line unchanged:
//!
//! ```text
//! cargo run --release --example fingerprint > before.txt   # on the old commit
//! cargo run --release --example fingerprint > after.txt    # on the new one
//! diff before.txt after.txt
//! ```

use wgrnn::core::{RnnWeights, SplitMix64, Tensor};
use wgrnn::gpu::{Context, GemmBlock, GpuRnnInput, GpuRnnOutputGrads, GpuWeights};
use wgrnn::{CellKind, GruReset, RnnConfig};

/// FNV-1a over the f32 bit patterns.
fn digest(t: &Tensor<f32>) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for v in t.data() {
        for b in v.to_bits().to_le_bytes() {
            h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

fn random(rng: &mut SplitMix64, shape: &[usize]) -> Tensor<f32> {
    let n: usize = shape.iter().product();
    let data = (0..n)
        .map(|_| (rng.next_f64() * 2.0 - 1.0) as f32)
        .collect();
    Tensor::new(shape.to_vec(), data).expect("shape")
}

fn run(
    ctx: &Context,
    label: &str,
    cfg: RnnConfig,
    t: usize,
    b: usize,
    lengths: Option<Vec<usize>>,
) {
    let mut rng = SplitMix64::new(7);
    let w = RnnWeights::<f32>::init(cfg.clone(), 11).expect("weights");
    let gw = GpuWeights::upload(ctx, &w).expect("upload");
    let x_shape = if cfg.batch_first {
        [b, t, cfg.input_size]
    } else {
        [t, b, cfg.input_size]
    };
    let state = cfg.state_shape(b);
    let y_shape = cfg.output_shape(wgrnn::core::RnnDims {
        seq_len: t,
        batch: b,
    });
    let up = |v: Tensor<f32>| ctx.upload(&v).expect("upload");
    let (x, h0, c0) = (
        up(random(&mut rng, &x_shape)),
        up(random(&mut rng, &state)),
        up(random(&mut rng, &state)),
    );
    let (dy, dh, dc) = (
        up(random(&mut rng, &y_shape)),
        up(random(&mut rng, &state)),
        up(random(&mut rng, &state)),
    );
    let lstm = cfg.cell == CellKind::Lstm;
    let mut input = GpuRnnInput::new(&x).h0(&h0);
    if lstm {
        input = input.c0(&c0);
    }
    input.lengths = lengths.as_deref();
    let (out, out_tape) = wgrnn::gpu::rnn_forward_train(ctx, &gw, input).expect("forward");
    let grads = wgrnn::gpu::rnn_backward(
        ctx,
        &gw,
        &out_tape,
        GpuRnnOutputGrads {
            dy: Some(&dy),
            dh_n: Some(&dh),
            dc_n: lstm.then_some(&dc),
        },
        None,
    )
    .expect("backward");
    // The reset-before GRU is named apart; the other cells' lines keep their form.
    let reset = match cfg.gru_reset {
        GruReset::Before => " reset-before",
        GruReset::After => "",
    };
    let mut line = format!(
        "{label} {:?}{reset} L{} bi={} bf={} T={t} B={b} len={lengths:?}:",
        cfg.cell, cfg.num_layers, cfg.bidirectional, cfg.batch_first
    );
    let mut add = |name: &str, g: &wgrnn::gpu::GpuTensor| {
        line += &format!(" {name}={:016x}", digest(&ctx.read(g).expect("read")));
    };
    add("y", &out.y);
    add("h_n", &out.h_n);
    if let Some(c) = &out.c_n {
        add("c_n", c);
    }
    add("dx", &grads.dx);
    add("dh0", &grads.dh0);
    if let Some(c) = &grads.dc0 {
        add("dc0", c);
    }
    let gw = grads.weights.read(ctx).expect("read grads");
    for name in gw.names() {
        line += &format!(" {name}={:016x}", digest(gw.get(&name).expect("grad")));
    }
    println!("{line}");
}

fn main() {
    let base = || Context::new().expect("adapter").with_layer_wavefront(true);
    let paths: Vec<(&str, Context)> = vec![
        (
            "tiled",
            base()
                .with_gemm_block(GemmBlock::Tiled)
                .with_small_batch_limit(0),
        ),
        (
            "b8",
            base()
                .with_gemm_block(GemmBlock::B8)
                .with_small_batch_limit(0),
        ),
        (
            "panel",
            base()
                .with_gemm_block(GemmBlock::Panel)
                .with_small_batch_limit(0),
        ),
        (
            "panel-nosg",
            base()
                .with_gemm_block(GemmBlock::Panel)
                .with_small_batch_limit(0)
                .with_subgroups(false)
                .expect("subgroups off"),
        ),
        (
            "persistent",
            base()
                .with_gemm_block(GemmBlock::B8)
                .with_small_batch_limit(usize::MAX),
        ),
        (
            "f16-b8",
            base()
                .with_gemm_block(GemmBlock::B8)
                .with_small_batch_limit(0)
                .with_f16_weights(true)
                .expect("f16"),
        ),
        (
            "f16-panel",
            base()
                .with_gemm_block(GemmBlock::Panel)
                .with_small_batch_limit(0)
                .with_f16_weights(true)
                .expect("f16"),
        ),
        (
            "f16-persistent",
            base()
                .with_gemm_block(GemmBlock::B8)
                .with_small_batch_limit(usize::MAX)
                .with_f16_weights(true)
                .expect("f16"),
        ),
    ];
    eprintln!("adapter: {}", paths[0].1.adapter());
    for (label, ctx) in &paths {
        for (cell, reset) in [
            (CellKind::Lstm, GruReset::After),
            (CellKind::Gru, GruReset::After),
            (CellKind::RnnTanh, GruReset::After),
            (CellKind::RnnRelu, GruReset::After),
            (CellKind::Gru, GruReset::Before),
        ] {
            for (layers, bi, bf) in [(1, false, false), (2, true, false), (2, false, true)] {
                for (i, h, b) in [(5, 7, 5), (12, 40, 9)] {
                    let mut cfg = RnnConfig::new(cell, i, h).gru_reset(reset);
                    cfg.num_layers = layers;
                    cfg.bidirectional = bi;
                    cfg.batch_first = bf;
                    let lengths: Vec<usize> = (0..b).map(|k| [6, 3, 5, 1][k % 4]).collect();
                    run(ctx, label, cfg.clone(), 6, b, None);
                    run(ctx, label, cfg, 6, b, Some(lengths));
                }
            }
        }
    }
}
