//! Recording one call: every dispatch, copy and clear goes into a list, then into one command
//! encoder and one `queue.submit`. Parameter blocks of all dispatches share one uniform buffer,
//! bound with dynamic offsets.

use std::collections::HashMap;
use std::sync::Arc;

use wgrnn_core::{Error, Result};

use crate::runtime::context::Context;
use crate::runtime::pipeline::{Access, Kernel, Pipeline, WINDOW_BYTES};
use crate::runtime::pool::PooledBuffer;
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

pub(crate) struct Recorder<'c> {
    ctx: &'c Context,
    op: &'static str,
    steps: Vec<Step>,
    params: Vec<u8>,
    /// A copy or clear of another context's tensor, refused at submit: the last line of
    /// defence behind every op's named argument checks.
    foreign: Option<Error>,
}

impl<'c> Recorder<'c> {
    pub(crate) fn new(ctx: &'c Context, op: &'static str) -> Self {
        Self {
            ctx,
            op,
            steps: Vec::new(),
            params: Vec::new(),
            foreign: None,
        }
    }

    pub(crate) fn ctx(&self) -> &'c Context {
        self.ctx
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
        let offset = self.params.len() as u32;
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

    /// Copies `count` f32/u32 elements between tensors (offsets in elements).
    pub(crate) fn copy(
        &mut self,
        src: &GpuTensor,
        src_off: usize,
        dst: &GpuTensor,
        dst_off: usize,
        count: usize,
    ) {
        self.note_foreign("copy source", src);
        self.note_foreign("copy destination", dst);
        if count > 0 {
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
        self.note_foreign("cleared tensor", t);
        let bytes = t.raw().size();
        self.steps.push(Step::Clear {
            buf: t.buf.clone(),
            off: 0,
            bytes,
        });
    }

    fn note_foreign(&mut self, what: &str, t: &GpuTensor) {
        if self.foreign.is_none() && !t.belongs_to(self.ctx) {
            self.foreign = Some(Error::foreign(self.op, what, t.describe()));
        }
    }

    /// Encodes everything into one command buffer and submits it once.
    pub(crate) fn submit(self) -> Result<()> {
        if let Some(e) = self.foreign {
            return Err(e);
        }
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
            ctx.queue.submit([enc.finish()]);
            Ok(())
        })
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
