//! Which kernels run a call's recurrent steps, by shape and adapter.

use wgrnn_core::{CellKind, RnnConfig};

use crate::ops::pack::{by_unit, packed_slots};
use crate::runtime::context::Context;

/// Whether a forward (and its backward) of `cell` with hidden size `hidden` on a batch of
/// `batch` takes the persistent small-batch path on `ctx` by shape: when its step has at most
/// [`Context::small_batch_limit`] work items (B·H, or B·⌈H/4⌉ for Elman cells). On an adapter
/// with a [`Context::loop_limit`], a call whose sequence is too long for that limit runs the
/// per-step kernels all the same.
pub fn small_batch_path(ctx: &Context, cell: CellKind, hidden: usize, batch: usize) -> bool {
    let items = if by_unit(cell) {
        hidden.div_ceil(4)
    } else {
        hidden
    };
    batch.saturating_mul(items) <= ctx.small_batch_limit()
}

/// Whether a call of `steps` timesteps runs the persistent kernels: [`small_batch_path`], and
/// on an adapter with a loop limit, every invocation's loop iterations under it. An invocation
/// runs ⌈items / 256⌉ work items per step, each a loop over H (plus a few), forward and
/// reverse; past the limit the per-step kernels run instead.
pub(crate) fn persistent_path(ctx: &Context, cfg: &RnnConfig, batch: usize, steps: usize) -> bool {
    let (cell, hidden) = (cfg.cell, cfg.hidden_size);
    if !small_batch_path(ctx, cell, hidden, batch) || !packed_fits(ctx, cfg) {
        return false;
    }
    let Some(limit) = ctx.loop_limit() else {
        return true;
    };
    let items = if by_unit(cell) {
        hidden.div_ceil(4)
    } else {
        hidden
    };
    let per_invocation = batch.saturating_mul(items).div_ceil(256) as u64;
    let trips = (steps as u64 + 1) * (per_invocation * (hidden as u64 + 8) + 1);
    trips < limit
}

/// Whether the packed `W_hh` of the fused and persistent kernels fits one binding: it holds
/// every direction of a layer, and a GRU's three gates padded to four, so it can be larger
/// than the model's own tensors; where it does not fit, the split steps run instead.
pub(crate) fn packed_fits(ctx: &Context, cfg: &RnnConfig) -> bool {
    let slots = cfg.num_directions() * packed_slots(cfg.cell, cfg.hidden_size);
    let floats = slots * if ctx.f16_weights() { 2 } else { 4 };
    ctx.check_fits("packed W_hh", &[floats]).is_ok()
}

/// Whether a call's per-step layers run the split steps: on CPU adapters, and wherever the
/// fused kernels' packed `W_hh` does not fit (see [`packed_fits`]).
pub(crate) fn split_path(ctx: &Context, cfg: &RnnConfig, persistent: bool) -> bool {
    !persistent && (ctx.gemm_block().split_steps() || !packed_fits(ctx, cfg))
}
