//! Optimizer settings, with PyTorch's names, defaults and update rules (`torch.optim`).

use crate::error::{Error, Result};

/// Which update rule, with its hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum OptimizerConfig {
    /// `torch.optim.SGD`: `g += wd·p`; with momentum `b = μ·b + (1 − dampening)·g` (b = g on the
    /// first step), `g = nesterov ? g + μ·b : b`; then `p −= lr·g`.
    Sgd {
        lr: f64,
        momentum: f64,
        dampening: f64,
        weight_decay: f64,
        nesterov: bool,
    },
    /// `torch.optim.Adam` (`decoupled = false`: `g += wd·p`) or `AdamW` (`decoupled = true`:
    /// `p *= 1 − lr·wd`): `m = β1·m + (1 − β1)·g`, `v = β2·v + (1 − β2)·g²`,
    /// `p −= lr/(1 − β1ᵗ) · m / (√v/√(1 − β2ᵗ) + ε)`.
    Adam {
        lr: f64,
        beta1: f64,
        beta2: f64,
        eps: f64,
        weight_decay: f64,
        decoupled: bool,
    },
    /// `torch.optim.RMSprop` (not centered): `g += wd·p`, `v = α·v + (1 − α)·g²`, and with
    /// momentum `b = μ·b + g/(√v + ε)`, `p −= lr·b`; without, `p −= lr·g/(√v + ε)`.
    RmsProp {
        lr: f64,
        alpha: f64,
        eps: f64,
        weight_decay: f64,
        momentum: f64,
    },
}

impl OptimizerConfig {
    /// SGD with PyTorch's defaults and the given learning rate and momentum.
    pub fn sgd(lr: f64, momentum: f64) -> Self {
        OptimizerConfig::Sgd {
            lr,
            momentum,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: false,
        }
    }

    /// Adam with PyTorch's defaults (β = 0.9, 0.999; ε = 1e-8).
    pub fn adam(lr: f64) -> Self {
        OptimizerConfig::Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled: false,
        }
    }

    /// AdamW with PyTorch's defaults (weight decay 0.01).
    pub fn adamw(lr: f64) -> Self {
        OptimizerConfig::Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
            decoupled: true,
        }
    }

    /// RMSprop with PyTorch's defaults (α = 0.99, ε = 1e-8).
    pub fn rmsprop(lr: f64) -> Self {
        OptimizerConfig::RmsProp {
            lr,
            alpha: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
            momentum: 0.0,
        }
    }

    /// Checks the hyper-parameters as `torch.optim` does: rates, ε, weight decay and momentum
    /// ≥ 0, Adam's β in [0, 1), RMSprop's α ≥ 0, Nesterov only with momentum and no dampening.
    /// NaN fails every check. Outside these, updates are NaN (β1 = 1 divides by 1 − β1ᵗ = 0) or
    /// climb instead of descend (lr < 0).
    ///
    /// The checks hold in f32, the precision the device updates in: every value must be finite
    /// there (lr = 1e39 is infinite in f32 and makes NaN parameters), a non-zero value must not
    /// vanish there (ε = 1e-50 is 0 in f32, and devices may flush subnormals to 0), β must stay
    /// below 1 once rounded, and the products the kernels form from them alone (Adam's
    /// lr / (1 − β1) at the first step, AdamW's lr · wd) must be finite in f32.
    pub fn validate(&self) -> Result<()> {
        let non_negative = |name, v: f64| check(name, v, v >= 0.0, "≥ 0");
        let unit = |name, v: f64| check(name, v, v >= 0.0 && (v as f32) < 1.0, "in [0, 1) in f32");
        match *self {
            OptimizerConfig::Sgd {
                lr,
                momentum,
                dampening,
                weight_decay,
                nesterov,
            } => {
                non_negative("lr", lr)?;
                non_negative("momentum", momentum)?;
                check("dampening", dampening, true, "finite")?;
                non_negative("weight_decay", weight_decay)?;
                if nesterov && (momentum <= 0.0 || dampening != 0.0) {
                    return Err(Error::InvalidConfig {
                        config: CONFIG,
                        field: "nesterov",
                        reason: format!(
                            "needs momentum > 0 and dampening 0, has momentum {momentum} and \
                             dampening {dampening}"
                        ),
                    });
                }
                Ok(())
            }
            OptimizerConfig::Adam {
                lr,
                beta1,
                beta2,
                eps,
                weight_decay,
                decoupled,
            } => {
                non_negative("lr", lr)?;
                unit("beta1", beta1)?;
                unit("beta2", beta2)?;
                non_negative("eps", eps)?;
                non_negative("weight_decay", weight_decay)?;
                // The first step's bias correction is the largest: 1 − β1ᵗ grows with t.
                product("lr", "lr / (1 - beta1)", lr / (1.0 - beta1))?;
                if decoupled {
                    product("lr", "lr * weight_decay", lr * weight_decay)?;
                }
                Ok(())
            }
            OptimizerConfig::RmsProp {
                lr,
                alpha,
                eps,
                weight_decay,
                momentum,
            } => {
                non_negative("lr", lr)?;
                non_negative("alpha", alpha)?;
                non_negative("eps", eps)?;
                non_negative("weight_decay", weight_decay)?;
                non_negative("momentum", momentum)
            }
        }
    }

    /// The same rule with another learning rate (a schedule's step), checked.
    pub fn with_lr(mut self, new_lr: f64) -> Result<Self> {
        match &mut self {
            OptimizerConfig::Sgd { lr, .. }
            | OptimizerConfig::Adam { lr, .. }
            | OptimizerConfig::RmsProp { lr, .. } => *lr = new_lr,
        }
        self.validate()?;
        Ok(self)
    }

    /// Number of state tensors kept per parameter (momentum buffers, moments).
    pub fn state_slots(&self) -> usize {
        match *self {
            OptimizerConfig::Sgd { momentum, .. } => (momentum != 0.0) as usize,
            OptimizerConfig::Adam { .. } => 2,
            OptimizerConfig::RmsProp { momentum, .. } => 1 + (momentum != 0.0) as usize,
        }
    }
}

const CONFIG: &str = "OptimizerConfig";

/// Whether `v` keeps its meaning as an f32: finite, and 0 only if it was 0 (not subnormal).
fn in_f32(v: f64) -> bool {
    let f = v as f32;
    f.is_finite() && (v == 0.0 || f.abs() >= f32::MIN_POSITIVE)
}

/// `field` is `value`: an error unless `ok` holds and the value survives the cast to f32
/// (finite, and non-zero if it was non-zero: devices may flush subnormals to 0).
fn check(field: &'static str, value: f64, ok: bool, domain: &str) -> Result<()> {
    if ok && in_f32(value) {
        return Ok(());
    }
    Err(Error::InvalidConfig {
        config: CONFIG,
        field,
        reason: format!(
            "is {value}, must be {domain}, finite in f32 and not below f32's smallest normal \
             {:e} unless 0",
            f32::MIN_POSITIVE
        ),
    })
}

/// A product of hyper-parameters that a kernel forms: finite in f32, or the update is NaN.
fn product(field: &'static str, what: &str, value: f64) -> Result<()> {
    if (value as f32).is_finite() {
        return Ok(());
    }
    Err(Error::InvalidConfig {
        config: CONFIG,
        field,
        reason: format!("gives {what} = {value}, which overflows f32"),
    })
}

/// Checks a global-norm clipping bound: ≥ 0 (a negative one would flip every gradient), not
/// NaN, and usable in f32 as the device clips in f32 (finite; a non-zero bound that rounds to 0
/// there would zero every gradient).
pub fn validate_max_norm(max_norm: f64) -> Result<()> {
    if max_norm >= 0.0 && in_f32(max_norm) {
        Ok(())
    } else {
        Err(Error::InvalidConfig {
            config: "gradient clipping",
            field: "max_norm",
            reason: format!(
                "is {max_norm}, must be ≥ 0, finite in f32 and not below {:e} unless 0",
                f32::MIN_POSITIVE
            ),
        })
    }
}

/// Scale that global-norm clipping applies to every gradient (`torch.nn.utils.clip_grad_norm_`):
/// `min(1, max_norm / (total_norm + 1e-6))`.
pub fn clip_coefficient(total_norm: f64, max_norm: f64) -> f64 {
    (max_norm / (total_norm + 1e-6)).min(1.0)
}
