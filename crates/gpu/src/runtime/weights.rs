//! Weight sets on the device, with the same names as the host `Weights`.

use std::collections::BTreeMap;

use wgrnn_core::{
    Error, LoadOptions, LoadReport, ParamLayout, Result, SafetensorsFile, Weights, pick_state_dict,
};

use crate::runtime::context::Context;
use crate::runtime::tensor::{DType, GpuTensor, OnContext};

/// The parameters of one op in device memory, in PyTorch's layout and names. Ops repack them as
/// their kernels need on every call, so an optimizer can update these tensors in place.
#[derive(Clone, Debug)]
pub struct GpuWeights<C> {
    config: C,
    tensors: BTreeMap<String, GpuTensor>,
}

/// A config whose weights the device ops also hold in buffers of their own (repacked, padded):
/// [`DeviceLayout::check_device`] checks those against the device, so that weights that can be
/// made can also be used. Each op implements it beside its kernels.
pub trait DeviceLayout: ParamLayout {
    /// An error naming the buffer and the limit where an op's buffer made from these weights
    /// would not fit `ctx`; the default: no such buffer.
    fn check_device(&self, _ctx: &Context) -> Result<()> {
        Ok(())
    }
}

impl<C: DeviceLayout> GpuWeights<C> {
    /// Weights initialised as PyTorch initialises them (the config's `Init`, from `seed`) and
    /// uploaded. Every tensor, and every buffer the ops make from them
    /// ([`DeviceLayout::check_device`]), is checked against the device's limits before any is
    /// built on the host, so a config too large for the device is an error, not an allocation
    /// that exhausts host memory or a model that cannot run.
    pub fn init(ctx: &Context, config: C, seed: u64) -> Result<Self> {
        config.validate()?;
        for spec in config.param_specs() {
            ctx.check_fits(&spec.name, &spec.shape)?;
        }
        config.check_device(ctx)?;
        Self::upload(ctx, &Weights::init(config, seed)?)
    }
}

impl<C: ParamLayout> GpuWeights<C> {
    pub fn upload(ctx: &Context, w: &Weights<C, f32>) -> Result<Self> {
        let tensors = w
            .tensors()
            .iter()
            .map(|(n, t)| Ok((n.clone(), ctx.upload(t)?)))
            .collect::<Result<_>>()?;
        Ok(Self {
            config: w.config().clone(),
            tensors,
        })
    }

    /// Copies the parameters back to the host.
    pub fn read(&self, ctx: &Context) -> Result<Weights<C, f32>> {
        self.check_context(ctx, "read", "weights")?;
        let tensors = self
            .tensors
            .iter()
            .map(|(n, t)| Ok((n.clone(), ctx.read(t)?)))
            .collect::<Result<_>>()?;
        Weights::from_tensors(self.config.clone(), tensors, &LoadOptions::strict())
    }

    /// Tensors already checked to match `config` (names and shapes).
    pub(crate) fn from_parts(config: C, tensors: BTreeMap<String, GpuTensor>) -> Self {
        Self { config, tensors }
    }

    pub fn config(&self) -> &C {
        &self.config
    }

    pub fn get(&self, name: &str) -> Result<&GpuTensor> {
        self.tensors.get(name).ok_or_else(|| Error::MissingTensor {
            op: C::OP,
            name: name.into(),
        })
    }

    pub fn tensors(&self) -> &BTreeMap<String, GpuTensor> {
        &self.tensors
    }
}

impl<C: ParamLayout> GpuWeights<C> {
    /// Adds these tensors to a checkpoint under `prefix` (PyTorch `state_dict` names, e.g.
    /// `encoder.rnn.weight_ih_l0`).
    pub fn save_into(&self, ctx: &Context, file: &mut SafetensorsFile, prefix: &str) -> Result<()> {
        self.check_context(ctx, "save_into", "weights")?;
        for (name, t) in self.tensors() {
            file.insert_real(format!("{prefix}{name}"), &ctx.read(t)?);
        }
        Ok(())
    }

    /// Overwrites these tensors, in place, with the ones under `prefix` in a checkpoint; names
    /// and shapes are checked first, so a bad file changes nothing. Strict under the prefix, as
    /// PyTorch's `load_state_dict` is by default: a tensor there that the config does not name
    /// (a second layer, a reverse direction) is an error, not a weight dropped in silence.
    pub fn load_from(&self, ctx: &Context, file: &SafetensorsFile, prefix: &str) -> Result<()> {
        self.load_with(ctx, file, &LoadOptions::with_prefix(prefix))
            .map(|_| ())
    }

    /// [`GpuWeights::load_from`] with explicit options, as `Weights::load_state_dict_from`:
    /// `LoadOptions::non_strict()` (PyTorch's `strict=False`) overwrites the tensors the file
    /// holds, keeps the others' values, and returns what did not match.
    pub fn load_with(
        &self,
        ctx: &Context,
        file: &SafetensorsFile,
        opts: &LoadOptions,
    ) -> Result<LoadReport> {
        self.check_context(ctx, "load_with", "weights")?;
        let (picked, report) = pick_state_dict::<C, f32>(self.config(), file, opts)?;
        // A host write lands before any later submit: never under an open recording's use.
        for (name, t) in self.tensors() {
            t.check_settled("load_with", &format!("weights {name}"), true)?;
        }
        for (name, host) in &picked {
            let t = self.get(name)?;
            ctx.queue
                .write_buffer(t.raw(), 0, bytemuck::cast_slice(host.data()));
        }
        Ok(report)
    }
}

impl<C> GpuWeights<C> {
    /// Whether `ctx` made every tensor of this set (see [`GpuTensor::belongs_to`]).
    pub fn belongs_to(&self, ctx: &Context) -> bool {
        self.tensors.values().all(|t| t.belongs_to(ctx))
    }
}

impl<C> OnContext for GpuWeights<C> {
    fn check_context(&self, ctx: &Context, op: &'static str, arg: &str) -> Result<()> {
        for (name, t) in &self.tensors {
            t.check_context(ctx, op, &format!("{arg}.{name}"))?;
        }
        Ok(())
    }
}

/// A backward's gradients: the `accumulate` tensors (checked by [`check_accumulator`]), or
/// fresh ones shaped as `config`'s parameters, allocated for `op` and not yet written.
pub(crate) fn grads_or<C: ParamLayout>(
    ctx: &Context,
    op: &'static str,
    config: &C,
    accumulate: Option<&GpuWeights<C>>,
) -> Result<GpuWeights<C>> {
    if let Some(acc) = accumulate {
        return Ok(acc.clone());
    }
    let mut tensors = BTreeMap::new();
    for spec in config.param_specs() {
        let t = ctx.alloc(op, &spec.name, &spec.shape, DType::F32)?;
        tensors.insert(spec.name, t);
    }
    Ok(GpuWeights::from_parts(config.clone(), tensors))
}

/// The checks of a backward's `accumulate` argument: the weights' config, the context, and no
/// tensor shared with the weights themselves (the gradient would be added into the values).
pub(crate) fn check_accumulator<C: ParamLayout + PartialEq>(
    ctx: &Context,
    op: &'static str,
    w: &GpuWeights<C>,
    acc: Option<&GpuWeights<C>>,
) -> Result<()> {
    let Some(acc) = acc else {
        return Ok(());
    };
    if acc.config() != w.config() {
        return Err(Error::InvalidArgument {
            op,
            arg: "accumulate",
            reason: format!(
                "config {:?} differs from the weights' {:?}",
                acc.config(),
                w.config()
            ),
        });
    }
    acc.check_context(ctx, op, "accumulate")?;
    for (name, g) in &acc.tensors {
        if let Some((wname, _)) = w.tensors.iter().find(|(_, v)| v.same_buffer(g)) {
            return Err(Error::InvalidArgument {
                op,
                arg: "accumulate",
                reason: format!(
                    "tensor `{name}` shares storage with the weights' `{wname}` (shape {:?}): \
                     pass the gradients, not the weights",
                    g.shape()
                ),
            });
        }
    }
    Ok(())
}
