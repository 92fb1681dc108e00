//! Recurrent layers on the CPU reference: analytic gradients against finite differences (f64) on
//! random small shapes, and the packed-sequence semantics of lengths.

use wgrnn::core::{LoadOptions, RnnWeights, SplitMix64, Tensor, TensorMap};
use wgrnn::cpu::gradcheck::dot;
use wgrnn::cpu::{
    GradcheckOptions, RnnInput, RnnOutputGrads, gradcheck, rnn_backward, rnn_forward,
    rnn_forward_train,
};
use wgrnn::{CellKind, GruReset, RnnConfig};

use crate::cases::{CELLS, Case};
use crate::common::random;

/// f64 central differences with ε = 1e-6 are accurate to ~1e-9 here, so a correct backward stays
/// far below this; a wrong term (a missing gate, a transposed index) is off by O(1).
const GRADCHECK_REL: f64 = 1e-6;

/// One random instance of a case: its inputs (the weights, x, h0 and c0 by name), upstream
/// gradients and lengths.
struct Problem {
    cfg: RnnConfig,
    inputs: TensorMap<f64>,
    dy: Tensor<f64>,
    dh_n: Tensor<f64>,
    dc_n: Tensor<f64>,
    lengths: Option<Vec<usize>>,
}

fn problem(case: Case, seed: u64) -> Problem {
    let cfg = case.cfg.clone();
    let (t, b) = (case.t, case.b);
    let mut rng = SplitMix64::new(seed);
    let w = RnnWeights::<f64>::init(cfg.clone(), seed).unwrap();
    let mut inputs = w.into_tensors();
    let state = cfg.state_shape(b);
    inputs.insert("x".into(), random(&mut rng, &case.x_shape(), 1.0));
    // The gradient checks differentiate through the initial states: every case gives them.
    assert!(case.with_state, "{cfg:?}: the gradient checks need h0");
    inputs.insert("h0".into(), random(&mut rng, &state, 0.5));
    if cfg.cell.has_cell_state() {
        inputs.insert("c0".into(), random(&mut rng, &cfg.cell_state_shape(b), 0.5));
    }
    let y_shape = cfg.output_shape(wgrnn::core::RnnDims {
        seq_len: t,
        batch: b,
    });
    Problem {
        dy: random(&mut rng, &y_shape, 1.0),
        dh_n: random(&mut rng, &state, 1.0),
        dc_n: random(&mut rng, &cfg.cell_state_shape(b), 1.0),
        cfg,
        inputs,
        lengths: case.lengths,
    }
}

/// A case of T steps of B sequences with initial states, as every gradient check here takes.
fn case(cfg: RnnConfig, t: usize, b: usize, lengths: Option<Vec<usize>>) -> Case {
    Case {
        cfg,
        t,
        b,
        lengths,
        with_state: true,
    }
}

fn weights(c: &Problem, m: &TensorMap<f64>) -> RnnWeights<f64> {
    RnnWeights::from_tensors(c.cfg.clone(), m.clone(), &LoadOptions::non_strict()).unwrap()
}

fn input<'a>(c: &'a Problem, m: &'a TensorMap<f64>) -> RnnInput<'a, f64> {
    let mut i = RnnInput::new(&m["x"]).h0(&m["h0"]);
    if let Some(c0) = m.get("c0") {
        i = i.c0(c0);
    }
    if let Some(l) = &c.lengths {
        i = i.lengths(l);
    }
    i.seed(7)
}

/// loss = Σ y·dy + Σ h_n·dh_n (+ Σ c_n·dc_n), as the Keras fixtures define it: of the
/// training forward, whose inter-layer dropout masks are fixed by the input's seed.
fn loss(c: &Problem, m: &TensorMap<f64>) -> wgrnn::Result<f64> {
    let (out, _) = rnn_forward_train(&weights(c, m), input(c, m))?;
    Ok(dot(&out.y, &c.dy)
        + dot(&out.h_n, &c.dh_n)
        + out.c_n.as_ref().map_or(0.0, |cn| dot(cn, &c.dc_n)))
}

fn check(cfg: RnnConfig, t: usize, b: usize, lengths: Option<Vec<usize>>, seed: u64) {
    let c = problem(case(cfg, t, b, lengths), seed);
    let w = weights(&c, &c.inputs);
    let (_, tape) = rnn_forward_train(&w, input(&c, &c.inputs)).unwrap();
    let dc_n = c.cfg.cell.has_cell_state().then_some(&c.dc_n);
    let g = rnn_backward(
        &w,
        &tape,
        RnnOutputGrads {
            dy: Some(&c.dy),
            dh_n: Some(&c.dh_n),
            dc_n,
        },
    )
    .unwrap();
    let mut analytic = g.weights.into_tensors();
    analytic.insert("x".into(), g.dx);
    analytic.insert("h0".into(), g.dh0);
    if let Some(dc0) = g.dc0 {
        analytic.insert("c0".into(), dc0);
    }
    let report = gradcheck(
        &c.inputs,
        &analytic,
        |m| loss(&c, m),
        GradcheckOptions::default(),
    )
    .unwrap();
    let what = format!("{:?} T={t} B={b} lengths={:?}", c.cfg, c.lengths);
    assert!(
        report.checked == c.inputs.values().map(Tensor::numel).sum::<usize>(),
        "{what}: not every entry checked"
    );
    assert!(report.worst_rel_error < GRADCHECK_REL, "{what}: {report}");
    eprintln!("{what}: {report}");
}

#[test]
fn gradcheck_every_cell_one_layer() {
    for (i, cell) in CELLS.into_iter().enumerate() {
        check(cell.config(3, 4), 5, 2, None, 10 + i as u64);
    }
}

#[test]
fn gradcheck_three_layers_bidirectional_uneven_lengths() {
    for (i, cell) in CELLS.into_iter().enumerate() {
        let cfg = cell.config(3, 3).layers(3).bidirectional(true);
        check(cfg, 5, 3, Some(vec![5, 2, 4]), 20 + i as u64);
    }
}

/// The variants beside the plain cells: the LSTM projection (P = 2 of H = 3, and P = 1) and
/// the reset-before GRU, deep and bidirectional with uneven lengths, batch-first and biasless.
#[test]
fn gradcheck_projection_and_reset_before() {
    let proj = |p| RnnConfig::new(CellKind::Lstm, 3, 3).proj_size(p);
    let before = || RnnConfig::new(CellKind::Gru, 3, 3).gru_reset(GruReset::Before);
    for (i, cfg) in [
        proj(2).layers(3).bidirectional(true),
        proj(1).layers(2).batch_first(true).bias(false),
        before().layers(3).bidirectional(true),
        before().layers(2).batch_first(true).bias(false),
    ]
    .into_iter()
    .enumerate()
    {
        check(cfg, 5, 3, Some(vec![5, 2, 4]), 70 + i as u64);
    }
}

/// Inter-layer dropout in training: the masks are a function of the seed, so the gradient
/// is checkable; deep, bidirectional, uneven lengths, with a projection and the reset-before
/// GRU.
#[test]
fn gradcheck_with_dropout() {
    let cfgs = [
        RnnConfig::new(CellKind::Lstm, 3, 3)
            .layers(3)
            .bidirectional(true),
        RnnConfig::new(CellKind::Lstm, 3, 3).proj_size(2).layers(2),
        RnnConfig::new(CellKind::Gru, 3, 3)
            .gru_reset(GruReset::Before)
            .layers(2),
        RnnConfig::new(CellKind::RnnTanh, 3, 3)
            .layers(3)
            .batch_first(true),
    ];
    for (i, cfg) in cfgs.into_iter().enumerate() {
        check(cfg.dropout(0.4), 5, 3, Some(vec![5, 2, 4]), 80 + i as u64);
    }
}

/// PyTorch's inter-layer dropout: every layer's output but the last, in training only; the
/// same seed gives the same masks, another seed others, p = 0 and one layer change nothing.
#[test]
fn dropout_masks_layer_outputs_in_training_only() {
    let mut rng = SplitMix64::new(3);
    let x: Tensor<f64> = random(&mut rng, &[6, 4, 3], 1.0);
    let run = |cfg: RnnConfig, seed: u64, train: bool| {
        let w = RnnWeights::<f64>::init(cfg, 9).unwrap();
        let input = RnnInput::new(&x).seed(seed);
        if train {
            rnn_forward_train(&w, input).unwrap().0.y
        } else {
            rnn_forward(&w, input).unwrap().y
        }
    };
    let deep = RnnConfig::new(CellKind::Lstm, 3, 8).layers(2);
    let plain = run(deep.clone(), 1, false);
    assert_eq!(
        run(deep.clone(), 1, true),
        plain,
        "p = 0 changes a training call"
    );
    let dropped = deep.dropout(0.5);
    assert_eq!(run(dropped.clone(), 1, false), plain, "inference is masked");
    let (a, b) = (run(dropped.clone(), 1, true), run(dropped.clone(), 2, true));
    assert_ne!(a, plain, "training is not masked");
    assert_eq!(a, run(dropped.clone(), 1, true), "one seed gives two masks");
    assert_ne!(a, b, "two seeds give one mask");
    let one = RnnConfig::new(CellKind::Lstm, 3, 8).dropout(0.5);
    assert_eq!(
        run(one.clone(), 1, true),
        run(one, 1, false),
        "the last layer is masked"
    );
}

#[test]
fn gradcheck_batch_one_and_single_step() {
    for (i, cell) in CELLS.into_iter().enumerate() {
        check(
            cell.config(2, 3).bidirectional(true),
            4,
            1,
            None,
            30 + i as u64,
        );
        check(
            cell.config(2, 3).layers(2).bidirectional(true),
            1,
            3,
            None,
            40 + i as u64,
        );
    }
}

#[test]
fn gradcheck_batch_first_and_no_bias() {
    for (i, cell) in CELLS.into_iter().enumerate() {
        let cfg = cell
            .config(3, 2)
            .layers(2)
            .bidirectional(true)
            .batch_first(true);
        check(cfg, 4, 3, Some(vec![1, 4, 3]), 50 + i as u64);
        check(
            cell.config(3, 2).bias(false),
            3,
            2,
            Some(vec![3, 2]),
            60 + i as u64,
        );
    }
}

/// Padded steps give y = 0 and h_n is the state after each sequence's last valid step, which is
/// what running that sequence alone, unpadded, gives.
#[test]
fn lengths_follow_packed_sequence_semantics() {
    for (i, cell) in CELLS.into_iter().enumerate() {
        let cfg = cell.config(3, 4).layers(2).bidirectional(true);
        let lengths = vec![5, 2, 4];
        let c = problem(
            case(cfg.clone(), 5, 3, Some(lengths.clone())),
            70 + i as u64,
        );
        let w = weights(&c, &c.inputs);
        let out = rnn_forward(&w, input(&c, &c.inputs)).unwrap();
        let (dh, nd) = (cfg.output_size(), cfg.num_directions() * cfg.num_layers);
        for (b, &len) in lengths.iter().enumerate() {
            // Sequence b alone: x[..len, b], its own h0/c0 slices.
            let pick = |t: &Tensor<f64>, rows: usize, f: usize, steps: usize| {
                let data = (0..steps)
                    .flat_map(|r| t.data()[(r * rows + b) * f..(r * rows + b + 1) * f].to_vec())
                    .collect();
                Tensor::new([steps, 1, f], data).unwrap()
            };
            let x = pick(&c.inputs["x"], 3, 3, len);
            let h0 = pick(&c.inputs["h0"], 3, 4, nd);
            let c0 = c.inputs.get("c0").map(|c0| pick(c0, 3, 4, nd));
            let mut one = RnnInput::new(&x).h0(&h0);
            if let Some(c0) = &c0 {
                one = one.c0(c0);
            }
            let alone = rnn_forward(&w, one).unwrap();
            for t in 0..5 {
                let got = &out.y.data()[(t * 3 + b) * dh..(t * 3 + b + 1) * dh];
                if t < len {
                    assert_eq!(
                        got,
                        &alone.y.data()[t * dh..(t + 1) * dh],
                        "{cell:?} y[{t}, {b}]"
                    );
                } else {
                    assert!(
                        got.iter().all(|v| *v == 0.0),
                        "{cell:?} y[{t}, {b}] is padding but {got:?}"
                    );
                }
            }
            assert_eq!(
                pick(&out.h_n, 3, 4, nd).data(),
                alone.h_n.data(),
                "{cell:?} h_n[:, {b}]"
            );
            if let (Some(cn), Some(alone_cn)) = (&out.c_n, &alone.c_n) {
                assert_eq!(
                    pick(cn, 3, 4, nd).data(),
                    alone_cn.data(),
                    "{cell:?} c_n[:, {b}]"
                );
            }
        }
    }
}

/// Absent initial states are zeros; batch-first is the transpose of sequence-major.
#[test]
fn defaults_and_batch_first_agree_with_explicit_forms() {
    for (i, cell) in CELLS.into_iter().enumerate() {
        let cfg = cell.config(3, 4).layers(2).bidirectional(true);
        let w = RnnWeights::<f64>::init(cfg.clone(), 80 + i as u64).unwrap();
        let mut rng = SplitMix64::new(90 + i as u64);
        let x: Tensor<f64> = random(&mut rng, &[4, 2, 3], 1.0);
        let zeros = Tensor::zeros(cfg.state_shape(2)).unwrap();
        let implicit = rnn_forward(&w, RnnInput::new(&x)).unwrap();
        let mut explicit = RnnInput::new(&x).h0(&zeros).lengths(&[4, 4]);
        if cell.kind == CellKind::Lstm {
            explicit = explicit.c0(&zeros);
        }
        assert_eq!(
            implicit,
            rnn_forward(&w, explicit).unwrap(),
            "{cell:?}: defaults"
        );

        let wbf = RnnWeights::from_tensors(
            cfg.clone().batch_first(true),
            w.tensors().clone(),
            &LoadOptions::strict(),
        )
        .unwrap();
        let bf = rnn_forward(&wbf, RnnInput::new(&x.swap_leading_axes().unwrap())).unwrap();
        assert_eq!(
            bf.y,
            implicit.y.swap_leading_axes().unwrap(),
            "{cell:?}: batch_first y"
        );
        assert_eq!(bf.h_n, implicit.h_n, "{cell:?}: batch_first h_n");
    }
}

/// PyTorch's unbatched call (`x` `[T, I]`, states `[L·D, H]`) is the batch-of-one call with the
/// batch axis dropped, forward and backward, in both layouts; a 3-D state beside a 2-D `x`
/// is refused by name.
#[test]
fn unbatched_input_is_a_batch_of_one() {
    let lstm = RnnConfig::new(CellKind::Lstm, 3, 4).proj_size(2);
    let gru = RnnConfig::new(CellKind::Gru, 3, 4).gru_reset(GruReset::Before);
    for (i, cfg) in [lstm, gru].into_iter().enumerate() {
        for batch_first in [false, true] {
            let cfg = cfg
                .clone()
                .layers(2)
                .bidirectional(true)
                .batch_first(batch_first);
            let w = RnnWeights::<f64>::init(cfg.clone(), 90 + i as u64).unwrap();
            let mut rng = SplitMix64::new(91);
            let (t, ld) = (5, 4);
            let x: Tensor<f64> = random(&mut rng, &[t, 3], 1.0);
            let h0: Tensor<f64> = random(&mut rng, &[ld, cfg.state_size()], 0.5);
            let c0: Tensor<f64> = random(&mut rng, &[ld, 4], 0.5);
            let dy: Tensor<f64> = random(&mut rng, &[t, cfg.output_size()], 1.0);
            let dh: Tensor<f64> = random(&mut rng, &[ld, cfg.state_size()], 1.0);
            let lstm = cfg.cell == CellKind::Lstm;
            let batch = |t: &Tensor<f64>, s: Vec<usize>| t.clone().reshape(s).unwrap();
            let xb = batch(
                &x,
                if batch_first {
                    vec![1, t, 3]
                } else {
                    vec![t, 1, 3]
                },
            );
            let (h0b, c0b) = (
                batch(&h0, vec![ld, 1, cfg.state_size()]),
                batch(&c0, vec![ld, 1, 4]),
            );
            let mut flat = RnnInput::new(&x).h0(&h0);
            let mut batched = RnnInput::new(&xb).h0(&h0b);
            if lstm {
                flat = flat.c0(&c0);
                batched = batched.c0(&c0b);
            }
            let (out, tape) = rnn_forward_train(&w, flat).unwrap();
            let (want, want_tape) = rnn_forward_train(&w, batched).unwrap();
            let what = format!("{cfg:?}");
            assert_eq!(out.y.shape(), [t, cfg.output_size()], "{what}: y");
            assert_eq!(out.h_n.shape(), [ld, cfg.state_size()], "{what}: h_n");
            assert_eq!(out.y.data(), want.y.data(), "{what}: y");
            assert_eq!(out.h_n.data(), want.h_n.data(), "{what}: h_n");
            let (dyb, dhb) = (
                batch(&dy, want.y.shape().to_vec()),
                batch(&dh, vec![ld, 1, cfg.state_size()]),
            );
            let g = rnn_backward(
                &w,
                &tape,
                RnnOutputGrads {
                    dy: Some(&dy),
                    dh_n: Some(&dh),
                    dc_n: None,
                },
            )
            .unwrap();
            let gw = rnn_backward(
                &w,
                &want_tape,
                RnnOutputGrads {
                    dy: Some(&dyb),
                    dh_n: Some(&dhb),
                    dc_n: None,
                },
            )
            .unwrap();
            assert_eq!(g.dx.shape(), [t, 3], "{what}: dx");
            assert_eq!(g.dx.data(), gw.dx.data(), "{what}: dx");
            assert_eq!(g.dh0.shape(), [ld, cfg.state_size()], "{what}: dh0");
            assert_eq!(g.dh0.data(), gw.dh0.data(), "{what}: dh0");
            assert_eq!(g.weights, gw.weights, "{what}: weight gradients");
            // A batched upstream gradient for an unbatched call is refused by name.
            let e = rnn_backward(
                &w,
                &tape,
                RnnOutputGrads {
                    dy: Some(&dyb),
                    ..Default::default()
                },
            )
            .unwrap_err();
            assert!(e.to_string().contains("dy"), "{what}: {e}");
            let e = rnn_forward(&w, RnnInput::new(&x).h0(&h0b)).unwrap_err();
            assert!(
                e.to_string().contains("h0") && e.to_string().contains("2-D"),
                "{what}: {e}"
            );
        }
    }
}
