//! Elman RNN, LSTM and GRU: multi-layer, bidirectional, variable lengths, forward and backward.
//!
//! The structure is the GPU's: per (layer, direction) the input projection `X·W_ihᵀ + b_ih` is one
//! product over all T·B rows, then a loop over steps applies the cell; backward runs the steps in
//! reverse to get the gate gradients, then forms `dW_ih = dGᵀ·X`, `dW_hh = dGᵀ·H_prev` and
//! `dX = dG·W_ih` as single products.
//!
//! Lengths follow PyTorch's packed sequences: sequence b has `lengths[b]` valid steps; the forward
//! direction runs t = 0..len, the reverse one t = len−1 down to 0, both starting from `h0`. Outputs
//! at padded steps are 0 and `h_n`/`c_n` hold each sequence's state after its last processed step.

use wgrnn_core::{
    CellKind, DropoutConfig, Error, GruReset, Real, Result, RnnConfig, RnnDims, RnnWeights, Tensor,
    TensorMap, tensor::expect_shape,
};

use crate::gemm::{Mat, add_row_bias, col_sums_acc, gemm, gemm_acc};
use crate::zeroed;

const OP: &str = "rnn_forward";

/// Inputs of one recurrent call. `h0`/`c0` default to zeros, `lengths` to T for every sequence.
#[derive(Clone, Copy, Debug)]
pub struct RnnInput<'a, T> {
    pub x: &'a Tensor<T>,
    pub h0: Option<&'a Tensor<T>>,
    pub c0: Option<&'a Tensor<T>>,
    pub lengths: Option<&'a [usize]>,
    /// The seed of a training call's inter-layer dropout masks (`RnnConfig::dropout`): layer
    /// l's output, sequence-major, is masked as `dropout` masks it with stream l. A trainer
    /// gives each step its own seed; the same seed gives the same masks here and on the GPU.
    pub seed: u64,
}

impl<'a, T> RnnInput<'a, T> {
    pub fn new(x: &'a Tensor<T>) -> Self {
        Self {
            x,
            h0: None,
            c0: None,
            lengths: None,
            seed: 0,
        }
    }

    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    pub fn h0(mut self, h0: &'a Tensor<T>) -> Self {
        self.h0 = Some(h0);
        self
    }

    pub fn c0(mut self, c0: &'a Tensor<T>) -> Self {
        self.c0 = Some(c0);
        self
    }

    pub fn lengths(mut self, lengths: &'a [usize]) -> Self {
        self.lengths = Some(lengths);
        self
    }
}

/// Results of a recurrent call: `y` `[T, B, D·H]` (or `[B, T, D·H]`), `h_n`, `c_n` `[L·D, B, H]`.
#[derive(Clone, Debug, PartialEq)]
pub struct RnnOutput<T> {
    pub y: Tensor<T>,
    pub h_n: Tensor<T>,
    /// LSTM only.
    pub c_n: Option<Tensor<T>>,
}

/// Upstream gradients; an absent one counts as zero.
#[derive(Clone, Copy, Debug, Default)]
pub struct RnnOutputGrads<'a, T> {
    pub dy: Option<&'a Tensor<T>>,
    pub dh_n: Option<&'a Tensor<T>>,
    pub dc_n: Option<&'a Tensor<T>>,
}

/// Gradients of a recurrent call: inputs, initial states and every parameter (same names).
#[derive(Clone, Debug, PartialEq)]
pub struct RnnGrads<T> {
    pub dx: Tensor<T>,
    pub dh0: Tensor<T>,
    /// LSTM only.
    pub dc0: Option<Tensor<T>>,
    pub weights: RnnWeights<T>,
}

/// What one (layer, direction) saves for backward, all indexed by time `[T, B, ·]` (seq-major).
/// Entries at padded steps stay 0.
#[derive(Clone, Debug)]
struct DirectionTape<T> {
    /// Activated gates: LSTM i,f,g,o; GRU r,z,n; Elman the new h.
    gates: Vec<T>,
    /// State before the step.
    h_prev: Vec<T>,
    /// LSTM: cell before and after the step.
    c_prev: Vec<T>,
    c: Vec<T>,
    /// GRU: `W_hn·h_prev + b_hn`, the term the reset gate multiplies; in the reset-before
    /// form `r ⊙ h_prev`, what `W_hn` multiplies.
    hn_lin: Vec<T>,
    /// LSTM with a projection: the cell output `o ⊙ tanh(c)` `[T, B, H]` that `W_hr` maps to h.
    cell_out: Vec<T>,
}

/// Everything backward needs, saved by [`rnn_forward_train`].
#[derive(Clone, Debug)]
pub struct RnnTape<T> {
    config: RnnConfig,
    /// The seed of the inter-layer dropout masks.
    seed: u64,
    /// Whether the call was unbatched: backward takes and gives unbatched gradients.
    unbatched: bool,
    dims: RnnDims,
    lengths: Vec<usize>,
    /// Input of each layer, `[T, B, in_l]`.
    layer_inputs: Vec<Vec<T>>,
    /// Index `layer·D + direction`.
    directions: Vec<DirectionTape<T>>,
}

impl<T> RnnTape<T> {
    pub fn config(&self) -> &RnnConfig {
        &self.config
    }

    pub fn dims(&self) -> RnnDims {
        self.dims
    }
}

fn sigmoid<T: Real>(v: T) -> T {
    T::one() / (T::one() + (-v).exp())
}

/// Time index of step `s` of sequence with `len` valid steps, in direction `dir`.
fn time_of(s: usize, len: usize, dir: usize) -> usize {
    if dir == 0 { s } else { len - 1 - s }
}

/// Sequence-major copy of a `[T, B, F]` or `[B, T, F]` tensor.
fn to_seq_major<T: Real>(t: &Tensor<T>, batch_first: bool) -> Result<Vec<T>> {
    Ok(if batch_first {
        t.swap_leading_axes()?.into_data()
    } else {
        t.data().to_vec()
    })
}

fn from_seq_major<T: Real>(
    data: Vec<T>,
    dims: RnnDims,
    f: usize,
    batch_first: bool,
) -> Result<Tensor<T>> {
    let t = Tensor::new([dims.seq_len, dims.batch, f], data)?;
    if batch_first {
        t.swap_leading_axes()
    } else {
        Ok(t)
    }
}

/// Forward pass for inference: nothing is saved. `x` may be unbatched, `[T, input_size]`
/// with states `[L·D, H]`, as PyTorch accepts it; the results are then unbatched too.
pub fn rnn_forward<T: Real>(w: &RnnWeights<T>, input: RnnInput<'_, T>) -> Result<RnnOutput<T>> {
    unbatched_or_not(w, input, false).map(|(out, _)| out)
}

/// Forward pass that also returns the tape [`rnn_backward`] needs.
pub fn rnn_forward_train<T: Real>(
    w: &RnnWeights<T>,
    input: RnnInput<'_, T>,
) -> Result<(RnnOutput<T>, RnnTape<T>)> {
    let (out, tape) = unbatched_or_not(w, input, true)?;
    let tape = tape.ok_or_else(|| Error::InvalidArgument {
        op: OP,
        arg: "tape",
        reason: "was not recorded".into(),
    })?;
    Ok((out, tape))
}

/// An unbatched call (`x` `[T, input_size]`) runs as a batch of one, its results and tape
/// unbatched again.
fn unbatched_or_not<T: Real>(
    w: &RnnWeights<T>,
    input: RnnInput<'_, T>,
    save: bool,
) -> Result<(RnnOutput<T>, Option<RnnTape<T>>)> {
    let states = [
        ("h0", input.h0.map(Tensor::shape)),
        ("c0", input.c0.map(Tensor::shape)),
    ];
    let Some(shapes) = w.config().unbatched_shapes(OP, input.x.shape(), states)? else {
        return forward(w, input, save);
    };
    let as_batch = |t: Option<&Tensor<T>>, shape: Option<Vec<usize>>| match (t, shape) {
        (Some(t), Some(s)) => t.clone().reshape(s).map(Some),
        _ => Ok(None),
    };
    let x = input.x.clone().reshape(shapes.x)?;
    let (h0, c0) = (
        as_batch(input.h0, shapes.h0)?,
        as_batch(input.c0, shapes.c0)?,
    );
    let batched = RnnInput {
        x: &x,
        h0: h0.as_ref(),
        c0: c0.as_ref(),
        ..input
    };
    let (out, tape) = forward(w, batched, save)?;
    let out = RnnOutput {
        y: drop_batch(out.y)?,
        h_n: drop_batch(out.h_n)?,
        c_n: out.c_n.map(drop_batch).transpose()?,
    };
    let tape = tape.map(|t| RnnTape {
        unbatched: true,
        ..t
    });
    Ok((out, tape))
}

/// The inter-layer dropout multipliers of `layer`'s output (`shape`, sequence-major): the
/// dropout mask of stream `layer` under `seed` (all ones where the config has no dropout).
fn layer_mask<T: Real>(
    cfg: &RnnConfig,
    layer: usize,
    seed: u64,
    shape: &[usize],
) -> Result<Tensor<T>> {
    let drop = DropoutConfig::new(cfg.dropout as f64);
    crate::dropout::dropout_mask(shape, &drop, seed, layer as u32)
}

/// A batch of one `[a, 1, f]` or `[1, a, f]` as `[a, f]`.
fn drop_batch<T: Real>(t: Tensor<T>) -> Result<Tensor<T>> {
    let s = t.shape();
    let shape = vec![s[0] * s[1], s[2]];
    t.reshape(shape)
}

fn forward<T: Real>(
    w: &RnnWeights<T>,
    input: RnnInput<'_, T>,
    save: bool,
) -> Result<(RnnOutput<T>, Option<RnnTape<T>>)> {
    let cfg = w.config();
    let dims = cfg.check_inputs(
        OP,
        input.x.shape(),
        input.h0.map(Tensor::shape),
        input.c0.map(Tensor::shape),
        input.lengths,
    )?;
    let RnnDims {
        seq_len: tl,
        batch: nb,
    } = dims;
    let lengths = input
        .lengths
        .map_or_else(|| vec![tl; nb], <[usize]>::to_vec);
    let (h, g, nd) = (cfg.hidden_size, cfg.cell.gates(), cfg.num_directions());
    // The h state's size: P with a projection, else H.
    let ps = cfg.state_size();
    let proj = cfg.proj_size > 0;
    let gh_w = g * h;
    let lstm = cfg.cell.has_cell_state();
    let gru = cfg.cell == CellKind::Gru;
    // A tape holds every timestep when training, none at inference.
    let tape_t = |keep: bool| if keep { tl } else { 0 };

    let mut inp = to_seq_major(input.x, cfg.batch_first)?;
    let mut h_n = Tensor::zeros(cfg.state_shape(nb))?;
    let mut c_n = Tensor::zeros(cfg.cell_state_shape(nb))?;
    let mut tape = RnnTape {
        config: cfg.clone(),
        seed: input.seed,
        unbatched: false,
        dims,
        lengths: lengths.clone(),
        layer_inputs: Vec::new(),
        directions: Vec::new(),
    };

    for layer in 0..cfg.num_layers {
        let in_w = cfg.layer_input_size(layer);
        let mut out = zeroed(OP, "y", &[tl, nb, nd * ps])?;
        for dir in 0..nd {
            let dw = w.direction(layer, dir)?;
            let idx = layer * nd + dir;
            // Hoisted input projection over all T·B rows.
            let mut gi = gemm(
                Mat::new(&inp, tl * nb, in_w),
                Mat::new(dw.weight_ih.data(), gh_w, in_w).t(),
            )?;
            if let Some(b) = dw.bias_ih {
                add_row_bias(&mut gi, b.data());
            }
            let state = idx * nb * ps..(idx + 1) * nb * ps;
            let cell_state = idx * nb * h..(idx + 1) * nb * h;
            let mut hs = input.h0.map_or_else(
                || vec![T::zero(); nb * ps],
                |t| t.data()[state.clone()].to_vec(),
            );
            let mut cs = input.c0.map_or_else(
                || vec![T::zero(); nb * h],
                |t| t.data()[cell_state.clone()].to_vec(),
            );
            let mut dt = DirectionTape {
                gates: zeroed(OP, "tape gates", &[tape_t(save), nb, gh_w])?,
                h_prev: zeroed(OP, "tape h", &[tape_t(save), nb, ps])?,
                c_prev: zeroed(OP, "tape c", &[tape_t(save && lstm), nb, h])?,
                c: zeroed(OP, "tape c", &[tape_t(save && lstm), nb, h])?,
                hn_lin: zeroed(OP, "tape n", &[tape_t(save && gru), nb, h])?,
                cell_out: zeroed(OP, "tape m", &[tape_t(save && proj), nb, h])?,
            };
            for s in 0..tl {
                for (bi, &len) in lengths.iter().enumerate() {
                    if s >= len {
                        continue;
                    }
                    let t = time_of(s, len, dir);
                    let row = t * nb + bi;
                    let hp = &hs[bi * ps..(bi + 1) * ps];
                    let mut ghh = gemm(
                        Mat::new(hp, 1, ps),
                        Mat::new(dw.weight_hh.data(), gh_w, ps).t(),
                    )?;
                    if let Some(b) = dw.bias_hh {
                        add_row_bias(&mut ghh, b.data());
                    }
                    let gin = &gi[row * gh_w..(row + 1) * gh_w];
                    let mut gates = vec![T::zero(); gh_w];
                    let mut h_new = vec![T::zero(); h];
                    if save {
                        dt.h_prev[row * ps..(row + 1) * ps].copy_from_slice(hp);
                    }
                    match cfg.cell {
                        CellKind::Lstm => {
                            let cp = &mut cs[bi * h..(bi + 1) * h];
                            if save {
                                dt.c_prev[row * h..(row + 1) * h].copy_from_slice(cp);
                            }
                            for j in 0..h {
                                let a = |k: usize| gin[k * h + j] + ghh[k * h + j];
                                let (i, f, gg, o) =
                                    (sigmoid(a(0)), sigmoid(a(1)), a(2).tanh(), sigmoid(a(3)));
                                let c = f * cp[j] + i * gg;
                                cp[j] = c;
                                h_new[j] = o * c.tanh();
                                for (k, v) in [i, f, gg, o].into_iter().enumerate() {
                                    gates[k * h + j] = v;
                                }
                            }
                            if save {
                                dt.c[row * h..(row + 1) * h].copy_from_slice(cp);
                            }
                        }
                        CellKind::Gru => {
                            let rz = |k: usize| sigmoid(gin[k] + ghh[k]);
                            let r: Vec<T> = (0..h).map(rz).collect();
                            // What the reset gate multiplies: W_hn h + b_hn after, h before.
                            let hn = match cfg.gru_reset {
                                GruReset::After => ghh[2 * h..].to_vec(),
                                GruReset::Before => {
                                    let rh: Vec<T> = (0..h).map(|j| r[j] * hp[j]).collect();
                                    let mut hn = gemm(
                                        Mat::new(&rh, 1, h),
                                        Mat::new(&dw.weight_hh.data()[2 * h * h..], h, h).t(),
                                    )?;
                                    if let Some(b) = dw.bias_hh {
                                        add_row_bias(&mut hn, &b.data()[2 * h..]);
                                    }
                                    if save {
                                        dt.hn_lin[row * h..(row + 1) * h].copy_from_slice(&rh);
                                    }
                                    hn
                                }
                            };
                            for j in 0..h {
                                let z = rz(h + j);
                                let n = match cfg.gru_reset {
                                    GruReset::After => gin[2 * h + j] + r[j] * hn[j],
                                    GruReset::Before => gin[2 * h + j] + hn[j],
                                }
                                .tanh();
                                h_new[j] = (T::one() - z) * n + z * hp[j];
                                gates[j] = r[j];
                                gates[h + j] = z;
                                gates[2 * h + j] = n;
                            }
                            if save && cfg.gru_reset == GruReset::After {
                                dt.hn_lin[row * h..(row + 1) * h].copy_from_slice(&hn);
                            }
                        }
                        CellKind::RnnTanh | CellKind::RnnRelu => {
                            for j in 0..h {
                                let a = gin[j] + ghh[j];
                                h_new[j] = if cfg.cell == CellKind::RnnTanh {
                                    a.tanh()
                                } else {
                                    a.max(T::zero())
                                };
                                gates[j] = h_new[j];
                            }
                        }
                    }
                    if save {
                        dt.gates[row * gh_w..(row + 1) * gh_w].copy_from_slice(&gates);
                    }
                    if let Some(w_hr) = dw.weight_hr {
                        // h = W_hr·(o ⊙ tanh c): the cell's output projected to P features.
                        if save {
                            dt.cell_out[row * h..(row + 1) * h].copy_from_slice(&h_new);
                        }
                        h_new = gemm(Mat::new(&h_new, 1, h), Mat::new(w_hr.data(), ps, h).t())?;
                    }
                    let o = (row * nd + dir) * ps;
                    out[o..o + ps].copy_from_slice(&h_new);
                    hs[bi * ps..(bi + 1) * ps].copy_from_slice(&h_new);
                }
            }
            h_n.data_mut()[state.clone()].copy_from_slice(&hs);
            c_n.data_mut()[cell_state].copy_from_slice(&cs);
            if save {
                tape.directions.push(dt);
            }
        }
        // PyTorch's inter-layer dropout: on every layer's output but the last, in training.
        if save && layer + 1 < cfg.num_layers && cfg.dropout > 0.0 {
            let mask = layer_mask::<T>(cfg, layer, input.seed, &[tl, nb, nd * ps])?;
            out.iter_mut().zip(mask.data()).for_each(|(v, &m)| *v *= m);
        }
        let next = std::mem::replace(&mut inp, out);
        if save {
            tape.layer_inputs.push(next);
        }
    }
    let y = from_seq_major(inp, dims, nd * ps, cfg.batch_first)?;
    let out = RnnOutput {
        y,
        h_n,
        c_n: lstm.then_some(c_n),
    };
    Ok((out, save.then_some(tape)))
}

/// Backward pass through a call recorded by [`rnn_forward_train`] with the same weights. The
/// gradients of an unbatched call are unbatched: `dy` `[T, D·H]`, `dh_n` `[L·D, H]` in, `dx`
/// `[T, input_size]`, `dh0` `[L·D, H]` out.
pub fn rnn_backward<T: Real>(
    w: &RnnWeights<T>,
    tape: &RnnTape<T>,
    grads: RnnOutputGrads<'_, T>,
) -> Result<RnnGrads<T>> {
    if !tape.unbatched {
        return backward(w, tape, grads);
    }
    let cfg = &tape.config;
    let (tl, ld) = (tape.dims.seq_len, cfg.num_layers * cfg.num_directions());
    let y_batched = cfg.output_shape(tape.dims);
    let as_batch =
        |t: Option<&Tensor<T>>, arg: &'static str, flat: [usize; 2], batched: &[usize]| {
            t.map(|t| {
                expect_shape("rnn_backward", arg, t, &flat)?;
                t.clone().reshape(batched.to_vec())
            })
            .transpose()
        };
    let dy = as_batch(grads.dy, "dy", [tl, cfg.output_size()], &y_batched)?;
    let (hs, cs) = (cfg.state_size(), cfg.hidden_size);
    let dh_n = as_batch(grads.dh_n, "dh_n", [ld, hs], &[ld, 1, hs])?;
    let dc_n = as_batch(grads.dc_n, "dc_n", [ld, cs], &[ld, 1, cs])?;
    let batched = RnnOutputGrads {
        dy: dy.as_ref(),
        dh_n: dh_n.as_ref(),
        dc_n: dc_n.as_ref(),
    };
    let g = backward(w, tape, batched)?;
    Ok(RnnGrads {
        dx: drop_batch(g.dx)?,
        dh0: drop_batch(g.dh0)?,
        dc0: g.dc0.map(drop_batch).transpose()?,
        weights: g.weights,
    })
}

fn backward<T: Real>(
    w: &RnnWeights<T>,
    tape: &RnnTape<T>,
    grads: RnnOutputGrads<'_, T>,
) -> Result<RnnGrads<T>> {
    let cfg = w.config();
    if *cfg != tape.config {
        return Err(Error::InvalidArgument {
            op: "rnn_backward",
            arg: "weights",
            reason: format!("config {cfg:?} differs from the tape's {:?}", tape.config),
        });
    }
    let RnnDims {
        seq_len: tl,
        batch: nb,
    } = tape.dims;
    let (h, g, nd) = (cfg.hidden_size, cfg.cell.gates(), cfg.num_directions());
    let ps = cfg.state_size();
    let gh_w = g * h;
    let lstm = cfg.cell.has_cell_state();
    let before = cfg.cell == CellKind::Gru && cfg.gru_reset == GruReset::Before;
    let state_shape = cfg.state_shape(nb);
    let cell_state_shape = cfg.cell_state_shape(nb);
    let y_shape = cfg.output_shape(tape.dims);
    const BOP: &str = "rnn_backward";
    if let Some(dy) = grads.dy {
        expect_shape(BOP, "dy", dy, &y_shape)?;
    }
    if let Some(d) = grads.dh_n {
        expect_shape(BOP, "dh_n", d, &state_shape)?;
    }
    if let Some(d) = grads.dc_n {
        if !lstm {
            return Err(Error::InvalidArgument {
                op: BOP,
                arg: "dc_n",
                reason: format!("is only for LSTM, the cell is {}", cfg.cell.name()),
            });
        }
        expect_shape(BOP, "dc_n", d, &cell_state_shape)?;
    }

    let mut d_out = match grads.dy {
        Some(dy) => to_seq_major(dy, cfg.batch_first)?,
        None => zeroed(BOP, "dy", &[tl, nb, nd * ps])?,
    };
    let mut dh0 = Tensor::zeros(state_shape)?;
    let mut dc0 = Tensor::zeros(cell_state_shape)?;
    let mut wgrads = TensorMap::new();

    for layer in (0..cfg.num_layers).rev() {
        let in_w = cfg.layer_input_size(layer);
        let inp = &tape.layer_inputs[layer];
        let mut d_inp = zeroed(BOP, "dx", &[tl, nb, in_w])?;
        for dir in 0..nd {
            let dw = w.direction(layer, dir)?;
            let idx = layer * nd + dir;
            let dt = &tape.directions[idx];
            let state = idx * nb * ps..(idx + 1) * nb * ps;
            let cell_state = idx * nb * h..(idx + 1) * nb * h;
            let mut dh = grads.dh_n.map_or_else(
                || vec![T::zero(); nb * ps],
                |t| t.data()[state.clone()].to_vec(),
            );
            let mut dc = grads.dc_n.map_or_else(
                || vec![T::zero(); nb * h],
                |t| t.data()[cell_state.clone()].to_vec(),
            );
            // With a projection: dh at each step, for dW_hr = Σ dhᵀ·(o ⊙ tanh c).
            let mut dh_rows = zeroed(
                BOP,
                "projection gradients",
                &[if dw.weight_hr.is_some() { tl } else { 0 }, nb, ps],
            )?;
            // Gradients of the pre-activations, as seen by W_ih (dgi) and by W_hh (dgh). They
            // differ only for GRU's n gate, whose recurrent part is scaled by r.
            let mut dgi = zeroed(BOP, "gate gradients", &[tl, nb, gh_w])?;
            let mut dgh = zeroed(BOP, "gate gradients", &[tl, nb, gh_w])?;
            for s in (0..tl).rev() {
                for (bi, &len) in tape.lengths.iter().enumerate() {
                    if s >= len {
                        continue;
                    }
                    let t = time_of(s, len, dir);
                    let row = t * nb + bi;
                    let dhs = &mut dh[bi * ps..(bi + 1) * ps];
                    let o = (row * nd + dir) * ps;
                    for (d, up) in dhs.iter_mut().zip(&d_out[o..o + ps]) {
                        *d += *up;
                    }
                    // The cell sees dh through the projection: W_hrᵀ·dh.
                    let mut d_cell = match dw.weight_hr {
                        Some(w_hr) => {
                            dh_rows[row * ps..(row + 1) * ps].copy_from_slice(dhs);
                            gemm(Mat::new(dhs, 1, ps), Mat::new(w_hr.data(), ps, h))?
                        }
                        None => dhs.to_vec(),
                    };
                    let dhb = &mut d_cell[..];
                    let gates = &dt.gates[row * gh_w..(row + 1) * gh_w];
                    let gi_row = &mut dgi[row * gh_w..(row + 1) * gh_w];
                    let mut dh_direct = vec![T::zero(); ps];
                    match cfg.cell {
                        CellKind::Lstm => {
                            let dcb = &mut dc[bi * h..(bi + 1) * h];
                            for j in 0..h {
                                let (i, f, gg, og) =
                                    (gates[j], gates[h + j], gates[2 * h + j], gates[3 * h + j]);
                                let tc = dt.c[row * h + j].tanh();
                                let dct = dcb[j] + dhb[j] * og * (T::one() - tc * tc);
                                let one = T::one();
                                gi_row[j] = dct * gg * i * (one - i);
                                gi_row[h + j] = dct * dt.c_prev[row * h + j] * f * (one - f);
                                gi_row[2 * h + j] = dct * i * (one - gg * gg);
                                gi_row[3 * h + j] = dhb[j] * tc * og * (one - og);
                                dcb[j] = dct * f;
                            }
                        }
                        CellKind::Gru if before => {
                            let one = T::one();
                            let dn: Vec<T> = (0..h)
                                .map(|j| {
                                    let (z, n) = (gates[h + j], gates[2 * h + j]);
                                    dhb[j] * (one - z) * (one - n * n)
                                })
                                .collect();
                            // n's recurrent term W_hn (r ⊙ h): its gradient reaches r and h
                            // through d(r ⊙ h) = W_hnᵀ dn.
                            let d_rh = gemm(
                                Mat::new(&dn, 1, h),
                                Mat::new(&dw.weight_hh.data()[2 * h * h..], h, h),
                            )?;
                            for j in 0..h {
                                let (r, z, n) = (gates[j], gates[h + j], gates[2 * h + j]);
                                let hp = dt.h_prev[row * h + j];
                                gi_row[j] = d_rh[j] * hp * r * (one - r);
                                gi_row[h + j] = dhb[j] * (hp - n) * z * (one - z);
                                gi_row[2 * h + j] = dn[j];
                                dh_direct[j] = dhb[j] * z + d_rh[j] * r;
                            }
                        }
                        CellKind::Gru => {
                            for j in 0..h {
                                let (r, z, n) = (gates[j], gates[h + j], gates[2 * h + j]);
                                let hp = dt.h_prev[row * h + j];
                                let one = T::one();
                                let dn = dhb[j] * (one - z) * (one - n * n);
                                gi_row[j] = dn * dt.hn_lin[row * h + j] * r * (one - r);
                                gi_row[h + j] = dhb[j] * (hp - n) * z * (one - z);
                                gi_row[2 * h + j] = dn;
                                dh_direct[j] = dhb[j] * z;
                            }
                        }
                        CellKind::RnnTanh => {
                            for j in 0..h {
                                gi_row[j] = dhb[j] * (T::one() - gates[j] * gates[j]);
                            }
                        }
                        CellKind::RnnRelu => {
                            for j in 0..h {
                                gi_row[j] = if gates[j] > T::zero() {
                                    dhb[j]
                                } else {
                                    T::zero()
                                };
                            }
                        }
                    }
                    let gh_row = &mut dgh[row * gh_w..(row + 1) * gh_w];
                    gh_row.copy_from_slice(gi_row);
                    if cfg.cell == CellKind::Gru && !before {
                        for j in 0..h {
                            gh_row[2 * h + j] *= gates[j];
                        }
                    }
                    // dh_prev = dgh·W_hh (+ GRU's direct path z·dh). In the reset-before form
                    // n's rows reached h_prev through r ⊙ h already (dh_direct).
                    let rows_hh = if before { 2 * h } else { gh_w };
                    gemm_acc(
                        Mat::new(&gh_row[..rows_hh], 1, rows_hh),
                        Mat::new(&dw.weight_hh.data()[..rows_hh * ps], rows_hh, ps),
                        &mut dh_direct,
                    );
                    dhs.copy_from_slice(&dh_direct);
                }
            }
            dh0.data_mut()[state.clone()].copy_from_slice(&dh);
            dc0.data_mut()[cell_state].copy_from_slice(&dc);

            // Weight gradients as single products over all T·B rows.
            let sfx = RnnConfig::suffix(layer, dir);
            let rows = tl * nb;
            let dw_ih = gemm(Mat::new(&dgi, rows, gh_w).t(), Mat::new(inp, rows, in_w))?;
            let mut dw_hh = gemm(
                Mat::new(&dgh, rows, gh_w).t(),
                Mat::new(&dt.h_prev, rows, ps),
            )?;
            if before {
                // W_hn multiplied r ⊙ h_prev, taped in hn_lin.
                let dn: Vec<T> = dgh
                    .chunks_exact(gh_w)
                    .flat_map(|r| r[2 * h..].iter().copied())
                    .collect();
                let dw_hn = gemm(Mat::new(&dn, rows, h).t(), Mat::new(&dt.hn_lin, rows, h))?;
                dw_hh[2 * h * h..].copy_from_slice(&dw_hn);
            }
            if dw.weight_hr.is_some() {
                let dw_hr = gemm(
                    Mat::new(&dh_rows, rows, ps).t(),
                    Mat::new(&dt.cell_out, rows, h),
                )?;
                wgrads.insert(format!("weight_hr{sfx}"), Tensor::new([ps, h], dw_hr)?);
            }
            wgrads.insert(format!("weight_ih{sfx}"), Tensor::new([gh_w, in_w], dw_ih)?);
            wgrads.insert(format!("weight_hh{sfx}"), Tensor::new([gh_w, ps], dw_hh)?);
            if cfg.bias {
                let mut db_ih = vec![T::zero(); gh_w];
                let mut db_hh = vec![T::zero(); gh_w];
                col_sums_acc(&dgi, gh_w, &mut db_ih);
                col_sums_acc(&dgh, gh_w, &mut db_hh);
                wgrads.insert(format!("bias_ih{sfx}"), Tensor::new([gh_w], db_ih)?);
                wgrads.insert(format!("bias_hh{sfx}"), Tensor::new([gh_w], db_hh)?);
            }
            gemm_acc(
                Mat::new(&dgi, rows, gh_w),
                Mat::new(dw.weight_ih.data(), gh_w, in_w),
                &mut d_inp,
            );
        }
        if layer > 0 && cfg.dropout > 0.0 {
            // Through the dropout on the layer below's output.
            let mask = layer_mask::<T>(cfg, layer - 1, tape.seed, &[tl, nb, nd * ps])?;
            d_inp
                .iter_mut()
                .zip(mask.data())
                .for_each(|(v, &m)| *v *= m);
        }
        d_out = d_inp;
    }
    let dx = from_seq_major(d_out, tape.dims, cfg.input_size, cfg.batch_first)?;
    Ok(RnnGrads {
        dx,
        dh0,
        dc0: lstm.then_some(dc0),
        weights: RnnWeights::from_tensors(cfg.clone(), wgrads, &wgrnn_core::LoadOptions::strict())?,
    })
}
