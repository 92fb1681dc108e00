//! Device tensors: a shape and an element type over a pooled buffer, and the checks every op
//! makes of its tensor arguments.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use wgrnn_core::{Error, Result};

use crate::runtime::context::Context;
use crate::runtime::pool::PooledBuffer;

/// Element type of a device tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    U32,
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

    /// A tensor over `buf`, which must hold `shape`'s elements.
    pub(crate) fn new(buf: Arc<PooledBuffer>, shape: Vec<usize>, dtype: DType) -> Self {
        Self { buf, shape, dtype }
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

    /// An error if an open recording will write this tensor (or, with `write`, reads it): a
    /// readback or a host write now would not see the recorded commands, which run only when
    /// their recording is submitted.
    pub(crate) fn check_settled(&self, op: &'static str, arg: &str, write: bool) -> Result<()> {
        let uses = &self.buf.uses;
        let reason = if uses.writes.load(Ordering::SeqCst) > 0 {
            "is written by"
        } else if write && uses.reads.load(Ordering::SeqCst) > 0 {
            "is read by"
        } else {
            return Ok(());
        };
        Err(Error::Unsubmitted {
            op,
            arg: arg.to_string(),
            what: self.describe(),
            reason,
        })
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

/// Checks a device tensor's element type and shape.
pub(crate) fn expect_f32(
    op: &'static str,
    arg: &'static str,
    t: &GpuTensor,
    shape: &[usize],
) -> Result<()> {
    if t.dtype() != DType::F32 {
        return Err(Error::InvalidArgument {
            op,
            arg,
            reason: format!("must be f32, is {:?} of shape {:?}", t.dtype(), t.shape()),
        });
    }
    if t.shape() != shape {
        return Err(Error::shape(op, arg, shape, t.shape()));
    }
    Ok(())
}

/// `v` as a u32 kernel index, or an error naming `op` and `what`.
pub(crate) fn u32_of(op: &'static str, what: &str, v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::TooLarge {
        op,
        arg: what.into(),
        size: v as u64,
        unit: "elements",
        limit_name: "u32 index",
        limit: u32::MAX as u64,
    })
}
