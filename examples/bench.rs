//! Times one op at one shape on the GPU and prints one JSON line: adapter, backend, op, shape,
//! mode, median milliseconds over the runs after warm-up, and GFLOP/s.
//!
//! cargo run --release --example bench -- lstm --batch 32 --seq 50 --input 128 --hidden 256
//! cargo run --release --example bench -- gemm --m 1024 --k 1024 --n 1024
//! ops: lstm, gru, rnn_tanh, rnn_relu, gemm. Flags: --layers N --bidirectional --runs N --warmup N
//! --training (forward in training mode + backward)

use std::time::Instant;

use wgrnn::core::{RnnWeights, SplitMix64, Tensor};
use wgrnn::gpu::{
    Context, GpuRnnInput, GpuRnnOutputGrads, GpuWeights, Mode, matmul, rnn_backward, rnn_forward,
};
use wgrnn::{CellKind, RnnConfig};

fn arg(args: &[String], name: &str, default: usize) -> usize {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} takes a number, got {v}"))
        })
        .unwrap_or(default)
}

fn random(rng: &mut SplitMix64, shape: &[usize]) -> Tensor<f32> {
    Tensor::from_fn(shape.to_vec(), |_| rng.uniform(-1.0, 1.0) as f32)
}

/// Median wall time in ms of `f`, each run ending with a device sync.
fn time(ctx: &Context, warmup: usize, runs: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..warmup {
        f();
    }
    ctx.sync().unwrap();
    let mut ms: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            ctx.sync().unwrap();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    ms[ms.len() / 2]
}

fn main() -> wgrnn::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let op = args.first().cloned().unwrap_or_else(|| "lstm".into());
    let (warmup, runs) = (arg(&args, "--warmup", 2), arg(&args, "--runs", 5));
    let ctx = Context::new()?;
    let mut rng = SplitMix64::new(1);
    let (shape, flops, ms, mode) = if op == "gemm" {
        let (m, k, n) = (
            arg(&args, "--m", 1024),
            arg(&args, "--k", 1024),
            arg(&args, "--n", 1024),
        );
        let a = ctx.upload(&random(&mut rng, &[m, k]))?;
        let b = ctx.upload(&random(&mut rng, &[k, n]))?;
        let ms = time(&ctx, warmup, runs, || {
            matmul(&ctx, &a, &b).unwrap();
        });
        (
            format!("{{\"m\":{m},\"k\":{k},\"n\":{n}}}"),
            2.0 * (m * k * n) as f64,
            ms,
            "inference",
        )
    } else {
        let cell = CellKind::from_name(&op).unwrap_or_else(|| panic!("unknown op {op}"));
        let (b, t, i, h) = (
            arg(&args, "--batch", 32),
            arg(&args, "--seq", 50),
            arg(&args, "--input", 128),
            arg(&args, "--hidden", 256),
        );
        let layers = arg(&args, "--layers", 1);
        let bidir = args.iter().any(|a| a == "--bidirectional");
        let training = args.iter().any(|a| a == "--training");
        let cfg = RnnConfig::new(cell, i, h)
            .layers(layers)
            .bidirectional(bidir);
        let w = GpuWeights::upload(&ctx, &RnnWeights::<f32>::init(cfg.clone(), 1)?)?;
        let x = ctx.upload(&random(&mut rng, &[t, b, i]))?;
        let mode = if training {
            Mode::Training
        } else {
            Mode::Inference
        };
        let dy = ctx.upload(&random(&mut rng, &[t, b, cfg.output_size()]))?;
        let ms = time(&ctx, warmup, runs, || {
            let out = rnn_forward(&ctx, &w, GpuRnnInput::new(&x), mode).unwrap();
            if training {
                let up = GpuRnnOutputGrads {
                    dy: Some(&dy),
                    ..Default::default()
                };
                rnn_backward(&ctx, &w, out.tape().unwrap(), up, None).unwrap();
            }
        });
        let g = cell.gates() as f64;
        let d = cfg.num_directions() as f64;
        let mut flops = 0.0;
        for l in 0..layers {
            flops += d * 2.0 * (t * b) as f64 * g * h as f64 * (cfg.layer_input_size(l) + h) as f64;
        }
        // Backward: dG·W_hh per step, dW_hh, dW_ih and dX: twice the forward's products.
        if training {
            flops *= 3.0;
        }
        let shape = format!(
            "{{\"batch\":{b},\"seq\":{t},\"input\":{i},\"hidden\":{h},\"layers\":{layers},\"bidirectional\":{bidir}}}"
        );
        (
            shape,
            flops,
            ms,
            if training { "training" } else { "inference" },
        )
    };
    let a = ctx.adapter();
    println!(
        "{{\"adapter\":\"{}\",\"backend\":\"{}\",\"op\":\"{op}\",\"shape\":{shape},\"mode\":\"{mode}\",\"ms\":{ms:.3},\"gflops\":{:.3}}}",
        a.name,
        a.backend,
        flops / ms / 1e6
    );
    Ok(())
}
