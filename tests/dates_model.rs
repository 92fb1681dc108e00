//! The main example's model on tiny data: a short deterministic training run lowers the loss,
//! and a checkpoint round trip reproduces the outputs.

use crate::dates_data::data;
#[path = "../examples/dates/model.rs"]
#[allow(dead_code)]
mod model;
#[path = "../examples/dates/plots.rs"]
mod plots;

// `model` reaches the examples' shared checks as `super::checks`.
use crate::checks;
use model::{Batch, Model, ModelConfig};
use wgrnn::Score;

// `plots` reaches the examples' shared charts as `super::charts`.
use crate::charts;
use crate::common::png_size;
use crate::gpu::ctx;

fn loss(ctx: &wgrnn::gpu::Context, t: &wgrnn::gpu::GpuTensor) -> f32 {
    ctx.read(t).unwrap().data()[0]
}

#[test]
fn training_lowers_the_loss_with_and_without_attention() {
    let _watch = crate::validation::watch();
    let ctx = ctx();
    let (train, _) = data::generate(32, 3);
    let batch = Batch::new(&train).unwrap();
    for (attention, bidirectional) in [
        (Some(Score::General), false),
        (None, false),
        (Some(Score::Additive), true),
    ] {
        let mut m = Model::new(
            ctx,
            ModelConfig {
                embed: 8,
                hidden: 16,
                bidirectional,
                attention,
                lr: 0.02,
                seed: 5,
                dropout: 0.0,
            },
        )
        .unwrap();
        let first = loss(ctx, &m.train_step(ctx, &batch).unwrap());
        let mut last = first;
        for _ in 0..40 {
            last = loss(ctx, &m.train_step(ctx, &batch).unwrap());
        }
        eprintln!(
            "dates {attention:?} bidirectional {bidirectional}: loss {first} -> {last} after 40 steps"
        );
        // Over 13 classes the loss starts near ln 13 = 2.56; 40 Adam steps on one batch of 32
        // must at least halve it (a correct chain gives about 2.7× without attention and 4.8×
        // with it; a broken gradient anywhere in the chain stalls it).
        assert!(
            first > 2.0 && last < first / 2.0,
            "{attention:?}: loss {first} -> {last}"
        );
    }
}

fn small(attention: Option<Score>, seed: u64) -> ModelConfig {
    ModelConfig {
        embed: 8,
        hidden: 16,
        // Bidirectional with attention, so both encoder layouts are round-tripped.
        bidirectional: attention.is_some(),
        attention,
        lr: 0.02,
        seed,
        dropout: 0.0,
    }
}

/// The training step is one recording: one submit, whatever the model (each used to make one
/// per op call, over twenty).
#[test]
fn a_training_step_submits_once() {
    let _watch = crate::validation::watch();
    let own = crate::recording::own();
    let ctx: &wgrnn::gpu::Context = &own;
    let (train, _) = data::generate(32, 3);
    let batch = Batch::new(&train[..8]).unwrap();
    for attention in [Some(Score::General), None] {
        let mut m = Model::new(ctx, small(attention, 2)).unwrap();
        let before = ctx.submits();
        let l = m.train_step(ctx, &batch).unwrap();
        assert_eq!(ctx.submits() - before, 1, "{attention:?}");
        assert!(loss(ctx, &l).is_finite());
    }
}

#[test]
fn checkpoint_round_trip_reproduces_decoding_bit_for_bit() {
    let _watch = crate::validation::watch();
    let ctx = ctx();
    let (train, held) = data::generate(48, 11);
    let batch = Batch::new(&train[..16]).unwrap();
    let eval = Batch::new(&held).unwrap();
    for attention in [Some(Score::Additive), None] {
        let mut m = Model::new(ctx, small(attention, 1)).unwrap();
        for _ in 0..3 {
            m.train_step(ctx, &batch).unwrap();
        }
        let bytes = m.checkpoint(ctx).unwrap().to_bytes().unwrap();
        // A model from another seed decodes differently until it loads the checkpoint.
        let other = Model::new(ctx, small(attention, 99)).unwrap();
        let (want, want_w) = m.greedy(ctx, &eval).unwrap();
        let (before, before_w) = other.greedy(ctx, &eval).unwrap();
        assert!(
            before != want || before_w != want_w,
            "{attention:?}: seeds 1 and 99 decode identically, so the round trip proves nothing"
        );
        other
            .load(
                ctx,
                &wgrnn::core::SafetensorsFile::from_bytes(&bytes).unwrap(),
            )
            .unwrap();
        let (got, got_w) = other.greedy(ctx, &eval).unwrap();
        assert_eq!(got, want, "{attention:?}: decoded strings after load");
        assert_eq!(got_w.len(), want_w.len());
        for (i, (g, w)) in got_w.iter().zip(&want_w).enumerate() {
            assert!(
                g.to_bits() == w.to_bits(),
                "{attention:?}: attention weight {i}: got {g}, want {w}"
            );
        }
        // Names are PyTorch's under module prefixes.
        let f = m.checkpoint(ctx).unwrap();
        assert!(f.tensors.contains_key("encoder.weight_hh_l0"));
        assert!(f.tensors.contains_key("out_hidden.weight"));
        assert_eq!(
            f.tensors.contains_key("attention.w_query"),
            attention.is_some()
        );
    }
}

/// `--load` of a checkpoint holding NaN or an f64 past f32's range is refused by tensor name:
/// `dates --lr 1e39` saved NaN weights, which a later `--load` took in without a word.
#[test]
fn checkpoint_with_non_finite_values_is_an_error() {
    let _watch = crate::validation::watch();
    let ctx = ctx();
    let m = Model::new(ctx, small(Some(Score::General), 1)).unwrap();
    let f = m.checkpoint(ctx).unwrap();
    m.load(ctx, &f).unwrap();
    let name = "decoder.weight_hh_l0";
    let mut nan = f.clone();
    let mut t = nan.real::<f32>(name).unwrap();
    t.data_mut()[3] = f32::NAN;
    nan.insert_real(name, &t);
    let err = m.load(ctx, &nan).unwrap_err().to_string();
    assert!(err.contains(name) && err.contains("NaN"), "{err}");
    let mut huge = f.clone();
    let mut t = huge.real::<f64>(name).unwrap();
    t.data_mut()[0] = 1e39;
    huge.insert_real(name, &t);
    let err = m.load(ctx, &huge).unwrap_err().to_string();
    assert!(err.contains(name) && err.contains("inf"), "{err}");
}

/// A `--save` path that cannot be written fails before the training; the probe leaves no file
/// behind, and an existing file keeps its contents until the run writes it.
#[test]
fn save_paths_are_checked_before_training() {
    let dir = std::env::temp_dir().join(format!("wgrnn-dates-save-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let err = checks::check_writable(&dir).unwrap_err().to_string();
    assert!(err.contains("is a directory"), "{err}");
    let err = checks::check_writable(&dir.join("no/such/dir/w.safetensors"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot be written"), "{err}");
    let fresh = dir.join("fresh.safetensors");
    checks::check_writable(&fresh).unwrap();
    assert!(!fresh.exists(), "the check left {}", fresh.display());
    let old = dir.join("old.safetensors");
    std::fs::write(&old, b"keep").unwrap();
    checks::check_writable(&old).unwrap();
    assert_eq!(std::fs::read(&old).unwrap(), b"keep");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A NaN or infinite loss stops the run with an error that says where.
#[test]
fn non_finite_losses_stop_training() {
    assert_eq!(checks::finite_loss(1, 0, 2.5).unwrap(), 2.5);
    for bad in [f64::NAN, f64::INFINITY] {
        let err = checks::finite_loss(2, 7, bad).unwrap_err().to_string();
        assert!(
            err.contains("epoch 2, step 7") && err.contains("nothing was saved"),
            "{err}"
        );
    }
}

#[test]
fn checkpoint_of_another_architecture_is_an_error() {
    let _watch = crate::validation::watch();
    let ctx = ctx();
    let with = Model::new(ctx, small(Some(Score::General), 1)).unwrap();
    let without = Model::new(ctx, small(None, 1)).unwrap();
    let f = without.checkpoint(ctx).unwrap();
    let err = with.load(ctx, &f).unwrap_err().to_string();
    // The attention model's encoder is bidirectional: its reverse weights are missing, all
    // named in one error, in state_dict order.
    assert!(
        err.contains("missing tensors `encoder.weight_ih_l0_reverse`, `encoder.weight_hh_l0"),
        "{err}"
    );
    // The other way round nothing is missing, but the attention weights and the encoder's
    // reverse direction would be dropped: an error naming the first tensor no module takes.
    let f = with.checkpoint(ctx).unwrap();
    let err = without.load(ctx, &f).unwrap_err().to_string();
    assert!(err.contains("unexpected tensor `attention."), "{err}");
    // With attention on both sides, a bidirectional checkpoint into a unidirectional encoder
    // is refused under the encoder's prefix.
    let uni = Model::new(
        ctx,
        ModelConfig {
            bidirectional: false,
            ..small(Some(Score::General), 1)
        },
    )
    .unwrap();
    let err = uni.load(ctx, &f).unwrap_err().to_string();
    assert!(
        err.contains("encoder.") && err.contains("_reverse"),
        "{err}"
    );
}

#[test]
fn pictures_are_written_as_pngs_of_the_promised_layout() {
    let dir = std::env::temp_dir().join(format!("wgrnn-plots-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let c = plots::Curves {
        step_loss: (0..40).map(|i| 2.5 * 0.9f64.powi(i)).collect(),
        epochs: vec![(1.0, 0.3), (0.2, 0.9)],
    };
    plots::curves(&dir.join("curves.png"), &c, "test").unwrap();
    assert_eq!(png_size(&dir.join("curves.png")), (1200, 480));

    let (_, held) = data::generate(40, 2);
    let ex = &held[..3];
    let t_in = ex.iter().map(|e| e.input.chars().count()).max().unwrap();
    let weights = vec![1.0 / t_in as f32; 3 * model::TARGET_LEN * t_in];
    let pred: Vec<String> = ex.iter().map(|e| e.target.clone()).collect();
    plots::attention(&dir.join("attention.png"), ex, &pred, &weights, t_in).unwrap();
    // Two panels across, two down; each 22 px per input character plus margins.
    let (w, h) = png_size(&dir.join("attention.png"));
    assert_eq!((w, h), (2 * (100 + 22 * t_in as u32), 2 * (100 + 22 * 10)));
    // Weights of the wrong size are an error, not a panic.
    assert!(plots::attention(&dir.join("bad.png"), ex, &pred, &weights[1..], t_in).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--dropout`: with the embedded input and the decoder outputs dropped, 40 steps on one batch
/// still cut the loss, the same seed gives the same losses bit for bit, and a probability
/// outside [0, 1) is refused by name.
#[test]
fn dropout_training_lowers_the_loss_reproducibly() {
    let _watch = crate::validation::watch();
    let ctx = ctx();
    let (train, _) = data::generate(32, 3);
    let batch = Batch::new(&train).unwrap();
    let cfg = ModelConfig {
        dropout: 0.2,
        ..small(Some(Score::General), 5)
    };
    let run = || {
        let mut m = Model::new(ctx, cfg).unwrap();
        (0..41)
            .map(|_| loss(ctx, &m.train_step(ctx, &batch).unwrap()))
            .collect::<Vec<f32>>()
    };
    let losses = run();
    let (first, last) = (losses[0], losses[40]);
    eprintln!("dates --dropout 0.2: loss {first} -> {last} after 40 steps");
    // As without dropout (see above), halved at least; the masks only slow the fit a little.
    assert!(first > 2.0 && last < first / 2.0, "loss {first} -> {last}");
    let bits = |l: &[f32]| l.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&run()), bits(&losses), "a second run differs");
    let bad = ModelConfig {
        dropout: -0.1,
        ..cfg
    };
    let e = Model::new(ctx, bad)
        .err()
        .expect("negative dropout accepted")
        .to_string();
    assert!(e.contains("p"), "{e}");
}
