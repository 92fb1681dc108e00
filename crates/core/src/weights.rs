//! Weight sets: the named parameters of one op, with PyTorch's names and shapes, checked against
//! the op's config on every construction, so an op can rely on every tensor being there and right.

use std::path::Path;

use crate::config::{AttentionConfig, EmbeddingConfig, Init, LinearConfig, ParamSpec, RnnConfig};
use crate::error::{Error, Result};
use crate::io::{LoadOptions, SafetensorsFile};
use crate::real::Real;
use crate::rng::SplitMix64;
use crate::tensor::{Tensor, TensorMap, try_filled};

const OP_INIT: &str = "Weights::init";
const OP_ZEROS: &str = "Weights::zeros";

/// A config that knows its parameters.
pub trait ParamLayout: Clone + std::fmt::Debug {
    /// The op name used in errors.
    const OP: &'static str;
    fn validate(&self) -> Result<()>;
    /// Parameters in PyTorch's `state_dict` order.
    fn param_specs(&self) -> Vec<ParamSpec>;
    /// Fix-ups after random init (the embedding's padding row is zeroed, as in PyTorch).
    fn after_init<T: Real>(&self, _tensors: &mut TensorMap<T>) {}
}

impl ParamLayout for RnnConfig {
    const OP: &'static str = "rnn";
    fn validate(&self) -> Result<()> {
        RnnConfig::validate(self)
    }
    fn param_specs(&self) -> Vec<ParamSpec> {
        RnnConfig::param_specs(self)
    }
}

impl ParamLayout for AttentionConfig {
    const OP: &'static str = "attention";
    fn validate(&self) -> Result<()> {
        AttentionConfig::validate(self)
    }
    fn param_specs(&self) -> Vec<ParamSpec> {
        AttentionConfig::param_specs(self)
    }
}

impl ParamLayout for LinearConfig {
    const OP: &'static str = "linear";
    fn validate(&self) -> Result<()> {
        LinearConfig::validate(self)
    }
    fn param_specs(&self) -> Vec<ParamSpec> {
        LinearConfig::param_specs(self)
    }
}

impl ParamLayout for EmbeddingConfig {
    const OP: &'static str = "embedding";
    fn validate(&self) -> Result<()> {
        EmbeddingConfig::validate(self)
    }
    fn param_specs(&self) -> Vec<ParamSpec> {
        EmbeddingConfig::param_specs(self)
    }
    fn after_init<T: Real>(&self, tensors: &mut TensorMap<T>) {
        if let (Some(p), Some(w)) = (self.padding_idx, tensors.get_mut("weight")) {
            let d = self.embedding_dim;
            w.data_mut()[p * d..(p + 1) * d].fill(T::zero());
        }
    }
}

/// The parameters of one op: a config and exactly the tensors it names, each of the right shape.
/// The same type carries gradients (one tensor per parameter, same names).
#[derive(Clone, Debug, PartialEq)]
pub struct Weights<C, T> {
    config: C,
    tensors: TensorMap<T>,
}

pub type RnnWeights<T> = Weights<RnnConfig, T>;
pub type AttentionWeights<T> = Weights<AttentionConfig, T>;
pub type LinearWeights<T> = Weights<LinearConfig, T>;
pub type EmbeddingWeights<T> = Weights<EmbeddingConfig, T>;

/// Refuses a config with a tensor whose element count overflows usize (an embedding of 2⁴⁰ ×
/// 2⁴⁰, say), before anything is built from it.
fn check_counts<C: ParamLayout>(config: &C) -> Result<()> {
    for spec in config.param_specs() {
        if crate::tensor::checked_numel(&spec.shape).is_none() {
            return Err(Error::InvalidConfig {
                config: C::OP,
                field: "sizes",
                reason: format!(
                    "make `{}` of shape {:?}, more elements than usize counts",
                    spec.name, spec.shape
                ),
            });
        }
    }
    Ok(())
}

impl<C: ParamLayout, T: Real> Weights<C, T> {
    /// Random init from a seed, with PyTorch's distributions (see each config's `param_specs`).
    /// The generator is SplitMix64, so a seed gives the same weights everywhere.
    pub fn init(config: C, seed: u64) -> Result<Self> {
        config.validate()?;
        check_counts(&config)?;
        let mut rng = SplitMix64::new(seed);
        let mut tensors = TensorMap::new();
        for spec in config.param_specs() {
            let data = try_filled(OP_INIT, &spec.name, &spec.shape, |_| {
                T::from_f64(match spec.init {
                    Init::Uniform(b) => rng.uniform(-b, b),
                    Init::Normal(s) => s * rng.normal(),
                })
            })?;
            let t = Tensor::new(spec.shape, data)?;
            tensors.insert(spec.name, t);
        }
        config.after_init(&mut tensors);
        Ok(Self { config, tensors })
    }

    /// Every parameter zero: the starting point of a gradient accumulator.
    pub fn zeros(config: C) -> Result<Self> {
        config.validate()?;
        check_counts(&config)?;
        let tensors = config
            .param_specs()
            .into_iter()
            .map(|s| {
                let data = try_filled(OP_ZEROS, &s.name, &s.shape, |_| T::zero())?;
                Ok((s.name, Tensor::new(s.shape, data)?))
            })
            .collect::<Result<_>>()?;
        Ok(Self { config, tensors })
    }

    /// Picks the config's tensors out of `tensors` (names under `opts.prefix`). A missing or
    /// mis-shaped tensor is an error naming it; so is an unknown one when `opts.strict`.
    pub fn from_tensors(config: C, mut tensors: TensorMap<T>, opts: &LoadOptions) -> Result<Self> {
        config.validate()?;
        let specs = config.param_specs();
        let mut picked = TensorMap::new();
        for spec in &specs {
            let full = format!("{}{}", opts.prefix, spec.name);
            let t = tensors.remove(&full).ok_or_else(|| Error::MissingTensor {
                op: C::OP,
                name: full.clone(),
            })?;
            if t.shape() != spec.shape.as_slice() {
                return Err(Error::shape(C::OP, full, &spec.shape, t.shape()));
            }
            picked.insert(spec.name.clone(), t);
        }
        if opts.strict {
            if let Some(extra) = tensors.keys().find(|k| k.starts_with(&opts.prefix)) {
                return Err(Error::UnknownTensor {
                    op: C::OP,
                    name: extra.clone(),
                });
            }
        }
        Ok(Self {
            config,
            tensors: picked,
        })
    }

    /// Loads from a parsed safetensors file (any float dtype on disk).
    pub fn from_file(config: C, file: &SafetensorsFile, opts: &LoadOptions) -> Result<Self> {
        // Only names under the prefix are converted; other tensors (ids, other layers) may be
        // of any dtype and are left alone.
        config.validate()?;
        let wanted: std::collections::HashSet<String> = config
            .param_specs()
            .iter()
            .map(|s| format!("{}{}", opts.prefix, s.name))
            .collect();
        let mut tensors = TensorMap::new();
        for (name, stored) in &file.tensors {
            if name.starts_with(&opts.prefix) {
                if wanted.contains(name) {
                    tensors.insert(name.clone(), stored.to_real(name)?);
                } else if opts.strict {
                    return Err(Error::UnknownTensor {
                        op: C::OP,
                        name: name.clone(),
                    });
                }
            }
        }
        Self::from_tensors(config, tensors, opts)
    }

    pub fn from_safetensors(config: C, bytes: &[u8], opts: &LoadOptions) -> Result<Self> {
        Self::from_file(config, &SafetensorsFile::from_bytes(bytes)?, opts)
    }

    pub fn load(config: C, path: impl AsRef<Path>, opts: &LoadOptions) -> Result<Self> {
        Self::from_file(config, &SafetensorsFile::read(path)?, opts)
    }

    /// The parameters as a safetensors file with PyTorch names (stored in `T`'s dtype).
    pub fn to_file(&self) -> SafetensorsFile {
        let mut file = SafetensorsFile::default();
        for (name, t) in &self.tensors {
            file.insert_real(name.clone(), t);
        }
        file
    }

    pub fn to_safetensors(&self) -> Result<Vec<u8>> {
        self.to_file().to_bytes()
    }

    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        self.to_file().write(path)
    }

    pub fn config(&self) -> &C {
        &self.config
    }

    /// The parameter `name` (without prefix).
    pub fn get(&self, name: &str) -> Result<&Tensor<T>> {
        self.tensors.get(name).ok_or_else(|| Error::MissingTensor {
            op: C::OP,
            name: name.into(),
        })
    }

    /// Mutable access keeps the shape fixed: only the data can change.
    pub fn get_mut(&mut self, name: &str) -> Result<&mut [T]> {
        self.tensors
            .get_mut(name)
            .map(|t| t.data_mut())
            .ok_or_else(|| Error::MissingTensor {
                op: C::OP,
                name: name.into(),
            })
    }

    /// All tensors by name.
    pub fn tensors(&self) -> &TensorMap<T> {
        &self.tensors
    }

    pub fn into_tensors(self) -> TensorMap<T> {
        self.tensors
    }

    /// Parameter names in PyTorch's `state_dict` order.
    pub fn names(&self) -> Vec<String> {
        self.config
            .param_specs()
            .into_iter()
            .map(|s| s.name)
            .collect()
    }

    /// The same parameters in another float type.
    pub fn cast<U: Real>(&self) -> Weights<C, U> {
        Weights {
            config: self.config.clone(),
            tensors: self
                .tensors
                .iter()
                .map(|(k, t)| (k.clone(), t.cast()))
                .collect(),
        }
    }

    /// Total number of scalars.
    pub fn numel(&self) -> usize {
        self.tensors.values().map(Tensor::numel).sum()
    }
}

/// The four tensors of one (layer, direction) of a recurrent layer.
#[derive(Clone, Copy, Debug)]
pub struct DirectionWeights<'a, T> {
    pub weight_ih: &'a Tensor<T>,
    pub weight_hh: &'a Tensor<T>,
    pub bias_ih: Option<&'a Tensor<T>>,
    pub bias_hh: Option<&'a Tensor<T>>,
    /// The LSTM's projection `[P, H]`, where the config has one.
    pub weight_hr: Option<&'a Tensor<T>>,
}

impl<T: Real> Weights<RnnConfig, T> {
    /// Weights of `layer`, `direction` (0 forward, 1 reverse).
    pub fn direction(&self, layer: usize, direction: usize) -> Result<DirectionWeights<'_, T>> {
        let sfx = RnnConfig::suffix(layer, direction);
        let bias = |n: &str| -> Result<Option<&Tensor<T>>> {
            if self.config.bias {
                self.get(&format!("{n}{sfx}")).map(Some)
            } else {
                Ok(None)
            }
        };
        Ok(DirectionWeights {
            weight_ih: self.get(&format!("weight_ih{sfx}"))?,
            weight_hh: self.get(&format!("weight_hh{sfx}"))?,
            bias_ih: bias("bias_ih")?,
            bias_hh: bias("bias_hh")?,
            weight_hr: if self.config.proj_size > 0 {
                Some(self.get(&format!("weight_hr{sfx}"))?)
            } else {
                None
            },
        })
    }
}
