//! Optimizers on the device against the host reference of the same update rules, gradient
//! clipping, zero_grad and checkpoints.

use wgrnn::core::{OptimizerConfig, RnnWeights, SafetensorsFile, SplitMix64, Tensor};
use wgrnn::cpu::{Optimizer, clip_grad_norm};
use wgrnn::gpu::{
    GpuOptimizer, GpuParams, GpuRnnInput, GpuWeights, rnn_forward, rnn_forward_train,
};
use wgrnn::{CellKind, RnnConfig};

use crate::common::{Tolerance, assert_close, random};
use crate::gpu::ctx;

/// f32 updates on the device against the f64 reference over a few steps: each step adds a few
/// roundings of f32 to values of O(1).
const OPTIM_F32: Tolerance = Tolerance {
    abs: 2e-6,
    rel: 2e-6,
};

fn configs() -> Vec<OptimizerConfig> {
    vec![
        OptimizerConfig::sgd(0.1, 0.0),
        OptimizerConfig::Sgd {
            lr: 0.05,
            momentum: 0.9,
            dampening: 0.1,
            weight_decay: 0.01,
            nesterov: false,
        },
        OptimizerConfig::Sgd {
            lr: 0.05,
            momentum: 0.9,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: true,
        },
        OptimizerConfig::adam(1e-2),
        OptimizerConfig::Adam {
            lr: 1e-2,
            beta1: 0.8,
            beta2: 0.99,
            eps: 1e-6,
            weight_decay: 0.1,
            decoupled: false,
        },
        OptimizerConfig::adamw(1e-2),
        OptimizerConfig::rmsprop(1e-2),
        OptimizerConfig::RmsProp {
            lr: 1e-2,
            alpha: 0.9,
            eps: 1e-6,
            weight_decay: 0.05,
            momentum: 0.5,
        },
    ]
}

#[test]
fn device_updates_match_the_reference() {
    let _watch = crate::validation::watch();
    let ctx = ctx();
    let sizes = [1, 17, 130];
    for (ci, config) in configs().into_iter().enumerate() {
        for clip in [None, Some(0.5)] {
            let mut rng = SplitMix64::new(ci as u64);
            let mut host: Vec<Vec<f64>> = sizes
                .iter()
                .map(|&n| random::<f64>(&mut rng, &[n], 1.0).into_data())
                .collect();
            let values: Vec<_> = host
                .iter()
                .map(|p| {
                    ctx.upload(&Tensor::new([p.len()], p.clone()).unwrap().cast())
                        .unwrap()
                })
                .collect();
            let mut opt =
                GpuOptimizer::new(ctx, config, &values.iter().collect::<Vec<_>>()).unwrap();
            if let Some(c) = clip {
                opt = opt.with_clip_grad_norm(c).unwrap();
            }
            let mut reference = Optimizer::<f64>::new(config, &sizes).unwrap();
            for step in 0..3 {
                let mut grads: Vec<Vec<f64>> = sizes
                    .iter()
                    .map(|&n| random::<f64>(&mut rng, &[n], 1.0).into_data())
                    .collect();
                let gpu_grads: Vec<_> = grads
                    .iter()
                    .map(|g| {
                        ctx.upload(&Tensor::new([g.len()], g.clone()).unwrap().cast())
                            .unwrap()
                    })
                    .collect();
                let pairs: Vec<_> = values.iter().zip(&gpu_grads).collect();
                opt.step(ctx, &pairs).unwrap();
                if let Some(c) = clip {
                    let mut gs: Vec<&mut [f64]> =
                        grads.iter_mut().map(|g| g.as_mut_slice()).collect();
                    let norm = clip_grad_norm(&mut gs, c).unwrap();
                    let got = opt.last_grad_norm(ctx).unwrap();
                    assert!(
                        (got as f64 - norm).abs() < 1e-5 * norm,
                        "{config:?}: norm {got} vs {norm}"
                    );
                }
                let mut ps: Vec<&mut [f64]> = host.iter_mut().map(|p| p.as_mut_slice()).collect();
                let gs: Vec<&[f64]> = grads.iter().map(|g| g.as_slice()).collect();
                reference.step(&mut ps, &gs).unwrap();
                for (i, v) in values.iter().enumerate() {
                    let got = ctx.read(v).unwrap();
                    assert_close(
                        &format!("{config:?} clip {clip:?} step {step} param {i}"),
                        got.data(),
                        &host[i],
                        OPTIM_F32,
                    );
                }
            }
        }
    }
}

/// The gradient norm of a tensor of 5,000,000 elements: summed in two segments (at most
/// 4,194,304 elements per dispatch, so that no invocation loops past a CPU adapter's limit).
#[test]
fn grad_norm_spans_segments_of_a_large_tensor() {
    let _watch = crate::validation::watch();
    let ctx = ctx();
    let n = 5_000_000;
    let mut rng = SplitMix64::new(41);
    let g: Vec<f64> = random::<f64>(&mut rng, &[n], 1.0).into_data();
    let v = ctx
        .upload(&Tensor::new([n], vec![0.0f32; n]).unwrap())
        .unwrap();
    let gg = ctx
        .upload(&Tensor::new([n], g.clone()).unwrap().cast())
        .unwrap();
    let mut opt = GpuOptimizer::new(ctx, OptimizerConfig::sgd(0.1, 0.0), &[&v])
        .unwrap()
        .with_clip_grad_norm(1.0)
        .unwrap();
    opt.step(ctx, &[(&v, &gg)]).unwrap();
    // The reference norm of the f32 values the device holds.
    let want = g
        .iter()
        .map(|&x| (x as f32 as f64).powi(2))
        .sum::<f64>()
        .sqrt();
    let got = opt.last_grad_norm(ctx).unwrap() as f64;
    // f32 sums of 16,384 squares per invocation, then a tree: a few ulps per level.
    assert!(
        (got - want).abs() < 1e-5 * want,
        "norm {got} vs {want} over {n} elements"
    );
}

#[test]
fn zero_grad_and_accumulation_through_params() {
    let _watch = crate::validation::watch();
    let ctx = ctx();
    let cfg = RnnConfig::new(CellKind::Gru, 3, 4);
    let params = GpuParams::new(ctx, &RnnWeights::<f32>::init(cfg, 1).unwrap()).unwrap();
    let x = ctx
        .upload(&random(&mut SplitMix64::new(2), &[3, 2, 3], 1.0))
        .unwrap();
    let dy = ctx
        .upload(&random(&mut SplitMix64::new(3), &[3, 2, 4], 1.0))
        .unwrap();
    let backward = || {
        let (_, out_tape) = rnn_forward_train(ctx, &params.value, GpuRnnInput::new(&x)).unwrap();
        let up = wgrnn::gpu::GpuRnnOutputGrads {
            dy: Some(&dy),
            ..Default::default()
        };
        wgrnn::gpu::rnn_backward(ctx, &params.value, &out_tape, up, Some(&params.grad)).unwrap();
    };
    backward();
    let once = params.grad.read(ctx).unwrap();
    backward();
    let twice = params.grad.read(ctx).unwrap();
    for n in once.names() {
        let doubled: Vec<f32> = once
            .get(&n)
            .unwrap()
            .data()
            .iter()
            .map(|v| 2.0 * v)
            .collect();
        assert_close(
            &n,
            twice.get(&n).unwrap().data(),
            &doubled,
            Tolerance {
                abs: 1e-6,
                rel: 1e-6,
            },
        );
    }
    params.zero_grad(ctx).unwrap();
    assert!(
        params
            .grad
            .read(ctx)
            .unwrap()
            .tensors()
            .values()
            .all(|t| t.data().iter().all(|v| *v == 0.0))
    );
}

#[test]
fn checkpoint_round_trip_gives_identical_outputs() {
    let _watch = crate::validation::watch();
    let ctx = ctx();
    let cfg = RnnConfig::new(CellKind::Lstm, 3, 5).bidirectional(true);
    let params = GpuParams::new(ctx, &RnnWeights::<f32>::init(cfg.clone(), 4).unwrap()).unwrap();
    // Train one step so the weights differ from any init.
    let mut opt = GpuOptimizer::new(
        ctx,
        OptimizerConfig::adam(0.1),
        &params
            .pairs()
            .unwrap()
            .iter()
            .map(|p| p.0)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let x = ctx
        .upload(&random(&mut SplitMix64::new(5), &[4, 2, 3], 1.0))
        .unwrap();
    let (out, out_tape) = rnn_forward_train(ctx, &params.value, GpuRnnInput::new(&x)).unwrap();
    let up = wgrnn::gpu::GpuRnnOutputGrads {
        dy: Some(&out.y),
        ..Default::default()
    };
    wgrnn::gpu::rnn_backward(ctx, &params.value, &out_tape, up, Some(&params.grad)).unwrap();
    opt.step(ctx, &params.pairs().unwrap()).unwrap();

    let mut file = SafetensorsFile::default();
    params
        .value
        .save_into(ctx, &mut file, "encoder.rnn.")
        .unwrap();
    let bytes = file.to_bytes().unwrap();
    assert!(
        file.tensors
            .contains_key("encoder.rnn.weight_hh_l0_reverse")
    );

    let fresh = GpuWeights::upload(ctx, &RnnWeights::<f32>::zeros(cfg.clone()).unwrap()).unwrap();
    fresh
        .load_from(
            ctx,
            &SafetensorsFile::from_bytes(&bytes).unwrap(),
            "encoder.rnn.",
        )
        .unwrap();
    let a = rnn_forward(ctx, &params.value, GpuRnnInput::new(&x)).unwrap();
    let b = rnn_forward(ctx, &fresh, GpuRnnInput::new(&x)).unwrap();
    let bits = |t: &wgrnn::gpu::GpuTensor| {
        ctx.read(t)
            .unwrap()
            .data()
            .iter()
            .map(|v| v.to_bits())
            .collect::<Vec<_>>()
    };
    assert_eq!(bits(&a.y), bits(&b.y));
    assert_eq!(bits(&a.h_n), bits(&b.h_n));

    // A checkpoint without the module is an error naming the missing tensor, and changes nothing.
    let e = fresh
        .load_from(
            ctx,
            &SafetensorsFile::from_bytes(&bytes).unwrap(),
            "decoder.rnn.",
        )
        .unwrap_err();
    assert!(e.to_string().contains("decoder.rnn.weight_ih_l0"), "{e}");
    let c = rnn_forward(ctx, &fresh, GpuRnnInput::new(&x)).unwrap();
    assert_eq!(bits(&a.y), bits(&c.y));

    // Loading is strict under the prefix, as PyTorch's load_state_dict is: the bidirectional
    // checkpoint has reverse weights that a unidirectional module would drop in silence.
    let uni = GpuWeights::upload(
        ctx,
        &RnnWeights::<f32>::zeros(cfg.clone().bidirectional(false)).unwrap(),
    )
    .unwrap();
    let e = uni
        .load_from(
            ctx,
            &SafetensorsFile::from_bytes(&bytes).unwrap(),
            "encoder.rnn.",
        )
        .unwrap_err();
    assert!(e.to_string().contains("_reverse"), "{e}");
    // load_with and non-strict options take the forward direction and report the rest, as
    // PyTorch's strict=False does.
    let report = uni
        .load_with(
            ctx,
            &SafetensorsFile::from_bytes(&bytes).unwrap(),
            &wgrnn::core::LoadOptions::non_strict().prefix("encoder.rnn."),
        )
        .unwrap();
    assert!(report.missing_keys.is_empty(), "{report:?}");
    let want: Vec<String> = ["bias_hh", "bias_ih", "weight_hh", "weight_ih"]
        .iter()
        .map(|n| format!("encoder.rnn.{n}_l0_reverse"))
        .collect();
    assert_eq!(report.unexpected_keys, want);
    let fwd = ctx.read(uni.get("weight_hh_l0").unwrap()).unwrap();
    assert_eq!(
        fwd,
        ctx.read(params.value.get("weight_hh_l0").unwrap()).unwrap()
    );

    // A tensor the file lacks keeps its value on the device and is reported missing.
    let mut partial = SafetensorsFile::from_bytes(&bytes).unwrap();
    partial.tensors.remove("encoder.rnn.bias_hh_l0");
    let zeros = GpuWeights::upload(
        ctx,
        &RnnWeights::<f32>::zeros(cfg.clone().bidirectional(false)).unwrap(),
    )
    .unwrap();
    let report = zeros
        .load_with(
            ctx,
            &partial,
            &wgrnn::core::LoadOptions::non_strict().prefix("encoder.rnn."),
        )
        .unwrap();
    assert_eq!(report.missing_keys, ["encoder.rnn.bias_hh_l0"]);
    let kept = ctx.read(zeros.get("bias_hh_l0").unwrap()).unwrap();
    assert!(kept.data().iter().all(|v| *v == 0.0), "{kept:?}");
    assert_eq!(
        ctx.read(zeros.get("bias_ih_l0").unwrap()).unwrap(),
        ctx.read(params.value.get("bias_ih_l0").unwrap()).unwrap()
    );
}

/// A module too large for the device is refused before its weights are built on the host: an
/// LSTM of hidden size 100,000 would need 160 GB there first.
#[test]
fn params_too_large_for_the_device_are_refused_before_the_host_builds_them() {
    let _watch = crate::validation::watch();
    let ctx = ctx();
    let cfg = RnnConfig::new(CellKind::Lstm, 1, 100_000);
    let e = GpuParams::init(ctx, cfg, 0).unwrap_err();
    assert!(
        matches!(&e, wgrnn::Error::TooLarge { arg, .. } if arg.contains("weight_hh_l0")),
        "{e}"
    );
    let small = GpuParams::init(ctx, RnnConfig::new(CellKind::Gru, 3, 4), 5).unwrap();
    let want = RnnWeights::<f32>::init(RnnConfig::new(CellKind::Gru, 3, 4), 5).unwrap();
    assert_eq!(small.value.read(ctx).unwrap(), want);
}

#[test]
fn optimizer_rejects_mismatched_parameters() {
    let _watch = crate::validation::watch();
    let ctx = ctx();
    let a = ctx.zeros(&[4]).unwrap();
    let b = ctx.zeros(&[5]).unwrap();
    let mut opt = GpuOptimizer::new(ctx, OptimizerConfig::adam(1e-3), &[&a]).unwrap();
    let e = opt.step(ctx, &[(&a, &a), (&b, &b)]).unwrap_err();
    assert!(e.to_string().contains("made for 1"), "{e}");
    let e = opt.step(ctx, &[(&a, &b)]).unwrap_err();
    assert!(e.to_string().contains("expected 4"), "{e}");
    // One buffer as both value and gradient: refused by name, not left to the device's
    // validation, and no step is counted.
    let e = opt.step(ctx, &[(&a, &a)]).unwrap_err();
    assert!(e.to_string().contains("same buffer"), "{e}");
    assert_eq!(opt.steps(), 0);
}

/// The device optimizer checks its config as the host one does, when made, when its rate
/// changes (keeping the old rate on error) and for a clipping bound.
#[test]
fn optimizer_rejects_configs_out_of_domain() {
    let _watch = crate::validation::watch();
    let ctx = ctx();
    let a = ctx.zeros(&[4]).unwrap();
    let bad = OptimizerConfig::Adam {
        lr: 1e-3,
        beta1: 1.0,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.0,
        decoupled: false,
    };
    let e = GpuOptimizer::new(ctx, bad, &[&a]).err().expect("beta1 = 1");
    assert!(e.to_string().contains("beta1"), "{e}");
    let mut opt = GpuOptimizer::new(ctx, OptimizerConfig::adam(1e-3), &[&a]).unwrap();
    let e = opt.set_lr(f64::NAN).unwrap_err();
    assert!(e.to_string().contains("lr"), "{e}");
    assert_eq!(*opt.config(), OptimizerConfig::adam(1e-3));
    opt.set_lr(2e-3).unwrap();
    assert_eq!(*opt.config(), OptimizerConfig::adam(2e-3));
    let e = opt.with_clip_grad_norm(-1.0).err().expect("negative bound");
    assert!(e.to_string().contains("max_norm"), "{e}");
}

/// Rates valid in f64 but not in the device's f32 made NaN parameters after two steps; they
/// are refused when the optimizer is made, when its rate changes and for a clipping bound.
#[test]
fn optimizer_rejects_configs_that_overflow_or_vanish_in_f32() {
    let _watch = crate::validation::watch();
    let ctx = ctx();
    let a = ctx.zeros(&[4]).unwrap();
    for (cfg, field) in [
        (OptimizerConfig::adam(1e39), "lr"),
        (OptimizerConfig::sgd(1e39, 0.0), "lr"),
        (
            OptimizerConfig::Adam {
                lr: 1e-3,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-50,
                weight_decay: 0.0,
                decoupled: false,
            },
            "eps",
        ),
    ] {
        let e = GpuOptimizer::new(ctx, cfg, &[&a]).err().expect(field);
        assert!(e.to_string().contains(field), "{e}");
    }
    let mut opt = GpuOptimizer::new(ctx, OptimizerConfig::adam(1e-3), &[&a]).unwrap();
    let e = opt.set_lr(1e39).unwrap_err();
    assert!(e.to_string().contains("lr"), "{e}");
    assert_eq!(*opt.config(), OptimizerConfig::adam(1e-3));
    let e = opt
        .with_clip_grad_norm(1e-50)
        .err()
        .expect("bound 0 in f32");
    assert!(e.to_string().contains("max_norm"), "{e}");
}
