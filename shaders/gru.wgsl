// GRU (PyTorch's formulation, gate order r, z, n):
//   r = sigmoid(gi_r + W_hr h), z = sigmoid(gi_z + W_hz h), n = tanh(gi_n + r * (W_hn h + b_hn)),
//   h' = (1 - z) * n + z * h,
// where gi = x·W_ih^T + b_ih + (b_hr, b_hz, 0) is the hoisted input projection. W_hh is packed
// as w[k * H + j] = (W_r[j, k], W_z[j, k], W_n[j, k], 0), so one vec4 load feeds all three
// gates of unit j. The kernels are cell.wgsl's; the c half of the state is unused.
//
// Reverse: dn = dh (1 - z)(1 - n^2), dr = dn hn r(1 - r), dz = dh (h_prev - n) z(1 - z),
// dGi = (dr, dz, dn) (what W_ih sees), dGh = (dr, dz, dn r) (what W_hh sees: the reset gate
// scales n's), carry_h = dh z (the direct path through z).

const GATES: u32 = 3u;
const UNITS: u32 = 1u;
const HALVES: u32 = 1u;
const EXTRAS: u32 = 1u;  // the tape keeps W_hn h + b_hn (extra1)
const SPLIT_DG: bool = true;

@group(0) @binding(7) var<storage, read> b_hn: array<f32>;  // [dir][H]

fn cell_fwd(pre: vec4<f32>, rec: vec4<f32>, h_prev: f32, c_prev: f32, j: u32) -> CellFwd {
    let r = sigmoid(pre.x + rec.x);
    let z = sigmoid(pre.y + rec.y);
    let hn = rec.z + b_hn[cur_dir * p.hidden + j];
    let n = tanh_stable(pre.z + r * hn);
    let h_new = (1.0 - z) * n + z * h_prev;
    return CellFwd(h_new, 0.0, vec4<f32>(r, z, n, 0.0), vec2<f32>(hn, 0.0));
}

// aux: h_prev, W_hn h + b_hn.
fn cell_bwd(dh: f32, carry_c: f32, act: vec4<f32>, aux: vec3<f32>) -> CellBwd {
    let r = act.x;
    let z = act.y;
    let n = act.z;
    let dn = dh * (1.0 - z) * (1.0 - n * n);
    let dr = dn * aux.y * r * (1.0 - r);
    let dz = dh * (aux.x - n) * z * (1.0 - z);
    return CellBwd(vec4<f32>(dr, dz, dn, 0.0), vec4<f32>(dr, dz, dn * r, 0.0), dh * z, 0.0);
}
