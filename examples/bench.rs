//! Times one op at one shape on the GPU and prints one JSON line: adapter, backend, op, shape,
//! mode, median milliseconds over the runs after warm-up, and GFLOP/s (GB/s for embedding).
//! The workloads are the criterion suite's (`benches/workloads.rs`).
//!
//! cargo run --release --example bench -- lstm --batch 32 --seq 50 --input 128 --hidden 256
//! cargo run --release --example bench -- attention_general --batch 32 --tq 64 --tk 64 --dim 256
//! cargo run --release --example bench -- gemm --m 1024 --k 1024 --n 1024
//!
//! ops: lstm, gru, rnn_tanh, rnn_relu (flags --batch --seq --input --hidden --layers
//! --bidirectional), attention_dot|attention_scaleddot|attention_general|attention_additive
//! (--batch --tq --tk --dim), embedding (--vocab --dim --batch --seq), gemm (--m --k --n).
//! Common: --training (forward + backward), --runs N (≥ 1), --warmup N (≥ 0). `WGRNN_F16_WEIGHTS=1` runs
//! the recurrent layers with f16 storage of W_hh (reported as "f16_weights"),
//! `WGRNN_WAVEFRONT=0|1` turns the layer wavefront of stacked layers off or on (reported as
//! "wavefront"; on by default except on CPU adapters).

#[path = "shared/bench_flags.rs"]
mod bench_flags;
#[path = "../benches/workloads.rs"]
#[allow(dead_code)] // The shape lists and labels are the criterion suite's.
mod workloads;

use std::time::Instant;

use bench_flags::{USAGE, arg, check_flags, split_op};
use wgrnn::CellKind;
use wgrnn::gpu::Context;
use workloads::{AttentionShape, EmbeddingShape, RnnShape, SCORES, Workload};

/// Median wall time in ms of one call, each run ending with a device sync.
fn time(ctx: &Context, warmup: usize, runs: usize, w: &mut Workload) -> wgrnn::Result<f64> {
    for _ in 0..warmup {
        (w.run)()?;
    }
    ctx.sync()?;
    let mut ms = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        (w.run)()?;
        ctx.sync()?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    ms.sort_by(f64::total_cmp);
    Ok(ms[ms.len() / 2])
}

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return Ok(());
    }
    let (op, flags) = split_op(&args);
    check_flags(op, flags)?;
    let (warmup, runs) = (arg(&args, "--warmup", 2, 0)?, arg(&args, "--runs", 5, 1)?);
    let op = op.to_string();
    let training = args.iter().any(|a| a == "--training");
    let ctx = Context::new()?;
    let (shape, mut w) = if op == "gemm" {
        let s = [
            arg(&args, "--m", 1024, 1)?,
            arg(&args, "--k", 1024, 1)?,
            arg(&args, "--n", 1024, 1)?,
        ];
        let shape = format!("{{\"m\":{},\"k\":{},\"n\":{}}}", s[0], s[1], s[2]);
        (shape, workloads::gemm(&ctx, s)?)
    } else if op == "embedding" {
        let s = EmbeddingShape {
            vocab: arg(&args, "--vocab", 10_000, 1)?,
            dim: arg(&args, "--dim", 256, 1)?,
            b: arg(&args, "--batch", 32, 1)?,
            t: arg(&args, "--seq", 50, 1)?,
        };
        let shape = format!(
            "{{\"vocab\":{},\"dim\":{},\"batch\":{},\"seq\":{}}}",
            s.vocab, s.dim, s.b, s.t
        );
        (shape, workloads::embedding(&ctx, s, training)?)
    } else if let Some(score) = op.strip_prefix("attention_") {
        let score = SCORES
            .into_iter()
            .find(|s| format!("{s:?}").eq_ignore_ascii_case(score))
            .ok_or(format!("unknown attention score {score:?}"))?;
        let s = AttentionShape {
            b: arg(&args, "--batch", 32, 1)?,
            tq: arg(&args, "--tq", 64, 1)?,
            tk: arg(&args, "--tk", 64, 1)?,
            d: arg(&args, "--dim", 256, 1)?,
        };
        let shape = format!(
            "{{\"batch\":{},\"tq\":{},\"tk\":{},\"dim\":{}}}",
            s.b, s.tq, s.tk, s.d
        );
        (shape, workloads::attention(&ctx, score, s, training)?)
    } else {
        let cell = CellKind::from_name(&op).ok_or(format!("unknown op {op:?}"))?;
        let s = RnnShape {
            b: arg(&args, "--batch", 32, 1)?,
            t: arg(&args, "--seq", 50, 1)?,
            i: arg(&args, "--input", 128, 1)?,
            h: arg(&args, "--hidden", 256, 1)?,
            layers: arg(&args, "--layers", 1, 1)?,
            bidirectional: args.iter().any(|a| a == "--bidirectional"),
        };
        let shape = format!(
            "{{\"batch\":{},\"seq\":{},\"input\":{},\"hidden\":{},\"layers\":{},\"bidirectional\":{}}}",
            s.b, s.t, s.i, s.h, s.layers, s.bidirectional
        );
        (shape, workloads::rnn(&ctx, cell, s, training)?)
    };
    let ms = time(&ctx, warmup, runs, &mut w)?;
    let a = ctx.adapter();
    let mode = if training && op != "gemm" {
        "training"
    } else {
        "inference"
    };
    let rate = if w.bytes { "gbps" } else { "gflops" };
    println!(
        "{{\"adapter\":\"{}\",\"backend\":\"{}\",\"op\":\"{op}\",\"shape\":{shape},\"mode\":\"{mode}\",\"f16_weights\":{},\"wavefront\":{},\"ms\":{ms:.3},\"{rate}\":{:.3}}}",
        a.name,
        a.backend,
        ctx.f16_weights(),
        ctx.layer_wavefront(),
        w.work / ms / 1e6
    );
    Ok(())
}
