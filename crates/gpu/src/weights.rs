//! Weight sets on the device, with the same names as the host `Weights`.

use std::collections::BTreeMap;

use wgrnn_core::{Error, LoadOptions, ParamLayout, Result, Weights};

use crate::buffer::GpuTensor;
use crate::context::Context;

/// The parameters of one op in device memory, in PyTorch's layout and names. Ops repack them as
/// their kernels need on every call, so an optimizer can update these tensors in place.
#[derive(Clone, Debug)]
pub struct GpuWeights<C> {
    config: C,
    tensors: BTreeMap<String, GpuTensor>,
}

impl<C: ParamLayout> GpuWeights<C> {
    /// Weights initialised as PyTorch initialises them (the config's `Init`, from `seed`) and
    /// uploaded. Every tensor is checked against the device's limits before any is built on
    /// the host, so a config too large for the device is an error, not an allocation that
    /// exhausts host memory.
    pub fn init(ctx: &Context, config: C, seed: u64) -> Result<Self> {
        config.validate()?;
        for spec in config.param_specs() {
            ctx.check_fits(&spec.name, &spec.shape)?;
        }
        Self::upload(ctx, &Weights::init(config, seed)?)
    }

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
