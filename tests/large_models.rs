//! Models at the edge of the device's binding limit: a model whose own tensors fit must run
//! forward and backward on every path, whatever the engine repacks its weights into.

use wgrnn::core::{RnnWeights, SplitMix64, Tensor};
use wgrnn::cpu::{RnnInput, RnnOutputGrads, rnn_backward, rnn_forward_train};
use wgrnn::gpu::{Context, GpuParams, GpuRnnInput, GpuRnnOutputGrads, Mode};
use wgrnn::{CellKind, RnnConfig};

use crate::common::{assert_tensor_close, random};
use crate::gpu::{blockings, ctx, persistent};
use crate::gpu_backward::GPU_GRAD;
use crate::gpu_rnn::GPU_F32;

/// A GRU whose `weight_hh` (3·3300 × 3300 f32, 130,680,000 bytes) fits a binding of 128 MiB
/// (lavapipe's), while the same rows with the gates of a unit padded to four do not.
fn gru_3300() -> RnnConfig {
    RnnConfig::new(CellKind::Gru, 1, 3300)
}

/// An LSTM whose `weight_hh` (4·2890 × 2890 f32, 133,633,600 bytes) fits 128 MiB, while its
/// rows padded to the GEMMs' 128-float blocks do not.
fn lstm_2890() -> RnnConfig {
    RnnConfig::new(CellKind::Lstm, 1, 2890)
}

/// Forward (training) and backward of `cfg` at T = 2, B = 1 on `ctx`, from weights made by
/// `GpuParams::init`, against the f64 reference on the same weights: outputs, final states,
/// input and state gradients and every parameter gradient, whole.
fn check_on(ctx: &Context, cfg: &RnnConfig, seed: u64) {
    let (t, b) = (2, 1);
    let params = GpuParams::init(ctx, cfg.clone(), seed).unwrap();
    let w: RnnWeights<f64> = params.value.read(ctx).unwrap().cast();
    let mut rng = SplitMix64::new(seed);
    let x: Tensor<f64> = random(&mut rng, &[t, b, cfg.input_size], 1.0);
    let state = cfg.state_shape(b);
    let y_shape = cfg.output_shape(wgrnn::core::RnnDims {
        seq_len: t,
        batch: b,
    });
    let dy: Tensor<f64> = random(&mut rng, &y_shape, 1.0);
    let dh_n: Tensor<f64> = random(&mut rng, &state, 1.0);
    let lstm = cfg.cell == CellKind::Lstm;
    let dc_n: Tensor<f64> = random(&mut rng, &state, 1.0);
    let (want_out, tape) = rnn_forward_train(&w, RnnInput::new(&x)).unwrap();
    let want = rnn_backward(
        &w,
        &tape,
        RnnOutputGrads {
            dy: Some(&dy),
            dh_n: Some(&dh_n),
            dc_n: lstm.then_some(&dc_n),
        },
    )
    .unwrap();

    let up = |t: &Tensor<f64>| ctx.upload(&t.cast()).unwrap();
    let (gx, gdy, gdh, gdc) = (up(&x), up(&dy), up(&dh_n), up(&dc_n));
    let out = wgrnn::gpu::rnn_forward(ctx, &params.value, GpuRnnInput::new(&gx), Mode::Training)
        .unwrap_or_else(|e| panic!("{cfg:?} forward on {:?}: {e}", ctx.gemm_block()));
    let upstream = GpuRnnOutputGrads {
        dy: Some(&gdy),
        dh_n: Some(&gdh),
        dc_n: lstm.then_some(&gdc),
    };
    let got = wgrnn::gpu::rnn_backward(
        ctx,
        &params.value,
        out.tape().unwrap(),
        upstream,
        Some(&params.grad),
    )
    .unwrap_or_else(|e| panic!("{cfg:?} backward on {:?}: {e}", ctx.gemm_block()));
    let what = format!(
        "{cfg:?} T={t} B={b} {:?} small-batch limit {}",
        ctx.gemm_block(),
        ctx.small_batch_limit()
    );
    let read = |g: &wgrnn::gpu::GpuTensor| ctx.read(g).unwrap();
    assert_tensor_close(&format!("{what}: y"), &read(&out.y), &want_out.y, GPU_F32);
    assert_tensor_close(
        &format!("{what}: h_n"),
        &read(&out.h_n),
        &want_out.h_n,
        GPU_F32,
    );
    if let (Some(g), Some(c)) = (&out.c_n, &want_out.c_n) {
        assert_tensor_close(&format!("{what}: c_n"), &read(g), c, GPU_F32);
    }
    assert_tensor_close(&format!("{what}: dx"), &read(&got.dx), &want.dx, GPU_GRAD);
    assert_tensor_close(
        &format!("{what}: dh0"),
        &read(&got.dh0),
        &want.dh0,
        GPU_GRAD,
    );
    if let (Some(g), Some(c)) = (&got.dc0, &want.dc0) {
        assert_tensor_close(&format!("{what}: dc0"), &read(g), c, GPU_GRAD);
    }
    let grads = params.grad.read(ctx).unwrap();
    for name in want.weights.names() {
        assert_tensor_close(
            &format!("{what}: grad {name}"),
            grads.get(&name).unwrap(),
            want.weights.get(&name).unwrap(),
            GPU_GRAD,
        );
    }
}

/// The default context: on CPU adapters the split steps, whose product reads `W_hh` repacked.
#[test]
fn gru_3300_runs_and_trains_on_the_default_context() {
    check_on(ctx(), &gru_3300(), 31);
}

#[test]
fn lstm_2890_runs_and_trains_on_the_default_context() {
    check_on(ctx(), &lstm_2890(), 32);
}

/// The fused step kernels (the `Tiled` blocking) and the persistent kernels read `W_hh` packed
/// per unit (a GRU's three gates padded to four).
#[test]
fn gru_3300_runs_and_trains_on_the_fused_and_persistent_paths() {
    let [tiled, _, _] = blockings();
    check_on(tiled, &gru_3300(), 33);
    check_on(persistent(), &gru_3300(), 34);
}

#[test]
fn lstm_2890_runs_and_trains_on_the_fused_and_persistent_paths() {
    let [tiled, _, _] = blockings();
    check_on(tiled, &lstm_2890(), 35);
    check_on(persistent(), &lstm_2890(), 36);
}
