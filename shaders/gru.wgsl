// Fused GRU step (PyTorch's formulation, gate order r, z, n):
//   r = sigmoid(gi_r + W_hr h), z = sigmoid(gi_z + W_hz h), n = tanh(gi_n + r * (W_hn h + b_hn)),
//   h' = (1 - z) * n + z * h,
// where gi = x·W_ih^T + b_ih + (b_hr, b_hz, 0) is the hoisted input projection. W_hh is packed
// as packed[k * H + j] = (W_r[j, k], W_z[j, k], W_n[j, k], 0), so one vec4 load feeds all three
// gates of unit j. State handling and lengths as in lstm.wgsl (the c half of the state is unused).

struct StepParams {
    batch: u32,
    hidden: u32,
    step: u32,
    reverse: u32,
    y_rs_t: u32,
    y_rs_b: u32,
    y_off: u32,
    save: u32,
    tape_gates: u32,  // activated r, z, n [T*B, 3H]
    tape_hprev: u32,  // h before the step [T*B, H]
    tape_hn: u32,     // W_hn h + b_hn [T*B, H]
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: StepParams;
@group(0) @binding(1) var<storage, read> gi: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> b_hn: array<f32>;
@group(0) @binding(4) var<storage, read> lengths: array<u32>;
@group(0) @binding(5) var<storage, read_write> state: array<f32>;
@group(0) @binding(6) var<storage, read_write> y: array<f32>;
@group(0) @binding(7) var<storage, read_write> tape: array<f32>;

fn state_at(slot: u32, b: u32, j: u32) -> u32 {
    return (slot * 2u * p.batch + b) * p.hidden + j;
}

fn finish(b: u32, j: u32, acc: vec4<f32>) {
    let h = p.hidden;
    let s_in = p.step % 2u;
    let s_out = 1u - s_in;
    let h_prev = state[state_at(s_in, b, j)];
    let len = lengths[b];
    if (p.step >= len) {
        state[state_at(s_out, b, j)] = h_prev;
        return;
    }
    var t = p.step;
    if (p.reverse != 0u) {
        t = len - 1u - p.step;
    }
    let row = t * p.batch + b;
    let base = row * 3u * h + j;
    let r = sigmoid(gi[base] + acc.x);
    let z = sigmoid(gi[base + h] + acc.y);
    let hn = acc.z + b_hn[j];
    let n = tanh_stable(gi[base + 2u * h] + r * hn);
    let h_new = (1.0 - z) * n + z * h_prev;
    state[state_at(s_out, b, j)] = h_new;
    y[p.y_off + t * p.y_rs_t + b * p.y_rs_b + j] = h_new;
    if (p.save != 0u) {
        let gb = p.tape_gates + base;
        tape[gb] = r;
        tape[gb + h] = z;
        tape[gb + 2u * h] = n;
        tape[p.tape_hprev + row * h + j] = h_prev;
        tape[p.tape_hn + row * h + j] = hn;
    }
}

@compute @workgroup_size(64, 1)
fn gru_step(@builtin(global_invocation_id) gid: vec3<u32>) {
    let j = gid.x;
    let b0 = gid.y * 4u;
    let h = p.hidden;
    if (j >= h || b0 >= p.batch) {
        return;
    }
    let last = p.batch - 1u;
    let s_in = p.step % 2u;
    let r0 = state_at(s_in, b0, 0u);
    let r1 = state_at(s_in, min(b0 + 1u, last), 0u);
    let r2 = state_at(s_in, min(b0 + 2u, last), 0u);
    let r3 = state_at(s_in, min(b0 + 3u, last), 0u);
    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0);
    for (var k = 0u; k < h; k++) {
        let wk = w[k * h + j];
        a0 += state[r0 + k] * wk;
        a1 += state[r1 + k] * wk;
        a2 += state[r2 + k] * wk;
        a3 += state[r3 + k] * wk;
    }
    finish(b0, j, a0);
    if (b0 + 1u < p.batch) { finish(b0 + 1u, j, a1); }
    if (b0 + 2u < p.batch) { finish(b0 + 2u, j, a2); }
    if (b0 + 3u < p.batch) { finish(b0 + 3u, j, a3); }
}
