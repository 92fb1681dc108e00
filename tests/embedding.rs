//! Embedding on the CPU reference: gradcheck, repeated ids, padding_idx.

use wgrnn::EmbeddingConfig;
use wgrnn::core::{EmbeddingWeights, LoadOptions, SplitMix64, Tensor, TensorMap};
use wgrnn::cpu::gradcheck::dot;
use wgrnn::cpu::{GradcheckOptions, embedding_backward, embedding_forward, gradcheck};

use crate::common::random;

const GRADCHECK_REL: f64 = 1e-6;

fn ids(rng: &mut SplitMix64, shape: &[usize], vocab: usize) -> Tensor<i64> {
    Tensor::from_fn(shape.to_vec(), |_| rng.below(vocab) as i64).unwrap()
}

#[test]
fn gradcheck_with_repeated_ids() {
    let cfg = EmbeddingConfig::new(7, 5);
    let w = EmbeddingWeights::<f64>::init(cfg.clone(), 1).unwrap();
    let mut rng = SplitMix64::new(2);
    let mut ids = ids(&mut rng, &[4, 3], 7);
    ids.data_mut()[0] = ids.data()[5]; // a repeat: its gradient rows must add up
    let dy = random(&mut rng, &[4, 3, 5], 1.0);
    let g = embedding_backward(&w, &ids, &dy).unwrap();
    let loss = |m: &TensorMap<f64>| {
        let w = EmbeddingWeights::from_tensors(cfg.clone(), m.clone(), &LoadOptions::strict())?;
        Ok(dot(&embedding_forward(&w, &ids)?, &dy))
    };
    let r = gradcheck(w.tensors(), g.tensors(), loss, GradcheckOptions::default()).unwrap();
    assert!(r.worst_rel_error < GRADCHECK_REL, "{r}");
}

#[test]
fn padding_row_reads_but_gets_no_gradient() {
    let plain = EmbeddingWeights::<f64>::init(EmbeddingConfig::new(6, 3), 3).unwrap();
    let cfg = EmbeddingConfig::new(6, 3).padding_idx(Some(2));
    // PyTorch zeroes the padding row at init.
    let init = EmbeddingWeights::<f64>::init(cfg.clone(), 3).unwrap();
    assert!(
        init.get("weight").unwrap().data()[6..9]
            .iter()
            .all(|v| *v == 0.0)
    );
    let w = EmbeddingWeights::from_tensors(cfg, plain.tensors().clone(), &LoadOptions::strict())
        .unwrap();
    let ids = Tensor::new([5], vec![2, 0, 2, 5, 0]).unwrap();
    let y = embedding_forward(&w, &ids).unwrap();
    assert_eq!(
        &y.data()[0..3],
        &plain.get("weight").unwrap().data()[6..9],
        "the padding row is still read"
    );
    let mut rng = SplitMix64::new(4);
    let dy = random(&mut rng, &[5, 3], 1.0);
    let g = embedding_backward(&w, &ids, &dy).unwrap();
    let g_plain = embedding_backward(&plain, &ids, &dy).unwrap();
    let (gw, gp) = (
        g.get("weight").unwrap().data(),
        g_plain.get("weight").unwrap().data(),
    );
    assert!(
        gw[6..9].iter().all(|v| *v == 0.0),
        "padding row gradient {:?}",
        &gw[6..9]
    );
    assert!(
        gp[6..9].iter().any(|v| *v != 0.0),
        "without padding_idx the row does get a gradient"
    );
    assert_eq!(&gw[..6], &gp[..6]);
    assert_eq!(&gw[9..], &gp[9..]);
}
