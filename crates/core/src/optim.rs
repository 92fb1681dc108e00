//! Optimizer settings, with PyTorch's names, defaults and update rules (`torch.optim`).

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

    /// Number of state tensors kept per parameter (momentum buffers, moments).
    pub fn state_slots(&self) -> usize {
        match *self {
            OptimizerConfig::Sgd { momentum, .. } => (momentum != 0.0) as usize,
            OptimizerConfig::Adam { .. } => 2,
            OptimizerConfig::RmsProp { momentum, .. } => 1 + (momentum != 0.0) as usize,
        }
    }
}

/// Scale that global-norm clipping applies to every gradient (`torch.nn.utils.clip_grad_norm_`):
/// `min(1, max_norm / (total_norm + 1e-6))`.
pub fn clip_coefficient(total_norm: f64, max_norm: f64) -> f64 {
    (max_norm / (total_norm + 1e-6)).min(1.0)
}
