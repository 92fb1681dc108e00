//! A sentiment classifier on generated movie reviews whose label depends on word order
//! (negation and contrast: "not good", "good but boring", "not bad at all", "boring but the
//! ending was great", "great though slow"), so that a bag of words cannot solve it: a bidirectional LSTM over word
//! embeddings, trained entirely on the device with binary cross-entropy, dropout and Adam.
//!
//! `cargo run --release --example sentiment` (add `-- --help` for the flags).

#[path = "../shared/charts.rs"]
mod charts;
#[path = "../shared/checks.rs"]
#[allow(dead_code)]
mod checks;
mod data;
mod model;
mod plots;
#[path = "../shared/training.rs"]
mod training;

use std::path::PathBuf;
use std::time::Instant;

use clap::{Parser, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use wgrnn::core::SplitMix64;
use wgrnn::gpu::{Context, GpuTensor};

use data::Example;
use model::{Batch, Model, ModelConfig, Readout};
use training::{bucketed, fmt_time};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ReadoutArg {
    /// h_n of the forward direction beside h_n of the reverse one.
    Final,
    /// The mean of the outputs over each review's valid words.
    Mean,
}

/// Train a bidirectional LSTM to tell positive from negative in generated movie reviews whose
/// label hangs on negation and contrast, on the GPU (or Mesa's lavapipe where there is none).
/// Prints per-epoch loss and held-out accuracy, then writes `curves.png` to the output
/// directory.
#[derive(Parser, Debug)]
#[command(name = "sentiment", version)]
struct Args {
    /// Number of generated reviews, split into train and held-out by text: one text in ten is
    /// held out and never trained on.
    #[arg(long, default_value_t = 12_000)]
    examples: usize,
    /// Passes over the training set.
    #[arg(long, default_value_t = 2)]
    epochs: usize,
    /// Seed of the data, the initial weights, the dropout masks and the batch order.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Reviews per training step.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// LSTM hidden size (per direction).
    #[arg(long, default_value_t = 64)]
    hidden: usize,
    /// Word embedding size.
    #[arg(long, default_value_t = 32)]
    embed: usize,
    /// How the LSTM's outputs become one vector per review.
    #[arg(long, value_enum, default_value_t = ReadoutArg::Final)]
    readout: ReadoutArg,
    /// Dropout probability on that vector, in training.
    #[arg(long, default_value_t = 0.2)]
    dropout: f64,
    /// Adam's peak learning rate, cosine-decayed to a twentieth of it over the run.
    #[arg(long, default_value_t = 0.005, allow_negative_numbers = true)]
    lr: f64,
    /// Directory for the picture (created if missing).
    #[arg(long, default_value = "out/sentiment")]
    out: PathBuf,
    /// Held-out reviews evaluated after each epoch (0: all of them).
    #[arg(long, default_value_t = 0)]
    eval: usize,
    /// Also evaluate the held-out reviews every this many steps, for the accuracy curve
    /// (0: only after each epoch).
    #[arg(long, default_value_t = 40)]
    eval_every: usize,
}

fn main() {
    if let Err(e) = run(Args::parse()) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let curves_png = check_args(&args)?;
    let start = Instant::now();
    let ctx = Context::new()?;
    let a = ctx.adapter();
    println!("adapter: {} ({}, {})", a.name, a.backend, a.device_type);
    let (mut train, held) = data_sets(&args)?;
    let readout = match args.readout {
        ReadoutArg::Final => Readout::FinalStates,
        ReadoutArg::Mean => Readout::MeanPool,
    };
    let cfg = ModelConfig {
        embed: args.embed,
        hidden: args.hidden,
        readout,
        dropout: args.dropout,
        lr: args.lr,
        seed: args.seed,
    };
    let mut model = Model::new(&ctx, cfg)?;
    let ceiling = data::bag_of_words_ceiling(&held);
    describe(&args, &train, &held, ceiling);
    let eval = Eval {
        held: &held,
        batches: held
            .chunks(256)
            .map(Batch::new)
            .collect::<wgrnn::Result<Vec<_>>>()?,
    };
    let mut rng = SplitMix64::new(args.seed ^ 0x5eed);
    let mut curve = plots::Curves::default();
    let untrained = eval.run(&ctx, &model)?.0;
    curve.accuracy.push((0.0, untrained));
    println!(
        "epoch  0                held-out accuracy {:6.2}%  (untrained)",
        100.0 * untrained
    );
    let train_start = Instant::now();
    for epoch in 1..=args.epochs {
        let batches = bucketed(
            &mut train,
            args.batch,
            &mut rng,
            |e| e.text.split_whitespace().count(),
            Batch::new,
        )?;
        let loss = train_epoch(&ctx, &mut model, &args, epoch, &batches, &eval, &mut curve)?;
        let (acc, _) = eval.run(&ctx, &model)?;
        curve.epochs.push((loss, acc));
        curve.accuracy.push((epoch as f64, acc));
        println!(
            "epoch {epoch:>2}  loss {loss:.4}  held-out accuracy {:6.2}%  ({} elapsed)",
            100.0 * acc,
            fmt_time(train_start.elapsed())
        );
    }
    let train_time = train_start.elapsed();

    let (final_acc, predicted) = eval.run(&ctx, &model)?;
    print_samples(&held, &predicted);
    let name = match readout {
        Readout::FinalStates => "final states",
        Readout::MeanPool => "mean pooling",
    };
    plots::curves(&curves_png, &curve, name, ceiling)
        .map_err(|e| format!("{}: {e}", curves_png.display()))?;
    println!("wrote {}", curves_png.display());
    println!(
        "done: held-out accuracy {:.2}% after {} epochs (a bag of words: at most {:.1}%); \
         training {}, total {}",
        100.0 * final_acc,
        args.epochs,
        100.0 * ceiling,
        fmt_time(train_time),
        fmt_time(start.elapsed())
    );
    Ok(())
}

/// The flags' own checks, and the picture's path, tried before any training.
fn check_args(args: &Args) -> Result<PathBuf, Box<dyn std::error::Error>> {
    if args.batch == 0 || args.examples < 2 || args.hidden == 0 || args.embed == 0 {
        return Err(format!(
            "--batch, --hidden and --embed must be positive and --examples at least 2 \
             (got batch {}, hidden {}, embed {}, examples {})",
            args.batch, args.hidden, args.embed, args.examples
        )
        .into());
    }
    if !(0.0..1.0).contains(&args.dropout) {
        return Err(format!("--dropout must be in [0, 1), is {}", args.dropout).into());
    }
    // The output directory is made now, so that a path that cannot be written fails before
    // the training rather than after it.
    std::fs::create_dir_all(&args.out)
        .map_err(|e| format!("--out {}: cannot create it: {e}", args.out.display()))?;
    let curves_png = args.out.join("curves.png");
    checks::check_writable(&curves_png)?;
    Ok(curves_png)
}

/// The (train, held-out) reviews of the run, both non-empty, every label the rule's.
fn data_sets(args: &Args) -> Result<(Vec<Example>, Vec<Example>), Box<dyn std::error::Error>> {
    let (train, held) = data::generate(args.examples, args.seed);
    let held: Vec<Example> = match args.eval {
        0 => held,
        n => held.into_iter().take(n).collect(),
    };
    if train.is_empty() || held.is_empty() {
        return Err(format!(
            "--examples {} gives {} training and {} held-out reviews; both must be non-empty",
            args.examples,
            train.len(),
            held.len()
        )
        .into());
    }
    // The labels come from the reviews' structure; the rule read back from the text must
    // agree, or the data is not what the README says it is.
    if let Some(e) = train
        .iter()
        .chain(&held)
        .find(|e| data::sentiment(&e.text) != Some(e.positive))
    {
        return Err(format!("generated review {:?} breaks the labelling rule", e.text).into());
    }
    Ok((train, held))
}

/// The data and the model in a few lines, with a contrast and its mirror.
fn describe(args: &Args, train: &[Example], held: &[Example], ceiling: f64) {
    println!(
        "data: {} train, {} held-out (seed {}), {:.1}% contrasts: a bag of words scores at most \
         {:.1}%",
        train.len(),
        held.len(),
        args.seed,
        100.0 * (1.0 - ceiling) * 2.0,
        100.0 * ceiling
    );
    println!(
        "model: embed {}, bidirectional LSTM hidden {}, {} readout, dropout {}; batch {}, Adam \
         lr {}",
        args.embed,
        args.hidden,
        format!("{:?}", args.readout).to_lowercase(),
        args.dropout,
        args.batch,
        args.lr
    );
    for e in held.iter().take(3) {
        println!(
            "  e.g. {:58} -> {}",
            format!("{:?}", e.text),
            label(e.positive)
        );
    }
    // A contrast and its mirror: the same words, the other label.
    let mut demo = SplitMix64::new(args.seed ^ 0xd3);
    let r = std::iter::repeat_with(|| data::review(&mut demo, true))
        .find(|r| matches!(r, data::Review::But(..)))
        .unwrap_or_else(|| data::review(&mut demo, true));
    for r in [r.mirror(), r] {
        println!(
            "  same words: {:52} -> {}",
            format!("{:?}", r.words().join(" ")),
            label(r.positive())
        );
    }
}

/// One pass over `batches` with the cosine learning-rate schedule and a progress bar; the
/// step losses and the curve's held-out points go into `curve`. Returns the mean loss.
fn train_epoch(
    ctx: &Context,
    model: &mut Model,
    args: &Args,
    epoch: usize,
    batches: &[Batch],
    eval: &Eval,
    curve: &mut plots::Curves,
) -> Result<f64, Box<dyn std::error::Error>> {
    let steps = batches.len();
    let total_steps = steps.saturating_mul(args.epochs).max(1);
    let bar = ProgressBar::new(steps as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "epoch {prefix:>2} [{bar:30}] {pos}/{len} {per_sec} ({eta} left) {msg}",
        )?
        .progress_chars("=> "),
    );
    bar.set_prefix(epoch.to_string());
    let (mut sum, mut count) = (0.0f64, 0usize);
    let mut pending: Vec<GpuTensor> = Vec::new();
    for (step, batch) in batches.iter().enumerate() {
        let done = (epoch - 1) * steps + step;
        let cosine = 0.5 * (1.0 + (std::f64::consts::PI * done as f64 / total_steps as f64).cos());
        model.set_lr(args.lr * (0.05 + 0.95 * cosine))?;
        pending.push(model.train_step(ctx, batch)?);
        // Reading a loss waits for the device; read a few steps at a time.
        if pending.len() == 8 || step + 1 == steps {
            let first = step + 1 - pending.len();
            for (k, l) in pending.drain(..).enumerate() {
                let v = checks::finite_loss(epoch, first + k, ctx.read(&l)?.data()[0] as f64)?;
                curve.step_loss.push(v);
                sum += v;
                count += 1;
            }
            bar.set_message(format!("loss {:.4}", sum / count as f64));
        }
        bar.inc(1);
        // The curve's finer points; the epoch's last one is the epoch's own evaluation.
        if args.eval_every > 0 && (step + 1) % args.eval_every == 0 && step + 1 < steps {
            let at = epoch as f64 - 1.0 + (step + 1) as f64 / steps as f64;
            curve.accuracy.push((at, eval.run(ctx, model)?.0));
        }
    }
    bar.finish_and_clear();
    Ok(sum / count.max(1) as f64)
}

fn label(positive: bool) -> &'static str {
    if positive { "positive" } else { "negative" }
}

/// Held-out samples: a few reviews the order decides (a contrast with a negation, a negated
/// clause), then the first mistakes.
fn print_samples(held: &[Example], predicted: &[bool]) {
    println!("held-out samples:");
    let contrast = |e: &Example| e.text.contains(" but ") || e.text.contains(" though ");
    let negated = |e: &Example| e.text.contains("not ") || e.text.contains("never ");
    let pick = |f: &dyn Fn(usize) -> bool, n: usize| -> Vec<usize> {
        (0..held.len()).filter(|&i| f(i)).take(n).collect()
    };
    let mut show = pick(&|i| contrast(&held[i]) && negated(&held[i]), 3);
    show.extend(pick(&|i| !contrast(&held[i]) && negated(&held[i]), 2));
    let shown = show.clone();
    show.extend(pick(
        &|i| predicted[i] != held[i].positive && !shown.contains(&i),
        5,
    ));
    for i in show {
        let (e, p) = (&held[i], predicted[i]);
        let mark = if p == e.positive { "ok" } else { "WRONG" };
        println!("  {:58} -> {}  ({mark})", format!("{:?}", e.text), label(p));
    }
}

/// The held-out reviews and their batches.
struct Eval<'a> {
    held: &'a [Example],
    batches: Vec<Batch>,
}

impl Eval<'_> {
    /// Fraction of the held-out reviews the model labels right, and every prediction.
    fn run(&self, ctx: &Context, model: &Model) -> wgrnn::Result<(f64, Vec<bool>)> {
        let mut predicted = Vec::with_capacity(self.held.len());
        for batch in &self.batches {
            predicted.extend(model.logits(ctx, batch)?.iter().map(|&l| l > 0.0));
        }
        let right = predicted
            .iter()
            .zip(self.held)
            .filter(|(p, e)| **p == e.positive)
            .count();
        Ok((right as f64 / self.held.len() as f64, predicted))
    }
}
