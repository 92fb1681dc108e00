//! LSTM, GRU and Elman layers: forward (inference) and forward + backward (training) at the
//! standard shapes, B = 1 latency included.

use criterion::Criterion;
use wgrnn::CellKind;
use wgrnn::gpu::Context;

use crate::workloads::{rnn, rnn_shapes};
use crate::{bench, group};

pub fn benches(c: &mut Criterion, ctx: &Context, small: bool) {
    for cell in [CellKind::Lstm, CellKind::Gru, CellKind::RnnTanh] {
        for (mode, training) in [("forward", false), ("forward_backward", true)] {
            let mut g = group(c, &format!("{}/{mode}", cell.name()));
            for s in rnn_shapes(small) {
                let w = rnn(ctx, cell, s, training).expect("rnn workload");
                bench(&mut g, ctx, &s.label(), w);
            }
            g.finish();
        }
    }
}
