//! The buffers of the split steps ([`StepPath::Split`](super::path::StepPath::Split)): `W_hh`
//! padded for the windowed product `rec_panel` (see `PanelPlan`), forward and reverse, and the
//! forward's h windows.

use wgrnn_core::{Result, RnnConfig};

use super::kernels::two_phase;
use crate::ops::matmul::{Strided, pack_into};
use crate::ops::pack::{by_unit, w_hh_rows};
use crate::ops::recurrent::{PanelPlan, WChunk};
use crate::runtime::record::Recorder;
use crate::runtime::tensor::{DType, GpuTensor};
use crate::runtime::weights::GpuWeights;

/// Which product of the split steps a padded `W_hh` is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Product {
    /// The forward's `h_prev·W_hhᵀ`: k = H, a chunk's column `4j + g` is row `g·H + j` of
    /// `W_hh` (a GRU's fourth column zero), Elman's column `j` row `j`.
    Forward,
    /// The reverse steps' `dG·W_hh`: k = G·H, the columns those of `W_hh`.
    Reverse,
    /// A two-phase cell's second reverse product, the reset-before GRU's `dn·W_hn`: k = H,
    /// rows 2H.. of `W_hh`.
    ReverseMid,
}

/// `W_hh` of every direction of `layer` as the split steps' `product` reads it, in chunks of
/// columns (see [`PanelPlan::pad_w`]), rounded through f16 where weights are stored so. The
/// forward gathers each chunk's rows into a buffer no larger than the chunk, the reverse
/// rounds a copy no larger than one direction's `W_hh`; then each chunk is padded.
pub(crate) fn split_w_hh(
    rec: &mut Recorder<'_>,
    op: &'static str,
    w: &GpuWeights<RnnConfig>,
    layer: usize,
    plan: &PanelPlan,
    product: Product,
) -> Result<Vec<WChunk>> {
    let cfg = w.config();
    // The gathers' scratch buffer, kept across chunks, with the direction whose rounded
    // `W_hh` it holds (reverse only).
    let mut scratch: Option<(usize, GpuTensor)> = None;
    plan.pad_w(rec, op, cfg.num_directions(), |rec, dir, cols, dst, ldw| {
        let w_hh = w.get(&format!("weight_hh{}", RnnConfig::suffix(layer, dir)))?;
        match product {
            Product::Forward => forward_chunk(rec, op, cfg, w_hh, cols, &mut scratch, dst, ldw),
            Product::Reverse | Product::ReverseMid => {
                let rows = match product {
                    Product::ReverseMid => 2 * cfg.hidden_size..3 * cfg.hidden_size,
                    _ => 0..cfg.cell.gates() * cfg.hidden_size,
                };
                let src = (w_hh, dir, rows);
                reverse_chunk(rec, op, cfg, src, cols, &mut scratch, dst, ldw)
            }
        }
    })
}

/// A chunk of the forward's padded `W_hhᵀ`: the gate rows of units `cols / 4` (Elman: units
/// `cols`) gathered into `scratch` (grown as needed), then packed into `dst`.
#[allow(clippy::too_many_arguments)]
fn forward_chunk(
    rec: &mut Recorder<'_>,
    op: &'static str,
    cfg: &RnnConfig,
    w_hh: &GpuTensor,
    cols: std::ops::Range<usize>,
    scratch: &mut Option<(usize, GpuTensor)>,
    dst: &GpuTensor,
    ldw: usize,
) -> Result<()> {
    let (h, g) = (cfg.hidden_size, cfg.cell.gates());
    let g4 = if by_unit(cfg.cell) { 1 } else { 4 };
    let (u0, units) = (cols.start / g4, cols.len() / g4);
    let n = g4 * units * h;
    let tmp = match scratch.take() {
        Some((_, t)) if t.numel() >= n => t,
        _ => rec.ctx().alloc(op, "W_hh rows", &[n], DType::F32)?,
    };
    if g < g4 {
        rec.clear(&tmp);
    }
    for gate in 0..g {
        let src = (gate * h + u0) * h;
        w_hh_rows(rec, w_hh, src, units * h, &tmp, gate * units * h)?;
    }
    let view = Strided {
        t: &tmp,
        rows: g4 * units,
        k: h,
        inner: g4,
        s_inner: units * h,
        s_outer: h,
        s_k: 1,
        off: 0,
    };
    pack_into(rec, view, dst, 0, ldw)?;
    *scratch = Some((0, tmp));
    Ok(())
}

/// A chunk of the reverse steps' padded `W_hh`: the columns `cols` of the rows `rows` of
/// `src` = (`W_hh`, its direction, rows), from `W_hh` itself, or with f16 weights from its
/// rounded copy in `scratch` (made once per direction).
#[allow(clippy::too_many_arguments)]
fn reverse_chunk(
    rec: &mut Recorder<'_>,
    op: &'static str,
    cfg: &RnnConfig,
    (w_hh, dir, rows): (&GpuTensor, usize, std::ops::Range<usize>),
    cols: std::ops::Range<usize>,
    scratch: &mut Option<(usize, GpuTensor)>,
    dst: &GpuTensor,
    ldw: usize,
) -> Result<()> {
    let (h, gh) = (cfg.hidden_size, cfg.cell.gates() * cfg.hidden_size);
    let src = if rec.ctx().f16_weights() {
        if scratch.as_ref().is_none_or(|(d, _)| *d != dir) {
            let t = match scratch.take() {
                Some((_, t)) => t,
                None => rec.ctx().alloc(op, "W_hh rows", &[gh * h], DType::F32)?,
            };
            w_hh_rows(rec, w_hh, 0, gh * h, &t, 0)?;
            *scratch = Some((dir, t));
        }
        scratch.as_ref().map_or(w_hh, |(_, t)| t)
    } else {
        w_hh
    };
    let view = Strided {
        rows: cols.len(),
        inner: cols.len(),
        ..Strided::cols(src, rows.len(), h, rows.start * h + cols.start)
    };
    pack_into(rec, view, dst, 0, ldw)
}

/// The forward split steps' two h windows, padded `W_hh` and partial products, and a
/// two-phase cell's window of its second product's operand (r ⊙ h).
pub(crate) struct SplitBufs {
    pub ha: GpuTensor,
    pub hb: GpuTensor,
    pub wp: Vec<WChunk>,
    pub part: GpuTensor,
    pub mid: Option<GpuTensor>,
}

impl SplitBufs {
    /// The buffers of `layer`'s forward split steps, with `h0` (or zeros) in the first window.
    /// The h windows are two buffers `[dir][B / rows][H][rows]`, each block of 32 rows (16, 8
    /// or 4 for smaller batches; see PanelPlan) K-major as `pack` lays them out, padded to 64
    /// floats, that the steps write and read in turn. The product multiplies them by `W_hhᵀ`
    /// with each unit's gates side by side (GRU's three padded to four), so that each vec4 of
    /// it is one accumulator of finish(); Elman's units in order.
    pub(crate) fn new(
        rec: &mut Recorder<'_>,
        op: &'static str,
        w: &GpuWeights<RnnConfig>,
        layer: usize,
        plan: &PanelPlan,
        h0: Option<&GpuTensor>,
    ) -> Result<Self> {
        let nd = w.config().num_directions();
        let ha = plan.alloc_panels(rec, op, nd)?;
        let hb = plan.alloc_panels(rec, op, nd)?;
        rec.clear(&ha);
        if let Some(h0) = h0 {
            pack_h0(rec, w.config(), layer, plan, h0, &ha)?;
        }
        let wp = split_w_hh(rec, op, w, layer, plan, Product::Forward)?;
        let part = plan.alloc_part(rec, op, nd)?;
        // Laid out as the h windows; each step's first pass writes every row of the batch
        // before its second product reads them.
        let mid = two_phase(w.config())
            .then(|| plan.alloc_panels(rec, op, nd))
            .transpose()?;
        Ok(Self {
            ha,
            hb,
            wp,
            part,
            mid,
        })
    }
}

/// h0 `[layers·dirs, B, H]` of `layer` → `ha[dir][b / rows][j][b % rows]`.
fn pack_h0(
    rec: &mut Recorder<'_>,
    cfg: &RnnConfig,
    layer: usize,
    plan: &PanelPlan,
    h0: &GpuTensor,
    ha: &GpuTensor,
) -> Result<()> {
    let (h, nd, nb, r) = (cfg.hidden_size, cfg.num_directions(), plan.nb, plan.rows);
    for dir in 0..nd {
        let idx = layer * nd + dir;
        for blk in 0..plan.blocks {
            let rows = (nb - r * blk).min(r);
            let h0_rows = Strided {
                off: (idx * nb + r * blk) * h,
                ..Strided::rows(h0, rows, h, 0)
            };
            let off = dir * plan.dir_stride + blk * plan.blk_stride;
            pack_into(rec, h0_rows, ha, off, r)?;
        }
    }
    Ok(())
}

/// The reverse split steps' partial products, dG blocks (the windowed operand) and padded
/// `W_hh`, and a two-phase cell's second product.
pub(crate) struct SplitBack {
    pub part: GpuTensor,
    pub panels: GpuTensor,
    pub wp: Vec<WChunk>,
    pub mid: Option<SplitMid>,
}

/// A two-phase cell's second reverse product (`Product::ReverseMid`): its plan (k = H), the
/// window its first pass writes, its padded `W_hh` rows and partial products.
pub(crate) struct SplitMid {
    pub plan: PanelPlan,
    pub panels: GpuTensor,
    pub wp: Vec<WChunk>,
    pub part: GpuTensor,
}

impl SplitBack {
    /// The buffers of `layer`'s reverse split steps.
    pub(crate) fn new(
        rec: &mut Recorder<'_>,
        op: &'static str,
        w: &GpuWeights<RnnConfig>,
        layer: usize,
        plan: &PanelPlan,
    ) -> Result<Self> {
        let cfg = w.config();
        let nd = cfg.num_directions();
        let part = plan.alloc_part(rec, op, nd)?;
        let panels = plan.alloc_panels(rec, op, nd)?;
        let wp = split_w_hh(rec, op, w, layer, plan, Product::Reverse)?;
        let mid = if two_phase(cfg) {
            let h = cfg.hidden_size;
            let plan = PanelPlan::new(plan.nb, h, h);
            Some(SplitMid {
                panels: plan.alloc_panels(rec, op, nd)?,
                wp: split_w_hh(rec, op, w, layer, &plan, Product::ReverseMid)?,
                part: plan.alloc_part(rec, op, nd)?,
                plan,
            })
        } else {
            None
        };
        Ok(Self {
            part,
            panels,
            wp,
            mid,
        })
    }
}
