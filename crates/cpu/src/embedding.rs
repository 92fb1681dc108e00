//! Embedding lookup: forward gathers rows, backward scatter-adds into the table's gradient.

use wgrnn_core::{
    EmbeddingWeights, Error, LoadOptions, Real, Result, Tensor, TensorMap, tensor::expect_shape,
};

/// Checks every id lies in `0..vocab`; the error names the first offending position.
pub fn check_ids(op: &'static str, ids: &Tensor<i64>, vocab: usize) -> Result<()> {
    if let Some((index, &id)) = ids
        .data()
        .iter()
        .enumerate()
        .find(|(_, id)| **id < 0 || **id as u64 >= vocab as u64)
    {
        return Err(Error::IdOutOfRange {
            op,
            arg: "ids",
            index,
            id,
            limit: vocab,
        });
    }
    Ok(())
}

/// `y[..., :] = weight[ids[...], :]`; `y` has shape `ids.shape() + [D]`.
pub fn embedding_forward<T: Real>(w: &EmbeddingWeights<T>, ids: &Tensor<i64>) -> Result<Tensor<T>> {
    let cfg = w.config();
    check_ids("embedding_forward", ids, cfg.num_embeddings)?;
    let d = cfg.embedding_dim;
    let table = w.get("weight")?.data();
    // ids × D may be far larger than the ids or the table: reserved fallibly.
    let mut shape = ids.shape().to_vec();
    shape.push(d);
    let mut y: Vec<T> = crate::zeroed("embedding_forward", "output", &shape)?;
    for (&id, row) in ids.data().iter().zip(y.chunks_exact_mut(d.max(1))) {
        let r = id as usize;
        row.copy_from_slice(&table[r * d..(r + 1) * d]);
    }
    Tensor::new(shape, y)
}

/// Gradient of the table: row `ids[k]` accumulates `dy[k]` for every position k, in position
/// order; the `padding_idx` row gets none.
pub fn embedding_backward<T: Real>(
    w: &EmbeddingWeights<T>,
    ids: &Tensor<i64>,
    dy: &Tensor<T>,
) -> Result<EmbeddingWeights<T>> {
    let cfg = w.config();
    check_ids("embedding_backward", ids, cfg.num_embeddings)?;
    let d = cfg.embedding_dim;
    let mut want = ids.shape().to_vec();
    want.push(d);
    expect_shape("embedding_backward", "dy", dy, &want)?;
    let mut g = vec![T::zero(); cfg.num_embeddings * d];
    for (k, &id) in ids.data().iter().enumerate() {
        let r = id as usize;
        if Some(r) == cfg.padding_idx {
            continue;
        }
        for (o, v) in g[r * d..(r + 1) * d]
            .iter_mut()
            .zip(&dy.data()[k * d..(k + 1) * d])
        {
            *o += *v;
        }
    }
    let mut m = TensorMap::new();
    m.insert("weight".into(), Tensor::new([cfg.num_embeddings, d], g)?);
    EmbeddingWeights::from_tensors(cfg.clone(), m, &LoadOptions::strict())
}
