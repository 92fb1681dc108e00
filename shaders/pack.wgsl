// Weight layouts for the fused recurrent steps, built on the device from PyTorch-layout
// weights (so an optimizer can update the canonical tensors and the next call repacks them).

{{GateParams}}

@group(0) @binding(0) var<uniform> gp: GateParams;
@group(0) @binding(1) var<storage, read> w_hh: array<f32>;            // [G*H, H], PyTorch layout
@group(0) @binding(2) var<storage, read_write> packed: array<vec4<f32>>;

// by_unit = 0: packed[k * H + j] = (W[0H + j, k], W[1H + j, k], W[2H + j, k], W[3H + j, k]) with
// absent gates 0: a step kernel reads all gates of unit j for one k in a single vec4 load.
// by_unit = 1 (Elman): packed[k * U4 + u] = (W[4u, k], W[4u + 1, k], W[4u + 2, k], W[4u + 3, k]),
// rows past H 0.
// transposed = 1 gives what backward's dh = dG·W_hh reads: packed[m * H + j] =
// (W[0H + m, j], W[1H + m, j], ...) and, by unit, packed[m * U4 + u] = (W[m, 4u], ..., W[m, 4u + 3]).
//
// No `if` or loop bound here depends on the parameter block alone (the layout flags are applied
// with `select`): lavapipe (Mesa 22.x) recompiles a kernel whose uniform-only branches it can
// fold away at every dispatch, and keeps every such compilation until the device is dropped.
struct GateQuad {
    idx: u32,
    v: vec4<f32>,
    ok: bool,
}

fn gate_quad(j: u32, k: u32) -> GateQuad {
    let h = gp.hidden;
    let by_unit = gp.by_unit != 0u;
    let transposed = gp.transposed != 0u;
    var q = GateQuad(0u, vec4<f32>(0.0), false);
    let j_end = select(h, gp.units4, by_unit);
    if (k >= h || j >= j_end) {
        return q;
    }
    let last = arrayLength(&w_hh) - 1u;
    for (var g = 0u; g < 4u; g++) {
        // Element (row0 + unit, k) of W, or (row0 + k, unit) in the transposed layout.
        let unit = select(j, 4u * j + g, by_unit);
        let row0 = select(g * h, 0u, by_unit);
        let valid = select(g < gp.gates, unit < h, by_unit);
        let e = select((row0 + unit) * h + k, (row0 + k) * h + unit, transposed);
        q.v[g] = select(0.0, w_hh[min(e, last)], valid);
    }
    q.idx = select(k * h + j, k * gp.units4 + j, by_unit);
    q.ok = true;
    return q;
}

@compute @workgroup_size(64, 4)
fn pack_gates(@builtin(global_invocation_id) gid: vec3<u32>) {
    let q = gate_quad(gid.x, gid.y);
    if (q.ok) {
        packed[gp.dst_off + q.idx] = q.v;
    }
}


{{BiasParams}}

@group(0) @binding(0) var<uniform> bp: BiasParams;
@group(0) @binding(1) var<storage, read> b_ih: array<f32>;
@group(0) @binding(2) var<storage, read> b_hh: array<f32>;
@group(0) @binding(3) var<storage, read_write> folded: array<f32>;

// The bias of the hoisted input projection: b_ih + b_hh, except GRU's b_hn, which the reset gate
// multiplies and so stays inside the step.
@compute @workgroup_size(64)
fn fold_bias(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= bp.n) {
        return;
    }
    var v = b_ih[i];
    if (i < bp.skip_from) {
        v += b_hh[i];
    }
    folded[i] = v;
}
