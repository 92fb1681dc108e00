//! Recurrent layers on the device: Elman, LSTM and GRU, forward ([`forward`]) and backward
//! ([`backward`]), with the CPU reference's semantics.
//!
//! Every direction of a layer lives in one tensor per kind, and each step is one dispatch over
//! all directions. The steps run one of three ways (`StepPath`, chosen once per call in
//! `path`), their cell kernels in `kernels`; unidirectional stacks can run as a wavefront over
//! layers × time (`wavefront`). Every dispatch of a call goes into one command encoder and one
//! submit.

pub mod backward;
pub mod forward;
pub(crate) mod kernels;
pub(crate) mod path;
pub(crate) mod projection;
pub(crate) mod split;
pub(crate) mod wavefront;

use wgrnn_core::{CellKind, Error, Result, RnnConfig, RnnDims};

pub use forward::{rnn_forward, rnn_forward_train};
pub use path::small_batch_path;

use crate::ops::matmul::{BLOCK, Packed, plain_ld};
use crate::runtime::context::Context;
use crate::runtime::tensor::{DType, GpuTensor, OnContext};
use crate::runtime::weights::DeviceLayout;

/// Checks, for `op`, every buffer that forward or backward makes from the weights of `cfg`
/// beyond the model's own tensors and that no path avoids: `W_ih` packed as the input
/// projection's operand (rows padded to the GEMMs' block) and as dX's, and the narrowest chunk
/// of the split steps' padded `W_hh` (see `PanelPlan::pad_w`). The fused kernels' packed
/// `W_hh` needs no check: where it does not fit, the split steps run (see `path::packed_fits`).
/// Buffers that grow with T·B are checked at each call against `x`.
pub(crate) fn check_weight_buffers(ctx: &Context, op: &'static str, cfg: &RnnConfig) -> Result<()> {
    let gh = cfg.cell.gates() * cfg.hidden_size;
    for layer in 0..cfg.num_layers {
        let in_w = cfg.layer_input_size(layer);
        let name = format!("weight_ih{}", RnnConfig::suffix(layer, 0));
        let proj = format!("`{name}` packed for the input projection");
        ctx.check_fits_in(op, &proj, &[in_w, plain_ld(gh)])?;
        ctx.check_fits_in(
            op,
            &format!("`{name}` packed for dx"),
            &[gh, plain_ld(in_w)],
        )?;
    }
    // The reverse steps' chunks hold G·H rows (the forward's H).
    let chunk = "a column chunk of the split steps' padded W_hh";
    ctx.check_fits_in(op, chunk, &[gh, BLOCK])
}

impl DeviceLayout for RnnConfig {
    fn check_device(&self, ctx: &Context) -> Result<()> {
        check_weight_buffers(ctx, "GpuWeights", self)
    }
}

/// Inputs of one recurrent call, on the device. Lengths stay on the host: they set the
/// schedule (how many steps run) and are validated before anything is recorded.
#[derive(Clone, Copy, Debug)]
pub struct GpuRnnInput<'a> {
    pub x: &'a GpuTensor,
    pub h0: Option<&'a GpuTensor>,
    pub c0: Option<&'a GpuTensor>,
    pub lengths: Option<&'a [usize]>,
    /// The seed of a training call's inter-layer dropout masks (`RnnConfig::dropout`), the
    /// masks `wgrnn_cpu::RnnInput::seed` gives: layer l's output, sequence-major, masked with
    /// stream l. A trainer gives each step its own seed.
    pub seed: u64,
}

impl<'a> GpuRnnInput<'a> {
    pub fn new(x: &'a GpuTensor) -> Self {
        Self {
            x,
            h0: None,
            c0: None,
            lengths: None,
            seed: 0,
        }
    }

    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    pub fn h0(mut self, h0: &'a GpuTensor) -> Self {
        self.h0 = Some(h0);
        self
    }

    pub fn c0(mut self, c0: &'a GpuTensor) -> Self {
        self.c0 = Some(c0);
        self
    }

    pub fn lengths(mut self, lengths: &'a [usize]) -> Self {
        self.lengths = Some(lengths);
        self
    }
}

/// What a training-mode forward saved, per (layer, direction) in PyTorch's index order.
#[derive(Clone, Debug)]
pub struct GpuRnnTape {
    pub(crate) config: RnnConfig,
    /// The seed of the inter-layer dropout masks.
    pub(crate) seed: u64,
    /// Whether the call was unbatched: backward takes and gives unbatched gradients.
    pub(crate) unbatched: bool,
    pub(crate) dims: RnnDims,
    pub(crate) lengths: Vec<usize>,
    pub(crate) lengths_dev: GpuTensor,
    /// The input of each layer, as backward reads it.
    pub(crate) layer_in: Vec<LayerInput>,
    /// Tape of each layer: per direction d, sections as in [`TapeLayout`] from float
    /// `d · layout.len` on.
    pub(crate) layers: Vec<GpuTensor>,
    /// With a projection, what its backward reads beside the layers' tapes.
    pub(crate) proj: Option<ProjTape>,
}

/// What a training forward with a projection keeps for backward (see `projection`).
#[derive(Clone, Debug)]
pub(crate) struct ProjTape {
    /// Each layer's cell outputs m `[T, B, D·H]`, sequence-major.
    pub m: Vec<GpuTensor>,
    /// The final m of every layer and direction, `[L·D, B, H]`.
    pub m_n: GpuTensor,
    /// A copy of the call's h0.
    pub h0: Option<GpuTensor>,
}

impl ProjTape {
    /// The m_n of a training call with a projection; `None` otherwise.
    pub(crate) fn alloc(
        ctx: &Context,
        cfg: &RnnConfig,
        batch: usize,
        train: bool,
    ) -> Result<Option<Self>> {
        if !train || cfg.proj_size == 0 {
            return Ok(None);
        }
        let m_n = ctx.alloc(
            "rnn_forward",
            "m_n",
            &cfg.cell_state_shape(batch),
            DType::F32,
        )?;
        Ok(Some(Self {
            m: Vec::new(),
            m_n,
            h0: None,
        }))
    }
}

impl OnContext for GpuRnnTape {
    fn check_context(&self, ctx: &Context, op: &'static str, arg: &str) -> Result<()> {
        self.lengths_dev.check_context(ctx, op, arg)?;
        for t in &self.layers {
            t.check_context(ctx, op, arg)?;
        }
        for l in &self.layer_in {
            l.t.check_context(ctx, op, arg)?;
        }
        if let Some(p) = &self.proj {
            p.m_n.check_context(ctx, op, arg)?;
            p.h0.as_ref().check_context(ctx, op, arg)?;
            for m in &p.m {
                m.check_context(ctx, op, arg)?;
            }
        }
        Ok(())
    }
}

impl GpuRnnTape {
    pub fn config(&self) -> &RnnConfig {
        &self.config
    }

    pub fn dims(&self) -> RnnDims {
        self.dims
    }

    /// Valid steps of each sequence.
    pub fn lengths(&self) -> &[usize] {
        &self.lengths
    }
}

/// Results of a recurrent call, on the device.
#[derive(Clone, Debug)]
pub struct GpuRnnOutput {
    pub y: GpuTensor,
    pub h_n: GpuTensor,
    pub c_n: Option<GpuTensor>,
}

/// The cell's own words of the step kernels' parameter blocks (`extra1`, `extra2`), forward
/// and reverse: LSTM's two tape sections (c after and before the step), GRU's one
/// (`W_hn·h + b_hn`), and for Elman cells the activation (0 tanh, 1 ReLU).
pub(crate) fn cell_extras(cell: CellKind, layout: &TapeLayout) -> (usize, usize) {
    match cell {
        CellKind::Lstm => (layout.extra1, layout.extra2),
        CellKind::Gru => (layout.extra1, 0),
        CellKind::RnnTanh => (0, 0),
        CellKind::RnnRelu => (1, 0),
    }
}

/// The row strides (per step, per batch row) of a layer's output `[T, B, width]`, or
/// `[B, T, width]` when `batch_first`; the same for its gradient.
/// The final states of a call, `[L·D, B, H]` each: h (`names.0`), and c (`names.1`) for cells
/// that have one; forward's `h_n`, `c_n` and backward's `dh0`, `dc0`.
pub(crate) fn alloc_states(
    ctx: &Context,
    op: &'static str,
    cfg: &RnnConfig,
    batch: usize,
    names: (&str, &str),
) -> Result<(GpuTensor, Option<GpuTensor>)> {
    let h = ctx.alloc(op, names.0, &cfg.state_shape(batch), DType::F32)?;
    let c = if cfg.cell.has_cell_state() {
        let shape = cfg.cell_state_shape(batch);
        Some(ctx.alloc(op, names.1, &shape, DType::F32)?)
    } else {
        None
    };
    Ok((h, c))
}

pub(crate) fn out_strides(batch_first: bool, tl: usize, nb: usize, width: usize) -> (usize, usize) {
    if batch_first {
        (width, tl * width)
    } else {
        (nb * width, width)
    }
}

/// Offsets (in floats) of the sections of one direction's tape, each `[T·B, width]`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TapeLayout {
    pub gates: usize,
    pub h_prev: usize,
    /// LSTM: c after the step; GRU: `W_hn·h + b_hn`.
    pub extra1: usize,
    /// LSTM: c before the step.
    pub extra2: usize,
    pub len: usize,
}

impl TapeLayout {
    pub(crate) fn new(cell: CellKind, rows: usize, h: usize) -> Self {
        let gates_w = cell.gates() * h;
        let extras = match cell {
            CellKind::Lstm => 2,
            CellKind::Gru => 1,
            _ => 0,
        };
        let gates = 0;
        let h_prev = rows * gates_w;
        let extra1 = h_prev + rows * h;
        let extra2 = extra1 + rows * h;
        Self {
            gates,
            h_prev,
            extra1,
            extra2,
            len: h_prev + rows * h * (1 + extras),
        }
    }

    /// The same sections at `base` floats into a tape shared by several directions.
    pub(crate) fn at(self, base: usize) -> Self {
        Self {
            gates: self.gates + base,
            h_prev: self.h_prev + base,
            extra1: self.extra1 + base,
            extra2: self.extra2 + base,
            len: self.len,
        }
    }
}

/// Refuses a batch larger than the step kernels can dispatch: they put `rows_per_group` batch
/// rows in each workgroup along y (4 in the fused forward steps; 1 in the split steps and in
/// every reverse step), which the device bounds by `max_compute_workgroups_per_dimension`.
pub(crate) fn check_batch(
    ctx: &Context,
    op: &'static str,
    x_shape: &[usize],
    batch: usize,
    rows_per_group: usize,
) -> Result<()> {
    let limit = ctx.limits().max_compute_workgroups_per_dimension as usize * rows_per_group;
    if batch > limit {
        return Err(Error::TooLarge {
            op,
            arg: format!("x {x_shape:?}"),
            size: batch as u64,
            unit: "batch rows",
            limit_name: "the step kernels' batch (max_compute_workgroups_per_dimension × rows \
                         per workgroup)",
            limit: limit as u64,
        });
    }
    Ok(())
}

/// The error for a configuration without layers (which validation rejects before any call).
pub(crate) fn no_layers() -> Error {
    Error::InvalidConfig {
        config: "RnnConfig",
        field: "num_layers",
        reason: "must be at least 1".into(),
    }
}

/// A layer's input as backward's `dW_ih = dGᵀ·X` reads it: X(r, f) = `t[f·s_f + r·s_r]`.
#[derive(Clone, Debug)]
pub(crate) struct LayerInput {
    pub t: GpuTensor,
    pub s_f: usize,
    pub s_r: usize,
}

impl LayerInput {
    fn packed(p: &Packed) -> Self {
        Self {
            t: p.data.clone(),
            s_f: p.ld,
            s_r: 1,
        }
    }

    fn rows(t: &GpuTensor, width: usize) -> Self {
        Self {
            t: t.clone(),
            s_f: 1,
            s_r: width,
        }
    }
}
