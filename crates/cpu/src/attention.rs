//! Attention of queries `[B, Tq, Dq]` over keys `[B, Tk, Dk]` and values `[B, Tk, Dv]` with Luong
//! dot, scaled dot, Luong general or Bahdanau additive scores, masked by key lengths.
//!
//! scores → softmax over the unmasked keys → `weights [B, Tq, Tk]` → `context = weights·value`.
//! Masked keys get weight exactly 0.

use wgrnn_core::{
    AttentionWeights, Error, LoadOptions, Real, Result, Score, Tensor, TensorMap,
    tensor::expect_shape,
};

use crate::gemm::{Mat, gemm, gemm_acc};

const OP: &str = "attention_forward";

/// Inputs of one attention call. `key_lengths` defaults to Tk for every batch entry.
#[derive(Clone, Copy, Debug)]
pub struct AttentionInput<'a, T> {
    pub query: &'a Tensor<T>,
    pub key: &'a Tensor<T>,
    pub value: &'a Tensor<T>,
    pub key_lengths: Option<&'a [usize]>,
}

impl<'a, T> AttentionInput<'a, T> {
    pub fn new(query: &'a Tensor<T>, key: &'a Tensor<T>, value: &'a Tensor<T>) -> Self {
        Self {
            query,
            key,
            value,
            key_lengths: None,
        }
    }

    pub fn key_lengths(mut self, l: &'a [usize]) -> Self {
        self.key_lengths = Some(l);
        self
    }
}

/// `context [B, Tq, Dv]` and the attention `weights [B, Tq, Tk]`.
#[derive(Clone, Debug, PartialEq)]
pub struct AttentionOutput<T> {
    pub context: Tensor<T>,
    pub weights: Tensor<T>,
}

/// Gradients for query, key, value and the score's parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct AttentionGrads<T> {
    pub dquery: Tensor<T>,
    pub dkey: Tensor<T>,
    pub dvalue: Tensor<T>,
    pub weights: AttentionWeights<T>,
}

/// Batch, query length, key length of a call.
#[derive(Clone, Copy, Debug)]
struct Dims {
    b: usize,
    tq: usize,
    tk: usize,
}

fn check<T: Real>(
    op: &'static str,
    w: &AttentionWeights<T>,
    input: &AttentionInput<'_, T>,
) -> Result<(Dims, Vec<usize>)> {
    let cfg = w.config();
    cfg.validate()?;
    let rank3 = |arg: &'static str, t: &Tensor<T>| -> Result<[usize; 3]> {
        <[usize; 3]>::try_from(t.shape()).map_err(|_| Error::InvalidArgument {
            op,
            arg,
            reason: format!("must have rank 3 [B, T, D], has shape {:?}", t.shape()),
        })
    };
    let [b, tq, dq] = rank3("query", input.query)?;
    let [_, tk, _] = rank3("key", input.key)?;
    if b == 0 || tq == 0 || tk == 0 {
        return Err(Error::InvalidArgument {
            op,
            arg: "query",
            reason: format!(
                "needs B, Tq, Tk ≥ 1, query is {:?}, key is {:?}",
                input.query.shape(),
                input.key.shape()
            ),
        });
    }
    if dq != cfg.query_size {
        return Err(Error::shape(
            op,
            "query",
            &[b, tq, cfg.query_size],
            input.query.shape(),
        ));
    }
    expect_shape(op, "key", input.key, &[b, tk, cfg.key_size])?;
    expect_shape(op, "value", input.value, &[b, tk, cfg.value_size])?;
    let lens = match input.key_lengths {
        None => vec![tk; b],
        Some(l) => {
            if l.len() != b {
                return Err(Error::shape(op, "key_lengths", &[b], &[l.len()]));
            }
            if let Some((index, &value)) = l.iter().enumerate().find(|(_, v)| **v == 0 || **v > tk)
            {
                return Err(Error::Length {
                    op,
                    arg: "key_lengths",
                    index,
                    value,
                    max: tk,
                });
            }
            l.to_vec()
        }
    };
    Ok((Dims { b, tq, tk }, lens))
}

/// Keys as the score sees them, per batch entry: `k` (dot), `W·k` (general, width Dq), or
/// `W_k·k` (additive, width A); and the queries likewise (`q`, or `W_q·q` for additive).
fn projected<T: Real>(
    w: &AttentionWeights<T>,
    q: &[T],
    k: &[T],
    tq: usize,
    tk: usize,
) -> Result<(Vec<T>, Vec<T>)> {
    let cfg = w.config();
    Ok(match cfg.score {
        Score::Dot | Score::ScaledDot => (q.to_vec(), k.to_vec()),
        Score::General => (
            q.to_vec(),
            gemm(
                Mat::new(k, tk, cfg.key_size),
                Mat::new(w.get("weight")?.data(), cfg.query_size, cfg.key_size).t(),
            )?,
        ),
        Score::Additive => (
            gemm(
                Mat::new(q, tq, cfg.query_size),
                Mat::new(w.get("w_query")?.data(), cfg.attn_size, cfg.query_size).t(),
            )?,
            gemm(
                Mat::new(k, tk, cfg.key_size),
                Mat::new(w.get("w_key")?.data(), cfg.attn_size, cfg.key_size).t(),
            )?,
        ),
    })
}

fn scale<T: Real>(w: &AttentionWeights<T>) -> T {
    match w.config().score {
        Score::ScaledDot => T::one() / T::from_f64(w.config().key_size as f64).sqrt(),
        _ => T::one(),
    }
}

pub fn attention_forward<T: Real>(
    w: &AttentionWeights<T>,
    input: AttentionInput<'_, T>,
) -> Result<AttentionOutput<T>> {
    let (Dims { b, tq, tk }, lens) = check(OP, w, &input)?;
    let cfg = w.config();
    let (dq, dk, dv) = (cfg.query_size, cfg.key_size, cfg.value_size);
    let mut weights = vec![T::zero(); b * tq * tk];
    let mut context = vec![T::zero(); b * tq * dv];
    for bi in 0..b {
        let q = &input.query.data()[bi * tq * dq..(bi + 1) * tq * dq];
        let k = &input.key.data()[bi * tk * dk..(bi + 1) * tk * dk];
        let v = &input.value.data()[bi * tk * dv..(bi + 1) * tk * dv];
        let (qp, kp) = projected(w, q, k, tq, tk)?;
        let width = qp.len() / tq;
        let wb = &mut weights[bi * tq * tk..(bi + 1) * tq * tk];
        for i in 0..tq {
            let qi = &qp[i * width..(i + 1) * width];
            let row = &mut wb[i * tk..(i + 1) * tk];
            for (j, s) in row.iter_mut().enumerate().take(lens[bi]) {
                let kj = &kp[j * width..(j + 1) * width];
                *s = match cfg.score {
                    Score::Additive => {
                        let va = w.get("v")?.data();
                        qi.iter()
                            .zip(kj)
                            .zip(va)
                            .map(|((a, c), vv)| *vv * (*a + *c).tanh())
                            .sum()
                    }
                    _ => qi.iter().zip(kj).map(|(a, c)| *a * *c).sum::<T>() * scale(w),
                };
            }
            softmax_prefix(row, lens[bi]);
        }
        gemm_acc(
            Mat::new(wb, tq, tk),
            Mat::new(v, tk, dv),
            &mut context[bi * tq * dv..(bi + 1) * tq * dv],
        );
    }
    Ok(AttentionOutput {
        context: Tensor::new([b, tq, dv], context)?,
        weights: Tensor::new([b, tq, tk], weights)?,
    })
}

/// Softmax over `row[..len]` in place; `row[len..]` becomes 0.
fn softmax_prefix<T: Real>(row: &mut [T], len: usize) {
    let m = row[..len].iter().copied().fold(T::neg_infinity(), T::max);
    let mut sum = T::zero();
    for s in &mut row[..len] {
        *s = (*s - m).exp();
        sum += *s;
    }
    row[..len].iter_mut().for_each(|s| *s /= sum);
    row[len..].fill(T::zero());
}

/// Backward of [`attention_forward`] given its input and output and the upstream gradients of
/// the context and (optionally) of the weights.
pub fn attention_backward<T: Real>(
    w: &AttentionWeights<T>,
    input: AttentionInput<'_, T>,
    output: &AttentionOutput<T>,
    d_context: &Tensor<T>,
    d_weights: Option<&Tensor<T>>,
) -> Result<AttentionGrads<T>> {
    const BOP: &str = "attention_backward";
    let (Dims { b, tq, tk }, lens) = check(BOP, w, &input)?;
    let cfg = w.config();
    let (dq, dk, dv) = (cfg.query_size, cfg.key_size, cfg.value_size);
    expect_shape(BOP, "output.weights", &output.weights, &[b, tq, tk])?;
    expect_shape(BOP, "d_context", d_context, &[b, tq, dv])?;
    if let Some(dw) = d_weights {
        expect_shape(BOP, "d_weights", dw, &[b, tq, tk])?;
    }
    let mut gq = vec![T::zero(); b * tq * dq];
    let mut gk = vec![T::zero(); b * tk * dk];
    let mut gv = vec![T::zero(); b * tk * dv];
    let mut gparams: TensorMap<T> = cfg
        .param_specs()
        .into_iter()
        .map(|s| Ok((s.name, Tensor::zeros(s.shape)?)))
        .collect::<Result<_>>()?;
    for bi in 0..b {
        let q = &input.query.data()[bi * tq * dq..(bi + 1) * tq * dq];
        let k = &input.key.data()[bi * tk * dk..(bi + 1) * tk * dk];
        let v = &input.value.data()[bi * tk * dv..(bi + 1) * tk * dv];
        let a = &output.weights.data()[bi * tq * tk..(bi + 1) * tq * tk];
        let dctx = &d_context.data()[bi * tq * dv..(bi + 1) * tq * dv];
        // dvalue = weightsᵀ·dcontext; dweights = dcontext·valueᵀ (+ upstream).
        gemm_acc(
            Mat::new(a, tq, tk).t(),
            Mat::new(dctx, tq, dv),
            &mut gv[bi * tk * dv..(bi + 1) * tk * dv],
        );
        let mut da = gemm(Mat::new(dctx, tq, dv), Mat::new(v, tk, dv).t())?;
        if let Some(dw) = d_weights {
            da.iter_mut()
                .zip(&dw.data()[bi * tq * tk..(bi + 1) * tq * tk])
                .for_each(|(x, y)| *x += *y);
        }
        // Softmax backward: ds = a ⊙ (da − Σ a·da); masked keys have a = 0, so ds = 0 there.
        let mut ds = vec![T::zero(); tq * tk];
        for i in 0..tq {
            let (ar, dar) = (&a[i * tk..(i + 1) * tk], &da[i * tk..(i + 1) * tk]);
            let dot: T = ar.iter().zip(dar).map(|(x, y)| *x * *y).sum();
            for j in 0..lens[bi] {
                ds[i * tk + j] = ar[j] * (dar[j] - dot);
            }
        }
        let (qp, kp) = projected(w, q, k, tq, tk)?;
        let width = qp.len() / tq;
        let gq_b = &mut gq[bi * tq * dq..(bi + 1) * tq * dq];
        let gk_b = &mut gk[bi * tk * dk..(bi + 1) * tk * dk];
        match cfg.score {
            Score::Dot | Score::ScaledDot | Score::General => {
                let sc = scale(w);
                ds.iter_mut().for_each(|x| *x *= sc);
                // s = q·kpᵀ: dq = ds·kp, dkp = dsᵀ·q.
                gemm_acc(Mat::new(&ds, tq, tk), Mat::new(&kp, tk, width), gq_b);
                let dkp = gemm(Mat::new(&ds, tq, tk).t(), Mat::new(q, tq, dq))?;
                if cfg.score == Score::General {
                    // kp = k·Wᵀ: dk = dkp·W, dW = dkpᵀ·k.
                    gemm_acc(
                        Mat::new(&dkp, tk, dq),
                        Mat::new(w.get("weight")?.data(), dq, dk),
                        gk_b,
                    );
                    let gw = gparams.get_mut("weight").map(|t| t.data_mut()).ok_or(
                        Error::MissingTensor {
                            op: BOP,
                            name: "weight".into(),
                        },
                    )?;
                    gemm_acc(Mat::new(&dkp, tk, dq).t(), Mat::new(k, tk, dk), gw);
                } else {
                    gk_b.iter_mut().zip(&dkp).for_each(|(x, y)| *x += *y);
                }
            }
            Score::Additive => {
                let att = cfg.attn_size;
                let va = w.get("v")?.data();
                let mut dqa = vec![T::zero(); tq * att];
                let mut dka = vec![T::zero(); tk * att];
                let mut dva = vec![T::zero(); att];
                for i in 0..tq {
                    for j in 0..lens[bi] {
                        let d = ds[i * tk + j];
                        for c in 0..att {
                            let u = (qp[i * att + c] + kp[j * att + c]).tanh();
                            dva[c] += d * u;
                            let du = d * va[c] * (T::one() - u * u);
                            dqa[i * att + c] += du;
                            dka[j * att + c] += du;
                        }
                    }
                }
                let wq = w.get("w_query")?.data();
                let wk = w.get("w_key")?.data();
                gemm_acc(Mat::new(&dqa, tq, att), Mat::new(wq, att, dq), gq_b);
                gemm_acc(Mat::new(&dka, tk, att), Mat::new(wk, att, dk), gk_b);
                let mut acc = |name: &str, m: Vec<T>| -> Result<()> {
                    let t = gparams.get_mut(name).ok_or(Error::MissingTensor {
                        op: BOP,
                        name: name.into(),
                    })?;
                    t.data_mut().iter_mut().zip(m).for_each(|(x, y)| *x += y);
                    Ok(())
                };
                acc(
                    "w_query",
                    gemm(Mat::new(&dqa, tq, att).t(), Mat::new(q, tq, dq))?,
                )?;
                acc(
                    "w_key",
                    gemm(Mat::new(&dka, tk, att).t(), Mat::new(k, tk, dk))?,
                )?;
                acc("v", dva)?;
            }
        }
    }
    Ok(AttentionGrads {
        dquery: Tensor::new([b, tq, dq], gq)?,
        dkey: Tensor::new([b, tk, dk], gk)?,
        dvalue: Tensor::new([b, tk, dv], gv)?,
        weights: AttentionWeights::from_tensors(cfg.clone(), gparams, &LoadOptions::strict())?,
    })
}
