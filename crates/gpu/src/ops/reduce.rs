//! Reductions shared by the ops' backward passes: column sums (the bias gradients of the
//! recurrent, linear and attention layers), by `col_sum` in matmul.wgsl.

use wgrnn_core::Result;

use crate::runtime::pipeline::{Access, Kernel};
use crate::runtime::record::Recorder;
use crate::runtime::shaders::Shader;
use crate::runtime::tensor::GpuTensor;
use crate::runtime::uniforms::matmul::SumParams;

use Access::{Read, ReadWrite};

const COL_SUM: Kernel = Kernel {
    shader: Shader::Matmul,
    entry: "col_sum",
    bindings: &[Read, ReadWrite],
};

/// Rows per `col_sum` dispatch: each invocation loops over them, so they stay far below the
/// loop limit of CPU adapters ([`crate::CPU_LOOP_LIMIT`]).
const COL_SUM_ROWS: usize = 16_384;

/// Column sums of `rows × cols` starting at `src_off` of `src`, into (or added to) `dst`: in
/// chunks of rows, each added to the sum of those before, in row order (deterministic).
pub(crate) fn col_sum(
    rec: &mut Recorder<'_>,
    src: &GpuTensor,
    src_off: usize,
    rows: usize,
    cols: usize,
    dst: &GpuTensor,
    accumulate: bool,
) -> Result<()> {
    for r0 in (0..rows.max(1)).step_by(COL_SUM_ROWS) {
        let p = SumParams {
            rows: (rows - r0).min(COL_SUM_ROWS) as u32,
            cols: cols as u32,
            accumulate: (accumulate || r0 > 0) as u32,
            src_off: (src_off + r0 * cols) as u32,
        };
        rec.dispatch(COL_SUM, &p, &[src, dst], [cols.div_ceil(64) as u32, 1, 1])?;
    }
    Ok(())
}
