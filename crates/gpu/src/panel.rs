//! The recurrent product of the split steps on CPU adapters (`rec_panel` in recurrent.wgsl):
//! `part = X·W` for the 32-row (or 16-, 8-, 4-row) blocks of a K-major operand read through a
//! uniform window, and `W` padded to rows of vec4. The forward steps multiply h_prev by `W_hhᵀ`, the
//! reverse steps dG by `W_hh`; the cell kernels sum the partial products in slot order and
//! finish the step. With subgroups of 8 the `_sg` variants share the window loads.

use bytemuck::{Pod, Zeroable};
use wgrnn_core::{CellKind, Result};

use crate::buffer::{DType, GpuTensor};
use crate::gemm::{Strided, pack_into, plain_ld};
use crate::pipeline::{Access, Kernel, WINDOW_FLOATS};
use crate::record::Recorder;
use crate::shaders::{DERIVED_PANEL_ROWS, Shader};

const REC_PANEL: Kernel = Kernel {
    shader: Shader::Recurrent,
    entry: "rec_panel",
    bindings: &[Access::Window, Access::Read, Access::ReadWrite],
};
/// `rec_panel` or its derivation for `rows`-row blocks (see `panel_rows` in shaders.rs), with
/// window loads shared across a subgroup of 8 when `subgroups` (see `Context::subgroups`).
fn panel_kernel(rows: usize, subgroups: bool) -> Kernel {
    let entry = match (rows, subgroups) {
        (32, false) => "rec_panel",
        (32, true) => "rec_panel_sg",
        (16, false) => "rec_panel16",
        (16, true) => "rec_panel16_sg",
        (8, false) => "rec_panel8",
        (8, true) => "rec_panel8_sg",
        (_, false) => "rec_panel4",
        (_, true) => "rec_panel4_sg",
    };
    let shader = if subgroups {
        Shader::RecurrentSubgroup
    } else {
        Shader::Recurrent
    };
    Kernel {
        shader,
        entry,
        ..REC_PANEL
    }
}
/// W_hh rounded through f16 in its own layout, for products with f16 weights (pack_f16.wgsl).
const ROUND_F16: Kernel = Kernel {
    shader: Shader::PackF16,
    entry: "round_f16",
    bindings: &[Access::Read, Access::ReadWrite],
};
/// Columns per invocation and the workgroup width of `rec_panel`.
const PANEL_COLS: usize = 8;
const PANEL_WG: usize = 8;
/// Workgroups a product dispatch should have at least (k is split over z until it does), so
/// that every core of a CPU adapter gets several.
const MIN_GROUPS: usize = 8;

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct PanelParams {
    batch: u32,
    cols: u32,
    row0: u32,
    kc: u32,
    k0: u32,
    k_sub: u32,
    ldw: u32,
    w_off: u32,
    cols4: u32,
    slot0: u32,
    _pad: [u32; 2],
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct RoundParams {
    n: u32,
    dst_off: u32,
    _pad: [u32; 2],
}

/// Geometry of one split-step product: `nb` rows in blocks of `rows` (32, or 16, 8, 4 with
/// `rec_panel16` …), each block K-major (`[k][rows]`, blocks `blk_stride` floats apart,
/// directions `dir_stride`), read in chunks of k that fit one uniform window, each chunk split
/// over z into slots of `part`: `part[dir][slot][b][cols4]` (vec4).
pub(crate) struct PanelPlan {
    pub nb: usize,
    pub rows: usize,
    pub blocks: usize,
    /// Floats per block and per direction of the windowed operand (multiples of 64, so every
    /// window offset is a multiple of 256 bytes).
    pub blk_stride: usize,
    pub dir_stride: usize,
    /// k per chunk (chunk offsets keep that alignment), chunks, z per chunk.
    kc: usize,
    chunks: usize,
    zs: usize,
    pub kdim: usize,
    pub cols: usize,
    /// Floats per row of the padded `W` (a multiple of 32).
    pub ldw: usize,
}

impl PanelPlan {
    /// Blocks of 32 rows, or of the fewest of 16, 8 and 4 that hold a smaller batch.
    pub fn new(nb: usize, kdim: usize, cols: usize) -> Self {
        let rows = DERIVED_PANEL_ROWS
            .into_iter()
            .rev()
            .find(|&r| nb <= r)
            .unwrap_or(32);
        let blocks = nb.div_ceil(rows);
        let blk_stride = (kdim * rows).div_ceil(64) * 64;
        let max_k = WINDOW_FLOATS / rows;
        let align = 64 / rows;
        let kc = kdim
            .div_ceil(kdim.div_ceil(max_k).max(1))
            .next_multiple_of(align)
            .max(align);
        let x_groups = cols.div_ceil(PANEL_COLS * PANEL_WG).max(1);
        let zs = MIN_GROUPS.div_ceil(x_groups).clamp(1, kc.div_ceil(32));
        Self {
            nb,
            rows,
            blocks,
            blk_stride,
            dir_stride: blocks * blk_stride,
            kc,
            chunks: kdim.div_ceil(kc).max(1),
            zs,
            kdim,
            cols,
            ldw: plain_ld(cols),
        }
    }

    /// Partial products per row: the slots the cell kernels sum.
    pub fn splits(&self) -> usize {
        self.chunks * self.zs
    }

    /// vec4 per row of `part`.
    pub fn cols4(&self) -> usize {
        self.cols.div_ceil(4)
    }

    /// `part` for `nd` directions.
    pub fn alloc_part(&self, rec: &Recorder<'_>, op: &'static str, nd: usize) -> Result<GpuTensor> {
        rec.ctx().alloc(
            op,
            "partial recurrent products",
            &[nd * self.splits() * self.nb * self.cols4() * 4],
            DType::F32,
        )
    }

    /// A windowed operand for `nd` directions, with the window's slack.
    pub fn alloc_panels(
        &self,
        rec: &Recorder<'_>,
        op: &'static str,
        nd: usize,
    ) -> Result<GpuTensor> {
        rec.ctx().alloc(
            op,
            "K-major row blocks",
            &[nd * self.dir_stride + WINDOW_FLOATS],
            DType::F32,
        )
    }

    /// `W` (kdim × cols, row `k` = `W(k, ·)`) of every direction, rows padded to `ldw`:
    /// `view(dir)` gives direction `dir`'s `Wᵀ` as a strided matrix (cols × kdim).
    pub fn pad_w<'a>(
        &self,
        rec: &mut Recorder<'_>,
        op: &'static str,
        nd: usize,
        view: impl Fn(usize) -> Strided<'a>,
    ) -> Result<GpuTensor> {
        let wp = rec.ctx().alloc(
            op,
            "padded recurrent weights",
            &[nd * self.kdim * self.ldw],
            DType::F32,
        )?;
        for dir in 0..nd {
            pack_into(rec, view(dir), &wp, dir * self.kdim * self.ldw, self.ldw)?;
        }
        Ok(wp)
    }

    /// One step's product: a dispatch per direction, block and chunk; `panels` holds the
    /// windowed operand of this step.
    pub fn record(
        &self,
        rec: &mut Recorder<'_>,
        nd: usize,
        panels: &GpuTensor,
        wp: &GpuTensor,
        part: &GpuTensor,
    ) -> Result<()> {
        let k_sub = self.kc.div_ceil(self.zs);
        let x_groups = self.cols.div_ceil(PANEL_COLS * PANEL_WG) as u32;
        for dir in 0..nd {
            for blk in 0..self.blocks {
                for chunk in 0..self.chunks {
                    let k0 = chunk * self.kc;
                    let p = PanelParams {
                        batch: self.nb as u32,
                        cols: self.cols as u32,
                        row0: (blk * self.rows) as u32,
                        kc: self.kc.min(self.kdim - k0) as u32,
                        k0: k0 as u32,
                        k_sub: k_sub as u32,
                        ldw: self.ldw as u32,
                        w_off: (dir * self.kdim * self.ldw) as u32,
                        cols4: self.cols4() as u32,
                        slot0: ((dir * self.chunks + chunk) * self.zs) as u32,
                        _pad: [0; 2],
                    };
                    let window =
                        4 * (dir * self.dir_stride + blk * self.blk_stride + k0 * self.rows);
                    let kernel = panel_kernel(self.rows, rec.ctx().subgroups());
                    rec.dispatch_windowed(
                        kernel,
                        &p,
                        &[panels, wp, part],
                        &[window as u64],
                        [x_groups, 1, self.zs as u32],
                    )?;
                }
            }
        }
        Ok(())
    }
}

/// `W_hh` of one direction (its G·H × H floats, PyTorch layout) as the split steps compute
/// with it: rounded through f16 when the context stores weights as f16 (the same values the
/// other kernels unpack), else as is. `dst` receives it at `off`.
pub(crate) fn w_hh_rows(
    rec: &mut Recorder<'_>,
    w_hh: &GpuTensor,
    cell: CellKind,
    h: usize,
    dst: &GpuTensor,
    off: usize,
) -> Result<()> {
    let n = cell.gates() * h * h;
    if rec.ctx().f16_weights() {
        let p = RoundParams {
            n: n as u32,
            dst_off: off as u32,
            _pad: [0; 2],
        };
        let groups = n.div_ceil(64).min(4096) as u32;
        rec.dispatch(ROUND_F16, &p, &[w_hh, dst], [groups, 1, 1])
    } else {
        rec.copy(w_hh, 0, dst, off, n);
        Ok(())
    }
}
