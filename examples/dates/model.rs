//! The date-conversion model, trained entirely on the device: character embedding → LSTM
//! encoder (optionally bidirectional) → LSTM decoder (started from the encoder's final state,
//! summed over directions; teacher-forced) → attention over the encoder outputs (Luong or
//! Bahdanau) → output layer → softmax cross-entropy.
//! Without attention the output layer sees the decoder state alone (the plain seq2seq
//! baseline).

use wgrnn::core::{SafetensorsFile, Tensor};
use wgrnn::gpu::{
    self, Context, GpuAttentionInput, GpuOptimizer, GpuParams, GpuRnnInput, GpuRnnOutputGrads,
    GpuTensor, Recording, upload_ids, upload_targets,
};
use wgrnn::{
    AttentionConfig, CellKind, DropoutConfig, EmbeddingConfig, LinearConfig, OptimizerConfig,
    Result, RnnConfig, Score,
};

use super::data::{self, Example, PAD, START};

/// Length of every target (`YYYY-MM-DD`).
pub const TARGET_LEN: usize = 10;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ModelConfig {
    pub embed: usize,
    pub hidden: usize,
    /// A bidirectional encoder: its outputs are `2·hidden` wide (forward and reverse
    /// concatenated) and the decoder starts from the sum of both directions' final states.
    pub bidirectional: bool,
    /// `None`: no attention (baseline).
    pub attention: Option<Score>,
    pub lr: f64,
    pub seed: u64,
    /// Dropout probability in training on the encoder's embedded characters and on the
    /// decoder's outputs before the output layer; in [0, 1).
    pub dropout: f32,
}

/// A batch on the host: padded input ids `[B, Tin]`, their lengths, decoder inputs and targets
/// `[B, 10]`.
pub struct Batch {
    pub inputs: Tensor<i64>,
    pub lengths: Vec<usize>,
    pub dec_inputs: Tensor<i64>,
    pub targets: Tensor<i64>,
}

impl Batch {
    pub fn new(examples: &[Example]) -> Result<Self> {
        let enc: Vec<Vec<i64>> = examples
            .iter()
            .map(|e| data::encode_input(&e.input))
            .collect();
        let t_in = enc.iter().map(Vec::len).max().unwrap_or(1).max(1);
        let b = examples.len();
        let mut inputs = vec![PAD; b * t_in];
        for (i, e) in enc.iter().enumerate() {
            inputs[i * t_in..i * t_in + e.len()].copy_from_slice(e);
        }
        let mut targets = Vec::with_capacity(b * TARGET_LEN);
        let mut dec_inputs = Vec::with_capacity(b * TARGET_LEN);
        for e in examples {
            let t = data::encode_output(&e.target);
            dec_inputs.push(START);
            dec_inputs.extend_from_slice(&t[..TARGET_LEN - 1]);
            targets.extend_from_slice(&t);
        }
        Ok(Self {
            inputs: Tensor::new([b, t_in], inputs)?,
            lengths: enc.iter().map(|e| e.len().max(1)).collect(),
            dec_inputs: Tensor::new([b, TARGET_LEN], dec_inputs)?,
            targets: Tensor::new([b, TARGET_LEN], targets)?,
        })
    }
}

pub struct Model {
    pub cfg: ModelConfig,
    enc_emb: GpuParams<EmbeddingConfig>,
    dec_emb: GpuParams<EmbeddingConfig>,
    encoder: GpuParams<RnnConfig>,
    decoder: GpuParams<RnnConfig>,
    attention: Option<GpuParams<AttentionConfig>>,
    out_ctx: Option<GpuParams<LinearConfig>>,
    out_h: GpuParams<LinearConfig>,
    opt: GpuOptimizer,
    /// Training steps taken: each draws its dropout masks from its own seed.
    steps: u64,
}

impl Model {
    pub fn new(ctx: &Context, cfg: ModelConfig) -> Result<Self> {
        DropoutConfig::new(cfg.dropout as f64).validate()?;
        let (e, h, s) = (cfg.embed, cfg.hidden, cfg.seed);
        let (vin, vout) = (data::input_vocab(), data::output_vocab());
        // Each module's seed is the run's plus its index (wrapping: any u64 seed works).
        let seed = |k: u64| s.wrapping_add(k);
        // GpuParams::init checks each tensor against the device before building it on the
        // host, so sizes too large for the device are an error rather than an abort.
        let enc_emb = GpuParams::init(
            ctx,
            EmbeddingConfig::new(vin, e).padding_idx(Some(0)),
            seed(0),
        )?;
        let dec_emb = GpuParams::init(ctx, EmbeddingConfig::new(vout, e), seed(1))?;
        let rnn = || RnnConfig::new(CellKind::Lstm, e, h).batch_first(true);
        let encoder = GpuParams::init(ctx, rnn().bidirectional(cfg.bidirectional), seed(2))?;
        let decoder = GpuParams::init(ctx, rnn(), seed(3))?;
        // Width of the encoder outputs: the keys and values of the attention.
        let enc_w = if cfg.bidirectional { 2 * h } else { h };
        let attention = match cfg.attention {
            Some(score) => Some(GpuParams::init(
                ctx,
                AttentionConfig {
                    key_size: enc_w,
                    value_size: enc_w,
                    ..AttentionConfig::new(score, h)
                },
                seed(4),
            )?),
            None => None,
        };
        let out_ctx = match cfg.attention {
            Some(_) => Some(GpuParams::init(
                ctx,
                LinearConfig {
                    bias: false,
                    ..LinearConfig::new(enc_w, vout)
                },
                seed(5),
            )?),
            None => None,
        };
        let out_h = GpuParams::init(ctx, LinearConfig::new(h, vout), seed(6))?;
        // The optimizer's parameter order is `pairs()`'s.
        let mut values: Vec<GpuTensor> = Vec::new();
        for p in [
            &enc_emb.value.tensors(),
            &dec_emb.value.tensors(),
            &encoder.value.tensors(),
            &decoder.value.tensors(),
        ] {
            values.extend(p.values().cloned());
        }
        if let Some(a) = &attention {
            values.extend(a.value.tensors().values().cloned());
        }
        if let Some(o) = &out_ctx {
            values.extend(o.value.tensors().values().cloned());
        }
        values.extend(out_h.value.tensors().values().cloned());
        let opt = GpuOptimizer::new(
            ctx,
            OptimizerConfig::adam(cfg.lr),
            &values.iter().collect::<Vec<_>>(),
        )?
        .with_clip_grad_norm(5.0)?;
        Ok(Self {
            cfg,
            enc_emb,
            dec_emb,
            encoder,
            decoder,
            attention,
            out_ctx,
            out_h,
            opt,
            steps: 0,
        })
    }

    /// The training step's dropout of `t` (stream `stream` of `seed`), or `t` where there is
    /// none; `backward` applies the same mask to a gradient.
    fn dropout(
        &self,
        rec: &mut Recording<'_>,
        t: &GpuTensor,
        (seed, stream): (u64, u32),
        backward: bool,
    ) -> Result<GpuTensor> {
        let cfg = DropoutConfig::new(self.cfg.dropout as f64);
        match (cfg.is_active(), backward) {
            (false, _) => Ok(t.clone()),
            (true, false) => gpu::dropout(rec, t, &cfg, seed, stream),
            (true, true) => gpu::dropout_backward(rec, t, &cfg, seed, stream),
        }
    }

    /// Sets the optimizer's learning rate (for a schedule).
    pub fn set_lr(&mut self, lr: f64) -> Result<()> {
        self.opt.set_lr(lr)
    }

    /// (value, gradient) of every parameter, in the optimizer's order (handles share storage).
    fn pairs(&self) -> Result<Vec<(GpuTensor, GpuTensor)>> {
        let mut p = Vec::new();
        let mut add = |v: Vec<(&GpuTensor, &GpuTensor)>| {
            p.extend(v.into_iter().map(|(a, b)| (a.clone(), b.clone())))
        };
        add(self.enc_emb.pairs()?);
        add(self.dec_emb.pairs()?);
        add(self.encoder.pairs()?);
        add(self.decoder.pairs()?);
        if let Some(a) = &self.attention {
            add(a.pairs()?);
        }
        if let Some(o) = &self.out_ctx {
            add(o.pairs()?);
        }
        add(self.out_h.pairs()?);
        Ok(p)
    }

    fn zero_grad(&self, rec: &mut Recording<'_>) -> Result<()> {
        self.enc_emb.zero_grad(&mut *rec)?;
        self.dec_emb.zero_grad(&mut *rec)?;
        self.encoder.zero_grad(&mut *rec)?;
        self.decoder.zero_grad(&mut *rec)?;
        if let Some(a) = &self.attention {
            a.zero_grad(&mut *rec)?;
        }
        if let Some(o) = &self.out_ctx {
            o.zero_grad(&mut *rec)?;
        }
        self.out_h.zero_grad(rec)
    }

    /// The decoder's initial state from the encoder's final one `[dirs, B, H]`: the sum over
    /// directions.
    fn bridge(&self, rec: &mut Recording<'_>, s: &GpuTensor) -> Result<GpuTensor> {
        if !self.cfg.bidirectional {
            return Ok(s.clone());
        }
        let forward = gpu::narrow(&mut *rec, s, 0, 0, 1)?;
        let reverse = gpu::narrow(&mut *rec, s, 0, 1, 1)?;
        gpu::add(rec, &forward, &reverse)
    }

    /// Gradient of [`Self::bridge`]: the decoder's `d[h0|c0]` reaches every direction.
    fn bridge_backward(&self, rec: &mut Recording<'_>, d: &GpuTensor) -> Result<GpuTensor> {
        if !self.cfg.bidirectional {
            return Ok(d.clone());
        }
        gpu::concat(rec, &[d, d], 0)
    }

    /// One teacher-forced training step, recorded whole and submitted once; returns the loss
    /// tensor `[loss, count]` on the device (read it only when needed).
    pub fn train_step(&mut self, ctx: &Context, batch: &Batch) -> Result<GpuTensor> {
        let vout = data::output_vocab();
        let enc_ids = upload_ids(ctx, &batch.inputs, data::input_vocab())?;
        let dec_ids = upload_ids(ctx, &batch.dec_inputs, vout)?;
        let targets = upload_targets(ctx, &batch.targets, vout, None)?;
        let mut rec = ctx.record();
        self.zero_grad(&mut rec)?;
        // This step's dropout masks: the embedded input's (stream 0), the decoder outputs' (1).
        let seed = self
            .cfg
            .seed
            .wrapping_mul(0x9E37_79B9)
            .wrapping_add(self.steps);
        self.steps += 1;
        // Forward.
        let enc_x = gpu::embedding_forward(&mut rec, &self.enc_emb.value, &enc_ids)?;
        let enc_x = self.dropout(&mut rec, &enc_x, (seed, 0), false)?;
        let (enc, enc_tape) = gpu::rnn_forward_train(
            &mut rec,
            &self.encoder.value,
            GpuRnnInput::new(&enc_x).lengths(&batch.lengths),
        )?;
        let dec_x = gpu::embedding_forward(&mut rec, &self.dec_emb.value, &dec_ids)?;
        let h0 = self.bridge(&mut rec, &enc.h_n)?;
        let c0 = self.bridge(&mut rec, enc.c_n.as_ref().expect("LSTM has c_n"))?;
        let (dec, dec_tape) = gpu::rnn_forward_train(
            &mut rec,
            &self.decoder.value,
            GpuRnnInput::new(&dec_x).h0(&h0).c0(&c0),
        )?;
        let att_in = GpuAttentionInput::new(&dec.y, &enc.y, &enc.y).key_lengths(&batch.lengths);
        let att = match &self.attention {
            Some(a) => Some(gpu::attention_forward(&mut rec, &a.value, att_in)?),
            None => None,
        };
        let dec_y = self.dropout(&mut rec, &dec.y, (seed, 1), false)?;
        let mut logits = gpu::linear_forward(&mut rec, &self.out_h.value, &dec_y)?;
        if let (Some(att), Some(o)) = (&att, &self.out_ctx) {
            let from_context = gpu::linear_forward(&mut rec, &o.value, &att.context)?;
            logits = gpu::add(&mut rec, &logits, &from_context)?;
        }
        let ce = gpu::cross_entropy(&mut rec, &logits, &targets)?;
        // Backward, accumulating into each module's gradients.
        let dlogits = gpu::cross_entropy_backward(&mut rec, &logits, &targets, &ce, 1.0)?;
        let d_dec_y = gpu::linear_backward(
            &mut rec,
            &self.out_h.value,
            &dec_y,
            &dlogits,
            Some(&self.out_h.grad),
        )?
        .dx;
        let d_dec_y = self.dropout(&mut rec, &d_dec_y, (seed, 1), true)?;
        let mut d_enc_y = None;
        if let (Some(att), Some(o), Some(a)) = (&att, &self.out_ctx, &self.attention) {
            let d_ctx =
                gpu::linear_backward(&mut rec, &o.value, &att.context, &dlogits, Some(&o.grad))?.dx;
            let g = gpu::attention_backward(
                &mut rec,
                &a.value,
                att_in,
                att,
                &d_ctx,
                None,
                Some(&a.grad),
            )?;
            gpu::axpy_into(&mut rec, &d_dec_y, 1.0, &g.dquery)?;
            d_enc_y = Some(gpu::add(&mut rec, &g.dkey, &g.dvalue)?);
        }
        let dg = gpu::rnn_backward(
            &mut rec,
            &self.decoder.value,
            &dec_tape,
            GpuRnnOutputGrads {
                dy: Some(&d_dec_y),
                ..Default::default()
            },
            Some(&self.decoder.grad),
        )?;
        gpu::embedding_backward(
            &mut rec,
            &self.dec_emb.value,
            &dec_ids,
            &dg.dx,
            Some(&self.dec_emb.grad),
        )?;
        let dh_n = self.bridge_backward(&mut rec, &dg.dh0)?;
        let dc_n = self.bridge_backward(&mut rec, dg.dc0.as_ref().expect("LSTM has dc0"))?;
        let up = GpuRnnOutputGrads {
            dy: d_enc_y.as_ref(),
            dh_n: Some(&dh_n),
            dc_n: Some(&dc_n),
        };
        let eg = gpu::rnn_backward(
            &mut rec,
            &self.encoder.value,
            &enc_tape,
            up,
            Some(&self.encoder.grad),
        )?;
        let d_enc_x = self.dropout(&mut rec, &eg.dx, (seed, 0), true)?;
        gpu::embedding_backward(
            &mut rec,
            &self.enc_emb.value,
            &enc_ids,
            &d_enc_x,
            Some(&self.enc_emb.grad),
        )?;
        let pairs = self.pairs()?;
        self.opt.step(
            &mut rec,
            &pairs.iter().map(|(v, g)| (v, g)).collect::<Vec<_>>(),
        )?;
        rec.submit()?;
        Ok(ce.loss)
    }

    /// Greedy decoding: the ISO string the model writes for each input, and the attention
    /// weights `[B, 10, Tin]` (empty without attention).
    pub fn greedy(&self, ctx: &Context, batch: &Batch) -> Result<(Vec<String>, Vec<f32>)> {
        let b = batch.lengths.len();
        let vout = data::output_vocab();
        let enc_ids = upload_ids(ctx, &batch.inputs, data::input_vocab())?;
        let mut rec = ctx.record();
        let enc_x = gpu::embedding_forward(&mut rec, &self.enc_emb.value, &enc_ids)?;
        let enc = gpu::rnn_forward(
            &mut rec,
            &self.encoder.value,
            GpuRnnInput::new(&enc_x).lengths(&batch.lengths),
        )?;
        let mut h = self.bridge(&mut rec, &enc.h_n)?;
        let mut c = self.bridge(&mut rec, enc.c_n.as_ref().expect("LSTM has c_n"))?;
        rec.submit()?;
        let mut tokens = vec![START; b];
        let mut out = vec![Vec::with_capacity(TARGET_LEN); b];
        let mut weights = Vec::new();
        for _ in 0..TARGET_LEN {
            let ids = upload_ids(ctx, &Tensor::new([b, 1], tokens.clone())?, vout)?;
            // One submit per decoded character: its logits are read before the next.
            let mut rec = ctx.record();
            let x = gpu::embedding_forward(&mut rec, &self.dec_emb.value, &ids)?;
            let dec = gpu::rnn_forward(
                &mut rec,
                &self.decoder.value,
                GpuRnnInput::new(&x).h0(&h).c0(&c),
            )?;
            let mut logits = gpu::linear_forward(&mut rec, &self.out_h.value, &dec.y)?;
            let mut att_weights = None;
            if let (Some(a), Some(o)) = (&self.attention, &self.out_ctx) {
                let att = gpu::attention_forward(
                    &mut rec,
                    &a.value,
                    GpuAttentionInput::new(&dec.y, &enc.y, &enc.y).key_lengths(&batch.lengths),
                )?;
                let from_context = gpu::linear_forward(&mut rec, &o.value, &att.context)?;
                logits = gpu::add(&mut rec, &logits, &from_context)?;
                att_weights = Some(att.weights);
            }
            rec.submit()?;
            if let Some(w) = att_weights {
                weights.push(ctx.read(&w)?.into_data());
            }
            let l = ctx.read(&logits)?;
            for (i, row) in l.data().chunks(vout).enumerate() {
                let best = row
                    .iter()
                    .enumerate()
                    .skip(2)
                    .fold(
                        (2, f32::NEG_INFINITY),
                        |m, (k, &v)| if v > m.1 { (k, v) } else { m },
                    )
                    .0;
                tokens[i] = best as i64;
                out[i].push(best as i64);
            }
            h = dec.h_n;
            c = dec.c_n.expect("LSTM has c_n");
        }
        // weights: per step [B, 1, Tin] → [B, 10, Tin].
        let t_in = batch.inputs.shape()[1];
        let mut att = Vec::new();
        if !weights.is_empty() {
            att = vec![0.0; b * TARGET_LEN * t_in];
            for (s, w) in weights.iter().enumerate() {
                for i in 0..b {
                    att[(i * TARGET_LEN + s) * t_in..(i * TARGET_LEN + s + 1) * t_in]
                        .copy_from_slice(&w[i * t_in..(i + 1) * t_in]);
                }
            }
        }
        Ok((
            out.iter().map(|ids| data::decode_output(ids)).collect(),
            att,
        ))
    }

    /// Every parameter under PyTorch-style module names.
    pub fn checkpoint(&self, ctx: &Context) -> Result<SafetensorsFile> {
        let mut f = SafetensorsFile::default();
        self.enc_emb
            .value
            .save_into(ctx, &mut f, "enc_embedding.")?;
        self.dec_emb
            .value
            .save_into(ctx, &mut f, "dec_embedding.")?;
        self.encoder.value.save_into(ctx, &mut f, "encoder.")?;
        self.decoder.value.save_into(ctx, &mut f, "decoder.")?;
        if let Some(a) = &self.attention {
            a.value.save_into(ctx, &mut f, "attention.")?;
        }
        if let Some(o) = &self.out_ctx {
            o.value.save_into(ctx, &mut f, "out_context.")?;
        }
        self.out_h.value.save_into(ctx, &mut f, "out_hidden.")?;
        Ok(f)
    }

    /// Loads a checkpoint of this model. A tensor that no module of it takes (attention weights
    /// into a model without attention, say) is an error rather than a weight left out.
    /// Values are checked before any module changes: NaN or infinity is an error naming the
    /// tensor.
    pub fn load(&self, ctx: &Context, f: &SafetensorsFile) -> Result<()> {
        super::checks::finite_checkpoint(f)?;
        let mut modules = vec![
            "enc_embedding.",
            "dec_embedding.",
            "encoder.",
            "decoder.",
            "out_hidden.",
        ];
        if self.attention.is_some() {
            modules.extend(["attention.", "out_context."]);
        }
        if let Some(extra) = f
            .tensors
            .keys()
            .find(|n| !modules.iter().any(|m| n.starts_with(m)))
        {
            return Err(wgrnn::Error::UnknownTensor {
                op: "dates load",
                name: extra.clone(),
            });
        }
        self.enc_emb.value.load_from(ctx, f, "enc_embedding.")?;
        self.dec_emb.value.load_from(ctx, f, "dec_embedding.")?;
        self.encoder.value.load_from(ctx, f, "encoder.")?;
        self.decoder.value.load_from(ctx, f, "decoder.")?;
        if let Some(a) = &self.attention {
            a.value.load_from(ctx, f, "attention.")?;
        }
        if let Some(o) = &self.out_ctx {
            o.value.load_from(ctx, f, "out_context.")?;
        }
        self.out_h.value.load_from(ctx, f, "out_hidden.")
    }
}
