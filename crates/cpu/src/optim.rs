//! The optimizers' update rules on the host: the reference the device kernels are tested against.

use wgrnn_core::{Error, OptimizerConfig, Real, Result, clip_coefficient, validate_max_norm};

/// An optimizer over a fixed list of parameter tensors, with its per-parameter state.
#[derive(Clone, Debug)]
pub struct Optimizer<T> {
    pub config: OptimizerConfig,
    /// Steps taken so far.
    pub t: u64,
    /// Per parameter, `state_slots` buffers of its size.
    state: Vec<Vec<Vec<T>>>,
    /// The parameters' sizes, as made.
    sizes: Vec<usize>,
}

impl<T: Real> Optimizer<T> {
    /// State for parameters of the given sizes (all zero, as PyTorch starts); an error if the
    /// config is out of its domain ([`OptimizerConfig::validate`]).
    pub fn new(config: OptimizerConfig, sizes: &[usize]) -> Result<Self> {
        config.validate()?;
        let slots = config.state_slots();
        Ok(Self {
            config,
            t: 0,
            sizes: sizes.to_vec(),
            state: sizes
                .iter()
                .map(|&n| vec![vec![T::zero(); n]; slots])
                .collect(),
        })
    }

    /// One update of every parameter from its gradient. Every size is checked before anything
    /// changes, so an error leaves the parameters, the state and the step count as they were.
    pub fn step(&mut self, params: &mut [&mut [T]], grads: &[&[T]]) -> Result<()> {
        if params.len() != self.state.len() || grads.len() != params.len() {
            return Err(Error::InvalidArgument {
                op: "optimizer step",
                arg: "params",
                reason: format!(
                    "{} parameters and {} gradients for an optimizer of {}",
                    params.len(),
                    grads.len(),
                    self.state.len()
                ),
            });
        }
        for (i, ((p, g), &n)) in params.iter().zip(grads).zip(&self.sizes).enumerate() {
            for (arg, len) in [("params", p.len()), ("grads", g.len())] {
                if len != n {
                    return Err(Error::shape(
                        "optimizer step",
                        format!("{arg}[{i}]"),
                        &[n],
                        &[len],
                    ));
                }
            }
        }
        self.t += 1;
        let f = T::from_f64;
        for ((p, g), st) in params.iter_mut().zip(grads).zip(&mut self.state) {
            for i in 0..p.len() {
                let mut gi = g[i];
                match self.config {
                    OptimizerConfig::Sgd {
                        lr,
                        momentum,
                        dampening,
                        weight_decay,
                        nesterov,
                    } => {
                        gi += f(weight_decay) * p[i];
                        if momentum != 0.0 {
                            let b = &mut st[0][i];
                            *b = if self.t == 1 {
                                gi
                            } else {
                                f(momentum) * *b + f(1.0 - dampening) * gi
                            };
                            gi = if nesterov { gi + f(momentum) * *b } else { *b };
                        }
                        p[i] -= f(lr) * gi;
                    }
                    OptimizerConfig::Adam {
                        lr,
                        beta1,
                        beta2,
                        eps,
                        weight_decay,
                        decoupled,
                    } => {
                        if decoupled {
                            p[i] *= f(1.0 - lr * weight_decay);
                        } else {
                            gi += f(weight_decay) * p[i];
                        }
                        let (bc1, bc2) = (
                            1.0 - beta1.powi(self.t as i32),
                            1.0 - beta2.powi(self.t as i32),
                        );
                        st[0][i] = f(beta1) * st[0][i] + f(1.0 - beta1) * gi;
                        st[1][i] = f(beta2) * st[1][i] + f(1.0 - beta2) * gi * gi;
                        let denom = st[1][i].sqrt() / f(bc2.sqrt()) + f(eps);
                        p[i] -= f(lr / bc1) * st[0][i] / denom;
                    }
                    OptimizerConfig::RmsProp {
                        lr,
                        alpha,
                        eps,
                        weight_decay,
                        momentum,
                    } => {
                        gi += f(weight_decay) * p[i];
                        st[0][i] = f(alpha) * st[0][i] + f(1.0 - alpha) * gi * gi;
                        let avg = st[0][i].sqrt() + f(eps);
                        if momentum != 0.0 {
                            st[1][i] = f(momentum) * st[1][i] + gi / avg;
                            p[i] -= f(lr) * st[1][i];
                        } else {
                            p[i] -= f(lr) * gi / avg;
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// Global-norm clipping in place (`torch.nn.utils.clip_grad_norm_`); returns the total norm
/// before clipping, or an error for a negative or NaN `max_norm` (nothing is changed then).
pub fn clip_grad_norm<T: Real>(grads: &mut [&mut [T]], max_norm: f64) -> Result<f64> {
    validate_max_norm(max_norm)?;
    let total = grads
        .iter()
        .flat_map(|g| g.iter())
        .map(|v| v.as_f64() * v.as_f64())
        .sum::<f64>()
        .sqrt();
    let c = T::from_f64(clip_coefficient(total, max_norm));
    for g in grads.iter_mut() {
        g.iter_mut().for_each(|v| *v *= c);
    }
    Ok(total)
}
