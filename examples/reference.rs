//! The CPU reference end to end: an LSTM forward and backward on a padded batch, then a
//! finite-difference check of every gradient.
//!
//! `cargo run --release --example reference`

use wgrnn::core::{LoadOptions, RnnWeights, SplitMix64, Tensor, TensorMap};
use wgrnn::cpu::gradcheck::dot;
use wgrnn::cpu::{
    GradcheckOptions, RnnInput, RnnOutputGrads, gradcheck, rnn_backward, rnn_forward,
    rnn_forward_train,
};
use wgrnn::{CellKind, RnnConfig};

fn random(rng: &mut SplitMix64, shape: &[usize]) -> wgrnn::Result<Tensor<f64>> {
    Tensor::from_fn(shape.to_vec(), |_| rng.uniform(-1.0, 1.0))
}

fn main() -> wgrnn::Result<()> {
    // nn.LSTM(input_size=8, hidden_size=16, num_layers=2, bidirectional=True), sequence-major.
    let cfg = RnnConfig::new(CellKind::Lstm, 8, 16)
        .layers(2)
        .bidirectional(true);
    let (t, b) = (12, 4);
    let lengths = [12, 7, 9, 3];
    let w = RnnWeights::<f64>::init(cfg.clone(), 42)?;
    let mut rng = SplitMix64::new(7);
    let x = random(&mut rng, &[t, b, cfg.input_size])?;
    let input = RnnInput::new(&x).lengths(&lengths);

    let (out, tape) = rnn_forward_train(&w, input)?;
    let c_n = out.c_n.as_ref().map(|c| c.shape().to_vec());
    println!("{cfg:?}");
    println!("x {:?}, lengths {lengths:?}", x.shape());
    println!(
        "forward:  y {:?}  h_n {:?}  c_n {c_n:?}",
        out.y.shape(),
        out.h_n.shape()
    );

    let dy = random(&mut rng, out.y.shape())?;
    let dh_n = random(&mut rng, out.h_n.shape())?;
    let g = rnn_backward(
        &w,
        &tape,
        RnnOutputGrads {
            dy: Some(&dy),
            dh_n: Some(&dh_n),
            dc_n: None,
        },
    )?;
    println!("backward: dx {:?}  dh0 {:?}", g.dx.shape(), g.dh0.shape());
    for name in g.weights.names() {
        println!("  grad {name:<22} {:?}", g.weights.get(&name)?.shape());
    }

    // Every gradient against central finite differences of loss = Σ y·dy + Σ h_n·dh_n.
    let mut inputs: TensorMap<f64> = w.tensors().clone();
    inputs.insert("x".into(), x.clone());
    let mut analytic = g.weights.into_tensors();
    analytic.insert("x".into(), g.dx);
    let loss = |m: &TensorMap<f64>| {
        let w = RnnWeights::from_tensors(cfg.clone(), m.clone(), &LoadOptions::non_strict())?;
        let out = rnn_forward(&w, RnnInput::new(&m["x"]).lengths(&lengths))?;
        Ok(dot(&out.y, &dy) + dot(&out.h_n, &dh_n))
    };
    let opts = GradcheckOptions {
        max_per_tensor: Some(64),
        ..Default::default()
    };
    let report = gradcheck(&inputs, &analytic, loss, opts)?;
    println!("gradcheck: {report}");
    if report.worst_rel_error >= 1e-6 {
        eprintln!("gradcheck FAILED");
        std::process::exit(1);
    }
    println!("gradcheck passed (< 1e-6)");
    Ok(())
}
