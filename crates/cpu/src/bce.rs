//! Binary cross-entropy on logits (PyTorch `nn.BCEWithLogitsLoss`,
//! `F.binary_cross_entropy_with_logits`), with an optional mask of ignored elements.
//!
//! Element i's loss is `−wᵢ·[pᵢ·yᵢ·log σ(xᵢ) + (1 − yᵢ)·log(1 − σ(xᵢ))]` with `wᵢ` the optional
//! `weight` (the logits' shape) and `pᵢ` the optional `pos_weight` of i's class (the last
//! axis). It is computed as `wᵢ·[pᵢ·yᵢ·softplus(−xᵢ) + (1 − yᵢ)·softplus(xᵢ)]`, since
//! `−log σ(x) = softplus(−x)` and `−log(1 − σ(x)) = softplus(x)`, with
//! `softplus(z) = max(z, 0) + log1p(exp(−|z|))`: finite and exact to rounding for any finite x.
//! Targets may be any real (soft labels), as in PyTorch.
//!
//! **Masking.** Where `mask` is false the element is ignored: its loss and gradient are 0, and
//! its logit, target and weight are never read into the result (NaN there changes nothing).
//! `Mean` divides by the number of counted elements (all of them without a mask, as PyTorch
//! divides by numel); when none counts the loss is 0 and the gradient 0, never NaN.

use wgrnn_core::{Error, Real, Reduction, Result, Tensor};

/// The inputs of [`binary_cross_entropy_with_logits`]: `logits` and `targets` of one shape,
/// optional `weight` (same shape), `pos_weight` `[C]` (C the logits' last axis) and `mask`
/// (same shape; false ignores the element).
#[derive(Clone, Copy, Debug)]
pub struct BceInput<'a, T> {
    pub logits: &'a Tensor<T>,
    pub targets: &'a Tensor<T>,
    pub weight: Option<&'a Tensor<T>>,
    pub pos_weight: Option<&'a Tensor<T>>,
    pub mask: Option<&'a Tensor<bool>>,
}

impl<'a, T> BceInput<'a, T> {
    pub fn new(logits: &'a Tensor<T>, targets: &'a Tensor<T>) -> Self {
        Self {
            logits,
            targets,
            weight: None,
            pos_weight: None,
            mask: None,
        }
    }

    pub fn weight(mut self, weight: &'a Tensor<T>) -> Self {
        self.weight = Some(weight);
        self
    }

    pub fn pos_weight(mut self, pos_weight: &'a Tensor<T>) -> Self {
        self.pos_weight = Some(pos_weight);
        self
    }

    pub fn mask(mut self, mask: &'a Tensor<bool>) -> Self {
        self.mask = Some(mask);
        self
    }
}

/// Result of [`binary_cross_entropy_with_logits`].
#[derive(Clone, Debug, PartialEq)]
pub struct BceOutput<T> {
    /// Shape `[]` for `Mean` and `Sum`; the logits' shape for `None` (0 where ignored).
    pub loss: Tensor<T>,
    /// The elements that count (not masked out).
    pub count: usize,
}

/// The classes (the last axis; 1 without `pos_weight`) after checking every shape.
fn check<T: Real>(op: &'static str, input: &BceInput<T>) -> Result<usize> {
    let shape = input.logits.shape();
    if input.targets.shape() != shape {
        return Err(Error::shape(op, "targets", shape, input.targets.shape()));
    }
    if let Some(w) = input.weight.filter(|w| w.shape() != shape) {
        return Err(Error::shape(op, "weight", shape, w.shape()));
    }
    if let Some(m) = input.mask.filter(|m| m.shape() != shape) {
        return Err(Error::shape(op, "mask", shape, m.shape()));
    }
    let Some(pw) = input.pos_weight else {
        return Ok(1);
    };
    let Some(&c) = shape.last() else {
        return Err(Error::invalid_argument(
            op,
            "pos_weight",
            "needs logits with a class axis (the last); the logits are a scalar",
        ));
    };
    if pw.shape() != [c] {
        return Err(Error::shape(op, "pos_weight", &[c], pw.shape()));
    }
    Ok(c.max(1))
}

/// Element i's weight and positive weight, or `None` where the mask ignores it.
fn factors<T: Real>(input: &BceInput<T>, classes: usize, i: usize) -> Option<(T, T)> {
    if input.mask.is_some_and(|m| !m.data()[i]) {
        return None;
    }
    let w = input.weight.map_or(T::one(), |w| w.data()[i]);
    let pw = input.pos_weight.map_or(T::one(), |p| p.data()[i % classes]);
    Some((w, pw))
}

/// `w·[pw·y·softplus(−x) + (1 − y)·softplus(x)]`, the two softplus sharing `log1p(exp(−|x|))`.
fn element_loss<T: Real>(x: T, y: T, w: T, pw: T) -> T {
    let shared = (-x.abs()).exp().ln_1p();
    let sp_neg = (-x).max(T::zero()) + shared;
    let sp_pos = x.max(T::zero()) + shared;
    w * (pw * y * sp_neg + (T::one() - y) * sp_pos)
}

/// σ(x) without overflow: exp of a non-positive number only.
fn sigmoid<T: Real>(x: T) -> T {
    if x >= T::zero() {
        T::one() / (T::one() + (-x).exp())
    } else {
        let e = x.exp();
        e / (T::one() + e)
    }
}

/// The BCE-with-logits loss (see the module documentation), reduced by `reduction`.
pub fn binary_cross_entropy_with_logits<T: Real>(
    input: BceInput<T>,
    reduction: Reduction,
) -> Result<BceOutput<T>> {
    const OP: &str = "binary_cross_entropy_with_logits";
    let classes = check(OP, &input)?;
    let mut losses = crate::zeroed::<T>(OP, "loss", input.logits.shape())?;
    let mut count = 0;
    for (i, l) in losses.iter_mut().enumerate() {
        if let Some((w, pw)) = factors(&input, classes, i) {
            *l = element_loss(input.logits.data()[i], input.targets.data()[i], w, pw);
            count += 1;
        }
    }
    let sum = || losses.iter().copied().sum::<T>();
    let loss = match reduction {
        Reduction::None => Tensor::new(input.logits.shape().to_vec(), losses)?,
        Reduction::Sum => Tensor::new([], vec![sum()])?,
        Reduction::Mean if count == 0 => Tensor::new([], vec![T::zero()])?,
        Reduction::Mean => Tensor::new([], vec![sum() / T::from_f64(count as f64)])?,
    };
    Ok(BceOutput { loss, count })
}

/// The gradient of [`binary_cross_entropy_with_logits`] with respect to the logits, given
/// `dloss` of the loss's shape (`[]` for `Mean` and `Sum`, the logits' for `None`):
/// `w·(σ(x)·(1 + (pw − 1)·y) − pw·y)` times `dloss / count` (`Mean`), `dloss` (`Sum`) or
/// `dlossᵢ` (`None`); 0 where ignored.
pub fn binary_cross_entropy_with_logits_backward<T: Real>(
    input: BceInput<T>,
    reduction: Reduction,
    dloss: &Tensor<T>,
) -> Result<Tensor<T>> {
    const OP: &str = "binary_cross_entropy_with_logits_backward";
    let classes = check(OP, &input)?;
    let shape = input.logits.shape();
    let want: &[usize] = if reduction == Reduction::None {
        shape
    } else {
        &[]
    };
    if dloss.shape() != want {
        return Err(Error::shape(OP, "dloss", want, dloss.shape()));
    }
    let n = input.logits.numel();
    let count = (0..n)
        .filter(|&i| input.mask.is_none_or(|m| m.data()[i]))
        .count();
    let scale = |i: usize| match reduction {
        Reduction::None => dloss.data()[i],
        Reduction::Sum => dloss.data()[0],
        Reduction::Mean if count == 0 => T::zero(),
        Reduction::Mean => dloss.data()[0] / T::from_f64(count as f64),
    };
    let mut g = crate::zeroed::<T>(OP, "dlogits", shape)?;
    for (i, g) in g.iter_mut().enumerate() {
        if let Some((w, pw)) = factors(&input, classes, i) {
            let (x, y) = (input.logits.data()[i], input.targets.data()[i]);
            let d = sigmoid(x) * (T::one() + (pw - T::one()) * y) - pw * y;
            *g = w * d * scale(i);
        }
    }
    Tensor::new(shape.to_vec(), g)
}
