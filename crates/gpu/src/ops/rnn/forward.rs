//! The forward pass of the recurrent layers.
//!
//! Per layer the input is packed once; per direction one GEMM computes the input projection of
//! all T·B rows (biases folded in), then one fused step kernel per timestep runs the recurrence
//! (on CPU adapters, a product that reads h_prev through uniform windows, then a cell kernel).
//! Unidirectional stacks can run as a wavefront instead (see `wavefront_chunk`): chunks of
//! steps, each with its own input projection, each layer a chunk behind the one below. Every
//! dispatch of every layer and direction goes into one command encoder and one submit.

use bytemuck::{Pod, Zeroable};
use wgrnn_core::{CellKind, Error, Result, RnnConfig, RnnDims};

use super::kernels::{for_storage, seq_kernel, split_cell_kernel, step_kernel};
use super::path::{persistent_path, split_path};
use super::wavefront::wavefront_chunk;
use super::{
    GpuRnnInput, GpuRnnOutput, GpuRnnTape, LayerInput, Mode, TapeLayout, check_batch,
    check_weight_buffers, no_layers,
};
use crate::ops::matmul::{
    Out, Packed, SeqMask, Strided, gemm, pack, pack_into, pack_lhs, pack_lhs_masked, pack_masked,
};
use crate::ops::pack::{alloc_packed, by_unit, fold_bias, pack_w_hh_into, packed_slots, w_hh_rows};
use crate::ops::recurrent::{PanelPlan, WChunk};
use crate::runtime::context::Context;
use crate::runtime::pipeline::Kernel;
use crate::runtime::record::Recorder;
use crate::runtime::tensor::{DType, GpuTensor, OnContext, expect_f32};
use crate::runtime::weights::GpuWeights;

const OP: &str = "gpu rnn_forward";

/// The parameter block shared by the three step kernels (the last four words differ by cell).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct StepParams {
    batch: u32,
    hidden: u32,
    step: u32,
    win_rows: u32,
    y_rs_t: u32,
    y_rs_b: u32,
    splits: u32,
    save: u32,
    tape_gates: u32,
    tape_hprev: u32,
    extra1: u32,
    extra2: u32,
    gi_dir: u32,
    w_dir: u32,
    tape_dir: u32,
    _pad: u32,
}

fn check_u32(v: usize, what: &str) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::TooLarge {
        op: OP,
        arg: what.into(),
        size: v as u64,
        unit: "elements",
        limit_name: "u32 index",
        limit: u32::MAX as u64,
    })
}

/// Forward pass of a recurrent layer on the device, with the CPU reference's semantics
/// (`wgrnn_cpu::rnn_forward`): PyTorch names and gate orders, packed-sequence lengths.
pub fn rnn_forward(
    ctx: &Context,
    w: &GpuWeights<RnnConfig>,
    input: GpuRnnInput<'_>,
    mode: Mode,
) -> Result<GpuRnnOutput> {
    w.check_context(ctx, OP, "w")?;
    input.x.check_context(ctx, OP, "x")?;
    input.h0.check_context(ctx, OP, "h0")?;
    input.c0.check_context(ctx, OP, "c0")?;
    let cfg = w.config();
    check_weight_buffers(ctx, OP, cfg)?;
    let dims = cfg.check_inputs(
        OP,
        input.x.shape(),
        input.h0.map(GpuTensor::shape),
        input.c0.map(GpuTensor::shape),
        input.lengths,
    )?;
    let RnnDims {
        seq_len: tl,
        batch: nb,
    } = dims;
    let state_shape = cfg.state_shape(nb);
    expect_f32(OP, "x", input.x, input.x.shape())?;
    if let Some(h0) = input.h0 {
        expect_f32(OP, "h0", h0, &state_shape)?;
    }
    if let Some(c0) = input.c0 {
        expect_f32(OP, "c0", c0, &state_shape)?;
    }
    // Training is held to the reverse steps' bound, so that its backward can run.
    let train = mode == Mode::Training;
    let lengths = input
        .lengths
        .map_or_else(|| vec![tl; nb], <[usize]>::to_vec);
    let max_len = lengths.iter().copied().max().unwrap_or(tl);
    let persistent = persistent_path(ctx, cfg, nb, max_len);
    let fused_rows = if split_path(ctx, cfg, persistent) || train {
        1
    } else {
        4
    };
    check_batch(ctx, OP, input.x.shape(), nb, fused_rows)?;
    let padded = lengths.iter().any(|&l| l < tl);
    let (h, g, nd) = (cfg.hidden_size, cfg.cell.gates(), cfg.num_directions());
    let gh = g * h;
    let rows = tl * nb;
    let lstm = cfg.cell.has_cell_state();
    let _ = check_u32(nd * rows * (gh + 3 * h), "tape")?;

    let mut rec = Recorder::new(ctx, OP);
    let lens32: Vec<u32> = lengths.iter().map(|&l| l as u32).collect();
    let lengths_dev = ctx.upload_u32(&[nb], &lens32)?;
    let h_n = ctx.alloc(OP, "h_n", &state_shape, DType::F32)?;
    let c_n = if lstm {
        Some(ctx.alloc(OP, "c_n", &state_shape, DType::F32)?)
    } else {
        None
    };

    // Unidirectional stacks of per-step layers run as a wavefront over layers × time (see
    // `wavefront_chunk`); otherwise layer after layer.
    let chunk = wavefront_chunk(ctx, cfg, persistent, max_len);
    let mut runs: Vec<LayerRun> = Vec::with_capacity(cfg.num_layers);
    let mut layer_in = Vec::new();
    for layer in 0..cfg.num_layers {
        let in_w = cfg.layer_input_size(layer);
        let last = layer + 1 == cfg.num_layers;
        let run = LayerRun::new(
            &mut rec,
            w,
            &input,
            LayerGeom {
                layer,
                dims,
                max_len,
                out_batch_first: last && cfg.batch_first,
                padded,
                train,
                persistent,
            },
            &lengths_dev,
        )?;
        // The layer input, row m = t·B + b: the call's x (maybe batch-first), or the previous
        // layer's output (always sequence-major).
        let x_view = match runs.last() {
            None if cfg.batch_first => Strided {
                t: input.x,
                rows,
                k: in_w,
                inner: nb,
                s_inner: tl * in_w,
                s_outer: in_w,
                s_k: 1,
                off: 0,
            },
            None => Strided::rows(input.x, rows, in_w, 0),
            Some(prev) => Strided::rows(&prev.out, rows, in_w, 0),
        };
        // The projection over all rows: the first layer's always (it waits for nothing), the
        // others' unless the wavefront projects them chunk by chunk.
        // The call's padded steps are packed as zeros, so that nothing they hold reaches a
        // product (backward's dW_ih sums over every row); the layers above read outputs that
        // are zero there already.
        let mask = (layer == 0 && padded).then_some(SeqMask {
            lens: &lengths_dev,
            seq_n: nb,
            seq_outer: false,
            on_k: false,
        });
        let xt = if layer == 0 && train {
            // Packed plainly K-major, as backward's dW_ih = dGᵀ·X reads it too (the caller may
            // reuse x).
            let xt = match mask {
                Some(m) => pack_masked(&mut rec, x_view, m)?,
                None => pack(&mut rec, x_view)?,
            };
            layer_in.push(LayerInput::packed(&xt));
            Some(xt)
        } else {
            if let (Some(prev), true) = (runs.last(), train) {
                layer_in.push(LayerInput::rows(&prev.out, in_w));
            }
            let whole = layer == 0 || chunk.is_none();
            whole
                .then(|| pack_lhs_masked(&mut rec, x_view, mask))
                .transpose()?
        };
        if let Some(xt) = xt {
            run.project(&mut rec, &xt, 0)?;
        }
        if chunk.is_none() {
            for s in 0..run.dispatches {
                run.step(&mut rec, s)?;
            }
        }
        runs.push(run);
    }
    if let Some(chunk) = chunk {
        // Wave v: layer l runs the steps of chunk v - l. Before its steps, the chunk's input
        // projection, whose rows the layer below finished in wave v - 1. Within a wave the
        // layers' steps alternate: layer l's step t and layer l + 1's step t - chunk touch no
        // common buffer, so a GPU runs them together (each layer's next step waits for both).
        let chunks = max_len.div_ceil(chunk);
        let span = |c: usize| c * chunk..((c + 1) * chunk).min(max_len);
        for wave in 0..chunks + runs.len() - 1 {
            let live = |l: usize| wave.checked_sub(l).filter(|&c| c < chunks);
            for l in 1..runs.len() {
                if let Some(c) = live(l) {
                    let ts = span(c);
                    let in_w = cfg.layer_input_size(l);
                    let view =
                        Strided::rows(&runs[l - 1].out, ts.len() * nb, in_w, ts.start * nb * in_w);
                    let xt = pack_lhs(&mut rec, view)?;
                    runs[l].project(&mut rec, &xt, ts.start * nb)?;
                }
            }
            for i in 0..chunk {
                for (l, run) in runs.iter().enumerate() {
                    if let Some(t) = live(l).map(|c| c * chunk + i).filter(|&t| t < max_len) {
                        run.step(&mut rec, t)?;
                    }
                }
            }
        }
    }
    for run in &runs {
        run.finish(&mut rec, &h_n, c_n.as_ref());
    }
    let tapes: Vec<GpuTensor> = runs.iter().map(|r| r.tape.clone()).collect();
    let y = runs.pop().map(|r| r.out).ok_or_else(no_layers)?;
    rec.submit()?;
    let tape = train.then(|| GpuRnnTape {
        config: cfg.clone(),
        dims,
        lengths,
        lengths_dev,
        layer_in,
        layers: tapes,
    });
    Ok(GpuRnnOutput { y, h_n, c_n, tape })
}

/// `W_ih` of one direction packed as the input projection's right operand, and its bias
/// `b = b_ih + b_hh` (GRU: without `b_hn`, which the cell applies inside the reset gate).
fn projection_weights(
    rec: &mut Recorder<'_>,
    w: &GpuWeights<RnnConfig>,
    sfx: &str,
    in_w: usize,
) -> Result<(Packed, Option<GpuTensor>)> {
    let ctx = rec.ctx();
    let cfg = w.config();
    let gh = cfg.cell.gates() * cfg.hidden_size;
    let w_ih = w.get(&format!("weight_ih{sfx}"))?;
    let wt = pack(rec, Strided::rows(w_ih, gh, in_w, 0))?;
    if !cfg.bias {
        return Ok((wt, None));
    }
    let folded = ctx.alloc(OP, "bias", &[gh], DType::F32)?;
    let skip_from = if cfg.cell == CellKind::Gru {
        2 * cfg.hidden_size
    } else {
        gh
    };
    let (b_ih, b_hh) = (
        w.get(&format!("bias_ih{sfx}"))?,
        w.get(&format!("bias_hh{sfx}"))?,
    );
    fold_bias(rec, b_ih, b_hh, skip_from, &folded)?;
    Ok((wt, Some(folded)))
}

/// The split steps' two h windows, padded `W_hh` and partial products.
struct SplitBufs {
    ha: GpuTensor,
    hb: GpuTensor,
    wp: Vec<WChunk>,
    part: GpuTensor,
}

/// `W_hh` of every direction of `layer` as the split steps' product reads it (see
/// [`PanelPlan::pad_w`]): column `4j + g` of a chunk is row `g·H + j` of `W_hh` (a GRU's fourth
/// column zero), Elman's column `j` row `j`. Each chunk is gathered from `W_hh` (rounded
/// through f16 where weights are stored so) into a buffer no larger than the chunk, then
/// padded.
fn split_w_hh(
    rec: &mut Recorder<'_>,
    w: &GpuWeights<RnnConfig>,
    layer: usize,
    plan: &PanelPlan,
) -> Result<Vec<WChunk>> {
    let cfg = w.config();
    let (h, g) = (cfg.hidden_size, cfg.cell.gates());
    let g4 = if by_unit(cfg.cell) { 1 } else { 4 };
    let mut rows: Option<GpuTensor> = None;
    plan.pad_w(rec, OP, cfg.num_directions(), |rec, dir, cols, dst, ldw| {
        let w_hh = w.get(&format!("weight_hh{}", RnnConfig::suffix(layer, dir)))?;
        let (u0, units) = (cols.start / g4, cols.len() / g4);
        let n = g4 * units * h;
        let tmp = match rows.take() {
            Some(t) if t.numel() >= n => t,
            _ => rec.ctx().alloc(OP, "W_hh rows", &[n], DType::F32)?,
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
        rows = Some(tmp);
        Ok(())
    })
}

/// Where a layer sits in its call.
struct LayerGeom {
    layer: usize,
    dims: RnnDims,
    max_len: usize,
    out_batch_first: bool,
    padded: bool,
    train: bool,
    persistent: bool,
}

/// One layer of a forward call: its buffers, input projection and steps, recorded in any
/// order that respects the data (see [`wavefront_chunk`]).
struct LayerRun {
    layer: usize,
    out: GpuTensor,
    gi: GpuTensor,
    state: GpuTensor,
    tape: GpuTensor,
    /// Per direction: `W_ih` packed as the projection's right operand, and the folded bias.
    proj: Vec<(Packed, Option<GpuTensor>)>,
    kernel: Kernel,
    groups: [u32; 3],
    params: StepParams,
    buffers: Vec<GpuTensor>,
    split: Option<SplitBufs>,
    plan: PanelPlan,
    /// Step dispatches: one per step, or one persistent dispatch (`step` = the step count).
    dispatches: usize,
    persistent: bool,
    nd: usize,
    nb: usize,
    h: usize,
    rows: usize,
    gh: usize,
    max_len: usize,
}

impl LayerRun {
    /// Allocates the layer's buffers and records what comes before its first step: `W_hh` in
    /// the steps' layout, `W_ih` and the biases for the projection, the initial states.
    fn new(
        rec: &mut Recorder<'_>,
        w: &GpuWeights<RnnConfig>,
        input: &GpuRnnInput<'_>,
        geom: LayerGeom,
        lengths_dev: &GpuTensor,
    ) -> Result<Self> {
        let ctx = rec.ctx();
        let cfg = w.config();
        let LayerGeom {
            layer,
            dims,
            max_len,
            out_batch_first,
            padded,
            train,
            persistent,
        } = geom;
        let (tl, nb) = (dims.seq_len, dims.batch);
        let (h, g, nd) = (cfg.hidden_size, cfg.cell.gates(), cfg.num_directions());
        let gh = g * h;
        let rows = tl * nb;
        let in_w = cfg.layer_input_size(layer);
        let out_shape = if out_batch_first {
            [nb, tl, nd * h]
        } else {
            [tl, nb, nd * h]
        };
        let out = ctx.alloc(OP, "y", &out_shape, DType::F32)?;
        if padded {
            rec.clear(&out);
        }
        // Every direction of the layer lives in one tensor per kind (gi, packed W_hh, state,
        // tape, b_hn), so each step is one dispatch over all directions (z = direction): the
        // two directions of a bidirectional layer overlap instead of running one after the
        // other.
        let layout = TapeLayout::new(cfg.cell, rows, h);
        let units4 = h.div_ceil(4);
        let w_slots = packed_slots(cfg.cell, h);
        let by_unit = by_unit(cfg.cell);
        let gx = if by_unit { units4 } else { h };
        // Small B·H: one persistent dispatch runs all steps (`step` = the number of steps).
        // Otherwise GPUs run one fused step per timestep, and CPU adapters split each step in
        // the product h_prev·W_hhᵀ (`rec_panel`, h_prev through uniform windows; see
        // PanelPlan) and the cell update (`*_cell_fwd`).
        let split = split_path(ctx, cfg, persistent);
        // The split steps' h windows: two buffers [dir][B / rows][H][rows], each block of 32
        // rows (16, 8 or 4 for smaller batches; see PanelPlan) K-major as `pack` lays them out,
        // padded to 64 floats, that the steps write and read in turn. The product multiplies
        // them by W_hhᵀ with each unit's gates side by side (GRU's three padded to four), so
        // that each vec4 of it is one accumulator of finish(); Elman's units in order.
        let plan = PanelPlan::new(nb, h, if by_unit { h } else { 4 * h });
        let split_bufs = if split {
            let ha = plan.alloc_panels(rec, OP, nd)?;
            let hb = plan.alloc_panels(rec, OP, nd)?;
            rec.clear(&ha);
            if let Some(h0) = input.h0 {
                // h0 [layers·dirs, B, H] → ha[dir][b / rows][j][b % rows].
                let r = plan.rows;
                for dir in 0..nd {
                    let idx = layer * nd + dir;
                    for blk in 0..plan.blocks {
                        let rows = (nb - r * blk).min(r);
                        let h0_rows = Strided {
                            off: (idx * nb + r * blk) * h,
                            ..Strided::rows(h0, rows, h, 0)
                        };
                        let off = dir * plan.dir_stride + blk * plan.blk_stride;
                        pack_into(rec, h0_rows, &ha, off, r)?;
                    }
                }
            }
            let wp = split_w_hh(rec, w, layer, &plan)?;
            let part = plan.alloc_part(rec, OP, nd)?;
            Some(SplitBufs { ha, hb, wp, part })
        } else {
            None
        };
        let gi = ctx.alloc(OP, "gi", &[nd, rows, gh], DType::F32)?;
        // The weight binding: the packed W_hh, or on the split path (whose cell kernel reads no
        // weights) the padded one.
        let w_buf = match split_bufs.as_ref().and_then(|b| b.wp.first()) {
            Some(c) => c.w.clone(),
            None => alloc_packed(rec, cfg.cell, h, nd)?,
        };
        // State slots [dir][2][h, c][B][H]; slot 0 holds h0 (and c0) before the first step.
        let state = ctx.alloc(OP, "state", &[nd, 2, 2, nb, h], DType::F32)?;
        rec.clear(&state);
        let tape = if train {
            let t = ctx.alloc(OP, "tape", &[nd * layout.len], DType::F32)?;
            // Padded rows stay zero, so backward's GEMMs over all T·B rows can include them.
            rec.clear(&t);
            t
        } else {
            // A stand-in (the step kernels bind a tape either way), one per layer: layers that
            // shared a writable buffer could not run together in the wavefront, since the
            // driver orders every use of a read-write buffer after the one before.
            ctx.alloc(OP, "tape", &[4], DType::F32)?
        };
        let b_hn = if cfg.cell == CellKind::Gru {
            let t = ctx.alloc(OP, "b_hn", &[nd, h], DType::F32)?;
            if !cfg.bias {
                rec.clear(&t);
            }
            Some(t)
        } else {
            None
        };
        let mut proj = Vec::with_capacity(nd);
        for dir in 0..nd {
            let idx = layer * nd + dir;
            let sfx = RnnConfig::suffix(layer, dir);
            proj.push(projection_weights(rec, w, &sfx, in_w)?);
            if split_bufs.is_none() {
                let w_hh = w.get(&format!("weight_hh{sfx}"))?;
                pack_w_hh_into(rec, w_hh, cfg.cell, h, false, &w_buf, dir * w_slots)?;
            }
            let st = dir * 4 * nb * h;
            if let Some(h0) = input.h0 {
                rec.copy(h0, idx * nb * h, &state, st, nb * h);
            }
            if let Some(c0) = input.c0 {
                rec.copy(c0, idx * nb * h, &state, st + nb * h, nb * h);
            }
            if let (Some(t), true) = (&b_hn, cfg.bias) {
                rec.copy(w.get(&format!("bias_hh{sfx}"))?, 2 * h, t, dir * h, h);
            }
        }
        let (y_rs_t, y_rs_b) = if out_batch_first {
            (nd * h, tl * nd * h)
        } else {
            (nb * nd * h, nd * h)
        };
        let (kernel, dispatches) = if persistent {
            (seq_kernel(cfg.cell), 1)
        } else if split {
            (split_cell_kernel(cfg.cell), max_len)
        } else {
            (step_kernel(cfg.cell), max_len)
        };
        let kernel = for_storage(ctx, kernel);
        let (extra1, extra2) = match cfg.cell {
            CellKind::Lstm => (layout.extra1, layout.extra2),
            CellKind::Gru => (layout.extra1, 0),
            CellKind::RnnTanh => (0, units4),
            CellKind::RnnRelu => (1, units4),
        };
        let groups = if persistent {
            [1, 1, nd as u32]
        } else if split {
            [gx.div_ceil(64) as u32, nb as u32, nd as u32]
        } else {
            [gx.div_ceil(64) as u32, nb.div_ceil(4) as u32, nd as u32]
        };
        let mut buffers = vec![gi.clone(), w_buf];
        buffers.extend(b_hn);
        buffers.extend([
            lengths_dev.clone(),
            state.clone(),
            out.clone(),
            tape.clone(),
        ]);
        let params = StepParams {
            batch: nb as u32,
            hidden: h as u32,
            step: 0,
            win_rows: plan.rows as u32,
            y_rs_t: y_rs_t as u32,
            y_rs_b: y_rs_b as u32,
            splits: plan.splits() as u32,
            save: train as u32,
            tape_gates: layout.gates as u32,
            tape_hprev: layout.h_prev as u32,
            extra1: extra1 as u32,
            extra2: extra2 as u32,
            gi_dir: check_u32(rows * gh, "gi")?,
            w_dir: check_u32(w_slots, "packed W_hh")?,
            tape_dir: check_u32(layout.len, "tape")?,
            _pad: 0,
        };
        Ok(Self {
            layer,
            out,
            gi,
            state,
            tape,
            proj,
            kernel,
            groups,
            params,
            buffers,
            split: split_bufs,
            plan,
            dispatches,
            persistent,
            nd,
            nb,
            h,
            rows,
            gh,
            max_len,
        })
    }

    /// `gi = X·W_ihᵀ + b` for the rows of packed `xt`, which are the layer's rows `r0..` (for
    /// every direction).
    fn project(&self, rec: &mut Recorder<'_>, xt: &Packed, r0: usize) -> Result<()> {
        for (dir, (wt, bias)) in self.proj.iter().enumerate() {
            let out = Out {
                off: (dir * self.rows + r0) * self.gh,
                ..Out::rows(&self.gi, self.gh)
            };
            gemm(rec, xt, wt, bias.as_ref(), out)?;
        }
        Ok(())
    }

    /// Step `s` (all steps, for the persistent kernel's one dispatch).
    fn step(&self, rec: &mut Recorder<'_>, s: usize) -> Result<()> {
        let p = StepParams {
            step: if self.persistent { self.max_len } else { s } as u32,
            ..self.params
        };
        let mut bufs: Vec<&GpuTensor> = self.buffers.iter().collect();
        if let Some(SplitBufs { ha, hb, wp, part }) = &self.split {
            let (h_in, h_out) = if s.is_multiple_of(2) {
                (ha, hb)
            } else {
                (hb, ha)
            };
            self.plan.record(rec, h_in, wp, part)?;
            bufs.extend([h_out, part]);
        }
        rec.dispatch(self.kernel, &p, &bufs, self.groups)
    }

    /// Copies the final states out: slot `max_len % 2` holds every sequence's state after its
    /// last valid step.
    fn finish(&self, rec: &mut Recorder<'_>, h_n: &GpuTensor, c_n: Option<&GpuTensor>) {
        let (nb, h) = (self.nb, self.h);
        for dir in 0..self.nd {
            let idx = self.layer * self.nd + dir;
            let fin = dir * 4 * nb * h + (self.max_len % 2) * 2 * nb * h;
            rec.copy(&self.state, fin, h_n, idx * nb * h, nb * h);
            if let Some(c_n) = c_n {
                rec.copy(&self.state, fin + nb * h, c_n, idx * nb * h, nb * h);
            }
        }
    }
}
