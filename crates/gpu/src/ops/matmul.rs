//! Matrix products on the device: operands are first packed K-major with padded rows (one
//! memory pass), then a register-blocked kernel runs its loop with no bounds checks:
//! `gemm_tiled` on GPUs, `gemm_panel` (left operand through uniform windows) on CPU adapters.
//! The hoisted input projection, the linear layer and attention's projections all go through
//! `gemm`.

use wgrnn_core::{Error, ParamLayout, Result};

use crate::runtime::context::Context;
use crate::runtime::pipeline::{Access, Kernel, WINDOW_FLOATS};
use crate::runtime::record::{Recorder, fold_y};
use crate::runtime::recording::Record;
use crate::runtime::shaders::Shader;
use crate::runtime::tensor::{DType, GpuTensor, OnContext, expect_f32, u32_of};
use crate::runtime::uniforms::matmul::{GemmParams, PackParams};

const PACK: Kernel = Kernel {
    shader: Shader::Matmul,
    entry: "pack_kmajor",
    bindings: &[Access::Read, Access::ReadWrite],
};
const PACK_MASKED: Kernel = Kernel {
    entry: "pack_kmajor_masked",
    bindings: &[Access::Read, Access::ReadWrite, Access::Read],
    ..PACK
};
const GEMM_BINDINGS: &[Access] = &[Access::Read, Access::Read, Access::Read, Access::ReadWrite];
const GEMM_PANEL: Kernel = Kernel {
    shader: Shader::Matmul,
    entry: "gemm_panel",
    bindings: &[
        Access::Window,
        Access::Read,
        Access::Read,
        Access::ReadWrite,
    ],
};
/// `gemm_panel` sharing its window loads across a subgroup of 8 (see [`Context::subgroups`]).
const GEMM_PANEL_SG: Kernel = Kernel {
    shader: Shader::MatmulSubgroup,
    entry: "gemm_panel_sg",
    ..GEMM_PANEL
};

/// Rows of plainly packed operands are padded to this (a multiple of every register block).
pub(crate) const BLOCK: usize = 32;
/// Rows per panel of `gemm_panel`'s left operand, and its columns per invocation.
const PANEL: usize = 64;
const PANEL_COLS: usize = 8;
/// `gemm_panel`'s workgroup: one SIMD vector of invocations on a CPU adapter.
const PANEL_WG: usize = 8;

/// The register blocking of the GEMM and step kernels, an adapter tuning.
pub use crate::runtime::tuning::GemmBlock;

/// The storage-only GEMM kernel of `block`, whose invocations each compute 8x8 of C in
/// workgroups of 8x8 invocations; `None` where `gemm_panel` runs instead.
fn storage_kernel(block: GemmBlock) -> Option<Kernel> {
    let entry = match block {
        GemmBlock::Tiled => "gemm_tiled",
        GemmBlock::B8 => "gemm_kmajor",
        GemmBlock::Panel => return None,
    };
    Some(Kernel {
        shader: Shader::Matmul,
        entry,
        bindings: GEMM_BINDINGS,
    })
}

/// A matrix `X(r, k)` read from a device tensor with strides: element (r, k) is at
/// `off + (r / inner) * s_outer + (r % inner) * s_inner + k * s_k`. `r` is the free index (a row
/// of the product), `k` the summed one.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Strided<'a> {
    pub t: &'a GpuTensor,
    pub rows: usize,
    pub k: usize,
    pub inner: usize,
    pub s_inner: usize,
    pub s_outer: usize,
    pub s_k: usize,
    pub off: usize,
}

impl<'a> Strided<'a> {
    /// A row-major `rows × k` matrix: X(r, k) = t[off + r·k_len + k].
    pub fn rows(t: &'a GpuTensor, rows: usize, k: usize, off: usize) -> Self {
        Self {
            t,
            rows,
            k,
            inner: rows.max(1),
            s_inner: k,
            s_outer: 0,
            s_k: 1,
            off,
        }
    }

    /// The transpose of a row-major `k × cols` matrix: X(r, k) = t[off + k·cols + r].
    pub fn cols(t: &'a GpuTensor, k: usize, cols: usize, off: usize) -> Self {
        Self {
            t,
            rows: cols,
            k,
            inner: cols.max(1),
            s_inner: 1,
            s_outer: 0,
            s_k: cols,
            off,
        }
    }
}

/// Which rows of a [`Strided`] matrix are padding, to pack as zeros without reading them: the
/// sequence row q (the matrix row, or with `on_k` the summed index) is step t of sequence s,
/// `q = t·seq_n + s` (sequence-major, `seq_outer` false) or `q = s·seq_n + t`, and is data only
/// where `t < lens[s]` (`lens`: u32 per sequence).
#[derive(Clone, Copy, Debug)]
pub(crate) struct SeqMask<'a> {
    pub lens: &'a GpuTensor,
    pub seq_n: usize,
    pub seq_outer: bool,
    pub on_k: bool,
}

/// A packed K-major operand: `data[k * ld + r]`, rows padded to `ld` with zeros; or, when
/// `panels`, `data[(r / PANEL)·k·PANEL + k·PANEL + r % PANEL]` followed by one window of slack.
#[derive(Clone, Debug)]
pub(crate) struct Packed {
    pub data: GpuTensor,
    pub ld: usize,
    pub rows: usize,
    pub k: usize,
    pub panels: bool,
}

impl Packed {
    /// This plainly packed operand as a strided matrix, to pack again in panels.
    fn view(&self) -> Strided<'_> {
        Strided {
            t: &self.data,
            rows: self.rows,
            k: self.k,
            inner: self.rows.max(1),
            s_inner: 1,
            s_outer: 0,
            s_k: self.ld,
            off: 0,
        }
    }
}

/// Packs `x` plainly K-major: any operand of [`gemm`], and the layout other kernels read.
pub(crate) fn pack(rec: &mut Recorder<'_>, x: Strided<'_>) -> Result<Packed> {
    pack_as(rec, x, false, None)
}

/// [`pack`] with the rows (or columns) that `mask` marks as padding zero.
pub(crate) fn pack_masked(
    rec: &mut Recorder<'_>,
    x: Strided<'_>,
    mask: SeqMask<'_>,
) -> Result<Packed> {
    pack_as(rec, x, false, Some(mask))
}

/// Packs the left operand of [`gemm`] in the layout its kernel reads best (panels on CPU
/// adapters), saving `gemm` a second pass. Only `gemm` may read the result.
pub(crate) fn pack_lhs(rec: &mut Recorder<'_>, x: Strided<'_>) -> Result<Packed> {
    pack_lhs_masked(rec, x, None)
}

/// [`pack_lhs`] with the rows (or columns) that `mask` marks as padding zero.
pub(crate) fn pack_lhs_masked(
    rec: &mut Recorder<'_>,
    x: Strided<'_>,
    mask: Option<SeqMask<'_>>,
) -> Result<Packed> {
    let panels = storage_kernel(rec.ctx().gemm_block()).is_none();
    pack_as(rec, x, panels, mask)
}

/// The floats of the smallest left operand of width `k` ([`pack_lhs`] of one row): on CPU
/// adapters one panel of 64 rows and the uniform window read past its end, whatever the batch.
pub(crate) fn lhs_min_floats(k: usize) -> usize {
    PANEL.saturating_mul(k).saturating_add(WINDOW_FLOATS)
}

/// The row length of `rows` rows packed plainly.
pub(crate) fn plain_ld(rows: usize) -> usize {
    rows.div_ceil(BLOCK).max(1) * BLOCK
}

/// The dense and attention products pack each weight matrix `[r, c]` both ways, forward and
/// for the gradients: `[c, r]` and `[r, c]` with the packed axis padded to the GEMM block; and
/// their left operands, activations or gradients as wide as `r` or `c`, take a panel of rows
/// even for a batch of one (`lhs_min_floats`).
pub(crate) fn check_packed_matrices<C: ParamLayout>(
    ctx: &Context,
    op: &'static str,
    cfg: &C,
) -> Result<()> {
    for spec in cfg.param_specs() {
        if let [r, c] = spec.shape[..] {
            let name = &spec.name;
            ctx.check_fits_in(op, &format!("`{name}` packed by rows"), &[c, plain_ld(r)])?;
            let by_cols = format!("`{name}` packed by columns");
            ctx.check_fits_in(op, &by_cols, &[r, plain_ld(c)])?;
            let lhs = format!("a left operand as wide as `{name}` (one row, packed)");
            ctx.check_fits_in(op, &lhs, &[lhs_min_floats(r.max(c))])?;
        }
    }
    Ok(())
}

/// Packs `x` plainly K-major into `dst` from element `off` on: `dst[off + k·ld + r]`, rows
/// `x.rows..ld` zero. `ld` must hold the rows and be a multiple of 4, so that rows stay whole
/// vec4 (the split steps' h windows of 4-row blocks; GEMM operands use multiples of 8).
pub(crate) fn pack_into(
    rec: &mut Recorder<'_>,
    x: Strided<'_>,
    dst: &GpuTensor,
    off: usize,
    ld: usize,
) -> Result<()> {
    if ld < x.rows || !ld.is_multiple_of(4) {
        return Err(Error::InvalidArgument {
            op: "pack",
            arg: "ld",
            reason: format!("{ld} cannot hold {} rows in multiples of 4", x.rows),
        });
    }
    if off + ld * x.k > dst.numel() {
        return Err(Error::InvalidArgument {
            op: "pack",
            arg: "dst",
            reason: format!(
                "{} elements cannot hold {} from {off}",
                dst.numel(),
                ld * x.k
            ),
        });
    }
    pack_kernel(rec, x, dst, ld, ld, off, None)
}

fn pack_as(
    rec: &mut Recorder<'_>,
    x: Strided<'_>,
    panels: bool,
    mask: Option<SeqMask<'_>>,
) -> Result<Packed> {
    let ld = if panels {
        x.rows.div_ceil(PANEL).max(1) * PANEL
    } else {
        plain_ld(x.rows)
    };
    let shape = if panels {
        vec![ld * x.k + WINDOW_FLOATS]
    } else {
        vec![x.k.max(1), ld]
    };
    let data = rec
        .ctx()
        .alloc("pack", "packed operand", &shape, DType::F32)?;
    pack_kernel(rec, x, &data, ld, if panels { PANEL } else { ld }, 0, mask)?;
    Ok(Packed {
        data,
        ld,
        rows: x.rows,
        k: x.k,
        panels,
    })
}

/// `pack_kmajor` of `x` into `dst` with padded row length `ld`, `pr` rows per panel; with a
/// mask `pack_kmajor_masked`, so that calls without padding pay for no length lookup.
fn pack_kernel(
    rec: &mut Recorder<'_>,
    x: Strided<'_>,
    dst: &GpuTensor,
    ld: usize,
    pr: usize,
    dst_off: usize,
    mask: Option<SeqMask<'_>>,
) -> Result<()> {
    let params = PackParams {
        rows: u32_of("pack", "rows", x.rows)?,
        cols: u32_of("pack", "k", x.k)?,
        ld: u32_of("pack", "ld", ld)?,
        m_inner: u32_of("pack", "inner", x.inner)?,
        s_inner: u32_of("pack", "stride", x.s_inner)?,
        s_outer: u32_of("pack", "stride", x.s_outer)?,
        s_k: u32_of("pack", "stride", x.s_k)?,
        src_off: u32_of("pack", "offset", x.off)?,
        pr: pr as u32,
        dst_off: u32_of("pack", "offset", dst_off)?,
        mask_on_k: mask.is_some_and(|m| m.on_k) as u32,
        seq_n: u32_of("pack", "sequences", mask.map_or(0, |m| m.seq_n))?,
        seq_outer: mask.is_some_and(|m| m.seq_outer) as u32,
        ..Default::default()
    };
    // k runs over y (4 per workgroup) and, past FOLD workgroups, over z.
    let groups = fold_y(ld.div_ceil(64), x.k.div_ceil(4));
    match mask {
        None => rec.dispatch(PACK, &params, &[x.t, dst], groups),
        Some(m) => rec.dispatch(PACK_MASKED, &params, &[x.t, dst, m.lens], groups),
    }
}

/// Where and how [`gemm`] writes: `C[m, n]` at `off + (m / inner)·rs_outer + (m % inner)·rs +
/// n·cs`, overwritten or accumulated. `inner` lets rows `t·B + b` land in a batch-first tensor.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Out<'a> {
    pub t: &'a GpuTensor,
    pub off: usize,
    pub rs: usize,
    pub cs: usize,
    pub inner: usize,
    pub rs_outer: usize,
    pub accumulate: bool,
}

impl<'a> Out<'a> {
    /// A row-major `· × n` matrix, overwritten.
    pub fn rows(t: &'a GpuTensor, n: usize) -> Self {
        Self {
            t,
            off: 0,
            rs: n,
            cs: 1,
            inner: usize::MAX,
            rs_outer: 0,
            accumulate: false,
        }
    }

    pub fn accumulate(mut self, yes: bool) -> Self {
        self.accumulate = yes;
        self
    }
}

/// `C[m, n] (+)= Σ_k A(m, k)·B(n, k) (+ bias[n])` for packed `a` (M × K) and `b` (N × K).
pub(crate) fn gemm(
    rec: &mut Recorder<'_>,
    a: &Packed,
    b: &Packed,
    bias: Option<&GpuTensor>,
    out: Out<'_>,
) -> Result<()> {
    if a.k != b.k {
        return Err(Error::InvalidArgument {
            op: "gemm",
            arg: "b",
            reason: format!("inner size {} differs from a's {}", b.k, a.k),
        });
    }
    let params = GemmParams {
        m: u32_of("gemm", "m", a.rows)?,
        n: u32_of("gemm", "n", b.rows)?,
        k: u32_of("gemm", "k", a.k)?,
        lda: a.ld as u32,
        ldb: b.ld as u32,
        c_rs: u32_of("gemm", "row stride", out.rs)?,
        c_cs: u32_of("gemm", "column stride", out.cs)?,
        c_off: u32_of("gemm", "offset", out.off)?,
        accumulate: out.accumulate as u32,
        has_bias: bias.is_some() as u32,
        c_inner: out.inner.min(u32::MAX as usize).max(1) as u32,
        c_rs_outer: u32_of("gemm", "outer row stride", out.rs_outer)?,
        m0: 0,
        k0: 0,
        a_stride: 0,
        ..Default::default()
    };
    let has_bias = bias.is_some();
    // Without a bias, bind `a` again in its place (read-only twice is allowed); it is not read.
    let bias = bias.unwrap_or(&a.data);
    if b.panels {
        return Err(Error::InvalidArgument {
            op: "gemm",
            arg: "b",
            reason: "packed in panels (pack_lhs packs left operands only)".into(),
        });
    }
    let Some(kernel) = storage_kernel(rec.ctx().gemm_block()) else {
        return gemm_panel(rec, a, b, bias, has_bias, out, params);
    };
    if a.panels {
        return Err(Error::InvalidArgument {
            op: "gemm",
            arg: "a",
            reason: "packed in panels for another adapter's kernel".into(),
        });
    }
    // The storage kernels loop over all of k (`gemm_tiled` in steps of 8, each 11 iterations);
    // `gemm_panel` takes k in window-sized chunks.
    let trips = match rec.ctx().gemm_block() {
        GemmBlock::Tiled => 11 * a.k.div_ceil(8) as u64 + 72,
        _ => a.k as u64 + 72,
    };
    rec.ctx().check_loop("gemm", "k", trips)?;
    let groups = [b.rows.div_ceil(64) as u32, a.rows.div_ceil(64) as u32, 1];
    rec.dispatch(kernel, &params, &[&a.data, &b.data, bias, out.t], groups)
}

/// [`gemm`] by `gemm_panel` (CPU adapters): `a` in panels through the uniform window
/// (repacked if plain), `b` plain; whole panels per window where they fit, else a panel per
/// dispatch in chunks of k, later chunks adding. `bias` stands in bound when `!has_bias`.
fn gemm_panel(
    rec: &mut Recorder<'_>,
    a: &Packed,
    b: &Packed,
    bias: &GpuTensor,
    has_bias: bool,
    out: Out<'_>,
    mut params: GemmParams,
) -> Result<()> {
    let panel_kernel = if rec.ctx().subgroups() {
        GEMM_PANEL_SG
    } else {
        GEMM_PANEL
    };
    let repacked;
    let a = if a.panels {
        a
    } else {
        repacked = pack_as(rec, a.view(), true, None)?;
        &repacked
    };
    let panels = a.ld / PANEL;
    let k = a.k;
    let n_groups = b.rows.div_ceil(PANEL_COLS * PANEL_WG) as u32;
    let panel_floats = k * PANEL;
    if panel_floats <= WINDOW_FLOATS {
        // Whole panels per window: one dispatch per window, y over its panels.
        let per = if k == 0 {
            panels
        } else {
            WINDOW_FLOATS / panel_floats
        };
        params.a_stride = u32_of("gemm", "panel", panel_floats / 4)?;
        for p0 in (0..panels).step_by(per) {
            params.m0 = u32_of("gemm", "m", p0 * PANEL)?;
            let groups = [n_groups, (panels - p0).min(per) as u32, 1];
            let window = (p0 * panel_floats * 4) as u64;
            rec.dispatch_windowed(
                panel_kernel,
                &params,
                &[&a.data, &b.data, bias, out.t],
                &[window],
                groups,
            )?;
        }
    } else {
        // A panel per dispatch, in chunks of k that fit the window; later chunks add.
        let chunk = WINDOW_FLOATS / PANEL;
        for p in 0..panels {
            params.m0 = u32_of("gemm", "m", p * PANEL)?;
            for k0 in (0..k).step_by(chunk) {
                params.k0 = k0 as u32;
                params.k = (k - k0).min(chunk) as u32;
                params.accumulate = (out.accumulate || k0 > 0) as u32;
                params.has_bias = (has_bias && k0 == 0) as u32;
                let window = ((p * panel_floats + k0 * PANEL) * 4) as u64;
                rec.dispatch_windowed(
                    panel_kernel,
                    &params,
                    &[&a.data, &b.data, bias, out.t],
                    &[window],
                    [n_groups, 1, 1],
                )?;
            }
        }
    }
    Ok(())
}

/// `A·B` for row-major `a [M, K]` and `b [K, N]`, in one submission.
pub fn matmul<'c>(on: impl Record<'c>, a: &GpuTensor, b: &GpuTensor) -> Result<GpuTensor> {
    let ctx = on.context();
    a.check_context(ctx, "matmul", "a")?;
    b.check_context(ctx, "matmul", "b")?;
    let (&[m, k], &[k2, n]) = (a.shape(), b.shape()) else {
        return Err(Error::InvalidArgument {
            op: "matmul",
            arg: "a, b",
            reason: format!(
                "must both have rank 2, have shapes {:?} and {:?}",
                a.shape(),
                b.shape()
            ),
        });
    };
    if k2 != k {
        return Err(Error::shape("matmul", "b", &[k, n], b.shape()));
    }
    // Empty tensors may carry any extent; the kernels index and pad every axis in u32.
    for (arg, d) in [("a rows", m), ("k", k), ("b columns", n)] {
        if d > u32::MAX as usize {
            return Err(Error::TooLarge {
                op: "matmul",
                arg: format!("{arg} of a {:?}, b {:?}", a.shape(), b.shape()),
                size: d as u64,
                unit: "elements",
                limit_name: "u32::MAX",
                limit: u32::MAX as u64,
            });
        }
    }
    expect_f32("matmul", "a", a, &[m, k])?;
    expect_f32("matmul", "b", b, &[k, n])?;
    let out = ctx.alloc("matmul", "output", &[m, n], DType::F32)?;
    let mut rec = on.begin("matmul");
    let pa = pack_lhs(&mut rec, Strided::rows(a, m, k, 0))?;
    let pb = pack(&mut rec, Strided::cols(b, k, n, 0))?;
    if k == 0 {
        rec.clear(&out);
    } else {
        gemm(&mut rec, &pa, &pb, None, Out::rows(&out, n))?;
    }
    rec.finish()?;
    Ok(out)
}
