//! Device tensors and the buffer pool that recycles their storage across calls.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use wgrnn_core::{Error, Result, Tensor};

use crate::runtime::context::Context;

/// Element type of a device tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    U32,
}

/// Every pooled buffer has one of these usages: storage for kernels (and uniform windows, see
/// `Access::Window`), copies in and out.
const STORAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::UNIFORM)
    .union(wgpu::BufferUsages::COPY_SRC)
    .union(wgpu::BufferUsages::COPY_DST);
const UNIFORM: wgpu::BufferUsages = wgpu::BufferUsages::UNIFORM.union(wgpu::BufferUsages::COPY_DST);

/// Allocation counters of the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PoolStats {
    /// Buffers live now: created and not yet released (by `trim_pool` or the idle cap).
    pub allocations: usize,
    /// Buffers currently idle in the pool.
    pub idle: usize,
    /// Requests served from the pool without creating a buffer.
    pub reuses: usize,
    /// Bytes held by idle buffers.
    pub idle_bytes: u64,
}

/// Free lists by (usage, size class). Sizes round up to one of eight classes per power of two
/// (at most 12.5 % slack), so a repeated call of one shape allocates nothing after the first and
/// calls of varying shapes share buffers. Idle buffers beyond `idle_cap` bytes are released
/// instead of kept.
pub(crate) struct BufferPool {
    device: wgpu::Device,
    free: Mutex<HashMap<(u32, u64), Vec<wgpu::Buffer>>>,
    idle_bytes: AtomicU64,
    idle_cap: AtomicU64,
    allocations: AtomicUsize,
    reuses: AtomicUsize,
}

/// Default cap on the bytes idle buffers may hold.
pub const DEFAULT_IDLE_CAP: u64 = 1 << 30;

/// A tensor of `bytes` is bound whole, as a buffer of the next 16-byte multiple, and its
/// kernels index its f32 elements with u32: both must fit. (Binding limits of 2³¹ − 1 bytes are
/// common, so the rounding matters at the edge; Metal allows buffers of more than 2³² floats,
/// which a u32 index would wrap around in.)
fn check_binding_size(op: &'static str, arg: &str, bytes: u64, limit: u64) -> Result<()> {
    let buffer = bytes.max(16).next_multiple_of(16);
    if buffer > limit {
        return Err(Error::TooLarge {
            op,
            arg: arg.to_string(),
            size: buffer,
            unit: "bytes",
            limit_name: "max_storage_buffer_binding_size",
            limit,
        });
    }
    if bytes / 4 > u32::MAX as u64 {
        return Err(Error::TooLarge {
            op,
            arg: arg.to_string(),
            size: bytes / 4,
            unit: "elements",
            limit_name: "u32 element index",
            limit: u32::MAX as u64,
        });
    }
    Ok(())
}

/// The size class of a request: a multiple of 256 bytes and of 1/8 of its power of two.
pub(crate) fn round_size(bytes: u64) -> u64 {
    let b = bytes.max(16);
    let step = (b.next_power_of_two() / 8).max(256);
    b.div_ceil(step) * step
}

impl BufferPool {
    pub(crate) fn new(device: wgpu::Device) -> Self {
        Self {
            device,
            free: Mutex::new(HashMap::new()),
            idle_bytes: AtomicU64::new(0),
            idle_cap: AtomicU64::new(DEFAULT_IDLE_CAP),
            allocations: AtomicUsize::new(0),
            reuses: AtomicUsize::new(0),
        }
    }

    fn take(&self, usage: wgpu::BufferUsages, size: u64) -> wgpu::Buffer {
        let key = (usage.bits(), size);
        let reused = self
            .free
            .lock()
            .ok()
            .and_then(|mut f| f.get_mut(&key).and_then(Vec::pop));
        if let Some(b) = reused {
            self.reuses.fetch_add(1, Ordering::Relaxed);
            self.idle_bytes.fetch_sub(b.size(), Ordering::Relaxed);
            return b;
        }
        self.allocations.fetch_add(1, Ordering::Relaxed);
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("wgrnn pooled"),
            size,
            usage,
            mapped_at_creation: false,
        })
    }

    fn give(&self, usage: wgpu::BufferUsages, buffer: wgpu::Buffer) {
        let size = buffer.size();
        let idle = self.idle_bytes.load(Ordering::Relaxed);
        if idle.saturating_add(size) > self.idle_cap.load(Ordering::Relaxed) {
            // Over the cap: release it (wgpu frees it once submitted work no longer uses it).
            self.allocations.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        if let Ok(mut f) = self.free.lock() {
            self.idle_bytes.fetch_add(size, Ordering::Relaxed);
            f.entry((usage.bits(), size)).or_default().push(buffer);
        }
    }

    pub(crate) fn stats(&self) -> PoolStats {
        PoolStats {
            allocations: self.allocations.load(Ordering::Relaxed),
            idle: self
                .free
                .lock()
                .map(|f| f.values().map(Vec::len).sum())
                .unwrap_or(0),
            reuses: self.reuses.load(Ordering::Relaxed),
            idle_bytes: self.idle_bytes.load(Ordering::Relaxed),
        }
    }

    fn trim(&self) {
        if let Ok(mut f) = self.free.lock() {
            let n: usize = f.values().map(Vec::len).sum();
            f.clear();
            self.idle_bytes.store(0, Ordering::Relaxed);
            self.allocations.fetch_sub(n, Ordering::Relaxed);
        }
    }
}

/// A buffer on loan from the pool; it goes back when the last reference drops. Work already
/// submitted that uses it stays valid: the queue runs submissions in order, so a later call that
/// reuses the buffer writes it only after earlier readers are done.
pub(crate) struct PooledBuffer {
    pub(crate) buffer: Option<wgpu::Buffer>,
    usage: wgpu::BufferUsages,
    pool: Arc<BufferPool>,
}

impl PooledBuffer {
    pub(crate) fn raw(&self) -> &wgpu::Buffer {
        // Only `Drop` takes the buffer out.
        self.buffer
            .as_ref()
            .expect("pooled buffer present until drop")
    }
}

impl Drop for PooledBuffer {
    fn drop(&mut self) {
        if let Some(b) = self.buffer.take() {
            self.pool.give(self.usage, b);
        }
    }
}

/// A tensor in device memory: a shape, an element type and a pooled buffer (which may be larger
/// than the tensor). Cloning shares the buffer.
#[derive(Clone)]
pub struct GpuTensor {
    pub(crate) buf: Arc<PooledBuffer>,
    shape: Vec<usize>,
    dtype: DType,
}

impl std::fmt::Debug for GpuTensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GpuTensor({:?}, {:?})", self.dtype, self.shape)
    }
}

impl GpuTensor {
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    pub fn numel(&self) -> usize {
        // An empty tensor's other axes may multiply past usize ([0, usize::MAX, 2]).
        if self.shape.contains(&0) {
            0
        } else {
            self.shape.iter().product()
        }
    }

    /// The same storage under another shape of equal element count.
    pub fn reshaped(&self, shape: impl Into<Vec<usize>>) -> Result<Self> {
        let shape = shape.into();
        if shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)) != Some(self.numel()) {
            return Err(Error::DataLength {
                shape,
                len: self.numel(),
            });
        }
        Ok(Self {
            buf: self.buf.clone(),
            shape,
            dtype: self.dtype,
        })
    }

    pub(crate) fn raw(&self) -> &wgpu::Buffer {
        self.buf.raw()
    }

    /// Whether two tensors share storage.
    pub fn same_buffer(&self, other: &GpuTensor) -> bool {
        Arc::ptr_eq(&self.buf, &other.buf)
    }

    /// Whether `ctx` made this tensor. A tensor works only with its own context: wgpu resources
    /// of another device would name other buffers there, so every op refuses a foreign one.
    pub fn belongs_to(&self, ctx: &Context) -> bool {
        self.buf.belongs_to(ctx)
    }

    pub(crate) fn describe(&self) -> String {
        format!(
            "{} tensor of shape {}",
            match self.dtype {
                DType::F32 => "f32",
                DType::U32 => "u32",
            },
            wgrnn_core::error::fmt_shape(&self.shape)
        )
    }
}

impl PooledBuffer {
    /// Each context owns one pool, so the pool a buffer returns to names its context.
    pub(crate) fn belongs_to(&self, ctx: &Context) -> bool {
        Arc::ptr_eq(&self.pool, &ctx.pool)
    }
}

/// Device objects made by one context: every public op checks its arguments with this before
/// recording, so a foreign object is an error naming the argument.
pub(crate) trait OnContext {
    fn check_context(&self, ctx: &Context, op: &'static str, arg: &str) -> Result<()>;
}

impl OnContext for GpuTensor {
    fn check_context(&self, ctx: &Context, op: &'static str, arg: &str) -> Result<()> {
        if self.belongs_to(ctx) {
            Ok(())
        } else {
            Err(Error::foreign(op, arg, self.describe()))
        }
    }
}

impl<T: OnContext> OnContext for Option<&T> {
    fn check_context(&self, ctx: &Context, op: &'static str, arg: &str) -> Result<()> {
        self.map_or(Ok(()), |t| t.check_context(ctx, op, arg))
    }
}

impl Context {
    pub(crate) fn binding_limit(&self) -> u64 {
        self.limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size)
    }

    fn check_binding(&self, op: &'static str, arg: &str, bytes: u64) -> Result<()> {
        check_binding_size(op, arg, bytes, self.binding_limit())
    }

    /// Whether a 4-byte tensor of `shape` fits this device (its binding limit and a u32
    /// element index): the check every allocation makes, for callers that want it before
    /// building the tensor on the host, where a size past the device could exhaust memory.
    pub fn check_fits(&self, arg: &str, shape: &[usize]) -> Result<()> {
        self.check_fits_in("check_fits", arg, shape)
    }

    /// [`Context::check_fits`] for `op`, which names the caller in the error.
    pub(crate) fn check_fits_in(&self, op: &'static str, arg: &str, shape: &[usize]) -> Result<()> {
        let bytes = wgrnn_core::tensor::checked_numel(shape)
            .and_then(|n| (n as u64).checked_mul(4))
            .ok_or_else(|| Error::InvalidArgument {
                op,
                arg: "shape",
                reason: format!("{arg} {shape:?} holds more bytes than u64 counts"),
            })?;
        check_binding_size(op, &format!("{arg} {shape:?}"), bytes, self.binding_limit())
    }

    /// An uninitialised device tensor (its contents are whatever the pooled buffer held).
    pub(crate) fn alloc(
        &self,
        op: &'static str,
        arg: &str,
        shape: &[usize],
        dtype: DType,
    ) -> Result<GpuTensor> {
        let too_large = || Error::TooLarge {
            op,
            arg: arg.to_string(),
            size: u64::MAX,
            unit: "bytes",
            limit_name: "u64 byte count",
            limit: u64::MAX,
        };
        let n = wgrnn_core::tensor::checked_numel(shape).ok_or_else(too_large)?;
        let exact = (n as u64).checked_mul(4).ok_or_else(too_large)?;
        self.check_binding(op, arg, exact)?;
        // Near the binding limit the size class falls back to the exact size (16-byte multiple).
        let class = round_size(exact);
        let bytes = if class <= self.binding_limit() {
            class
        } else {
            exact.max(16).next_multiple_of(16)
        };
        let buffer = self.scoped(op, || Ok(self.pool.take(STORAGE, bytes)))?;
        Ok(GpuTensor {
            buf: Arc::new(PooledBuffer {
                buffer: Some(buffer),
                usage: STORAGE,
                pool: self.pool.clone(),
            }),
            shape: shape.to_vec(),
            dtype,
        })
    }

    pub(crate) fn alloc_uniform(&self, bytes: u64) -> Result<Arc<PooledBuffer>> {
        let bytes = round_size(bytes);
        let buffer = self.scoped("uniforms", || Ok(self.pool.take(UNIFORM, bytes)))?;
        Ok(Arc::new(PooledBuffer {
            buffer: Some(buffer),
            usage: UNIFORM,
            pool: self.pool.clone(),
        }))
    }

    /// Copies a host tensor to the device.
    pub fn upload(&self, t: &Tensor<f32>) -> Result<GpuTensor> {
        let g = self.alloc("upload", "tensor", t.shape(), DType::F32)?;
        self.queue
            .write_buffer(g.raw(), 0, bytemuck::cast_slice(t.data()));
        Ok(g)
    }

    /// Copies integers (ids, lengths) to the device as u32.
    pub fn upload_u32(&self, shape: &[usize], data: &[u32]) -> Result<GpuTensor> {
        if shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)) != Some(data.len()) {
            return Err(Error::DataLength {
                shape: shape.to_vec(),
                len: data.len(),
            });
        }
        let g = self.alloc("upload_u32", "tensor", shape, DType::U32)?;
        self.queue
            .write_buffer(g.raw(), 0, bytemuck::cast_slice(data));
        Ok(g)
    }

    /// A device tensor of zeros.
    pub fn zeros(&self, shape: &[usize]) -> Result<GpuTensor> {
        let g = self.alloc("zeros", "tensor", shape, DType::F32)?;
        let mut enc = self.device.create_command_encoder(&Default::default());
        enc.clear_buffer(g.raw(), 0, None);
        self.queue.submit([enc.finish()]);
        Ok(g)
    }

    fn read_bytes(&self, t: &GpuTensor) -> Result<Vec<u8>> {
        let bytes = 4 * t.numel() as u64;
        if bytes == 0 {
            return Ok(Vec::new());
        }
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("wgrnn readback"),
            size: bytes.div_ceil(4) * 4,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = self.device.create_command_encoder(&Default::default());
        enc.copy_buffer_to_buffer(t.raw(), 0, &staging, 0, bytes);
        self.queue.submit([enc.finish()]);
        let (tx, rx) = std::sync::mpsc::channel();
        staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.sync()?;
        rx.recv()
            .map_err(|e| Error::Device {
                op: "read",
                message: e.to_string(),
            })?
            .map_err(|e| Error::Device {
                op: "read",
                message: e.to_string(),
            })?;
        let data = staging
            .slice(..)
            .get_mapped_range()
            .map_err(|e| Error::Device {
                op: "read",
                message: e.to_string(),
            })?
            .to_vec();
        staging.unmap();
        Ok(data)
    }

    /// Copies a device tensor back to the host (waits for all submitted work).
    pub fn read(&self, t: &GpuTensor) -> Result<Tensor<f32>> {
        t.check_context(self, "read", "tensor")?;
        if t.dtype != DType::F32 {
            return Err(Error::InvalidArgument {
                op: "read",
                arg: "tensor",
                reason: "is u32; use read_u32".into(),
            });
        }
        let bytes = self.read_bytes(t)?;
        Tensor::new(t.shape.clone(), bytemuck::pod_collect_to_vec(&bytes))
    }

    pub fn read_u32(&self, t: &GpuTensor) -> Result<Tensor<u32>> {
        t.check_context(self, "read_u32", "tensor")?;
        if t.dtype != DType::U32 {
            return Err(Error::InvalidArgument {
                op: "read_u32",
                arg: "tensor",
                reason: "is f32; use read".into(),
            });
        }
        let bytes = self.read_bytes(t)?;
        Tensor::new(t.shape.clone(), bytemuck::pod_collect_to_vec(&bytes))
    }

    /// Allocation counters of the buffer pool.
    pub fn pool_stats(&self) -> PoolStats {
        self.pool.stats()
    }

    /// Frees every idle pooled buffer.
    pub fn trim_pool(&self) {
        self.pool.trim();
    }

    /// Caps the bytes idle pooled buffers may hold (default 1 GiB); buffers
    /// returned beyond it are released.
    pub fn set_pool_idle_cap(&self, bytes: u64) {
        self.pool.idle_cap.store(bytes, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The limits a tensor's size is held to: its buffer (a 16-byte multiple) within the
    /// binding limit, and its element count within a u32 index.
    #[test]
    fn binding_sizes_count_the_rounding_and_the_index() {
        let common = (1u64 << 31) - 1;
        assert!(check_binding_size("t", "x", common - 15, common).is_ok());
        // 2³¹ − 12 bytes is 536,870,909 floats: its 2³¹-byte buffer would not bind.
        let e = check_binding_size("t", "x", common - 11, common).unwrap_err();
        assert!(
            matches!(e, Error::TooLarge { unit: "bytes", size, .. } if size == 1 << 31),
            "{e}"
        );
        let metal = 1u64 << 40;
        assert!(check_binding_size("t", "x", 4 * u32::MAX as u64, metal).is_ok());
        let e = check_binding_size("t", "x", 4 * (u32::MAX as u64 + 1), metal).unwrap_err();
        assert!(
            matches!(e, Error::TooLarge { unit: "elements", size, .. } if size == 1 << 32),
            "{e}"
        );
        assert!(check_binding_size("t", "x", 0, 16).is_ok());
    }
}
