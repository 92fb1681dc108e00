//! Several op calls in one submit ([`Recording`]): a trainer's step recorded whole gives the
//! bits of the same calls made one by one, in one submit; buffers of a recording stay its own
//! until the submit; a failing op takes back what it recorded; and every use that would see a
//! recording's commands out of order (a readback, other work, a checkpoint load) is refused.

use std::sync::{Mutex, MutexGuard, OnceLock};

use wgrnn::core::{OptimizerConfig, SafetensorsFile, SplitMix64, Tensor};
use wgrnn::gpu::{
    self, Context, GpuOptimizer, GpuParams, GpuRnnInput, GpuRnnOutputGrads, GpuTensor, GpuWeights,
    Record, Recording, upload_ids, upload_targets,
};
use wgrnn::{CellKind, EmbeddingConfig, Error, LinearConfig, RnnConfig};

use crate::common::random;
use crate::gpu::{blockings, ctx};

/// A context for tests that count submits, one test at a time: the suite's shared contexts
/// serve tests running at the same time, whose submits would count in [`Context::submits`].
pub fn own() -> MutexGuard<'static, Context> {
    crate::validation::assert_watched();
    static OWN: OnceLock<Mutex<Context>> = OnceLock::new();
    let own = OWN.get_or_init(|| Mutex::new(Context::new().expect("GPU tests need an adapter")));
    // A test that failed while holding it leaves the context as good as before.
    own.lock().unwrap_or_else(|e| e.into_inner())
}

/// Where a step records: the context (one submit per call) or a recording.
trait On<'c> {
    fn on(&mut self) -> impl Record<'c> + '_;
}

impl<'c> On<'c> for &'c Context {
    fn on(&mut self) -> impl Record<'c> + '_ {
        *self
    }
}

impl<'c> On<'c> for &mut Recording<'c> {
    fn on(&mut self) -> impl Record<'c> + '_ {
        &mut **self
    }
}

const VOCAB: usize = 7;
const T: usize = 5;
const B: usize = 3;

/// Embedding → LSTM (uneven lengths) → linear → cross-entropy, with Adam and gradient-norm
/// clipping over all of it.
struct Net {
    emb: GpuParams<EmbeddingConfig>,
    rnn: GpuParams<RnnConfig>,
    out: GpuParams<LinearConfig>,
    opt: GpuOptimizer,
}

impl Net {
    fn new(ctx: &Context) -> Net {
        let emb = GpuParams::init(ctx, EmbeddingConfig::new(VOCAB, 4), 1).unwrap();
        let rnn = GpuParams::init(ctx, RnnConfig::new(CellKind::Lstm, 4, 6), 2).unwrap();
        let out = GpuParams::init(ctx, LinearConfig::new(6, VOCAB), 3).unwrap();
        let values: Vec<GpuTensor> = [&emb.value.tensors(), &rnn.value.tensors()]
            .into_iter()
            .chain([&out.value.tensors()])
            .flat_map(|m| m.values().cloned())
            .collect();
        let opt = GpuOptimizer::new(
            ctx,
            OptimizerConfig::adam(0.05),
            &values.iter().collect::<Vec<_>>(),
        )
        .unwrap()
        .with_clip_grad_norm(0.5)
        .unwrap();
        Net { emb, rnn, out, opt }
    }

    fn pairs(&self) -> Vec<(GpuTensor, GpuTensor)> {
        let mut p: Vec<(GpuTensor, GpuTensor)> = Vec::new();
        for v in [self.emb.pairs(), self.rnn.pairs(), self.out.pairs()] {
            p.extend(v.unwrap().into_iter().map(|(a, b)| (a.clone(), b.clone())));
        }
        p
    }

    /// One training step on `ids [T, B]`, predicting `targets [T, B]`; the loss `[loss,
    /// count]`.
    fn step<'c>(&mut self, ctx: &'c Context, mut on: impl On<'c>, seed: u64) -> GpuTensor {
        let mut rng = SplitMix64::new(seed);
        let mut draw = |n: usize| -> Vec<i64> {
            (0..n)
                .map(|_| (rng.uniform(0.0, VOCAB as f64) as i64).min(VOCAB as i64 - 1))
                .collect()
        };
        let ids = Tensor::new([T, B], draw(T * B)).unwrap();
        let targets = Tensor::new([T, B], draw(T * B)).unwrap();
        let ids = upload_ids(ctx, &ids, VOCAB).unwrap();
        let targets = upload_targets(ctx, &targets, VOCAB, None).unwrap();
        let lengths = [T, 2, 4];
        self.emb.zero_grad(on.on()).unwrap();
        self.rnn.zero_grad(on.on()).unwrap();
        self.out.zero_grad(on.on()).unwrap();
        let x = gpu::embedding_forward(on.on(), &self.emb.value, &ids).unwrap();
        let input = GpuRnnInput::new(&x).lengths(&lengths);
        let (y, y_tape) = gpu::rnn_forward_train(on.on(), &self.rnn.value, input).unwrap();
        let logits = gpu::linear_forward(on.on(), &self.out.value, &y.y).unwrap();
        let ce = gpu::cross_entropy(on.on(), &logits, &targets).unwrap();
        let dlogits = gpu::cross_entropy_backward(on.on(), &logits, &targets, &ce, 1.0).unwrap();
        let acc = Some(&self.out.grad);
        let dy = gpu::linear_backward(on.on(), &self.out.value, &y.y, &dlogits, acc).unwrap();
        let up = GpuRnnOutputGrads {
            dy: Some(&dy.dx),
            ..Default::default()
        };
        let tape = &y_tape;
        let acc = Some(&self.rnn.grad);
        let dx = gpu::rnn_backward(on.on(), &self.rnn.value, tape, up, acc).unwrap();
        let acc = Some(&self.emb.grad);
        gpu::embedding_backward(on.on(), &self.emb.value, &ids, &dx.dx, acc).unwrap();
        let pairs = self.pairs();
        let pairs: Vec<(&GpuTensor, &GpuTensor)> = pairs.iter().map(|(v, g)| (v, g)).collect();
        self.opt.step(on.on(), &pairs).unwrap();
        ce.loss
    }

    /// Every value, gradient and the loss, as bits.
    fn bits(&self, ctx: &Context, loss: &GpuTensor) -> Vec<u32> {
        let mut out: Vec<u32> = ctx
            .read(loss)
            .unwrap()
            .data()
            .iter()
            .map(|v| v.to_bits())
            .collect();
        for (v, g) in self.pairs() {
            for t in [v, g] {
                out.extend(ctx.read(&t).unwrap().data().iter().map(|v| v.to_bits()));
            }
        }
        out
    }
}

#[test]
fn a_recorded_training_step_gives_the_bits_of_the_calls_one_by_one_in_one_submit() {
    let _watch = crate::validation::watch();
    let own = own();
    let ctx: &Context = &own;
    let mut alone = Net::new(ctx);
    let mut recorded = Net::new(ctx);
    for seed in 0..3 {
        let before = ctx.submits();
        let loss_alone = alone.step(ctx, ctx, seed);
        let one_by_one = ctx.submits() - before;

        let before = ctx.submits();
        let mut rec = ctx.record();
        let loss_recorded = recorded.step(ctx, &mut rec, seed);
        let commands = rec.commands();
        rec.submit().unwrap();
        assert_eq!(ctx.submits() - before, 1, "a recorded step submits once");
        assert!(
            one_by_one >= 12 && commands > one_by_one as usize,
            "{one_by_one} submits one by one, {commands} commands recorded"
        );
        assert_eq!(recorded.opt.steps(), seed + 1);
        let (a, r) = (
            alone.bits(ctx, &loss_alone),
            recorded.bits(ctx, &loss_recorded),
        );
        assert_eq!(a.len(), r.len());
        if let Some(i) = (0..a.len()).find(|&i| a[i] != r[i]) {
            panic!(
                "step {seed}: element {i} of loss ++ values ++ gradients is {} recorded, {} one \
                 by one",
                f32::from_bits(r[i]),
                f32::from_bits(a[i])
            );
        }
        eprintln!("step {seed}: {one_by_one} submits one by one, 1 recorded ({commands} commands)");
    }
}

fn filled(ctx: &Context, v: f32, n: usize) -> GpuTensor {
    ctx.upload(&Tensor::new([n], vec![v; n]).unwrap()).unwrap()
}

#[track_caller]
fn unsubmitted<T: std::fmt::Debug>(r: wgrnn::Result<T>, op: &str, reason: &str) {
    match r {
        Err(e @ Error::Unsubmitted { .. }) => {
            let s = e.to_string();
            assert!(s.contains(op) && s.contains(reason), "{s}");
            assert!(s.contains("submit that recording first"), "{s}");
        }
        other => panic!("expected Unsubmitted from {op} ({reason}), got {other:?}"),
    }
}

/// A readback of what a recording will write is refused (the context cannot submit a
/// recording its caller holds); what it only reads may be read; after the submit, everything.
#[test]
fn reading_what_an_unsubmitted_recording_writes_is_refused() {
    let _watch = crate::validation::watch();
    let ctx = ctx();
    let x = filled(ctx, 2.0, 5);
    let mut rec = ctx.record();
    let y = gpu::axpby(&mut rec, 3.0, &x, 0.0, &x).unwrap();
    unsubmitted(ctx.read(&y), "read", "is written by");
    unsubmitted(
        ctx.read(&y.reshaped([1, 5]).unwrap()),
        "read",
        "is written by",
    );
    assert_eq!(ctx.read(&x).unwrap().data(), &[2.0; 5]);
    rec.submit().unwrap();
    assert_eq!(ctx.read(&y).unwrap().data(), &[6.0; 5]);
}

/// A tensor whose only handle is dropped while a recording still reads it stays the
/// recording's: an upload of the same size then gets another buffer, and its write (which
/// lands before the next submit) does not reach what the recording reads.
#[test]
fn a_recording_keeps_the_buffers_it_uses_until_the_submit() {
    let _watch = crate::validation::watch();
    let ctx = ctx();
    let mut rec = ctx.record();
    let tmp = filled(ctx, 1.5, 300);
    let out = gpu::axpby(&mut rec, 2.0, &tmp, 0.0, &tmp).unwrap();
    drop(tmp);
    let others: Vec<GpuTensor> = (0..4).map(|_| filled(ctx, -7.0, 300)).collect();
    rec.submit().unwrap();
    assert_eq!(ctx.read(&out).unwrap().data(), &[3.0; 300]);
    assert_eq!(ctx.read(&others[0]).unwrap().data(), &[-7.0; 300]);
}

/// An op that fails part-way (here at its third command, on a tensor another recording will
/// write) leaves the recording as it was: none of its commands run at the submit, and the
/// tensors it had reached are free for other work again.
#[test]
fn an_op_that_fails_while_recording_takes_back_what_it_recorded() {
    let _watch = crate::validation::watch();
    let ctx = ctx();
    let mut rng = SplitMix64::new(9);
    let cfg = LinearConfig::new(4, 3);
    let w = GpuWeights::init(ctx, cfg, 4).unwrap();
    let x = ctx.upload(&random::<f32>(&mut rng, &[2, 4], 1.0)).unwrap();
    let mut writer = ctx.record();
    gpu::axpy_into(
        &mut writer,
        w.get("bias").unwrap(),
        1.0,
        &filled(ctx, 1.0, 3),
    )
    .unwrap();

    let u = ctx.upload(&random::<f32>(&mut rng, &[6], 1.0)).unwrap();
    let mut rec = ctx.record();
    let z = gpu::axpby(&mut rec, 1.0, &u, 1.0, &u).unwrap();
    let before = rec.commands();
    // The packs of x and of the weight record; the GEMM reading the bias is refused.
    unsubmitted(
        gpu::linear_forward(&mut rec, &w, &x),
        "linear_forward",
        "is written by",
    );
    assert_eq!(
        rec.commands(),
        before,
        "the failed op's commands are taken back"
    );
    // x is no longer counted as read by `rec`'s failed op: writing it is allowed.
    let zero = filled(ctx, 0.0, 8).reshaped([2, 4]).unwrap();
    gpu::axpy_into(ctx, &x, 0.0, &zero).unwrap();
    // The group form takes back several ops at once.
    let r = rec.all_or_nothing(|r| {
        gpu::axpby(&mut *r, 1.0, &z, 1.0, &z)?;
        gpu::linear_forward(&mut *r, &w, &x)
    });
    unsubmitted(r, "linear_forward", "is written by");
    assert_eq!(rec.commands(), before);
    writer.submit().unwrap();
    let y = gpu::linear_forward(&mut rec, &w, &x).unwrap();
    rec.submit().unwrap();
    let want = gpu::linear_forward(ctx, &w, &x).unwrap();
    assert_eq!(
        ctx.read(&y).unwrap().data(),
        ctx.read(&want).unwrap().data()
    );
    let twice = ctx.read(&z).unwrap();
    let us = ctx.read(&u).unwrap();
    let doubled: Vec<f32> = us.data().iter().map(|v| v + v).collect();
    assert_eq!(twice.data(), &doubled[..]);
}

/// Other work that would run before a recording it depends on, or overwrite what it reads, is
/// refused until the recording is submitted: one-call ops, a second recording, a checkpoint
/// load into its weights, reading the optimizer's gradient norm.
#[test]
fn work_around_an_unsubmitted_recording_is_refused_in_either_order() {
    let _watch = crate::validation::watch();
    let ctx = ctx();
    let w = GpuParams::init(ctx, LinearConfig::new(3, 2), 5).unwrap();
    let x = filled(ctx, 0.25, 6).reshaped([2, 3]).unwrap();
    let mut opt = GpuOptimizer::new(
        ctx,
        OptimizerConfig::sgd(0.1, 0.0),
        &w.value.tensors().values().collect::<Vec<_>>(),
    )
    .unwrap()
    .with_clip_grad_norm(1.0)
    .unwrap();
    let mut rec = ctx.record();
    let y = gpu::linear_forward(&mut rec, &w.value, &x).unwrap();
    // Using what it will write, in a call that would run before it.
    unsubmitted(gpu::add(ctx, &y, &y), "axpby", "is written by");
    let mut other = ctx.record();
    unsubmitted(
        gpu::narrow(&mut other, &y, 0, 0, 1),
        "narrow",
        "is written by",
    );
    assert_eq!(other.commands(), 0);
    // Writing what it reads.
    unsubmitted(
        gpu::axpy_into(ctx, &x, 1.0, &filled(ctx, 1.0, 6).reshaped([2, 3]).unwrap()),
        "axpy_into",
        "is read by",
    );
    let mut file = SafetensorsFile::default();
    w.value.save_into(ctx, &mut file, "out.").unwrap();
    unsubmitted(
        w.value.load_from(ctx, &file, "out."),
        "load_with",
        "is read by",
    );
    // Reading only what it reads is fine.
    assert_eq!(gpu::add(ctx, &x, &x).unwrap().shape(), &[2, 3]);
    // The optimizer's step in the recording writes its norm: reading it waits for the submit.
    let pairs = w.pairs().unwrap();
    w.zero_grad(&mut rec).unwrap();
    opt.step(&mut rec, &pairs).unwrap();
    unsubmitted(opt.last_grad_norm(ctx), "read", "is written by");
    rec.submit().unwrap();
    assert_eq!(opt.last_grad_norm(ctx).unwrap(), 0.0);
    assert_eq!(gpu::add(ctx, &y, &y).unwrap().shape(), &[2, 2]);
    gpu::narrow(&mut other, &y, 0, 0, 1).unwrap();
    other.submit().unwrap();
    w.value.load_from(ctx, &file, "out.").unwrap();
}

/// A recording dropped unsubmitted runs nothing and puts back the optimizer's step count, as
/// a failed group does; the step's bias correction then starts from the count kept.
#[test]
fn a_dropped_recording_runs_nothing_and_takes_its_optimizer_steps_back() {
    let _watch = crate::validation::watch();
    let ctx = ctx();
    let p = filled(ctx, 1.0, 4);
    let g = filled(ctx, 0.5, 4);
    let mut opt = GpuOptimizer::new(ctx, OptimizerConfig::adam(0.1), &[&p]).unwrap();
    let mut rec = ctx.record();
    opt.step(&mut rec, &[(&p, &g)]).unwrap();
    opt.step(&mut rec, &[(&p, &g)]).unwrap();
    assert_eq!(opt.steps(), 2);
    drop(rec);
    assert_eq!(opt.steps(), 0);
    assert_eq!(ctx.read(&p).unwrap().data(), &[1.0; 4]);

    let mut rec = ctx.record();
    let r: wgrnn::Result<()> = rec.all_or_nothing(|r| {
        opt.step(&mut *r, &[(&p, &g)])?;
        gpu::narrow(&mut *r, &p, 0, 3, 2).map(|_| ())
    });
    assert!(matches!(r, Err(Error::InvalidArgument { .. })), "{r:?}");
    assert_eq!((opt.steps(), rec.commands()), (0, 0));
    opt.step(&mut rec, &[(&p, &g)]).unwrap();
    rec.submit().unwrap();
    assert_eq!(opt.steps(), 1);
    // Adam's first step moves every weight by lr against the gradient's sign.
    for v in ctx.read(&p).unwrap().data() {
        assert!((v - 0.9).abs() < 1e-6, "{v}");
    }
}

/// Tensors of another context are refused by a recording as by the one-call form, naming the
/// argument, and the recording keeps what it had.
#[test]
fn a_recording_refuses_another_contexts_tensors() {
    let _watch = crate::validation::watch();
    let [a, b, _] = blockings();
    let x = filled(a, 1.0, 4);
    let foreign = filled(b, 1.0, 4);
    let mut rec = a.record();
    let y = gpu::add(&mut rec, &x, &x).unwrap();
    let before = rec.commands();
    let e = gpu::add(&mut rec, &x, &foreign).unwrap_err();
    assert!(
        matches!(e, Error::ForeignContext { ref arg, .. } if arg == "y"),
        "{e}"
    );
    let e = gpu::concat(&mut rec, &[&x, &foreign], 0).unwrap_err();
    assert!(
        matches!(e, Error::ForeignContext { ref arg, .. } if arg == "parts[1]"),
        "{e}"
    );
    let mut opt = GpuOptimizer::new(b, OptimizerConfig::sgd(0.1, 0.0), &[&foreign]).unwrap();
    let e = opt.step(&mut rec, &[(&foreign, &foreign)]).unwrap_err();
    assert!(matches!(e, Error::ForeignContext { .. }), "{e}");
    assert_eq!(rec.commands(), before);
    assert_eq!(rec.context() as *const Context, a as *const Context);
    rec.submit().unwrap();
    assert_eq!(a.read(&y).unwrap().data(), &[2.0; 4]);
}
