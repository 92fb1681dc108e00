//! Embedding lookup and its deterministic (segmented, atomic-free) backward; throughput in
//! bytes moved.

use criterion::Criterion;
use wgrnn::gpu::Context;

use crate::workloads::{embedding, embedding_shapes};
use crate::{bench, group};

pub fn benches(c: &mut Criterion, ctx: &Context, small: bool) {
    for (mode, training) in [("forward", false), ("forward_backward", true)] {
        let mut g = group(c, &format!("embedding/{mode}"));
        for s in embedding_shapes(small) {
            let w = embedding(ctx, s, training).expect("embedding workload");
            bench(&mut g, ctx, &s.label(), w);
        }
        g.finish();
    }
}
