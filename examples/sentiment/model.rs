//! The review classifier, trained entirely on the device: word embedding (padding id 0 kept
//! at zero) → bidirectional LSTM over each review's own length (packed-sequence semantics) →
//! a review vector, either the masked mean of the outputs over the valid steps or the final
//! states of both directions concatenated (`h_n` forward ‖ `h_n` reverse) → dropout → dense
//! layer to one logit → binary cross-entropy with logits. One training step is one recording
//! and one submit.

use wgrnn::core::Tensor;
use wgrnn::gpu::{
    self, Context, GpuBceInput, GpuIds, GpuOptimizer, GpuParams, GpuRnnInput, GpuRnnOutputGrads,
    GpuTensor, Recording, upload_ids,
};
use wgrnn::{
    CellKind, DropoutConfig, EmbeddingConfig, LinearConfig, OptimizerConfig, PoolMode, Reduction,
    Result, RnnConfig,
};

use super::data::{self, Example, PAD};

/// How the LSTM's outputs become one vector per review.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readout {
    /// The mean of the outputs `[B, T, 2H]` over each review's valid steps.
    MeanPool,
    /// `h_n` of the forward direction (its state after the last valid word) beside `h_n` of
    /// the reverse one (its state after reading back to the first word): `[B, 2H]`.
    FinalStates,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ModelConfig {
    pub embed: usize,
    pub hidden: usize,
    pub readout: Readout,
    /// Dropout probability on the review vector, in training only.
    pub dropout: f64,
    pub lr: f64,
    pub seed: u64,
}

/// A batch on the host: padded word ids `[B, T]` (batch first), their lengths, and the
/// labels `[B, 1]` (1 positive, 0 negative).
pub struct Batch {
    pub ids: Tensor<i64>,
    pub lengths: Vec<usize>,
    pub labels: Tensor<f32>,
}

impl Batch {
    /// An error for an empty slice or a review without words (the LSTM takes lengths ≥ 1).
    pub fn new(examples: &[Example]) -> Result<Self> {
        let enc: Vec<Vec<i64>> = examples.iter().map(|e| data::encode(&e.text)).collect();
        if let Some(i) = enc.iter().position(Vec::is_empty) {
            return Err(wgrnn::Error::invalid_argument(
                "sentiment batch",
                "examples",
                format!("review {i} has no words"),
            ));
        }
        let t = enc.iter().map(Vec::len).max().unwrap_or(1);
        let b = examples.len();
        let mut ids = vec![PAD; b * t];
        for (i, e) in enc.iter().enumerate() {
            ids[i * t..i * t + e.len()].copy_from_slice(e);
        }
        let labels = examples.iter().map(|e| e.positive as u8 as f32).collect();
        Ok(Self {
            ids: Tensor::new([b, t], ids)?,
            lengths: enc.iter().map(Vec::len).collect(),
            labels: Tensor::new([b, 1], labels)?,
        })
    }
}

pub struct Model {
    pub cfg: ModelConfig,
    emb: GpuParams<EmbeddingConfig>,
    lstm: GpuParams<RnnConfig>,
    dense: GpuParams<LinearConfig>,
    opt: GpuOptimizer,
    /// Training steps taken: with the run's seed, the dropout mask's seed of the next step.
    steps: u64,
}

impl Model {
    pub fn new(ctx: &Context, cfg: ModelConfig) -> Result<Self> {
        DropoutConfig::new(cfg.dropout).validate()?;
        let (e, h) = (cfg.embed, cfg.hidden);
        let seed = |k: u64| cfg.seed.wrapping_add(k);
        let emb = GpuParams::init(
            ctx,
            EmbeddingConfig::new(data::vocab_size(), e).padding_idx(Some(PAD as usize)),
            seed(0),
        )?;
        let rnn = RnnConfig::new(CellKind::Lstm, e, h)
            .batch_first(true)
            .bidirectional(true);
        let lstm = GpuParams::init(ctx, rnn, seed(1))?;
        let dense = GpuParams::init(ctx, LinearConfig::new(2 * h, 1), seed(2))?;
        // The optimizer's parameter order is `pairs()`'s.
        let mut values: Vec<GpuTensor> = Vec::new();
        values.extend(emb.value.tensors().values().cloned());
        values.extend(lstm.value.tensors().values().cloned());
        values.extend(dense.value.tensors().values().cloned());
        let opt = GpuOptimizer::new(
            ctx,
            OptimizerConfig::adam(cfg.lr),
            &values.iter().collect::<Vec<_>>(),
        )?
        .with_clip_grad_norm(5.0)?;
        Ok(Self {
            cfg,
            emb,
            lstm,
            dense,
            opt,
            steps: 0,
        })
    }

    pub fn set_lr(&mut self, lr: f64) -> Result<()> {
        self.opt.set_lr(lr)
    }

    /// (value, gradient) of every parameter, in the optimizer's order.
    fn pairs(&self) -> Result<Vec<(GpuTensor, GpuTensor)>> {
        let mut p = Vec::new();
        for v in [self.emb.pairs()?, self.lstm.pairs()?, self.dense.pairs()?] {
            p.extend(v.into_iter().map(|(a, b)| (a.clone(), b.clone())));
        }
        Ok(p)
    }

    fn upload(&self, ctx: &Context, batch: &Batch) -> Result<GpuIds> {
        upload_ids(ctx, &batch.ids, data::vocab_size())
    }

    /// The review vectors `[B, 2H]` from the LSTM's outputs.
    fn readout(
        &self,
        rec: &mut Recording<'_>,
        out: &gpu::GpuRnnOutput,
        lengths: &[usize],
    ) -> Result<GpuTensor> {
        match self.cfg.readout {
            Readout::MeanPool => gpu::masked_pool(rec, &out.y, Some(lengths), PoolMode::Mean, true),
            Readout::FinalStates => {
                // h_n is [2, B, H]: direction 0 forward, 1 reverse.
                let b = lengths.len();
                let forward = gpu::narrow(&mut *rec, &out.h_n, 0, 0, 1)?;
                let reverse = gpu::narrow(&mut *rec, &out.h_n, 0, 1, 1)?;
                gpu::concat(rec, &[&forward, &reverse], -1)?.reshaped([b, 2 * self.cfg.hidden])
            }
        }
    }

    /// The gradients of the LSTM's outputs from that of the review vectors `dv` `[B, 2H]`.
    fn readout_backward(
        &self,
        rec: &mut Recording<'_>,
        out: &gpu::GpuRnnOutput,
        lengths: &[usize],
        dv: &GpuTensor,
    ) -> Result<(Option<GpuTensor>, Option<GpuTensor>)> {
        match self.cfg.readout {
            Readout::MeanPool => {
                let dy = gpu::masked_pool_backward(
                    rec,
                    &out.y,
                    Some(lengths),
                    PoolMode::Mean,
                    true,
                    dv,
                )?;
                Ok((Some(dy), None))
            }
            Readout::FinalStates => {
                // concat's gradient is a narrow per part; the parts were h_n's two directions.
                let h = self.cfg.hidden;
                let dv = dv.reshaped([1, lengths.len(), 2 * h])?;
                let forward = gpu::narrow(&mut *rec, &dv, -1, 0, h)?;
                let reverse = gpu::narrow(&mut *rec, &dv, -1, h, h)?;
                Ok((None, Some(gpu::concat(rec, &[&forward, &reverse], 0)?)))
            }
        }
    }

    /// One training step, recorded whole and submitted once; returns the mean loss `[]` on the
    /// device (read it only when needed).
    pub fn train_step(&mut self, ctx: &Context, batch: &Batch) -> Result<GpuTensor> {
        let ids = self.upload(ctx, batch)?;
        let labels = ctx.upload(&batch.labels)?;
        let one = ctx.upload(&Tensor::full([], 1.0)?)?;
        let drop = DropoutConfig::new(self.cfg.dropout);
        let drop_seed = self.cfg.seed ^ self.steps.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let lengths = &batch.lengths;
        let mut rec = ctx.record();
        self.emb.zero_grad(&mut rec)?;
        self.lstm.zero_grad(&mut rec)?;
        self.dense.zero_grad(&mut rec)?;
        // Forward.
        let x = gpu::embedding_forward(&mut rec, &self.emb.value, &ids)?;
        let (out, tape) = gpu::rnn_forward_train(
            &mut rec,
            &self.lstm.value,
            GpuRnnInput::new(&x).lengths(lengths),
        )?;
        let v = self.readout(&mut rec, &out, lengths)?;
        let dropped = gpu::dropout(&mut rec, &v, &drop, drop_seed, 0)?;
        let logits = gpu::linear_forward(&mut rec, &self.dense.value, &dropped)?;
        let bce_in = GpuBceInput::new(&logits, &labels);
        let bce = gpu::binary_cross_entropy_with_logits(&mut rec, bce_in, Reduction::Mean)?;
        // Backward, into each module's gradients.
        let dlogits = gpu::binary_cross_entropy_with_logits_backward(&mut rec, bce_in, &bce, &one)?;
        let d_dropped = gpu::linear_backward(
            &mut rec,
            &self.dense.value,
            &dropped,
            &dlogits,
            Some(&self.dense.grad),
        )?
        .dx;
        let dv = gpu::dropout_backward(&mut rec, &d_dropped, &drop, drop_seed, 0)?;
        let (dy, dh_n) = self.readout_backward(&mut rec, &out, lengths, &dv)?;
        let up = GpuRnnOutputGrads {
            dy: dy.as_ref(),
            dh_n: dh_n.as_ref(),
            dc_n: None,
        };
        let g = gpu::rnn_backward(&mut rec, &self.lstm.value, &tape, up, Some(&self.lstm.grad))?;
        gpu::embedding_backward(&mut rec, &self.emb.value, &ids, &g.dx, Some(&self.emb.grad))?;
        let pairs = self.pairs()?;
        self.opt.step(
            &mut rec,
            &pairs.iter().map(|(v, g)| (v, g)).collect::<Vec<_>>(),
        )?;
        rec.submit()?;
        self.steps += 1;
        Ok(bce.loss)
    }

    /// The logit of each review (positive above 0), in inference mode: no dropout.
    pub fn logits(&self, ctx: &Context, batch: &Batch) -> Result<Vec<f32>> {
        let ids = self.upload(ctx, batch)?;
        let mut rec = ctx.record();
        let x = gpu::embedding_forward(&mut rec, &self.emb.value, &ids)?;
        let out = gpu::rnn_forward(
            &mut rec,
            &self.lstm.value,
            GpuRnnInput::new(&x).lengths(&batch.lengths),
        )?;
        let v = self.readout(&mut rec, &out, &batch.lengths)?;
        let logits = gpu::linear_forward(&mut rec, &self.dense.value, &v)?;
        rec.submit()?;
        Ok(ctx.read(&logits)?.into_data())
    }
}
