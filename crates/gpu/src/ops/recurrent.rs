//! The recurrent product of the split steps on CPU adapters (`rec_panel` in recurrent.wgsl):
//! `part = X·W` for the 32-row (or 16-, 8-, 4-row) blocks of a K-major operand read through a
//! uniform window, and `W` padded to rows of vec4. The forward steps multiply h_prev by `W_hhᵀ`, the
//! reverse steps dG by `W_hh`; the cell kernels sum the partial products in slot order and
//! finish the step. With subgroups of 8 the `_sg` variants share the window loads.

use std::ops::Range;

use wgrnn_core::{Error, Result};

use crate::ops::matmul::{BLOCK, plain_ld};
use crate::runtime::context::Context;
use crate::runtime::pipeline::{Access, Kernel, WINDOW_FLOATS};
use crate::runtime::record::Recorder;
use crate::runtime::shaders::{DERIVED_PANEL_ROWS, Shader};
use crate::runtime::tensor::{DType, GpuTensor};
use crate::runtime::uniforms::recurrent::{GatherParams, PanelParams};

const REC_PANEL: Kernel = Kernel {
    shader: Shader::Recurrent,
    entry: "rec_panel",
    bindings: &[Access::Window, Access::Read, Access::ReadWrite],
};
/// `rec_panel` or its instance for `rows`-row blocks (see `rec_panel_kernel` in shaders.rs), with
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
/// The dG rows of the split reverse products laid out K-major per block of rows, for the
/// product that reads them through a uniform window (see [`PanelPlan::gather`]).
const REC_GATHER: Kernel = Kernel {
    shader: Shader::Recurrent,
    entry: "rec_gather",
    bindings: &[Access::Read, Access::Read, Access::ReadWrite],
};
/// Columns per invocation and the workgroup width of `rec_panel`.
const PANEL_COLS: usize = 8;
const PANEL_WG: usize = 8;
/// Workgroups a product dispatch should have at least (k is split over z until it does), so
/// that every core of a CPU adapter gets several.
const MIN_GROUPS: usize = 8;

/// One chunk of columns of a direction's padded `W`: columns `col0..col0 + cols` of it, rows
/// padded to `ldw` floats, in a buffer of its own.
pub(crate) struct WChunk {
    pub dir: usize,
    pub col0: usize,
    pub cols: usize,
    pub ldw: usize,
    pub w: GpuTensor,
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
    /// Floats per row of `W` padded whole (a multiple of the GEMMs' block).
    ldw: usize,
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

    /// Columns per chunk of the padded `W`: all of them, or the most multiples of the GEMMs'
    /// block (so that only the last chunk pads) whose `kdim` rows fit one binding.
    fn chunk_cols(&self, ctx: &Context, op: &'static str) -> Result<usize> {
        let row_bytes = (self.kdim.max(1) * 4) as u64;
        let blocks = ctx.binding_limit() / (row_bytes * BLOCK as u64);
        if blocks == 0 {
            return Err(Error::TooLarge {
                op,
                arg: "padded recurrent weights".into(),
                size: row_bytes * BLOCK as u64,
                unit: "bytes per chunk of columns",
                limit_name: "max_storage_buffer_binding_size",
                limit: ctx.binding_limit(),
            });
        }
        Ok(self.ldw.min(blocks as usize * BLOCK))
    }

    /// `W` (kdim × cols, row `k` = `W(k, ·)`) of every direction in chunks of columns, rows
    /// padded: `fill(rec, dir, cols, dst, ldw)` packs columns `cols` of direction `dir` into
    /// `dst` (`dst[k·ldw + c - cols.start]`). One buffer for all of `W` would bind more than
    /// `W` itself (the padding, and every direction at once), past the limit for the largest
    /// models that fit the device.
    pub fn pad_w(
        &self,
        rec: &mut Recorder<'_>,
        op: &'static str,
        nd: usize,
        mut fill: impl FnMut(&mut Recorder<'_>, usize, Range<usize>, &GpuTensor, usize) -> Result<()>,
    ) -> Result<Vec<WChunk>> {
        let step = self.chunk_cols(rec.ctx(), op)?;
        let mut chunks = Vec::new();
        for dir in 0..nd {
            for col0 in (0..self.cols).step_by(step) {
                let cols = step.min(self.cols - col0);
                let ldw = plain_ld(cols);
                let w = rec.ctx().alloc(
                    op,
                    "padded recurrent weights",
                    &[self.kdim * ldw],
                    DType::F32,
                )?;
                fill(rec, dir, col0..col0 + cols, &w, ldw)?;
                chunks.push(WChunk {
                    dir,
                    col0,
                    cols,
                    ldw,
                    w,
                });
            }
        }
        Ok(chunks)
    }

    /// `rec_gather`'s parameters for dG laid out `dg_dir` floats per direction, a GRU's dGh
    /// `dgh_off` floats into each (the reverse steps' product: k = G·H).
    pub fn gather_params(&self, dg_dir: usize, dgh_off: usize) -> GatherParams {
        GatherParams {
            batch: self.nb as u32,
            kdim: self.kdim as u32,
            step: 0,
            last: 0,
            dg_dir: dg_dir as u32,
            dgh_off: dgh_off as u32,
            blk_stride: self.blk_stride as u32,
            dir_stride: self.dir_stride as u32,
            rows: self.rows as u32,
            ..Default::default()
        }
    }

    /// Gathers the dG rows that reverse step `step` (with `last`, the final pass) multiplies into
    /// `panels`, the windowed operand of [`PanelPlan::record`], for `nd` directions: `bufs` are
    /// the lengths, dG and `panels`.
    pub fn gather(
        &self,
        rec: &mut Recorder<'_>,
        p: &GatherParams,
        step: usize,
        last: bool,
        nd: usize,
        bufs: [&GpuTensor; 3],
    ) -> Result<()> {
        let p = GatherParams {
            step: step as u32,
            last: last as u32,
            ..*p
        };
        let groups = [
            (self.kdim * self.rows).div_ceil(64) as u32,
            self.blocks as u32,
            nd as u32,
        ];
        rec.dispatch(REC_GATHER, &p, &bufs, groups)
    }

    /// One step's product: a dispatch per direction, block, chunk of k and chunk of `W`'s
    /// columns; `panels` holds the windowed operand of this step.
    pub fn record(
        &self,
        rec: &mut Recorder<'_>,
        panels: &GpuTensor,
        wp: &[WChunk],
        part: &GpuTensor,
    ) -> Result<()> {
        let k_sub = self.kc.div_ceil(self.zs);
        let kernel = panel_kernel(self.rows, rec.ctx().subgroups());
        for c in wp {
            let x_groups = c.cols.div_ceil(PANEL_COLS * PANEL_WG) as u32;
            for blk in 0..self.blocks {
                for chunk in 0..self.chunks {
                    let k0 = chunk * self.kc;
                    let p = PanelParams {
                        batch: self.nb as u32,
                        cols: c.cols as u32,
                        row0: (blk * self.rows) as u32,
                        kc: self.kc.min(self.kdim - k0) as u32,
                        k0: k0 as u32,
                        k_sub: k_sub as u32,
                        ldw: c.ldw as u32,
                        w_off: 0,
                        cols4: self.cols4() as u32,
                        slot0: ((c.dir * self.chunks + chunk) * self.zs) as u32,
                        q_base: (c.col0 / 4) as u32,
                        chunk4: c.cols.div_ceil(4) as u32,
                    };
                    let window =
                        4 * (c.dir * self.dir_stride + blk * self.blk_stride + k0 * self.rows);
                    rec.dispatch_windowed(
                        kernel,
                        &p,
                        &[panels, &c.w, part],
                        &[window as u64],
                        [x_groups, 1, self.zs as u32],
                    )?;
                }
            }
        }
        Ok(())
    }
}
