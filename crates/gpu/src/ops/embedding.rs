//! Embedding lookup on the device.

use wgrnn_core::{EmbeddingConfig, Error, Result, Tensor};

use crate::runtime::context::Context;
use crate::runtime::pipeline::{Access, Kernel};
use crate::runtime::record::fold_y;
use crate::runtime::recording::Record;
use crate::runtime::shaders::Shader;
use crate::runtime::tensor::{DType, GpuTensor, OnContext, expect_f32};
use crate::runtime::uniforms::embedding::{GatherParams, ScatterParams};
use crate::runtime::weights::{DeviceLayout, GpuWeights, check_accumulator, grads_or};

const OP: &str = "embedding_forward";
const SCATTER: Kernel = Kernel {
    shader: Shader::Embedding,
    entry: "embedding_scatter",
    bindings: &[
        Access::Read,
        Access::Read,
        Access::Read,
        Access::Read,
        Access::ReadWrite,
    ],
};
const GATHER: Kernel = Kernel {
    shader: Shader::Embedding,
    entry: "embedding_gather",
    bindings: &[Access::Read, Access::Read, Access::ReadWrite],
};

/// Positions of one id summed by one invocation of the backward at most: far below the loop
/// limit of CPU adapters ([`crate::CPU_LOOP_LIMIT`]).
const SEGMENT: usize = 16_384;

/// Token ids on the device, with what a deterministic backward needs: the positions sorted by
/// id (stably), and each id's run of them cut in segments of at most 16,384, computed once
/// on the host at upload. Segments go round by round: round r holds the r-th segment of every
/// id that has one, in id order, so no id appears twice in a round.
#[derive(Clone, Debug)]
pub struct GpuIds {
    ids: GpuTensor,
    vocab: usize,
    /// The id of each segment, and where each round's segments start (and the last ends).
    seg_host: Vec<u32>,
    rounds: Vec<usize>,
    order: GpuTensor,
    /// Segment u covers `order[starts[2u]..starts[2u + 1]]`.
    starts: GpuTensor,
    seg_ids: GpuTensor,
}

impl GpuIds {
    /// The ids as a u32 device tensor (what [`embedding_forward`] reads).
    pub fn tensor(&self) -> &GpuTensor {
        &self.ids
    }
}

impl OnContext for GpuIds {
    fn check_context(&self, ctx: &Context, op: &'static str, arg: &str) -> Result<()> {
        for t in [&self.ids, &self.order, &self.starts, &self.seg_ids] {
            t.check_context(ctx, op, arg)?;
        }
        Ok(())
    }
}

/// Uploads token ids after checking each lies in `0..vocab` (the error names the first that
/// does not).
pub fn upload_ids(ctx: &Context, ids: &Tensor<i64>, vocab: usize) -> Result<GpuIds> {
    let mut out = Vec::with_capacity(ids.numel());
    for (index, &id) in ids.data().iter().enumerate() {
        if id < 0 || id as u64 >= vocab as u64 || id > u32::MAX as i64 {
            return Err(Error::IdOutOfRange {
                op: "upload_ids",
                arg: "ids",
                index,
                id,
                limit: vocab,
            });
        }
        out.push(id as u32);
    }
    // Stable sort of positions by id: each distinct id's positions become one contiguous run.
    let mut order: Vec<u32> = (0..out.len() as u32).collect();
    order.sort_by_key(|&p| out[p as usize]);
    let mut runs: Vec<(u32, usize, usize)> = Vec::new();
    for (i, &p) in order.iter().enumerate() {
        let id = out[p as usize];
        match runs.last_mut() {
            Some((last, _, end)) if *last == id => *end = i + 1,
            _ => runs.push((id, i, i + 1)),
        }
    }
    let (mut seg_host, mut starts, mut rounds) = (Vec::new(), Vec::new(), vec![0]);
    let longest = runs.iter().map(|&(_, b, e)| e - b).max().unwrap_or(0);
    for r in 0..longest.div_ceil(SEGMENT) {
        for &(id, begin, end) in &runs {
            let b = begin + r * SEGMENT;
            if b < end {
                seg_host.push(id);
                starts.extend([b as u32, (b + SEGMENT).min(end) as u32]);
            }
        }
        rounds.push(seg_host.len());
    }
    Ok(GpuIds {
        ids: ctx.upload_u32(ids.shape(), &out)?,
        vocab,
        order: ctx.upload_u32(&[order.len()], &order)?,
        starts: ctx.upload_u32(&[starts.len()], &starts)?,
        seg_ids: ctx.upload_u32(&[seg_host.len()], &seg_host)?,
        seg_host,
        rounds,
    })
}

impl GpuIds {
    /// Checks that these ids were checked against at most the table's rows (a smaller
    /// vocabulary names rows of the table too).
    fn check_vocab(&self, op: &'static str, cfg: &EmbeddingConfig) -> Result<()> {
        if self.vocab > cfg.num_embeddings {
            return Err(Error::InvalidArgument {
                op,
                arg: "ids",
                reason: format!(
                    "were checked against vocabulary {}, more than the table's {} rows of {}",
                    self.vocab, cfg.num_embeddings, cfg.embedding_dim
                ),
            });
        }
        Ok(())
    }
}

/// `y[..., :] = weight[ids[...], :]`, `y` of shape `ids.shape() + [D]`. `ids` come from
/// [`upload_ids`] with the table's vocabulary, so every id names a row (the kernel still
/// bounds its reads: an id out of range would yield a zero row, never an out-of-bounds read).
pub fn embedding_forward<'c>(
    on: impl Record<'c>,
    w: &GpuWeights<EmbeddingConfig>,
    ids: &GpuIds,
) -> Result<GpuTensor> {
    let ctx = on.context();
    w.check_context(ctx, OP, "w")?;
    ids.check_context(ctx, OP, "ids")?;
    let cfg = w.config();
    ids.check_vocab(OP, cfg)?;
    let ids = ids.tensor();
    let (rows, d) = (ids.numel(), cfg.embedding_dim);
    let mut shape = ids.shape().to_vec();
    shape.push(d);
    let y = ctx.alloc(OP, "y", &shape, DType::F32)?;
    let mut rec = on.begin(OP);
    let p = GatherParams {
        rows: rows as u32,
        dim: d as u32,
        vocab: cfg.num_embeddings as u32,
        ..Default::default()
    };
    rec.dispatch(
        GATHER,
        &p,
        &[w.get("weight")?, ids, &y],
        fold_y(d.div_ceil(64), rows.div_ceil(4)),
    )?;
    rec.finish()?;
    Ok(y)
}

/// Gradient of the table for upstream `dy` (`ids.shape() + [D]`): row `id` gets the sum of
/// `dy` over the positions holding `id`, in position order (no atomics, bit-reproducible); the
/// `padding_idx` row gets none. With `accumulate`, the gradient is added into that tensor.
pub fn embedding_backward<'c>(
    on: impl Record<'c>,
    w: &GpuWeights<EmbeddingConfig>,
    ids: &GpuIds,
    dy: &GpuTensor,
    accumulate: Option<&GpuWeights<EmbeddingConfig>>,
) -> Result<GpuWeights<EmbeddingConfig>> {
    let ctx = on.context();
    const BOP: &str = "embedding_backward";
    w.check_context(ctx, BOP, "w")?;
    ids.check_context(ctx, BOP, "ids")?;
    dy.check_context(ctx, BOP, "dy")?;
    check_accumulator(ctx, BOP, w, accumulate)?;
    let cfg = w.config();
    ids.check_vocab(BOP, cfg)?;
    let d = cfg.embedding_dim;
    let mut want = ids.ids.shape().to_vec();
    want.push(d);
    expect_f32(BOP, "dy", dy, &want)?;
    let grads = grads_or(ctx, BOP, cfg, accumulate)?;
    let mut rec = on.begin(BOP);
    let g = grads.get("weight")?;
    if accumulate.is_none() {
        rec.clear(g);
    }
    // Round by round (each adding to the sums of the rounds before); within a round the
    // padding row's segment (if present) is skipped: the segments before it, then those after,
    // as two dispatches over the same buffers.
    for (r, w) in ids.rounds.windows(2).enumerate() {
        let (first, last) = (w[0], w[1]);
        let skip = cfg
            .padding_idx
            .and_then(|p| (first..last).find(|&u| ids.seg_host[u] as usize == p));
        let ranges: Vec<(usize, usize)> = match skip {
            Some(k) => vec![(first, k), (k + 1, last)],
            None => vec![(first, last)],
        };
        for (lo, hi) in ranges.into_iter().filter(|(lo, hi)| hi > lo) {
            let p = ScatterParams {
                segments: (hi - lo) as u32,
                dim: d as u32,
                accumulate: (accumulate.is_some() || r > 0) as u32,
                first: lo as u32,
            };
            rec.dispatch(
                SCATTER,
                &p,
                &[dy, &ids.order, &ids.starts, &ids.seg_ids, g],
                fold_y(d.div_ceil(64), (hi - lo).div_ceil(4)),
            )?;
        }
    }
    rec.finish()?;
    Ok(grads)
}

/// Embeddings use their table as it is: no buffer of their own to check.
impl DeviceLayout for EmbeddingConfig {}
