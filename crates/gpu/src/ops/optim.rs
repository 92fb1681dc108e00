//! Optimizers on the device (SGD with momentum, Adam/AdamW, RMSprop) with optional global-norm
//! gradient clipping, trainable parameters with their gradients, and checkpoints.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use wgrnn_core::{Error, OptimizerConfig, ParamLayout, Result, Weights, validate_max_norm};

use crate::runtime::context::Context;
use crate::runtime::pipeline::{Access, Kernel};
use crate::runtime::record::{Recorder, fold_x};
use crate::runtime::recording::Record;
use crate::runtime::shaders::Shader;
use crate::runtime::tensor::{DType, GpuTensor, OnContext};
use crate::runtime::uniforms::optim::{ClipParams, StepParams, SumParams};
use crate::runtime::weights::{DeviceLayout, GpuWeights};

use Access::{Read, ReadWrite};

const OP: &str = "optimizer step";
const STEP: Kernel = Kernel {
    shader: Shader::Optim,
    entry: "optim_step",
    bindings: &[Read, Read, ReadWrite, ReadWrite],
};
const SUMSQ: Kernel = Kernel {
    shader: Shader::Optim,
    entry: "sumsq",
    bindings: &[Read, ReadWrite],
};
const CLIP: Kernel = Kernel {
    shader: Shader::Optim,
    entry: "clip_coef",
    bindings: &[Read, ReadWrite],
};

/// Elements per `sumsq` dispatch: 16,384 per invocation of its workgroup of 256, far below the
/// loop limit of CPU adapters ([`crate::CPU_LOOP_LIMIT`]).
const SUMSQ_SEGMENT: usize = 256 * 16_384;

/// Trainable parameters of one op: values and gradients with the same names and shapes.
/// Backward calls accumulate into `grad` (pass `Some(&params.grad)`); [`GpuParams::zero_grad`]
/// clears it between steps.
#[derive(Clone, Debug)]
pub struct GpuParams<C> {
    pub value: GpuWeights<C>,
    pub grad: GpuWeights<C>,
}

impl<C: DeviceLayout> GpuParams<C> {
    /// Uploads `w` and zeroed gradients, once the buffers the ops make from them are known to
    /// fit ([`DeviceLayout::check_device`]).
    pub fn new(ctx: &Context, w: &Weights<C, f32>) -> Result<Self> {
        w.config().check_device(ctx)?;
        let value = GpuWeights::upload(ctx, w)?;
        let grad = GpuWeights::upload(ctx, &Weights::zeros(w.config().clone())?)?;
        Ok(Self { value, grad })
    }

    /// Parameters initialised from `seed` as [`GpuWeights::init`] does (checked against the
    /// device before anything is built on the host), with zeroed gradients.
    pub fn init(ctx: &Context, config: C, seed: u64) -> Result<Self> {
        let value = GpuWeights::init(ctx, config.clone(), seed)?;
        let grad = GpuWeights::upload(ctx, &Weights::zeros(config)?)?;
        Ok(Self { value, grad })
    }
}

impl<C: ParamLayout> GpuParams<C> {
    /// Zeroes every gradient (one submit, or appended to a [`crate::Recording`]).
    pub fn zero_grad<'c>(&self, on: impl Record<'c>) -> Result<()> {
        let ctx = on.context();
        self.grad.check_context(ctx, "zero_grad", "grad")?;
        let mut rec = on.begin("zero_grad");
        for t in self.grad.tensors().values() {
            rec.clear(t);
        }
        rec.finish()
    }

    /// (value, gradient) pairs in name order, for [`GpuOptimizer`]; an error if `value` and
    /// `grad` do not hold the same names.
    pub fn pairs(&self) -> Result<Vec<(&GpuTensor, &GpuTensor)>> {
        self.value
            .tensors()
            .iter()
            .map(|(n, v)| Ok((v, self.grad.get(n)?)))
            .collect()
    }
}

/// An optimizer over a fixed set of parameters; its state lives on the device. The state of
/// each parameter is found by the parameter's storage (the tensor itself), never by its
/// position in a call, so pairs may come in any order but each parameter exactly once.
pub struct GpuOptimizer {
    config: OptimizerConfig,
    /// Steps recorded (shared with the recordings holding them, which take theirs back if
    /// never submitted).
    t: Arc<AtomicU64>,
    max_grad_norm: Option<f64>,
    /// The parameters given at creation (shared handles of their storage), and each one's
    /// state: `params[i]` owns `state[i]`.
    params: Vec<GpuTensor>,
    state: Vec<GpuTensor>,
    /// [coefficient, total norm] of the last step (coefficient 1 without clipping).
    clip: GpuTensor,
    partials: GpuTensor,
}

impl GpuOptimizer {
    /// State for `params` (values), zeroed as PyTorch starts.
    /// An error if the config is out of its domain ([`OptimizerConfig::validate`]).
    /// A parameter of another context, of another dtype, or given twice (the same storage) is
    /// an error.
    pub fn new(ctx: &Context, config: OptimizerConfig, params: &[&GpuTensor]) -> Result<Self> {
        config.validate()?;
        const NEW: &str = "GpuOptimizer::new";
        for (i, p) in params.iter().enumerate() {
            p.check_context(ctx, NEW, &format!("params[{i}]"))?;
            if p.dtype() != DType::F32 {
                return Err(Error::InvalidArgument {
                    op: NEW,
                    arg: "params",
                    reason: format!("params[{i}] is {}, must be f32", p.describe()),
                });
            }
            if let Some(j) = params[..i].iter().position(|q| q.same_buffer(p)) {
                return Err(Error::InvalidArgument {
                    op: NEW,
                    arg: "params",
                    reason: format!(
                        "params[{i}] ({}) is params[{j}] again: each parameter once",
                        p.describe()
                    ),
                });
            }
        }
        let slots = config.state_slots().max(1);
        let mut state = Vec::with_capacity(params.len());
        for p in params {
            state.push(ctx.zeros(&[slots * p.numel()])?);
        }
        let clip = ctx.upload(&wgrnn_core::Tensor::new([2], vec![1.0, 0.0])?)?;
        // One partial sum per segment of every tensor.
        let segments: usize = params
            .iter()
            .map(|p| p.numel().div_ceil(SUMSQ_SEGMENT).max(1))
            .sum();
        let partials = ctx.zeros(&[segments.max(1)])?;
        Ok(Self {
            config,
            t: Arc::new(AtomicU64::new(0)),
            max_grad_norm: None,
            params: params.iter().map(|&p| p.clone()).collect(),
            state,
            clip,
            partials,
        })
    }

    pub fn config(&self) -> &OptimizerConfig {
        &self.config
    }

    /// Steps taken, counting those in a [`crate::Recording`] not yet submitted (a recording
    /// dropped unsubmitted takes its steps back).
    pub fn steps(&self) -> u64 {
        self.t.load(Ordering::SeqCst)
    }

    /// Changes the learning rate (a schedule); the rule and its state stay. A negative or NaN
    /// rate is an error and changes nothing.
    pub fn set_lr(&mut self, new_lr: f64) -> Result<()> {
        self.config = self.config.with_lr(new_lr)?;
        Ok(())
    }

    /// Clip the global gradient norm to `max_norm` before every step; an error for a negative
    /// or NaN bound.
    pub fn with_clip_grad_norm(mut self, max_norm: f64) -> Result<Self> {
        validate_max_norm(max_norm)?;
        self.max_grad_norm = Some(max_norm);
        Ok(self)
    }

    /// One update of every parameter from its gradient, recorded in one submit (or appended to
    /// a [`crate::Recording`], with the gradient-norm clipping: the norm never comes to the
    /// host). `params` holds each parameter of the optimizer exactly once, as (value,
    /// gradient), in any order: the state is matched by the value's storage. The update is the
    /// same whatever the order. The learning rate is the one set when the step is recorded.
    pub fn step<'c>(
        &mut self,
        on: impl Record<'c>,
        params: &[(&GpuTensor, &GpuTensor)],
    ) -> Result<()> {
        let ctx = on.context();
        let params = self.match_params(ctx, params)?;
        let params = params.as_slice();
        if self.max_grad_norm.is_some() {
            // `clip_coef` adds the partial sums, one per segment of every gradient, in one loop.
            ctx.check_loop(OP, "params", self.partials.numel() as u64 + 8)?;
        }
        let mut rec = on.begin(OP);
        if let Some(max_norm) = self.max_grad_norm {
            self.record_clip(&mut rec, params, max_norm)?;
        }
        // The step count advances when the step is recorded; a recording that is never
        // submitted puts it back.
        let sp = self.step_params((self.steps() + 1) as i32);
        for ((v, g), st) in params.iter().zip(&self.state) {
            let n = v.numel();
            rec.dispatch(
                STEP,
                &StepParams { n: n as u32, ..sp },
                &[g, &self.clip, v, st],
                fold_x(n.div_ceil(64)),
            )?;
        }
        let steps = self.t.clone();
        steps.fetch_add(1, Ordering::SeqCst);
        rec.on_discard(move || {
            steps.fetch_sub(1, Ordering::SeqCst);
        });
        rec.finish()
    }

    /// The global-norm clipping ahead of a step: each gradient's sum of squares by segments
    /// into `partials`, then the coefficient (and the norm) into `clip`.
    fn record_clip(
        &self,
        rec: &mut Recorder<'_>,
        params: &[(&GpuTensor, &GpuTensor)],
        max_norm: f64,
    ) -> Result<()> {
        let mut slot = 0;
        for (_, g) in params {
            let n = g.numel();
            for off in (0..n.max(1)).step_by(SUMSQ_SEGMENT) {
                let sp = SumParams {
                    n: (n - off).min(SUMSQ_SEGMENT) as u32,
                    slot,
                    off: off as u32,
                    ..Default::default()
                };
                rec.dispatch(SUMSQ, &sp, &[g, &self.partials], [1, 1, 1])?;
                slot += 1;
            }
        }
        let cp = ClipParams {
            count: slot,
            max_norm: max_norm as f32,
            ..Default::default()
        };
        rec.dispatch(CLIP, &cp, &[&self.partials, &self.clip], [1, 1, 1])?;
        Ok(())
    }

    /// The parameter block of step `t` (from 1) for the optimizer's rule.
    fn step_params(&self, t: i32) -> StepParams {
        let base = StepParams {
            n: 0,
            kind: 0,
            first: (t == 1) as u32,
            flags: 0,
            lr: 0.0,
            a: 0.0,
            b: 0.0,
            eps: 0.0,
            wd: 0.0,
            bc1: 1.0,
            bc2_sqrt: 1.0,
            ..Default::default()
        };
        match self.config {
            OptimizerConfig::Sgd {
                lr,
                momentum,
                dampening,
                weight_decay,
                nesterov,
            } => StepParams {
                kind: 0,
                flags: nesterov as u32 | ((momentum != 0.0) as u32) << 2,
                lr: lr as f32,
                a: momentum as f32,
                b: dampening as f32,
                wd: weight_decay as f32,
                ..base
            },
            OptimizerConfig::Adam {
                lr,
                beta1,
                beta2,
                eps,
                weight_decay,
                decoupled,
            } => StepParams {
                kind: 1,
                flags: (decoupled as u32) << 1,
                lr: lr as f32,
                a: beta1 as f32,
                b: beta2 as f32,
                eps: eps as f32,
                wd: weight_decay as f32,
                bc1: (1.0 - beta1.powi(t)) as f32,
                bc2_sqrt: (1.0 - beta2.powi(t)).sqrt() as f32,
                ..base
            },
            OptimizerConfig::RmsProp {
                lr,
                alpha,
                eps,
                weight_decay,
                momentum,
            } => StepParams {
                kind: 2,
                flags: ((momentum != 0.0) as u32) << 2,
                lr: lr as f32,
                a: alpha as f32,
                b: momentum as f32,
                eps: eps as f32,
                wd: weight_decay as f32,
                ..base
            },
        }
    }

    /// The (value, gradient) pairs of a step in the order of the optimizer's parameters, after
    /// checking that each parameter comes once, with a gradient of its size, all on `ctx`.
    fn match_params<'p>(
        &self,
        ctx: &Context,
        params: &[(&'p GpuTensor, &'p GpuTensor)],
    ) -> Result<Vec<(&'p GpuTensor, &'p GpuTensor)>> {
        let bad = |reason: String| Error::InvalidArgument {
            op: OP,
            arg: "params",
            reason,
        };
        if !self.clip.belongs_to(ctx) {
            return Err(Error::foreign(
                OP,
                "ctx",
                "an optimizer made by another context",
            ));
        }
        if params.len() != self.params.len() {
            let missing: Vec<String> = (self.params.iter().enumerate())
                .filter(|(_, p)| !params.iter().any(|(v, _)| v.same_buffer(p)))
                .map(|(k, p)| format!("parameter {k} ({})", p.describe()))
                .collect();
            return Err(bad(format!(
                "{} given, the optimizer was made for {}{}",
                params.len(),
                self.params.len(),
                if missing.is_empty() {
                    String::new()
                } else {
                    format!("; missing {}", missing.join(", "))
                }
            )));
        }
        let mut slots: Vec<Option<(&GpuTensor, &GpuTensor)>> = vec![None; self.params.len()];
        for (i, &(v, g)) in params.iter().enumerate() {
            v.check_context(ctx, OP, &format!("params[{i}].0 (value)"))?;
            g.check_context(ctx, OP, &format!("params[{i}].1 (gradient)"))?;
            let Some(k) = self.params.iter().position(|p| p.same_buffer(v)) else {
                return Err(bad(format!(
                    "params[{i}]: value {} is not a parameter of this optimizer",
                    v.describe()
                )));
            };
            if slots[k].is_some() {
                return Err(bad(format!(
                    "params[{i}]: value {} was given already: each parameter once",
                    v.describe()
                )));
            }
            let n = self.params[k].numel();
            if v.numel() != n || g.numel() != n || g.dtype() != DType::F32 {
                return Err(bad(format!(
                    "params[{i}]: value {:?} and gradient {}, expected {n} f32 elements each",
                    v.shape(),
                    g.describe()
                )));
            }
            // The step binds the gradient read-only and values read-write: a gradient that is
            // a parameter's storage is a device validation error, or a silent race.
            if v.same_buffer(g) {
                return Err(bad(format!(
                    "params[{i}]: value and gradient are the same buffer, shape {:?}",
                    v.shape()
                )));
            }
            if let Some(j) = self.params.iter().position(|p| p.same_buffer(g)) {
                return Err(bad(format!(
                    "params[{i}]: the gradient {} is the same buffer as parameter {j}",
                    g.describe()
                )));
            }
            slots[k] = Some((v, g));
        }
        // As many pairs as parameters, each matched to a different one: every slot is filled.
        Ok(slots.into_iter().flatten().collect())
    }

    /// The global gradient norm of the last step, before clipping (reads back; 0 if not
    /// clipping, since the norm is only computed for clipping).
    pub fn last_grad_norm(&self, ctx: &Context) -> Result<f32> {
        if !self.clip.belongs_to(ctx) {
            return Err(Error::foreign(
                "last_grad_norm",
                "ctx",
                "an optimizer made by another context",
            ));
        }
        Ok(ctx.read(&self.clip)?.data()[1])
    }
}
