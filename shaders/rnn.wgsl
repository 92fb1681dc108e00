// Fused Elman step: h' = act(gi + W_hh h) with act = tanh or relu, gi = x·W_ih^T + b_ih + b_hh
// hoisted. With one gate, W_hh is packed four units to a vec4: packed[k * U4 + u] =
// (W[4u, k], W[4u + 1, k], W[4u + 2, k], W[4u + 3, k]); an invocation owns units 4u..4u+3 for
// four batch rows. State handling and lengths as in lstm.wgsl.

struct StepParams {
    batch: u32,
    hidden: u32,
    step: u32,
    reverse: u32,
    y_rs_t: u32,
    y_rs_b: u32,
    y_off: u32,
    save: u32,
    tape_gates: u32,  // h after the step [T*B, H] (the activation's derivative needs only it)
    tape_hprev: u32,  // h before the step [T*B, H]
    relu: u32,        // 1: relu, 0: tanh
    units4: u32,      // ceil(H / 4)
}

@group(0) @binding(0) var<uniform> p: StepParams;
@group(0) @binding(1) var<storage, read> gi: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> lengths: array<u32>;
@group(0) @binding(4) var<storage, read_write> state: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;
@group(0) @binding(6) var<storage, read_write> tape: array<f32>;

fn state_at(slot: u32, b: u32, j: u32) -> u32 {
    return (slot * 2u * p.batch + b) * p.hidden + j;
}

fn finish(b: u32, u: u32, acc: vec4<f32>) {
    let h = p.hidden;
    let s_in = p.step % 2u;
    let s_out = 1u - s_in;
    let len = lengths[b];
    var t = p.step;
    if (p.reverse != 0u && p.step < len) {
        t = len - 1u - p.step;
    }
    let row = t * p.batch + b;
    for (var q = 0u; q < 4u; q++) {
        let j = 4u * u + q;
        if (j < h) {
            let h_prev = state[state_at(s_in, b, j)];
            if (p.step >= len) {
                state[state_at(s_out, b, j)] = h_prev;
            } else {
                let a = gi[row * h + j] + acc[q];
                var h_new: f32;
                if (p.relu != 0u) {
                    h_new = max(a, 0.0);
                } else {
                    h_new = tanh_stable(a);
                }
                state[state_at(s_out, b, j)] = h_new;
                y[p.y_off + t * p.y_rs_t + b * p.y_rs_b + j] = h_new;
                if (p.save != 0u) {
                    tape[p.tape_gates + row * h + j] = h_new;
                    tape[p.tape_hprev + row * h + j] = h_prev;
                }
            }
        }
    }
}

@compute @workgroup_size(64, 1)
fn rnn_step(@builtin(global_invocation_id) gid: vec3<u32>) {
    let u = gid.x;
    let b0 = gid.y * 4u;
    let h = p.hidden;
    if (u >= p.units4 || b0 >= p.batch) {
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
        let wk = w[k * p.units4 + u];
        a0 += state[r0 + k] * wk;
        a1 += state[r1 + k] * wk;
        a2 += state[r2 + k] * wk;
        a3 += state[r3 + k] * wk;
    }
    finish(b0, u, a0);
    if (b0 + 1u < p.batch) { finish(b0 + 1u, u, a1); }
    if (b0 + 2u < p.batch) { finish(b0 + 2u, u, a2); }
    if (b0 + 3u < p.batch) { finish(b0 + 3u, u, a3); }
}
