//! The sentiment example's model on tiny data: a short training run lowers the loss with
//! either readout, a step is one submit, padding never changes a review's logit, inference is
//! deterministic, and the curve is written as a PNG of the promised size.

use crate::sentiment_data::data;
#[path = "../examples/sentiment/model.rs"]
#[allow(dead_code)]
mod model;
#[path = "../examples/sentiment/plots.rs"]
mod plots;

use model::{Batch, Model, ModelConfig, Readout};
use wgrnn::gpu::{Context, GpuTensor};

// `plots` reaches the examples' shared charts as `super::charts`.
use crate::charts;
use crate::common::png_size;
use crate::gpu::ctx;

fn loss(ctx: &Context, t: &GpuTensor) -> f32 {
    ctx.read(t).unwrap().data()[0]
}

fn small(readout: Readout, seed: u64) -> ModelConfig {
    ModelConfig {
        embed: 8,
        hidden: 16,
        readout,
        dropout: 0.2,
        lr: 0.02,
        seed,
    }
}

const READOUTS: [Readout; 2] = [Readout::FinalStates, Readout::MeanPool];

#[test]
fn training_lowers_the_loss_with_either_readout() {
    let _watch = crate::validation::watch();
    let ctx = ctx();
    let (train, _) = data::generate(40, 3);
    let batch = Batch::new(&train[..32]).unwrap();
    for readout in READOUTS {
        let mut m = Model::new(ctx, small(readout, 5)).unwrap();
        let first = loss(ctx, &m.train_step(ctx, &batch).unwrap());
        let mut last = first;
        for _ in 0..30 {
            last = loss(ctx, &m.train_step(ctx, &batch).unwrap());
        }
        eprintln!("sentiment {readout:?}: loss {first} -> {last} after 30 steps");
        // Balanced labels and a near-zero logit start the loss near ln 2 = 0.69; 30 Adam steps
        // on one batch of 32 must at least halve it (a broken gradient anywhere in the chain,
        // dropout's mask included, stalls it near ln 2).
        assert!(
            (0.6..0.8).contains(&first) && last < first / 2.0,
            "{readout:?}: loss {first} -> {last}"
        );
    }
}

/// The training step is one recording: one submit.
#[test]
fn a_training_step_submits_once() {
    let _watch = crate::validation::watch();
    let own = crate::recording::own();
    let ctx: &Context = &own;
    let (train, _) = data::generate(20, 3);
    let batch = Batch::new(&train[..8]).unwrap();
    for readout in READOUTS {
        let mut m = Model::new(ctx, small(readout, 2)).unwrap();
        let before = ctx.submits();
        let l = m.train_step(ctx, &batch).unwrap();
        assert_eq!(ctx.submits() - before, 1, "{readout:?}");
        assert!(loss(ctx, &l).is_finite());
    }
}

/// Packed-sequence semantics end to end: a review's logit is the same alone and beside a
/// longer one that pads it, with either readout.
#[test]
fn padding_never_changes_a_reviews_logit() {
    let _watch = crate::validation::watch();
    let ctx = ctx();
    let ex = |text: &str| data::Example {
        text: text.into(),
        positive: true,
    };
    let short = ex("not bad at all");
    let long = ex("the plot was really boring but the ending is not bad at all");
    for readout in READOUTS {
        let m = Model::new(ctx, small(readout, 4)).unwrap();
        let alone = m
            .logits(ctx, &Batch::new(std::slice::from_ref(&short)).unwrap())
            .unwrap();
        let padded = m
            .logits(ctx, &Batch::new(&[long.clone(), short.clone()]).unwrap())
            .unwrap();
        // The two batches run GEMMs of other shapes, whose blocking may sum in another order:
        // a few f32 ulps of O(1) values through a 16-unit LSTM and a dense layer.
        const TOL: f32 = 1e-5;
        assert!(
            (alone[0] - padded[1]).abs() <= TOL,
            "{readout:?}: alone {} padded {}",
            alone[0],
            padded[1]
        );
        // Inference has no dropout: the same call gives the same bits.
        let again = m
            .logits(ctx, &Batch::new(std::slice::from_ref(&short)).unwrap())
            .unwrap();
        assert_eq!(alone[0].to_bits(), again[0].to_bits(), "{readout:?}");
    }
}

#[test]
fn batches_refuse_a_review_without_words_and_bad_dropout() {
    let _watch = crate::validation::watch();
    let empty = data::Example {
        text: " ".into(),
        positive: false,
    };
    let err = Batch::new(&[empty])
        .err()
        .expect("an empty review is refused");
    assert!(err.to_string().contains("review 0 has no words"), "{err}");
    let ctx = ctx();
    let cfg = ModelConfig {
        dropout: 1.0,
        ..small(Readout::MeanPool, 1)
    };
    let err = Model::new(ctx, cfg).err().expect("p = 1 is refused");
    assert!(err.to_string().contains("DropoutConfig"), "{err}");
}

#[test]
fn the_curve_is_written_as_a_png() {
    let dir = std::env::temp_dir().join(format!("wgrnn-sentiment-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let c = plots::Curves {
        step_loss: (0..40).map(|i| 0.7 * 0.9f64.powi(i)).collect(),
        accuracy: vec![(0.0, 0.5), (0.5, 0.8), (1.0, 0.95), (2.0, 1.0)],
        epochs: vec![(0.3, 0.95), (0.01, 1.0)],
    };
    let path = dir.join("curves.png");
    plots::curves(&path, &c, "test", 0.675).unwrap();
    assert_eq!(png_size(&path), (1200, 480));
    std::fs::remove_dir_all(&dir).unwrap();
}
