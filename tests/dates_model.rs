//! The main example's model on tiny data: a short deterministic training run lowers the loss,
//! and a checkpoint round trip reproduces the outputs.

use crate::dates_data::data;
#[path = "../examples/dates/model.rs"]
#[allow(dead_code)]
mod model;

use model::{Batch, Model, ModelConfig};
use wgrnn::Score;

use crate::gpu::ctx;

fn loss(ctx: &wgrnn::gpu::Context, t: &wgrnn::gpu::GpuTensor) -> f32 {
    ctx.read(t).unwrap().data()[0]
}

#[test]
fn training_lowers_the_loss_with_and_without_attention() {
    let ctx = ctx();
    let (train, _) = data::generate(32, 3);
    let batch = Batch::new(&train).unwrap();
    for attention in [Some(Score::General), None] {
        let mut m = Model::new(
            ctx,
            ModelConfig {
                embed: 8,
                hidden: 16,
                attention,
                lr: 0.02,
                seed: 5,
            },
        )
        .unwrap();
        let first = loss(ctx, &m.train_step(ctx, &batch).unwrap());
        let mut last = first;
        for _ in 0..25 {
            last = loss(ctx, &m.train_step(ctx, &batch).unwrap());
        }
        // Over 13 classes the loss starts near ln 13 = 2.56; 25 Adam steps on one batch of 32
        // must at least halve it (a broken gradient anywhere in the chain stalls it).
        assert!(
            first > 2.0 && last < first / 2.0,
            "{attention:?}: loss {first} -> {last}"
        );
    }
}
