//! The path of a call's recurrent steps: which kernels run them, chosen once per call by shape
//! and adapter, and the same for its backward.

use wgrnn_core::{CellKind, RnnConfig};

use super::kernels::two_phase;
use crate::ops::pack::{by_unit, packed_slots};
use crate::runtime::context::Context;

/// How a call runs its recurrent steps, forward and reverse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StepPath {
    /// One fused step kernel per timestep (`fwd_step`, `bwd_step`): the recurrent product and
    /// the cell update of a few units in one dispatch. GPUs.
    Fused,
    /// Each step split in two: the product that reads h_prev (dG in reverse) through uniform
    /// windows (`rec_panel`, see `PanelPlan`), then the cell kernel (`fwd_split_cell`,
    /// `bwd_split_cell`), which sums its partial products. CPU adapters, and wherever the fused
    /// kernels' packed `W_hh` does not fit (see [`packed_fits`]).
    Split,
    /// Every step in one dispatch of one workgroup per direction (`fwd_seq`, `bwd_seq`): small
    /// B·H, where a dispatch per step costs more than the parallelism it buys.
    Persistent,
}

/// The path of a call of `steps` timesteps on a batch of `batch` (see [`StepPath`]): the
/// persistent kernels where [`small_batch_path`] holds and no invocation reaches the adapter's
/// loop limit, else the split steps where the adapter wants them or the packed `W_hh` does not
/// fit, else the fused steps.
pub(crate) fn step_path(ctx: &Context, cfg: &RnnConfig, batch: usize, steps: usize) -> StepPath {
    if persistent_fits(ctx, cfg, batch, steps) {
        StepPath::Persistent
    } else if ctx.gemm_block().split_steps() || !packed_fits(ctx, cfg) {
        StepPath::Split
    } else {
        StepPath::Fused
    }
}

/// Work items of one step: B·H, or B·⌈H/4⌉ for Elman cells, whose kernels take four units.
fn step_items(cell: CellKind, hidden: usize, batch: usize) -> usize {
    let items = if by_unit(cell) {
        hidden.div_ceil(4)
    } else {
        hidden
    };
    batch.saturating_mul(items)
}

/// Whether a forward (and its backward) of `cell` with hidden size `hidden` on a batch of
/// `batch` is small enough for the persistent path (`StepPath::Persistent` inside the
/// crate) on `ctx` by shape: when its step has at most [`Context::small_batch_limit`] work
/// items (B·H, or B·⌈H/4⌉ for Elman cells). On an adapter with a [`Context::loop_limit`], a
/// call whose sequence is too long for that limit runs the per-step kernels all the same.
pub fn small_batch_path(ctx: &Context, cell: CellKind, hidden: usize, batch: usize) -> bool {
    step_items(cell, hidden, batch) <= ctx.small_batch_limit()
}

/// Whether a call of `steps` timesteps can run the persistent kernels: [`small_batch_path`],
/// the packed `W_hh` in one binding, and on an adapter with a loop limit, every invocation's
/// loop iterations under it. An invocation runs ⌈items / 256⌉ work items per pass of a step
/// (two passes for a two-phase cell), each a loop over H (plus a few), forward and reverse.
fn persistent_fits(ctx: &Context, cfg: &RnnConfig, batch: usize, steps: usize) -> bool {
    let (cell, hidden) = (cfg.cell, cfg.hidden_size);
    if !small_batch_path(ctx, cell, hidden, batch) || !packed_fits(ctx, cfg) {
        return false;
    }
    let Some(limit) = ctx.loop_limit() else {
        return true;
    };
    let per_invocation = step_items(cell, hidden, batch).div_ceil(256) as u64;
    let passes = if two_phase(cfg) { 2 } else { 1 };
    let trips = (steps as u64 + 1) * passes * (per_invocation * (hidden as u64 + 8) + 1);
    trips < limit
}

/// Whether the packed `W_hh` of the fused and persistent kernels fits one binding: it holds
/// every direction of a layer, and a GRU's three gates padded to four, so it can be larger
/// than the model's own tensors; where it does not fit, the split steps run instead.
fn packed_fits(ctx: &Context, cfg: &RnnConfig) -> bool {
    let slots = cfg.num_directions() * packed_slots(cfg.cell, cfg.hidden_size);
    let floats = slots * if ctx.f16_weights() { 2 } else { 4 };
    ctx.check_fits("packed W_hh", &[floats]).is_ok()
}
