// GRU with the reset gate before the recurrent product (RnnConfig::gru_reset = Before; ONNX's
// default linear_before_reset = 0, Keras reset_after = False), gate order r, z, n:
//   r = sigmoid(gi_r + W_hr h), z = sigmoid(gi_z + W_hz h), n = tanh(gi_n + W_hn (r * h)),
//   h' = (1 - z) * n + z * h,
// where gi = x·W_ih^T + b_ih + b_hh is the hoisted input projection: every bias folds in, as
// LSTM's. W_hh is packed as gru.wgsl's, w[k * H + j] = (W_r[j, k], W_z[j, k], W_n[j, k], 0).
// n's product needs r of every unit first, so a step has two phases (cell.wgsl, "Two phases"):
// the first multiplies h and gives r, z and r * h; the second multiplies r * h, whose product's
// lane z is W_hn (r * h). The c half of the state holds r * h and the kept r, z.
//
// Reverse: the first phase gives dn = dh (1 - z)(1 - n^2) and dz = dh (h_prev - n) z(1 - z) and
// carries dh z; its dc, dn, is what the second product multiplies: d(r * h) = W_hn^T dn, from
// which the second phase gives dr = d(r * h) h_prev r(1 - r) and carries r d(r * h). dGi = (dr,
// dz, dn); dGh = (dr, dz, 0), since n's rows of W_hh multiply r * h, not h: the step before's
// product dGh · W_hh leaves them out (they reached h through d(r * h)), and the host takes
// dW_hn = dn^T (r * h) from the tape apart.

const GATES: u32 = 3u;
const UNITS: u32 = 1u;
const HALVES: u32 = 1u;
const EXTRAS: u32 = 1u;  // the tape keeps r * h_prev (extra1), what W_hn multiplied
const SPLIT_DG: bool = true;
const PHASES: u32 = 2u;
const MID_GATE: u32 = 2u;  // the reverse second product: n's rows of W_hh

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

// The reverse's first phase; aux: h_prev, r * h_prev. dr comes in the second phase.
fn cell_bwd(dh: f32, carry_c: f32, act: vec4<f32>, aux: vec3<f32>) -> CellBwd {
    let z = act.y;
    let n = act.z;
    let dn = dh * (1.0 - z) * (1.0 - n * n);
    let dz = dh * (aux.x - n) * z * (1.0 - z);
    return CellBwd(vec4<f32>(0.0, dz, dn, 0.0), vec4<f32>(0.0, dz, 0.0, 0.0), dh * z, dn);
}

// The reverse's second phase, d_mid = (W_hn^T dn)[j], the gradient of (r * h)[j].
fn cell_bwd_mid(d_mid: f32, act: vec4<f32>, aux: vec3<f32>) -> CellBwd {
    let r = act.x;
    let dr = d_mid * aux.x * r * (1.0 - r);
    let d = vec4<f32>(dr, 0.0, 0.0, 0.0);
    return CellBwd(d, d, r * d_mid, 0.0);
}
