//! The recurrent weights in the layouts the step kernels read (pack.wgsl, and pack_f16.wgsl
//! where `W_hh` is stored as f16): `W_hh` gathered into vec4 of a unit's gates (`pack_gates`),
//! the folded biases of the input projection, and `W_hh` rounded through f16 for the products
//! that read it as f32.

use wgrnn_core::{CellKind, Result};

use crate::runtime::pipeline::{Access, Kernel};
use crate::runtime::record::Recorder;
use crate::runtime::shaders::Shader;
use crate::runtime::tensor::{DType, GpuTensor, u32_of};
use crate::runtime::uniforms::pack::{BiasParams, GateParams, RoundParams};

use Access::{Read, ReadWrite};

/// The op the packing's index errors name: the forward's, whichever pass packs.
const FORWARD: &str = "rnn_forward";

const PACK_GATES: Kernel = Kernel {
    shader: Shader::Pack,
    entry: "pack_gates",
    bindings: &[Read, ReadWrite],
};
const PACK_GATES_F16: Kernel = Kernel {
    shader: Shader::PackF16,
    entry: "pack_gates_f16",
    ..PACK_GATES
};
const FOLD_BIAS: Kernel = Kernel {
    shader: Shader::Pack,
    entry: "fold_bias",
    bindings: &[Read, Read, ReadWrite],
};

/// W_hh rounded through f16 in its own layout, for products with f16 weights (pack_f16.wgsl).
const ROUND_F16: Kernel = Kernel {
    shader: Shader::PackF16,
    entry: "round_f16",
    bindings: &[Read, ReadWrite],
};

/// Elman cells pack four units to a vec4; LSTM and GRU pack the gates of one unit.
pub(crate) fn by_unit(cell: CellKind) -> bool {
    matches!(cell, CellKind::RnnTanh | CellKind::RnnRelu)
}

/// vec4 slots of one direction's packed `W_hh` (see `pack_gates` in pack.wgsl).
pub(crate) fn packed_slots(cell: CellKind, h: usize) -> usize {
    if by_unit(cell) {
        h * h.div_ceil(4)
    } else {
        h * h
    }
}

/// A tensor for `dirs` directions' packed `W_hh` in the context's storage: vec4 of f32, or
/// (with f16 weights) four f16 in two u32.
pub(crate) fn alloc_packed(
    rec: &Recorder<'_>,
    cell: CellKind,
    h: usize,
    dirs: usize,
) -> Result<GpuTensor> {
    let slots = dirs * packed_slots(cell, h);
    if rec.ctx().f16_weights() {
        rec.ctx()
            .alloc("pack_w_hh", "packed W_hh (f16)", &[slots * 2], DType::U32)
    } else {
        rec.ctx()
            .alloc("pack_w_hh", "packed W_hh", &[slots * 4], DType::F32)
    }
}

/// `W_hh` in the step kernels' vec4 layout (see `pack_gates` in pack.wgsl), written into
/// `packed` from vec4 slot `slot_off` on (a direction's part of a tensor from
/// [`alloc_packed`]); `transposed` gives the layout of backward's `dG·W_hh`.
pub(crate) fn pack_w_hh_into(
    rec: &mut Recorder<'_>,
    w_hh: &GpuTensor,
    cell: CellKind,
    h: usize,
    transposed: bool,
    packed: &GpuTensor,
    slot_off: usize,
) -> Result<()> {
    let units4 = h.div_ceil(4);
    let by_unit = by_unit(cell);
    let gp = GateParams {
        hidden: h as u32,
        gates: cell.gates() as u32,
        units4: units4 as u32,
        by_unit: by_unit as u32,
        transposed: transposed as u32,
        dst_off: u32_of(FORWARD, "packed W_hh", slot_off)?,
        ..Default::default()
    };
    let gx = if by_unit { units4 } else { h };
    let kernel = if rec.ctx().f16_weights() {
        PACK_GATES_F16
    } else {
        PACK_GATES
    };
    rec.dispatch(
        kernel,
        &gp,
        &[w_hh, packed],
        [gx.div_ceil(64) as u32, h.div_ceil(4) as u32, 1],
    )
}

/// `folded = b_ih + b_hh` over `b_ih`'s elements, `b_hh` only before `skip_from` (a GRU's
/// `b_hn` stays out, the cell applies it inside the reset gate).
pub(crate) fn fold_bias(
    rec: &mut Recorder<'_>,
    b_ih: &GpuTensor,
    b_hh: &GpuTensor,
    skip_from: usize,
    folded: &GpuTensor,
) -> Result<()> {
    let n = b_ih.numel();
    let bp = BiasParams {
        n: n as u32,
        skip_from: skip_from as u32,
        ..Default::default()
    };
    rec.dispatch(
        FOLD_BIAS,
        &bp,
        &[b_ih, b_hh, folded],
        [n.div_ceil(64) as u32, 1, 1],
    )
}

/// `n` floats of `W_hh` from `src_off` on, as the split steps compute with them: rounded
/// through f16 when the context stores weights as f16 (the same values the other kernels
/// unpack), else as they are. `dst` receives them at `off`.
pub(crate) fn w_hh_rows(
    rec: &mut Recorder<'_>,
    w_hh: &GpuTensor,
    src_off: usize,
    n: usize,
    dst: &GpuTensor,
    off: usize,
) -> Result<()> {
    if rec.ctx().f16_weights() {
        let p = RoundParams {
            n: n as u32,
            dst_off: off as u32,
            src_off: src_off as u32,
            ..Default::default()
        };
        let groups = n.div_ceil(64).min(4096) as u32;
        rec.dispatch(ROUND_F16, &p, &[w_hh, dst], [groups, 1, 1])
    } else {
        rec.copy(w_hh, src_off, dst, off, n);
        Ok(())
    }
}
