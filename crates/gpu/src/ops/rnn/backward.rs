//! Backward (BPTT) of the recurrent layers, built like cuDNN's: per layer the timesteps in
//! reverse, each the recurrent product `dG·W_hh` for dh followed by the gate gradients and the
//! carries (one fused kernel on GPUs; on CPU adapters a blocked product that reads dG through a
//! uniform window, then the cell update), then the weight gradients as single GEMMs over all
//! T·B rows (`dW_ih = dGᵀ·X`, `dW_hh = dGᵀ·H_prev`, `dX = dG·W_ih`) and column sums for the
//! biases. Unidirectional stacks can run as a wavefront, as in the forward: each layer's dX
//! over a chunk of steps, then the layer below's reverse steps over that chunk, beside the next
//! chunk of the layer above. The whole pass is one command encoder and one submit.

use std::collections::BTreeMap;

use bytemuck::{Pod, Zeroable};
use wgrnn_core::{CellKind, Error, Result, RnnConfig, RnnDims};

use super::kernels::backward::{cell_kernel, seq_kernel, step_kernel};
use super::kernels::for_storage;
use super::path::{persistent_path, split_path};
use super::wavefront::wavefront_chunk;
use super::{GpuRnnTape, TapeLayout, check_weight_buffers, no_layers};
use crate::ops::matmul::{Out, Packed, Strided, gemm, pack, pack_into, pack_lhs};
use crate::ops::pack::{alloc_packed, by_unit, pack_w_hh_into, packed_slots, w_hh_rows};
use crate::ops::recurrent::{PanelPlan, WChunk};
use crate::ops::reduce::col_sum;
use crate::runtime::context::Context;
use crate::runtime::pipeline::{Access, Kernel};
use crate::runtime::record::Recorder;
use crate::runtime::shaders::Shader;
use crate::runtime::tensor::{DType, GpuTensor, OnContext, expect_f32};
use crate::runtime::weights::{GpuWeights, check_accumulator};

use Access::{Read, ReadWrite};

const OP: &str = "gpu rnn_backward";

/// The dG rows of the split reverse products laid out K-major per block of rows, for the
/// product that reads them through a uniform window (recurrent.wgsl, see `PanelPlan`).
const REC_GATHER: Kernel = Kernel {
    shader: Shader::Recurrent,
    entry: "rec_gather",
    bindings: &[Read, Read, ReadWrite],
};

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
    w.check_context(ctx, OP, "w")?;
    tape.check_context(ctx, OP, "tape")?;
    upstream.dy.check_context(ctx, OP, "dy")?;
    upstream.dh_n.check_context(ctx, OP, "dh_n")?;
    upstream.dc_n.check_context(ctx, OP, "dc_n")?;
    let cfg = w.config();
    check_weight_buffers(ctx, OP, cfg)?;
    if *cfg != tape.config {
        return Err(Error::InvalidArgument {
            op: OP,
            arg: "weights",
            reason: format!("config {cfg:?} differs from the tape's {:?}", tape.config),
        });
    }
    check_accumulator(ctx, OP, w, accumulate)?;
    let RnnDims {
        seq_len: tl,
        batch: nb,
    } = tape.dims;
    let lstm = cfg.cell.has_cell_state();
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

    let d_top = match upstream.dy {
        Some(dy) => dy.clone(),
        None => {
            let z = ctx.alloc(OP, "dy", &y_shape, DType::F32)?;
            rec.clear(&z);
            z
        }
    };
    // As in the forward, unidirectional stacks of per-step layers run as a wavefront (see
    // `wavefront_chunk`), here from the top layer down and from the last step back.
    let persistent = persistent_path(ctx, cfg, nb, max_len);
    let chunk = wavefront_chunk(ctx, cfg, persistent, max_len);
    // From the top layer down: each reads the gradient of its output from the layer above.
    let mut runs: Vec<LayerBack> = Vec::with_capacity(cfg.num_layers);
    for layer in (0..cfg.num_layers).rev() {
        let (d_out, d_out_batch_first) = match runs.last() {
            None => (d_top.clone(), cfg.batch_first),
            Some(above) => (above.d_inp.clone(), false),
        };
        let run = LayerBack::new(
            &mut rec,
            w,
            tape,
            upstream,
            BackGeom {
                layer,
                d_out,
                d_out_batch_first,
                persistent,
                max_len,
            },
        )?;
        if chunk.is_none() {
            run.all_steps(&mut rec)?;
            run.weight_grads(&mut rec, &grads, add)?;
            run.dx(&mut rec, 0..tl)?;
        }
        runs.push(run);
    }
    if let Some(chunk) = chunk {
        // Wave v: the k-th layer from the top runs its reverse steps over the (v - k)-th chunk
        // from the end. Before them, the layer above's dX over the chunk's rows, whose dG it
        // finished in wave v - 1. Within a wave the layers' steps alternate (see rnn_forward).
        let chunks = max_len.div_ceil(chunk);
        let span = |c: usize| c * chunk..((c + 1) * chunk).min(max_len);
        for wave in 0..chunks + runs.len() - 1 {
            let live = |k: usize| {
                wave.checked_sub(k)
                    .filter(|&v| v < chunks)
                    .map(|v| chunks - 1 - v)
            };
            for k in 1..runs.len() {
                if let Some(c) = live(k) {
                    runs[k - 1].dx(&mut rec, span(c))?;
                }
            }
            for i in 0..chunk {
                for (k, run) in runs.iter().enumerate() {
                    if let Some(ts) = live(k).map(span).filter(|ts| i < ts.len()) {
                        run.step(&mut rec, ts.end - 1 - i, false)?;
                    }
                }
            }
            // A layer past its first step: the pass that turns its carries into dh0, dc0, then
            // its weight gradients.
            for (k, run) in runs.iter().enumerate() {
                if live(k) == Some(0) {
                    run.step(&mut rec, 0, true)?;
                    run.weight_grads(&mut rec, &grads, add)?;
                }
            }
        }
        if let Some(bottom) = runs.last() {
            bottom.dx(&mut rec, 0..tl)?;
        }
    }
    for run in &runs {
        run.finish(&mut rec, &dh0, dc0.as_ref());
    }
    let dx = runs.pop().map(|r| r.d_inp).ok_or_else(no_layers)?;
    rec.submit()?;
    Ok(GpuRnnGrads {
        dx,
        dh0,
        dc0,
        weights: grads,
    })
}

/// Where a layer sits in its backward call.
struct BackGeom {
    layer: usize,
    /// The gradient of the layer's output, and whether it is batch-first.
    d_out: GpuTensor,
    d_out_batch_first: bool,
    persistent: bool,
    max_len: usize,
}

/// One layer of a backward call: its buffers, reverse steps, weight gradients and dX, recorded
/// in any order that respects the data (see `wavefront_chunk`).
struct LayerBack<'t> {
    layer: usize,
    cfg: RnnConfig,
    tape: &'t GpuRnnTape,
    /// The gradient of the layer's input: dX of the call for the first layer.
    d_inp: GpuTensor,
    in_batch_first: bool,
    /// The layer's input as the B operand of dW_ih = dGᵀ·X.
    x_rows: Packed,
    dstate: GpuTensor,
    dg: GpuTensor,
    dg_len: usize,
    dgh_off: usize,
    kernel: Kernel,
    groups: [u32; 3],
    params: BackParams,
    bufs: [GpuTensor; 6],
    /// The split steps' partial products, dG blocks and padded `W_hh`.
    product: Option<(GpuTensor, GpuTensor, Vec<WChunk>)>,
    plan: PanelPlan,
    gather: GatherParams,
    persistent: bool,
    max_len: usize,
    /// Per direction: `W_ih` packed as dX's right operand.
    w_cols: Vec<Packed>,
}

/// `W_hh` of every direction of `layer` as the split reverse steps' product dG·W_hh reads it:
/// its PyTorch rows (k = G·H) in chunks of columns (see [`PanelPlan::pad_w`]), rounded through
/// f16 where weights are stored so, in a copy no larger than one direction's `W_hh`.
fn split_w_hh(
    rec: &mut Recorder<'_>,
    w: &GpuWeights<RnnConfig>,
    layer: usize,
    plan: &PanelPlan,
) -> Result<Vec<WChunk>> {
    let cfg = w.config();
    let (h, gh) = (cfg.hidden_size, cfg.cell.gates() * cfg.hidden_size);
    let mut rounded: Option<(usize, GpuTensor)> = None;
    plan.pad_w(rec, OP, cfg.num_directions(), |rec, dir, cols, dst, ldw| {
        let w_hh = w.get(&format!("weight_hh{}", RnnConfig::suffix(layer, dir)))?;
        let src = if rec.ctx().f16_weights() {
            if rounded.as_ref().is_none_or(|(d, _)| *d != dir) {
                let t = match rounded.take() {
                    Some((_, t)) => t,
                    None => rec.ctx().alloc(OP, "W_hh rows", &[gh * h], DType::F32)?,
                };
                w_hh_rows(rec, w_hh, 0, gh * h, &t, 0)?;
                rounded = Some((dir, t));
            }
            rounded.as_ref().map_or(w_hh, |(_, t)| t)
        } else {
            w_hh
        };
        let view = Strided {
            rows: cols.len(),
            inner: cols.len(),
            ..Strided::cols(src, gh, h, cols.start)
        };
        pack_into(rec, view, dst, 0, ldw)
    })
}

impl<'t> LayerBack<'t> {
    fn new(
        rec: &mut Recorder<'_>,
        w: &GpuWeights<RnnConfig>,
        tape: &'t GpuRnnTape,
        upstream: GpuRnnOutputGrads<'_>,
        geom: BackGeom,
    ) -> Result<Self> {
        let ctx = rec.ctx();
        let cfg = w.config();
        let BackGeom {
            layer,
            d_out,
            d_out_batch_first,
            persistent,
            max_len,
        } = geom;
        let RnnDims {
            seq_len: tl,
            batch: nb,
        } = tape.dims;
        let (h, g, nd) = (cfg.hidden_size, cfg.cell.gates(), cfg.num_directions());
        let gh = g * h;
        let rows = tl * nb;
        let gru = cfg.cell == CellKind::Gru;
        let in_w = cfg.layer_input_size(layer);
        let in_batch_first = layer == 0 && cfg.batch_first;
        let in_shape = if in_batch_first {
            [nb, tl, in_w]
        } else {
            [tl, nb, in_w]
        };
        // The wavefront writes the rows of a layer's dX only up to the longest sequence, but
        // the reverse steps read no row past a sequence's length.
        let d_inp = ctx.alloc(OP, "dx", &in_shape, DType::F32)?;
        let xin = &tape.layer_in[layer];
        // X as the B operand of dW_ih = dGᵀ·X: rows f, k = the T·B rows.
        let x_rows = pack(
            rec,
            Strided {
                t: &xin.t,
                rows: in_w,
                k: rows,
                inner: in_w,
                s_inner: xin.s_f,
                s_outer: 0,
                s_k: xin.s_r,
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
        let split = split_path(ctx, cfg, persistent);
        // W_hh for the fused and persistent kernels' reverse product, packed transposed (the
        // split steps pad its PyTorch rows instead, see below).
        let wt = if split {
            None
        } else {
            Some(alloc_packed(rec, cfg.cell, h, nd)?)
        };
        let dstate = ctx.alloc(OP, "dstate", &[nd, 2, 2, nb, h], DType::F32)?;
        rec.clear(&dstate);
        let dg = ctx.alloc(OP, "dG", &[nd * dg_len], DType::F32)?;
        // Padded rows stay zero: the GEMMs below run over all T·B rows.
        rec.clear(&dg);
        // The layer's tape: direction d's sections start at d · layout.len.
        let dtape = &tape.layers[layer];
        let layout = TapeLayout::new(cfg.cell, rows, h);
        let mut w_cols = Vec::with_capacity(nd);
        for dir in 0..nd {
            let idx = layer * nd + dir;
            let sfx = RnnConfig::suffix(layer, dir);
            if let Some(wt) = &wt {
                let w_hh = w.get(&format!("weight_hh{sfx}"))?;
                pack_w_hh_into(rec, w_hh, cfg.cell, h, true, wt, dir * w_slots)?;
            }
            let w_ih = w.get(&format!("weight_ih{sfx}"))?;
            w_cols.push(pack(rec, Strided::cols(w_ih, gh, in_w, 0))?);
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
        // The split steps' product dG·W_hh: k = G·H, columns H.
        let plan = PanelPlan::new(nb, gh, h);
        let splits = plan.splits();
        // The split path's cell kernel binds the partial products where the others bind W_hh.
        let (first, product) = match wt {
            Some(wt) => (wt, None),
            None => {
                let part = plan.alloc_part(rec, OP, nd)?;
                let panels = plan.alloc_panels(rec, OP, nd)?;
                let wp = split_w_hh(rec, w, layer, &plan)?;
                (part.clone(), Some((part, panels, wp)))
            }
        };
        let (kernel, groups) = if split {
            let groups = [units4.div_ceil(64) as u32, nb as u32, nd as u32];
            (cell_kernel(cfg.cell), groups)
        } else if persistent {
            // One workgroup per direction runs every reverse step and the final pass.
            (seq_kernel(cfg.cell), [1, 1, nd as u32])
        } else {
            let gx = if by_unit(cfg.cell) { units4 } else { h };
            let groups = [gx.div_ceil(64) as u32, nb as u32, nd as u32];
            (step_kernel(cfg.cell), groups)
        };
        let kernel = if split {
            kernel
        } else {
            for_storage(ctx, kernel)
        };
        let gather = GatherParams {
            batch: nb as u32,
            kdim: gh as u32,
            step: 0,
            last: 0,
            dg_dir: dg_len as u32,
            dgh_off: dgh_off as u32,
            blk_stride: plan.blk_stride as u32,
            dir_stride: plan.dir_stride as u32,
            rows: plan.rows as u32,
            _pad: [0; 3],
        };
        let params = BackParams {
            batch: nb as u32,
            hidden: h as u32,
            step: 0,
            _pad_r: 0,
            d_rs_t: d_rs_t as u32,
            d_rs_b: d_rs_b as u32,
            _pad_d: 0,
            parity: 0,
            tape_gates: layout.gates as u32,
            tape_hprev: layout.h_prev as u32,
            extra1: extra1 as u32,
            extra2: extra2 as u32,
            last: 0,
            dgh_off: dgh_off as u32,
            _pad_z: 0,
            splits: splits as u32,
            wt_dir: w_slots as u32,
            tape_dir: layout.len as u32,
            dg_dir: dg_len as u32,
            _pad_dir: 0,
        };
        let bufs = [
            first,
            tape.lengths_dev.clone(),
            d_out,
            dtape.clone(),
            dstate.clone(),
            dg.clone(),
        ];
        Ok(Self {
            layer,
            cfg: cfg.clone(),
            tape,
            d_inp,
            in_batch_first,
            x_rows,
            dstate,
            dg,
            dg_len,
            dgh_off,
            kernel,
            groups,
            params,
            bufs,
            product,
            plan,
            gather,
            persistent,
            max_len,
            w_cols,
        })
    }

    /// The reverse step over time `s`, or with `last` the final pass that turns the carries
    /// and dG of step 0 into dh0, dc0. Steps run from `max_len - 1` down, alternating the
    /// dstate slots.
    fn step(&self, rec: &mut Recorder<'_>, s: usize, last: bool) -> Result<()> {
        let parity = if last {
            self.max_len % 2
        } else {
            (self.max_len - 1 - s) % 2
        };
        let p = BackParams {
            step: s as u32,
            last: last as u32,
            parity: parity as u32,
            ..self.params
        };
        let bufs: Vec<&GpuTensor> = self.bufs.iter().collect();
        let Some((part, panels, wp)) = &self.product else {
            return rec.dispatch(self.kernel, &p, &bufs, self.groups);
        };
        let nd = self.cfg.num_directions();
        let gather = GatherParams {
            step: s as u32,
            last: last as u32,
            ..self.gather
        };
        let gather_groups = [
            (self.gather.kdim as usize * self.plan.rows).div_ceil(64) as u32,
            self.plan.blocks as u32,
            nd as u32,
        ];
        let gbufs = [&self.tape.lengths_dev, &self.dg, panels];
        rec.dispatch(REC_GATHER, &gather, &gbufs, gather_groups)?;
        self.plan.record(rec, panels, wp, part)?;
        let mut cell_bufs = bufs;
        cell_bufs.push(part);
        rec.dispatch(self.kernel, &p, &cell_bufs, self.groups)
    }

    /// Every reverse step and the final pass, layer after layer.
    fn all_steps(&self, rec: &mut Recorder<'_>) -> Result<()> {
        if self.persistent {
            // `step` = the step count.
            let p = BackParams {
                step: self.max_len as u32,
                ..self.params
            };
            let bufs: Vec<&GpuTensor> = self.bufs.iter().collect();
            return rec.dispatch(self.kernel, &p, &bufs, self.groups);
        }
        for s in (0..self.max_len).rev() {
            self.step(rec, s, false)?;
        }
        self.step(rec, 0, true)
    }

    /// Weight gradients, single products over all T·B rows, and the biases' column sums.
    fn weight_grads(
        &self,
        rec: &mut Recorder<'_>,
        grads: &GpuWeights<RnnConfig>,
        add: bool,
    ) -> Result<()> {
        let cfg = &self.cfg;
        let (h, nd) = (cfg.hidden_size, cfg.num_directions());
        let gh = cfg.cell.gates() * h;
        let rows = self.tape.dims.seq_len * self.tape.dims.batch;
        let in_w = cfg.layer_input_size(self.layer);
        let dtape = &self.tape.layers[self.layer];
        let layout = TapeLayout::new(cfg.cell, rows, h);
        for dir in 0..nd {
            let sfx = RnnConfig::suffix(self.layer, dir);
            let layout = layout.at(dir * layout.len);
            let doff = dir * self.dg_len;
            let dgi_t = pack_lhs(rec, Strided::cols(&self.dg, rows, gh, doff))?;
            let dgh_t = if cfg.cell == CellKind::Gru {
                pack_lhs(rec, Strided::cols(&self.dg, rows, gh, doff + self.dgh_off))?
            } else {
                dgi_t.clone()
            };
            gemm(
                rec,
                &dgi_t,
                &self.x_rows,
                None,
                Out::rows(grads.get(&format!("weight_ih{sfx}"))?, in_w).accumulate(add),
            )?;
            let h_prev = pack(rec, Strided::cols(dtape, rows, h, layout.h_prev))?;
            gemm(
                rec,
                &dgh_t,
                &h_prev,
                None,
                Out::rows(grads.get(&format!("weight_hh{sfx}"))?, h).accumulate(add),
            )?;
            if cfg.bias {
                let b_ih = grads.get(&format!("bias_ih{sfx}"))?;
                col_sum(rec, &self.dg, doff, rows, gh, b_ih, add)?;
                let b_hh = grads.get(&format!("bias_hh{sfx}"))?;
                col_sum(rec, &self.dg, doff + self.dgh_off, rows, gh, b_hh, add)?;
            }
        }
        Ok(())
    }

    /// dX = dG·W_ih over the times `ts`, the second direction adding to the first.
    fn dx(&self, rec: &mut Recorder<'_>, ts: std::ops::Range<usize>) -> Result<()> {
        let cfg = &self.cfg;
        let RnnDims {
            seq_len: tl,
            batch: nb,
        } = self.tape.dims;
        let gh = cfg.cell.gates() * cfg.hidden_size;
        let in_w = cfg.layer_input_size(self.layer);
        let (r0, n) = (ts.start * nb, ts.len() * nb);
        for (dir, w_cols) in self.w_cols.iter().enumerate() {
            let doff = dir * self.dg_len;
            let dgi_rows = pack_lhs(rec, Strided::rows(&self.dg, n, gh, doff + r0 * gh))?;
            let out = if self.in_batch_first {
                // Row t·B + b at b·T·in_w + t·in_w.
                Out {
                    t: &self.d_inp,
                    off: ts.start * in_w,
                    rs: tl * in_w,
                    cs: 1,
                    inner: nb,
                    rs_outer: in_w,
                    accumulate: dir > 0,
                }
            } else {
                Out {
                    off: r0 * in_w,
                    ..Out::rows(&self.d_inp, in_w).accumulate(dir > 0)
                }
            };
            gemm(rec, &dgi_rows, w_cols, None, out)?;
        }
        Ok(())
    }

    /// Copies dh0 (and dc0) out of the final pass's dstate slot.
    fn finish(&self, rec: &mut Recorder<'_>, dh0: &GpuTensor, dc0: Option<&GpuTensor>) {
        let nb = self.tape.dims.batch;
        let (h, nd) = (self.cfg.hidden_size, self.cfg.num_directions());
        let parity = self.max_len % 2;
        for dir in 0..nd {
            let idx = self.layer * nd + dir;
            let fin = dir * 4 * nb * h + (1 - parity) * 2 * nb * h;
            rec.copy(&self.dstate, fin, dh0, idx * nb * h, nb * h);
            if let Some(dc0) = dc0 {
                rec.copy(&self.dstate, fin + nb * h, dc0, idx * nb * h, nb * h);
            }
        }
    }
}
