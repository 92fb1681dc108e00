//! The cell kernels of the recurrent steps, all instances of one template (shaders/cell.wgsl)
//! per cell (LSTM, GRU, Elman): the fused step of GPUs, the cell half of the CPU adapters'
//! split step and the persistent small-batch kernel, forward and reverse (see `StepPath`).
//! Every cell binds the same buffers in the same order.

use wgrnn_core::CellKind;

use crate::runtime::context::Context;
use crate::runtime::pipeline::{Access, Kernel};
use crate::runtime::shaders::Shader;

use Access::{Read, ReadWrite};

/// The forward steps' bindings (cell.wgsl): gi, the packed W_hh, lengths, state, y, tape and
/// the cell's own (GRU b_hn; a stand-in for the others).
const STEP_BINDINGS: &[Access] = &[Read, Read, Read, ReadWrite, ReadWrite, ReadWrite, Read];

/// The module of a cell's kernels (cell.wgsl instantiated with the cell's file).
pub(crate) fn cell_shader(cell: CellKind) -> Shader {
    match cell {
        CellKind::Lstm => Shader::Lstm,
        CellKind::Gru => Shader::Gru,
        CellKind::RnnTanh | CellKind::RnnRelu => Shader::Rnn,
    }
}

/// The fused per-timestep kernel of a cell (GPUs): one accumulator (a unit's gates, or four
/// Elman units) and four batch rows per invocation.
pub(crate) fn step_kernel(cell: CellKind) -> Kernel {
    Kernel {
        shader: cell_shader(cell),
        entry: "fwd_step",
        bindings: STEP_BINDINGS,
    }
}

/// The cell half of the CPU adapters' split step (`fwd_split_cell`): the fused step's
/// bindings, then the next h window and the partial products.
pub(crate) fn split_cell_kernel(cell: CellKind) -> Kernel {
    Kernel {
        entry: "fwd_split_cell",
        bindings: &[
            Read, Read, Read, ReadWrite, ReadWrite, ReadWrite, Read, ReadWrite, Read,
        ],
        ..step_kernel(cell)
    }
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

/// The persistent small-batch kernel of a cell: every step in one dispatch of one workgroup.
pub(crate) fn seq_kernel(cell: CellKind) -> Kernel {
    Kernel {
        entry: "fwd_seq",
        ..step_kernel(cell)
    }
}

/// The reverse steps' kernels.
pub(crate) mod backward {
    use super::*;

    /// The reverse steps' bindings: the transposed packed W_hh, lengths, dy, the tape, dstate
    /// and dg.
    const BINDINGS: &[Access] = &[Read, Read, Read, Read, ReadWrite, ReadWrite];

    /// The cell half of a split reverse step: the step kernel's bindings plus the partial
    /// products.
    pub(crate) fn cell_kernel(cell: CellKind) -> Kernel {
        Kernel {
            entry: "bwd_split_cell",
            bindings: &[Read, Read, Read, Read, ReadWrite, ReadWrite, Read],
            ..step_kernel(cell)
        }
    }

    /// The persistent small-batch backward of a cell (see `StepPath::Persistent`).
    pub(crate) fn seq_kernel(cell: CellKind) -> Kernel {
        Kernel {
            entry: "bwd_seq",
            ..step_kernel(cell)
        }
    }

    /// The fused reverse step of GPUs (one row and one accumulator per invocation: the
    /// recurrent product, then the cell update). CPU adapters split the step instead (see
    /// `PanelPlan`).
    pub(crate) fn step_kernel(cell: CellKind) -> Kernel {
        Kernel {
            shader: cell_shader(cell),
            entry: "bwd_step",
            bindings: BINDINGS,
        }
    }
}
