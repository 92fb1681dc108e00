//! Host arrays across the boundary: `(bytes, shape)` in, `(bytearray, shape)` out.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyTuple};
use wgrnn_core::{Error, Tensor};

/// The element type of a call's arrays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dtype {
    F32,
    F64,
}

impl Dtype {
    pub fn parse(name: &str) -> PyResult<Self> {
        match name {
            "f32" | "float32" => Ok(Dtype::F32),
            "f64" | "float64" => Ok(Dtype::F64),
            other => Err(PyValueError::new_err(format!(
                "unsupported dtype {other:?} (expected float32 or float64)"
            ))),
        }
    }
}

/// An array's bytes (native endianness, C order), copied out of Python so the computation can
/// run without the interpreter lock.
pub struct Array {
    bytes: Vec<u8>,
    shape: Vec<usize>,
    dtype: Dtype,
}

impl Array {
    pub fn new(bytes: &[u8], shape: Vec<usize>, dtype: Dtype) -> Self {
        Self {
            bytes: bytes.to_vec(),
            shape,
            dtype,
        }
    }
}

/// Decoding into a host tensor of one element type; the byte count must match the shape.
pub trait Decode<T> {
    fn decode(&self, name: &'static str) -> wgrnn_core::Result<Tensor<T>>;
}

fn decode_as<T: bytemuck::Pod>(
    a: &Array,
    want: Dtype,
    name: &'static str,
) -> wgrnn_core::Result<Tensor<T>> {
    let size = std::mem::size_of::<T>();
    if a.dtype != want || !a.bytes.len().is_multiple_of(size) {
        return Err(Error::invalid_argument(
            "rnn",
            name,
            format!("{} bytes do not hold {:?} elements", a.bytes.len(), want),
        ));
    }
    // pod_collect_to_vec copies, so the bytes need no particular alignment.
    let data: Vec<T> = bytemuck::pod_collect_to_vec(&a.bytes);
    Tensor::new(a.shape.clone(), data).map_err(|_| {
        Error::invalid_argument(
            "rnn",
            name,
            format!(
                "{} elements do not fill shape {:?}",
                a.bytes.len() / size,
                a.shape
            ),
        )
    })
}

impl Decode<f32> for Array {
    fn decode(&self, name: &'static str) -> wgrnn_core::Result<Tensor<f32>> {
        decode_as(self, Dtype::F32, name)
    }
}

impl Decode<f64> for Array {
    fn decode(&self, name: &'static str) -> wgrnn_core::Result<Tensor<f64>> {
        decode_as(self, Dtype::F64, name)
    }
}

/// A result on the host, in the call's dtype.
pub enum Host {
    F32(Tensor<f32>),
    F64(Tensor<f64>),
}

impl From<Tensor<f32>> for Host {
    fn from(t: Tensor<f32>) -> Self {
        Host::F32(t)
    }
}

impl From<Tensor<f64>> for Host {
    fn from(t: Tensor<f64>) -> Self {
        Host::F64(t)
    }
}

/// `(bytearray, shape)`: a bytearray, so numpy's view of it is writable.
pub fn to_py_array(py: Python<'_>, h: Host) -> PyResult<Bound<'_, PyAny>> {
    let (bytes, shape): (&[u8], Vec<usize>) = match &h {
        Host::F32(t) => (bytemuck::cast_slice(t.data()), t.shape().to_vec()),
        Host::F64(t) => (bytemuck::cast_slice(t.data()), t.shape().to_vec()),
    };
    let buf = PyByteArray::new(py, bytes);
    Ok(PyTuple::new(py, [buf.into_any(), shape.into_pyobject(py)?.into_any()])?.into_any())
}
