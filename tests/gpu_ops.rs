//! GPU embedding, attention, linear and cross-entropy against the CPU reference; device
//! injection, pool reuse and errors.

use wgrnn::core::{
    AttentionWeights, EmbeddingWeights, LinearWeights, RnnWeights, SplitMix64, Tensor,
};
use wgrnn::cpu::{
    AttentionInput, attention_forward, cross_entropy, embedding_forward, linear_forward,
    log_softmax,
};
use wgrnn::gpu::{
    self, Context, GpuAttentionInput, GpuRnnInput, GpuWeights, upload_ids, upload_targets,
};
use wgrnn::{AttentionConfig, CellKind, EmbeddingConfig, Error, LinearConfig, RnnConfig, Score};

use crate::cases::{AttentionCase, attention_cases};
use crate::common::{assert_close, assert_tensor_close, random};
use crate::gpu::ctx;
use crate::gpu_rnn::GPU_F32;
use crate::paths::per_path;

#[test]
fn embedding_matches_cpu() {
    let _watch = crate::validation::watch();
    let ctx = ctx();
    for (v, d, shape) in [(1, 1, vec![1]), (13, 6, vec![5, 4]), (65, 129, vec![3, 17])] {
        let w = EmbeddingWeights::<f32>::init(EmbeddingConfig::new(v, d), 3).unwrap();
        let mut rng = SplitMix64::new(4);
        let ids = Tensor::from_fn(shape.clone(), |_| rng.below(v) as i64).unwrap();
        let want = embedding_forward(&w, &ids).unwrap();
        let gw = GpuWeights::upload(ctx, &w).unwrap();
        let got = gpu::embedding_forward(ctx, &gw, &upload_ids(ctx, &ids, v).unwrap()).unwrap();
        // A gather copies bits: exact.
        assert_eq!(ctx.read(&got).unwrap(), want, "V={v} D={d}");
    }
}

#[test]
fn attention_matches_cpu_for_every_score() {
    let _watch = crate::validation::watch();
    let ctx = ctx();
    for c in attention_cases() {
        let AttentionCase {
            index: i,
            score,
            b,
            tq,
            tk,
            d,
            ref cfg,
        } = c;
        let w = AttentionWeights::<f64>::init(cfg.clone(), 10 + i as u64).unwrap();
        let mut rng = SplitMix64::new(20 + i as u64);
        let q: Tensor<f64> = random(&mut rng, &[b, tq, cfg.query_size], 1.0);
        let k: Tensor<f64> = random(&mut rng, &[b, tk, cfg.key_size], 1.0);
        let v: Tensor<f64> = random(&mut rng, &[b, tk, cfg.value_size], 1.0);
        let lens = c.key_lengths();
        let want =
            attention_forward(&w, AttentionInput::new(&q, &k, &v).key_lengths(&lens)).unwrap();
        let gw = GpuWeights::upload(ctx, &w.cast()).unwrap();
        let (gq, gk, gv) = (
            ctx.upload(&q.cast()).unwrap(),
            ctx.upload(&k.cast()).unwrap(),
            ctx.upload(&v.cast()).unwrap(),
        );
        let got = gpu::attention_forward(
            ctx,
            &gw,
            GpuAttentionInput::new(&gq, &gk, &gv).key_lengths(&lens),
        )
        .unwrap();
        let what = format!("{score:?} B={b} Tq={tq} Tk={tk} D={d}");
        assert_tensor_close(
            &format!("{what}: weights"),
            &ctx.read(&got.weights).unwrap(),
            &want.weights,
            GPU_F32,
        );
        assert_tensor_close(
            &format!("{what}: context"),
            &ctx.read(&got.context).unwrap(),
            &want.context,
            GPU_F32,
        );
    }
}

#[test]
fn linear_matches_cpu() {
    let _watch = crate::validation::watch();
    let ctx = ctx();
    for (bias, fi, fo, shape) in [
        (true, 1, 1, vec![1, 1]),
        (true, 17, 65, vec![3, 5, 17]),
        (false, 129, 3, vec![9, 129]),
        // k = 300 is split into chunks on CPU adapters; the bias goes in with the first.
        (true, 300, 20, vec![70, 300]),
    ] {
        let w = LinearWeights::<f64>::init(
            LinearConfig {
                bias,
                ..LinearConfig::new(fi, fo)
            },
            5,
        )
        .unwrap();
        let mut rng = SplitMix64::new(6);
        let x: Tensor<f64> = random(&mut rng, &shape, 1.0);
        let want = linear_forward(&w, &x).unwrap();
        let got = gpu::linear_forward(
            ctx,
            &GpuWeights::upload(ctx, &w.cast()).unwrap(),
            &ctx.upload(&x.cast()).unwrap(),
        )
        .unwrap();
        assert_tensor_close(
            &format!("linear {fi}->{fo}"),
            &ctx.read(&got).unwrap(),
            &want,
            GPU_F32,
        );
    }
}

/// Narrow rows take one invocation each, wide ones a workgroup: past 4,096 classes on GPUs,
/// past about 21,800 on CPU adapters, which end an invocation's loops after 65,535 iterations
/// and need it there (40,000 and 70,000 classes). 5,000 and 21,000 classes take the GPUs' wide
/// kernel and the CPU adapters' narrow one. 1,300,000 classes is near the widest row the
/// workgroup kernel runs on CPU adapters (its loops take 3·⌈C/64⌉ + 12 trips, 60,951 here);
/// it fails if the bound they are checked against is too loose.
#[test]
fn cross_entropy_matches_cpu_and_is_bit_reproducible() {
    let _watch = crate::validation::watch();
    let ctx = ctx();
    let mut rng = SplitMix64::new(7);
    for (n, c) in [
        (1, 1),
        (3, 5),
        (130, 65),
        (70, 5_000),
        (3, 21_000),
        (3, 40_000),
        (3, 70_000),
        (1, 1_300_000),
    ] {
        let logits: Tensor<f64> = random(&mut rng, &[n, c], 4.0);
        let targets = Tensor::from_fn([n], |i| {
            if i % 7 == 3 {
                -100
            } else {
                rng.below(c) as i64
            }
        })
        .unwrap();
        let want = cross_entropy(&logits, &targets, Some(-100)).unwrap();
        let gl = ctx.upload(&logits.cast()).unwrap();
        let gt = upload_targets(ctx, &targets, c, Some(-100)).unwrap();
        let got = ctx
            .read(&gpu::cross_entropy(ctx, &gl, &gt).unwrap().loss)
            .unwrap();
        assert_close(
            &format!("CE N={n} C={c}"),
            &got.data()[..1],
            &[want.loss],
            GPU_F32,
        );
        assert_eq!(got.data()[1], want.count as f32);
        let again = ctx
            .read(&gpu::cross_entropy(ctx, &gl, &gt).unwrap().loss)
            .unwrap();
        assert_eq!(
            got.data()[0].to_bits(),
            again.data()[0].to_bits(),
            "loss differs between identical calls"
        );
        let lp = ctx.read(&gpu::log_softmax(ctx, &gl).unwrap()).unwrap();
        assert_tensor_close(
            &format!("log_softmax N={n} C={c}"),
            &lp,
            &log_softmax(&logits).unwrap(),
            GPU_F32,
        );
    }
}

#[test]
fn recurrent_forward_is_bit_reproducible() {
    let _watch = crate::validation::watch();
    let ctx = ctx();
    let cfg = RnnConfig::new(CellKind::Lstm, 7, 33)
        .layers(2)
        .bidirectional(true);
    let w = GpuWeights::upload(ctx, &RnnWeights::<f32>::init(cfg, 1).unwrap()).unwrap();
    let x = ctx
        .upload(&random(&mut SplitMix64::new(2), &[9, 5, 7], 1.0))
        .unwrap();
    let lens = [9, 3, 5, 9, 1];
    let run = || {
        let (out, _tape) =
            gpu::rnn_forward_train(ctx, &w, GpuRnnInput::new(&x).lengths(&lens)).unwrap();
        (ctx.read(&out.y).unwrap(), ctx.read(&out.h_n).unwrap())
    };
    let (a, b) = (run(), run());
    assert!(
        a.0.data()
            .iter()
            .zip(b.0.data())
            .all(|(x, y)| x.to_bits() == y.to_bits())
    );
    assert!(
        a.1.data()
            .iter()
            .zip(b.1.data())
            .all(|(x, y)| x.to_bits() == y.to_bits())
    );
}

/// 10,000 calls of one shape allocate nothing after the first: the pool serves every buffer.
#[test]
fn pool_does_not_grow_over_repeated_calls() {
    let _watch = crate::validation::watch();
    // A context of its own, so parallel tests do not disturb the count; small blocks, whose
    // kernels compile fast, since only allocations matter here.
    let ctx = Context::new()
        .unwrap()
        .with_gemm_block(wgrnn::gpu::GemmBlock::B8);
    let cfg = RnnConfig::new(CellKind::Gru, 3, 5).bidirectional(true);
    let w = GpuWeights::upload(&ctx, &RnnWeights::<f32>::init(cfg, 1).unwrap()).unwrap();
    let x = ctx
        .upload(&random(&mut SplitMix64::new(2), &[2, 2, 3], 1.0))
        .unwrap();
    let call = |ctx: &Context| {
        let (out, _tape) =
            gpu::rnn_forward_train(ctx, &w, GpuRnnInput::new(&x).lengths(&[2, 1])).unwrap();
        drop(out);
    };
    call(&ctx);
    ctx.sync().unwrap();
    let after_first = ctx.pool_stats().allocations;
    for i in 0..10_000 {
        call(&ctx);
        if i % 500 == 0 {
            ctx.sync().unwrap();
        }
    }
    ctx.sync().unwrap();
    let stats = ctx.pool_stats();
    assert_eq!(stats.allocations, after_first, "{stats:?}");
    assert!(stats.reuses >= 10_000, "{stats:?}");
}

/// A trainer that owns its device hands it in; wgrnn runs on it.
#[test]
fn runs_on_an_injected_device() {
    let _watch = crate::validation::watch();
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapter =
        pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default()))
            .expect("adapter");
    let (device, queue) =
        pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor::default())).unwrap();
    let ctx = Context::from_device(device, queue, &adapter.get_info()).unwrap();
    let a = ctx
        .upload(&Tensor::new([2, 2], vec![1.0, 2.0, 3.0, 4.0]).unwrap())
        .unwrap();
    let got = ctx.read(&gpu::matmul(&ctx, &a, &a).unwrap()).unwrap();
    assert_eq!(got.data(), [7.0, 10.0, 15.0, 22.0]);
    assert_eq!(ctx.adapter().name, adapter.get_info().name);
}

#[test]
fn bad_inputs_are_errors() {
    let _watch = crate::validation::watch();
    let ctx = ctx();
    let cfg = RnnConfig::new(CellKind::Lstm, 3, 4);
    let w = GpuWeights::upload(ctx, &RnnWeights::<f32>::init(cfg, 0).unwrap()).unwrap();
    let x = ctx.zeros(&[5, 2, 3]).unwrap();
    let e =
        gpu::rnn_forward(ctx, &w, GpuRnnInput::new(&ctx.zeros(&[5, 2, 4]).unwrap())).unwrap_err();
    assert_eq!(e, Error::shape("rnn_forward", "x", &[5, 2, 3], &[5, 2, 4]));
    let e = gpu::rnn_forward(ctx, &w, GpuRnnInput::new(&x).lengths(&[5, 6])).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Length {
                index: 1,
                value: 6,
                max: 5,
                ..
            }
        ),
        "{e}"
    );
    let h0 = ctx.zeros(&[1, 3, 4]).unwrap();
    let e = gpu::rnn_forward(ctx, &w, GpuRnnInput::new(&x).h0(&h0)).unwrap_err();
    assert!(e.to_string().contains("`h0`"), "{e}");
    let ids = ctx.upload_u32(&[5, 2, 3], &[0; 30]).unwrap();
    let e = gpu::rnn_forward(ctx, &w, GpuRnnInput::new(&ids)).unwrap_err();
    assert!(
        e.to_string().contains("`x`") && e.to_string().contains("f32"),
        "{e}"
    );
    // u32 operands of a product (the bits of 1.0 here) are refused, not read as floats.
    let one_bits = ctx.upload_u32(&[1, 1], &[0x3f80_0000]).unwrap();
    let e = gpu::matmul(ctx, &one_bits, &one_bits)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`a`") && e.contains("f32") && e.contains("[1, 1]"),
        "{e}"
    );

    let e = upload_ids(ctx, &Tensor::new([3], vec![0, 7, 2]).unwrap(), 7).unwrap_err();
    assert_eq!(
        e,
        Error::IdOutOfRange {
            op: "upload_ids",
            arg: "ids",
            index: 1,
            id: 7,
            limit: 7
        }
    );
    let e =
        upload_targets(ctx, &Tensor::new([2], vec![-1, 0]).unwrap(), 3, Some(-100)).unwrap_err();
    assert!(
        matches!(
            e,
            Error::IdOutOfRange {
                index: 0,
                id: -1,
                ..
            }
        ),
        "{e}"
    );
    let emb = GpuWeights::upload(
        ctx,
        &EmbeddingWeights::<f32>::init(EmbeddingConfig::new(4, 2), 0).unwrap(),
    )
    .unwrap();
    // Ids checked against a larger vocabulary: id 9 names no row of this 4-row table.
    let wide_ids = upload_ids(ctx, &Tensor::new([2], vec![1, 9]).unwrap(), 10).unwrap();
    let e = gpu::embedding_forward(ctx, &emb, &wide_ids).unwrap_err();
    assert!(
        e.to_string().contains("`ids`") && e.to_string().contains("vocabulary 10"),
        "{e}"
    );
    // Ids checked against fewer rows name rows of the table all the same.
    let narrow_ids = upload_ids(ctx, &Tensor::new([2], vec![1, 2]).unwrap(), 3).unwrap();
    gpu::embedding_forward(ctx, &emb, &narrow_ids).unwrap();

    let att = GpuWeights::upload(
        ctx,
        &AttentionWeights::<f32>::init(AttentionConfig::new(Score::Dot, 3), 0).unwrap(),
    )
    .unwrap();
    let (q, k) = (
        ctx.zeros(&[2, 1, 3]).unwrap(),
        ctx.zeros(&[2, 4, 3]).unwrap(),
    );
    let e = gpu::attention_forward(
        ctx,
        &att,
        GpuAttentionInput::new(&q, &k, &ctx.zeros(&[2, 3, 3]).unwrap()),
    )
    .unwrap_err();
    assert!(e.to_string().contains("`value`"), "{e}");
    let e = gpu::attention_forward(
        ctx,
        &att,
        GpuAttentionInput::new(&q, &k, &k).key_lengths(&[4, 0]),
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Length {
                index: 1,
                value: 0,
                ..
            }
        ),
        "{e}"
    );

    let logits = ctx.zeros(&[3, 4]).unwrap();
    let two = upload_targets(ctx, &Tensor::new([2], vec![0, 1]).unwrap(), 4, None).unwrap();
    let e = gpu::cross_entropy(ctx, &logits, &two).unwrap_err();
    assert!(e.to_string().contains("`targets`"), "{e}");
    // Targets checked against another class count: a target of 7 would be no class of these
    // logits and must not be dropped in silence.
    let seven = Tensor::new([3], vec![0, 7, 1]).unwrap();
    let other = upload_targets(ctx, &seven, 10, None).unwrap();
    let e = gpu::cross_entropy(ctx, &logits, &other).unwrap_err();
    assert!(
        e.to_string().contains("`targets`") && e.to_string().contains("10 classes"),
        "{e}"
    );
    let good = upload_targets(ctx, &Tensor::new([3], vec![0, 3, 1]).unwrap(), 4, None).unwrap();
    let ce = gpu::cross_entropy(ctx, &logits, &good).unwrap();
    let e = gpu::cross_entropy_backward(ctx, &logits, &other, &ce, 1.0).unwrap_err();
    assert!(e.to_string().contains("10 classes"), "{e}");
    // Targets checked against fewer classes are classes of these logits all the same.
    let fewer = upload_targets(ctx, &Tensor::new([3], vec![0, 2, 1]).unwrap(), 3, None).unwrap();
    gpu::cross_entropy_backward(ctx, &logits, &fewer, &ce, 1.0).unwrap();

    // A tensor over the device's binding limit is refused before anything is allocated.
    let limit = ctx.limits().max_storage_buffer_binding_size as usize;
    let e = ctx.zeros(&[limit / 4 + 64]).unwrap_err();
    assert!(
        matches!(
            e,
            Error::TooLarge {
                limit_name: "max_storage_buffer_binding_size",
                ..
            }
        ),
        "{e}"
    );
}

/// Calls of varying shapes share size classes: once each shape has run, running them all again
/// allocates nothing; and the idle cap releases what the pool may not keep.
#[test]
fn pool_serves_varying_shapes_and_respects_its_cap() {
    let _watch = crate::validation::watch();
    let ctx = Context::new()
        .unwrap()
        .with_gemm_block(wgrnn::gpu::GemmBlock::B8);
    let cfg = RnnConfig::new(CellKind::Lstm, 3, 8);
    let w = GpuWeights::upload(&ctx, &RnnWeights::<f32>::init(cfg, 1).unwrap()).unwrap();
    let mut rng = SplitMix64::new(3);
    let xs: Vec<_> = (1..=12)
        .map(|t| ctx.upload(&random(&mut rng, &[t, 3, 3], 1.0)).unwrap())
        .collect();
    let pass = |ctx: &Context| {
        for x in &xs {
            drop(gpu::rnn_forward_train(ctx, &w, GpuRnnInput::new(x)).unwrap());
        }
        ctx.sync().unwrap();
    };
    pass(&ctx);
    let after_first = ctx.pool_stats().allocations;
    pass(&ctx);
    assert_eq!(
        ctx.pool_stats().allocations,
        after_first,
        "{:?}",
        ctx.pool_stats()
    );

    ctx.set_pool_idle_cap(0);
    pass(&ctx);
    let stats = ctx.pool_stats();
    assert_eq!(stats.idle, 0, "{stats:?}");
    assert_eq!(stats.idle_bytes, 0, "{stats:?}");
}

#[test]
fn elementwise_combinations() {
    let _watch = crate::validation::watch();
    let ctx = ctx();
    let mut rng = SplitMix64::new(11);
    let x: Tensor<f32> = random(&mut rng, &[3, 67], 1.0);
    let y: Tensor<f32> = random(&mut rng, &[3, 67], 1.0);
    let (gx, gy) = (ctx.upload(&x).unwrap(), ctx.upload(&y).unwrap());
    let want: Vec<f32> = x
        .data()
        .iter()
        .zip(y.data())
        .map(|(a, b)| 2.0 * a - 0.5 * b)
        .collect();
    // Each element is one rounding of the same f32 expression: exact.
    assert_eq!(
        ctx.read(&gpu::axpby(ctx, 2.0, &gx, -0.5, &gy).unwrap())
            .unwrap()
            .data(),
        &want[..]
    );
    let sum: Vec<f32> = x.data().iter().zip(y.data()).map(|(a, b)| a + b).collect();
    assert_eq!(
        ctx.read(&gpu::add(ctx, &gx, &gy).unwrap()).unwrap().data(),
        &sum[..]
    );
    gpu::axpy_into(ctx, &gy, 1.0, &gx).unwrap();
    assert_eq!(ctx.read(&gy).unwrap().data(), &sum[..]);
    let e = gpu::add(ctx, &gx, &ctx.zeros(&[3, 66]).unwrap()).unwrap_err();
    assert!(e.to_string().contains("[3, 66]"), "{e}");
    assert!(gpu::axpy_into(ctx, &gx, 1.0, &gx).is_err());
}

/// CPU adapters end an invocation's loops after `Context::loop_limit` iterations without an
/// error, so calls that would loop that long are refused there, naming the argument: 22,000
/// keys in attention (its softmax loops three times over them), k = 70,000 in the storage GEMM
/// kernels, 4,200,000 rows of cross-entropy (summed 64 to a workgroup), a log-softmax row of
/// 1,500,000 classes (a workgroup loops 3·⌈C/64⌉ + 12 times over it) and a cross-entropy row of
/// 2,200,000 (2·⌈C/64⌉ + 12: it has no third loop, so 1,500,000 classes run there, with the
/// exact loss ln C of equal logits). Adapters without a limit run them all.
#[test]
fn loops_past_the_adapter_limit_are_refused_or_run() {
    let _watch = crate::validation::watch();
    let ctx = ctx();
    let limited = ctx.loop_limit().is_some();
    let check = |what: &str, arg_want: &str, r: Result<(), Error>| match (limited, r) {
        (
            true,
            Err(Error::LoopLimit {
                arg, trips, limit, ..
            }),
        ) => {
            assert_eq!(arg, arg_want, "{what}");
            assert!(trips >= limit, "{what}: {trips} trips, limit {limit}");
        }
        (false, Ok(())) => {}
        (_, other) => panic!("{what}: loop limit {:?}, got {other:?}", ctx.loop_limit()),
    };

    let n = 70_000;
    let tk = 22_000;
    let cfg = AttentionConfig::new(Score::Dot, 1);
    let gw = GpuWeights::upload(ctx, &AttentionWeights::<f32>::init(cfg, 1).unwrap()).unwrap();
    let q = ctx
        .upload(&Tensor::new([1, 1, 1], vec![0.5f32]).unwrap())
        .unwrap();
    let k = ctx
        .upload(&Tensor::new([1, tk, 1], vec![0.1f32; tk]).unwrap())
        .unwrap();
    let r = gpu::attention_forward(ctx, &gw, GpuAttentionInput::new(&q, &k, &k)).map(|_| ());
    check("attention", "key", r);

    let b8 = crate::gpu::blockings()[1];
    let a = b8
        .upload(&Tensor::new([1, n], vec![1.0f32; n]).unwrap())
        .unwrap();
    let b = b8
        .upload(&Tensor::new([n, 1], vec![1.0f32; n]).unwrap())
        .unwrap();
    check("B8 matmul", "k", gpu::matmul(b8, &a, &b).map(|_| ()));

    let rows = 4_200_000;
    let logits = ctx
        .upload(&Tensor::new([rows, 1], vec![0.0f32; rows]).unwrap())
        .unwrap();
    let targets = upload_targets(
        ctx,
        &Tensor::new([rows], vec![0i64; rows]).unwrap(),
        1,
        None,
    );
    let r = gpu::cross_entropy(ctx, &logits, &targets.unwrap()).map(|_| ());
    check("cross-entropy", "logits", r);

    let row = |classes: usize| {
        let logits = ctx
            .upload(&Tensor::new([1, classes], vec![0.0f32; classes]).unwrap())
            .unwrap();
        let t = upload_targets(ctx, &Tensor::new([1], vec![3]).unwrap(), classes, None);
        (logits, t.unwrap())
    };
    let (logits, targets) = row(1_500_000);
    let r = gpu::log_softmax(ctx, &logits).map(|_| ());
    check("log_softmax, wide row", "logits", r);
    let ce = gpu::cross_entropy(ctx, &logits, &targets).unwrap();
    let loss = ctx.read(&ce.loss).unwrap().data()[0] as f64;
    let want = (1_500_000f64).ln();
    assert!(
        (loss - want).abs() < 1e-5 * want,
        "cross-entropy over 1,500,000 equal logits: got {loss}, want ln C = {want}"
    );
    let (logits, targets) = row(2_200_000);
    let r = gpu::cross_entropy(ctx, &logits, &targets).map(|_| ());
    check("cross-entropy, wide row", "logits", r);
}

/// The recurrent step kernels put the batch along a dispatch's y axis: 4 rows per workgroup in
/// the fused forward steps, 1 in the split steps and every reverse step. A batch past that is
/// refused up front, naming `x` and its shape; training is held to the reverse steps' bound.
/// Just inside the fused steps' bound, inference runs and matches the CPU reference.
fn batches_past_the_dispatch_limit_are_refused(ctx: &Context) {
    let cfg = RnnConfig::new(CellKind::Gru, 1, 1);
    let w = RnnWeights::<f64>::init(cfg.clone(), 3).unwrap();
    let max = ctx.limits().max_compute_workgroups_per_dimension as usize;
    let gw = GpuWeights::upload(ctx, &w.cast::<f32>()).unwrap();
    let split = ctx.gemm_block() == gpu::GemmBlock::Panel;
    let fused = if split { max } else { 4 * max };
    for (b, training, ok) in [
        (max, true, true),
        (max + 1, true, false),
        (fused + 1, false, false),
        (fused, false, true),
    ] {
        let x: Tensor<f64> = Tensor::from_fn([2, b, 1], |i| ((i % 7) as f64 - 3.0) / 4.0).unwrap();
        let gx = ctx.upload(&x.cast()).unwrap();
        let what = format!("{:?} B={b} training {training}", ctx.gemm_block());
        let input = GpuRnnInput::new(&gx);
        let out = if training {
            gpu::rnn_forward_train(ctx, &gw, input).map(|(out, _)| out)
        } else {
            gpu::rnn_forward(ctx, &gw, input)
        };
        match out {
            Ok(out) if ok => {
                let want = wgrnn::cpu::rnn_forward(&w, wgrnn::cpu::RnnInput::new(&x));
                assert_tensor_close(&what, &ctx.read(&out.y).unwrap(), &want.unwrap().y, GPU_F32);
            }
            Err(Error::TooLarge {
                arg, size, unit, ..
            }) if !ok => {
                assert!(arg.contains("x [2, "), "{what}: {arg}");
                assert_eq!((size, unit), (b as u64, "batch rows"), "{what}");
            }
            other => panic!("{what}: want ok = {ok}, got {:?}", other.map(|_| ())),
        }
    }
}
per_path!(blockings: batches_past_the_dispatch_limit_are_refused);
