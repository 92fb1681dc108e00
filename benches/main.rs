//! The criterion suite: one binary, a module per op family. Each measurement records and
//! submits `iters` calls, then waits for the device (`iter_custom`), so the time is the device's
//! work plus the host's recording, as a caller sees it. Throughput is in FLOP ("elem" in
//! criterion's units: Gelem/s = GFLOP/s), or bytes for the memory-bound embedding.
//!
//! `cargo bench --bench wgrnn [-- FILTER]` on whatever adapter wgpu picks (WGPU_BACKEND,
//! WGPU_ADAPTER_NAME choose). `WGRNN_BENCH_SMALL=1` shrinks every shape to a few elements;
//! `cargo test` runs each benchmark once at those sizes (criterion's test mode) as a smoke test.

mod attention;
mod embedding;
mod gemm;
mod rnn;
mod workloads;

use std::time::{Duration, Instant};

use criterion::{BenchmarkGroup, Criterion, SamplingMode, Throughput, measurement::WallTime};
use wgrnn::gpu::Context;
use workloads::Workload;

/// Adds one workload to `group` under `id`, timed with a device sync at the end.
pub fn bench(group: &mut BenchmarkGroup<'_, WallTime>, ctx: &Context, id: &str, mut w: Workload) {
    group.throughput(if w.bytes {
        Throughput::Bytes(w.work as u64)
    } else {
        Throughput::Elements(w.work as u64)
    });
    // One untimed call compiles the pipelines and fills the buffer pool.
    (w.run)().unwrap_or_else(|e| panic!("{id}: {e}"));
    group.bench_function(id, |b| {
        b.iter_custom(|iters| {
            ctx.sync().expect("device sync");
            let start = Instant::now();
            for _ in 0..iters {
                (w.run)().unwrap_or_else(|e| panic!("{id}: {e}"));
            }
            ctx.sync().expect("device sync");
            start.elapsed()
        })
    });
}

/// Settings for a group of GPU calls that take milliseconds to seconds each.
pub fn group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    g
}

fn main() {
    // `cargo bench` passes --bench; without it criterion runs in test mode (each benchmark
    // once), where tiny shapes keep the smoke run short.
    let small = std::env::var_os("WGRNN_BENCH_SMALL").is_some_and(|v| v != "0")
        || !std::env::args().any(|a| a == "--bench");
    let ctx = Context::new().unwrap_or_else(|e| {
        eprintln!("benchmarks need a GPU adapter (or Mesa's lavapipe): {e}");
        std::process::exit(1)
    });
    let a = ctx.adapter();
    println!(
        "adapter: {} | backend: {} | type: {} | driver: {} | blocking: {:?}{}",
        a.name,
        a.backend,
        a.device_type,
        a.driver,
        ctx.gemm_block(),
        if small { " | small shapes" } else { "" }
    );
    let mut c = Criterion::default().configure_from_args();
    rnn::benches(&mut c, &ctx, small);
    attention::benches(&mut c, &ctx, small);
    embedding::benches(&mut c, &ctx, small);
    gemm::benches(&mut c, &ctx, small);
    c.final_summary();
}
