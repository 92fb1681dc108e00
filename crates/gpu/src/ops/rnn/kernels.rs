//! The cell kernels of the recurrent steps, all instances of one template (shaders/cell.wgsl)
//! per cell (LSTM, GRU in either reset form, Elman): the fused step of GPUs, the cell half of
//! the CPU adapters' split step and the persistent small-batch kernel, forward and reverse (see
//! `StepPath`). Every cell binds the same buffers in the same order.

use wgrnn_core::{CellKind, GruReset, RnnConfig};

use crate::runtime::context::Context;
use crate::runtime::pipeline::{Access, Kernel};
use crate::runtime::shaders::Shader;

use Access::{Read, ReadWrite};

/// The forward steps' bindings (cell.wgsl): gi, the packed W_hh, lengths, state, y, tape and
/// the cell's own (GRU b_hn; a stand-in for the others).
const STEP_BINDINGS: &[Access] = &[Read, Read, Read, ReadWrite, ReadWrite, ReadWrite, Read];

/// Whether a layer's steps run in two phases ("Two phases" in cell.wgsl): the reset-before
/// GRU, whose n product `W_hn (r ⊙ h)` needs r of every unit first.
pub(crate) fn two_phase(cfg: &RnnConfig) -> bool {
    cfg.cell == CellKind::Gru && cfg.gru_reset == GruReset::Before
}

/// The module of a layer's cell kernels (cell.wgsl instantiated with the cell's file).
pub(crate) fn cell_shader(cfg: &RnnConfig) -> Shader {
    match cfg.cell {
        CellKind::Lstm => Shader::Lstm,
        CellKind::Gru if two_phase(cfg) => Shader::GruBefore,
        CellKind::Gru => Shader::Gru,
        CellKind::RnnTanh | CellKind::RnnRelu => Shader::Rnn,
    }
}

/// The fused per-timestep kernel of a cell (GPUs): one accumulator (a unit's gates, or four
/// Elman units) and four batch rows per invocation. A two-phase cell's first pass.
pub(crate) fn step_kernel(cfg: &RnnConfig) -> Kernel {
    Kernel {
        shader: cell_shader(cfg),
        entry: "fwd_step",
        bindings: STEP_BINDINGS,
    }
}

/// The cell half of the CPU adapters' split step (`fwd_split_cell`): the fused step's
/// bindings, then the next h window (a two-phase cell's first pass: the window of its second
/// product) and the partial products.
pub(crate) fn split_cell_kernel(cfg: &RnnConfig) -> Kernel {
    Kernel {
        entry: "fwd_split_cell",
        bindings: &[
            Read, Read, Read, ReadWrite, ReadWrite, ReadWrite, Read, ReadWrite, Read,
        ],
        ..step_kernel(cfg)
    }
}

/// A two-phase cell's second pass of a step on the path whose first pass is `first` (the
/// fused or the split step's kernel), with its bindings; `None` for the others.
pub(crate) fn mid_kernel(cfg: &RnnConfig, first: Kernel) -> Option<Kernel> {
    let entry = match first.entry {
        "fwd_step" => "fwd_step_mid",
        "fwd_split_cell" => "fwd_split_cell_mid",
        _ => return None,
    };
    two_phase(cfg).then_some(Kernel { entry, ..first })
}

/// A cell kernel reading `W_hh` in the context's storage: f32, or the f16 variant of its
/// shader with [`Context::with_f16_weights`].
pub(crate) fn for_storage(ctx: &Context, k: Kernel) -> Kernel {
    if ctx.f16_weights() {
        Kernel {
            shader: k.shader.with_f16_weights(),
            ..k
        }
    } else {
        k
    }
}

/// The persistent small-batch kernel of a cell: every step (both passes of a two-phase cell's)
/// in one dispatch of one workgroup.
pub(crate) fn seq_kernel(cfg: &RnnConfig) -> Kernel {
    Kernel {
        entry: "fwd_seq",
        ..step_kernel(cfg)
    }
}

/// The reverse steps' kernels.
pub(crate) mod backward {
    use super::*;

    /// The reverse steps' bindings: the transposed packed W_hh, lengths, dy, the tape, dstate
    /// and dg.
    const BINDINGS: &[Access] = &[Read, Read, Read, Read, ReadWrite, ReadWrite];

    /// The cell half of a split reverse step: the step kernel's bindings plus the partial
    /// products; a two-phase cell's first pass (`bwd_split_cell_a`) also the window of its
    /// second product.
    pub(crate) fn cell_kernel(cfg: &RnnConfig) -> Kernel {
        let k = Kernel {
            entry: "bwd_split_cell",
            bindings: &[Read, Read, Read, Read, ReadWrite, ReadWrite, Read],
            ..step_kernel(cfg)
        };
        if !two_phase(cfg) {
            return k;
        }
        Kernel {
            entry: "bwd_split_cell_a",
            bindings: &[
                Read, Read, Read, Read, ReadWrite, ReadWrite, Read, ReadWrite,
            ],
            ..k
        }
    }

    /// A two-phase cell's second pass of a reverse step on the path whose first pass is
    /// `first` (the fused or the split step's kernel); `None` for the others. The split one
    /// binds the step kernel's buffers and its own product's partial sums.
    pub(crate) fn mid_kernel(cfg: &RnnConfig, first: Kernel) -> Option<Kernel> {
        let k = match first.entry {
            "bwd_step" => Kernel {
                entry: "bwd_step_mid",
                ..first
            },
            "bwd_split_cell_a" => Kernel {
                entry: "bwd_split_cell_mid",
                bindings: &[Read, Read, Read, Read, ReadWrite, ReadWrite, Read],
                ..first
            },
            _ => return None,
        };
        two_phase(cfg).then_some(k)
    }

    /// The persistent small-batch backward of a cell (see `StepPath::Persistent`).
    pub(crate) fn seq_kernel(cfg: &RnnConfig) -> Kernel {
        Kernel {
            entry: "bwd_seq",
            ..step_kernel(cfg)
        }
    }

    /// The fused reverse step of GPUs (one row and one accumulator per invocation: the
    /// recurrent product, then the cell update). CPU adapters split the step instead (see
    /// `PanelPlan`).
    pub(crate) fn step_kernel(cfg: &RnnConfig) -> Kernel {
        Kernel {
            shader: cell_shader(cfg),
            entry: "bwd_step",
            bindings: BINDINGS,
        }
    }
}
