//! GPU backward of embedding, attention, linear and cross-entropy against the CPU reference,
//! and a forward → loss → backward chain that stays on the device.

use wgrnn::core::{AttentionWeights, EmbeddingWeights, LinearWeights, SplitMix64, Tensor};
use wgrnn::cpu::{
    AttentionInput, attention_backward, attention_forward, cross_entropy_backward,
    embedding_backward, linear_backward,
};
use wgrnn::gpu::{self, GpuAttentionInput, GpuWeights, upload_ids, upload_targets};
use wgrnn::{AttentionConfig, EmbeddingConfig, LinearConfig, Score};

use crate::cases::{AttentionCase, attention_cases};
use crate::common::{assert_tensor_close, random};
use crate::gpu::ctx;
use crate::gpu_backward::GPU_GRAD;

#[test]
fn embedding_backward_matches_cpu_with_repeats_and_padding() {
    let _watch = crate::validation::watch();
    let ctx = ctx();
    for (v, d, shape, pad) in [
        (1, 1, vec![3], None),
        (13, 6, vec![5, 4], Some(2)),
        (65, 129, vec![9, 17], Some(0)),
        // 350,000 positions over 5 ids, about 70,000 each, past a CPU adapter's loop limit of
        // 65,535: each id's run is summed in segments of at most 16,384, later segments adding
        // in later dispatches (five rounds), the padding id's skipped in every round.
        (7, 2, vec![350_000], Some(1)),
    ] {
        let cfg = EmbeddingConfig::new(v, d).padding_idx(pad);
        let w = EmbeddingWeights::<f64>::init(cfg, 3).unwrap();
        let mut rng = SplitMix64::new(4);
        // Few distinct ids, so most repeat; the padding id appears too.
        let ids = Tensor::from_fn(shape.clone(), |_| rng.below(v.min(5)) as i64).unwrap();
        let dy: Tensor<f64> = random(&mut rng, &[shape.iter().product::<usize>() * d], 1.0)
            .reshape([shape.clone(), vec![d]].concat())
            .unwrap();
        let want = embedding_backward(&w, &ids, &dy).unwrap();
        let gw = GpuWeights::upload(ctx, &w.cast()).unwrap();
        let gids = upload_ids(ctx, &ids, v).unwrap();
        let got = gpu::embedding_backward(ctx, &gw, &gids, &ctx.upload(&dy.cast()).unwrap(), None)
            .unwrap();
        assert_tensor_close(
            &format!("embedding V={v} D={d}"),
            &ctx.read(got.get("weight").unwrap()).unwrap(),
            want.get("weight").unwrap(),
            GPU_GRAD,
        );
    }
}

#[test]
fn attention_backward_matches_cpu_for_every_score() {
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
        let w = AttentionWeights::<f64>::init(cfg.clone(), 30 + i as u64).unwrap();
        let mut rng = SplitMix64::new(40 + i as u64);
        let q: Tensor<f64> = random(&mut rng, &[b, tq, cfg.query_size], 1.0);
        let k: Tensor<f64> = random(&mut rng, &[b, tk, cfg.key_size], 1.0);
        let v: Tensor<f64> = random(&mut rng, &[b, tk, cfg.value_size], 1.0);
        let dctx: Tensor<f64> = random(&mut rng, &[b, tq, cfg.value_size], 1.0);
        let dw: Tensor<f64> = random(&mut rng, &[b, tq, tk], 1.0);
        let lens = c.key_lengths();
        let input = AttentionInput::new(&q, &k, &v).key_lengths(&lens);
        let out = attention_forward(&w, input).unwrap();
        let want = attention_backward(&w, input, &out, &dctx, Some(&dw)).unwrap();

        let up = |t: &Tensor<f64>| ctx.upload(&t.cast()).unwrap();
        let gw = GpuWeights::upload(ctx, &w.cast()).unwrap();
        let (gq, gk, gv, gdctx, gdw) = (up(&q), up(&k), up(&v), up(&dctx), up(&dw));
        let ginput = GpuAttentionInput::new(&gq, &gk, &gv).key_lengths(&lens);
        let gout = gpu::attention_forward(ctx, &gw, ginput).unwrap();
        let got =
            gpu::attention_backward(ctx, &gw, ginput, &gout, &gdctx, Some(&gdw), None).unwrap();
        let what = format!("{score:?} B={b} Tq={tq} Tk={tk} D={d}");
        assert_tensor_close(
            &format!("{what}: dquery"),
            &ctx.read(&got.dquery).unwrap(),
            &want.dquery,
            GPU_GRAD,
        );
        assert_tensor_close(
            &format!("{what}: dkey"),
            &ctx.read(&got.dkey).unwrap(),
            &want.dkey,
            GPU_GRAD,
        );
        assert_tensor_close(
            &format!("{what}: dvalue"),
            &ctx.read(&got.dvalue).unwrap(),
            &want.dvalue,
            GPU_GRAD,
        );
        let gp = got.weights.read(ctx).unwrap();
        for name in want.weights.names() {
            assert_tensor_close(
                &format!("{what}: grad {name}"),
                gp.get(&name).unwrap(),
                want.weights.get(&name).unwrap(),
                GPU_GRAD,
            );
        }
    }
}

#[test]
fn linear_backward_matches_cpu() {
    let _watch = crate::validation::watch();
    let ctx = ctx();
    for (bias, fi, fo, shape) in [
        (true, 1, 1, vec![1, 1]),
        (true, 17, 65, vec![3, 5, 17]),
        (false, 129, 3, vec![9, 129]),
        // dW = dyᵀ·x sums over 300 rows: chunks of k on CPU adapters, later ones adding.
        (true, 20, 7, vec![300, 20]),
        // 70,000 rows: the bias column sums run in chunks of rows, each invocation looping
        // far less than the 65,535 iterations a CPU adapter allows.
        (true, 2, 3, vec![70_000, 2]),
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
        let mut y_shape = shape.clone();
        *y_shape.last_mut().unwrap() = fo;
        let dy: Tensor<f64> = random(&mut rng, &y_shape, 1.0);
        let want = linear_backward(&w, &x, &dy).unwrap();
        let gw = GpuWeights::upload(ctx, &w.cast()).unwrap();
        let got = gpu::linear_backward(
            ctx,
            &gw,
            &ctx.upload(&x.cast()).unwrap(),
            &ctx.upload(&dy.cast()).unwrap(),
            None,
        )
        .unwrap();
        assert_tensor_close(
            &format!("linear {fi}->{fo}: dx"),
            &ctx.read(&got.dx).unwrap(),
            &want.dx,
            GPU_GRAD,
        );
        let gp = got.weights.read(ctx).unwrap();
        for name in want.weights.names() {
            assert_tensor_close(
                &format!("linear {fi}->{fo}: grad {name}"),
                gp.get(&name).unwrap(),
                want.weights.get(&name).unwrap(),
                GPU_GRAD,
            );
        }
        // Accumulating into those gradients doubles them (every chunk adds, the first too).
        gpu::linear_backward(
            ctx,
            &gw,
            &ctx.upload(&x.cast()).unwrap(),
            &ctx.upload(&dy.cast()).unwrap(),
            Some(&got.weights),
        )
        .unwrap();
        let gp = got.weights.read(ctx).unwrap();
        for name in want.weights.names() {
            let once = want.weights.get(&name).unwrap();
            let twice =
                Tensor::new(once.shape(), once.data().iter().map(|v| 2.0 * v).collect()).unwrap();
            assert_tensor_close(
                &format!("linear {fi}->{fo}: accumulated grad {name}"),
                gp.get(&name).unwrap(),
                &twice,
                GPU_GRAD,
            );
        }
    }
}

/// linear → cross-entropy → backward → linear backward, all on the device; one readback at the
/// end, compared with the same chain on the CPU.
#[test]
fn forward_loss_backward_chain_stays_on_device() {
    let _watch = crate::validation::watch();
    let ctx = ctx();
    let cfg = LinearConfig::new(7, 11);
    let w = LinearWeights::<f64>::init(cfg, 8).unwrap();
    let mut rng = SplitMix64::new(9);
    let x: Tensor<f64> = random(&mut rng, &[5, 3, 7], 1.0);
    let targets = Tensor::from_fn([5, 3], |i| {
        if i % 4 == 1 {
            -100
        } else {
            rng.below(11) as i64
        }
    })
    .unwrap();
    let logits = wgrnn::cpu::linear_forward(&w, &x).unwrap();
    let dlogits = cross_entropy_backward(&logits, &targets, Some(-100), 1.0).unwrap();
    let want = linear_backward(&w, &x, &dlogits).unwrap();

    let gw = GpuWeights::upload(ctx, &w.cast()).unwrap();
    let gx = ctx.upload(&x.cast()).unwrap();
    let gt = upload_targets(ctx, &targets, 11, Some(-100)).unwrap();
    let glogits = gpu::linear_forward(ctx, &gw, &gx).unwrap();
    let ce = gpu::cross_entropy(ctx, &glogits, &gt).unwrap();
    let gdlogits = gpu::cross_entropy_backward(ctx, &glogits, &gt, &ce, 1.0).unwrap();
    let got = gpu::linear_backward(ctx, &gw, &gx, &gdlogits, None).unwrap();
    assert_tensor_close("dlogits", &ctx.read(&gdlogits).unwrap(), &dlogits, GPU_GRAD);
    assert_tensor_close("dx", &ctx.read(&got.dx).unwrap(), &want.dx, GPU_GRAD);
    let gp = got.weights.read(ctx).unwrap();
    assert_tensor_close(
        "grad weight",
        gp.get("weight").unwrap(),
        want.weights.get("weight").unwrap(),
        GPU_GRAD,
    );
    assert_tensor_close(
        "grad bias",
        gp.get("bias").unwrap(),
        want.weights.get("bias").unwrap(),
        GPU_GRAD,
    );
}

#[test]
fn op_backward_bad_inputs_are_errors() {
    let _watch = crate::validation::watch();
    let ctx = ctx();
    let emb = GpuWeights::upload(
        ctx,
        &EmbeddingWeights::<f32>::init(EmbeddingConfig::new(5, 3), 0).unwrap(),
    )
    .unwrap();
    let ids = upload_ids(ctx, &Tensor::new([2], vec![1, 4]).unwrap(), 5).unwrap();
    let e =
        gpu::embedding_backward(ctx, &emb, &ids, &ctx.zeros(&[2, 4]).unwrap(), None).unwrap_err();
    assert!(
        e.to_string().contains("`dy`") && e.to_string().contains("[2, 3]"),
        "{e}"
    );
    let other_vocab = upload_ids(ctx, &Tensor::new([2], vec![1, 4]).unwrap(), 6).unwrap();
    let e = gpu::embedding_backward(ctx, &emb, &other_vocab, &ctx.zeros(&[2, 3]).unwrap(), None)
        .unwrap_err();
    assert!(e.to_string().contains("vocabulary"), "{e}");

    let lin = GpuWeights::upload(
        ctx,
        &LinearWeights::<f32>::init(LinearConfig::new(3, 2), 0).unwrap(),
    )
    .unwrap();
    let e = gpu::linear_backward(
        ctx,
        &lin,
        &ctx.zeros(&[4, 3]).unwrap(),
        &ctx.zeros(&[4, 3]).unwrap(),
        None,
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("`dy`") && e.to_string().contains("[4, 2]"),
        "{e}"
    );

    let logits = ctx.zeros(&[3, 4]).unwrap();
    let t = upload_targets(ctx, &Tensor::new([3], vec![0, 1, 2]).unwrap(), 4, None).unwrap();
    let ce = gpu::cross_entropy(ctx, &logits, &t).unwrap();
    let other = ctx.zeros(&[2, 4]).unwrap();
    let e = gpu::cross_entropy_backward(
        ctx,
        &other,
        &upload_targets(ctx, &Tensor::new([2], vec![0, 1]).unwrap(), 4, None).unwrap(),
        &ce,
        1.0,
    )
    .unwrap_err();
    assert!(e.to_string().contains("forward.rows"), "{e}");

    let att = GpuWeights::upload(
        ctx,
        &AttentionWeights::<f32>::init(AttentionConfig::new(Score::Dot, 3), 0).unwrap(),
    )
    .unwrap();
    let (q, k) = (
        ctx.zeros(&[2, 1, 3]).unwrap(),
        ctx.zeros(&[2, 4, 3]).unwrap(),
    );
    let input = GpuAttentionInput::new(&q, &k, &k);
    let out = gpu::attention_forward(ctx, &att, input).unwrap();
    let e = gpu::attention_backward(
        ctx,
        &att,
        input,
        &out,
        &ctx.zeros(&[2, 1, 4]).unwrap(),
        None,
        None,
    )
    .unwrap_err();
    assert!(e.to_string().contains("`d_context`"), "{e}");
}
