//! Models at the edge of the device's binding limit: a model whose own tensors fit must run
//! forward and backward on every path, whatever the engine repacks its weights into; one that
//! cannot is refused at init, naming the limit and the buffer.

use std::sync::OnceLock;

use wgrnn::core::{RnnWeights, SplitMix64, Tensor};
use wgrnn::cpu::{RnnInput, RnnOutputGrads, rnn_backward, rnn_forward_train};
use wgrnn::gpu::{Context, GpuParams, GpuRnnInput, GpuRnnOutputGrads};
use wgrnn::{CellKind, RnnConfig};

use crate::common::{assert_tensor_close, random};
use crate::gpu_backward::GPU_GRAD;
use crate::gpu_rnn::GPU_F32;
use crate::paths::{Path, per_path};

/// The binding limit these cases are sized for: lavapipe's. Adapters that bind more (SwiftShader
/// binds 2 GiB, and then runs out of memory at its boundary) get a device asking for no more, so
/// every adapter runs the same edge.
const CAPPED_BINDING: u64 = 128 << 20;

/// A context as `Context::new` would choose it (`WGPU_ADAPTER_NAME`, the instance flags of the
/// environment), on a device whose storage bindings and buffers are held to [`CAPPED_BINDING`].
fn capped() -> &'static Context {
    static C: OnceLock<Context> = OnceLock::new();
    crate::validation::assert_watched();
    C.get_or_init(|| {
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let opts = wgrnn::gpu::ContextOptions::from_env();
        let adapters = pollster::block_on(instance.enumerate_adapters(opts.backends));
        let want = opts.adapter_name.map(|n| n.to_lowercase());
        let adapter = adapters
            .into_iter()
            .find(|a| {
                want.as_ref()
                    .is_none_or(|n| a.get_info().name.to_lowercase().contains(n))
            })
            .expect("an adapter (the GPU tests need one)");
        let mut limits = adapter.limits();
        limits.max_storage_buffer_binding_size =
            limits.max_storage_buffer_binding_size.min(CAPPED_BINDING);
        limits.max_buffer_size = limits.max_buffer_size.min(CAPPED_BINDING);
        let desc = wgpu::DeviceDescriptor {
            label: Some("wgrnn capped"),
            required_limits: limits,
            ..Default::default()
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&desc)).unwrap();
        let ctx = Context::from_device(device, queue, &adapter.get_info()).unwrap();
        eprintln!(
            "large-model tests run on {} with bindings of at most 128 MiB",
            ctx.adapter()
        );
        ctx
    })
}

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
    let (out, out_tape) = wgrnn::gpu::rnn_forward_train(ctx, &params.value, GpuRnnInput::new(&gx))
        .unwrap_or_else(|e| panic!("{cfg:?} forward on {:?}: {e}", ctx.gemm_block()));
    let upstream = GpuRnnOutputGrads {
        dy: Some(&gdy),
        dh_n: Some(&gdh),
        dc_n: lstm.then_some(&gdc),
    };
    let got = wgrnn::gpu::rnn_backward(ctx, &params.value, &out_tape, upstream, Some(&params.grad))
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

/// The default context's path (on CPU adapters the split steps, whose product reads `W_hh`
/// repacked), with the bindings held to 128 MiB.
#[test]
fn gru_3300_runs_and_trains_on_the_default_context() {
    let _watch = crate::validation::watch();
    check_on(capped(), &gru_3300(), 31);
}

#[test]
fn lstm_2890_runs_and_trains_on_the_default_context() {
    let _watch = crate::validation::watch();
    check_on(capped(), &lstm_2890(), 32);
}

/// The fused step kernels (the `Tiled` blocking) and the persistent kernels read `W_hh` packed
/// per unit (a GRU's three gates padded to four).
fn gru_3300_runs_and_trains(path: Path, ctx: &Context) {
    check_on(ctx, &gru_3300(), seed(path, 33));
}
per_path!([tiled, persistent]: gru_3300_runs_and_trains(path));

fn lstm_2890_runs_and_trains(path: Path, ctx: &Context) {
    check_on(ctx, &lstm_2890(), seed(path, 35));
}
per_path!([tiled, persistent]: lstm_2890_runs_and_trains(path));

/// Each path's seed: `tiled` the first, `persistent` the next.
fn seed(path: Path, tiled: u64) -> u64 {
    match path {
        Path::Tiled => tiled,
        Path::Persistent => tiled + 1,
        other => panic!("no seed for {other:?}"),
    }
}

/// The largest bytes one tensor may bind on `ctx`, as the allocator counts them (see
/// `check_binding_size`: the binding limit, or the buffer limit where lower).
fn binding_limit(ctx: &Context) -> u64 {
    let l = ctx.limits();
    l.max_storage_buffer_binding_size.min(l.max_buffer_size)
}

/// The largest hidden size of `cell` (input 1) whose `weight_hh`, G·H² f32 rounded up to 16
/// bytes, fits one binding of `ctx`.
fn largest_hidden(ctx: &Context, cell: CellKind) -> usize {
    let fits =
        |h: u64| (cell.gates() as u64 * h * h * 4).next_multiple_of(16) <= binding_limit(ctx);
    let mut h = ((binding_limit(ctx) / (4 * cell.gates() as u64)) as f64).sqrt() as u64 + 1;
    while !fits(h) {
        h -= 1;
    }
    h as usize
}

/// At the largest GRU and LSTM that the device holds, forward and backward run and match the
/// reference; one unit more, init refuses `weight_hh` itself.
#[test]
fn largest_gru_and_lstm_run_and_one_unit_more_is_refused_at_init() {
    let _watch = crate::validation::watch();
    let ctx = capped();
    for (cell, seed) in [(CellKind::Gru, 41), (CellKind::Lstm, 42)] {
        let h = largest_hidden(ctx, cell);
        eprintln!("{cell:?}: largest hidden size {h}");
        check_on(ctx, &RnnConfig::new(cell, 1, h), seed);
        let e = GpuParams::init(ctx, RnnConfig::new(cell, 1, h + 1), seed).unwrap_err();
        match e {
            wgrnn::Error::TooLarge { arg, limit, .. } => {
                assert!(
                    arg.starts_with("weight_hh_l0"),
                    "{cell:?} H={}: {arg}",
                    h + 1
                );
                assert_eq!(limit, binding_limit(ctx));
            }
            other => panic!("{cell:?} H={}: {other}", h + 1),
        }
    }
}

/// An input so wide that `weight_ih` ([1, I]) fits while its copy packed for the input
/// projection ([I, 32]: the rows of a one-unit Elman cell padded to the GEMMs' block) does
/// not: init refuses it, naming the packed copy and the limit, instead of making weights that
/// no forward can use; `GpuParams::new` and the forward refuse it alike.
#[test]
fn an_input_whose_packed_copy_cannot_bind_is_refused_at_init() {
    let _watch = crate::validation::watch();
    let ctx = capped();
    let input = (binding_limit(ctx) / 4 / 32 + 1) as usize;
    let cfg = RnnConfig::new(CellKind::RnnTanh, input, 1);
    let check = |e: wgrnn::Error, what: &str| match e {
        wgrnn::Error::TooLarge {
            arg, limit_name, ..
        } => {
            assert!(
                arg.contains("weight_ih_l0") && arg.contains("input projection"),
                "{what}: {arg}"
            );
            assert_eq!(limit_name, "max_storage_buffer_binding_size", "{what}");
        }
        other => panic!("{what}: {other}"),
    };
    check(
        GpuParams::init(ctx, cfg.clone(), 5).unwrap_err(),
        "GpuParams::init",
    );
    check(
        wgrnn::gpu::GpuWeights::init(ctx, cfg.clone(), 5).unwrap_err(),
        "GpuWeights::init",
    );
    let w = RnnWeights::<f32>::init(cfg, 5).unwrap();
    check(GpuParams::new(ctx, &w).unwrap_err(), "GpuParams::new");
    let gw = wgrnn::gpu::GpuWeights::upload(ctx, &w).unwrap();
    let x = ctx
        .upload(&Tensor::new([1, 1, input], vec![0.5f32; input]).unwrap())
        .unwrap();
    let e = wgrnn::gpu::rnn_forward(ctx, &gw, GpuRnnInput::new(&x)).unwrap_err();
    check(e, "rnn_forward");
}

/// A dense layer whose weight `[out, 1]` fits while what its products pack from it does not:
/// the output gradient of one row, packed as a left operand (64 rows per panel on CPU
/// adapters, whatever the batch), and the weight packed for the input gradient (`[out, 32]`:
/// one column padded to the GEMM block). Init refuses it, naming the packed operand; at one
/// output fewer than that edge, forward and backward run.
#[test]
fn a_dense_layer_whose_packed_operands_cannot_bind_is_refused_at_init() {
    let _watch = crate::validation::watch();
    let ctx = capped();
    // The panel is 64 rows, followed by the 64 KiB (16,384-float) uniform window CPU adapters
    // read it through.
    let edge = ((binding_limit(ctx) / 4 - 16_384) / 64) as usize;
    let e = GpuParams::init(ctx, wgrnn::LinearConfig::new(1, edge + 1), 3).unwrap_err();
    match e {
        wgrnn::Error::TooLarge { arg, limit, .. } => {
            assert!(arg.contains("as wide as `weight`"), "{arg}");
            assert_eq!(limit, binding_limit(ctx));
        }
        other => panic!("{other}"),
    }
    let p = GpuParams::init(ctx, wgrnn::LinearConfig::new(1, edge), 3).unwrap();
    let x = ctx
        .upload(&Tensor::new([1, 1], vec![0.5f32]).unwrap())
        .unwrap();
    let y = wgrnn::gpu::linear_forward(ctx, &p.value, &x).unwrap();
    let g = wgrnn::gpu::linear_backward(ctx, &p.value, &x, &y, None).unwrap();
    // dW = dyᵀ·x with dy = y = W·x + b: row j of dW is 0.5·(0.5·W[j] + b[j]), within f32
    // rounding of two products and a sum of O(1) values.
    let w = p.value.read(ctx).unwrap();
    let (wv, bv) = (
        w.get("weight").unwrap().data(),
        w.get("bias").unwrap().data(),
    );
    let dw = ctx.read(g.weights.get("weight").unwrap()).unwrap();
    for j in [0, edge / 2, edge - 1] {
        let want = 0.5 * (0.5 * wv[j] + bv[j]);
        let got = dw.data()[j];
        assert!(
            (got - want).abs() <= 1e-6,
            "dW[{j}]: got {got}, want {want}"
        );
    }
}
