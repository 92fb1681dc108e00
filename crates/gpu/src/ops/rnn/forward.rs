//! The forward pass of the recurrent layers.
//!
//! Per layer the input is packed once; per direction one GEMM computes the input projection of
//! all T·B rows (biases folded in), then one fused step kernel per timestep runs the recurrence
//! (on CPU adapters, a product that reads h_prev through uniform windows, then a cell kernel).
//! Unidirectional stacks can run as a wavefront instead (see `Wavefront`): chunks of
//! steps, each with its own input projection, each layer a chunk behind the one below. Every
//! dispatch of every layer and direction goes into one command encoder and one submit.

use std::ops::Range;

use wgrnn_core::{CellKind, DropoutConfig, Error, Result, RnnConfig, RnnDims};

use super::kernels::{
    for_storage, mid_kernel, seq_kernel, split_cell_kernel, step_kernel, two_phase,
};
use super::path::{StepPath, step_path};
use super::projection::{self, DirRows};
use super::split::SplitBufs;
use super::wavefront::{WaveRun, Wavefront};
use super::{
    GpuRnnInput, GpuRnnOutput, GpuRnnTape, LayerInput, ProjTape, TapeLayout, alloc_states,
    cell_extras, check_batch, check_weight_buffers, no_layers, out_strides,
};
use crate::ops::dropout;
use crate::ops::matmul::{
    Out, Packed, SeqMask, Strided, gemm, pack, pack_lhs, pack_lhs_masked, pack_masked,
};
use crate::ops::pack::{alloc_packed, by_unit, fold_bias, pack_w_hh_into, packed_slots};
use crate::ops::recurrent::PanelPlan;
use crate::runtime::context::Context;
use crate::runtime::pipeline::Kernel;
use crate::runtime::record::Recorder;
use crate::runtime::recording::Record;
use crate::runtime::tensor::{DType, GpuTensor, OnContext, expect_f32};
use crate::runtime::uniforms::cell::StepParams;
use crate::runtime::weights::GpuWeights;

const OP: &str = "rnn_forward";

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
/// (`wgrnn_cpu::rnn_forward`): PyTorch names and gate orders, packed-sequence lengths. Keeps
/// nothing for backward; [`rnn_forward_train`] does.
pub fn rnn_forward<'c>(
    on: impl Record<'c>,
    w: &GpuWeights<RnnConfig>,
    input: GpuRnnInput<'_>,
) -> Result<GpuRnnOutput> {
    forward(on, w, input, false).map(|(out, _)| out)
}

/// Forward pass that also returns the tape [`crate::rnn_backward()`] needs: activated gates,
/// states before each step and cell states, on the device (`wgrnn_cpu::rnn_forward_train`).
pub fn rnn_forward_train<'c>(
    on: impl Record<'c>,
    w: &GpuWeights<RnnConfig>,
    input: GpuRnnInput<'_>,
) -> Result<(GpuRnnOutput, GpuRnnTape)> {
    forward(on, w, input, true)
}

/// Both forwards, for a batched or (`x` `[T, input_size]`, states `[L·D, H]`, as PyTorch
/// accepts them) an unbatched call, which runs as a batch of one with results and tape
/// unbatched again.
fn forward<'c>(
    on: impl Record<'c>,
    w: &GpuWeights<RnnConfig>,
    input: GpuRnnInput<'_>,
    train: bool,
) -> Result<(GpuRnnOutput, GpuRnnTape)> {
    let states = [
        ("h0", input.h0.map(GpuTensor::shape)),
        ("c0", input.c0.map(GpuTensor::shape)),
    ];
    let Some(shapes) = w.config().unbatched_shapes(OP, input.x.shape(), states)? else {
        return forward_batched(on, w, input, train);
    };
    let as_batch = |t: Option<&GpuTensor>, shape: Option<Vec<usize>>| match (t, shape) {
        (Some(t), Some(s)) => t.reshaped(s).map(Some),
        _ => Ok(None),
    };
    let x = input.x.reshaped(shapes.x)?;
    let (h0, c0) = (
        as_batch(input.h0, shapes.h0)?,
        as_batch(input.c0, shapes.c0)?,
    );
    let batched = GpuRnnInput {
        x: &x,
        h0: h0.as_ref(),
        c0: c0.as_ref(),
        ..input
    };
    let (out, tape) = forward_batched(on, w, batched, train)?;
    let out = GpuRnnOutput {
        y: drop_batch(&out.y)?,
        h_n: drop_batch(&out.h_n)?,
        c_n: out.c_n.as_ref().map(drop_batch).transpose()?,
    };
    Ok((
        out,
        GpuRnnTape {
            unbatched: true,
            ..tape
        },
    ))
}

/// A batch of one `[a, 1, f]` or `[1, a, f]` as `[a, f]`.
pub(crate) fn drop_batch(t: &GpuTensor) -> Result<GpuTensor> {
    let s = t.shape();
    t.reshaped(vec![s[0] * s[1], s[2]])
}

/// Both forwards of a batched call: with `train`, the layers keep their tapes (otherwise the
/// tape holds the layers' stand-ins and is dropped).
fn forward_batched<'c>(
    on: impl Record<'c>,
    w: &GpuWeights<RnnConfig>,
    input: GpuRnnInput<'_>,
    train: bool,
) -> Result<(GpuRnnOutput, GpuRnnTape)> {
    let ctx = on.context();
    let call = ForwardCall::new(ctx, w, input, train)?;
    let cfg = w.config();
    let mut rec = on.begin(OP);
    // With a projection the kernels run W_hh·W_hr in W_hh's place (see `projection`).
    let inner = projection::inner_weights(&mut rec, OP, w)?;
    let call = ForwardCall {
        w: inner.as_ref().unwrap_or(w),
        ..call
    };
    let (h_n, c_n) = alloc_states(ctx, OP, cfg, call.dims.batch, ("h_n", "c_n"))?;
    // Unidirectional stacks of per-step layers run as a wavefront over layers × time (see
    // `Wavefront`); otherwise layer after layer.
    let wave = Wavefront::of(ctx, cfg, call.path, call.max_len);
    let mut runs: Vec<LayerRun> = Vec::with_capacity(cfg.num_layers);
    let mut layer_in = Vec::new();
    for layer in 0..cfg.num_layers {
        let run = LayerRun::new(&mut rec, &call, layer)?;
        let whole = wave.is_none();
        if let Some(xt) = call.layer_input(&mut rec, layer, runs.last(), whole, &mut layer_in)? {
            run.project(&mut rec, &xt, 0)?;
            run.add_h0(&mut rec)?;
        }
        if wave.is_none() {
            run.all_steps(&mut rec)?;
            run.project_out(&mut rec, 0..call.dims.seq_len)?;
            run.drop_out(&mut rec, 0..call.dims.seq_len)?;
        }
        runs.push(run);
    }
    if let Some(wave) = wave {
        let stack = ForwardStack {
            runs: &runs,
            cfg,
            nb: call.dims.batch,
            seq_len: call.dims.seq_len,
        };
        wave.record(&mut rec, &stack, runs.len(), false)?;
    }
    let proj = ProjTape::alloc(ctx, cfg, call.dims.batch, train)?;
    for run in &runs {
        run.finish(&mut rec, &h_n, c_n.as_ref(), proj.as_ref())?;
    }
    let tapes: Vec<GpuTensor> = runs.iter().map(|r| r.tape.clone()).collect();
    let cell_outs: Vec<GpuTensor> = runs.iter().map(|r| r.out.clone()).collect();
    let y = runs.pop().map(|r| r.y().clone()).ok_or_else(no_layers)?;
    let proj = match (proj, call.input.h0) {
        (Some(mut p), h0) => {
            p.m = cell_outs;
            if let Some(h0) = h0 {
                // Kept apart from the caller's buffer, which may change before backward.
                let copy = ctx.alloc(OP, "h0", h0.shape(), DType::F32)?;
                rec.copy(h0, 0, &copy, 0, h0.numel());
                p.h0 = Some(copy);
            }
            Some(p)
        }
        (None, _) => None,
    };
    rec.finish()?;
    let tape = GpuRnnTape {
        config: cfg.clone(),
        seed: call.input.seed,
        unbatched: false,
        dims: call.dims,
        lengths: call.lengths,
        lengths_dev: call.lengths_dev,
        layer_in,
        layers: tapes,
        proj,
    };
    Ok((GpuRnnOutput { y, h_n, c_n }, tape))
}

/// One forward call, checked: its weights and inputs, shapes, lengths and step path.
struct ForwardCall<'a> {
    /// The weights the kernels run (with a projection, W_hh·W_hr in W_hh's place).
    w: &'a GpuWeights<RnnConfig>,
    /// The model's own weights.
    model: &'a GpuWeights<RnnConfig>,
    input: GpuRnnInput<'a>,
    dims: RnnDims,
    lengths: Vec<usize>,
    lengths_dev: GpuTensor,
    max_len: usize,
    path: StepPath,
    train: bool,
    /// Whether some sequence is shorter than the call's T.
    padded: bool,
}

impl<'a> ForwardCall<'a> {
    /// Checks the call's arguments against each other and the device, then uploads the lengths.
    fn new(
        ctx: &Context,
        w: &'a GpuWeights<RnnConfig>,
        input: GpuRnnInput<'a>,
        train: bool,
    ) -> Result<Self> {
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
            expect_f32(OP, "c0", c0, &cfg.cell_state_shape(nb))?;
        }
        // Training is held to the reverse steps' bound, so that its backward can run.
        let lengths = input
            .lengths
            .map_or_else(|| vec![tl; nb], <[usize]>::to_vec);
        let max_len = lengths.iter().copied().max().unwrap_or(tl);
        let path = step_path(ctx, cfg, nb, max_len);
        let fused_rows = if path == StepPath::Split || train {
            1
        } else {
            4
        };
        check_batch(ctx, OP, input.x.shape(), nb, fused_rows)?;
        let (h, nd) = (cfg.hidden_size, cfg.num_directions());
        let gh = cfg.cell.gates() * h;
        let _ = check_u32(nd * tl * nb * (gh + 3 * h), "tape")?;
        let lens32: Vec<u32> = lengths.iter().map(|&l| l as u32).collect();
        let lengths_dev = ctx.upload_u32(&[nb], &lens32)?;
        Ok(Self {
            w,
            model: w,
            input,
            dims,
            padded: lengths.iter().any(|&l| l < tl),
            lengths,
            lengths_dev,
            max_len,
            path,
            train,
        })
    }

    /// The output `y` of `layer`: batch-first for the last layer of a batch-first call, zeros
    /// where sequences are padded.
    fn alloc_output(&self, rec: &mut Recorder<'_>, layer: usize) -> Result<GpuTensor> {
        let cfg = self.w.config();
        let (tl, nb) = (self.dims.seq_len, self.dims.batch);
        let width = cfg.num_directions() * cfg.hidden_size;
        let shape = if self.out_batch_first(layer) {
            [nb, tl, width]
        } else {
            [tl, nb, width]
        };
        let out = rec.ctx().alloc(OP, "y", &shape, DType::F32)?;
        if self.padded {
            rec.clear(&out);
        }
        Ok(out)
    }

    /// Whether the step kernels write `layer`'s output batch-first: the last layer's of a
    /// batch-first call, where no projection follows.
    fn out_batch_first(&self, layer: usize) -> bool {
        self.y_batch_first(layer) && self.w.config().proj_size == 0
    }

    /// Whether `layer`'s output `y` is batch-first: the last layer's of a batch-first call.
    fn y_batch_first(&self, layer: usize) -> bool {
        let cfg = self.w.config();
        layer + 1 == cfg.num_layers && cfg.batch_first
    }

    /// In training with inter-layer dropout, the masked copy of `layer`'s output (sequence-major)
    /// that the layer above reads, for every layer but the last; zeros where sequences are
    /// padded, as the wavefront masks only the rows up to the longest sequence.
    fn alloc_dropped(
        &self,
        rec: &mut Recorder<'_>,
        layer: usize,
    ) -> Result<Option<(GpuTensor, DropoutConfig, u64)>> {
        let cfg = self.w.config();
        let drop = DropoutConfig::new(cfg.dropout as f64);
        if !self.train || !drop.is_active() || layer + 1 == cfg.num_layers {
            return Ok(None);
        }
        let (tl, nb) = (self.dims.seq_len, self.dims.batch);
        let shape = [tl, nb, cfg.output_size()];
        check_u32(shape.iter().product(), "dropped y")?;
        let t = rec.ctx().alloc(OP, "dropped y", &shape, DType::F32)?;
        if self.padded {
            rec.clear(&t);
        }
        Ok(Some((t, drop, self.input.seed)))
    }

    /// With a projection, `layer`'s output `y` `[T, B, D·P]` (batch-first where
    /// [`Self::y_batch_first`]), zeros where sequences are padded.
    fn alloc_projected(&self, rec: &mut Recorder<'_>, layer: usize) -> Result<Option<GpuTensor>> {
        let cfg = self.w.config();
        if cfg.proj_size == 0 {
            return Ok(None);
        }
        let (tl, nb) = (self.dims.seq_len, self.dims.batch);
        let width = cfg.output_size();
        let shape = if self.y_batch_first(layer) {
            [nb, tl, width]
        } else {
            [tl, nb, width]
        };
        let y = rec.ctx().alloc(OP, "y", &shape, DType::F32)?;
        // Rows past the longest sequence are never projected in the wavefront.
        if self.padded {
            rec.clear(&y);
        }
        Ok(Some(y))
    }

    /// The input of `layer` (after `prev`) packed for its projection over all rows: the first
    /// layer's always (it waits for nothing), the others' where `whole` (not where the
    /// wavefront projects them chunk by chunk). In training, what backward reads of it goes to
    /// `layer_in`.
    fn layer_input(
        &self,
        rec: &mut Recorder<'_>,
        layer: usize,
        prev: Option<&LayerRun>,
        whole: bool,
        layer_in: &mut Vec<LayerInput>,
    ) -> Result<Option<Packed>> {
        let cfg = self.w.config();
        let (tl, nb) = (self.dims.seq_len, self.dims.batch);
        let (rows, in_w, x) = (tl * nb, cfg.layer_input_size(layer), self.input.x);
        // The layer input, row m = t·B + b: the call's x (maybe batch-first), or the previous
        // layer's output (always sequence-major).
        let x_view = match prev {
            None if cfg.batch_first => Strided {
                t: x,
                rows,
                k: in_w,
                inner: nb,
                s_inner: tl * in_w,
                s_outer: in_w,
                s_k: 1,
                off: 0,
            },
            None => Strided::rows(x, rows, in_w, 0),
            Some(prev) => Strided::rows(prev.next_input(), rows, in_w, 0),
        };
        // The call's padded steps are packed as zeros, so that nothing they hold reaches a
        // product (backward's dW_ih sums over every row); the layers above read outputs that
        // are zero there already.
        let mask = (layer == 0 && self.padded).then_some(SeqMask {
            lens: &self.lengths_dev,
            seq_n: nb,
            seq_outer: false,
            on_k: false,
        });
        if layer == 0 && self.train {
            // Packed plainly K-major, as backward's dW_ih = dGᵀ·X reads it too (the caller may
            // reuse x).
            let xt = match mask {
                Some(m) => pack_masked(rec, x_view, m)?,
                None => pack(rec, x_view)?,
            };
            layer_in.push(LayerInput::packed(&xt));
            return Ok(Some(xt));
        }
        if let (Some(prev), true) = (prev, self.train) {
            layer_in.push(LayerInput::rows(prev.next_input(), in_w));
        }
        (layer == 0 || whole)
            .then(|| pack_lhs_masked(rec, x_view, mask))
            .transpose()
    }

    /// Per direction of `layer`: `W_ih` and the folded bias for the projection, `W_hh` into
    /// `packed` (where the steps read it packed), h0 and c0 into the state's slot 0, and a
    /// GRU's `b_hn`.
    fn prepare_directions(
        &self,
        rec: &mut Recorder<'_>,
        layer: usize,
        packed: Option<&GpuTensor>,
        state: &GpuTensor,
        b_hn: Option<&GpuTensor>,
    ) -> Result<Vec<(Packed, Option<GpuTensor>)>> {
        let (w, cfg) = (self.w, self.w.config());
        let (h, nd, nb) = (cfg.hidden_size, cfg.num_directions(), self.dims.batch);
        let w_slots = packed_slots(cfg.cell, h);
        let mut proj = Vec::with_capacity(nd);
        for dir in 0..nd {
            let idx = layer * nd + dir;
            let sfx = RnnConfig::suffix(layer, dir);
            proj.push(projection_weights(
                rec,
                w,
                &sfx,
                cfg.layer_input_size(layer),
            )?);
            if let Some(packed) = packed {
                let w_hh = w.get(&format!("weight_hh{sfx}"))?;
                pack_w_hh_into(rec, w_hh, cfg.cell, h, false, packed, dir * w_slots)?;
            }
            let st = dir * 4 * nb * h;
            // A projection's h0 enters through the input projection instead (`add_h0`).
            if let (Some(h0), 0) = (self.input.h0, cfg.proj_size) {
                rec.copy(h0, idx * nb * h, state, st, nb * h);
            }
            if let Some(c0) = self.input.c0 {
                rec.copy(c0, idx * nb * h, state, st + nb * h, nb * h);
            }
            if let (Some(t), true) = (b_hn, cfg.bias) {
                rec.copy(w.get(&format!("bias_hh{sfx}"))?, 2 * h, t, dir * h, h);
            }
        }
        Ok(proj)
    }

    /// The step kernels' parameter block for `layer`.
    fn step_params(
        &self,
        layer: usize,
        plan: &PanelPlan,
        layout: &TapeLayout,
    ) -> Result<StepParams> {
        let cfg = self.w.config();
        let (tl, nb) = (self.dims.seq_len, self.dims.batch);
        let (h, nd) = (cfg.hidden_size, cfg.num_directions());
        let gh = cfg.cell.gates() * h;
        let (y_rs_t, y_rs_b) = out_strides(self.out_batch_first(layer), tl, nb, nd * h);
        let (extra1, extra2) = cell_extras(cfg.cell, layout);
        Ok(StepParams {
            batch: nb as u32,
            hidden: h as u32,
            step: 0,
            win_rows: plan.rows as u32,
            y_rs_t: y_rs_t as u32,
            y_rs_b: y_rs_b as u32,
            splits: plan.splits() as u32,
            save: self.train as u32,
            tape_gates: layout.gates as u32,
            tape_hprev: layout.h_prev as u32,
            extra1: extra1 as u32,
            extra2: extra2 as u32,
            gi_dir: check_u32(tl * nb * gh, "gi")?,
            w_dir: check_u32(packed_slots(cfg.cell, h), "packed W_hh")?,
            tape_dir: check_u32(layout.len, "tape")?,
            ..Default::default()
        })
    }
}

/// `W_ih` of one direction packed as the input projection's right operand, and its bias
/// `b = b_ih + b_hh` (GRU: without `b_hn`, which the cell applies inside the reset gate; the
/// reset-before GRU adds it outside, so it folds in too).
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
    let skip_from = if cfg.cell == CellKind::Gru && !two_phase(cfg) {
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

/// The layer's step state `[dir][2][h, c][B][H]`, zeroed (slot 0 takes h0 and c0 before the
/// first step), its tape of `tape_len` floats per direction, and a (reset-after) GRU's `b_hn`
/// (zeros without biases).
fn alloc_state(
    rec: &mut Recorder<'_>,
    cfg: &RnnConfig,
    nb: usize,
    train: bool,
    tape_len: usize,
) -> Result<(GpuTensor, GpuTensor, Option<GpuTensor>)> {
    let ctx = rec.ctx();
    let (h, nd) = (cfg.hidden_size, cfg.num_directions());
    let state = ctx.alloc(OP, "state", &[nd, 2, 2, nb, h], DType::F32)?;
    rec.clear(&state);
    let tape = if train {
        let t = ctx.alloc(OP, "tape", &[nd * tape_len], DType::F32)?;
        // Padded rows stay zero, so backward's GEMMs over all T·B rows can include them.
        rec.clear(&t);
        t
    } else {
        // A stand-in (the step kernels bind a tape either way), one per layer: layers that
        // shared a writable buffer could not run together in the wavefront, since the
        // driver orders every use of a read-write buffer after the one before.
        ctx.alloc(OP, "tape", &[4], DType::F32)?
    };
    let b_hn = if cfg.cell == CellKind::Gru && !two_phase(cfg) {
        let t = ctx.alloc(OP, "b_hn", &[nd, h], DType::F32)?;
        if !cfg.bias {
            rec.clear(&t);
        }
        Some(t)
    } else {
        None
    };
    Ok((state, tape, b_hn))
}

/// The kernel of a forward step on `path`, a two-phase cell's second pass (on the per-step
/// paths: the persistent kernel runs both), and their workgroups (z = direction): the fused
/// step's invocations take a unit (Elman: four) and four batch rows, the split steps' cell
/// kernel's a row; the persistent kernel is one workgroup per direction.
fn step_dispatch(
    ctx: &Context,
    cfg: &RnnConfig,
    path: StepPath,
    nb: usize,
) -> (Kernel, Option<Kernel>, [u32; 3]) {
    let (h, nd) = (cfg.hidden_size, cfg.num_directions());
    let gx = if by_unit(cfg.cell) { h.div_ceil(4) } else { h };
    let (kernel, groups) = match path {
        StepPath::Persistent => (seq_kernel(cfg), [1, 1, nd as u32]),
        StepPath::Split => (
            split_cell_kernel(cfg),
            [gx.div_ceil(64) as u32, nb as u32, nd as u32],
        ),
        StepPath::Fused => (
            step_kernel(cfg),
            [gx.div_ceil(64) as u32, nb.div_ceil(4) as u32, nd as u32],
        ),
    };
    let kernel = for_storage(ctx, kernel);
    (kernel, mid_kernel(cfg, kernel), groups)
}

/// The storage buffers of the step kernels in binding order: gi, the weights, the lengths, the
/// state, the output, the tape, and the cell's own (GRU's b_hn; for the others the lengths
/// again, read-only and unread). The split steps' cell kernel binds its next h window and the
/// partial products after them (see [`LayerRun::step`]).
fn step_buffers(
    gi: &GpuTensor,
    w: GpuTensor,
    b_hn: Option<GpuTensor>,
    lengths: &GpuTensor,
    state: &GpuTensor,
    out: &GpuTensor,
    tape: &GpuTensor,
) -> Vec<GpuTensor> {
    let cell_own = b_hn.unwrap_or_else(|| lengths.clone());
    vec![
        gi.clone(),
        w,
        lengths.clone(),
        state.clone(),
        out.clone(),
        tape.clone(),
        cell_own,
    ]
}

/// One layer of a forward call: its buffers, input projection and steps, recorded in any
/// order that respects the data (see [`Wavefront`]).
struct LayerRun {
    layer: usize,
    /// What the step kernels write: the layer's output, or with a projection the cell
    /// outputs m that `projected` maps to it.
    out: GpuTensor,
    projected: Option<Projected>,
    /// In training with inter-layer dropout, below the last layer: the output as the layer
    /// above reads it, masked, and the mask.
    dropped: Option<(GpuTensor, DropoutConfig, u64)>,
    gi: GpuTensor,
    state: GpuTensor,
    tape: GpuTensor,
    /// Per direction: `W_ih` packed as the projection's right operand, and the folded bias.
    proj: Vec<(Packed, Option<GpuTensor>)>,
    kernel: Kernel,
    /// A two-phase cell's second pass of a step (per-step paths).
    mid: Option<Kernel>,
    groups: [u32; 3],
    params: StepParams,
    buffers: Vec<GpuTensor>,
    split: Option<SplitBufs>,
    plan: PanelPlan,
    path: StepPath,
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
    fn new(rec: &mut Recorder<'_>, call: &ForwardCall<'_>, layer: usize) -> Result<Self> {
        let ctx = rec.ctx();
        let cfg = call.w.config();
        let nb = call.dims.batch;
        let (h, nd) = (cfg.hidden_size, cfg.num_directions());
        let gh = cfg.cell.gates() * h;
        let rows = call.dims.seq_len * nb;
        let out = call.alloc_output(rec, layer)?;
        // Every direction of the layer lives in one tensor per kind (gi, packed W_hh, state,
        // tape, b_hn), so each step is one dispatch over all directions (z = direction): the
        // two directions of a bidirectional layer overlap instead of running one after the
        // other.
        let layout = TapeLayout::new(cfg.cell, rows, h);
        let plan = PanelPlan::new(nb, h, if by_unit(cfg.cell) { h } else { 4 * h });
        let split = match call.path {
            StepPath::Split => Some(SplitBufs::new(
                rec,
                OP,
                call.w,
                layer,
                &plan,
                call.input.h0.filter(|_| cfg.proj_size == 0),
            )?),
            _ => None,
        };
        let gi = ctx.alloc(OP, "gi", &[nd, rows, gh], DType::F32)?;
        // The weight binding: the packed W_hh, or on the split path (whose cell kernel reads no
        // weights) the padded one.
        let w_buf = match split.as_ref().and_then(|b| b.wp.first()) {
            Some(c) => c.w.clone(),
            None => alloc_packed(rec, cfg.cell, h, nd)?,
        };
        let (state, tape, b_hn) = alloc_state(rec, cfg, nb, call.train, layout.len)?;
        let packed = split.is_none().then_some(&w_buf);
        let proj = call.prepare_directions(rec, layer, packed, &state, b_hn.as_ref())?;
        let (kernel, mid, groups) = step_dispatch(ctx, cfg, call.path, nb);
        let params = call.step_params(layer, &plan, &layout)?;
        let lengths = &call.lengths_dev;
        let buffers = step_buffers(&gi, w_buf, b_hn, lengths, &state, &out, &tape);
        let projected = match call.alloc_projected(rec, layer)? {
            Some(y) => Some(Projected::new(call, layer, y)?),
            None => None,
        };
        let dropped = call.alloc_dropped(rec, layer)?;
        Ok(Self {
            layer,
            out,
            projected,
            dropped,
            gi,
            state,
            tape,
            proj,
            kernel,
            mid,
            groups,
            params,
            buffers,
            split,
            plan,
            path: call.path,
            nd,
            nb,
            h,
            rows,
            gh,
            max_len: call.max_len,
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

    /// Step `s` (all steps, for the persistent kernel's one dispatch): its one pass, or a
    /// two-phase cell's two, each on the split path after its product.
    fn step(&self, rec: &mut Recorder<'_>, s: usize) -> Result<()> {
        let p = StepParams {
            step: if self.path == StepPath::Persistent {
                self.max_len
            } else {
                s
            } as u32,
            ..self.params
        };
        let bufs: Vec<&GpuTensor> = self.buffers.iter().collect();
        let Some(SplitBufs {
            ha,
            hb,
            wp,
            part,
            mid,
        }) = &self.split
        else {
            rec.dispatch(self.kernel, &p, &bufs, self.groups)?;
            if let Some(k) = self.mid {
                rec.dispatch(k, &p, &bufs, self.groups)?;
            }
            return Ok(());
        };
        let (h_in, h_out) = if s.is_multiple_of(2) {
            (ha, hb)
        } else {
            (hb, ha)
        };
        // The pass before the second product writes that product's window, the last pass the
        // next step's h.
        let (first_out, second) = match (mid, self.mid) {
            (Some(m), Some(k)) => (m, Some((m, k))),
            _ => (h_out, None),
        };
        self.plan.record(rec, h_in, wp, part)?;
        let mut first = bufs.clone();
        first.extend([first_out, part]);
        rec.dispatch(self.kernel, &p, &first, self.groups)?;
        if let Some((m, k)) = second {
            self.plan.record(rec, m, wp, part)?;
            let mut last = bufs;
            last.extend([h_out, part]);
            rec.dispatch(k, &p, &last, self.groups)?;
        }
        Ok(())
    }

    /// Every step, layer after layer: one dispatch per step, or the persistent kernel's one.
    fn all_steps(&self, rec: &mut Recorder<'_>) -> Result<()> {
        if self.path == StepPath::Persistent {
            return self.step(rec, 0);
        }
        for s in 0..self.max_len {
            self.step(rec, s)?;
        }
        Ok(())
    }

    /// Copies the final states out: slot `max_len % 2` holds every sequence's state after its
    /// last valid step. With a projection h_n = m_n·W_hrᵀ, and a training call's tape keeps
    /// m_n.
    fn finish(
        &self,
        rec: &mut Recorder<'_>,
        h_n: &GpuTensor,
        c_n: Option<&GpuTensor>,
        proj: Option<&ProjTape>,
    ) -> Result<()> {
        let (nb, h) = (self.nb, self.h);
        for dir in 0..self.nd {
            let idx = self.layer * self.nd + dir;
            let fin = dir * 4 * nb * h + (self.max_len % 2) * 2 * nb * h;
            match &self.projected {
                None => rec.copy(&self.state, fin, h_n, idx * nb * h, nb * h),
                Some(pr) => {
                    let p = pr.p;
                    projection::product(
                        rec,
                        Strided::rows(&self.state, nb, h, fin),
                        Strided::rows(&pr.w_hr[dir], p, h, 0),
                        Out {
                            off: idx * nb * p,
                            ..Out::rows(h_n, p)
                        },
                    )?;
                    if let Some(tape) = proj {
                        rec.copy(&self.state, fin, &tape.m_n, idx * nb * h, nb * h);
                    }
                }
            }
            if let Some(c_n) = c_n {
                rec.copy(&self.state, fin + nb * h, c_n, idx * nb * h, nb * h);
            }
        }
        Ok(())
    }

    /// The layer's output: what the kernels write, or its projection.
    fn y(&self) -> &GpuTensor {
        self.projected.as_ref().map_or(&self.out, |p| &p.y)
    }

    /// What the layer above reads: the output, or with inter-layer dropout its masked copy.
    fn next_input(&self) -> &GpuTensor {
        self.dropped.as_ref().map_or(self.y(), |(d, _, _)| d)
    }

    /// With inter-layer dropout, the masked output over the times `ts` (stream = the layer).
    fn drop_out(&self, rec: &mut Recorder<'_>, ts: Range<usize>) -> Result<()> {
        let Some((dropped, cfg, seed)) = &self.dropped else {
            return Ok(());
        };
        let row = self.nb * self.y().shape()[2];
        let mask = dropout::Mask {
            cfg,
            seed: *seed,
            stream: self.layer as u32,
        };
        dropout::record(rec, self.y(), dropped, &mask, ts.start * row..ts.end * row)
    }

    /// With a projection and h0, W_hh·h0 into the input projection of each sequence's first
    /// step (after the rows that hold it are projected).
    fn add_h0(&self, rec: &mut Recorder<'_>) -> Result<()> {
        let Some(pr) = &self.projected else {
            return Ok(());
        };
        let Some(h0) = &pr.h0 else { return Ok(()) };
        for dir in 0..self.nd {
            let idx = self.layer * self.nd + dir;
            let sizes = (self.rows, self.gh, pr.p);
            let lens = &pr.lengths;
            projection::add_h0_term(rec, &pr.w_hh[dir], h0, &self.gi, lens, (idx, dir), sizes)?;
        }
        Ok(())
    }

    /// With a projection, y = m·W_hrᵀ over the times `ts`.
    fn project_out(&self, rec: &mut Recorder<'_>, ts: Range<usize>) -> Result<()> {
        let Some(pr) = &self.projected else {
            return Ok(());
        };
        for dir in 0..self.nd {
            let m_rows = DirRows {
                tl: pr.tl,
                nb: self.nb,
                nd: self.nd,
                dir,
                batch_first: false,
            };
            let y_rows = DirRows {
                batch_first: pr.batch_first,
                ..m_rows
            };
            let w_hr = &pr.w_hr[dir];
            let sizes = (self.h, pr.p);
            projection::project_out(
                rec,
                w_hr,
                &self.out,
                m_rows,
                &pr.y,
                y_rows,
                sizes,
                ts.clone(),
            )?;
        }
        Ok(())
    }
}

/// What a layer with a projection adds to its run: the projected output and the model's
/// W_hh and W_hr per direction, with what `add_h0` needs.
struct Projected {
    y: GpuTensor,
    w_hh: Vec<GpuTensor>,
    w_hr: Vec<GpuTensor>,
    h0: Option<GpuTensor>,
    lengths: Vec<usize>,
    p: usize,
    tl: usize,
    batch_first: bool,
}

impl Projected {
    fn new(call: &ForwardCall<'_>, layer: usize, y: GpuTensor) -> Result<Self> {
        let (model, cfg) = (call.model, call.model.config());
        let get = |name: &str| -> Result<Vec<GpuTensor>> {
            (0..cfg.num_directions())
                .map(|dir| {
                    let sfx = RnnConfig::suffix(layer, dir);
                    model.get(&format!("{name}{sfx}")).cloned()
                })
                .collect()
        };
        Ok(Self {
            y,
            w_hh: get("weight_hh")?,
            w_hr: get("weight_hr")?,
            h0: call.input.h0.cloned(),
            lengths: call.lengths.clone(),
            p: cfg.proj_size,
            tl: call.dims.seq_len,
            batch_first: call.y_batch_first(layer),
        })
    }
}

/// The forward's layers as the wavefront records them: each layer's input projection of a
/// chunk of steps, once the layer below has finished them, then its steps.
struct ForwardStack<'r> {
    runs: &'r [LayerRun],
    cfg: &'r RnnConfig,
    nb: usize,
    seq_len: usize,
}

impl WaveRun for ForwardStack<'_> {
    fn handoff(&self, rec: &mut Recorder<'_>, l: usize, ts: Range<usize>) -> Result<()> {
        let (nb, in_w) = (self.nb, self.cfg.layer_input_size(l));
        self.runs[l - 1].project_out(rec, ts.clone())?;
        self.runs[l - 1].drop_out(rec, ts.clone())?;
        let below = self.runs[l - 1].next_input();
        let xt = pack_lhs(
            rec,
            Strided::rows(below, ts.len() * nb, in_w, ts.start * nb * in_w),
        )?;
        self.runs[l].project(rec, &xt, ts.start * nb)?;
        if ts.start == 0 {
            self.runs[l].add_h0(rec)?;
        }
        Ok(())
    }

    fn step(&self, rec: &mut Recorder<'_>, l: usize, t: usize) -> Result<()> {
        self.runs[l].step(rec, t)
    }

    /// The last layer's projection, once all its steps are recorded (the layers below are
    /// projected chunk by chunk in the handoffs).
    fn done(&self, rec: &mut Recorder<'_>, l: usize) -> Result<()> {
        if l + 1 == self.runs.len() {
            self.runs[l].project_out(rec, 0..self.seq_len)?;
        }
        Ok(())
    }
}
