//! Log-softmax and the fused softmax cross-entropy, mean over the targets that are not ignored
//! (PyTorch's `F.cross_entropy(reduction="mean", ignore_index=…)` with classes on the last axis).

use wgrnn_core::{Error, Real, Result, Tensor};

/// Rows and classes of `logits [..., C]`, checked against `targets [...]`.
fn check(
    op: &'static str,
    logits: &Tensor<impl Copy>,
    targets: &Tensor<i64>,
) -> Result<(usize, usize)> {
    let Some((&c, lead)) = logits.shape().split_last() else {
        return Err(Error::InvalidArgument {
            op,
            arg: "logits",
            reason: "must have at least one axis".into(),
        });
    };
    if c == 0 {
        return Err(Error::InvalidArgument {
            op,
            arg: "logits",
            reason: "needs at least one class".into(),
        });
    }
    if targets.shape() != lead {
        return Err(Error::shape(op, "targets", lead, targets.shape()));
    }
    Ok((targets.numel(), c))
}

/// Log-softmax over the last axis, computed as `x − max − ln Σ exp(x − max)` for stability.
pub fn log_softmax<T: Real>(logits: &Tensor<T>) -> Result<Tensor<T>> {
    let c = *logits.shape().last().ok_or(Error::InvalidArgument {
        op: "log_softmax",
        arg: "logits",
        reason: "must have at least one axis".into(),
    })?;
    if c == 0 {
        return Err(Error::InvalidArgument {
            op: "log_softmax",
            arg: "logits",
            reason: "needs at least one class".into(),
        });
    }
    let mut out = logits.data().to_vec();
    for row in out.chunks_exact_mut(c) {
        let m = row.iter().copied().fold(T::neg_infinity(), T::max);
        let lse = row.iter().map(|&v| (v - m).exp()).sum::<T>().ln() + m;
        row.iter_mut().for_each(|v| *v -= lse);
    }
    Tensor::new(logits.shape().to_vec(), out)
}

/// Result of [`cross_entropy`].
#[derive(Clone, Debug, PartialEq)]
pub struct CrossEntropyOutput<T> {
    /// Mean negative log-likelihood over counted targets; 0 when every target is ignored.
    pub loss: T,
    /// Number of targets that are not `ignore_index`.
    pub count: usize,
}

fn check_targets(
    op: &'static str,
    targets: &Tensor<i64>,
    classes: usize,
    ignore_index: Option<i64>,
) -> Result<()> {
    for (index, &id) in targets.data().iter().enumerate() {
        if Some(id) != ignore_index && (id < 0 || id as u64 >= classes as u64) {
            return Err(Error::IdOutOfRange {
                op,
                arg: "targets",
                index,
                id,
                limit: classes,
            });
        }
    }
    Ok(())
}

/// `mean_k −log_softmax(logits[k])[targets[k]]` over k with `targets[k] ≠ ignore_index`.
pub fn cross_entropy<T: Real>(
    logits: &Tensor<T>,
    targets: &Tensor<i64>,
    ignore_index: Option<i64>,
) -> Result<CrossEntropyOutput<T>> {
    let (_, c) = check("cross_entropy", logits, targets)?;
    check_targets("cross_entropy", targets, c, ignore_index)?;
    let lp = log_softmax(logits)?;
    let mut sum = T::zero();
    let mut count = 0;
    for (k, &id) in targets.data().iter().enumerate() {
        if Some(id) != ignore_index {
            sum -= lp.data()[k * c + id as usize];
            count += 1;
        }
    }
    let loss = if count == 0 {
        T::zero()
    } else {
        sum / T::from_f64(count as f64)
    };
    Ok(CrossEntropyOutput { loss, count })
}

/// Gradient of [`cross_entropy`] with respect to the logits, scaled by `dloss`:
/// `(softmax − onehot)·dloss/count` on counted rows, 0 on ignored rows.
pub fn cross_entropy_backward<T: Real>(
    logits: &Tensor<T>,
    targets: &Tensor<i64>,
    ignore_index: Option<i64>,
    dloss: T,
) -> Result<Tensor<T>> {
    let (_, c) = check("cross_entropy_backward", logits, targets)?;
    check_targets("cross_entropy_backward", targets, c, ignore_index)?;
    let count = targets
        .data()
        .iter()
        .filter(|&&id| Some(id) != ignore_index)
        .count();
    let mut g = log_softmax(logits)?.into_data();
    let scale = if count == 0 {
        T::zero()
    } else {
        dloss / T::from_f64(count as f64)
    };
    for (row, &id) in g.chunks_exact_mut(c).zip(targets.data()) {
        if Some(id) == ignore_index {
            row.fill(T::zero());
            continue;
        }
        row.iter_mut().for_each(|v| *v = v.exp() * scale);
        row[id as usize] -= scale;
    }
    Tensor::new(logits.shape().to_vec(), g)
}
