//! Finite-difference gradient checking in f64.

use wgrnn_core::{Error, Result, Tensor, TensorMap};

/// How [`gradcheck`] perturbs and compares.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GradcheckOptions {
    /// Step of the fourth-order central difference
    /// `(8(L(p+e) − L(p−e)) − (L(p+2e) − L(p−2e))) / 12e`. Its truncation error is
    /// e⁴·|L⁽⁵⁾|/30 and its rounding error about 1.5·u·|L|/e (u = 2^-53): with e = 1e-4 both stay
    /// near 1e-12·max(1, |L|), far below the 1e-6 the tests ask, even for losses summing thousands
    /// of outputs, where the plain two-point difference would be rounding-limited near 1e-7.
    pub eps: f64,
    /// Denominator floor of the relative error `|a − n| / max(|a|, |n|, floor)`, so that
    /// gradients near zero are judged absolutely rather than by the ratio of two roundings.
    pub floor: f64,
    /// Check at most this many entries per tensor (evenly spread); `None` checks all.
    pub max_per_tensor: Option<usize>,
}

impl Default for GradcheckOptions {
    fn default() -> Self {
        Self {
            eps: 1e-4,
            floor: 1e-3,
            max_per_tensor: None,
        }
    }
}

/// The worst entry found by [`gradcheck`].
#[derive(Clone, Debug, PartialEq)]
pub struct GradcheckReport {
    pub worst_rel_error: f64,
    /// Tensor and flat index of the worst entry.
    pub param: String,
    pub index: usize,
    pub analytic: f64,
    pub numeric: f64,
    /// Number of entries compared.
    pub checked: usize,
}

impl std::fmt::Display for GradcheckReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "worst relative error {:.3e} at {}[{}] (analytic {:.9e}, numeric {:.9e}) over {} entries",
            self.worst_rel_error, self.param, self.index, self.analytic, self.numeric, self.checked
        )
    }
}

/// Compares `analytic` gradients of a scalar `loss` with fourth-order central finite differences,
/// entry by entry, for every tensor of `inputs` (inputs and parameters alike, by name). `loss` is called
/// with a copy of `inputs` in which one entry is moved by ±ε.
pub fn gradcheck<F>(
    inputs: &TensorMap<f64>,
    analytic: &TensorMap<f64>,
    mut loss: F,
    opts: GradcheckOptions,
) -> Result<GradcheckReport>
where
    F: FnMut(&TensorMap<f64>) -> Result<f64>,
{
    // A step of 0, inf or NaN gives NaN differences, and a floor of 0 judges two exact zeros
    // by 0/0: the report would read as a failure with nothing wrong.
    let bad = |field: &'static str, value: String, domain: &str| Error::InvalidConfig {
        config: "GradcheckOptions",
        field,
        reason: format!("is {value}, must be {domain}"),
    };
    if !(opts.eps.is_finite() && opts.eps > 0.0) {
        return Err(bad("eps", opts.eps.to_string(), "finite and > 0"));
    }
    if !(opts.floor.is_finite() && opts.floor > 0.0) {
        return Err(bad("floor", opts.floor.to_string(), "finite and > 0"));
    }
    if opts.max_per_tensor == Some(0) {
        return Err(bad(
            "max_per_tensor",
            "Some(0)".into(),
            "None or at least 1",
        ));
    }
    let mut report = GradcheckReport {
        worst_rel_error: 0.0,
        param: String::new(),
        index: 0,
        analytic: 0.0,
        numeric: 0.0,
        checked: 0,
    };
    let mut probe = inputs.clone();
    for (name, t) in inputs {
        let g: &Tensor<f64> = analytic.get(name).ok_or_else(|| Error::MissingTensor {
            op: "gradcheck",
            name: name.clone(),
        })?;
        if g.shape() != t.shape() {
            return Err(Error::shape(
                "gradcheck",
                name.clone(),
                t.shape(),
                g.shape(),
            ));
        }
        let n = t.numel();
        let step = opts.max_per_tensor.map_or(1, |m| n.div_ceil(m).max(1));
        for i in (0..n).step_by(step) {
            let orig = t.data()[i];
            let mut at = |v: f64| -> Result<f64> {
                probe
                    .get_mut(name)
                    .map(|p| p.data_mut()[i] = v)
                    .ok_or_else(|| Error::MissingTensor {
                        op: "gradcheck",
                        name: name.clone(),
                    })?;
                loss(&probe)
            };
            let e = opts.eps;
            let near = at(orig + e)? - at(orig - e)?;
            let far = at(orig + 2.0 * e)? - at(orig - 2.0 * e)?;
            let numeric = (8.0 * near - far) / (12.0 * e);
            at(orig)?;
            let a = g.data()[i];
            let err = (a - numeric).abs() / a.abs().max(numeric.abs()).max(opts.floor);
            report.checked += 1;
            if err > report.worst_rel_error || err.is_nan() {
                report = GradcheckReport {
                    worst_rel_error: err,
                    param: name.clone(),
                    index: i,
                    analytic: a,
                    numeric,
                    checked: report.checked,
                };
            }
        }
    }
    Ok(report)
}

/// `Σ a·b`: the scalar loss whose gradient with respect to `a` is `b` (an upstream gradient).
pub fn dot(a: &Tensor<f64>, b: &Tensor<f64>) -> f64 {
    a.data().iter().zip(b.data()).map(|(x, y)| x * y).sum()
}
