//! The GEMM every projection and weight gradient goes through, with the adapter's blocking.

use criterion::Criterion;
use wgrnn::gpu::Context;

use crate::workloads::{gemm, gemm_shapes};
use crate::{bench, group};

pub fn benches(c: &mut Criterion, ctx: &Context, small: bool) {
    let mut g = group(c, "gemm");
    for s in gemm_shapes(small) {
        let w = gemm(ctx, s).expect("gemm workload");
        bench(&mut g, ctx, &format!("{}x{}x{}", s[0], s[1], s[2]), w);
    }
    g.finish();
}
