//! A character-level LSTM language model on any UTF-8 text, trained on the device: per-epoch
//! perplexity on a held-out tail of the text, temperature sampling, checkpoints.
//!
//! `cargo run --release --example charlm -- --text FILE` (add `--help` for the flags).

#[path = "../shared/checks.rs"]
mod checks;
mod model;

use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use wgrnn::core::{SafetensorsFile, SplitMix64};
use wgrnn::gpu::{Context, GpuTensor};

use model::{Corpus, Model, ModelConfig, batch};

/// Train a character-level LSTM language model on a UTF-8 text file, report the perplexity on
/// the file's held-out tail after each epoch, and write samples at a temperature.
#[derive(Parser, Debug)]
#[command(name = "charlm", version)]
struct Args {
    /// The UTF-8 text to learn.
    #[arg(long)]
    text: PathBuf,
    /// Passes over the training part of the text.
    #[arg(long, default_value_t = 3)]
    epochs: usize,
    /// Characters per training window (truncated BPTT length).
    #[arg(long, default_value_t = 64)]
    seq_len: usize,
    /// Windows per training step.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Character embedding size.
    #[arg(long, default_value_t = 32)]
    embed: usize,
    /// LSTM hidden size.
    #[arg(long, default_value_t = 128)]
    hidden: usize,
    /// Stacked LSTM layers.
    #[arg(long, default_value_t = 1)]
    layers: usize,
    /// Dropout probability in training, as PyTorch's `nn.LSTM(dropout=P)` between the layers
    /// and on the last layer's output; in [0, 1).
    #[arg(long, default_value_t = 0.0)]
    dropout: f32,
    /// Adam learning rate.
    #[arg(long, default_value_t = 0.005, allow_negative_numbers = true)]
    lr: f64,
    /// Fraction of the text, at its end, held out for perplexity.
    #[arg(long, default_value_t = 0.1, allow_negative_numbers = true)]
    holdout: f64,
    /// Seed of the initial weights, the window order and the sampling.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Sampling temperature: below 1 is more conservative, above 1 more adventurous.
    #[arg(long, default_value_t = 0.8, allow_negative_numbers = true)]
    temperature: f64,
    /// Characters sampled after each epoch and at the end.
    #[arg(long, default_value_t = 200)]
    sample_len: usize,
    /// Text the samples start from [default: the first characters of the file].
    #[arg(long)]
    prime: Option<String>,
    /// Start from this checkpoint (written by a previous run on the same text's alphabet).
    #[arg(long)]
    load: Option<PathBuf>,
    /// Where to save the trained weights (the alphabet is stored in its metadata).
    #[arg(long, default_value = "out/charlm/charlm.safetensors")]
    save: PathBuf,
    /// Longest text read, in bytes (64 MiB by default); a longer file is an error.
    #[arg(long, default_value_t = 64 << 20)]
    max_text_bytes: u64,
}

fn main() {
    if let Err(e) = run(Args::parse()) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(a: Args) -> Result<(), Box<dyn std::error::Error>> {
    let corpus = Corpus::from_file(&a.text, a.max_text_bytes)?;
    if a.seq_len == 0 || a.batch == 0 || a.hidden == 0 || a.embed == 0 || a.layers == 0 {
        return Err("--seq-len, --batch, --embed, --hidden and --layers must be positive".into());
    }
    let holdout_ok = a.holdout > 0.0 && a.holdout < 1.0;
    if !holdout_ok || !a.temperature.is_finite() || a.temperature <= 0.0 {
        return Err(format!(
            "--holdout must lie in (0, 1) and --temperature be positive (got {}, {})",
            a.holdout, a.temperature
        )
        .into());
    }
    let n = corpus.ids.len();
    let window = a.seq_len.saturating_add(1);
    let split = n - ((n as f64 * a.holdout) as usize).max(window).min(n);
    let (train, held) = corpus.ids.split_at(split);
    if train.len() < window || held.len() < window {
        return Err(format!(
            "{} has {n} characters: too few for training and held-out windows of {} (--seq-len) \
             with --holdout {}",
            a.text.display(),
            window,
            a.holdout
        )
        .into());
    }
    // The checkpoint's directory is made now, so that a path that cannot be written fails
    // before the training rather than after it.
    if let Some(dir) = a.save.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            format!(
                "--save {}: cannot create {}: {e}",
                a.save.display(),
                dir.display()
            )
        })?;
    }
    checks::check_writable(&a.save)?;
    let ctx = Context::new()?;
    let ad = ctx.adapter();
    println!("adapter: {} ({}, {})", ad.name, ad.backend, ad.device_type);
    println!(
        "text: {} ({n} characters, {} distinct); train {}, held-out tail {}",
        a.text.display(),
        corpus.vocab.len(),
        train.len(),
        held.len()
    );
    let mut m = Model::new(
        &ctx,
        ModelConfig {
            vocab: corpus.vocab.len(),
            embed: a.embed,
            hidden: a.hidden,
            layers: a.layers,
            lr: a.lr,
            seed: a.seed,
            dropout: a.dropout,
        },
    )?;
    if let Some(p) = &a.load {
        SafetensorsFile::read(p)
            .and_then(|f| m.load(&ctx, &f, &corpus.vocab))
            .map_err(|e| {
                format!(
                    "--load {}: {e} (a checkpoint loads into a model made with the same \
                     --embed, --hidden and --layers)",
                    p.display()
                )
            })?;
        println!("loaded {}", p.display());
    }
    let prime = match &a.prime {
        Some(p) => {
            if let Some(c) = p.chars().find(|c| corpus.vocab.binary_search(c).is_err()) {
                return Err(format!(
                    "--prime {p:?}: character {c:?} does not occur in {}, so the model has no \
                     id for it",
                    a.text.display()
                )
                .into());
            }
            corpus.encode(p)?
        }
        None => corpus.ids[..corpus.ids.len().min(16)].to_vec(),
    };
    if prime.is_empty() {
        return Err("--prime must not be empty".into());
    }
    let mut rng = SplitMix64::new(a.seed ^ 0xc4a7);
    let t = a.seq_len;
    let start = Instant::now();
    println!(
        "epoch  0  held-out perplexity {:8.3}",
        perplexity(&ctx, &m, held, t, a.batch)?
    );
    for epoch in 1..=a.epochs {
        // Non-overlapping windows from a random offset, in a random order. The offset leaves
        // room for one window at least (a training part of t + 1 characters has one).
        let offset = rng.below(t.min(train.len() - t));
        let mut starts: Vec<usize> = (offset..train.len() - t).step_by(t).collect();
        for i in (1..starts.len()).rev() {
            starts.swap(i, rng.below(i + 1));
        }
        let steps = starts.len().div_ceil(a.batch);
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
        for (i, chunk) in starts.chunks(a.batch).enumerate() {
            let (x, y) = batch(train, chunk, t)?;
            pending.push(m.train_step(&ctx, &x, &y)?);
            if pending.len() == 8 || i + 1 == steps {
                let first = i + 1 - pending.len();
                for (k, l) in pending.drain(..).enumerate() {
                    sum += checks::finite_loss(epoch, first + k, ctx.read(&l)?.data()[0] as f64)?;
                    count += 1;
                }
                bar.set_message(format!("loss {:.4}", sum / count as f64));
            }
            bar.inc(1);
        }
        bar.finish_and_clear();
        let ppl = perplexity(&ctx, &m, held, t, a.batch)?;
        println!(
            "epoch {epoch:>2}  train loss {:.4}  held-out perplexity {ppl:8.3}  ({:.1} s)",
            sum / count.max(1) as f64,
            start.elapsed().as_secs_f64()
        );
        let s = m.sample(&ctx, &prime, a.sample_len.min(80), a.temperature, &mut rng)?;
        println!("  sample: {:?}", corpus.decode(&prime) + &corpus.decode(&s));
    }
    let s = m.sample(&ctx, &prime, a.sample_len, a.temperature, &mut rng)?;
    println!(
        "sample at temperature {}:\n{}{}",
        a.temperature,
        corpus.decode(&prime),
        corpus.decode(&s)
    );
    m.checkpoint(&ctx, &corpus.vocab)?.write(&a.save)?;
    println!("wrote {}", a.save.display());
    Ok(())
}

/// exp(mean cross-entropy per character) over non-overlapping windows of the held-out text.
fn perplexity(ctx: &Context, m: &Model, held: &[i64], t: usize, b: usize) -> wgrnn::Result<f64> {
    let starts: Vec<usize> = (0..held.len() - t).step_by(t).collect();
    let (mut nll, mut count) = (0.0f64, 0.0f64);
    for chunk in starts.chunks(b) {
        let (x, y) = batch(held, chunk, t)?;
        let l = ctx.read(&m.loss(ctx, &x, &y)?)?;
        nll += l.data()[0] as f64 * l.data()[1] as f64;
        count += l.data()[1] as f64;
    }
    Ok((nll / count).exp())
}
