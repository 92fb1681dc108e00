//! The layer wavefront: unidirectional stacks recorded as chunks of steps, each layer a chunk
//! behind the one below, so that a device runs the layers' steps together.

use wgrnn_core::RnnConfig;

use crate::runtime::context::Context;

/// Steps per chunk of the layer wavefront, or `None` where layers run one after another: for
/// unidirectional stacks of per-step layers. A bidirectional layer's reverse direction starts
/// at each sequence's last step, so it needs all of the layer below first; a persistent layer
/// is one dispatch. About eight chunks per sequence: each chunk of a layer waits for the same
/// chunk of the layer below, so a stack of L layers takes about T + (L - 1)·T/8 steps' time
/// instead of L·T where a device runs two layers' steps together, while each chunk's input
/// projection stays one GEMM over its T/8·B rows. [`Context::layer_wavefront`] says where it
/// runs (not on CPU adapters by default); both schedules give bit-identical results.
pub(crate) fn wavefront_chunk(
    ctx: &Context,
    cfg: &RnnConfig,
    persistent: bool,
    max_len: usize,
) -> Option<usize> {
    let on = ctx.layer_wavefront() && cfg.num_layers > 1 && !cfg.bidirectional && !persistent;
    on.then(|| max_len.div_ceil(WAVE_CHUNKS).max(1))
}

/// Chunks per sequence of the layer wavefront (see [`wavefront_chunk`]).
const WAVE_CHUNKS: usize = 8;
