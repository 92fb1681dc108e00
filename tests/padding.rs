//! Padding and masked positions never influence a result: every op that takes lengths, a key
//! mask, ignored targets or a padding id gives bit for bit the same outputs and gradients
//! whether those positions hold zeros or NaN and ±Inf, on every execution path. The masked
//! kernels never read such positions, so both runs compute exactly the same numbers: any
//! difference at all is padding leaking in.

use wgrnn::core::{AttentionWeights, EmbeddingWeights, RnnWeights, SplitMix64, Tensor};
use wgrnn::gpu::{
    self, Context, GpuAttentionInput, GpuRnnInput, GpuRnnOutputGrads, GpuTensor, GpuWeights,
    upload_ids, upload_targets,
};
use wgrnn::{CellKind, EmbeddingConfig, RnnConfig};

use crate::cases::{CELLS, SCORES, attention_config};
use crate::common::random;
use crate::gpu::ctx;
use crate::paths::per_path;

/// What a padded position holds in the poisoned run: NaN, +Inf and -Inf in turn.
fn poison(i: usize) -> f32 {
    [f32::NAN, f32::INFINITY, f32::NEG_INFINITY][i % 3]
}

/// Two copies of `t`: the positions where `padded(i)` zero in the first, poisoned in the second.
fn zeroed_and_poisoned(t: &Tensor<f32>, padded: impl Fn(usize) -> bool) -> [Tensor<f32>; 2] {
    let shape = t.shape().to_vec();
    let pick = |bad: fn(usize) -> f32| {
        Tensor::from_fn(
            shape.clone(),
            |i| {
                if padded(i) { bad(i) } else { t.data()[i] }
            },
        )
        .unwrap()
    };
    [pick(|_| 0.0), pick(poison)]
}

fn read(ctx: &Context, t: &GpuTensor) -> Vec<f32> {
    ctx.read(t).unwrap().into_data()
}

/// `got` (the poisoned run) is finite and bit for bit `want` (the zeroed run).
fn assert_same(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            g.is_finite() && g.to_bits() == w.to_bits(),
            "{what}: index {i}: got {g}, want {w} (the run with zeros in the padding)"
        );
    }
}

/// Every element where `padded(i)` is exactly 0.
fn assert_zero_at(what: &str, got: &[f32], padded: impl Fn(usize) -> bool) {
    for (i, g) in got.iter().enumerate() {
        assert!(
            !padded(i) || *g == 0.0,
            "{what}: index {i}: got {g}, want 0 (padded)"
        );
    }
}

/// A recurrent call's results, host side: forward outputs, then every gradient by name.
fn rnn_results(
    ctx: &Context,
    w: &GpuWeights<RnnConfig>,
    x: &Tensor<f32>,
    dy: &Tensor<f32>,
    (dh_n, dc_n): (&Tensor<f32>, &Tensor<f32>),
    lengths: &[usize],
) -> Vec<(String, Vec<f32>)> {
    let lstm = w.config().cell == CellKind::Lstm;
    let (gx, gdy, gdh, gdc) = (
        ctx.upload(x).unwrap(),
        ctx.upload(dy).unwrap(),
        ctx.upload(dh_n).unwrap(),
        ctx.upload(dc_n).unwrap(),
    );
    let input = GpuRnnInput::new(&gx).lengths(lengths);
    let inference = gpu::rnn_forward(ctx, w, input).unwrap();
    let (out, out_tape) = gpu::rnn_forward_train(ctx, w, input).unwrap();
    let up = GpuRnnOutputGrads {
        dy: Some(&gdy),
        dh_n: Some(&gdh),
        dc_n: lstm.then_some(&gdc),
    };
    let g = gpu::rnn_backward(ctx, w, &out_tape, up, None).unwrap();
    let mut r = vec![
        ("inference y".to_string(), read(ctx, &inference.y)),
        ("inference h_n".to_string(), read(ctx, &inference.h_n)),
        ("y".to_string(), read(ctx, &out.y)),
        ("h_n".to_string(), read(ctx, &out.h_n)),
        ("dx".to_string(), read(ctx, &g.dx)),
        ("dh0".to_string(), read(ctx, &g.dh0)),
    ];
    if let (Some(c), Some(dc)) = (&out.c_n, &g.dc0) {
        r.push(("c_n".to_string(), read(ctx, c)));
        r.push(("dc0".to_string(), read(ctx, dc)));
    }
    let host = g.weights.read(ctx).unwrap();
    for name in host.names() {
        r.push((
            format!("grad {name}"),
            host.get(&name).unwrap().data().to_vec(),
        ));
    }
    r
}

/// One configuration: x and dy poisoned at every padded step, against the run with zeros there.
fn rnn_case(ctx: &Context, cfg: RnnConfig, t: usize, lengths: &[usize], seed: u64) {
    let b = lengths.len();
    let w = GpuWeights::upload(ctx, &RnnWeights::<f32>::init(cfg.clone(), seed).unwrap()).unwrap();
    let mut rng = SplitMix64::new(seed);
    let (f, out_w) = (cfg.input_size, cfg.output_size());
    let bf = cfg.batch_first;
    let shape = |w: usize| if bf { [b, t, w] } else { [t, b, w] };
    // Element i of a tensor `width` wide: is its (t, b) past the sequence's end?
    let padded = |width: usize| {
        move |i: usize| {
            let (row, _) = (i / width, i % width);
            let (tt, bb) = if bf {
                (row % t, row / t)
            } else {
                (row / b, row % b)
            };
            tt >= lengths[bb]
        }
    };
    let x = random::<f32>(&mut rng, &shape(f), 1.0);
    let dy = random::<f32>(&mut rng, &shape(out_w), 1.0);
    let dh_n = random::<f32>(&mut rng, &cfg.state_shape(b), 1.0);
    let dc_n = random::<f32>(&mut rng, &cfg.cell_state_shape(b), 1.0);
    let [x0, x_bad] = zeroed_and_poisoned(&x, padded(f));
    let [dy0, dy_bad] = zeroed_and_poisoned(&dy, padded(out_w));
    let want = rnn_results(ctx, &w, &x0, &dy0, (&dh_n, &dc_n), lengths);
    let got = rnn_results(ctx, &w, &x_bad, &dy_bad, (&dh_n, &dc_n), lengths);
    let what = format!(
        "{cfg:?} T={t} lengths={lengths:?} {:?} small-batch limit {} f16 W_hh {} wavefront {}",
        ctx.gemm_block(),
        ctx.small_batch_limit(),
        ctx.f16_weights(),
        ctx.layer_wavefront()
    );
    for ((name, g), (_, w)) in got.iter().zip(&want) {
        assert_same(&format!("{what}: {name}"), g, w);
        // PyTorch's packed sequences (and the CPU reference) define both as 0 at padded steps.
        match name.as_str() {
            "dx" => assert_zero_at(&format!("{what}: dx"), g, padded(f)),
            "y" | "inference y" => assert_zero_at(&format!("{what}: {name}"), g, padded(out_w)),
            _ => {}
        }
    }
}

/// Every cell, both layouts, uni- and bidirectional stacks (whose upper layers read the lower
/// ones' outputs at padded steps), and steps that no sequence reaches, on every path of the
/// recurrent ops.
fn rnn(ctx: &Context) {
    for (i, cell) in CELLS.into_iter().enumerate() {
        let seed = 3000 + 10 * i as u64;
        let bi = cell.config(5, 9).layers(2).bidirectional(true);
        rnn_case(ctx, bi.clone(), 6, &[5, 2, 4, 1], seed);
        rnn_case(ctx, bi.batch_first(true), 5, &[2, 5, 3], seed + 1);
        let uni = cell.config(4, 7).layers(3);
        rnn_case(ctx, uni.clone(), 9, &[9, 3, 1], seed + 2);
        rnn_case(ctx, uni.batch_first(true), 8, &[3, 6, 1, 2], seed + 3);
    }
    // The LSTM projection, whose weight gradients sum over every row of the upstream dy.
    let proj = RnnConfig::new(CellKind::Lstm, 5, 9).proj_size(4).layers(2);
    rnn_case(
        ctx,
        proj.clone().bidirectional(true),
        6,
        &[5, 2, 4, 1],
        3100,
    );
    rnn_case(ctx, proj.batch_first(true), 8, &[3, 6, 1, 2], 3101);
    // Inter-layer dropout masks the layers' outputs at padded steps too: still zeros.
    let dropped = RnnConfig::new(CellKind::Gru, 5, 9).layers(3).dropout(0.4);
    rnn_case(ctx, dropped.clone(), 7, &[7, 2, 5], 3102);
    rnn_case(
        ctx,
        dropped.bidirectional(true).batch_first(true),
        6,
        &[3, 6, 1],
        3103,
    );
}

per_path!(all: rnn);

/// Keys, values and the upstream dweights poisoned at masked keys, against zeros there, on
/// every GEMM path of attention's projections.
fn attention(ctx: &Context) {
    let (b, tq, tk) = (3, 4, 11);
    let lens = [11, 4, 1];
    for (i, score) in SCORES.into_iter().enumerate() {
        let cfg = attention_config(score, 5);
        let seed = 3100 + i as u64;
        let w = AttentionWeights::<f32>::init(cfg.clone(), seed).unwrap();
        let gw = GpuWeights::upload(ctx, &w).unwrap();
        let mut rng = SplitMix64::new(seed);
        let q = random::<f32>(&mut rng, &[b, tq, cfg.query_size], 1.0);
        let k = random::<f32>(&mut rng, &[b, tk, cfg.key_size], 1.0);
        let v = random::<f32>(&mut rng, &[b, tk, cfg.value_size], 1.0);
        let dctx = random::<f32>(&mut rng, &[b, tq, cfg.value_size], 1.0);
        let dw = random::<f32>(&mut rng, &[b, tq, tk], 1.0);
        // Key j of batch bb, for rows of keys (`per_b` = tk) or of weights (`per_b` = tq·tk).
        let masked = |width: usize, per_b: usize| {
            move |i: usize| (i / width) % tk >= lens[(i / width) / per_b]
        };
        let [k0, k_bad] = zeroed_and_poisoned(&k, masked(cfg.key_size, tk));
        let [v0, v_bad] = zeroed_and_poisoned(&v, masked(cfg.value_size, tk));
        let [dw0, dw_bad] = zeroed_and_poisoned(&dw, masked(1, tq * tk));
        let run = |k: &Tensor<f32>, v: &Tensor<f32>, dw: &Tensor<f32>| {
            let up = |t: &Tensor<f32>| ctx.upload(t).unwrap();
            let (gq, gk, gv, gdctx, gdw) = (up(&q), up(k), up(v), up(&dctx), up(dw));
            let input = GpuAttentionInput::new(&gq, &gk, &gv).key_lengths(&lens);
            let out = gpu::attention_forward(ctx, &gw, input).unwrap();
            let g =
                gpu::attention_backward(ctx, &gw, input, &out, &gdctx, Some(&gdw), None).unwrap();
            let mut r = vec![
                ("context".to_string(), read(ctx, &out.context)),
                ("weights".to_string(), read(ctx, &out.weights)),
                ("dquery".to_string(), read(ctx, &g.dquery)),
                ("dkey".to_string(), read(ctx, &g.dkey)),
                ("dvalue".to_string(), read(ctx, &g.dvalue)),
            ];
            let host = g.weights.read(ctx).unwrap();
            for name in host.names() {
                r.push((
                    format!("grad {name}"),
                    host.get(&name).unwrap().data().to_vec(),
                ));
            }
            r
        };
        let want = run(&k0, &v0, &dw0);
        let got = run(&k_bad, &v_bad, &dw_bad);
        let what = format!("{score:?} lens={lens:?} {:?}", ctx.gemm_block());
        for ((name, g), (_, w)) in got.iter().zip(&want) {
            assert_same(&format!("{what}: {name}"), g, w);
        }
        // Masked keys get no weight and no gradient.
        assert_zero_at(&format!("{what}: weights"), &got[1].1, masked(1, tq * tk));
        assert_zero_at(
            &format!("{what}: dkey"),
            &got[3].1,
            masked(cfg.key_size, tk),
        );
        assert_zero_at(
            &format!("{what}: dvalue"),
            &got[4].1,
            masked(cfg.value_size, tk),
        );
    }
}

per_path!(gemm: attention);

/// Logits poisoned at rows with ignored targets, against zeros there: loss, count and dlogits.
fn cross_entropy_padding(classes: usize) {
    let ctx = ctx();
    let rows = 7;
    let mut rng = SplitMix64::new(3200 + classes as u64);
    let targets = Tensor::from_fn([rows], |r| {
        if r % 3 == 1 {
            -100
        } else {
            rng.below(classes) as i64
        }
    })
    .unwrap();
    let ignored = |i: usize| targets.data()[i / classes] == -100;
    let logits = random::<f32>(&mut rng, &[rows, classes], 3.0);
    let [l0, l_bad] = zeroed_and_poisoned(&logits, ignored);
    let gt = upload_targets(ctx, &targets, classes, Some(-100)).unwrap();
    let run = |l: &Tensor<f32>| {
        let gl = ctx.upload(l).unwrap();
        let ce = gpu::cross_entropy(ctx, &gl, &gt).unwrap();
        let d = gpu::cross_entropy_backward(ctx, &gl, &gt, &ce, 0.7).unwrap();
        [read(ctx, &ce.loss), read(ctx, &d)]
    };
    let ([loss, d], [want_loss, want_d]) = (run(&l_bad), run(&l0));
    let what = format!("cross-entropy with {classes} classes");
    assert_same(&format!("{what}: [loss, count]"), &loss, &want_loss);
    assert_same(&format!("{what}: dlogits"), &d, &want_d);
    assert_zero_at(&format!("{what}: dlogits"), &d, ignored);
}

#[test]
fn cross_entropy_rows_per_invocation() {
    let _watch = crate::validation::watch();
    cross_entropy_padding(13);
}

/// Past every adapter's narrow-row limit: one workgroup per row.
#[test]
fn cross_entropy_rows_per_workgroup() {
    let _watch = crate::validation::watch();
    cross_entropy_padding(30_000);
}

/// dy poisoned at the positions of the padding id, which gets no gradient: the other rows'
/// gradients equal those of the run with zeros there.
#[test]
fn embedding_padding_id() {
    let _watch = crate::validation::watch();
    let ctx = ctx();
    let (v, d, n) = (9, 6, 40);
    let w =
        EmbeddingWeights::<f32>::init(EmbeddingConfig::new(v, d).padding_idx(Some(2)), 5).unwrap();
    let gw = GpuWeights::upload(ctx, &w).unwrap();
    let mut rng = SplitMix64::new(3300);
    let ids = Tensor::from_fn([n], |_| rng.below(5) as i64).unwrap();
    let gids = upload_ids(ctx, &ids, v).unwrap();
    let dy = random::<f32>(&mut rng, &[n, d], 1.0);
    let [dy0, dy_bad] = zeroed_and_poisoned(&dy, |i| ids.data()[i / d] == 2);
    let run = |dy: &Tensor<f32>| {
        let g = gpu::embedding_backward(ctx, &gw, &gids, &ctx.upload(dy).unwrap(), None).unwrap();
        read(ctx, g.get("weight").unwrap())
    };
    let got = run(&dy_bad);
    assert_same("embedding weight gradient", &got, &run(&dy0));
    assert_zero_at("embedding weight gradient", &got, |i| i / d == 2);
}
