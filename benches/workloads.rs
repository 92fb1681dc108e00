//! The benchmarked workloads, shared by the criterion suite (`benches/main.rs`) and the JSON
//! CLI (`examples/bench.rs`): each builds its inputs on the device once and returns a closure
//! that records and submits one call (forward, or forward + backward), plus its FLOP count.

use wgrnn::core::{SplitMix64, Tensor};
use wgrnn::gpu::{
    Context, GpuAttentionInput, GpuRnnInput, GpuRnnOutputGrads, GpuTensor, GpuWeights,
    attention_backward, attention_forward, embedding_backward, embedding_forward, matmul,
    rnn_backward, rnn_forward, rnn_forward_train, upload_ids,
};
use wgrnn::{AttentionConfig, CellKind, EmbeddingConfig, Result, RnnConfig, Score};

/// One call of an op at one shape.
pub struct Workload<'c> {
    /// Multiply-adds count 2 FLOPs; for memory-bound ops (embedding) the bytes moved instead.
    pub work: f64,
    /// Whether `work` counts bytes rather than FLOPs.
    pub bytes: bool,
    pub run: Box<dyn FnMut() -> Result<()> + 'c>,
}

/// A device tensor of uniform values in [−1, 1), checked against the device before it is built
/// on the host (a shape past the device is an error, not an allocation that exhausts memory).
fn random(ctx: &Context, rng: &mut SplitMix64, shape: &[usize]) -> Result<GpuTensor> {
    ctx.check_fits("input", shape)?;
    ctx.upload(&Tensor::from_fn(shape.to_vec(), |_| {
        rng.uniform(-1.0, 1.0) as f32
    })?)
}

/// Recurrent shape: batch, sequence length, input size, hidden size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RnnShape {
    pub b: usize,
    pub t: usize,
    pub i: usize,
    pub h: usize,
    pub layers: usize,
    pub bidirectional: bool,
}

impl RnnShape {
    pub const fn new(b: usize, t: usize, i: usize, h: usize) -> Self {
        Self {
            b,
            t,
            i,
            h,
            layers: 1,
            bidirectional: false,
        }
    }

    pub fn label(&self) -> String {
        let mut s = format!("B{}_T{}_I{}_H{}", self.b, self.t, self.i, self.h);
        if self.layers > 1 {
            s += &format!("_L{}", self.layers);
        }
        if self.bidirectional {
            s += "_bi";
        }
        s
    }
}

/// The standard recurrent shapes (seq-major, f32), or tiny ones for a smoke run.
pub fn rnn_shapes(small: bool) -> Vec<RnnShape> {
    if small {
        vec![RnnShape::new(2, 3, 4, 8), RnnShape::new(1, 3, 4, 8)]
    } else {
        vec![
            RnnShape::new(32, 50, 128, 256),
            RnnShape::new(64, 100, 512, 512),
            RnnShape::new(1, 100, 128, 256),
        ]
    }
}

/// Forward (and with `training` the backward, from a random `dy`) of a recurrent layer stack.
pub fn rnn<'c>(
    ctx: &'c Context,
    cell: CellKind,
    s: RnnShape,
    training: bool,
) -> Result<Workload<'c>> {
    let mut rng = SplitMix64::new(1);
    let cfg = RnnConfig::new(cell, s.i, s.h)
        .layers(s.layers)
        .bidirectional(s.bidirectional);
    let w = GpuWeights::init(ctx, cfg.clone(), 1)?;
    let x = random(ctx, &mut rng, &[s.t, s.b, s.i])?;
    let dy = random(ctx, &mut rng, &[s.t, s.b, cfg.output_size()])?;
    let g = cell.gates() as f64;
    let mut flops = 0.0;
    for l in 0..s.layers {
        flops += cfg.num_directions() as f64
            * 2.0
            * (s.t * s.b) as f64
            * g
            * s.h as f64
            * (cfg.layer_input_size(l) + s.h) as f64;
    }
    // Backward: dG·W_hh per step, dW_hh, dW_ih and dX: twice the forward's products.
    if training {
        flops *= 3.0;
    }
    Ok(Workload {
        work: flops,
        bytes: false,
        run: Box::new(move || {
            let input = GpuRnnInput::new(&x);
            if training {
                let (_, tape) = rnn_forward_train(ctx, &w, input)?;
                let up = GpuRnnOutputGrads {
                    dy: Some(&dy),
                    ..Default::default()
                };
                rnn_backward(ctx, &w, &tape, up, None)?;
            } else {
                rnn_forward(ctx, &w, input)?;
            }
            Ok(())
        }),
    })
}

/// Attention shape: batch, query and key lengths, width of queries, keys and values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttentionShape {
    pub b: usize,
    pub tq: usize,
    pub tk: usize,
    pub d: usize,
}

impl AttentionShape {
    pub fn label(&self) -> String {
        format!("B{}_Tq{}_Tk{}_D{}", self.b, self.tq, self.tk, self.d)
    }
}

pub fn attention_shapes(small: bool) -> Vec<AttentionShape> {
    if small {
        vec![AttentionShape {
            b: 2,
            tq: 3,
            tk: 5,
            d: 8,
        }]
    } else {
        vec![AttentionShape {
            b: 32,
            tq: 64,
            tk: 64,
            d: 256,
        }]
    }
}

pub const SCORES: [Score; 4] = [
    Score::Dot,
    Score::ScaledDot,
    Score::General,
    Score::Additive,
];

/// Attention of `query [B, Tq, D]` over `key = value [B, Tk, D]` with one score.
pub fn attention<'c>(
    ctx: &'c Context,
    score: Score,
    s: AttentionShape,
    training: bool,
) -> Result<Workload<'c>> {
    let mut rng = SplitMix64::new(2);
    let w = GpuWeights::init(ctx, AttentionConfig::new(score, s.d), 1)?;
    let q = random(ctx, &mut rng, &[s.b, s.tq, s.d])?;
    let k = random(ctx, &mut rng, &[s.b, s.tk, s.d])?;
    let dctx = random(ctx, &mut rng, &[s.b, s.tq, s.d])?;
    let (b, tq, tk, d) = (s.b as f64, s.tq as f64, s.tk as f64, s.d as f64);
    // Scores and context: 2·B·Tq·Tk·D each; general projects the keys (2·B·Tk·D²), additive
    // both sides (2·B·(Tq+Tk)·D·A with A = D) and then adds, tanh and v· per pair (≈ 3·A).
    let mut flops = 4.0 * b * tq * tk * d;
    match score {
        Score::General => flops += 2.0 * b * tk * d * d,
        Score::Additive => flops += 2.0 * b * (tq + tk) * d * d + b * tq * tk * d,
        _ => {}
    }
    if training {
        flops *= 3.0;
    }
    Ok(Workload {
        work: flops,
        bytes: false,
        run: Box::new(move || {
            let input = GpuAttentionInput::new(&q, &k, &k);
            let out = attention_forward(ctx, &w, input)?;
            if training {
                attention_backward(ctx, &w, input, &out, &dctx, None, None)?;
            }
            Ok(())
        }),
    })
}

/// Embedding shape: vocabulary, dimension, and `[T, B]` ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EmbeddingShape {
    pub vocab: usize,
    pub dim: usize,
    pub b: usize,
    pub t: usize,
}

impl EmbeddingShape {
    pub fn label(&self) -> String {
        format!("V{}_D{}_B{}_T{}", self.vocab, self.dim, self.b, self.t)
    }
}

pub fn embedding_shapes(small: bool) -> Vec<EmbeddingShape> {
    if small {
        vec![EmbeddingShape {
            vocab: 11,
            dim: 8,
            b: 2,
            t: 3,
        }]
    } else {
        vec![EmbeddingShape {
            vocab: 10_000,
            dim: 256,
            b: 32,
            t: 50,
        }]
    }
}

/// Lookup of `[T, B]` random ids (and the deterministic segmented backward).
pub fn embedding<'c>(ctx: &'c Context, s: EmbeddingShape, training: bool) -> Result<Workload<'c>> {
    let mut rng = SplitMix64::new(3);
    let w = GpuWeights::init(ctx, EmbeddingConfig::new(s.vocab, s.dim), 1)?;
    ctx.check_fits("ids", &[s.t, s.b])?;
    let ids = Tensor::from_fn(vec![s.t, s.b], |_| rng.below(s.vocab) as i64)?;
    let ids = upload_ids(ctx, &ids, s.vocab)?;
    let dy = random(ctx, &mut rng, &[s.t, s.b, s.dim])?;
    // Bytes read and written: a row per id forward; backward reads each dy row and writes the
    // whole table's gradient.
    let rows = (s.t * s.b * s.dim * 4) as f64;
    let work = if training {
        3.0 * rows + (s.vocab * s.dim * 4) as f64
    } else {
        2.0 * rows
    };
    Ok(Workload {
        work,
        bytes: true,
        run: Box::new(move || {
            let y = embedding_forward(ctx, &w, &ids)?;
            if training {
                embedding_backward(ctx, &w, &ids, &dy, None)?;
            }
            drop(y);
            Ok(())
        }),
    })
}

pub fn gemm_shapes(small: bool) -> Vec<[usize; 3]> {
    if small {
        vec![[3, 5, 7]]
    } else {
        vec![[256, 256, 256], [1024, 1024, 1024]]
    }
}

/// `A [m, k] · B [k, n]` (packing included, as a caller of `matmul` pays it).
pub fn gemm(ctx: &Context, [m, k, n]: [usize; 3]) -> Result<Workload<'_>> {
    let mut rng = SplitMix64::new(4);
    let a = random(ctx, &mut rng, &[m, k])?;
    let b = random(ctx, &mut rng, &[k, n])?;
    Ok(Workload {
        work: 2.0 * (m * k * n) as f64,
        bytes: false,
        run: Box::new(move || matmul(ctx, &a, &b).map(drop)),
    })
}
