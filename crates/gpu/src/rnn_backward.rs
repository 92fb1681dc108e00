//! Backward (BPTT) of the recurrent layers, built like cuDNN's: per layer the timesteps in
//! reverse, each the recurrent product `dG·W_hh` for dh followed by the gate gradients and the
//! carries (one fused kernel on GPUs; on CPU adapters a blocked product that reads dG through a
//! uniform window, then the cell update), then the weight gradients as single GEMMs over all
//! T·B rows (`dW_ih = dGᵀ·X`, `dW_hh = dGᵀ·H_prev`, `dX = dG·W_ih`) and column sums for the
//! biases. The whole pass is one command encoder and one submit.

use std::collections::BTreeMap;

use bytemuck::{Pod, Zeroable};
use wgrnn_core::{CellKind, Error, Result, RnnConfig, RnnDims};

use crate::buffer::{DType, GpuTensor};
use crate::context::Context;
use crate::gemm::{Out, Strided, expect_f32, gemm, pack, pack_lhs};
use crate::panel::{PanelPlan, w_hh_rows};
use crate::pipeline::{Access, Kernel};
use crate::record::Recorder;
use crate::rnn::{
    GpuRnnTape, TapeLayout, alloc_packed, by_unit, for_storage, pack_w_hh_into, packed_slots,
    small_batch_path,
};
use crate::shaders::Shader;
use crate::weights::GpuWeights;

use Access::{Read, ReadWrite};

const OP: &str = "gpu rnn_backward";
const BINDINGS: &[Access] = &[Read, Read, Read, Read, ReadWrite, ReadWrite];
const COL_SUM: Kernel = Kernel {
    shader: Shader::Matmul,
    entry: "col_sum",
    bindings: &[Read, ReadWrite],
};

/// The dG rows of the split reverse products laid out K-major per block of rows, for the
/// product that reads them through a uniform window (recurrent.wgsl, see `PanelPlan`).
const REC_GATHER: Kernel = Kernel {
    shader: Shader::Recurrent,
    entry: "rec_gather",
    bindings: &[Read, Read, ReadWrite],
};
/// The backward kernel of `cell` named by `entries` (LSTM, GRU, Elman), all in the cell's file.
fn cell_entry(cell: CellKind, entries: [&'static str; 3], bindings: &'static [Access]) -> Kernel {
    let (shader, entry) = match cell {
        CellKind::Lstm => (Shader::Lstm, entries[0]),
        CellKind::Gru => (Shader::Gru, entries[1]),
        CellKind::RnnTanh | CellKind::RnnRelu => (Shader::Rnn, entries[2]),
    };
    Kernel {
        shader,
        entry,
        bindings,
    }
}

/// The cell half of a split reverse step: the step kernel's bindings plus the partial products.
fn cell_kernel(cell: CellKind) -> Kernel {
    const CELL_BINDINGS: &[Access] = &[Read, Read, Read, Read, ReadWrite, ReadWrite, Read];
    let entries = ["lstm_cell_bwd", "gru_cell_bwd", "rnn_cell_bwd"];
    cell_entry(cell, entries, CELL_BINDINGS)
}

/// The persistent small-batch backward of a cell (see `small_batch_path`).
fn seq_kernel(cell: CellKind) -> Kernel {
    cell_entry(
        cell,
        ["lstm_seq_bwd", "gru_seq_bwd", "rnn_seq_bwd"],
        BINDINGS,
    )
}

/// The fused reverse step of GPUs (one row and one unit per invocation: the recurrent product,
/// then the cell update). CPU adapters split the step instead (see `PanelPlan`).
fn step_kernel(cell: CellKind) -> Kernel {
    cell_entry(
        cell,
        ["lstm_step_bwd", "gru_step_bwd", "rnn_step_bwd"],
        BINDINGS,
    )
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct BackParams {
    batch: u32,
    hidden: u32,
    step: u32,
    _pad_r: u32,
    d_rs_t: u32,
    d_rs_b: u32,
    _pad_d: u32,
    parity: u32,
    tape_gates: u32,
    tape_hprev: u32,
    extra1: u32,
    extra2: u32,
    last: u32,
    dgh_off: u32,
    _pad_z: u32,
    splits: u32,
    wt_dir: u32,
    tape_dir: u32,
    dg_dir: u32,
    _pad_dir: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct GatherParams {
    batch: u32,
    kdim: u32,
    step: u32,
    last: u32,
    dg_dir: u32,
    dgh_off: u32,
    blk_stride: u32,
    dir_stride: u32,
    rows: u32,
    _pad: [u32; 3],
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct SumParams {
    rows: u32,
    cols: u32,
    accumulate: u32,
    src_off: u32,
}

/// Upstream gradients, on the device; an absent one counts as zero.
#[derive(Clone, Copy, Debug, Default)]
pub struct GpuRnnOutputGrads<'a> {
    pub dy: Option<&'a GpuTensor>,
    pub dh_n: Option<&'a GpuTensor>,
    pub dc_n: Option<&'a GpuTensor>,
}

/// Gradients of a recurrent call: inputs, initial states and every parameter (PyTorch names).
#[derive(Clone, Debug)]
pub struct GpuRnnGrads {
    pub dx: GpuTensor,
    pub dh0: GpuTensor,
    /// LSTM only.
    pub dc0: Option<GpuTensor>,
    /// The parameter gradients: fresh tensors, or the accumulator passed in.
    pub weights: GpuWeights<RnnConfig>,
}

/// Column sums of `rows × cols` starting at `src_off` of `src`, into (or added to) `dst`.
pub(crate) fn col_sum(
    rec: &mut Recorder<'_>,
    src: &GpuTensor,
    src_off: usize,
    rows: usize,
    cols: usize,
    dst: &GpuTensor,
    accumulate: bool,
) -> Result<()> {
    let p = SumParams {
        rows: rows as u32,
        cols: cols as u32,
        accumulate: accumulate as u32,
        src_off: src_off as u32,
    };
    rec.dispatch(COL_SUM, &p, &[src, dst], [cols.div_ceil(64) as u32, 1, 1])
}

/// Backward of a training-mode [`crate::rnn_forward`] call with the same weights: the
/// gradients of `loss` given `∂loss/∂y`, `∂loss/∂h_n`, `∂loss/∂c_n`. With `accumulate`, the
/// parameter gradients are added into those tensors (gradient accumulation over micro-batches)
/// instead of written to fresh ones. Bit-reproducible: no atomics, fixed summation orders.
pub fn rnn_backward(
    ctx: &Context,
    w: &GpuWeights<RnnConfig>,
    tape: &GpuRnnTape,
    upstream: GpuRnnOutputGrads<'_>,
    accumulate: Option<&GpuWeights<RnnConfig>>,
) -> Result<GpuRnnGrads> {
    let cfg = w.config();
    if *cfg != tape.config {
        return Err(Error::InvalidArgument {
            op: OP,
            arg: "weights",
            reason: format!("config {cfg:?} differs from the tape's {:?}", tape.config),
        });
    }
    if let Some(acc) = accumulate {
        if acc.config() != cfg {
            return Err(Error::InvalidArgument {
                op: OP,
                arg: "accumulate",
                reason: format!(
                    "config {:?} differs from the weights' {cfg:?}",
                    acc.config()
                ),
            });
        }
    }
    let RnnDims {
        seq_len: tl,
        batch: nb,
    } = tape.dims;
    let (h, g, nd) = (cfg.hidden_size, cfg.cell.gates(), cfg.num_directions());
    let gh = g * h;
    let rows = tl * nb;
    let lstm = cfg.cell.has_cell_state();
    let gru = cfg.cell == CellKind::Gru;
    let state_shape = cfg.state_shape(nb);
    let y_shape = cfg.output_shape(tape.dims);
    if let Some(dy) = upstream.dy {
        expect_f32(OP, "dy", dy, &y_shape)?;
    }
    if let Some(d) = upstream.dh_n {
        expect_f32(OP, "dh_n", d, &state_shape)?;
    }
    if let Some(d) = upstream.dc_n {
        if !lstm {
            return Err(Error::InvalidArgument {
                op: OP,
                arg: "dc_n",
                reason: format!("is only for LSTM, the cell is {}", cfg.cell.name()),
            });
        }
        expect_f32(OP, "dc_n", d, &state_shape)?;
    }
    let max_len = tape.lengths.iter().copied().max().unwrap_or(tl);

    let mut rec = Recorder::new(ctx, OP);
    let dh0 = ctx.alloc(OP, "dh0", &state_shape, DType::F32)?;
    let dc0 = if lstm {
        Some(ctx.alloc(OP, "dc0", &state_shape, DType::F32)?)
    } else {
        None
    };
    let grads = match accumulate {
        Some(acc) => acc.clone(),
        None => {
            let mut m = BTreeMap::new();
            for spec in cfg.param_specs() {
                m.insert(
                    spec.name.clone(),
                    ctx.alloc(OP, &spec.name, &spec.shape, DType::F32)?,
                );
            }
            GpuWeights::from_parts(cfg.clone(), m)
        }
    };
    let add = accumulate.is_some();

    let mut d_out = match upstream.dy {
        Some(dy) => dy.clone(),
        None => {
            let z = ctx.alloc(OP, "dy", &y_shape, DType::F32)?;
            rec.clear(&z);
            z
        }
    };
    let mut d_out_batch_first = cfg.batch_first;
    let mut dx = None;
    for layer in (0..cfg.num_layers).rev() {
        let in_w = cfg.layer_input_size(layer);
        let first = layer == 0;
        let in_batch_first = first && cfg.batch_first;
        let in_shape = if in_batch_first {
            [nb, tl, in_w]
        } else {
            [tl, nb, in_w]
        };
        let d_inp = ctx.alloc(OP, "dx", &in_shape, DType::F32)?;
        let xt = &tape.layer_xt[layer];
        // X as the B operand of dW_ih = dGᵀ·X: X(k, r) read from the packed Xt[k][r].
        let x_rows = pack(
            &mut rec,
            Strided {
                t: &xt.data,
                rows: in_w,
                k: rows,
                inner: in_w,
                s_inner: xt.ld,
                s_outer: 0,
                s_k: 1,
                off: 0,
            },
        )?;
        // As in the forward, every direction of the layer lives in one tensor per kind
        // (packed W_hh, dstate, dG, and the forward's tape), and each reverse step is one
        // dispatch over all directions (z = direction).
        let units4 = h.div_ceil(4);
        let w_slots = packed_slots(cfg.cell, h);
        let dgh_off = if gru { rows * gh } else { 0 };
        // Per direction [dGi | dGh (GRU) | one zero row]: rows with no next step read the zero
        // row.
        let zero_row = rows * gh * if gru { 2 } else { 1 };
        let dg_len = zero_row + gh;
        // On CPU adapters (large blocks) each reverse step is split: the recurrent product
        // dG·W_hh (`rec_gather`, then `rec_panel` per direction, block of rows and chunk of k,
        // dG through a uniform window; see PanelPlan), then the cell update, which sums the
        // partial products. A fused step would hold all gates of its units, so few rows per
        // invocation and many more loaded floats per multiply-add, and llvmpipe's time follows
        // loads. GPUs keep the fused per-unit step.
        let persistent = small_batch_path(ctx, cfg.cell, h, nb);
        let split = !persistent && ctx.gemm_block().split_steps();
        // W_hh for the reverse product: its PyTorch rows for the split steps (then padded, see
        // below), else packed transposed for the fused and persistent kernels.
        let wt = if split {
            ctx.alloc(OP, "W_hh rows", &[nd * gh * h], DType::F32)?
        } else {
            alloc_packed(&rec, cfg.cell, h, nd)?
        };
        let dstate = ctx.alloc(OP, "dstate", &[nd, 2, 2, nb, h], DType::F32)?;
        rec.clear(&dstate);
        let dg = ctx.alloc(OP, "dG", &[nd * dg_len], DType::F32)?;
        // Padded rows stay zero: the GEMMs below run over all T·B rows.
        rec.clear(&dg);
        // The layer's tape: direction d's sections start at d · layout.len.
        let dtape = &tape.layers[layer];
        let layout = TapeLayout::new(cfg.cell, rows, h);
        for dir in 0..nd {
            let idx = layer * nd + dir;
            let sfx = RnnConfig::suffix(layer, dir);
            let w_hh = w.get(&format!("weight_hh{sfx}"))?;
            if split {
                w_hh_rows(&mut rec, w_hh, cfg.cell, h, &wt, dir * gh * h)?;
            } else {
                pack_w_hh_into(&mut rec, w_hh, cfg.cell, h, true, &wt, dir * w_slots)?;
            }
            let st = dir * 4 * nb * h;
            if let Some(d) = upstream.dh_n {
                rec.copy(d, idx * nb * h, &dstate, st, nb * h);
            }
            if let Some(d) = upstream.dc_n {
                rec.copy(d, idx * nb * h, &dstate, st + nb * h, nb * h);
            }
        }
        let (d_rs_t, d_rs_b) = if d_out_batch_first {
            (nd * h, tl * nd * h)
        } else {
            (nb * nd * h, nd * h)
        };
        let (extra1, extra2) = match cfg.cell {
            CellKind::Lstm => (layout.extra1, layout.extra2),
            CellKind::Gru => (layout.extra1, 0),
            CellKind::RnnTanh => (0, units4),
            CellKind::RnnRelu => (1, units4),
        };
        let kernel = step_kernel(cfg.cell);
        let kernel = for_storage(ctx, kernel);
        let gx = if by_unit(cfg.cell) { units4 } else { h };
        let groups = [gx.div_ceil(64) as u32, nb as u32, nd as u32];
        // The split steps' product dG·W_hh: k = G·H, columns H.
        let plan = PanelPlan::new(nb, gh, h);
        let splits = plan.splits();
        let product = if split {
            let part = plan.alloc_part(&rec, OP, nd)?;
            let panels = plan.alloc_panels(&rec, OP, nd)?;
            let wp = plan.pad_w(&mut rec, OP, nd, |dir| {
                Strided::cols(&wt, gh, h, dir * gh * h)
            })?;
            Some((part, panels, wp))
        } else {
            None
        };
        let gather_params = |step: usize, last: bool| GatherParams {
            batch: nb as u32,
            kdim: gh as u32,
            step: step as u32,
            last: last as u32,
            dg_dir: dg_len as u32,
            dgh_off: dgh_off as u32,
            blk_stride: plan.blk_stride as u32,
            dir_stride: plan.dir_stride as u32,
            rows: plan.rows as u32,
            _pad: [0; 3],
        };
        let params = |step: usize, last: bool, parity: u32| BackParams {
            batch: nb as u32,
            hidden: h as u32,
            step: step as u32,
            _pad_r: 0,
            d_rs_t: d_rs_t as u32,
            d_rs_b: d_rs_b as u32,
            _pad_d: 0,
            parity,
            tape_gates: layout.gates as u32,
            tape_hprev: layout.h_prev as u32,
            extra1: extra1 as u32,
            extra2: extra2 as u32,
            last: last as u32,
            dgh_off: dgh_off as u32,
            _pad_z: 0,
            splits: splits as u32,
            wt_dir: w_slots as u32,
            tape_dir: layout.len as u32,
            dg_dir: dg_len as u32,
            _pad_dir: 0,
        };
        let bufs: [&GpuTensor; 6] = [&wt, &tape.lengths_dev, &d_out, dtape, &dstate, &dg];
        let mut parity = 0;
        if let Some((part, panels, wp)) = &product {
            let cell_k = cell_kernel(cfg.cell);
            let cell_groups = [units4.div_ceil(64) as u32, nb as u32, nd as u32];
            let cell_bufs: [&GpuTensor; 7] =
                [part, &tape.lengths_dev, &d_out, dtape, &dstate, &dg, part];
            let gather_groups = [
                (gh * plan.rows).div_ceil(64) as u32,
                plan.blocks as u32,
                nd as u32,
            ];
            let gbufs: [&GpuTensor; 3] = [&tape.lengths_dev, &dg, panels];
            // Reverse steps, then the final pass that turns the carries and dG_0 into dh0, dc0.
            let passes = (0..max_len).rev().map(|s| (s, false)).chain([(0, true)]);
            for (s, last) in passes {
                rec.dispatch(REC_GATHER, &gather_params(s, last), &gbufs, gather_groups)?;
                plan.record(&mut rec, nd, panels, wp, part)?;
                rec.dispatch(cell_k, &params(s, last, parity), &cell_bufs, cell_groups)?;
                if !last {
                    parity = 1 - parity;
                }
            }
        } else if persistent {
            // One workgroup per direction runs every reverse step and the final pass (`step` =
            // count).
            let k = for_storage(ctx, seq_kernel(cfg.cell));
            rec.dispatch(k, &params(max_len, false, 0), &bufs, [1, 1, nd as u32])?;
            parity = (max_len % 2) as u32;
        } else {
            for s in (0..max_len).rev() {
                rec.dispatch(kernel, &params(s, false, parity), &bufs, groups)?;
                parity = 1 - parity;
            }
            // One more dispatch turns the carries and dG of step 0 into dh0, dc0.
            rec.dispatch(kernel, &params(0, true, parity), &bufs, groups)?;
        }
        for dir in 0..nd {
            let idx = layer * nd + dir;
            let sfx = RnnConfig::suffix(layer, dir);
            let w_ih = w.get(&format!("weight_ih{sfx}"))?;
            let fin = dir * 4 * nb * h + (1 - parity as usize) * 2 * nb * h;
            rec.copy(&dstate, fin, &dh0, idx * nb * h, nb * h);
            if let Some(dc0) = &dc0 {
                rec.copy(&dstate, fin + nb * h, dc0, idx * nb * h, nb * h);
            }
            let layout = layout.at(dir * layout.len);
            let doff = dir * dg_len;

            // Weight gradients: single products over all T·B rows.
            let dgi_t = pack_lhs(&mut rec, Strided::cols(&dg, rows, gh, doff))?;
            let dgh_t = if gru {
                pack_lhs(&mut rec, Strided::cols(&dg, rows, gh, doff + dgh_off))?
            } else {
                dgi_t.clone()
            };
            gemm(
                &mut rec,
                &dgi_t,
                &x_rows,
                None,
                Out::rows(grads.get(&format!("weight_ih{sfx}"))?, in_w).accumulate(add),
            )?;
            let h_prev = pack(&mut rec, Strided::cols(dtape, rows, h, layout.h_prev))?;
            gemm(
                &mut rec,
                &dgh_t,
                &h_prev,
                None,
                Out::rows(grads.get(&format!("weight_hh{sfx}"))?, h).accumulate(add),
            )?;
            if cfg.bias {
                col_sum(
                    &mut rec,
                    &dg,
                    doff,
                    rows,
                    gh,
                    grads.get(&format!("bias_ih{sfx}"))?,
                    add,
                )?;
                col_sum(
                    &mut rec,
                    &dg,
                    doff + dgh_off,
                    rows,
                    gh,
                    grads.get(&format!("bias_hh{sfx}"))?,
                    add,
                )?;
            }
            // dX = dG·W_ih, the second direction adding to the first.
            let dgi_rows = pack_lhs(&mut rec, Strided::rows(&dg, rows, gh, doff))?;
            let w_cols = pack(&mut rec, Strided::cols(w_ih, gh, in_w, 0))?;
            let out = if in_batch_first {
                Out {
                    t: &d_inp,
                    off: 0,
                    rs: tl * in_w,
                    cs: 1,
                    inner: nb,
                    rs_outer: in_w,
                    accumulate: dir > 0,
                }
            } else {
                Out::rows(&d_inp, in_w).accumulate(dir > 0)
            };
            gemm(&mut rec, &dgi_rows, &w_cols, None, out)?;
        }
        if first {
            dx = Some(d_inp);
        } else {
            d_out = d_inp;
            d_out_batch_first = false;
        }
    }
    rec.submit()?;
    let dx = dx.ok_or_else(|| Error::InvalidConfig {
        config: "RnnConfig",
        field: "num_layers",
        reason: "must be at least 1".into(),
    })?;
    Ok(GpuRnnGrads {
        dx,
        dh0,
        dc0,
        weights: grads,
    })
}
