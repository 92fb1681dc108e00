//! Backward (BPTT) of the recurrent layers, built like cuDNN's: per layer the timesteps in
//! reverse, each the recurrent product `dG·W_hh` for dh followed by the gate gradients and the
//! carries (one fused kernel on GPUs; on CPU adapters a blocked product that reads dG through a
//! uniform window, then the cell update), then the weight gradients as single GEMMs over all
//! T·B rows (`dW_ih = dGᵀ·X`, `dW_hh = dGᵀ·H_prev`, `dX = dG·W_ih`) and column sums for the
//! biases. Unidirectional stacks can run as a wavefront, as in the forward: each layer's dX
//! over a chunk of steps, then the layer below's reverse steps over that chunk, beside the next
//! chunk of the layer above. The whole pass is one command encoder and one submit.

use std::ops::Range;

use wgrnn_core::{CellKind, DropoutConfig, Error, Result, RnnConfig, RnnDims};

use super::forward::drop_batch;
use super::kernels::backward::{cell_kernel, mid_kernel, seq_kernel, step_kernel};
use super::kernels::{for_storage, two_phase};
use super::path::{StepPath, step_path};
use super::projection::{self, DirRows, ProjGrads};
use super::split::SplitBack;
use super::wavefront::{WaveRun, Wavefront};
use super::{
    GpuRnnTape, ProjTape, TapeLayout, alloc_states, cell_extras, check_weight_buffers, no_layers,
    out_strides,
};
use crate::ops::dropout;
use crate::ops::matmul::{Out, Packed, Strided, gemm, pack, pack_lhs};
use crate::ops::pack::{alloc_packed, by_unit, pack_w_hh_into, packed_slots};
use crate::ops::recurrent::PanelPlan;
use crate::ops::reduce::col_sum;
use crate::runtime::context::Context;
use crate::runtime::pipeline::Kernel;
use crate::runtime::record::Recorder;
use crate::runtime::recording::Record;
use crate::runtime::tensor::{DType, GpuTensor, OnContext, expect_f32};
use crate::runtime::uniforms::cell::BackParams;
use crate::runtime::uniforms::recurrent::GatherParams;
use crate::runtime::weights::{GpuWeights, check_accumulator, grads_or};

const OP: &str = "rnn_backward";

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
/// The gradients of an unbatched call are unbatched: `dy` `[T, D·H]`, `dh_n` `[L·D, H]` in,
/// `dx` `[T, input_size]`, `dh0` `[L·D, H]` out.
pub fn rnn_backward<'c>(
    on: impl Record<'c>,
    w: &GpuWeights<RnnConfig>,
    tape: &GpuRnnTape,
    upstream: GpuRnnOutputGrads<'_>,
    accumulate: Option<&GpuWeights<RnnConfig>>,
) -> Result<GpuRnnGrads> {
    if !tape.unbatched {
        return backward(on, w, tape, upstream, accumulate);
    }
    let cfg = &tape.config;
    let (tl, ld) = (tape.dims.seq_len, cfg.num_layers * cfg.num_directions());
    let y_batched = cfg.output_shape(tape.dims);
    let as_batch =
        |t: Option<&GpuTensor>, arg: &'static str, flat: [usize; 2], batched: &[usize]| {
            t.map(|t| {
                expect_f32(OP, arg, t, &flat)?;
                t.reshaped(batched.to_vec())
            })
            .transpose()
        };
    let dy = as_batch(upstream.dy, "dy", [tl, cfg.output_size()], &y_batched)?;
    let (hs, cs) = (cfg.state_size(), cfg.hidden_size);
    let dh_n = as_batch(upstream.dh_n, "dh_n", [ld, hs], &[ld, 1, hs])?;
    let dc_n = as_batch(upstream.dc_n, "dc_n", [ld, cs], &[ld, 1, cs])?;
    let batched = GpuRnnOutputGrads {
        dy: dy.as_ref(),
        dh_n: dh_n.as_ref(),
        dc_n: dc_n.as_ref(),
    };
    let g = backward(on, w, tape, batched, accumulate)?;
    Ok(GpuRnnGrads {
        dx: drop_batch(&g.dx)?,
        dh0: drop_batch(&g.dh0)?,
        dc0: g.dc0.as_ref().map(drop_batch).transpose()?,
        weights: g.weights,
    })
}

fn backward<'c>(
    on: impl Record<'c>,
    w: &GpuWeights<RnnConfig>,
    tape: &GpuRnnTape,
    upstream: GpuRnnOutputGrads<'_>,
    accumulate: Option<&GpuWeights<RnnConfig>>,
) -> Result<GpuRnnGrads> {
    let ctx = on.context();
    let call = BackwardCall::new(ctx, w, tape, upstream, accumulate)?;
    let cfg = w.config();
    let tl = tape.dims.seq_len;
    let mut rec = on.begin(OP);
    let inner = projection::inner_weights(&mut rec, OP, w)?;
    let call = BackwardCall {
        w: inner.as_ref().unwrap_or(w),
        ..call
    };
    let (dh0, dc0) = alloc_states(ctx, OP, cfg, tape.dims.batch, ("dh0", "dc0"))?;
    let grads = grads_or(ctx, OP, cfg, accumulate)?;
    let add = accumulate.is_some();
    let d_top = match upstream.dy {
        Some(dy) => dy.clone(),
        None => {
            let z = ctx.alloc(OP, "dy", &cfg.output_shape(tape.dims), DType::F32)?;
            rec.clear(&z);
            z
        }
    };
    // As in the forward, unidirectional stacks of per-step layers run as a wavefront (see
    // `Wavefront`), here from the top layer down and from the last step back.
    let wave = Wavefront::of(ctx, cfg, call.path, call.max_len);
    // From the top layer down: each reads the gradient of its output from the layer above.
    let mut runs: Vec<LayerBack> = Vec::with_capacity(cfg.num_layers);
    for layer in (0..cfg.num_layers).rev() {
        let (d_out, d_out_batch_first) = match runs.last() {
            None => (d_top.clone(), cfg.batch_first),
            Some(above) => (above.d_inp.clone(), false),
        };
        // Through the inter-layer dropout on this layer's output: the layer above's dX masked
        // (here over every row, or chunk by chunk in the wavefront's handoffs).
        let undrop = Undrop::new(&mut rec, cfg, tape, layer, &d_out)?;
        let d_out = undrop.as_ref().map_or(d_out, |u| u.masked.clone());
        if let (Some(u), None) = (&undrop, &wave) {
            u.record(&mut rec, 0..tl)?;
        }
        let mut run = LayerBack::new(&mut rec, &call, layer, d_out, d_out_batch_first)?;
        run.undrop = undrop;
        if layer + 1 == cfg.num_layers || wave.is_none() {
            run.grad_to_cell(&mut rec, 0..tl)?;
        }
        if wave.is_none() {
            run.all_steps(&mut rec)?;
            run.weight_grads(&mut rec, &grads, add)?;
            run.dx(&mut rec, 0..tl)?;
        }
        runs.push(run);
    }
    if let Some(wave) = wave {
        let stack = BackwardStack {
            runs: &runs,
            grads: &grads,
            add,
        };
        wave.record(&mut rec, &stack, runs.len(), true)?;
        if let Some(bottom) = runs.last() {
            bottom.dx(&mut rec, 0..tl)?;
        }
    }
    for run in &runs {
        run.finish(&mut rec, &dh0, dc0.as_ref())?;
    }
    let dx = runs.pop().map(|r| r.d_inp).ok_or_else(no_layers)?;
    rec.finish()?;
    Ok(GpuRnnGrads {
        dx,
        dh0,
        dc0,
        weights: grads,
    })
}

/// One backward call, checked: its weights, tape and upstream gradients, and the step path of
/// its forward.
struct BackwardCall<'a> {
    /// The weights the kernels run (with a projection, W_hh·W_hr in W_hh's place).
    w: &'a GpuWeights<RnnConfig>,
    /// The model's own weights.
    model: &'a GpuWeights<RnnConfig>,
    tape: &'a GpuRnnTape,
    upstream: GpuRnnOutputGrads<'a>,
    max_len: usize,
    path: StepPath,
}

impl<'a> BackwardCall<'a> {
    /// Checks the call's arguments against each other, the tape and the device.
    fn new(
        ctx: &Context,
        w: &'a GpuWeights<RnnConfig>,
        tape: &'a GpuRnnTape,
        upstream: GpuRnnOutputGrads<'a>,
        accumulate: Option<&GpuWeights<RnnConfig>>,
    ) -> Result<Self> {
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
        let state_shape = cfg.state_shape(nb);
        if let Some(dy) = upstream.dy {
            expect_f32(OP, "dy", dy, &cfg.output_shape(tape.dims))?;
        }
        if let Some(d) = upstream.dh_n {
            expect_f32(OP, "dh_n", d, &state_shape)?;
        }
        if let Some(d) = upstream.dc_n {
            if !cfg.cell.has_cell_state() {
                return Err(Error::InvalidArgument {
                    op: OP,
                    arg: "dc_n",
                    reason: format!("is only for LSTM, the cell is {}", cfg.cell.name()),
                });
            }
            expect_f32(OP, "dc_n", d, &cfg.cell_state_shape(nb))?;
        }
        let max_len = tape.lengths.iter().copied().max().unwrap_or(tl);
        if cfg.proj_size > 0 && tape.proj.is_none() {
            return Err(Error::invalid_argument(
                OP,
                "tape",
                "of a projected layer lacks its projection's tape",
            ));
        }
        Ok(Self {
            w,
            model: w,
            tape,
            upstream,
            max_len,
            path: step_path(ctx, cfg, nb, max_len),
        })
    }

    /// The input of `layer` as the B operand of `dW_ih = dGᵀ·X`: rows f, k = the T·B rows.
    fn input_rows(&self, rec: &mut Recorder<'_>, layer: usize) -> Result<Packed> {
        let xin = &self.tape.layer_in[layer];
        let in_w = self.w.config().layer_input_size(layer);
        let x = Strided {
            t: &xin.t,
            rows: in_w,
            k: self.tape.dims.seq_len * self.tape.dims.batch,
            inner: in_w,
            s_inner: xin.s_f,
            s_outer: 0,
            s_k: xin.s_r,
            off: 0,
        };
        pack(rec, x)
    }

    /// Per direction of `layer`: `W_hh` packed transposed into `packed` (where the steps read
    /// it packed), `W_ih` packed as dX's right operand (returned), and dh_n and dc_n into
    /// `dstate`'s slot 0.
    fn prepare_directions(
        &self,
        rec: &mut Recorder<'_>,
        layer: usize,
        packed: Option<&GpuTensor>,
        dstate: &GpuTensor,
    ) -> Result<Vec<Packed>> {
        let (w, cfg) = (self.w, self.w.config());
        let (h, nd, nb) = (cfg.hidden_size, cfg.num_directions(), self.tape.dims.batch);
        let (gh, in_w) = (cfg.cell.gates() * h, cfg.layer_input_size(layer));
        let w_slots = packed_slots(cfg.cell, h);
        let mut w_cols = Vec::with_capacity(nd);
        for dir in 0..nd {
            let idx = layer * nd + dir;
            let sfx = RnnConfig::suffix(layer, dir);
            if let Some(wt) = packed {
                let w_hh = w.get(&format!("weight_hh{sfx}"))?;
                pack_w_hh_into(rec, w_hh, cfg.cell, h, true, wt, dir * w_slots)?;
            }
            let w_ih = w.get(&format!("weight_ih{sfx}"))?;
            w_cols.push(pack(rec, Strided::cols(w_ih, gh, in_w, 0))?);
            let st = dir * 4 * nb * h;
            match (self.upstream.dh_n, cfg.proj_size) {
                (Some(d), 0) => rec.copy(d, idx * nb * h, dstate, st, nb * h),
                // The cell outputs' dm_n = dh_n·W_hr.
                (Some(d), p) => projection::product(
                    rec,
                    Strided::rows(d, nb, p, idx * nb * p),
                    Strided::cols(self.model.get(&format!("weight_hr{sfx}"))?, p, h, 0),
                    Out {
                        off: st,
                        ..Out::rows(dstate, h)
                    },
                )?,
                (None, _) => {}
            }
            if let Some(d) = self.upstream.dc_n {
                rec.copy(d, idx * nb * h, dstate, st + nb * h, nb * h);
            }
        }
        Ok(w_cols)
    }

    /// The reverse steps' parameter block, for dG laid out as `dg` says and the output
    /// gradient batch-first where `d_out_batch_first`.
    fn back_params(&self, d_out_batch_first: bool, plan: &PanelPlan, dg: DgLayout) -> BackParams {
        let cfg = self.w.config();
        let (tl, nb) = (self.tape.dims.seq_len, self.tape.dims.batch);
        let (h, nd) = (cfg.hidden_size, cfg.num_directions());
        let layout = TapeLayout::new(cfg.cell, tl * nb, h);
        let (d_rs_t, d_rs_b) = out_strides(d_out_batch_first, tl, nb, nd * h);
        let (extra1, extra2) = cell_extras(cfg.cell, &layout);
        BackParams {
            batch: nb as u32,
            hidden: h as u32,
            step: 0,
            win_rows: plan.rows as u32,
            d_rs_t: d_rs_t as u32,
            d_rs_b: d_rs_b as u32,
            _pad_d: 0,
            parity: 0,
            tape_gates: layout.gates as u32,
            tape_hprev: layout.h_prev as u32,
            extra1: extra1 as u32,
            extra2: extra2 as u32,
            last: 0,
            dgh_off: dg.dgh_off as u32,
            _pad_z: 0,
            splits: plan.splits() as u32,
            wt_dir: packed_slots(cfg.cell, h) as u32,
            tape_dir: layout.len as u32,
            dg_dir: dg.len as u32,
            ..Default::default()
        }
    }
}

/// Where a layer's gate gradients lie: per direction `[dGi | dGh (GRU) | one zero row]`, `len`
/// floats, dGh `dgh_off` floats in. Rows with no next step read the zero row.
#[derive(Clone, Copy, Debug)]
struct DgLayout {
    len: usize,
    dgh_off: usize,
}

impl DgLayout {
    fn new(cell: CellKind, rows: usize, gh: usize) -> Self {
        let gru = cell == CellKind::Gru;
        let zero_row = rows * gh * if gru { 2 } else { 1 };
        Self {
            len: zero_row + gh,
            dgh_off: if gru { rows * gh } else { 0 },
        }
    }
}

/// The kernel of a reverse step on `path` and its workgroups (z = direction): the fused step's
/// invocations take one row and one unit (Elman: four), the split steps' cell kernel one row
/// and four units; the persistent kernel is one workgroup per direction, which runs every
/// reverse step and the final pass. The split cell kernel reads no weights, so it keeps the
/// f32 shader. Beside it, a two-phase cell's second pass of a step (per-step paths; the
/// persistent kernel runs both), on the same workgroups.
fn back_dispatch(
    ctx: &Context,
    cfg: &RnnConfig,
    path: StepPath,
    nb: usize,
) -> (Kernel, Option<Kernel>, [u32; 3]) {
    let (h, nd) = (cfg.hidden_size, cfg.num_directions());
    let units4 = h.div_ceil(4);
    let (kernel, groups) = match path {
        StepPath::Split => (
            cell_kernel(cfg),
            [units4.div_ceil(64) as u32, nb as u32, nd as u32],
        ),
        StepPath::Persistent => (for_storage(ctx, seq_kernel(cfg)), [1, 1, nd as u32]),
        StepPath::Fused => {
            let gx = if by_unit(cfg.cell) { units4 } else { h };
            let groups = [gx.div_ceil(64) as u32, nb as u32, nd as u32];
            (for_storage(ctx, step_kernel(cfg)), groups)
        }
    };
    (kernel, mid_kernel(cfg, kernel), groups)
}

/// The storage buffers of the reverse step kernels in binding order: the weights (the split
/// steps' partial products in their place), the lengths, the output gradient, the forward's
/// tape, the carries, dG.
fn back_buffers(
    first: GpuTensor,
    lengths: &GpuTensor,
    d_out: GpuTensor,
    tape: &GpuTensor,
    dstate: &GpuTensor,
    dg: &GpuTensor,
) -> [GpuTensor; 6] {
    [
        first,
        lengths.clone(),
        d_out,
        tape.clone(),
        dstate.clone(),
        dg.clone(),
    ]
}

/// One layer of a backward call: its buffers, reverse steps, weight gradients and dX, recorded
/// in any order that respects the data (see [`Wavefront`]).
struct LayerBack<'t> {
    layer: usize,
    cfg: RnnConfig,
    tape: &'t GpuRnnTape,
    projected: Option<ProjectedBack<'t>>,
    /// With inter-layer dropout below the last layer: how its output gradient is masked.
    undrop: Option<Undrop>,
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
    /// A two-phase cell's second pass of a reverse step (per-step paths).
    mid: Option<Kernel>,
    groups: [u32; 3],
    params: BackParams,
    bufs: [GpuTensor; 6],
    split: Option<SplitBack>,
    plan: PanelPlan,
    gather: GatherParams,
    path: StepPath,
    max_len: usize,
    /// Per direction: `W_ih` packed as dX's right operand.
    w_cols: Vec<Packed>,
}

impl<'t> LayerBack<'t> {
    /// Allocates the layer's buffers and records what comes before its first reverse step:
    /// `W_hh` in the steps' layout, `W_ih` for dX, the layer's input for dW_ih, the carries
    /// from dh_n and dc_n. `d_out` is the gradient of the layer's output.
    fn new(
        rec: &mut Recorder<'_>,
        call: &BackwardCall<'t>,
        layer: usize,
        d_out: GpuTensor,
        d_out_batch_first: bool,
    ) -> Result<Self> {
        let ctx = rec.ctx();
        let (cfg, tape) = (call.w.config(), call.tape);
        let RnnDims {
            seq_len: tl,
            batch: nb,
        } = tape.dims;
        let (h, nd) = (cfg.hidden_size, cfg.num_directions());
        let gh = cfg.cell.gates() * h;
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
        let x_rows = call.input_rows(rec, layer)?;
        // As in the forward, every direction of the layer lives in one tensor per kind
        // (packed W_hh, dstate, dG, and the forward's tape), and each reverse step is one
        // dispatch over all directions (z = direction).
        let dgl = DgLayout::new(cfg.cell, tl * nb, gh);
        // W_hh for the fused and persistent kernels' reverse product, packed transposed (the
        // split steps pad its PyTorch rows instead, see SplitBack).
        let wt = match call.path {
            StepPath::Split => None,
            _ => Some(alloc_packed(rec, cfg.cell, h, nd)?),
        };
        let dstate = ctx.alloc(OP, "dstate", &[nd, 2, 2, nb, h], DType::F32)?;
        rec.clear(&dstate);
        let dg = ctx.alloc(OP, "dG", &[nd * dgl.len], DType::F32)?;
        // Padded rows stay zero: the GEMMs below run over all T·B rows.
        rec.clear(&dg);
        let w_cols = call.prepare_directions(rec, layer, wt.as_ref(), &dstate)?;
        // The split steps' product dG·W_hh: k = G·H, columns H.
        let plan = PanelPlan::new(nb, gh, h);
        // The split path's cell kernel binds the partial products where the others bind W_hh.
        let (first, split) = match wt {
            Some(wt) => (wt, None),
            None => {
                let split = SplitBack::new(rec, OP, call.w, layer, &plan)?;
                (split.part.clone(), Some(split))
            }
        };
        let (kernel, mid, groups) = back_dispatch(ctx, cfg, call.path, nb);
        // With a projection the kernels read dm = dy·W_hr, sequence-major.
        let projected = ProjectedBack::new(rec, call, layer, &d_out, d_out_batch_first)?;
        let (d_out, d_out_batch_first) = match &projected {
            Some(pr) => (pr.dm.clone(), false),
            None => (d_out, d_out_batch_first),
        };
        let params = call.back_params(d_out_batch_first, &plan, dgl);
        let dtape = &tape.layers[layer];
        let bufs = back_buffers(first, &tape.lengths_dev, d_out, dtape, &dstate, &dg);
        Ok(Self {
            layer,
            cfg: cfg.clone(),
            tape,
            projected,
            undrop: None,
            d_inp,
            in_batch_first,
            x_rows,
            dstate,
            dg,
            dg_len: dgl.len,
            dgh_off: dgl.dgh_off,
            kernel,
            mid,
            groups,
            params,
            bufs,
            split,
            gather: plan.gather_params(dgl.len, dgl.dgh_off),
            plan,
            path: call.path,
            max_len: call.max_len,
            w_cols,
        })
    }

    /// The reverse step over time `s`, or with `last` the final pass that turns the carries
    /// and dG of step 0 into dh0, dc0. Steps run from `max_len - 1` down, alternating the
    /// dstate slots; a two-phase cell's steps (not its final pass) run their second pass
    /// after the first, on the split path after its own product.
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
        let second = self.mid.filter(|_| !last);
        let Some(SplitBack {
            part,
            panels,
            wp,
            mid,
        }) = &self.split
        else {
            rec.dispatch(self.kernel, &p, &bufs, self.groups)?;
            return match second {
                Some(k) => rec.dispatch(k, &p, &bufs, self.groups),
                None => Ok(()),
            };
        };
        let nd = self.cfg.num_directions();
        let gbufs = [&self.tape.lengths_dev, &self.dg, panels];
        self.plan.gather(rec, &self.gather, s, last, nd, gbufs)?;
        self.plan.record(rec, panels, wp, part)?;
        let mut cell_bufs = bufs.clone();
        cell_bufs.push(part);
        // A two-phase cell's first pass writes its second product's window.
        cell_bufs.extend(mid.as_ref().map(|m| &m.panels));
        rec.dispatch(self.kernel, &p, &cell_bufs, self.groups)?;
        if let (Some(m), Some(k)) = (mid, second) {
            m.plan.record(rec, &m.panels, &m.wp, &m.part)?;
            let p = BackParams {
                splits: m.plan.splits() as u32,
                ..p
            };
            let mut mid_bufs = bufs;
            mid_bufs.push(&m.part);
            rec.dispatch(k, &p, &mid_bufs, self.groups)?;
        }
        Ok(())
    }

    /// Every reverse step and the final pass, layer after layer.
    fn all_steps(&self, rec: &mut Recorder<'_>) -> Result<()> {
        if self.path == StepPath::Persistent {
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
        let layout = TapeLayout::new(cfg.cell, rows, h);
        // The reset-before GRU's b_hn sums dn, which its dGh leaves out: its b_hh gradient is
        // its b_ih one (dGi).
        let b_hh_off = if two_phase(cfg) { 0 } else { self.dgh_off };
        for dir in 0..nd {
            let sfx = RnnConfig::suffix(self.layer, dir);
            let layout = layout.at(dir * layout.len);
            let doff = dir * self.dg_len;
            let dgi_t = pack_lhs(rec, Strided::cols(&self.dg, rows, gh, doff))?;
            gemm(
                rec,
                &dgi_t,
                &self.x_rows,
                None,
                Out::rows(grads.get(&format!("weight_ih{sfx}"))?, in_w).accumulate(add),
            )?;
            let d_hh = grads.get(&format!("weight_hh{sfx}"))?;
            match &self.projected {
                None => self.w_hh_grad(rec, &dgi_t, doff, &layout, d_hh, add)?,
                Some(pr) => {
                    // dW' for W_hh·W_hr, then the model's two gradients from it.
                    let dw_prime = rec.ctx().alloc(OP, "dW'", &[gh, h], DType::F32)?;
                    self.w_hh_grad(rec, &dgi_t, doff, &layout, &dw_prime, false)?;
                    let d_hr = grads.get(&format!("weight_hr{sfx}"))?;
                    let g = pr.grads(self, dir, &dw_prime);
                    projection::weight_grads(rec, &g, (d_hh, d_hr), (gh, h, pr.p), add)?;
                }
            }
            if cfg.bias {
                let b_ih = grads.get(&format!("bias_ih{sfx}"))?;
                col_sum(rec, &self.dg, doff, rows, gh, b_ih, add)?;
                let b_hh = grads.get(&format!("bias_hh{sfx}"))?;
                col_sum(rec, &self.dg, doff + b_hh_off, rows, gh, b_hh, add)?;
            }
        }
        Ok(())
    }

    /// `dW_hh = dGhᵀ·H_prev` over all T·B rows of the direction whose dG is `doff` floats in
    /// (`dgi_t` its dGi packed, dGh where the cell has no other), into (or added to) `out`. A
    /// two-phase cell's n rows multiplied r ⊙ h_prev: `dnᵀ·(r ⊙ h_prev)` from the tape, apart.
    fn w_hh_grad(
        &self,
        rec: &mut Recorder<'_>,
        dgi_t: &Packed,
        doff: usize,
        layout: &TapeLayout,
        out: &GpuTensor,
        add: bool,
    ) -> Result<()> {
        let cfg = &self.cfg;
        let (h, gh) = (cfg.hidden_size, cfg.cell.gates() * cfg.hidden_size);
        let rows = self.tape.dims.seq_len * self.tape.dims.batch;
        let dtape = &self.tape.layers[self.layer];
        let dgh = Strided::cols(&self.dg, rows, gh, doff + self.dgh_off);
        let two = two_phase(cfg);
        let dgh_t = if two {
            pack_lhs(rec, Strided { rows: 2 * h, ..dgh })?
        } else if cfg.cell == CellKind::Gru {
            pack_lhs(rec, dgh)?
        } else {
            dgi_t.clone()
        };
        let h_prev = pack(rec, Strided::cols(dtape, rows, h, layout.h_prev))?;
        gemm(
            rec,
            &dgh_t,
            &h_prev,
            None,
            Out::rows(out, h).accumulate(add),
        )?;
        if !two {
            return Ok(());
        }
        let dn = Strided {
            rows: h,
            ..Strided::cols(&self.dg, rows, gh, doff + 2 * h)
        };
        let dn_t = pack_lhs(rec, dn)?;
        let rh = pack(rec, Strided::cols(dtape, rows, h, layout.extra1))?;
        let n_rows = Out {
            off: 2 * h * h,
            ..Out::rows(out, h)
        };
        gemm(rec, &dn_t, &rh, None, n_rows.accumulate(add))
    }

    /// dX = dG·W_ih over the times `ts`, the second direction adding to the first.
    fn dx(&self, rec: &mut Recorder<'_>, ts: Range<usize>) -> Result<()> {
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

    /// Copies dh0 (and dc0) out of the final pass's dstate slot; with a projection dh0 =
    /// dG_first·W_hh instead (m_0 is no input there, see `projection`).
    fn finish(
        &self,
        rec: &mut Recorder<'_>,
        dh0: &GpuTensor,
        dc0: Option<&GpuTensor>,
    ) -> Result<()> {
        let nb = self.tape.dims.batch;
        let (h, nd) = (self.cfg.hidden_size, self.cfg.num_directions());
        let gh = self.cfg.cell.gates() * h;
        let parity = self.max_len % 2;
        for dir in 0..nd {
            let idx = self.layer * nd + dir;
            let fin = dir * 4 * nb * h + (1 - parity) * 2 * nb * h;
            match &self.projected {
                None => rec.copy(&self.dstate, fin, dh0, idx * nb * h, nb * h),
                Some(pr) => projection::dh0_from_first(
                    rec,
                    &pr.w_hh[dir],
                    &self.dg,
                    dir * self.dg_len,
                    dh0,
                    &self.tape.lengths,
                    (idx, dir),
                    (gh, pr.p),
                )?,
            }
            if let Some(dc0) = dc0 {
                rec.copy(&self.dstate, fin + nb * h, dc0, idx * nb * h, nb * h);
            }
        }
        Ok(())
    }

    /// With a projection, dm = dy·W_hr over the times `ts` (once the layer above has its dX
    /// there).
    fn grad_to_cell(&self, rec: &mut Recorder<'_>, ts: Range<usize>) -> Result<()> {
        let Some(pr) = &self.projected else {
            return Ok(());
        };
        for dir in 0..self.cfg.num_directions() {
            let rows = DirRows { dir, ..pr.dy_rows };
            let sizes = (self.cfg.hidden_size, pr.p);
            projection::grad_to_cell(rec, &pr.w_hr[dir], &pr.dy, rows, &pr.dm, sizes, ts.clone())?;
        }
        Ok(())
    }
}

/// The gradient through the inter-layer dropout on a layer's output: the layer above's dX
/// (`from`) times the forward's mask, into `masked`, which the layer's backward reads.
struct Undrop {
    from: GpuTensor,
    masked: GpuTensor,
    cfg: DropoutConfig,
    seed: u64,
    layer: usize,
}

impl Undrop {
    /// For `layer` of a call whose config drops its output (every layer but the last).
    fn new(
        rec: &mut Recorder<'_>,
        cfg: &RnnConfig,
        tape: &GpuRnnTape,
        layer: usize,
        d_out: &GpuTensor,
    ) -> Result<Option<Self>> {
        let drop = DropoutConfig::new(cfg.dropout as f64);
        if !drop.is_active() || layer + 1 == cfg.num_layers {
            return Ok(None);
        }
        let masked = rec
            .ctx()
            .alloc(OP, "dy through dropout", d_out.shape(), DType::F32)?;
        Ok(Some(Self {
            from: d_out.clone(),
            masked,
            cfg: drop,
            seed: tape.seed,
            layer,
        }))
    }

    /// The masked gradient over the times `ts` (rows `t·B + b`, sequence-major).
    fn record(&self, rec: &mut Recorder<'_>, ts: Range<usize>) -> Result<()> {
        let s = self.from.shape();
        let row = s[1] * s[2];
        let mask = dropout::Mask {
            cfg: &self.cfg,
            seed: self.seed,
            stream: self.layer as u32,
        };
        dropout::record(
            rec,
            &self.from,
            &self.masked,
            &mask,
            ts.start * row..ts.end * row,
        )
    }
}

/// What a layer with a projection adds to its backward: the gradient of its output and of
/// its cell outputs, and the model's W_hh and W_hr per direction.
struct ProjectedBack<'t> {
    dy: GpuTensor,
    dy_rows: DirRows,
    dm: GpuTensor,
    w_hh: Vec<GpuTensor>,
    w_hr: Vec<GpuTensor>,
    tape: &'t ProjTape,
    dh_n: Option<GpuTensor>,
    p: usize,
}

impl<'t> ProjectedBack<'t> {
    fn new(
        rec: &mut Recorder<'_>,
        call: &BackwardCall<'t>,
        layer: usize,
        dy: &GpuTensor,
        dy_batch_first: bool,
    ) -> Result<Option<Self>> {
        let (model, cfg) = (call.model, call.model.config());
        let Some(tape) = &call.tape.proj else {
            return Ok(None);
        };
        let RnnDims {
            seq_len: tl,
            batch: nb,
        } = call.tape.dims;
        let (h, nd) = (cfg.hidden_size, cfg.num_directions());
        let dm = rec.ctx().alloc(OP, "dm", &[tl, nb, nd * h], DType::F32)?;
        let get = |name: &str| -> Result<Vec<GpuTensor>> {
            (0..nd)
                .map(|dir| {
                    let sfx = RnnConfig::suffix(layer, dir);
                    model.get(&format!("{name}{sfx}")).cloned()
                })
                .collect()
        };
        Ok(Some(Self {
            dy: dy.clone(),
            dy_rows: DirRows {
                tl,
                nb,
                nd,
                dir: 0,
                batch_first: dy_batch_first,
            },
            dm,
            w_hh: get("weight_hh")?,
            w_hr: get("weight_hr")?,
            tape,
            dh_n: call.upstream.dh_n.cloned(),
            p: cfg.proj_size,
        }))
    }

    /// The projection's gradient inputs for direction `dir` of `run`.
    fn grads<'a>(
        &'a self,
        run: &'a LayerBack<'_>,
        dir: usize,
        dw_prime: &'a GpuTensor,
    ) -> ProjGrads<'a> {
        ProjGrads {
            w_hh: &self.w_hh[dir],
            w_hr: &self.w_hr[dir],
            dw_prime,
            dg: &run.dg,
            doff: dir * run.dg_len,
            dy: &self.dy,
            dy_rows: DirRows {
                dir,
                ..self.dy_rows
            },
            lens_dev: &run.tape.lengths_dev,
            m: &self.tape.m[run.layer],
            m_n: &self.tape.m_n,
            h0: self.tape.h0.as_ref(),
            dh_n: self.dh_n.as_ref(),
            lengths: &run.tape.lengths,
            idx: run.layer * run.cfg.num_directions() + dir,
        }
    }
}

/// The backward's layers as the wavefront records them, top layer first: each layer's reverse
/// steps over a chunk, once the layer above has its dX over the chunk's rows, and after its
/// last chunk the final pass and its weight gradients.
struct BackwardStack<'r, 't> {
    runs: &'r [LayerBack<'t>],
    grads: &'r GpuWeights<RnnConfig>,
    add: bool,
}

impl WaveRun for BackwardStack<'_, '_> {
    fn handoff(&self, rec: &mut Recorder<'_>, k: usize, ts: Range<usize>) -> Result<()> {
        self.runs[k - 1].dx(rec, ts.clone())?;
        if let Some(u) = &self.runs[k].undrop {
            u.record(rec, ts.clone())?;
        }
        self.runs[k].grad_to_cell(rec, ts)
    }

    fn step(&self, rec: &mut Recorder<'_>, k: usize, t: usize) -> Result<()> {
        self.runs[k].step(rec, t, false)
    }

    /// A layer past its first step: the pass that turns its carries into dh0, dc0, then its
    /// weight gradients.
    fn done(&self, rec: &mut Recorder<'_>, k: usize) -> Result<()> {
        self.runs[k].step(rec, 0, true)?;
        self.runs[k].weight_grads(rec, self.grads, self.add)
    }
}
