//! Dense layer `y = x·Wᵀ + b` over the last axis of `x`.

use wgrnn_core::{
    Error, LinearWeights, LoadOptions, Real, Result, Tensor, TensorMap, tensor::expect_shape,
};

use crate::gemm::{Mat, add_row_bias, col_sums_acc, gemm};

/// Gradients of a linear layer.
#[derive(Clone, Debug, PartialEq)]
pub struct LinearGrads<T> {
    pub dx: Tensor<T>,
    pub weights: LinearWeights<T>,
}

/// Rows of `x` (all leading axes flattened) after checking its last axis is `in_features`.
fn rows<T>(op: &'static str, x: &Tensor<T>, in_features: usize) -> Result<usize> {
    match x.shape().split_last() {
        Some((&f, lead)) if f == in_features && !lead.is_empty() => Ok(lead.iter().product()),
        _ => Err(Error::InvalidArgument {
            op,
            arg: "x",
            reason: format!(
                "must be [..., {in_features}] with at least one leading axis, has shape {:?}",
                x.shape()
            ),
        }),
    }
}

fn out_shape<T>(x: &Tensor<T>, f: usize) -> Vec<usize> {
    let mut s = x.shape().to_vec();
    if let Some(last) = s.last_mut() {
        *last = f;
    }
    s
}

/// `y [..., out] = x [..., in] · Wᵀ + b`.
pub fn linear_forward<T: Real>(w: &LinearWeights<T>, x: &Tensor<T>) -> Result<Tensor<T>> {
    let cfg = w.config();
    let n = rows("linear_forward", x, cfg.in_features)?;
    let mut y = gemm(
        Mat::new(x.data(), n, cfg.in_features),
        Mat::new(w.get("weight")?.data(), cfg.out_features, cfg.in_features).t(),
    )?;
    if cfg.bias {
        add_row_bias(&mut y, w.get("bias")?.data());
    }
    Tensor::new(out_shape(x, cfg.out_features), y)
}

/// `dx = dy·W`, `dW = dyᵀ·x`, `db = Σ rows of dy`.
pub fn linear_backward<T: Real>(
    w: &LinearWeights<T>,
    x: &Tensor<T>,
    dy: &Tensor<T>,
) -> Result<LinearGrads<T>> {
    let cfg = w.config();
    let (fi, fo) = (cfg.in_features, cfg.out_features);
    let n = rows("linear_backward", x, fi)?;
    expect_shape("linear_backward", "dy", dy, &out_shape(x, fo))?;
    let dx = gemm(
        Mat::new(dy.data(), n, fo),
        Mat::new(w.get("weight")?.data(), fo, fi),
    )?;
    let dw = gemm(Mat::new(dy.data(), n, fo).t(), Mat::new(x.data(), n, fi))?;
    let mut m = TensorMap::new();
    m.insert("weight".into(), Tensor::new([fo, fi], dw)?);
    if cfg.bias {
        let mut db = vec![T::zero(); fo];
        col_sums_acc(dy.data(), fo, &mut db);
        m.insert("bias".into(), Tensor::new([fo], db)?);
    }
    Ok(LinearGrads {
        dx: Tensor::new(x.shape().to_vec(), dx)?,
        weights: LinearWeights::from_tensors(cfg.clone(), m, &LoadOptions::strict())?,
    })
}
