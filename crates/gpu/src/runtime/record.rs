//! Recording one call (or the several calls of a [`crate::Recording`]): every dispatch, copy
//! and clear goes into a list, then into one command encoder and one `queue.submit`. Parameter
//! blocks of all dispatches share one uniform buffer, bound with dynamic offsets.
//!
//! A recorder holds every buffer its commands use until it is submitted or dropped, so the pool
//! cannot lend one out again meanwhile, and counts itself in each buffer's [`OpenUses`]: a use
//! that would see its commands out of order (another recorder writing what this one uses, or
//! reading what this one writes; a readback of what it writes) is refused.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use wgrnn_core::{Error, Result};

use crate::runtime::context::Context;
use crate::runtime::pipeline::{Access, Kernel, Pipeline, WINDOW_BYTES};
use crate::runtime::pool::{OpenUses, PooledBuffer};
use crate::runtime::tensor::GpuTensor;

/// The stride at which kernels fold a long dispatch axis over the next one (`x + 65535·y` in
/// WGSL): the smallest `max_compute_workgroups_per_dimension` a device may have.
pub(crate) const FOLD: usize = 65_535;

/// Workgroups `[x, y, 1]` for `n` along x, folded over y past [`FOLD`].
pub(crate) fn fold_x(n: usize) -> [u32; 3] {
    if n > FOLD {
        [FOLD as u32, n.div_ceil(FOLD) as u32, 1]
    } else {
        [n as u32, 1, 1]
    }
}

/// Workgroups `[x, y, z]` for `y` along y, folded over z past [`FOLD`].
pub(crate) fn fold_y(x: usize, y: usize) -> [u32; 3] {
    let [y, z, _] = fold_x(y);
    [x as u32, y, z]
}

/// Stride between parameter blocks: WebGPU's largest `min_uniform_buffer_offset_alignment`.
const PARAM_STRIDE: usize = 256;

enum Step {
    Dispatch {
        pipeline: Arc<Pipeline>,
        offset: u32,
        buffers: Vec<Arc<PooledBuffer>>,
        /// Byte offsets of the kernel's window bindings, in binding order.
        windows: Vec<u32>,
        groups: [u32; 3],
    },
    Copy {
        src: Arc<PooledBuffer>,
        src_off: u64,
        dst: Arc<PooledBuffer>,
        dst_off: u64,
        bytes: u64,
    },
    Clear {
        buf: Arc<PooledBuffer>,
        off: u64,
        bytes: u64,
    },
}

/// A buffer the recorder's commands use, and how (each counted once in its [`OpenUses`]).
struct Touch {
    buf: Arc<PooledBuffer>,
    read: bool,
    write: bool,
}

/// What [`Recorder::rollback`] undoes, newest last.
enum Undo {
    Read(usize),
    Write(usize),
    /// Host state an op changed when it was recorded (an optimizer's step count), put back if
    /// its commands are never submitted.
    Hook(Box<dyn FnOnce() + Send>),
}

/// A point to roll a recorder back to: its lengths then.
#[derive(Clone, Copy)]
pub(crate) struct Mark {
    steps: usize,
    params: usize,
    log: usize,
}

/// The commands of one op call or of a whole [`crate::Recording`]. `pub` only so that the
/// sealed `Record` trait can hand it to the ops; this module is private, so no user names it.
pub struct Recorder<'c> {
    ctx: &'c Context,
    op: &'static str,
    steps: Vec<Step>,
    params: Vec<u8>,
    /// A copy or clear refused (a tensor of another context, or one an open recording
    /// writes), reported when the op finishes or at submit: the last line of defence behind
    /// every op's named argument checks.
    refused: Option<Error>,
    /// Buffers used, by address (the `Arc` here keeps the address unique).
    touched: HashMap<usize, Touch>,
    log: Vec<Undo>,
}

impl<'c> Recorder<'c> {
    pub(crate) fn new(ctx: &'c Context, op: &'static str) -> Self {
        Self {
            ctx,
            op,
            steps: Vec::new(),
            params: Vec::new(),
            refused: None,
            touched: HashMap::new(),
            log: Vec::new(),
        }
    }

    pub(crate) fn ctx(&self) -> &'c Context {
        self.ctx
    }

    /// Names the op being recorded in errors and labels; returns the previous name.
    pub(crate) fn set_op(&mut self, op: &'static str) -> &'static str {
        std::mem::replace(&mut self.op, op)
    }

    /// Commands recorded so far (dispatches, copies, clears).
    pub(crate) fn commands(&self) -> usize {
        self.steps.len()
    }

    pub(crate) fn mark(&self) -> Mark {
        Mark {
            steps: self.steps.len(),
            params: self.params.len(),
            log: self.log.len(),
        }
    }

    /// Forgets everything recorded since `m`: commands, parameter blocks, buffer uses, and
    /// the host changes of [`Recorder::on_discard`] (run now). A refused copy is forgotten too.
    pub(crate) fn rollback(&mut self, m: Mark) {
        self.steps.truncate(m.steps);
        self.params.truncate(m.params);
        self.refused = None;
        while self.log.len() > m.log {
            let Some(u) = self.log.pop() else { break };
            self.undo(u);
        }
    }

    fn undo(&mut self, u: Undo) {
        let key = match u {
            Undo::Hook(f) => return f(),
            Undo::Read(k) | Undo::Write(k) => k,
        };
        if let Some(t) = self.touched.get_mut(&key) {
            if matches!(u, Undo::Read(_)) {
                t.read = false;
                t.buf.uses.reads.fetch_sub(1, Ordering::SeqCst);
            } else {
                t.write = false;
                t.buf.uses.writes.fetch_sub(1, Ordering::SeqCst);
            }
            if !t.read && !t.write {
                self.touched.remove(&key);
            }
        }
    }

    /// Runs `undo` if the commands recorded so far are never submitted (the recorder is
    /// dropped, or rolled back past this point, or its submit fails).
    pub(crate) fn on_discard(&mut self, undo: impl FnOnce() + Send + 'static) {
        self.log.push(Undo::Hook(Box::new(undo)));
    }

    /// Counts this recorder as a reader (or writer) of `t`, refusing a use that would see
    /// another open recorder's commands out of order: `t` written by another, or, for a write,
    /// read by another. `arg` names the use in the error.
    fn touch(&mut self, t: &GpuTensor, write: bool, arg: impl FnOnce() -> String) -> Result<()> {
        let key = Arc::as_ptr(&t.buf) as usize;
        let e = self.touched.entry(key).or_insert_with(|| Touch {
            buf: t.buf.clone(),
            read: false,
            write: false,
        });
        let uses: &OpenUses = &e.buf.uses;
        // Count this recorder first, then look at the others: two recorders racing on one
        // buffer from two threads then see each other and refuse, never both pass.
        if write && !e.write {
            e.write = true;
            uses.writes.fetch_add(1, Ordering::SeqCst);
            self.log.push(Undo::Write(key));
        } else if !write && !e.read {
            e.read = true;
            uses.reads.fetch_add(1, Ordering::SeqCst);
            self.log.push(Undo::Read(key));
        }
        let writes = uses.writes.load(Ordering::SeqCst) - e.write as usize;
        let reads = uses.reads.load(Ordering::SeqCst) - e.read as usize;
        let reason = if writes > 0 {
            "is written by"
        } else if write && reads > 0 {
            "is read by"
        } else {
            return Ok(());
        };
        Err(Error::Unsubmitted {
            op: self.op,
            arg: arg(),
            what: t.describe(),
            reason,
        })
    }

    /// Records one dispatch of `kernel` over `groups` workgroups with parameter block `params`
    /// and the storage `buffers` in binding order.
    pub(crate) fn dispatch<P: bytemuck::Pod>(
        &mut self,
        kernel: Kernel,
        params: &P,
        buffers: &[&GpuTensor],
        groups: [u32; 3],
    ) -> Result<()> {
        self.dispatch_with(kernel, &[], params, buffers, groups)
    }

    /// [`Recorder::dispatch`] for a kernel with [`Access::Window`] bindings: `windows` gives
    /// each one's byte offset into its buffer, in binding order.
    pub(crate) fn dispatch_windowed<P: bytemuck::Pod>(
        &mut self,
        kernel: Kernel,
        params: &P,
        buffers: &[&GpuTensor],
        windows: &[u64],
        groups: [u32; 3],
    ) -> Result<()> {
        let window_bufs: Vec<&GpuTensor> = kernel
            .bindings
            .iter()
            .zip(buffers)
            .filter(|(a, _)| **a == Access::Window)
            .map(|(_, b)| *b)
            .collect();
        if window_bufs.len() != windows.len() {
            return Err(Error::InvalidArgument {
                op: self.op,
                arg: "windows",
                reason: format!(
                    "{} has {} window bindings, got {} offsets",
                    kernel.entry,
                    window_bufs.len(),
                    windows.len()
                ),
            });
        }
        let align = self.ctx.limits.min_uniform_buffer_offset_alignment as u64;
        let mut offs = Vec::with_capacity(windows.len());
        for (b, &off) in window_bufs.iter().zip(windows) {
            let size = b.buf.raw().size();
            if off % align != 0 || off + WINDOW_BYTES > size {
                return Err(Error::InvalidArgument {
                    op: self.op,
                    arg: "windows",
                    reason: format!(
                        "{}: a {WINDOW_BYTES}-byte window at byte {off} of a {size}-byte \
                         buffer (offsets must be multiples of {align})",
                        kernel.entry
                    ),
                });
            }
            offs.push(u32::try_from(off).map_err(|_| Error::TooLarge {
                op: self.op,
                arg: format!("{} window offset", kernel.entry),
                size: off,
                unit: "bytes",
                limit_name: "u32 dynamic offset",
                limit: u32::MAX as u64,
            })?);
        }
        self.push_dispatch(kernel, &[], params, buffers, offs, groups)
    }

    pub(crate) fn dispatch_with<P: bytemuck::Pod>(
        &mut self,
        kernel: Kernel,
        constants: &[(&str, f64)],
        params: &P,
        buffers: &[&GpuTensor],
        groups: [u32; 3],
    ) -> Result<()> {
        if kernel.bindings.contains(&Access::Window) {
            return Err(Error::InvalidArgument {
                op: self.op,
                arg: "windows",
                reason: format!("{} binds windows: use dispatch_windowed", kernel.entry),
            });
        }
        self.push_dispatch(kernel, constants, params, buffers, Vec::new(), groups)
    }

    fn push_dispatch<P: bytemuck::Pod>(
        &mut self,
        kernel: Kernel,
        constants: &[(&str, f64)],
        params: &P,
        buffers: &[&GpuTensor],
        windows: Vec<u32>,
        groups: [u32; 3],
    ) -> Result<()> {
        if buffers.len() != kernel.bindings.len() {
            return Err(Error::InvalidArgument {
                op: self.op,
                arg: "buffers",
                reason: format!(
                    "{} takes {} buffers, got {}",
                    kernel.entry,
                    kernel.bindings.len(),
                    buffers.len()
                ),
            });
        }
        if let Some((i, b)) = buffers
            .iter()
            .enumerate()
            .find(|(_, b)| !b.belongs_to(self.ctx))
        {
            return Err(Error::foreign(
                self.op,
                format!("{} binding {}", kernel.entry, i + 1),
                b.describe(),
            ));
        }
        let max = self.ctx.limits.max_compute_workgroups_per_dimension;
        if let Some(&g) = groups.iter().find(|g| **g > max) {
            return Err(Error::TooLarge {
                op: self.op,
                arg: format!(
                    "{} over buffers of shapes {:?}",
                    kernel.entry,
                    buffers.iter().map(|b| b.shape()).collect::<Vec<_>>()
                ),
                size: g as u64,
                unit: "workgroups in one dimension",
                limit_name: "max_compute_workgroups_per_dimension",
                limit: max as u64,
            });
        }
        if groups.contains(&0) {
            return Ok(());
        }
        let pipeline = self.ctx.pipeline(kernel, constants)?;
        let bytes = bytemuck::bytes_of(params);
        if bytes.len() > PARAM_STRIDE {
            return Err(Error::InvalidArgument {
                op: self.op,
                arg: "params",
                reason: format!("{} bytes > {PARAM_STRIDE}", bytes.len()),
            });
        }
        let offset = self.param_offset()?;
        self.touch_bindings(kernel, buffers)?;
        self.params.extend_from_slice(bytes);
        self.params.resize(offset as usize + PARAM_STRIDE, 0);
        self.steps.push(Step::Dispatch {
            pipeline,
            offset,
            buffers: buffers.iter().map(|b| b.buf.clone()).collect(),
            windows,
            groups,
        });
        Ok(())
    }

    /// The dynamic offset of the next parameter block: the bytes recorded so far.
    fn param_offset(&self) -> Result<u32> {
        u32::try_from(self.params.len()).map_err(|_| Error::TooLarge {
            op: self.op,
            arg: "parameter blocks of one recording".into(),
            size: self.params.len() as u64,
            unit: "bytes",
            limit_name: "u32 dynamic offset",
            limit: u32::MAX as u64,
        })
    }

    /// Counts a dispatch's uses of its `buffers` (see [`Recorder::touch`]): a refused one
    /// takes back those of the others, leaving the recorder as before the dispatch (with an
    /// earlier copy's or clear's refusal still pending).
    fn touch_bindings(&mut self, kernel: Kernel, buffers: &[&GpuTensor]) -> Result<()> {
        let m = self.mark();
        for (i, (b, a)) in buffers.iter().zip(kernel.bindings).enumerate() {
            let write = *a == Access::ReadWrite;
            if let Err(e) = self.touch(b, write, || format!("{} binding {}", kernel.entry, i + 1)) {
                self.rollback_keeping_refusal(m);
                return Err(e);
            }
        }
        Ok(())
    }

    /// Copies `count` f32/u32 elements between tensors (offsets in elements).
    pub(crate) fn copy(
        &mut self,
        src: &GpuTensor,
        src_off: usize,
        dst: &GpuTensor,
        dst_off: usize,
        count: usize,
    ) {
        let m = self.mark();
        let ok = self.note("copy source", src, false) && self.note("copy destination", dst, true);
        if !ok {
            self.rollback_keeping_refusal(m);
        } else if count > 0 {
            self.steps.push(Step::Copy {
                src: src.buf.clone(),
                src_off: 4 * src_off as u64,
                dst: dst.buf.clone(),
                dst_off: 4 * dst_off as u64,
                bytes: 4 * count as u64,
            });
        }
    }

    /// Zeroes a whole tensor's buffer.
    pub(crate) fn clear(&mut self, t: &GpuTensor) {
        if !self.note("cleared tensor", t, true) {
            return;
        }
        let bytes = t.raw().size();
        self.steps.push(Step::Clear {
            buf: t.buf.clone(),
            off: 0,
            bytes,
        });
    }

    /// Whether a copy or clear may use `t`; if not, the first refusal is kept for
    /// [`Recorder::take_refusal`] and submit.
    fn note(&mut self, what: &str, t: &GpuTensor, write: bool) -> bool {
        let r = if t.belongs_to(self.ctx) {
            self.touch(t, write, || what.to_string())
        } else {
            Err(Error::foreign(self.op, what, t.describe()))
        };
        match r {
            Ok(()) => true,
            Err(e) => {
                self.refused.get_or_insert(e);
                false
            }
        }
    }

    fn rollback_keeping_refusal(&mut self, m: Mark) {
        let refused = self.refused.take();
        self.rollback(m);
        self.refused = refused;
    }

    /// The refusal of a copy or clear recorded since the last call, if any.
    pub(crate) fn take_refusal(&mut self) -> Option<Error> {
        self.refused.take()
    }

    /// Encodes everything into one command buffer and submits it once. The buffers stay
    /// counted as used until the recorder drops, after the submit: from then on the queue
    /// orders any later use after these commands.
    pub(crate) fn submit(mut self) -> Result<()> {
        if let Some(e) = self.refused.take() {
            return Err(e);
        }
        self.encode_and_submit()?;
        // Submitted: the host changes stand.
        self.log.clear();
        Ok(())
    }

    fn encode_and_submit(&self) -> Result<()> {
        let ctx = self.ctx;
        ctx.scoped(self.op, || {
            let uniforms = ctx.alloc_uniform(self.params.len().max(PARAM_STRIDE) as u64)?;
            if !self.params.is_empty() {
                ctx.queue.write_buffer(uniforms.raw(), 0, &self.params);
            }
            // One bind group per distinct (pipeline, buffers): steps of a recurrence reuse theirs.
            let mut groups: HashMap<(usize, Vec<usize>), wgpu::BindGroup> = HashMap::new();
            let key = |p: &Arc<Pipeline>, bufs: &[Arc<PooledBuffer>]| {
                (
                    Arc::as_ptr(p) as usize,
                    bufs.iter()
                        .map(|b| Arc::as_ptr(b) as usize)
                        .collect::<Vec<_>>(),
                )
            };
            for s in &self.steps {
                if let Step::Dispatch {
                    pipeline, buffers, ..
                } = s
                {
                    groups
                        .entry(key(pipeline, buffers))
                        .or_insert_with(|| bind_group(ctx, pipeline, buffers, uniforms.raw()));
                }
            }
            let mut enc = ctx
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some(self.op),
                });
            let mut i = 0;
            while i < self.steps.len() {
                match &self.steps[i] {
                    Step::Dispatch { .. } => {
                        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                            label: Some(self.op),
                            timestamp_writes: None,
                        });
                        while let Some(Step::Dispatch {
                            pipeline,
                            offset,
                            buffers,
                            windows,
                            groups: g,
                        }) = self.steps.get(i)
                        {
                            let mut offsets = Vec::with_capacity(1 + windows.len());
                            offsets.push(*offset);
                            offsets.extend_from_slice(windows);
                            pass.set_pipeline(&pipeline.pipeline);
                            pass.set_bind_group(0, &groups[&key(pipeline, buffers)], &offsets);
                            pass.dispatch_workgroups(g[0], g[1], g[2]);
                            i += 1;
                        }
                    }
                    Step::Copy {
                        src,
                        src_off,
                        dst,
                        dst_off,
                        bytes,
                    } => {
                        enc.copy_buffer_to_buffer(src.raw(), *src_off, dst.raw(), *dst_off, *bytes);
                        i += 1;
                    }
                    Step::Clear { buf, off, bytes } => {
                        enc.clear_buffer(buf.raw(), *off, Some(*bytes));
                        i += 1;
                    }
                }
            }
            ctx.submit_counted(enc.finish());
            Ok(())
        })
    }
}

impl Drop for Recorder<'_> {
    /// Puts back the host changes of commands never submitted, then stops counting this
    /// recorder's buffer uses (the buffers go back to the pool once no tensor holds them).
    fn drop(&mut self) {
        while let Some(u) = self.log.pop() {
            if let Undo::Hook(f) = u {
                f();
            }
        }
        for t in self.touched.values() {
            if t.read {
                t.buf.uses.reads.fetch_sub(1, Ordering::SeqCst);
            }
            if t.write {
                t.buf.uses.writes.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }
}

/// The bind group of one dispatch: the shared parameter block at binding 0 (its offset is
/// dynamic), then `buffers` whole, or as a window of [`WINDOW_BYTES`] at a dynamic offset.
fn bind_group(
    ctx: &Context,
    pipeline: &Pipeline,
    buffers: &[Arc<PooledBuffer>],
    uniforms: &wgpu::Buffer,
) -> wgpu::BindGroup {
    let mut entries = vec![wgpu::BindGroupEntry {
        binding: 0,
        resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: uniforms,
            offset: 0,
            size: std::num::NonZeroU64::new(PARAM_STRIDE as u64),
        }),
    }];
    for (i, (b, a)) in buffers.iter().zip(pipeline.kernel.bindings).enumerate() {
        let resource = match a {
            Access::Window => wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: b.raw(),
                offset: 0,
                size: std::num::NonZeroU64::new(WINDOW_BYTES),
            }),
            _ => b.raw().as_entire_binding(),
        };
        entries.push(wgpu::BindGroupEntry {
            binding: i as u32 + 1,
            resource,
        });
    }
    ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some(pipeline.kernel.entry),
        layout: &pipeline.layout,
        entries: &entries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Past FOLD workgroups an axis continues on the next one, which the kernels read back as
    /// `x + FOLD·y`: every index below the count is covered once the shader bounds-checks.
    #[test]
    fn long_axes_fold_at_the_kernels_stride() {
        assert_eq!(fold_x(0), [0, 1, 1]);
        assert_eq!(fold_x(FOLD), [FOLD as u32, 1, 1]);
        assert_eq!(fold_x(FOLD + 1), [FOLD as u32, 2, 1]);
        assert_eq!(fold_x(3 * FOLD), [FOLD as u32, 3, 1]);
        assert_eq!(fold_y(7, 70_000), [7, FOLD as u32, 2]);
        assert_eq!(fold_y(7, 5), [7, 5, 1]);
    }
}
