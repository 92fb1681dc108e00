//! Attention on the CPU reference: gradcheck of every score function with masks, and the mask
//! itself.

use wgrnn::core::{AttentionWeights, LoadOptions, SplitMix64, Tensor, TensorMap};
use wgrnn::cpu::gradcheck::dot;
use wgrnn::cpu::{
    AttentionInput, GradcheckOptions, attention_backward, attention_forward, gradcheck,
};
use wgrnn::{AttentionConfig, Score};

use crate::cases::SCORES;
use crate::common::random;

const GRADCHECK_REL: f64 = 1e-6;

fn config(score: Score) -> AttentionConfig {
    match score {
        // Query and key widths must agree for dot products; the value width is free.
        Score::Dot | Score::ScaledDot => AttentionConfig {
            score,
            query_size: 4,
            key_size: 4,
            value_size: 3,
            attn_size: 0,
        },
        _ => AttentionConfig {
            score,
            query_size: 4,
            key_size: 5,
            value_size: 3,
            attn_size: 6,
        },
    }
}

fn run<'a>(
    cfg: &AttentionConfig,
    m: &'a TensorMap<f64>,
    lens: &'a [usize],
) -> wgrnn::Result<(AttentionWeights<f64>, AttentionInput<'a, f64>)> {
    let w = AttentionWeights::from_tensors(cfg.clone(), m.clone(), &LoadOptions::non_strict())?;
    Ok((
        w,
        AttentionInput::new(&m["query"], &m["key"], &m["value"]).key_lengths(lens),
    ))
}

#[test]
fn gradcheck_every_score_with_masks() {
    for (i, score) in SCORES.into_iter().enumerate() {
        let cfg = config(score);
        let w = AttentionWeights::<f64>::init(cfg.clone(), 5 + i as u64).unwrap();
        let mut rng = SplitMix64::new(15 + i as u64);
        let (b, tq, tk) = (3, 2, 5);
        let mut inputs = w.tensors().clone();
        inputs.insert(
            "query".into(),
            random(&mut rng, &[b, tq, cfg.query_size], 1.0),
        );
        inputs.insert("key".into(), random(&mut rng, &[b, tk, cfg.key_size], 1.0));
        inputs.insert(
            "value".into(),
            random(&mut rng, &[b, tk, cfg.value_size], 1.0),
        );
        let lens = [5, 2, 4];
        let dctx = random(&mut rng, &[b, tq, cfg.value_size], 1.0);
        let dw = random(&mut rng, &[b, tq, tk], 1.0);
        let (w, input) = run(&cfg, &inputs, &lens).unwrap();
        let out = attention_forward(&w, input).unwrap();
        let g = attention_backward(&w, input, &out, &dctx, Some(&dw)).unwrap();
        let mut analytic = g.weights.into_tensors();
        analytic.insert("query".into(), g.dquery);
        analytic.insert("key".into(), g.dkey);
        analytic.insert("value".into(), g.dvalue);
        let loss = |m: &TensorMap<f64>| {
            let (w, input) = run(&cfg, m, &lens)?;
            let out = attention_forward(&w, input)?;
            Ok(dot(&out.context, &dctx) + dot(&out.weights, &dw))
        };
        let r = gradcheck(&inputs, &analytic, loss, GradcheckOptions::default()).unwrap();
        assert!(r.worst_rel_error < GRADCHECK_REL, "{score:?}: {r}");
    }
}

#[test]
fn masked_keys_get_zero_weight_and_rows_sum_to_one() {
    for score in SCORES {
        let cfg = config(score);
        let w = AttentionWeights::<f64>::init(cfg.clone(), 9).unwrap();
        let mut rng = SplitMix64::new(10);
        let q = random(&mut rng, &[2, 3, cfg.query_size], 1.0);
        let k: Tensor<f64> = random(&mut rng, &[2, 4, cfg.key_size], 1.0);
        let v = random(&mut rng, &[2, 4, cfg.value_size], 1.0);
        let out =
            attention_forward(&w, AttentionInput::new(&q, &k, &v).key_lengths(&[1, 3])).unwrap();
        for (row, ws) in out.weights.data().chunks(4).enumerate() {
            let len = if row < 3 { 1 } else { 3 };
            assert!(
                ws[len..].iter().all(|x| *x == 0.0),
                "{score:?} row {row}: {ws:?}"
            );
            assert!(
                (ws.iter().sum::<f64>() - 1.0).abs() < 1e-12,
                "{score:?} row {row}: {ws:?}"
            );
        }
        // With one valid key the context is that key's value.
        assert_eq!(
            &out.context.data()[..cfg.value_size],
            &v.data()[..cfg.value_size]
        );
    }
}
