// LSTM (gate order i, f, g, o): c' = f * c + i * g, h' = o * tanh(c'), with
// i, f, o = sigmoid(gi + W_h h) and g = tanh(gi + W_h h), gi = x·W_ih^T + b_ih + b_hh hoisted.
// W_hh is packed so that w[k * H + j] = (W_i[j, k], W_f[j, k], W_g[j, k], W_o[j, k]): one vec4
// load feeds all four gates of unit j. The kernels are cell.wgsl's.

const GATES: u32 = 4u;
const UNITS: u32 = 1u;
const HALVES: u32 = 2u;
const EXTRAS: u32 = 2u;  // the tape keeps c after the step (extra1) and before it (extra2)
const SPLIT_DG: bool = false;

fn cell_fwd(pre: vec4<f32>, rec: vec4<f32>, h_prev: f32, c_prev: f32, j: u32) -> CellFwd {
    let a = rec + pre;
    let i = sigmoid(a.x);
    let f = sigmoid(a.y);
    let g = tanh_stable(a.z);
    let o = sigmoid(a.w);
    let c = f * c_prev + i * g;
    return CellFwd(o * tanh_stable(c), c, vec4<f32>(i, f, g, o), vec2<f32>(c, c_prev));
}

// aux: h_prev, c after the step, c before it.
fn cell_bwd(dh: f32, carry_c: f32, act: vec4<f32>, aux: vec3<f32>) -> CellBwd {
    let i = act.x;
    let f = act.y;
    let g = act.z;
    let o = act.w;
    let tc = tanh_stable(aux.y);
    let dct = carry_c + dh * o * (1.0 - tc * tc);
    let dg = vec4<f32>(
        dct * g * i * (1.0 - i),
        dct * aux.z * f * (1.0 - f),
        dct * i * (1.0 - g * g),
        dh * tc * o * (1.0 - o),
    );
    return CellBwd(dg, dg, 0.0, dct * f);
}
