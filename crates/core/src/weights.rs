//! Weight sets: the named parameters of one op, with PyTorch's names and shapes, checked against
//! the op's config on every construction, so an op can rely on every tensor being there and right.

use std::collections::BTreeSet;
use std::path::Path;

use crate::config::{
    AttentionConfig, EmbeddingConfig, GruReset, Init, LinearConfig, ParamSpec, RnnConfig,
};
use crate::error::{Error, Result};
use crate::io::{LoadOptions, LoadReport, SafetensorsFile};
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
    /// A second name under which a `state_dict` may hold parameter `name`, accepted on load
    /// (a source holding both is refused); `None` for most parameters.
    fn alt_name(&self, _name: &str) -> Option<String> {
        None
    }
}

impl ParamLayout for RnnConfig {
    const OP: &'static str = "rnn";
    fn validate(&self) -> Result<()> {
        RnnConfig::validate(self)
    }
    fn param_specs(&self) -> Vec<ParamSpec> {
        RnnConfig::param_specs(self)
    }
    /// One layer of one direction is what `nn.LSTMCell`, `nn.GRUCell` and `nn.RNNCell` hold,
    /// and they save it without the layer suffix (`weight_ih` for `weight_ih_l0`).
    fn alt_name(&self, name: &str) -> Option<String> {
        if self.num_layers == 1 && !self.bidirectional {
            name.strip_suffix("_l0").map(str::to_string)
        } else {
            None
        }
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

/// Where a source's names meet a config's parameters.
struct KeyMatch {
    /// (the source's name, the parameter) for each parameter the source holds.
    found: Vec<(String, ParamSpec)>,
    report: LoadReport,
}

/// Matches the source's `names` under `opts.prefix` with `config`'s parameters, by their names
/// or by [`ParamLayout::alt_name`]; a source that gives one parameter under both is refused.
fn match_keys<'a, C: ParamLayout>(
    config: &C,
    names: impl IntoIterator<Item = &'a str>,
    opts: &LoadOptions,
) -> Result<KeyMatch> {
    let p = &opts.prefix;
    let present: BTreeSet<&str> = names.into_iter().filter(|n| n.starts_with(p)).collect();
    let mut used = BTreeSet::new();
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for spec in config.param_specs() {
        let full = format!("{p}{}", spec.name);
        let alt = config
            .alt_name(&spec.name)
            .map(|a| format!("{p}{a}"))
            .filter(|a| present.contains(a.as_str()));
        let src = match (present.contains(full.as_str()), alt) {
            (true, Some(a)) => {
                return Err(Error::invalid_argument(
                    C::OP,
                    "state_dict",
                    format!("holds both `{full}` and `{a}`, two names of one parameter"),
                ));
            }
            (true, None) => full,
            (false, Some(a)) => a,
            (false, None) => {
                missing.push(full);
                continue;
            }
        };
        used.insert(src.clone());
        found.push((src, spec));
    }
    let unexpected = present
        .into_iter()
        .filter(|n| !used.contains(*n))
        .map(str::to_string)
        .collect();
    let report = LoadReport {
        missing_keys: missing,
        unexpected_keys: unexpected,
    };
    Ok(KeyMatch { found, report })
}

fn incompatible<C: ParamLayout>(report: LoadReport) -> Error {
    Error::IncompatibleKeys {
        op: C::OP,
        missing: report.missing_keys,
        unexpected: report.unexpected_keys,
    }
}

/// A load into existing weights: strict refuses any mismatch, non-strict reports it.
fn strict_check<C: ParamLayout>(report: LoadReport, opts: &LoadOptions) -> Result<LoadReport> {
    if opts.strict && !report.is_exact() {
        return Err(incompatible::<C>(report));
    }
    Ok(report)
}

/// A set built from the source alone needs every parameter, strict or not; the unexpected
/// tensors are named beside the missing ones, as they often say why (a cell's `weight_ih`
/// given to a two-layer config).
fn require_complete<C: ParamLayout>(report: LoadReport) -> Result<()> {
    if report.missing_keys.is_empty() {
        return Ok(());
    }
    Err(incompatible::<C>(report))
}

fn check_shape<C: ParamLayout>(src: &str, spec: &ParamSpec, got: &[usize]) -> Result<()> {
    if got != spec.shape.as_slice() {
        return Err(Error::shape(C::OP, src, &spec.shape, got));
    }
    Ok(())
}

/// Moves the found tensors out of `tensors`, under their parameter names; every shape is
/// checked before any is moved, so an error leaves the caller's weights as they were.
fn take_found<C: ParamLayout, T: Real>(
    tensors: &mut TensorMap<T>,
    found: Vec<(String, ParamSpec)>,
) -> Result<TensorMap<T>> {
    for (src, spec) in &found {
        if let Some(t) = tensors.get(src) {
            check_shape::<C>(src, spec, t.shape())?;
        }
    }
    let mut picked = TensorMap::new();
    for (src, spec) in found {
        let t = tensors.remove(&src).ok_or_else(|| Error::MissingTensor {
            op: C::OP,
            name: src.clone(),
        })?;
        picked.insert(spec.name, t);
    }
    Ok(picked)
}

/// Converts the found tensors of `file` to `T`, under their parameter names, each shape
/// checked before its data is converted.
fn read_found<C: ParamLayout, T: Real>(
    file: &SafetensorsFile,
    found: &[(String, ParamSpec)],
) -> Result<TensorMap<T>> {
    let mut picked = TensorMap::new();
    for (src, spec) in found {
        let stored = file.tensors.get(src).ok_or_else(|| Error::MissingTensor {
            op: C::OP,
            name: src.clone(),
        })?;
        check_shape::<C>(src, spec, &stored.shape)?;
        picked.insert(spec.name.clone(), stored.to_real(src)?);
    }
    Ok(picked)
}

/// The tensors of `file` that `config` names (under `opts.prefix`, by name or
/// [`ParamLayout::alt_name`]), converted to `T` and keyed by parameter name, with what did not
/// match: the rule of [`Weights::load_state_dict_from`], for loaders that write elsewhere (the
/// device's weights). Strict refuses any mismatch; a mis-shaped or unreadable tensor, or one
/// parameter given under two names, is an error either way.
pub fn pick_state_dict<C: ParamLayout, T: Real>(
    config: &C,
    file: &SafetensorsFile,
    opts: &LoadOptions,
) -> Result<(TensorMap<T>, LoadReport)> {
    config.validate()?;
    let m = match_keys(config, file.tensors.keys().map(String::as_str), opts)?;
    let report = strict_check::<C>(m.report, opts)?;
    let picked = read_found::<C, T>(file, &m.found)?;
    Ok((picked, report))
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

    /// Builds a set from `tensors` alone (names under `opts.prefix`), by PyTorch's
    /// `load_state_dict` rules: strict refuses a missing or an unexpected tensor with one
    /// [`Error::IncompatibleKeys`] naming both kinds, missing first. A set built from nothing
    /// else has no initial value to keep, so every parameter must be there even when not
    /// strict (which then only ignores unexpected tensors); to keep initial values, `init` and
    /// [`Weights::load_state_dict`]. A mis-shaped tensor is an error, strict or not.
    pub fn from_tensors(config: C, mut tensors: TensorMap<T>, opts: &LoadOptions) -> Result<Self> {
        config.validate()?;
        let m = match_keys(&config, tensors.keys().map(String::as_str), opts)?;
        require_complete::<C>(strict_check::<C>(m.report, opts)?)?;
        let picked = take_found::<C, T>(&mut tensors, m.found)?;
        Ok(Self {
            config,
            tensors: picked,
        })
    }

    /// [`Weights::from_tensors`] from a parsed safetensors file (any float dtype on disk).
    pub fn from_file(config: C, file: &SafetensorsFile, opts: &LoadOptions) -> Result<Self> {
        config.validate()?;
        let m = match_keys(&config, file.tensors.keys().map(String::as_str), opts)?;
        require_complete::<C>(strict_check::<C>(m.report, opts)?)?;
        let tensors = read_found::<C, T>(file, &m.found)?;
        Ok(Self { config, tensors })
    }

    pub fn from_safetensors(config: C, bytes: &[u8], opts: &LoadOptions) -> Result<Self> {
        Self::from_file(config, &SafetensorsFile::from_bytes(bytes)?, opts)
    }

    pub fn load(config: C, path: impl AsRef<Path>, opts: &LoadOptions) -> Result<Self> {
        Self::from_file(config, &SafetensorsFile::read(path)?, opts)
    }

    /// PyTorch's `module.load_state_dict(tensors, strict)`: overwrites the parameters that
    /// `tensors` holds (names under `opts.prefix`) and keeps the others as they are. Strict
    /// refuses any missing or unexpected tensor; not strict returns them in the report. A
    /// mis-shaped tensor is an error either way. On any error nothing is changed.
    pub fn load_state_dict(
        &mut self,
        mut tensors: TensorMap<T>,
        opts: &LoadOptions,
    ) -> Result<LoadReport> {
        let m = match_keys(&self.config, tensors.keys().map(String::as_str), opts)?;
        let report = strict_check::<C>(m.report, opts)?;
        let picked = take_found::<C, T>(&mut tensors, m.found)?;
        self.tensors.extend(picked);
        Ok(report)
    }

    /// [`Weights::load_state_dict`] from a parsed safetensors file (any float dtype on disk;
    /// tensors it does not load are not converted, so they may be of any dtype).
    pub fn load_state_dict_from(
        &mut self,
        file: &SafetensorsFile,
        opts: &LoadOptions,
    ) -> Result<LoadReport> {
        let (picked, report) = pick_state_dict::<C, T>(&self.config, file, opts)?;
        self.tensors.extend(picked);
        Ok(report)
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

/// Refuses a config no PyTorch cell computes, naming the field: a file saved in the cell form
/// would load into `nn.LSTMCell` & co. and compute something else (or not load at all).
fn check_cell_form(c: &RnnConfig) -> Result<()> {
    let refuse = |field, reason: String| Err(Error::invalid_config("rnn", field, reason));
    if c.num_layers != 1 {
        let n = c.num_layers;
        return refuse(
            "num_layers",
            format!("is {n}: a cell state_dict holds one layer"),
        );
    }
    if c.bidirectional {
        return refuse(
            "bidirectional",
            "is true: a cell holds one direction".into(),
        );
    }
    if c.proj_size != 0 {
        let p = c.proj_size;
        return refuse(
            "proj_size",
            format!("is {p}: nn.LSTMCell has no projection"),
        );
    }
    if c.gru_reset != GruReset::After {
        let why = "is before: nn.GRUCell applies the reset gate after W_hn";
        return refuse("gru_reset", why.into());
    }
    Ok(())
}

impl<T: Real> Weights<RnnConfig, T> {
    /// The parameters as an `nn.LSTMCell`/`nn.GRUCell`/`nn.RNNCell` `state_dict` saves them:
    /// the names without `_l0`. Only a config a PyTorch cell computes is one: one layer, one
    /// direction, no projection, the reset gate where `nn.GRUCell` applies it.
    pub fn to_cell_file(&self) -> Result<SafetensorsFile> {
        check_cell_form(&self.config)?;
        let mut file = SafetensorsFile::default();
        for (name, t) in &self.tensors {
            let cell = self.config.alt_name(name).unwrap_or_else(|| name.clone());
            file.insert_real(cell, t);
        }
        Ok(file)
    }

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
