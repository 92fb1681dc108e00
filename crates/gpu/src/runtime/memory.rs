//! The context's memory API: allocation within the device's limits, uploads, readbacks and
//! the buffer pool's controls.

use std::sync::Arc;

use wgrnn_core::{Error, Result, Tensor};

use crate::runtime::context::Context;
use crate::runtime::pool::{PoolStats, PooledBuffer, STORAGE, UNIFORM, round_size};
use crate::runtime::tensor::{DType, GpuTensor, OnContext};

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
        let buf = PooledBuffer::new(buffer, STORAGE, self.pool.clone());
        Ok(GpuTensor::new(Arc::new(buf), shape.to_vec(), dtype))
    }

    pub(crate) fn alloc_uniform(&self, bytes: u64) -> Result<Arc<PooledBuffer>> {
        let bytes = round_size(bytes);
        let buffer = self.scoped("uniforms", || Ok(self.pool.take(UNIFORM, bytes)))?;
        Ok(Arc::new(PooledBuffer::new(
            buffer,
            UNIFORM,
            self.pool.clone(),
        )))
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
        self.submit_counted(enc.finish());
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
        self.submit_counted(enc.finish());
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

    /// Copies a device tensor back to the host (waits for all submitted work). A tensor that
    /// a recording not yet submitted will write is refused ([`Error::Unsubmitted`]): its
    /// recorded commands run only at [`crate::Recording::submit`], so the data read now would
    /// be that of before them.
    pub fn read(&self, t: &GpuTensor) -> Result<Tensor<f32>> {
        t.check_context(self, "read", "tensor")?;
        t.check_settled("read", "tensor", false)?;
        if t.dtype() != DType::F32 {
            return Err(Error::InvalidArgument {
                op: "read",
                arg: "tensor",
                reason: "is u32; use read_u32".into(),
            });
        }
        let bytes = self.read_bytes(t)?;
        Tensor::new(t.shape().to_vec(), bytemuck::pod_collect_to_vec(&bytes))
    }

    /// [`Context::read`] for a u32 tensor (ids, lengths).
    pub fn read_u32(&self, t: &GpuTensor) -> Result<Tensor<u32>> {
        t.check_context(self, "read_u32", "tensor")?;
        t.check_settled("read_u32", "tensor", false)?;
        if t.dtype() != DType::U32 {
            return Err(Error::InvalidArgument {
                op: "read_u32",
                arg: "tensor",
                reason: "is f32; use read".into(),
            });
        }
        let bytes = self.read_bytes(t)?;
        Tensor::new(t.shape().to_vec(), bytemuck::pod_collect_to_vec(&bytes))
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
        self.pool.set_idle_cap(bytes);
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
