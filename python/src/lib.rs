//! `wgrnn._native`: the recurrent ops of wgrnn for Python, on host byte buffers.
//!
//! Arrays cross the boundary as `(bytes, shape)` pairs, C-contiguous, in the call's dtype; the
//! Python layer (`wgrnn/__init__.py`) converts numpy arrays and torch tensors. Results come back
//! as writable `bytearray`s. Every call releases the interpreter lock while it computes, and a
//! panic inside wgrnn becomes a `RuntimeError` instead of unwinding into Python.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};

use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use wgrnn_core::{
    CellKind, Error, GruReset, LoadOptions, Real, RnnConfig, RnnWeights, Tensor, TensorMap,
};
use wgrnn_cpu::rnn::{RnnInput, RnnOutputGrads, RnnTape};
use wgrnn_gpu::{Context, GpuRnnInput, GpuRnnOutputGrads, GpuRnnTape, GpuTensor, GpuWeights};

mod convert;
use convert::{Array, Dtype, Host, to_py_array};

/// wgrnn's error as the Python exception of its kind: the caller's mistakes (shapes, lengths,
/// configs, names, dtypes) are `ValueError`, the device's failures `RuntimeError`.
pub(crate) fn to_py_err(e: Error) -> PyErr {
    let msg = e.to_string();
    match e {
        Error::NoAdapter { .. }
        | Error::Device { .. }
        | Error::LoopLimit { .. }
        | Error::Unsubmitted { .. }
        | Error::OutOfMemory { .. } => PyRuntimeError::new_err(msg),
        Error::Io { .. } => PyOSError::new_err(msg),
        _ => PyValueError::new_err(msg),
    }
}

/// Runs `f` without the interpreter lock; a panic becomes a `RuntimeError` naming it, so a bug
/// in wgrnn surfaces as an ordinary exception rather than PyO3's `PanicException` (a
/// `BaseException` that `except Exception` would not catch).
fn compute<T: Send>(
    py: Python<'_>,
    f: impl FnOnce() -> wgrnn_core::Result<T> + Send,
) -> PyResult<T> {
    let caught = py.detach(|| catch_unwind(AssertUnwindSafe(f)));
    match caught {
        Ok(r) => r.map_err(to_py_err),
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(PyRuntimeError::new_err(format!("wgrnn panicked: {what}")))
        }
    }
}

/// A wgpu device, chosen as in Rust (`WGPU_ADAPTER_NAME`, `WGPU_BACKEND`, else the best adapter).
#[pyclass(name = "Context", module = "wgrnn", frozen)]
struct PyContext {
    ctx: Arc<Context>,
}

#[pymethods]
impl PyContext {
    #[new]
    fn new(py: Python<'_>) -> PyResult<Self> {
        let ctx = compute(py, Context::new)?;
        Ok(Self { ctx: Arc::new(ctx) })
    }

    /// The adapter's name, e.g. "llvmpipe (LLVM 19.1.7, 256 bits)".
    #[getter]
    fn adapter_name(&self) -> String {
        self.ctx.adapter().name.clone()
    }

    /// "Vulkan", "Metal", "Dx12" or "Gl".
    #[getter]
    fn backend(&self) -> String {
        self.ctx.adapter().backend.clone()
    }

    #[getter]
    fn device_type(&self) -> String {
        self.ctx.adapter().device_type.clone()
    }

    #[getter]
    fn driver(&self) -> String {
        self.ctx.adapter().driver.clone()
    }

    fn __repr__(&self) -> String {
        let a = self.ctx.adapter();
        format!(
            "wgrnn.Context(adapter={:?}, backend={:?})",
            a.name, a.backend
        )
    }
}

/// The process's shared context, made on first use by a GPU call that names none. A failure is
/// not remembered, so a later call may try again.
///
/// The lock is never held while the context is made: that runs without the interpreter lock,
/// and a second Python thread waiting on this lock while holding the interpreter's would
/// deadlock both. Two threads arriving together may each make one; the first stored wins.
fn default_context(py: Python<'_>) -> PyResult<Arc<Context>> {
    static SHARED: Mutex<Option<Arc<Context>>> = Mutex::new(None);
    let shared = || SHARED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(ctx) = shared().as_ref() {
        return Ok(ctx.clone());
    }
    let made = Arc::new(compute(py, Context::new)?);
    Ok(shared().get_or_insert(made).clone())
}

/// A recurrent layer's configuration, as torch.nn's constructor arguments; validated on
/// construction (`ValueError` with wgrnn's message).
#[pyclass(name = "RnnConfig", module = "wgrnn", frozen)]
#[derive(Clone)]
struct PyRnnConfig {
    cfg: RnnConfig,
}

#[pymethods]
impl PyRnnConfig {
    /// `mode`: "lstm", "gru", "rnn_tanh" or "rnn_relu".
    #[new]
    #[pyo3(signature = (mode, input_size, hidden_size, num_layers=1, bias=true, batch_first=false,
        dropout=0.0, bidirectional=false, proj_size=0, reset_after=true))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        mode: &str,
        input_size: usize,
        hidden_size: usize,
        num_layers: usize,
        bias: bool,
        batch_first: bool,
        dropout: f32,
        bidirectional: bool,
        proj_size: usize,
        reset_after: bool,
    ) -> PyResult<Self> {
        let cell = CellKind::from_name(mode).ok_or_else(|| {
            PyValueError::new_err(format!(
                "RnnConfig: unknown mode {mode:?} (expected lstm, gru, rnn_tanh or rnn_relu)"
            ))
        })?;
        let reset = if reset_after {
            GruReset::After
        } else {
            GruReset::Before
        };
        let mut cfg = RnnConfig::new(cell, input_size, hidden_size)
            .layers(num_layers)
            .bias(bias)
            .batch_first(batch_first)
            .dropout(dropout)
            .bidirectional(bidirectional)
            .proj_size(proj_size);
        if cell == CellKind::Gru {
            cfg = cfg.gru_reset(reset);
        }
        cfg.validate().map_err(to_py_err)?;
        Ok(Self { cfg })
    }

    /// The parameters in torch.nn's order: `(name, shape)` pairs.
    fn param_shapes(&self) -> Vec<(String, Vec<usize>)> {
        self.cfg
            .param_specs()
            .into_iter()
            .map(|s| (s.name, s.shape))
            .collect()
    }

    #[getter]
    fn has_cell_state(&self) -> bool {
        self.cfg.cell.has_cell_state()
    }

    #[getter]
    fn batch_first(&self) -> bool {
        self.cfg.batch_first
    }

    fn __repr__(&self) -> String {
        format!("wgrnn.RnnConfig({:?})", self.cfg)
    }
}

/// What a training forward saved for backward, with the weights it ran with.
enum Saved {
    Cpu32(RnnWeights<f32>, RnnTape<f32>),
    Cpu64(RnnWeights<f64>, RnnTape<f64>),
    Gpu(Arc<Context>, GpuWeights<RnnConfig>, GpuRnnTape),
}

/// The tape of one training call; `rnn_backward` may use it any number of times.
#[pyclass(name = "RnnTape", module = "wgrnn", frozen)]
struct PyRnnTape {
    saved: Saved,
    dtype: Dtype,
}

#[pymethods]
impl PyRnnTape {
    /// The element type backward takes and gives: "f32" or "f64".
    #[getter]
    fn dtype(&self) -> &'static str {
        match self.dtype {
            Dtype::F32 => "f32",
            Dtype::F64 => "f64",
        }
    }
}

/// The host results of a call: y, h_n, c_n, or dx, dh0, dc0 and the parameter gradients.
type Outputs = (Host, Host, Option<Host>);

fn weights_of<T: Real>(
    cfg: &RnnConfig,
    weights: BTreeMap<String, Array>,
) -> wgrnn_core::Result<RnnWeights<T>>
where
    Array: convert::Decode<T>,
{
    let mut map: TensorMap<T> = TensorMap::new();
    for (name, a) in weights {
        let t = convert::Decode::<T>::decode(&a, "weights")?;
        map.insert(name, t);
    }
    RnnWeights::from_tensors(cfg.clone(), map, &LoadOptions::default())
}

/// A CPU training call's weights and tape.
type CpuSaved<T> = (RnnWeights<T>, RnnTape<T>);

/// The arguments of one forward call, decoded.
struct Call<T> {
    x: Tensor<T>,
    h0: Option<Tensor<T>>,
    c0: Option<Tensor<T>>,
    lengths: Option<Vec<usize>>,
    seed: u64,
}

fn cpu_forward<T: Real>(
    cfg: &RnnConfig,
    weights: BTreeMap<String, Array>,
    call: Call<T>,
    train: bool,
) -> wgrnn_core::Result<(Outputs, Option<CpuSaved<T>>)>
where
    Array: convert::Decode<T>,
    Host: From<Tensor<T>>,
{
    let w = weights_of::<T>(cfg, weights)?;
    let mut input = RnnInput::new(&call.x).seed(call.seed);
    if let Some(h0) = &call.h0 {
        input = input.h0(h0);
    }
    if let Some(c0) = &call.c0 {
        input = input.c0(c0);
    }
    if let Some(l) = &call.lengths {
        input = input.lengths(l);
    }
    let (out, tape) = if train {
        let (out, tape) = wgrnn_cpu::rnn::rnn_forward_train(&w, input)?;
        (out, Some(tape))
    } else {
        (wgrnn_cpu::rnn::rnn_forward(&w, input)?, None)
    };
    let outs = (out.y.into(), out.h_n.into(), out.c_n.map(Host::from));
    Ok((outs, tape.map(|t| (w, t))))
}

fn gpu_forward(
    ctx: Arc<Context>,
    cfg: &RnnConfig,
    weights: BTreeMap<String, Array>,
    call: Call<f32>,
    train: bool,
) -> wgrnn_core::Result<(Outputs, Option<Saved>)> {
    let host = weights_of::<f32>(cfg, weights)?;
    let w = GpuWeights::upload(&ctx, &host)?;
    let x = ctx.upload(&call.x)?;
    let h0 = call.h0.as_ref().map(|t| ctx.upload(t)).transpose()?;
    let c0 = call.c0.as_ref().map(|t| ctx.upload(t)).transpose()?;
    let mut input = GpuRnnInput::new(&x).seed(call.seed);
    if let Some(h0) = &h0 {
        input = input.h0(h0);
    }
    if let Some(c0) = &c0 {
        input = input.c0(c0);
    }
    if let Some(l) = &call.lengths {
        input = input.lengths(l);
    }
    let (out, tape) = if train {
        let (out, tape) = wgrnn_gpu::rnn_forward_train(&*ctx, &w, input)?;
        (out, Some(tape))
    } else {
        (wgrnn_gpu::rnn_forward(&*ctx, &w, input)?, None)
    };
    let read = |t: &GpuTensor| ctx.read(t).map(Host::from);
    let outs = (
        read(&out.y)?,
        read(&out.h_n)?,
        out.c_n.as_ref().map(read).transpose()?,
    );
    Ok((outs, tape.map(|t| Saved::Gpu(ctx.clone(), w, t))))
}

fn decode_call<T>(
    x: &Array,
    h0: Option<&Array>,
    c0: Option<&Array>,
    lengths: Option<Vec<usize>>,
    seed: u64,
) -> wgrnn_core::Result<Call<T>>
where
    Array: convert::Decode<T>,
{
    let dec = |a: Option<&Array>, name: &'static str| {
        a.map(|a| convert::Decode::<T>::decode(a, name)).transpose()
    };
    Ok(Call {
        x: convert::Decode::<T>::decode(x, "x")?,
        h0: dec(h0, "h0")?,
        c0: dec(c0, "c0")?,
        lengths,
        seed,
    })
}

type ForwardResult<'py> = (
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
    Option<Bound<'py, PyAny>>,
    Option<Py<PyRnnTape>>,
);

/// Recurrent forward. `weights`: torch.nn's names to `(bytes, shape)`; `engine` "cpu" (dtype
/// "f32" or "f64") or "gpu" (f32); `train` keeps a tape for [`rnn_backward`] and applies the
/// inter-layer dropout with `seed`. Returns `(y, h_n, c_n or None, tape or None)`.
#[pyfunction]
#[pyo3(signature = (config, weights, x, h0=None, c0=None, lengths=None, seed=0, train=false,
    engine="cpu", dtype="f32", context=None))]
#[allow(clippy::too_many_arguments)]
fn rnn_forward<'py>(
    py: Python<'py>,
    config: &PyRnnConfig,
    weights: BTreeMap<String, (Bound<'py, PyBytes>, Vec<usize>)>,
    x: (Bound<'py, PyBytes>, Vec<usize>),
    h0: Option<(Bound<'py, PyBytes>, Vec<usize>)>,
    c0: Option<(Bound<'py, PyBytes>, Vec<usize>)>,
    lengths: Option<Vec<usize>>,
    seed: u64,
    train: bool,
    engine: &str,
    dtype: &str,
    context: Option<&PyContext>,
) -> PyResult<ForwardResult<'py>> {
    let dtype = Dtype::parse(dtype)?;
    let own = |a: (Bound<'py, PyBytes>, Vec<usize>)| Array::new(a.0.as_bytes(), a.1, dtype);
    let weights: BTreeMap<String, Array> = weights.into_iter().map(|(k, v)| (k, own(v))).collect();
    let (x, h0, c0) = (own(x), h0.map(own), c0.map(own));
    let cfg = config.cfg.clone();
    let (outs, saved) = match (engine, dtype) {
        ("cpu", Dtype::F32) => compute(py, move || {
            let call = decode_call::<f32>(&x, h0.as_ref(), c0.as_ref(), lengths, seed)?;
            let (o, s) = cpu_forward(&cfg, weights, call, train)?;
            Ok((o, s.map(|(w, t)| Saved::Cpu32(w, t))))
        })?,
        ("cpu", Dtype::F64) => compute(py, move || {
            let call = decode_call::<f64>(&x, h0.as_ref(), c0.as_ref(), lengths, seed)?;
            let (o, s) = cpu_forward(&cfg, weights, call, train)?;
            Ok((o, s.map(|(w, t)| Saved::Cpu64(w, t))))
        })?,
        ("gpu", Dtype::F32) => {
            let ctx = match context {
                Some(c) => c.ctx.clone(),
                None => default_context(py)?,
            };
            compute(py, move || {
                let call = decode_call::<f32>(&x, h0.as_ref(), c0.as_ref(), lengths, seed)?;
                gpu_forward(ctx, &cfg, weights, call, train)
            })?
        }
        ("gpu", Dtype::F64) => {
            return Err(PyValueError::new_err(
                "rnn_forward: engine 'gpu' computes in float32; use engine 'cpu' for float64",
            ));
        }
        (other, _) => {
            return Err(PyValueError::new_err(format!(
                "rnn_forward: unknown engine {other:?} (expected 'gpu' or 'cpu')"
            )));
        }
    };
    let tape = saved
        .map(|saved| Py::new(py, PyRnnTape { saved, dtype }))
        .transpose()?;
    let (y, h, c) = outs;
    Ok((
        to_py_array(py, y)?,
        to_py_array(py, h)?,
        c.map(|c| to_py_array(py, c)).transpose()?,
        tape,
    ))
}

fn cpu_backward<T: Real>(
    w: &RnnWeights<T>,
    tape: &RnnTape<T>,
    up: [Option<Array>; 3],
) -> wgrnn_core::Result<(Outputs, Vec<(String, Host)>)>
where
    Array: convert::Decode<T>,
    Host: From<Tensor<T>>,
{
    let names = ["dy", "dh_n", "dc_n"];
    let mut ts: Vec<Option<Tensor<T>>> = Vec::new();
    for (a, n) in up.iter().zip(names) {
        ts.push(
            a.as_ref()
                .map(|a| convert::Decode::<T>::decode(a, n))
                .transpose()?,
        );
    }
    let grads = RnnOutputGrads {
        dy: ts[0].as_ref(),
        dh_n: ts[1].as_ref(),
        dc_n: ts[2].as_ref(),
    };
    let g = wgrnn_cpu::rnn::rnn_backward(w, tape, grads)?;
    let params = g
        .weights
        .into_tensors()
        .into_iter()
        .map(|(k, v)| (k, Host::from(v)))
        .collect();
    Ok(((g.dx.into(), g.dh0.into(), g.dc0.map(Host::from)), params))
}

fn gpu_backward(
    ctx: &Context,
    w: &GpuWeights<RnnConfig>,
    tape: &GpuRnnTape,
    up: [Option<Array>; 3],
) -> wgrnn_core::Result<(Outputs, Vec<(String, Host)>)> {
    let names = ["dy", "dh_n", "dc_n"];
    let mut ts: Vec<Option<GpuTensor>> = Vec::new();
    for (a, n) in up.iter().zip(names) {
        let host = a
            .as_ref()
            .map(|a| convert::Decode::<f32>::decode(a, n))
            .transpose()?;
        ts.push(host.map(|t| ctx.upload(&t)).transpose()?);
    }
    let upstream = GpuRnnOutputGrads {
        dy: ts[0].as_ref(),
        dh_n: ts[1].as_ref(),
        dc_n: ts[2].as_ref(),
    };
    let g = wgrnn_gpu::rnn_backward(ctx, w, tape, upstream, None)?;
    let read = |t: &GpuTensor| ctx.read(t).map(Host::from);
    let mut params = Vec::new();
    for (k, v) in g.weights.tensors() {
        params.push((k.clone(), read(v)?));
    }
    Ok((
        (
            read(&g.dx)?,
            read(&g.dh0)?,
            g.dc0.as_ref().map(read).transpose()?,
        ),
        params,
    ))
}

type BackwardResult<'py> = (
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
    Option<Bound<'py, PyAny>>,
    BTreeMap<String, Bound<'py, PyAny>>,
);

/// Recurrent backward through `tape` given the upstream gradients (an absent one is zero), in
/// the tape's dtype. Returns `(dx, dh0, dc0 or None, {parameter name: gradient})`.
#[pyfunction]
#[pyo3(signature = (tape, dy=None, dh_n=None, dc_n=None))]
fn rnn_backward<'py>(
    py: Python<'py>,
    tape: Bound<'py, PyRnnTape>,
    dy: Option<(Bound<'py, PyBytes>, Vec<usize>)>,
    dh_n: Option<(Bound<'py, PyBytes>, Vec<usize>)>,
    dc_n: Option<(Bound<'py, PyBytes>, Vec<usize>)>,
) -> PyResult<BackwardResult<'py>> {
    let t = tape.get();
    let own = |a: (Bound<'py, PyBytes>, Vec<usize>)| Array::new(a.0.as_bytes(), a.1, t.dtype);
    let up = [dy.map(own), dh_n.map(own), dc_n.map(own)];
    let (outs, params) = match &t.saved {
        Saved::Cpu32(w, tp) => compute(py, || cpu_backward(w, tp, up))?,
        Saved::Cpu64(w, tp) => compute(py, || cpu_backward(w, tp, up))?,
        Saved::Gpu(ctx, w, tp) => compute(py, || gpu_backward(ctx, w, tp, up))?,
    };
    let mut grads = BTreeMap::new();
    for (k, v) in params {
        grads.insert(k, to_py_array(py, v)?);
    }
    let (dx, dh, dc) = outs;
    Ok((
        to_py_array(py, dx)?,
        to_py_array(py, dh)?,
        dc.map(|c| to_py_array(py, c)).transpose()?,
        grads,
    ))
}

/// Panics on purpose, so the tests can check that a panic becomes an exception.
#[pyfunction]
fn _panic_for_test(py: Python<'_>) -> PyResult<()> {
    compute(py, || -> wgrnn_core::Result<()> {
        panic!("deliberate test panic")
    })
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyContext>()?;
    m.add_class::<PyRnnConfig>()?;
    m.add_class::<PyRnnTape>()?;
    m.add_function(wrap_pyfunction!(rnn_forward, m)?)?;
    m.add_function(wrap_pyfunction!(rnn_backward, m)?)?;
    m.add_function(wrap_pyfunction!(_panic_for_test, m)?)?;
    Ok(())
}
