//! Device objects belong to the context that made them: every op, read, optimizer step and
//! checkpoint call refuses one of another context, naming the argument, and changes nothing.
//! The optimizer finds each parameter's state by the parameter itself, not by position, and
//! an accumulator that is the weights themselves is refused.

use wgrnn::core::{
    AttentionWeights, EmbeddingWeights, LinearWeights, OptimizerConfig, RnnWeights,
    SafetensorsFile, SplitMix64, Tensor,
};
use wgrnn::gpu::{
    self, Context, GpuAttentionInput, GpuOptimizer, GpuParams, GpuRnnInput, GpuRnnOutputGrads,
    GpuTensor, GpuWeights, upload_ids, upload_targets,
};
use wgrnn::{AttentionConfig, CellKind, EmbeddingConfig, Error, LinearConfig, RnnConfig, Score};

use crate::common::random;
use crate::gpu::blockings;

/// Two distinct contexts of the suite (each has its own device and pool).
fn two() -> (&'static Context, &'static Context) {
    let [a, b, _] = blockings();
    (a, b)
}

/// Asserts a foreign-context error naming `arg` (a substring of the argument's name).
#[track_caller]
fn foreign<T>(r: wgrnn::Result<T>, arg: &str) {
    match r {
        Err(e @ Error::ForeignContext { .. }) => {
            let Error::ForeignContext { arg: got, .. } = &e else {
                unreachable!()
            };
            assert!(got.contains(arg), "error `{e}` does not name `{arg}`");
            assert!(e.to_string().contains("another context"), "{e}");
        }
        Err(e) => panic!("expected a foreign-context error naming `{arg}`, got `{e}`"),
        Ok(_) => panic!("expected a foreign-context error naming `{arg}`, got Ok"),
    }
}

fn filled(ctx: &Context, v: f32, n: usize) -> GpuTensor {
    ctx.upload(&Tensor::new([n], vec![v; n]).unwrap()).unwrap()
}

/// The case that once corrupted data: with a dozen tensors on each context, a foreign `x`
/// accumulator aliased another tensor of the local context and `axpy_into` wrote into it.
#[test]
fn a_foreign_tensor_never_aliases_a_local_one() {
    let _watch = crate::validation::watch();
    let (a, b) = two();
    let ta: Vec<GpuTensor> = (0..12).map(|k| filled(a, k as f32, 8)).collect();
    let tb: Vec<GpuTensor> = (0..12).map(|k| filled(b, 100.0 + k as f32, 8)).collect();
    let ones = filled(a, 1.0, 8);
    a.sync().unwrap();
    b.sync().unwrap();
    foreign(gpu::axpy_into(a, &tb[7], 1000.0, &ones), "acc");
    foreign(gpu::axpy_into(a, &ones, 1000.0, &tb[7]), "x");
    foreign(gpu::axpby(a, 1.0, &tb[3], 1.0, &ones), "x");
    foreign(gpu::add(a, &ones, &tb[3]), "y");
    foreign(a.read(&tb[7]), "tensor");
    let ids_b = b.upload_u32(&[2], &[1, 2]).unwrap();
    foreign(a.read_u32(&ids_b), "tensor");
    foreign(gpu::narrow(a, &tb[1], 0, 0, 4), "x");
    foreign(gpu::concat(a, &[&ones, &tb[1]], 0), "parts[1]");
    let m = b.zeros(&[2, 4]).unwrap();
    foreign(gpu::matmul(a, &m, &a.zeros(&[4, 2]).unwrap()), "a");
    foreign(gpu::matmul(a, &a.zeros(&[2, 4]).unwrap(), &m), "b");
    for (k, t) in ta.iter().enumerate() {
        assert_eq!(a.read(t).unwrap().data(), &[k as f32; 8], "ta[{k}] changed");
    }
    assert_eq!(a.read(&ones).unwrap().data(), &[1.0; 8]);
    for (k, t) in tb.iter().enumerate() {
        assert_eq!(b.read(t).unwrap().data(), &[100.0 + k as f32; 8], "tb[{k}]");
    }
}

#[test]
fn recurrent_calls_refuse_foreign_weights_inputs_and_tapes() {
    let _watch = crate::validation::watch();
    let (a, b) = two();
    let mut rng = SplitMix64::new(3);
    let cfg = RnnConfig::new(CellKind::Lstm, 3, 4);
    let host = RnnWeights::<f32>::init(cfg.clone(), 1).unwrap();
    let wa = GpuWeights::upload(a, &host).unwrap();
    let wb = GpuWeights::upload(b, &host).unwrap();
    let x = random::<f32>(&mut rng, &[2, 2, 3], 1.0);
    let (xa, xb) = (a.upload(&x).unwrap(), b.upload(&x).unwrap());
    let h0b = b.zeros(&[1, 2, 4]).unwrap();
    foreign(gpu::rnn_forward(a, &wb, GpuRnnInput::new(&xa)), "w.");
    foreign(gpu::rnn_forward(a, &wa, GpuRnnInput::new(&xb)), "x");
    foreign(
        gpu::rnn_forward(a, &wa, GpuRnnInput::new(&xa).h0(&h0b)),
        "h0",
    );
    foreign(
        gpu::rnn_forward(a, &wa, GpuRnnInput::new(&xa).c0(&h0b)),
        "c0",
    );
    let (out_b, out_b_tape) = gpu::rnn_forward_train(b, &wb, GpuRnnInput::new(&xb)).unwrap();
    let (out_a, out_a_tape) = gpu::rnn_forward_train(a, &wa, GpuRnnInput::new(&xa)).unwrap();
    let up = |dy| GpuRnnOutputGrads {
        dy: Some(dy),
        ..Default::default()
    };
    let tape_b = &out_b_tape;
    let tape_a = &out_a_tape;
    foreign(
        gpu::rnn_backward(a, &wa, tape_b, up(&out_a.y), None),
        "tape",
    );
    foreign(gpu::rnn_backward(a, &wa, tape_a, up(&out_b.y), None), "dy");
    foreign(gpu::rnn_backward(a, &wb, tape_a, up(&out_a.y), None), "w.");
    let gb = GpuWeights::upload(b, &RnnWeights::zeros(cfg).unwrap()).unwrap();
    foreign(
        gpu::rnn_backward(a, &wa, tape_a, up(&out_a.y), Some(&gb)),
        "accumulate.",
    );
    // Weight sets: reads and checkpoints.
    foreign(wb.read(a), "weights");
    let mut file = SafetensorsFile::default();
    foreign(wb.save_into(a, &mut file, ""), "weights");
    wa.save_into(a, &mut file, "").unwrap();
    foreign(wb.load_from(a, &file, ""), "weights");
    // The weights on `b` are as uploaded.
    assert_eq!(wb.read(b).unwrap(), host);
}

#[test]
fn layer_ops_refuse_foreign_objects() {
    let _watch = crate::validation::watch();
    let (a, b) = two();
    let mut rng = SplitMix64::new(5);
    let lin = LinearWeights::<f32>::init(LinearConfig::new(3, 2), 1).unwrap();
    let (la, lb) = (
        GpuWeights::upload(a, &lin).unwrap(),
        GpuWeights::upload(b, &lin).unwrap(),
    );
    let x = random::<f32>(&mut rng, &[4, 3], 1.0);
    let (xa, xb) = (a.upload(&x).unwrap(), b.upload(&x).unwrap());
    let dya = a.zeros(&[4, 2]).unwrap();
    foreign(gpu::linear_forward(a, &lb, &xa), "w.");
    foreign(gpu::linear_forward(a, &la, &xb), "x");
    foreign(
        gpu::linear_backward(a, &la, &xa, &b.zeros(&[4, 2]).unwrap(), None),
        "dy",
    );
    foreign(
        gpu::linear_backward(a, &la, &xa, &dya, Some(&lb)),
        "accumulate",
    );

    let emb = EmbeddingWeights::<f32>::init(EmbeddingConfig::new(5, 2), 1).unwrap();
    let (ea, eb) = (
        GpuWeights::upload(a, &emb).unwrap(),
        GpuWeights::upload(b, &emb).unwrap(),
    );
    let ids = Tensor::new([3], vec![0i64, 4, 2]).unwrap();
    let (ia, ib) = (
        upload_ids(a, &ids, 5).unwrap(),
        upload_ids(b, &ids, 5).unwrap(),
    );
    foreign(gpu::embedding_forward(a, &eb, &ia), "w.");
    foreign(gpu::embedding_forward(a, &ea, &ib), "ids");
    let dy = a.zeros(&[3, 2]).unwrap();
    foreign(gpu::embedding_backward(a, &ea, &ib, &dy, None), "ids");
    foreign(
        gpu::embedding_backward(a, &ea, &ia, &dy, Some(&eb)),
        "accumulate",
    );

    let logits_b = b.zeros(&[3, 4]).unwrap();
    let logits_a = a.zeros(&[3, 4]).unwrap();
    let t = Tensor::new([3], vec![0i64, 3, 1]).unwrap();
    let (ta, tb) = (
        upload_targets(a, &t, 4, None).unwrap(),
        upload_targets(b, &t, 4, None).unwrap(),
    );
    foreign(gpu::cross_entropy(a, &logits_b, &ta), "logits");
    foreign(gpu::cross_entropy(a, &logits_a, &tb), "targets");
    foreign(gpu::log_softmax(a, &logits_b), "logits");
    let ce_a = gpu::cross_entropy(a, &logits_a, &ta).unwrap();
    let ce_b = gpu::cross_entropy(b, &logits_b, &tb).unwrap();
    foreign(
        gpu::cross_entropy_backward(a, &logits_a, &ta, &ce_b, 1.0),
        "forward",
    );

    let att = AttentionWeights::<f32>::init(AttentionConfig::new(Score::General, 2), 1).unwrap();
    let (aa, ab) = (
        GpuWeights::upload(a, &att).unwrap(),
        GpuWeights::upload(b, &att).unwrap(),
    );
    let q = random::<f32>(&mut rng, &[1, 2, 2], 1.0);
    let (qa, qb) = (a.upload(&q).unwrap(), b.upload(&q).unwrap());
    foreign(
        gpu::attention_forward(a, &ab, GpuAttentionInput::new(&qa, &qa, &qa)),
        "w.",
    );
    foreign(
        gpu::attention_forward(a, &aa, GpuAttentionInput::new(&qb, &qa, &qa)),
        "query",
    );
    foreign(
        gpu::attention_forward(a, &aa, GpuAttentionInput::new(&qa, &qb, &qa)),
        "key",
    );
    foreign(
        gpu::attention_forward(a, &aa, GpuAttentionInput::new(&qa, &qa, &qb)),
        "value",
    );
    let input = GpuAttentionInput::new(&qa, &qa, &qa);
    let out = gpu::attention_forward(a, &aa, input).unwrap();
    let dctx_b = b.zeros(&[1, 2, 2]).unwrap();
    foreign(
        gpu::attention_backward(a, &aa, input, &out, &dctx_b, None, None),
        "d_context",
    );
    let dctx = a.zeros(&[1, 2, 2]).unwrap();
    foreign(
        gpu::attention_backward(a, &aa, input, &out, &dctx, None, Some(&ab)),
        "accumulate",
    );
    // The local calls themselves work.
    gpu::cross_entropy_backward(a, &logits_a, &ta, &ce_a, 1.0).unwrap();
    gpu::attention_backward(a, &aa, input, &out, &dctx, None, None).unwrap();
}

#[test]
fn an_optimizer_refuses_parameters_of_another_context() {
    let _watch = crate::validation::watch();
    let (a, b) = two();
    let cfg = RnnConfig::new(CellKind::Gru, 2, 3);
    let pa = GpuParams::init(a, cfg.clone(), 1).unwrap();
    let pb = GpuParams::init(b, cfg, 2).unwrap();
    let before_a = pa.value.read(a).unwrap();
    let before_b = pb.value.read(b).unwrap();
    let values_a: Vec<&GpuTensor> = pa.value.tensors().values().collect();
    let mut opt = GpuOptimizer::new(a, OptimizerConfig::sgd(100.0, 0.0), &values_a).unwrap();
    foreign(opt.step(a, &pb.pairs().unwrap()), "params[0]");
    // The optimizer's own context is `a`: stepping its parameters through `b` is refused too.
    foreign(opt.step(b, &pa.pairs().unwrap()), "ctx");
    foreign(opt.last_grad_norm(b), "ctx");
    let values_b: Vec<&GpuTensor> = pb.value.tensors().values().collect();
    foreign(
        GpuOptimizer::new(a, OptimizerConfig::sgd(1.0, 0.0), &values_b),
        "params[0]",
    );
    foreign(pb.zero_grad(a), "grad");
    assert_eq!(opt.steps(), 0);
    assert_eq!(pa.value.read(a).unwrap(), before_a);
    assert_eq!(pb.value.read(b).unwrap(), before_b);
}

/// Adam over two parameters of one shape, with the pairs given in one order on some steps and
/// in the other on others: the state follows each parameter, so the result is bit for bit that
/// of the same steps given in one order throughout.
#[test]
fn optimizer_state_follows_the_parameter_not_its_position() {
    let _watch = crate::validation::watch();
    let (ctx, _) = two();
    let mut rng = SplitMix64::new(11);
    let init: Vec<Tensor<f32>> = (0..2).map(|_| random(&mut rng, &[6], 1.0)).collect();
    let grads: Vec<Vec<Tensor<f32>>> = (0..3)
        .map(|_| (0..2).map(|_| random(&mut rng, &[6], 1.0)).collect())
        .collect();
    let run = |swap_on: &[bool]| -> Vec<Vec<f32>> {
        let v: Vec<GpuTensor> = init.iter().map(|t| ctx.upload(t).unwrap()).collect();
        let mut opt = GpuOptimizer::new(ctx, OptimizerConfig::adam(0.1), &[&v[0], &v[1]]).unwrap();
        for (step, g) in grads.iter().enumerate() {
            let g: Vec<GpuTensor> = g.iter().map(|t| ctx.upload(t).unwrap()).collect();
            let mut pairs = vec![(&v[0], &g[0]), (&v[1], &g[1])];
            if swap_on[step] {
                pairs.reverse();
            }
            opt.step(ctx, &pairs).unwrap();
        }
        v.iter()
            .map(|t| ctx.read(t).unwrap().data().to_vec())
            .collect()
    };
    let in_order = run(&[false, false, false]);
    let mixed = run(&[false, true, false]);
    assert_eq!(
        mixed, in_order,
        "state swapped between parameters of one shape"
    );
}

#[test]
fn optimizer_refuses_unknown_repeated_and_missing_parameters() {
    let _watch = crate::validation::watch();
    let (ctx, _) = two();
    let [p, q, r] = [0.0f32, 1.0, 2.0].map(|v| filled(ctx, v, 4));
    let g = filled(ctx, 0.5, 4);
    let e = GpuOptimizer::new(ctx, OptimizerConfig::adam(1e-3), &[&p, &p])
        .err()
        .expect("one tensor twice");
    assert!(
        e.to_string().contains("params[1]") && e.to_string().contains("again"),
        "{e}"
    );
    // A reshaped view is the same storage, so the same parameter.
    let view = p.reshaped([2, 2]).unwrap();
    let e = GpuOptimizer::new(ctx, OptimizerConfig::adam(1e-3), &[&p, &view])
        .err()
        .expect("a view of one tensor twice");
    assert!(e.to_string().contains("again"), "{e}");
    let mut opt = GpuOptimizer::new(ctx, OptimizerConfig::adam(1e-3), &[&p, &q]).unwrap();
    let e = opt.step(ctx, &[(&p, &g), (&r, &g)]).unwrap_err();
    assert!(e.to_string().contains("not a parameter"), "{e}");
    let e = opt.step(ctx, &[(&p, &g), (&p, &g)]).unwrap_err();
    assert!(e.to_string().contains("given already"), "{e}");
    let e = opt.step(ctx, &[(&q, &g)]).unwrap_err();
    assert!(e.to_string().contains("missing parameter 0"), "{e}");
    let e = opt.step(ctx, &[(&p, &q), (&q, &g)]).unwrap_err();
    assert!(e.to_string().contains("same buffer as parameter 1"), "{e}");
    assert_eq!(opt.steps(), 0);
    for (t, v) in [(&p, 0.0), (&q, 1.0), (&r, 2.0)] {
        assert_eq!(ctx.read(t).unwrap().data(), &[v; 4]);
    }
}

/// A backward's accumulator that is the weights themselves would add the gradient into the
/// values: every backward refuses it.
#[test]
fn accumulating_into_the_weights_is_refused() {
    let _watch = crate::validation::watch();
    let (ctx, _) = two();
    let mut rng = SplitMix64::new(13);
    let cfg = RnnConfig::new(CellKind::RnnTanh, 2, 3);
    let w = GpuWeights::upload(ctx, &RnnWeights::<f32>::init(cfg, 1).unwrap()).unwrap();
    let x = ctx.upload(&random(&mut rng, &[2, 1, 2], 1.0)).unwrap();
    let (out, out_tape) = gpu::rnn_forward_train(ctx, &w, GpuRnnInput::new(&x)).unwrap();
    let up = GpuRnnOutputGrads {
        dy: Some(&out.y),
        ..Default::default()
    };
    let before = w.read(ctx).unwrap();
    let e = gpu::rnn_backward(ctx, &w, &out_tape, up, Some(&w)).unwrap_err();
    assert!(
        e.to_string().contains("accumulate") && e.to_string().contains("weights"),
        "{e}"
    );
    assert_eq!(w.read(ctx).unwrap(), before);

    let lin = GpuWeights::upload(
        ctx,
        &LinearWeights::<f32>::init(LinearConfig::new(2, 2), 1).unwrap(),
    )
    .unwrap();
    let xl = ctx.zeros(&[3, 2]).unwrap();
    let e = gpu::linear_backward(ctx, &lin, &xl, &xl, Some(&lin)).unwrap_err();
    assert!(e.to_string().contains("accumulate"), "{e}");
    let emb = GpuWeights::upload(
        ctx,
        &EmbeddingWeights::<f32>::init(EmbeddingConfig::new(3, 2), 1).unwrap(),
    )
    .unwrap();
    let ids = upload_ids(ctx, &Tensor::new([2], vec![0i64, 2]).unwrap(), 3).unwrap();
    let dy = ctx.zeros(&[2, 2]).unwrap();
    let e = gpu::embedding_backward(ctx, &emb, &ids, &dy, Some(&emb)).unwrap_err();
    assert!(e.to_string().contains("accumulate"), "{e}");
    let att = GpuWeights::upload(
        ctx,
        &AttentionWeights::<f32>::init(AttentionConfig::new(Score::Additive, 2), 1).unwrap(),
    )
    .unwrap();
    let q = ctx.upload(&random(&mut rng, &[1, 2, 2], 1.0)).unwrap();
    let input = GpuAttentionInput::new(&q, &q, &q);
    let out = gpu::attention_forward(ctx, &att, input).unwrap();
    let dctx = ctx.zeros(&[1, 2, 2]).unwrap();
    let e = gpu::attention_backward(ctx, &att, input, &out, &dctx, None, Some(&att)).unwrap_err();
    assert!(e.to_string().contains("accumulate"), "{e}");
}
