//! The buffer pool: storage recycled across calls by size class, lent out as [`PooledBuffer`]s.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::runtime::context::Context;

/// Every pooled buffer has one of these usages: storage for kernels (and uniform windows, see
/// `Access::Window`), copies in and out.
pub(crate) const STORAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::UNIFORM)
    .union(wgpu::BufferUsages::COPY_SRC)
    .union(wgpu::BufferUsages::COPY_DST);
pub(crate) const UNIFORM: wgpu::BufferUsages =
    wgpu::BufferUsages::UNIFORM.union(wgpu::BufferUsages::COPY_DST);

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

    pub(crate) fn take(&self, usage: wgpu::BufferUsages, size: u64) -> wgpu::Buffer {
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

    /// Caps the bytes idle buffers may hold; buffers returned beyond it are released.
    pub(crate) fn set_idle_cap(&self, bytes: u64) {
        self.idle_cap.store(bytes, Ordering::Relaxed);
    }

    pub(crate) fn trim(&self) {
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
    pub(crate) uses: OpenUses,
}

/// How many open recorders (recordings not yet submitted, and the one of an op call being
/// recorded) read this buffer and write it: a command recorded there runs only at its
/// recording's submit, so until then the buffer may be neither read back nor used by other
/// work if it will be written, nor written if it will be read. Each recorder counts itself
/// once per buffer (see `Recorder::touch`).
#[derive(Default)]
pub(crate) struct OpenUses {
    pub(crate) reads: AtomicUsize,
    pub(crate) writes: AtomicUsize,
}

impl PooledBuffer {
    /// `buffer`, taken from `pool` with `usage`, on loan until the last reference drops.
    pub(crate) fn new(
        buffer: wgpu::Buffer,
        usage: wgpu::BufferUsages,
        pool: Arc<BufferPool>,
    ) -> Self {
        Self {
            buffer: Some(buffer),
            usage,
            pool,
            uses: OpenUses::default(),
        }
    }

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

impl PooledBuffer {
    /// Each context owns one pool, so the pool a buffer returns to names its context.
    pub(crate) fn belongs_to(&self, ctx: &Context) -> bool {
        Arc::ptr_eq(&self.pool, &ctx.pool)
    }
}
