//! Attention on the device: projections as GEMMs, then scores, masked softmax and context.

use bytemuck::{Pod, Zeroable};
use wgrnn_core::{AttentionConfig, Error, Result, Score};

use crate::buffer::{DType, GpuTensor};
use crate::context::Context;
use crate::gemm::{Out, Strided, expect_f32, gemm, pack};
use crate::pipeline::{Access, Kernel};
use crate::record::Recorder;
use crate::shaders::Shader;
use crate::weights::GpuWeights;

use Access::{Read, ReadWrite};

const OP: &str = "gpu attention_forward";
const SCORES: Kernel = Kernel {
    shader: Shader::Attention,
    entry: "attn_scores",
    bindings: &[Read, Read, Read, Read, ReadWrite],
};
const SOFTMAX: Kernel = Kernel {
    shader: Shader::Attention,
    entry: "attn_softmax",
    bindings: &[Read, ReadWrite],
};
const CONTEXT: Kernel = Kernel {
    shader: Shader::Attention,
    entry: "attn_context",
    bindings: &[Read, Read, Read, ReadWrite],
};

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct AttnParams {
    batch: u32,
    tq: u32,
    tk: u32,
    width: u32,
    dv: u32,
    additive: u32,
    scale: f32,
    _pad: u32,
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

/// Attention with the CPU reference's semantics (`wgrnn_cpu::attention_forward`).
pub fn attention_forward(
    ctx: &Context,
    w: &GpuWeights<AttentionConfig>,
    input: GpuAttentionInput<'_>,
) -> Result<GpuAttentionOutput> {
    let cfg = w.config();
    cfg.validate()?;
    let rank3 = |arg: &'static str, t: &GpuTensor| -> Result<[usize; 3]> {
        <[usize; 3]>::try_from(t.shape()).map_err(|_| Error::InvalidArgument {
            op: OP,
            arg,
            reason: format!("must have rank 3 [B, T, D], has shape {:?}", t.shape()),
        })
    };
    let [b, tq, _] = rank3("query", input.query)?;
    let [_, tk, _] = rank3("key", input.key)?;
    if b == 0 || tq == 0 || tk == 0 {
        return Err(Error::InvalidArgument {
            op: OP,
            arg: "query",
            reason: format!(
                "needs B, Tq, Tk ≥ 1, query is {:?}, key is {:?}",
                input.query.shape(),
                input.key.shape()
            ),
        });
    }
    let (dq, dk, dv) = (cfg.query_size, cfg.key_size, cfg.value_size);
    expect_f32(OP, "query", input.query, &[b, tq, dq])?;
    expect_f32(OP, "key", input.key, &[b, tk, dk])?;
    expect_f32(OP, "value", input.value, &[b, tk, dv])?;
    let lens: Vec<u32> = match input.key_lengths {
        None => vec![tk as u32; b],
        Some(l) => {
            if l.len() != b {
                return Err(Error::shape(OP, "key_lengths", &[b], &[l.len()]));
            }
            if let Some((index, &value)) = l.iter().enumerate().find(|(_, v)| **v == 0 || **v > tk)
            {
                return Err(Error::Length {
                    op: OP,
                    arg: "key_lengths",
                    index,
                    value,
                    max: tk,
                });
            }
            l.iter().map(|&v| v as u32).collect()
        }
    };
    let lens_dev = ctx.upload_u32(&[b], &lens)?;
    let mut rec = Recorder::new(ctx, OP);

    // What the score compares: (queries, keys, width) after the score's projections.
    let project = |rec: &mut Recorder<'_>,
                   x: &GpuTensor,
                   rows: usize,
                   k: usize,
                   wname: &str,
                   out_w: usize|
     -> Result<GpuTensor> {
        let xt = pack(rec, Strided::rows(x, rows, k, 0))?;
        let wt = pack(rec, Strided::rows(w.get(wname)?, out_w, k, 0))?;
        let y = ctx.alloc(OP, wname, &[rows, out_w], DType::F32)?;
        gemm(rec, &xt, &wt, None, Out::rows(&y, out_w))?;
        Ok(y)
    };
    let (qs, ks, width, v_add) = match cfg.score {
        Score::Dot | Score::ScaledDot => (
            input.query.clone(),
            input.key.clone(),
            dq,
            input.query.clone(),
        ),
        Score::General => (
            input.query.clone(),
            project(&mut rec, input.key, b * tk, dk, "weight", dq)?,
            dq,
            input.query.clone(),
        ),
        Score::Additive => {
            let a = cfg.attn_size;
            let qa = project(&mut rec, input.query, b * tq, dq, "w_query", a)?;
            let ka = project(&mut rec, input.key, b * tk, dk, "w_key", a)?;
            (qa, ka, a, w.get("v")?.clone())
        }
    };
    let scale = if cfg.score == Score::ScaledDot {
        1.0 / (dk as f32).sqrt()
    } else {
        1.0
    };
    let p = AttnParams {
        batch: b as u32,
        tq: tq as u32,
        tk: tk as u32,
        width: width as u32,
        dv: dv as u32,
        additive: (cfg.score == Score::Additive) as u32,
        scale,
        _pad: 0,
    };
    let weights = ctx.alloc(OP, "weights", &[b, tq, tk], DType::F32)?;
    let context = ctx.alloc(OP, "context", &[b, tq, dv], DType::F32)?;
    rec.dispatch(
        SCORES,
        &p,
        &[&qs, &ks, &v_add, &lens_dev, &weights],
        [tk.div_ceil(64) as u32, tq as u32, b as u32],
    )?;
    let rows = (b * tq).div_ceil(64);
    let groups = if rows > 65535 {
        [65535, rows.div_ceil(65535) as u32, 1]
    } else {
        [rows as u32, 1, 1]
    };
    rec.dispatch(SOFTMAX, &p, &[&lens_dev, &weights], groups)?;
    rec.dispatch(
        CONTEXT,
        &p,
        &[&weights, input.value, &lens_dev, &context],
        [dv.div_ceil(64) as u32, tq as u32, b as u32],
    )?;
    rec.submit()?;
    Ok(GpuAttentionOutput { context, weights })
}
