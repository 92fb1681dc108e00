// GRU with the reset gate before the recurrent product (RnnConfig::gru_reset = Before; ONNX's
// default linear_before_reset = 0, Keras reset_after = False), gate order r, z, n:
//   r = sigmoid(gi_r + W_hr h), z = sigmoid(gi_z + W_hz h), n = tanh(gi_n + W_hn (r * h)),
//   h' = (1 - z) * n + z * h,
// where gi = x·W_ih^T + b_ih + b_hh is the hoisted input projection: every bias folds in, as
// LSTM's. W_hh is packed as gru.wgsl's, w[k * H + j] = (W_r[j, k], W_z[j, k], W_n[j, k], 0).
// n's product needs r of every unit first, so a step has two phases (cell.wgsl, "Two phases"):
// the first multiplies h and gives r, z and r * h; the second multiplies r * h, whose product's
// lane z is W_hn (r * h). The c half of the state holds r * h and the kept r, z.

const GATES: u32 = 3u;
const UNITS: u32 = 1u;
const HALVES: u32 = 1u;
const EXTRAS: u32 = 1u;  // the tape keeps r * h_prev (extra1), what W_hn multiplied
const SPLIT_DG: bool = true;
const PHASES: u32 = 2u;

// The first phase: r * h_prev, the second product's operand, then r and z, kept for the second.
fn cell_fwd_mid(pre: vec4<f32>, rec: vec4<f32>, h_prev: f32, j: u32) -> vec3<f32> {
    let r = sigmoid(pre.x + rec.x);
    let z = sigmoid(pre.y + rec.y);
    return vec3<f32>(r * h_prev, r, z);
}

// The second phase, rec the product over r * h_prev; cur_kept is the first's (r * h, r, z).
fn cell_fwd(pre: vec4<f32>, rec: vec4<f32>, h_prev: f32, c_prev: f32, j: u32) -> CellFwd {
    let z = cur_kept.z;
    let n = tanh_stable(pre.z + rec.z);
    let h_new = (1.0 - z) * n + z * h_prev;
    return CellFwd(h_new, 0.0, vec4<f32>(cur_kept.y, z, n, 0.0), vec2<f32>(cur_kept.x, 0.0));
}

// Reverse (no device kernel runs it yet: the host refuses the reset-before GRU's backward).
fn cell_bwd(dh: f32, carry_c: f32, act: vec4<f32>, aux: vec3<f32>) -> CellBwd {
    return CellBwd(vec4<f32>(0.0), vec4<f32>(0.0), 0.0, 0.0);
}
