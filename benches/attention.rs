//! Attention with each score function, forward and forward + backward.

use criterion::Criterion;
use wgrnn::gpu::Context;

use crate::workloads::{SCORES, attention, attention_shapes};
use crate::{bench, group};

pub fn benches(c: &mut Criterion, ctx: &Context, small: bool) {
    for score in SCORES {
        for (mode, training) in [("forward", false), ("forward_backward", true)] {
            let name = format!("attention_{score:?}/{mode}").to_lowercase();
            let mut g = group(c, &name);
            for s in attention_shapes(small) {
                let w = attention(ctx, score, s, training).expect("attention workload");
                bench(&mut g, ctx, &s.label(), w);
            }
            g.finish();
        }
    }
}
