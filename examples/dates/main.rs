//! The main job: a character seq2seq model with attention learns to rewrite dates written in
//! human formats ("Tuesday, September 27, 1994", "27 SEP 1994", "9/27/94", …) as ISO
//! `1994-09-27`, trained entirely on the device.
//!
//! `cargo run --release --example dates` (add `-- --help` for the flags).

#[path = "../shared/charts.rs"]
mod charts;
#[path = "../shared/checks.rs"]
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
use wgrnn::Score;
use wgrnn::core::{SafetensorsFile, SplitMix64};
use wgrnn::gpu::{Context, GpuTensor};

use data::Example;
use model::{Batch, Model, ModelConfig};
use training::{bucketed, fmt_time};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum AttentionKind {
    /// Luong's multiplicative "general" score, qᵀ·W·k.
    Luong,
    /// Bahdanau's additive score, vᵀ·tanh(W_q q + W_k k).
    Bahdanau,
}

/// Train a seq2seq model with attention to convert human-written dates to ISO 8601, on the
/// GPU (or Mesa's lavapipe where there is none). Prints per-epoch loss and held-out exact
/// match, then writes `curves.png`, `attention.png` and a checkpoint to the output directory.
#[derive(Parser, Debug)]
#[command(name = "dates", version)]
struct Args {
    /// Number of generated examples, split into train and held-out by date: one calendar day
    /// in ten is held out, in every format, and never trained on.
    #[arg(long, default_value_t = 12_000)]
    examples: usize,
    /// Passes over the training set.
    #[arg(long, default_value_t = 4)]
    epochs: usize,
    /// Seed of the data, the initial weights and the batch order.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Examples per training step.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// LSTM hidden size (encoder and decoder).
    #[arg(long, default_value_t = 64)]
    hidden: usize,
    /// A forward-only encoder. By default it is bidirectional: its outputs are twice as wide
    /// and the decoder starts from the sum of both directions' final states.
    #[arg(long)]
    unidirectional: bool,
    /// Dropout probability in training, on the embedded input characters and on the
    /// decoder's outputs before the output layer; in [0, 1).
    #[arg(long, default_value_t = 0.0)]
    dropout: f32,
    /// Character embedding size.
    #[arg(long, default_value_t = 16)]
    embed: usize,
    /// Adam's peak learning rate, cosine-decayed to a twentieth of it over the run.
    #[arg(long, default_value_t = 0.01, allow_negative_numbers = true)]
    lr: f64,
    /// Attention score.
    #[arg(long, value_enum, default_value_t = AttentionKind::Luong)]
    attention: AttentionKind,
    /// Train the plain seq2seq baseline: the decoder sees only the encoder's final state.
    #[arg(long)]
    no_attention: bool,
    /// Directory for the pictures and the checkpoint (created if missing).
    #[arg(long, default_value = "out/dates")]
    out: PathBuf,
    /// Start from this checkpoint (safetensors written by `--save` or by a previous run).
    #[arg(long)]
    load: Option<PathBuf>,
    /// Where to save the trained weights [default: OUT/dates.safetensors].
    #[arg(long)]
    save: Option<PathBuf>,
    /// Held-out examples evaluated after each epoch (0: all of them).
    #[arg(long, default_value_t = 0)]
    eval: usize,
}

fn main() {
    if let Err(e) = run(Args::parse()) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    if args.batch == 0 || args.examples < 2 || args.hidden == 0 || args.embed == 0 {
        return Err(format!(
            "--batch, --hidden and --embed must be positive and --examples at least 2 \
             (got batch {}, hidden {}, embed {}, examples {})",
            args.batch, args.hidden, args.embed, args.examples
        )
        .into());
    }
    // Output directories are made now, so that a path that cannot be written fails before the
    // training rather than after it.
    std::fs::create_dir_all(&args.out)
        .map_err(|e| format!("--out {}: cannot create it: {e}", args.out.display()))?;
    if let Some(dir) = args
        .save
        .as_deref()
        .and_then(|s| s.parent())
        .filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("--save: cannot create {}: {e}", dir.display()))?;
    }
    let save = args
        .save
        .clone()
        .unwrap_or_else(|| args.out.join("dates.safetensors"));
    checks::check_writable(&save)?;
    let start = Instant::now();
    let ctx = Context::new()?;
    let a = ctx.adapter();
    println!("adapter: {} ({}, {})", a.name, a.backend, a.device_type);

    let (mut train, held) = data::generate(args.examples, args.seed);
    let held: Vec<Example> = match args.eval {
        0 => held,
        n => held.into_iter().take(n).collect(),
    };
    if train.is_empty() || held.is_empty() {
        return Err(format!(
            "--examples {} gives {} training and {} held-out examples; both must be non-empty",
            args.examples,
            train.len(),
            held.len()
        )
        .into());
    }
    let attention = match (args.no_attention, args.attention) {
        (true, _) => None,
        (false, AttentionKind::Luong) => Some(Score::General),
        (false, AttentionKind::Bahdanau) => Some(Score::Additive),
    };
    let cfg = ModelConfig {
        embed: args.embed,
        hidden: args.hidden,
        bidirectional: !args.unidirectional,
        attention,
        lr: args.lr,
        seed: args.seed,
        dropout: args.dropout,
    };
    let mut model = Model::new(&ctx, cfg)?;
    if let Some(path) = &args.load {
        SafetensorsFile::read(path)
            .and_then(|f| model.load(&ctx, &f))
            .map_err(|e| {
                format!(
                    "--load {}: {e} (a checkpoint loads into a model made with the same \
                     --hidden, --embed, --attention and encoder flags)",
                    path.display()
                )
            })?;
        println!("loaded {}", path.display());
    }
    let cfg = model.cfg;
    let name = match attention {
        None => "no attention (baseline)".to_string(),
        Some(_) => format!("{:?} attention", args.attention).to_lowercase(),
    } + if cfg.bidirectional {
        ", bidirectional encoder"
    } else {
        ""
    };
    println!(
        "data: {} train, {} held-out (seed {}); model: embed {}, hidden {}, {name}; batch {}, Adam lr {}",
        train.len(),
        held.len(),
        args.seed,
        cfg.embed,
        cfg.hidden,
        args.batch,
        cfg.lr
    );
    for e in held.iter().take(3) {
        println!("  e.g. {:32} -> {}", format!("{:?}", e.input), e.target);
    }

    let held_batches = held
        .chunks(256)
        .map(Batch::new)
        .collect::<wgrnn::Result<Vec<_>>>()?;
    let steps_per_epoch = train.len().div_ceil(args.batch);
    let total_steps = steps_per_epoch.saturating_mul(args.epochs).max(1);
    let mut rng = SplitMix64::new(args.seed ^ 0x5eed);
    let mut curve = plots::Curves::default();
    let train_start = Instant::now();
    for epoch in 1..=args.epochs {
        let batches = bucketed(
            &mut train,
            args.batch,
            &mut rng,
            |e| e.input.chars().count(),
            Batch::new,
        )?;
        let bar = ProgressBar::new(steps_per_epoch as u64);
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
            let done = (epoch - 1) * steps_per_epoch + step;
            let cosine =
                0.5 * (1.0 + (std::f64::consts::PI * done as f64 / total_steps as f64).cos());
            model.set_lr(args.lr * (0.05 + 0.95 * cosine))?;
            pending.push(model.train_step(&ctx, batch)?);
            // Reading a loss waits for the device; read a few steps at a time.
            if pending.len() == 8 || step + 1 == steps_per_epoch {
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
        }
        bar.finish_and_clear();
        let acc = exact_match(&ctx, &model, &held, &held_batches)?;
        let loss = sum / count.max(1) as f64;
        curve.epochs.push((loss, acc));
        println!(
            "epoch {epoch:>2}  loss {loss:.4}  held-out exact match {:6.2}%  ({} elapsed)",
            100.0 * acc,
            fmt_time(train_start.elapsed())
        );
    }
    let train_time = train_start.elapsed();

    let show: Vec<Example> = held.iter().take(4).cloned().collect();
    let show_batch = Batch::new(&show)?;
    let (pred, weights) = model.greedy(&ctx, &show_batch)?;
    println!("held-out samples:");
    for (e, p) in show.iter().zip(&pred) {
        let mark = if *p == e.target { "ok" } else { "WRONG" };
        println!("  {:32} -> {p}  ({mark})", format!("{:?}", e.input));
    }
    let curves_png = args.out.join("curves.png");
    plots::curves(&curves_png, &curve, &name)
        .map_err(|e| format!("{}: {e}", curves_png.display()))?;
    println!("wrote {}", curves_png.display());
    if !weights.is_empty() {
        let png = args.out.join("attention.png");
        let t_in = show_batch.inputs.shape()[1];
        plots::attention(&png, &show, &pred, &weights, t_in)
            .map_err(|e| format!("{}: {e}", png.display()))?;
        println!("wrote {}", png.display());
    }
    model.checkpoint(&ctx)?.write(&save)?;
    println!("wrote {}", save.display());
    // With no epoch run (`--epochs 0`, say to score a loaded checkpoint), score it now.
    let final_acc = match curve.epochs.last() {
        Some(e) => e.1,
        None => exact_match(&ctx, &model, &held, &held_batches)?,
    };
    println!(
        "done: held-out exact match {:.2}% after {} epochs; training {}, total {}",
        100.0 * final_acc,
        args.epochs,
        fmt_time(train_time),
        fmt_time(start.elapsed())
    );
    Ok(())
}

/// Fraction of `held` the model converts exactly (greedy decoding).
fn exact_match(
    ctx: &Context,
    model: &Model,
    held: &[Example],
    batches: &[Batch],
) -> wgrnn::Result<f64> {
    let mut right = 0;
    for (batch, examples) in batches.iter().zip(held.chunks(256)) {
        let (pred, _) = model.greedy(ctx, batch)?;
        right += pred
            .iter()
            .zip(examples)
            .filter(|(p, e)| **p == e.target)
            .count();
    }
    Ok(right as f64 / held.len() as f64)
}
