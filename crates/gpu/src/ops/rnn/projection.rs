//! The LSTM projection (PyTorch `proj_size`) on the device, as an LSTM of the cell outputs.
//!
//! With h = W_hr·m and m = o ⊙ tanh(c), the recurrent term W_hh·h_{t-1} is W'·m_{t-1} for
//! W' = W_hh·W_hr `[4H, H]`. So a layer runs the plain LSTM kernels, every path unchanged, on the
//! state (m, c) with W' in place of W_hh, and the projection moves out of the recurrence: the
//! outputs y = m·W_hrᵀ and h_n = m_n·W_hrᵀ are single products over all T·B rows (over a
//! chunk of rows in the wavefront). The one thing W'·m cannot carry is h0, which no m maps to:
//! m_0 is zero and W_hh·h0 is added to the input projection of each sequence's first step
//! (t = 0 forward, its last valid step in reverse). Backward mirrors it: the inner LSTM's
//! upstream is dy·W_hr, and
//!
//! ```text
//! dW_hh = dW'·W_hrᵀ + dG_firstᵀ·h0      dW_hr = W_hhᵀ·dW' + Σ_t dyᵀ·m + dh_nᵀ·m_n
//! dh0   = dG_first·W_hh
//! ```
//!
//! where dW' is what the plain backward computes for W_hh. f32 rounding differs from PyTorch's
//! order of products (W_hh·(W_hr·m) there), within the suite's f32 tolerances.

use std::ops::Range;

use wgrnn_core::{Result, RnnConfig};

use crate::ops::matmul::{Out, SeqMask, Strided, gemm, pack, pack_lhs, pack_masked};
use crate::runtime::record::Recorder;
use crate::runtime::tensor::{DType, GpuTensor};
use crate::runtime::weights::GpuWeights;

/// `out (+)= A·Bᵀ` with A(m, k) and B(n, k) read through the views.
pub(crate) fn product(
    rec: &mut Recorder<'_>,
    a: Strided<'_>,
    b: Strided<'_>,
    out: Out<'_>,
) -> Result<()> {
    let a = pack_lhs(rec, a)?;
    let b = pack(rec, b)?;
    gemm(rec, &a, &b, None, out)
}

/// The weights the plain kernels run for a projected config: the model's, with each
/// `weight_hh` replaced by W' = W_hh·W_hr `[4H, H]`; `None` without a projection.
pub(crate) fn inner_weights(
    rec: &mut Recorder<'_>,
    op: &'static str,
    w: &GpuWeights<RnnConfig>,
) -> Result<Option<GpuWeights<RnnConfig>>> {
    let cfg = w.config();
    let (p, h) = (cfg.proj_size, cfg.hidden_size);
    if p == 0 {
        return Ok(None);
    }
    let gh = cfg.cell.gates() * h;
    let mut tensors = w.tensors().clone();
    for layer in 0..cfg.num_layers {
        for dir in 0..cfg.num_directions() {
            let sfx = RnnConfig::suffix(layer, dir);
            let w_prime = rec.ctx().alloc(op, "W_hh·W_hr", &[gh, h], DType::F32)?;
            // W'[g, j] = Σ_p W_hh[g, p]·W_hr[p, j].
            product(
                rec,
                Strided::rows(w.get(&format!("weight_hh{sfx}"))?, gh, p, 0),
                Strided::cols(w.get(&format!("weight_hr{sfx}"))?, p, h, 0),
                Out::rows(&w_prime, h),
            )?;
            tensors.insert(format!("weight_hh{sfx}"), w_prime);
        }
    }
    Ok(Some(GpuWeights::from_parts(cfg.clone(), tensors)))
}

/// The first step of each sequence in direction `dir` as runs of batch rows that share it:
/// (t, rows). Forward every sequence starts at t = 0; in reverse at its last valid step.
pub(crate) fn first_steps(lengths: &[usize], dir: usize) -> Vec<(usize, Range<usize>)> {
    let mut runs: Vec<(usize, Range<usize>)> = Vec::new();
    for (b, &len) in lengths.iter().enumerate() {
        let t = if dir == 0 { 0 } else { len - 1 };
        match runs.last_mut() {
            Some((t0, rows)) if *t0 == t && rows.end == b => rows.end = b + 1,
            _ => runs.push((t, b..b + 1)),
        }
    }
    runs
}

/// The rows of one direction of a layer whose output `[rows, D·width]` (sequence-major) or
/// `[B, T, D·width]` (`batch_first`, rows t·B + b) a projection reads or writes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DirRows {
    pub tl: usize,
    pub nb: usize,
    pub nd: usize,
    pub dir: usize,
    pub batch_first: bool,
}

impl DirRows {
    /// Rows `ts` (times) of direction `dir`'s `width` features, as the rows of a product.
    pub(crate) fn view<'a>(
        &self,
        t: &'a GpuTensor,
        width: usize,
        ts: &Range<usize>,
    ) -> Strided<'a> {
        let full = self.nd * width;
        let rows = ts.len() * self.nb;
        if self.batch_first {
            Strided {
                t,
                rows,
                k: width,
                inner: self.nb,
                s_inner: self.tl * full,
                s_outer: full,
                s_k: 1,
                off: ts.start * full + self.dir * width,
            }
        } else {
            Strided {
                t,
                rows,
                k: width,
                inner: rows.max(1),
                s_inner: full,
                s_outer: 0,
                s_k: 1,
                off: ts.start * self.nb * full + self.dir * width,
            }
        }
    }

    /// The same rows as where a product writes.
    pub(crate) fn out<'a>(&self, t: &'a GpuTensor, width: usize, ts: &Range<usize>) -> Out<'a> {
        let full = self.nd * width;
        if self.batch_first {
            Out {
                t,
                off: ts.start * full + self.dir * width,
                rs: self.tl * full,
                cs: 1,
                inner: self.nb,
                rs_outer: full,
                accumulate: false,
            }
        } else {
            Out {
                t,
                off: ts.start * self.nb * full + self.dir * width,
                rs: full,
                cs: 1,
                inner: usize::MAX,
                rs_outer: 0,
                accumulate: false,
            }
        }
    }
}

/// y = m·W_hrᵀ over the times `ts` of one direction: `m` the kernels' output (sequence-major,
/// D·H wide), `y` the layer's (D·P wide, batch-first where `y_rows` says).
#[allow(clippy::too_many_arguments)]
pub(crate) fn project_out(
    rec: &mut Recorder<'_>,
    w_hr: &GpuTensor,
    m: &GpuTensor,
    m_rows: DirRows,
    y: &GpuTensor,
    y_rows: DirRows,
    (h, p): (usize, usize),
    ts: Range<usize>,
) -> Result<()> {
    if ts.is_empty() {
        return Ok(());
    }
    product(
        rec,
        m_rows.view(m, h, &ts),
        Strided::rows(w_hr, p, h, 0),
        y_rows.out(y, p, &ts),
    )
}

/// gi (first step of each sequence) += h0·W_hhᵀ, for direction `dir` of state index `idx`:
/// `gi` holds `rows` rows of `gh` per direction.
#[allow(clippy::too_many_arguments)]
pub(crate) fn add_h0_term(
    rec: &mut Recorder<'_>,
    w_hh: &GpuTensor,
    h0: &GpuTensor,
    gi: &GpuTensor,
    lengths: &[usize],
    (idx, dir): (usize, usize),
    (rows, gh, p): (usize, usize, usize),
) -> Result<()> {
    let nb = lengths.len();
    for (t, bs) in first_steps(lengths, dir) {
        product(
            rec,
            Strided::rows(h0, bs.len(), p, (idx * nb + bs.start) * p),
            Strided::rows(w_hh, gh, p, 0),
            Out {
                off: (dir * rows + t * nb + bs.start) * gh,
                ..Out::rows(gi, gh).accumulate(true)
            },
        )?;
    }
    Ok(())
}

/// The gradient of the cell outputs from that of the layer's output over the times `ts` of
/// one direction: dm = dy·W_hr.
pub(crate) fn grad_to_cell(
    rec: &mut Recorder<'_>,
    w_hr: &GpuTensor,
    dy: &GpuTensor,
    dy_rows: DirRows,
    dm: &GpuTensor,
    (h, p): (usize, usize),
    ts: Range<usize>,
) -> Result<()> {
    if ts.is_empty() {
        return Ok(());
    }
    let dm_rows = DirRows {
        batch_first: false,
        ..dy_rows
    };
    product(
        rec,
        dy_rows.view(dy, p, &ts),
        Strided::cols(w_hr, p, h, 0),
        dm_rows.out(dm, h, &ts),
    )
}

/// dh0 = dG_first·W_hh for direction `dir` of state index `idx`: dG of the direction at
/// `doff` in `dg`, `gh` wide.
#[allow(clippy::too_many_arguments)]
pub(crate) fn dh0_from_first(
    rec: &mut Recorder<'_>,
    w_hh: &GpuTensor,
    dg: &GpuTensor,
    doff: usize,
    dh0: &GpuTensor,
    lengths: &[usize],
    (idx, dir): (usize, usize),
    (gh, p): (usize, usize),
) -> Result<()> {
    let nb = lengths.len();
    for (t, bs) in first_steps(lengths, dir) {
        product(
            rec,
            Strided::rows(dg, bs.len(), gh, doff + (t * nb + bs.start) * gh),
            Strided::cols(w_hh, gh, p, 0),
            Out {
                off: (idx * nb + bs.start) * p,
                ..Out::rows(dh0, p)
            },
        )?;
    }
    Ok(())
}

/// What the projection's weight gradients of one (layer, direction) read.
pub(crate) struct ProjGrads<'a> {
    pub w_hh: &'a GpuTensor,
    pub w_hr: &'a GpuTensor,
    /// dW' = Σ dGᵀ·m_prev, `[4H, H]`, as the plain backward computed it.
    pub dw_prime: &'a GpuTensor,
    pub dg: &'a GpuTensor,
    pub doff: usize,
    /// The layer's output gradient and its rows, masked where sequences are padded.
    pub dy: &'a GpuTensor,
    pub dy_rows: DirRows,
    pub lens_dev: &'a GpuTensor,
    /// The cell outputs m `[T, B, D·H]` and the final m_n `[L·D, B, H]`.
    pub m: &'a GpuTensor,
    pub m_n: &'a GpuTensor,
    pub h0: Option<&'a GpuTensor>,
    pub dh_n: Option<&'a GpuTensor>,
    pub lengths: &'a [usize],
    pub idx: usize,
}

/// dW_hh (+)= dW'·W_hrᵀ + dG_firstᵀ·h0 and dW_hr (+)= W_hhᵀ·dW' + Σ_t dyᵀ·m + dh_nᵀ·m_n (see
/// the module's notes); `add` accumulates into the gradients instead of overwriting them.
pub(crate) fn weight_grads(
    rec: &mut Recorder<'_>,
    g: &ProjGrads<'_>,
    (d_hh, d_hr): (&GpuTensor, &GpuTensor),
    (gh, h, p): (usize, usize, usize),
    add: bool,
) -> Result<()> {
    let DirRows {
        tl, nb, nd, dir, ..
    } = g.dy_rows;
    product(
        rec,
        Strided::rows(g.dw_prime, gh, h, 0),
        Strided::rows(g.w_hr, p, h, 0),
        Out::rows(d_hh, p).accumulate(add),
    )?;
    if let Some(h0) = g.h0 {
        for (t, bs) in first_steps(g.lengths, dir) {
            let n = bs.len();
            product(
                rec,
                Strided::cols(g.dg, n, gh, g.doff + (t * nb + bs.start) * gh),
                Strided::cols(h0, n, p, (g.idx * nb + bs.start) * p),
                Out::rows(d_hh, p).accumulate(true),
            )?;
        }
    }
    product(
        rec,
        Strided::cols(g.w_hh, gh, p, 0),
        Strided::cols(g.dw_prime, gh, h, 0),
        Out::rows(d_hr, h).accumulate(add),
    )?;
    // Σ_t dyᵀ·m: dy packed with its padded rows zero (upstream gradients may hold anything
    // there), then read transposed.
    let rows = tl * nb;
    let mask = SeqMask {
        lens: g.lens_dev,
        seq_n: nb,
        seq_outer: false,
        on_k: false,
    };
    let dy = pack_masked(rec, g.dy_rows.view(g.dy, p, &(0..tl)), mask)?;
    let dy_t = Strided {
        t: &dy.data,
        rows: p,
        k: rows,
        inner: p,
        s_inner: dy.ld,
        s_outer: 0,
        s_k: 1,
        off: 0,
    };
    let m_t = Strided {
        t: g.m,
        rows: h,
        k: rows,
        inner: h,
        s_inner: 1,
        s_outer: 0,
        s_k: nd * h,
        off: dir * h,
    };
    product(rec, dy_t, m_t, Out::rows(d_hr, h).accumulate(true))?;
    if let Some(dh_n) = g.dh_n {
        product(
            rec,
            Strided::cols(dh_n, nb, p, g.idx * nb * p),
            Strided::cols(g.m_n, nb, h, g.idx * nb * h),
            Out::rows(d_hr, h).accumulate(true),
        )?;
    }
    Ok(())
}
