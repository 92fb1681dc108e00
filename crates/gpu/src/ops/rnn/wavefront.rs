//! The layer wavefront: unidirectional stacks recorded as chunks of steps, each layer a chunk
//! behind the one before it, so that a device runs the layers' steps together. The forward
//! walks up the stack from the first step on, the backward down from the last step back; both
//! record through [`Wavefront::record`].

use std::ops::Range;

use wgrnn_core::{Result, RnnConfig};

use super::path::StepPath;
use crate::runtime::context::Context;
use crate::runtime::record::Recorder;

/// Chunks per sequence of the layer wavefront (see [`Wavefront::of`]).
const WAVE_CHUNKS: usize = 8;

/// The chunking of a call's steps for the layer wavefront.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Wavefront {
    /// Steps per chunk.
    chunk: usize,
    chunks: usize,
    max_len: usize,
}

/// What the wavefront records for the runs (layers in the order they run) of one call.
pub(crate) trait WaveRun {
    /// Before run `k` (k ≥ 1) takes on the steps `ts`: what it needs of run `k - 1` for them
    /// (the forward's input projection of those rows, the backward's dX of the layer above).
    fn handoff(&self, rec: &mut Recorder<'_>, k: usize, ts: Range<usize>) -> Result<()>;
    /// Step `t` of run `k`.
    fn step(&self, rec: &mut Recorder<'_>, k: usize, t: usize) -> Result<()>;
    /// After run `k`'s last chunk.
    fn done(&self, rec: &mut Recorder<'_>, k: usize) -> Result<()>;
}

impl Wavefront {
    /// The wavefront of a call, or `None` where layers run one after another: for
    /// unidirectional stacks of per-step layers. A bidirectional layer's reverse direction
    /// starts at each sequence's last step, so it needs all of the layer below first; a
    /// persistent layer is one dispatch. About eight chunks per sequence: each chunk of a
    /// layer waits for the same chunk of the layer below, so a stack of L layers takes about
    /// T + (L - 1)·T/8 steps' time instead of L·T where a device runs two layers' steps
    /// together, while each chunk's input projection stays one GEMM over its T/8·B rows.
    /// [`Context::layer_wavefront`] says where it runs (not on CPU adapters by default); both
    /// schedules give bit-identical results.
    pub(crate) fn of(
        ctx: &Context,
        cfg: &RnnConfig,
        path: StepPath,
        max_len: usize,
    ) -> Option<Self> {
        let persistent = path == StepPath::Persistent;
        let on = ctx.layer_wavefront() && cfg.num_layers > 1 && !cfg.bidirectional && !persistent;
        on.then(|| {
            let chunk = max_len.div_ceil(WAVE_CHUNKS).max(1);
            Self {
                chunk,
                chunks: max_len.div_ceil(chunk),
                max_len,
            }
        })
    }

    /// The steps of chunk `c`.
    fn span(&self, c: usize) -> Range<usize> {
        c * self.chunk..((c + 1) * self.chunk).min(self.max_len)
    }

    /// Records `runs` runs as a wavefront, forward in time or (`reverse`) back. Wave v: run k
    /// takes the (v - k)-th chunk (counted from the end in reverse). Before its steps, the
    /// handoff of the chunk from run k - 1, which finished it in wave v - 1. Within a wave the
    /// runs' steps alternate: run k's step and run k + 1's step a chunk away touch no common
    /// buffer, so a GPU runs them together (each run's next step waits for both).
    pub(crate) fn record<W: WaveRun>(
        &self,
        rec: &mut Recorder<'_>,
        w: &W,
        runs: usize,
        reverse: bool,
    ) -> Result<()> {
        for wave in 0..self.chunks + runs - 1 {
            // The chunk run k takes in this wave, and whether it is the run's last.
            let live = |k: usize| {
                let v = wave.checked_sub(k).filter(|&v| v < self.chunks)?;
                let c = if reverse { self.chunks - 1 - v } else { v };
                Some((c, v + 1 == self.chunks))
            };
            for k in 1..runs {
                if let Some((c, _)) = live(k) {
                    w.handoff(rec, k, self.span(c))?;
                }
            }
            for i in 0..self.chunk {
                for k in 0..runs {
                    let Some((c, _)) = live(k) else { continue };
                    let ts = self.span(c);
                    if i < ts.len() {
                        let t = if reverse {
                            ts.end - 1 - i
                        } else {
                            ts.start + i
                        };
                        w.step(rec, k, t)?;
                    }
                }
            }
            for k in 0..runs {
                if let Some((_, true)) = live(k) {
                    w.done(rec, k)?;
                }
            }
        }
        Ok(())
    }
}
