//! Attention on the device: projections as GEMMs, then scores, masked softmax and context;
//! backward through the same stages in reverse.

use wgrnn_core::{AttentionConfig, Error, Result, Score};

use crate::ops::matmul::{
    Out, Packed, SeqMask, Strided, check_packed_matrices, gemm, pack, pack_lhs, pack_lhs_masked,
    pack_masked,
};
use crate::ops::reduce::col_sum;
use crate::runtime::context::Context;
use crate::runtime::pipeline::{Access, Kernel};
use crate::runtime::record::{Recorder, fold_x};
use crate::runtime::recording::Record;
use crate::runtime::shaders::Shader;
use crate::runtime::tensor::{DType, GpuTensor, OnContext, expect_f32};
use crate::runtime::uniforms::attention::{AttnParams, BmmParams};
use crate::runtime::weights::{DeviceLayout, GpuWeights, check_accumulator, grads_or};

use Access::{Read, ReadWrite};

const OP: &str = "attention_forward";
const BOP: &str = "attention_backward";
const fn kernel(entry: &'static str, bindings: &'static [Access]) -> Kernel {
    Kernel {
        shader: Shader::Attention,
        entry,
        bindings,
    }
}
const SCORES: Kernel = kernel("attn_scores", &[Read, Read, Read, Read, ReadWrite]);
const SOFTMAX: Kernel = kernel("attn_softmax", &[Read, ReadWrite]);
const DSOFTMAX: Kernel = kernel("attn_dsoftmax", &[Read, Read, Read, ReadWrite]);
const BMM: Kernel = kernel("attn_bmm", &[Read, Read, Read, ReadWrite]);
const DSIDE: Kernel = kernel(
    "attn_dside",
    &[Read, Read, Read, Read, Read, ReadWrite, ReadWrite],
);

/// A batch of matrices in a device tensor: element (b, r, s) at `b·strides[0] + r·strides[1] +
/// s·strides[2]`.
#[derive(Clone, Copy)]
struct View<'a>(&'a GpuTensor, [usize; 3]);

/// `C[b] = scale · A[b]·B[b]` with `A[b]` m × k, `B[b]` k × n and `C[b]` m × n, summing over
/// `k < key_len[b]` only when `by_len` (the sum runs over keys).
#[allow(clippy::too_many_arguments)]
fn bmm(
    rec: &mut Recorder<'_>,
    batch: usize,
    [m, n, k]: [usize; 3],
    a: View<'_>,
    b: View<'_>,
    c: View<'_>,
    lens: &GpuTensor,
    by_len: bool,
    scale: f32,
) -> Result<()> {
    let s = |v: [usize; 3]| v.map(|x| x as u32);
    let ([a_b, a_m, a_k], [b_b, b_k, b_n], [c_b, c_m, c_n]) = (s(a.1), s(b.1), s(c.1));
    let p = BmmParams {
        m: m as u32,
        n: n as u32,
        k: k as u32,
        batch: batch as u32,
        a_b,
        a_m,
        a_k,
        b_b,
        b_k,
        b_n,
        c_b,
        c_m,
        c_n,
        k_by_len: by_len as u32,
        scale,
        ..Default::default()
    };
    // 8×8 invocations per workgroup, 8×8 outputs per invocation.
    let groups = [n.div_ceil(64) as u32, m.div_ceil(64) as u32, batch as u32];
    rec.dispatch(BMM, &p, &[a.0, b.0, lens, c.0], groups)
}

/// Inputs of one attention call; `key_lengths` (host) default to Tk.
#[derive(Clone, Copy, Debug)]
pub struct GpuAttentionInput<'a> {
    pub query: &'a GpuTensor,
    pub key: &'a GpuTensor,
    pub value: &'a GpuTensor,
    pub key_lengths: Option<&'a [usize]>,
}

impl<'a> GpuAttentionInput<'a> {
    pub fn new(query: &'a GpuTensor, key: &'a GpuTensor, value: &'a GpuTensor) -> Self {
        Self {
            query,
            key,
            value,
            key_lengths: None,
        }
    }

    pub fn key_lengths(mut self, l: &'a [usize]) -> Self {
        self.key_lengths = Some(l);
        self
    }
}

/// `context [B, Tq, Dv]` and `weights [B, Tq, Tk]` on the device.
#[derive(Clone, Debug)]
pub struct GpuAttentionOutput {
    pub context: GpuTensor,
    pub weights: GpuTensor,
}

/// Gradients for query, key, value and the score's parameters.
#[derive(Clone, Debug)]
pub struct GpuAttentionGrads {
    pub dquery: GpuTensor,
    pub dkey: GpuTensor,
    pub dvalue: GpuTensor,
    pub weights: GpuWeights<AttentionConfig>,
}

/// A call's checked sizes, its key lengths on the device, and the vectors the score compares
/// (`q`/`k`, or their projections), recorded into `rec`.
struct Prepared {
    b: usize,
    tq: usize,
    tk: usize,
    lens: GpuTensor,
    /// Whether some key is masked, so that packs of `key` zero the masked rows.
    masked: bool,
    qs: GpuTensor,
    ks: GpuTensor,
    v_add: GpuTensor,
    p: AttnParams,
}

fn prepare(
    rec: &mut Recorder<'_>,
    op: &'static str,
    w: &GpuWeights<AttentionConfig>,
    input: &GpuAttentionInput<'_>,
) -> Result<Prepared> {
    let ctx = rec.ctx();
    let [b, tq, tk] = check_input(ctx, op, w, input)?;
    let (lens, masked) = key_lengths(ctx, op, input, b, tk)?;
    // Masked keys are packed as zeros for the projections, so that nothing a caller left there
    // reaches a product: backward's dW = dkᵀ·k sums over every key, masked ones with dk = 0,
    // and 0·NaN is NaN.
    let key_mask = masked.then_some(SeqMask {
        lens: &lens,
        seq_n: tk,
        seq_outer: true,
        on_k: false,
    });
    let (qs, ks, width, v_add) = score_operands(rec, w, input, key_mask, b, tq, tk)?;
    let cfg = w.config();
    let scale = if cfg.score == Score::ScaledDot {
        1.0 / (cfg.key_size as f32).sqrt()
    } else {
        1.0
    };
    let p = AttnParams {
        batch: b as u32,
        tq: tq as u32,
        tk: tk as u32,
        width: width as u32,
        dv: cfg.value_size as u32,
        additive: (cfg.score == Score::Additive) as u32,
        scale,
        side: 0,
        has_dw: 0,
        ..Default::default()
    };
    Ok(Prepared {
        b,
        tq,
        tk,
        lens,
        masked,
        qs,
        ks,
        v_add,
        p,
    })
}

/// Checks a call's weights and inputs (context, ranks, shapes, the adapter's loop limit) and
/// returns `[B, Tq, Tk]`.
fn check_input(
    ctx: &Context,
    op: &'static str,
    w: &GpuWeights<AttentionConfig>,
    input: &GpuAttentionInput<'_>,
) -> Result<[usize; 3]> {
    w.check_context(ctx, op, "w")?;
    input.query.check_context(ctx, op, "query")?;
    input.key.check_context(ctx, op, "key")?;
    input.value.check_context(ctx, op, "value")?;
    let cfg = w.config();
    cfg.validate()?;
    let rank3 = |arg: &'static str, t: &GpuTensor| -> Result<[usize; 3]> {
        <[usize; 3]>::try_from(t.shape()).map_err(|_| Error::InvalidArgument {
            op,
            arg,
            reason: format!("must have rank 3 [B, T, D], has shape {:?}", t.shape()),
        })
    };
    let [b, tq, _] = rank3("query", input.query)?;
    let [_, tk, _] = rank3("key", input.key)?;
    if b == 0 || tq == 0 || tk == 0 {
        let reason = format!(
            "needs B, Tq, Tk ≥ 1, query is {:?}, key is {:?}",
            input.query.shape(),
            input.key.shape()
        );
        return Err(Error::InvalidArgument {
            op,
            arg: "query",
            reason,
        });
    }
    let (dq, dk, dv) = (cfg.query_size, cfg.key_size, cfg.value_size);
    // Per invocation: the softmax loops three times over the keys, the products and their
    // gradients once over the queries, keys or features, then store an 8 × 8 block in 8
    // loops of 8 (`bmm_store`).
    ctx.check_loop(op, "key", 3 * tk as u64 + 72)?;
    ctx.check_loop(op, "query", tq as u64 + 72)?;
    let widest = dq.max(dk).max(dv).max(cfg.attn_size);
    ctx.check_loop(op, "config", widest as u64 + 72)?;
    expect_f32(op, "query", input.query, &[b, tq, dq])?;
    expect_f32(op, "key", input.key, &[b, tk, dk])?;
    expect_f32(op, "value", input.value, &[b, tk, dv])?;
    Ok([b, tq, tk])
}

/// The key lengths on the device (Tk for every batch row by default), checked, and whether
/// some key is masked.
fn key_lengths(
    ctx: &Context,
    op: &'static str,
    input: &GpuAttentionInput<'_>,
    b: usize,
    tk: usize,
) -> Result<(GpuTensor, bool)> {
    let lens: Vec<u32> = match input.key_lengths {
        None => vec![tk as u32; b],
        Some(l) => {
            if l.len() != b {
                return Err(Error::shape(op, "key_lengths", &[b], &[l.len()]));
            }
            if let Some((index, &value)) = l.iter().enumerate().find(|(_, v)| **v == 0 || **v > tk)
            {
                return Err(Error::Length {
                    op,
                    arg: "key_lengths",
                    index,
                    value,
                    max: tk,
                });
            }
            l.iter().map(|&v| v as u32).collect()
        }
    };
    let masked = lens.iter().any(|&l| l as usize != tk);
    Ok((ctx.upload_u32(&[b], &lens)?, masked))
}

/// What the score compares, `(qs, ks, width, v_add)`: the query and key themselves, the key
/// projected (general), or both projected with the additive score's `v` (additive).
fn score_operands(
    rec: &mut Recorder<'_>,
    w: &GpuWeights<AttentionConfig>,
    input: &GpuAttentionInput<'_>,
    key_mask: Option<SeqMask<'_>>,
    b: usize,
    tq: usize,
    tk: usize,
) -> Result<(GpuTensor, GpuTensor, usize, GpuTensor)> {
    let cfg = w.config();
    let (dq, dk) = (cfg.query_size, cfg.key_size);
    Ok(match cfg.score {
        Score::Dot | Score::ScaledDot => (
            input.query.clone(),
            input.key.clone(),
            dq,
            input.query.clone(),
        ),
        Score::General => (
            input.query.clone(),
            project(rec, w, input.key, key_mask, b * tk, dk, "weight", dq)?,
            dq,
            input.query.clone(),
        ),
        Score::Additive => {
            let a = cfg.attn_size;
            let qa = project(rec, w, input.query, None, b * tq, dq, "w_query", a)?;
            let ka = project(rec, w, input.key, key_mask, b * tk, dk, "w_key", a)?;
            (qa, ka, a, w.get("v")?.clone())
        }
    })
}

/// `x [rows, k] · W[out_w, k]ᵀ` for the parameter `wname`, the rows `mask` marks as zeros.
#[allow(clippy::too_many_arguments)]
fn project(
    rec: &mut Recorder<'_>,
    w: &GpuWeights<AttentionConfig>,
    x: &GpuTensor,
    mask: Option<SeqMask<'_>>,
    rows: usize,
    k: usize,
    wname: &str,
    out_w: usize,
) -> Result<GpuTensor> {
    let xt = pack_lhs_masked(rec, Strided::rows(x, rows, k, 0), mask)?;
    let wt = pack(rec, Strided::rows(w.get(wname)?, out_w, k, 0))?;
    let y = rec.ctx().alloc(OP, wname, &[rows, out_w], DType::F32)?;
    gemm(rec, &xt, &wt, None, Out::rows(&y, out_w))?;
    Ok(y)
}

fn row_groups(rows: usize) -> [u32; 3] {
    fold_x(rows.div_ceil(64))
}

/// Attention with the CPU reference's semantics (`wgrnn_cpu::attention_forward`).
pub fn attention_forward<'c>(
    on: impl Record<'c>,
    w: &GpuWeights<AttentionConfig>,
    input: GpuAttentionInput<'_>,
) -> Result<GpuAttentionOutput> {
    let ctx = on.context();
    let mut rec = on.begin(OP);
    let Prepared {
        b,
        tq,
        tk,
        lens,
        qs,
        ks,
        v_add,
        p,
        ..
    } = prepare(&mut rec, OP, w, &input)?;
    let dv = w.config().value_size;
    let weights = ctx.alloc(OP, "weights", &[b, tq, tk], DType::F32)?;
    let context = ctx.alloc(OP, "context", &[b, tq, dv], DType::F32)?;
    let width = p.width as usize;
    if p.additive != 0 {
        rec.dispatch(
            SCORES,
            &p,
            &[&qs, &ks, &v_add, &lens, &weights],
            // 8×8 invocations per workgroup, 4×4 scores per invocation.
            [tk.div_ceil(32) as u32, tq.div_ceil(32) as u32, b as u32],
        )?;
    } else {
        // Scores of masked keys are computed too (from in-bounds rows) and ignored by the
        // softmax, which writes their weights as 0.
        bmm(
            &mut rec,
            b,
            [tq, tk, width],
            View(&qs, [tq * width, width, 1]),
            View(&ks, [tk * width, 1, width]),
            View(&weights, [tq * tk, tk, 1]),
            &lens,
            false,
            p.scale,
        )?;
    }
    rec.dispatch(SOFTMAX, &p, &[&lens, &weights], row_groups(b * tq))?;
    bmm(
        &mut rec,
        b,
        [tq, dv, tk],
        View(&weights, [tq * tk, tk, 1]),
        View(input.value, [tk * dv, dv, 1]),
        View(&context, [tq * dv, dv, 1]),
        &lens,
        true,
        1.0,
    )?;
    rec.finish()?;
    Ok(GpuAttentionOutput { context, weights })
}

/// Backward of [`attention_forward`] given its input and output and the upstream gradients of
/// the context and (optionally) of the weights. With `accumulate`, parameter gradients are
/// added into those tensors.
pub fn attention_backward<'c>(
    on: impl Record<'c>,
    w: &GpuWeights<AttentionConfig>,
    input: GpuAttentionInput<'_>,
    output: &GpuAttentionOutput,
    d_context: &GpuTensor,
    d_weights: Option<&GpuTensor>,
    accumulate: Option<&GpuWeights<AttentionConfig>>,
) -> Result<GpuAttentionGrads> {
    let ctx = on.context();
    let cfg = w.config();
    check_accumulator(ctx, BOP, w, accumulate)?;
    output.context.check_context(ctx, BOP, "output.context")?;
    output.weights.check_context(ctx, BOP, "output.weights")?;
    d_context.check_context(ctx, BOP, "d_context")?;
    d_weights.check_context(ctx, BOP, "d_weights")?;
    let mut rec = on.begin(BOP);
    let mut pr = prepare(&mut rec, BOP, w, &input)?;
    let (b, tq, tk) = (pr.b, pr.tq, pr.tk);
    expect_f32(BOP, "output.weights", &output.weights, &[b, tq, tk])?;
    expect_f32(BOP, "d_context", d_context, &[b, tq, cfg.value_size])?;
    if let Some(dw) = d_weights {
        expect_f32(BOP, "d_weights", dw, &[b, tq, tk])?;
    }
    let grads = grads_or(ctx, BOP, cfg, accumulate)?;
    pr.p.has_dw = d_weights.is_some() as u32;
    let back = Backward {
        w,
        input: &input,
        pr,
        grads,
        add: accumulate.is_some(),
    };
    let ds = back.scores_grad(&mut rec, output, d_context, d_weights)?;
    let dvalue = back.value_grad(&mut rec, output, d_context)?;
    let (dq_side, dk_side, dv_part) = back.side_grads(&mut rec, &ds)?;
    let (dquery, dkey) = back.input_grads(&mut rec, dq_side, dk_side, dv_part.as_ref())?;
    rec.finish()?;
    Ok(GpuAttentionGrads {
        dquery,
        dkey,
        dvalue,
        weights: back.grads,
    })
}

/// One backward call past its checks: the forward's operands again ([`prepare`]), the
/// gradient tensors, and whether they accumulate.
struct Backward<'a> {
    w: &'a GpuWeights<AttentionConfig>,
    input: &'a GpuAttentionInput<'a>,
    pr: Prepared,
    grads: GpuWeights<AttentionConfig>,
    add: bool,
}

impl Backward<'_> {
    /// The gradient of the scores: `da = dctx·valueᵀ` into ds, then the softmax backward in
    /// place (with the weights' own upstream gradient where there is one).
    fn scores_grad(
        &self,
        rec: &mut Recorder<'_>,
        output: &GpuAttentionOutput,
        d_context: &GpuTensor,
        d_weights: Option<&GpuTensor>,
    ) -> Result<GpuTensor> {
        let Prepared { b, tq, tk, .. } = self.pr;
        let (lens, dv) = (&self.pr.lens, self.w.config().value_size);
        let ds = rec.ctx().alloc(BOP, "dscores", &[b, tq, tk], DType::F32)?;
        bmm(
            rec,
            b,
            [tq, tk, dv],
            View(d_context, [tq * dv, dv, 1]),
            View(self.input.value, [tk * dv, 1, dv]),
            View(&ds, [tq * tk, tk, 1]),
            lens,
            false,
            1.0,
        )?;
        let dw = d_weights.unwrap_or(&output.weights);
        let bufs = [&output.weights, dw, lens, &ds];
        rec.dispatch(DSOFTMAX, &self.pr.p, &bufs, row_groups(b * tq))?;
        Ok(ds)
    }

    /// `dvalue = weightsᵀ·dctx` (masked keys have weight 0, so their rows come out 0).
    fn value_grad(
        &self,
        rec: &mut Recorder<'_>,
        output: &GpuAttentionOutput,
        d_context: &GpuTensor,
    ) -> Result<GpuTensor> {
        let Prepared { b, tq, tk, .. } = self.pr;
        let dv = self.w.config().value_size;
        let dvalue = rec.ctx().alloc(BOP, "dvalue", &[b, tk, dv], DType::F32)?;
        bmm(
            rec,
            b,
            [tk, dv, tq],
            View(&output.weights, [tq * tk, 1, tk]),
            View(d_context, [tq * dv, dv, 1]),
            View(&dvalue, [tk * dv, dv, 1]),
            &self.pr.lens,
            false,
            1.0,
        )?;
        Ok(dvalue)
    }

    /// The gradients of what the score compares, `(dq, dk)` of width `width`, and for the
    /// additive score the per (b, i, a) partial sums of `dv`, reduced later over (b, i) in a
    /// fixed order.
    fn side_grads(
        &self,
        rec: &mut Recorder<'_>,
        ds: &GpuTensor,
    ) -> Result<(GpuTensor, GpuTensor, Option<GpuTensor>)> {
        let Prepared { b, tq, tk, .. } = self.pr;
        let (pr, width) = (&self.pr, self.pr.p.width as usize);
        let ctx = rec.ctx();
        let dq_side = ctx.alloc(BOP, "dq", &[b, tq, width], DType::F32)?;
        let dk_side = ctx.alloc(BOP, "dk", &[b, tk, width], DType::F32)?;
        if pr.p.additive != 0 {
            let part = ctx.alloc(BOP, "dv partial sums", &[b * tq, width], DType::F32)?;
            for (side, n, out) in [(0, tq, &dq_side), (1, tk, &dk_side)] {
                let p = AttnParams { side, ..pr.p };
                rec.dispatch(
                    DSIDE,
                    &p,
                    &[ds, &pr.qs, &pr.ks, &pr.v_add, &pr.lens, out, &part],
                    [width.div_ceil(32) as u32, n.div_ceil(32) as u32, b as u32],
                )?;
            }
            return Ok((dq_side, dk_side, Some(part)));
        }
        // dq = scale·ds·kp (over valid keys), dkp = scale·dsᵀ·q.
        bmm(
            rec,
            b,
            [tq, width, tk],
            View(ds, [tq * tk, tk, 1]),
            View(&pr.ks, [tk * width, width, 1]),
            View(&dq_side, [tq * width, width, 1]),
            &pr.lens,
            true,
            pr.p.scale,
        )?;
        bmm(
            rec,
            b,
            [tk, width, tq],
            View(ds, [tq * tk, 1, tk]),
            View(&pr.qs, [tq * width, width, 1]),
            View(&dk_side, [tk * width, width, 1]),
            &pr.lens,
            false,
            pr.p.scale,
        )?;
        Ok((dq_side, dk_side, None))
    }

    /// `(dquery, dkey)` from the gradients of what the score compares: themselves, or back
    /// through the projections (whose weight gradients this records), and the additive
    /// score's `v` gradient from its partial sums `dv_part`.
    fn input_grads(
        &self,
        rec: &mut Recorder<'_>,
        dq_side: GpuTensor,
        dk_side: GpuTensor,
        dv_part: Option<&GpuTensor>,
    ) -> Result<(GpuTensor, GpuTensor)> {
        Ok(match self.w.config().score {
            Score::Dot | Score::ScaledDot => (dq_side, dk_side),
            Score::General => {
                // kp = k·Wᵀ: dk = dkp·W, dW = dkpᵀ·k.
                let dkey = self.projection_grad(rec, &dk_side, true, "weight", "dkey")?;
                (dq_side, dkey)
            }
            Score::Additive => {
                let dquery = self.projection_grad(rec, &dq_side, false, "w_query", "w_query")?;
                let dkey = self.projection_grad(rec, &dk_side, true, "w_key", "w_key")?;
                if let Some(part) = dv_part {
                    let (rows, width) = (self.pr.b * self.pr.tq, self.pr.p.width as usize);
                    col_sum(rec, part, 0, rows, width, self.grads.get("v")?, self.add)?;
                }
                (dquery, dkey)
            }
        })
    }

    /// Back through `xa = x·Wᵀ` (x the key where `key`, else the query; W the parameter
    /// `wname`), given `side` = dxa: returns `dx = dxa·W` (allocated as `label`) and records
    /// `dW = dxaᵀ·x`.
    fn projection_grad(
        &self,
        rec: &mut Recorder<'_>,
        side: &GpuTensor,
        key: bool,
        wname: &str,
        label: &str,
    ) -> Result<GpuTensor> {
        let cfg = self.w.config();
        let (x, t_len, d) = if key {
            (self.input.key, self.pr.tk, cfg.key_size)
        } else {
            (self.input.query, self.pr.tq, cfg.query_size)
        };
        let (b, a_w) = (self.pr.b, self.pr.p.width as usize);
        let rows = b * t_len;
        let dx = rec.ctx().alloc(BOP, label, &[b, t_len, d], DType::F32)?;
        let a = pack_lhs(rec, Strided::rows(side, rows, a_w, 0))?;
        let bw = pack(rec, Strided::cols(self.w.get(wname)?, a_w, d, 0))?;
        gemm(rec, &a, &bw, None, Out::rows(&dx, d))?;
        let at = pack_lhs(rec, Strided::cols(side, rows, a_w, 0))?;
        let xx = if key {
            self.key_cols(rec)?
        } else {
            pack(rec, Strided::cols(x, rows, d, 0))?
        };
        let dw = Out::rows(self.grads.get(wname)?, d).accumulate(self.add);
        gemm(rec, &at, &xx, None, dw)?;
        Ok(dx)
    }

    /// The key as dW = dkᵀ·k reads it, K-major with the keys summed over: masked ones zero
    /// (see [`prepare`]).
    fn key_cols(&self, rec: &mut Recorder<'_>) -> Result<Packed> {
        let (b, tk) = (self.pr.b, self.pr.tk);
        let view = Strided::cols(self.input.key, b * tk, self.w.config().key_size, 0);
        let mask = SeqMask {
            lens: &self.pr.lens,
            seq_n: tk,
            seq_outer: true,
            on_k: true,
        };
        if self.pr.masked {
            pack_masked(rec, view, mask)
        } else {
            pack(rec, view)
        }
    }
}

impl DeviceLayout for AttentionConfig {
    fn check_device(&self, ctx: &Context) -> Result<()> {
        check_packed_matrices(ctx, "GpuWeights", self)
    }
}
