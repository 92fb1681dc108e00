//! The cell kernels of the recurrent steps: for each cell (LSTM, GRU, Elman) the fused step
//! of GPUs, the cell half of the CPU adapters' split step and the persistent small-batch
//! kernel, forward and reverse (see `StepPath`). Their bindings follow the order of the cells'
//! WGSL files.

use wgrnn_core::CellKind;

use crate::runtime::context::Context;
use crate::runtime::pipeline::{Access, Kernel};
use crate::runtime::shaders::Shader;

use Access::{Read, ReadWrite};

const LSTM_STEP: Kernel = Kernel {
    shader: Shader::Lstm,
    entry: "lstm_step",
    bindings: &[Read, Read, Read, ReadWrite, ReadWrite, ReadWrite],
};

const GRU_STEP: Kernel = Kernel {
    shader: Shader::Gru,
    entry: "gru_step",
    bindings: &[Read, Read, Read, Read, ReadWrite, ReadWrite, ReadWrite],
};

const RNN_STEP: Kernel = Kernel {
    shader: Shader::Rnn,
    entry: "rnn_step",
    bindings: &[Read, Read, Read, ReadWrite, ReadWrite, ReadWrite],
};

/// The fused per-timestep kernel of a cell (GPUs): one unit and four batch rows per invocation.
pub(crate) fn step_kernel(cell: CellKind) -> Kernel {
    match cell {
        CellKind::Lstm => LSTM_STEP,
        CellKind::Gru => GRU_STEP,
        CellKind::RnnTanh | CellKind::RnnRelu => RNN_STEP,
    }
}

/// The cell half of the CPU adapters' split step (`*_cell_fwd`): the fused step's bindings,
/// then the next h window and the partial products.
pub(crate) fn split_cell_kernel(cell: CellKind) -> Kernel {
    match cell {
        CellKind::Lstm => Kernel {
            entry: "lstm_cell_fwd",
            bindings: &[
                Read, Read, Read, ReadWrite, ReadWrite, ReadWrite, ReadWrite, Read,
            ],
            ..LSTM_STEP
        },
        CellKind::Gru => Kernel {
            entry: "gru_cell_fwd",
            bindings: &[
                Read, Read, Read, Read, ReadWrite, ReadWrite, ReadWrite, ReadWrite, Read,
            ],
            ..GRU_STEP
        },
        CellKind::RnnTanh | CellKind::RnnRelu => Kernel {
            entry: "rnn_cell_fwd",
            bindings: &[
                Read, Read, Read, ReadWrite, ReadWrite, ReadWrite, ReadWrite, Read,
            ],
            ..RNN_STEP
        },
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
    let (base, entry) = match cell {
        CellKind::Lstm => (LSTM_STEP, "lstm_seq"),
        CellKind::Gru => (GRU_STEP, "gru_seq"),
        CellKind::RnnTanh | CellKind::RnnRelu => (RNN_STEP, "rnn_seq"),
    };
    Kernel { entry, ..base }
}

/// The reverse steps' kernels.
pub(crate) mod backward {
    use super::*;

    const BINDINGS: &[Access] = &[Read, Read, Read, Read, ReadWrite, ReadWrite];

    /// The backward kernel of `cell` named by `entries` (LSTM, GRU, Elman), all in the cell's file.
    fn cell_entry(
        cell: CellKind,
        entries: [&'static str; 3],
        bindings: &'static [Access],
    ) -> Kernel {
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
    pub(crate) fn cell_kernel(cell: CellKind) -> Kernel {
        const CELL_BINDINGS: &[Access] = &[Read, Read, Read, Read, ReadWrite, ReadWrite, Read];
        let entries = ["lstm_cell_bwd", "gru_cell_bwd", "rnn_cell_bwd"];
        cell_entry(cell, entries, CELL_BINDINGS)
    }

    /// The persistent small-batch backward of a cell (see `StepPath::Persistent`).
    pub(crate) fn seq_kernel(cell: CellKind) -> Kernel {
        cell_entry(
            cell,
            ["lstm_seq_bwd", "gru_seq_bwd", "rnn_seq_bwd"],
            BINDINGS,
        )
    }

    /// The fused reverse step of GPUs (one row and one unit per invocation: the recurrent product,
    /// then the cell update). CPU adapters split the step instead (see `PanelPlan`).
    pub(crate) fn step_kernel(cell: CellKind) -> Kernel {
        cell_entry(
            cell,
            ["lstm_step_bwd", "gru_step_bwd", "rnn_step_bwd"],
            BINDINGS,
        )
    }
}
