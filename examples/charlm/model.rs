//! A character-level LSTM language model trained on the device: character embedding → LSTM
//! (one or more layers) → output layer → softmax cross-entropy on the next character.

use std::io::Read;
use std::path::Path;

use wgrnn::core::{SafetensorsFile, SplitMix64, Tensor};
use wgrnn::gpu::{
    self, Context, GpuOptimizer, GpuParams, GpuRnnInput, GpuRnnOutputGrads, GpuTensor, upload_ids,
    upload_targets,
};
use wgrnn::{
    CellKind, DropoutConfig, EmbeddingConfig, Error, LinearConfig, OptimizerConfig, Result,
    RnnConfig,
};

/// A text as character ids over its own sorted alphabet.
#[derive(Clone, Debug, PartialEq)]
pub struct Corpus {
    /// The distinct characters, sorted; a character's id is its index.
    pub vocab: Vec<char>,
    pub ids: Vec<i64>,
}

impl Corpus {
    /// The alphabet of `text`. A text needs at least two characters and two distinct ones:
    /// with one there is nothing to predict.
    pub fn new(text: &str) -> Result<Self> {
        let mut vocab: Vec<char> = text.chars().collect();
        vocab.sort_unstable();
        vocab.dedup();
        if vocab.len() < 2 {
            return Err(Error::InvalidArgument {
                op: "charlm",
                arg: "text",
                reason: if vocab.is_empty() {
                    "is empty: a language model needs text to learn from".into()
                } else {
                    format!(
                        "has a single distinct character ({:?}): there is nothing to predict",
                        vocab[0]
                    )
                },
            });
        }
        let ids = Self::encode_with(&vocab, text)?;
        Ok(Self { vocab, ids })
    }

    /// Reads a UTF-8 file of at most `max_bytes`; a missing, unreadable, longer, non-UTF-8,
    /// empty or single-character file is an error naming the path. The cap bounds the memory
    /// a path such as /dev/zero would otherwise take without end.
    pub fn from_file(path: &Path, max_bytes: u64) -> Result<Self> {
        let err = |reason: String| Error::InvalidArgument {
            op: "charlm",
            arg: "--text",
            reason,
        };
        let file = std::fs::File::open(path)
            .map_err(|e| err(format!("cannot read {}: {e}", path.display())))?;
        let mut bytes = Vec::new();
        // One byte past the cap tells a file of exactly `max_bytes` from a longer one.
        file.take(max_bytes.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| err(format!("cannot read {}: {e}", path.display())))?;
        if bytes.len() as u64 > max_bytes {
            return Err(err(format!(
                "{} is longer than --max-text-bytes {max_bytes}",
                path.display()
            )));
        }
        let text = String::from_utf8(bytes).map_err(|e| Error::InvalidArgument {
            op: "charlm",
            arg: "--text",
            reason: format!("{} is not UTF-8 text: {e}", path.display()),
        })?;
        Self::new(&text).map_err(|e| match e {
            Error::InvalidArgument { reason, .. } => Error::InvalidArgument {
                op: "charlm",
                arg: "--text",
                reason: format!("{} {reason}", path.display()),
            },
            e => e,
        })
    }

    fn encode_with(vocab: &[char], text: &str) -> Result<Vec<i64>> {
        text.chars()
            .map(|c| {
                vocab
                    .binary_search(&c)
                    .map(|i| i as i64)
                    .map_err(|_| Error::InvalidArgument {
                        op: "charlm",
                        arg: "text",
                        reason: format!("character {c:?} is not in the model's vocabulary"),
                    })
            })
            .collect()
    }

    /// Ids of `text` in this alphabet; characters outside it are an error.
    pub fn encode(&self, text: &str) -> Result<Vec<i64>> {
        Self::encode_with(&self.vocab, text)
    }

    pub fn decode(&self, ids: &[i64]) -> String {
        ids.iter().map(|&i| self.vocab[i as usize]).collect()
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ModelConfig {
    pub vocab: usize,
    pub embed: usize,
    pub hidden: usize,
    pub layers: usize,
    pub lr: f64,
    pub seed: u64,
    /// Dropout in training: PyTorch's `nn.LSTM(dropout=p)` between the LSTM layers, and the
    /// same on the last layer's output before the output layer; in [0, 1).
    pub dropout: f32,
}

pub struct Model {
    pub cfg: ModelConfig,
    emb: GpuParams<EmbeddingConfig>,
    lstm: GpuParams<RnnConfig>,
    out: GpuParams<LinearConfig>,
    opt: GpuOptimizer,
    /// Training steps taken: each draws its dropout masks from its own seed.
    steps: u64,
}

/// Windows `[B, T]` of inputs and their next characters.
pub fn batch(ids: &[i64], starts: &[usize], t: usize) -> Result<(Tensor<i64>, Tensor<i64>)> {
    let mut x = Vec::with_capacity(starts.len() * t);
    let mut y = Vec::with_capacity(starts.len() * t);
    for &s in starts {
        x.extend_from_slice(&ids[s..s + t]);
        y.extend_from_slice(&ids[s + 1..s + t + 1]);
    }
    Ok((
        Tensor::new([starts.len(), t], x)?,
        Tensor::new([starts.len(), t], y)?,
    ))
}

/// Bytes the model keeps in f32 on the device: each parameter's value, gradient and Adam's two
/// moments; `None` past u64. Counted from one and two LSTM layers (every layer past the first
/// has the same tensors), so that a huge `--layers` costs nothing to count.
pub fn model_bytes(cfg: &ModelConfig) -> Option<u64> {
    let params = |specs: Vec<wgrnn::core::ParamSpec>| -> Option<u64> {
        specs.iter().try_fold(0u64, |sum, s| {
            let n = s
                .shape
                .iter()
                .try_fold(1u64, |n, &d| n.checked_mul(d as u64))?;
            sum.checked_add(n)
        })
    };
    let lstm = |layers| RnnConfig::new(CellKind::Lstm, cfg.embed, cfg.hidden).layers(layers);
    let first = params(lstm(1).param_specs())?;
    let later = params(lstm(2).param_specs())? - first;
    let rnn = first.checked_add(later.checked_mul(cfg.layers.saturating_sub(1) as u64)?)?;
    let ends = params(EmbeddingConfig::new(cfg.vocab, cfg.embed).param_specs())?.checked_add(
        params(LinearConfig::new(cfg.hidden, cfg.vocab).param_specs())?,
    )?;
    rnn.checked_add(ends)?.checked_mul(4 * 4)
}

/// Refuses a model larger than the host can reserve, before any tensor is built: built one
/// small tensor at a time (100,000 layers, say), it would fill memory until the process is
/// killed. Where the adapter runs on the CPU the device memory is this memory; the probe
/// reserves without touching a page.
fn check_total(cfg: &ModelConfig) -> Result<()> {
    let bytes = model_bytes(cfg).unwrap_or(u64::MAX);
    let fits = usize::try_from(bytes).is_ok_and(|n| Vec::<u8>::new().try_reserve_exact(n).is_ok());
    if fits {
        return Ok(());
    }
    Err(Error::OutOfMemory {
        op: "charlm",
        arg: format!(
            "a model of --embed {} --hidden {} --layers {} (values, gradients and Adam moments)",
            cfg.embed, cfg.hidden, cfg.layers
        ),
        bytes,
    })
}

impl Model {
    /// The model with its optimizer; a total size the host cannot hold is an error first.
    pub fn new(ctx: &Context, cfg: ModelConfig) -> Result<Self> {
        check_total(&cfg)?;
        // Each module's seed is the run's plus its index (wrapping: any u64 seed works), and
        // GpuParams::init checks each tensor against the device before building it.
        let seed = |k: u64| cfg.seed.wrapping_add(k);
        let emb = GpuParams::init(ctx, EmbeddingConfig::new(cfg.vocab, cfg.embed), seed(0))?;
        let lstm = GpuParams::init(
            ctx,
            RnnConfig::new(CellKind::Lstm, cfg.embed, cfg.hidden)
                .layers(cfg.layers)
                .batch_first(true)
                .dropout(cfg.dropout),
            seed(1),
        )?;
        let out = GpuParams::init(ctx, LinearConfig::new(cfg.hidden, cfg.vocab), seed(2))?;
        let values: Vec<&GpuTensor> = [&emb.value.tensors(), &lstm.value.tensors()]
            .into_iter()
            .chain([&out.value.tensors()])
            .flat_map(|m| m.values())
            .collect();
        let opt = GpuOptimizer::new(ctx, OptimizerConfig::adam(cfg.lr), &values)?
            .with_clip_grad_norm(5.0)?;
        Ok(Self {
            cfg,
            emb,
            lstm,
            out,
            opt,
            steps: 0,
        })
    }

    /// Logits `[B, T, V]` of the next character after each position of `x [B, T]`, starting
    /// from `state` (zeros if `None`), and the final (h, c).
    pub fn logits(
        &self,
        ctx: &Context,
        x: &Tensor<i64>,
        state: Option<&(GpuTensor, GpuTensor)>,
    ) -> Result<(GpuTensor, (GpuTensor, GpuTensor))> {
        let ids = upload_ids(ctx, x, self.cfg.vocab)?;
        let e = gpu::embedding_forward(ctx, &self.emb.value, &ids)?;
        let mut input = GpuRnnInput::new(&e);
        if let Some((h, c)) = state {
            input = input.h0(h).c0(c);
        }
        let r = gpu::rnn_forward(ctx, &self.lstm.value, input)?;
        let logits = gpu::linear_forward(ctx, &self.out.value, &r.y)?;
        Ok((logits, (r.h_n, r.c_n.expect("LSTM has c_n"))))
    }

    /// Mean cross-entropy (nats per character) of predicting `y` from `x`, on the device as
    /// `[loss, count]`.
    pub fn loss(&self, ctx: &Context, x: &Tensor<i64>, y: &Tensor<i64>) -> Result<GpuTensor> {
        let (logits, _) = self.logits(ctx, x, None)?;
        let targets = upload_targets(ctx, y, self.cfg.vocab, None)?;
        Ok(gpu::cross_entropy(ctx, &logits, &targets)?.loss)
    }

    /// One training step (truncated BPTT over the window, zero initial state); returns the
    /// loss tensor `[loss, count]` before the update.
    pub fn train_step(
        &mut self,
        ctx: &Context,
        x: &Tensor<i64>,
        y: &Tensor<i64>,
    ) -> Result<GpuTensor> {
        let v = self.cfg.vocab;
        self.emb.zero_grad(ctx)?;
        self.lstm.zero_grad(ctx)?;
        self.out.zero_grad(ctx)?;
        let ids = upload_ids(ctx, x, v)?;
        let targets = upload_targets(ctx, y, v, None)?;
        let e = gpu::embedding_forward(ctx, &self.emb.value, &ids)?;
        // This step's masks: the seed is the run's and the step's (the LSTM's between its
        // layers, streams 0.., and the output's, stream `layers`).
        let seed = self
            .cfg
            .seed
            .wrapping_mul(0x9E37_79B9)
            .wrapping_add(self.steps);
        self.steps += 1;
        let input = GpuRnnInput::new(&e).seed(seed);
        let (r, r_tape) = gpu::rnn_forward_train(ctx, &self.lstm.value, input)?;
        let drop = DropoutConfig::new(self.cfg.dropout as f64);
        let stream = self.cfg.layers as u32;
        // Without dropout the output goes straight on (the op would copy it).
        let active = drop.is_active();
        let y = if active {
            gpu::dropout(ctx, &r.y, &drop, seed, stream)?
        } else {
            r.y.clone()
        };
        let logits = gpu::linear_forward(ctx, &self.out.value, &y)?;
        let ce = gpu::cross_entropy(ctx, &logits, &targets)?;
        let dlogits = gpu::cross_entropy_backward(ctx, &logits, &targets, &ce, 1.0)?;
        let dy = gpu::linear_backward(ctx, &self.out.value, &y, &dlogits, Some(&self.out.grad))?.dx;
        let dy = if active {
            gpu::dropout_backward(ctx, &dy, &drop, seed, stream)?
        } else {
            dy
        };
        let g = gpu::rnn_backward(
            ctx,
            &self.lstm.value,
            &r_tape,
            GpuRnnOutputGrads {
                dy: Some(&dy),
                ..Default::default()
            },
            Some(&self.lstm.grad),
        )?;
        gpu::embedding_backward(ctx, &self.emb.value, &ids, &g.dx, Some(&self.emb.grad))?;
        let mut pairs = self.emb.pairs()?;
        pairs.extend(self.lstm.pairs()?);
        pairs.extend(self.out.pairs()?);
        self.opt.step(ctx, &pairs)?;
        Ok(ce.loss)
    }

    /// `n` characters sampled after `prime` (ids, non-empty) at `temperature` (> 0; lower is
    /// more conservative), drawing from `rng`.
    pub fn sample(
        &self,
        ctx: &Context,
        prime: &[i64],
        n: usize,
        temperature: f64,
        rng: &mut SplitMix64,
    ) -> Result<Vec<i64>> {
        if prime.is_empty() || !temperature.is_finite() || temperature <= 0.0 {
            return Err(Error::InvalidArgument {
                op: "charlm sample",
                arg: "prime/temperature",
                reason: format!(
                    "need a non-empty prime and a positive temperature (got {} characters, {temperature})",
                    prime.len()
                ),
            });
        }
        let v = self.cfg.vocab;
        let (mut logits, mut state) =
            self.logits(ctx, &Tensor::new([1, prime.len()], prime.to_vec())?, None)?;
        let mut last = prime.len() - 1;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let l = ctx.read(&logits)?;
            let row = &l.data()[last * v..(last + 1) * v];
            let next = sample_row(row, temperature, rng) as i64;
            out.push(next);
            (logits, state) = self.logits(ctx, &Tensor::new([1, 1], vec![next])?, Some(&state))?;
            last = 0;
        }
        Ok(out)
    }

    /// Every parameter under PyTorch-style module names; the alphabet goes in the header's
    /// metadata so a checkpoint is usable on its own.
    pub fn checkpoint(&self, ctx: &Context, vocab: &[char]) -> Result<SafetensorsFile> {
        let mut f = SafetensorsFile::default();
        self.emb.value.save_into(ctx, &mut f, "embedding.")?;
        self.lstm.value.save_into(ctx, &mut f, "lstm.")?;
        self.out.value.save_into(ctx, &mut f, "decoder.")?;
        f.metadata
            .insert("vocab".into(), vocab.iter().collect::<String>());
        Ok(f)
    }

    /// Loads a checkpoint written for the same alphabet and sizes.
    /// Values are checked before any module changes: NaN or infinity is an error naming the
    /// tensor.
    pub fn load(&self, ctx: &Context, f: &SafetensorsFile, vocab: &[char]) -> Result<()> {
        super::checks::finite_checkpoint(f)?;
        let Some(saved) = f.meta("vocab").map(|s| s.chars().collect::<Vec<char>>()) else {
            return Err(Error::InvalidArgument {
                op: "charlm load",
                arg: "checkpoint",
                reason: "is not a charlm checkpoint (it has no `vocab` metadata)".into(),
            });
        };
        if saved != vocab {
            let only = |a: &[char], b: &[char]| -> String {
                a.iter().filter(|c| !b.contains(c)).collect()
            };
            return Err(Error::InvalidArgument {
                op: "charlm load",
                arg: "checkpoint",
                reason: format!(
                    "was trained on a different alphabet ({} characters, this text has {}): \
                     only the checkpoint has {:?}, only this text has {:?}",
                    saved.len(),
                    vocab.len(),
                    only(&saved, vocab),
                    only(vocab, &saved)
                ),
            });
        }
        self.emb.value.load_from(ctx, f, "embedding.")?;
        self.lstm.value.load_from(ctx, f, "lstm.")?;
        self.out.value.load_from(ctx, f, "decoder.")
    }
}

/// Draws an index from softmax(row / temperature).
fn sample_row(row: &[f32], temperature: f64, rng: &mut SplitMix64) -> usize {
    let max = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
    let p: Vec<f64> = row
        .iter()
        .map(|&l| ((l as f64 - max) / temperature).exp())
        .collect();
    let mut u = rng.next_f64() * p.iter().sum::<f64>();
    for (i, &q) in p.iter().enumerate() {
        if u < q {
            return i;
        }
        u -= q;
    }
    p.len() - 1
}
