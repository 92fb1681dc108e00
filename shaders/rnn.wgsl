// Elman: h' = act(gi + W_hh h) with act = tanh or relu (p.extra1 = 1), gi = x·W_ih^T + b_ih +
// b_hh hoisted. With one gate, W_hh is packed four units to a vec4: w[k * U4 + u] =
// (W[4u, k], W[4u + 1, k], W[4u + 2, k], W[4u + 3, k]); an invocation owns units 4u..4u+3.
// The kernels are cell.wgsl's. The tape's gate row is h' itself: the activation's derivative
// needs only it (1 - h'^2 for tanh, [h' > 0] for relu).

const GATES: u32 = 1u;
const UNITS: u32 = 4u;
const HALVES: u32 = 1u;
const EXTRAS: u32 = 0u;
const SPLIT_DG: bool = false;

fn cell_fwd(pre: vec4<f32>, rec: vec4<f32>, h_prev: f32, c_prev: f32, j: u32) -> CellFwd {
    let a = pre.x + rec.x;
    var h_new: f32;
    if (p.extra1 != 0u) {
        h_new = max(a, 0.0);
    } else {
        h_new = tanh_stable(a);
    }
    return CellFwd(h_new, 0.0, vec4<f32>(h_new, 0.0, 0.0, 0.0), vec2<f32>(0.0));
}

fn cell_bwd(dh: f32, carry_c: f32, act: vec4<f32>, aux: vec3<f32>) -> CellBwd {
    let hv = act.x;
    var da: f32;
    if (bp.extra1 != 0u) {
        da = select(0.0, dh, hv > 0.0);
    } else {
        da = dh * (1.0 - hv * hv);
    }
    let dg = vec4<f32>(da, 0.0, 0.0, 0.0);
    return CellBwd(dg, dg, 0.0, 0.0);
}
