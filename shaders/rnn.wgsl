// Fused Elman step: h' = act(gi + W_hh h) with act = tanh or relu, gi = x·W_ih^T + b_ih + b_hh
// hoisted. With one gate, W_hh is packed four units to a vec4: packed[k * U4 + u] =
// (W[4u, k], W[4u + 1, k], W[4u + 2, k], W[4u + 3, k]); an invocation owns units 4u..4u+3 for
// four batch rows. State handling and lengths as in lstm.wgsl.

struct StepParams {
    batch: u32,
    hidden: u32,
    step: u32,
    dir0: u32,        // the first direction of this dispatch (windowed steps: one direction each)
    y_rs_t: u32,
    y_rs_b: u32,
    row0: u32,        // the first batch row of this dispatch (windowed steps: 32 rows each)
    save: u32,
    tape_gates: u32,  // h after the step [T*B, H] (the activation's derivative needs only it)
    tape_hprev: u32,  // h before the step [T*B, H]
    relu: u32,        // 1: relu, 0: tanh
    units4: u32,      // ceil(H / 4)
    gi_dir: u32,      // per-direction strides (floats, vec4 slots for w) of gi, the packed
    w_dir: u32,       //   W_hh and the tape: one dispatch runs every direction (z), direction
    tape_dir: u32,    //   d = z, reversed in time when odd
    splits: u32,      // partial products per accumulator in `fpart` (`*_cell_fwd`)
}

@group(0) @binding(0) var<uniform> p: StepParams;
@group(0) @binding(1) var<storage, read> gi: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<vec4<f32>>;

// The packed W_hh as f32 vec4; the f16-weights variant of this file (see shaders.rs) swaps this
// binding and function for vec2<u32> storage unpacked to f32 (accumulation stays f32).
fn w_load(i: u32) -> vec4<f32> {
    return w[i];
}
@group(0) @binding(3) var<storage, read> lengths: array<u32>;
@group(0) @binding(4) var<storage, read_write> state: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;
@group(0) @binding(6) var<storage, read_write> tape: array<f32>;

fn state_at(slot: u32, b: u32, j: u32) -> u32 {
    let l_cur_state = cur_state;
    return l_cur_state + (slot * 2u * p.batch + b) * p.hidden + j;
}

// The step finish() works on: p.step, or the loop counter of the persistent kernel.
var<private> cur_step: u32;

// This invocation's direction and the offsets of its slices of gi, W_hh, state and tape.
var<private> cur_dir: u32;
var<private> cur_gi: u32;
var<private> cur_w: u32;
var<private> cur_state: u32;
var<private> cur_tape: u32;

fn set_dir(z: u32) {
    cur_dir = z;
    cur_gi = cur_dir * p.gi_dir;
    cur_w = cur_dir * p.w_dir;
    cur_state = cur_dir * 4u * p.batch * p.hidden;
    cur_tape = cur_dir * p.tape_dir;
}

fn finish(b: u32, u: u32, acc: vec4<f32>) {
    let l_cur_gi = cur_gi;
    let l_cur_tape = cur_tape;
    let h = p.hidden;
    let s_in = cur_step % 2u;
    let s_out = 1u - s_in;
    let len = lengths[b];
    var t = cur_step;
    if ((cur_dir % 2u) != 0u && cur_step < len) {
        t = len - 1u - cur_step;
    }
    let row = t * p.batch + b;
    for (var q = 0u; q < 4u; q++) {
        let j = 4u * u + q;
        if (j < h) {
            let h_prev = state[state_at(s_in, b, j)];
            if (cur_step >= len) {
                state[state_at(s_out, b, j)] = h_prev;
            } else {
                let a = gi[l_cur_gi + row * h + j] + acc[q];
                var h_new: f32;
                if (p.relu != 0u) {
                    h_new = max(a, 0.0);
                } else {
                    h_new = tanh_stable(a);
                }
                state[state_at(s_out, b, j)] = h_new;
                y[cur_dir * p.hidden + t * p.y_rs_t + b * p.y_rs_b + j] = h_new;
                if (p.save != 0u) {
                    tape[l_cur_tape + p.tape_gates + row * h + j] = h_new;
                    tape[l_cur_tape + p.tape_hprev + row * h + j] = h_prev;
                }
            }
        }
    }
}

@compute @workgroup_size(64, 1)
fn rnn_step(@builtin(global_invocation_id) gid: vec3<u32>) {
    set_dir(gid.z);
    let l_cur_w = cur_w;
    cur_step = p.step;
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
        let wk = w_load(l_cur_w + k * p.units4 + u);
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

fn state_at_h(slot: u32, b: u32) -> u32 {
    return state_at(slot, b, 0u);
}

// Variant for CPU adapters (lavapipe), where every loaded float costs a gather: 16 batch rows x
// 4 groups of 4 units per invocation (32 floats loaded per k for 256 multiply-adds instead of 8 for 16).
// Unrolled by hand: WGSL arrays indexed in loops end up in scratch memory there.
@compute @workgroup_size(64, 1)
fn rnn_step16(@builtin(global_invocation_id) gid: vec3<u32>) {
    set_dir(gid.z);
    let l_cur_w = cur_w;
    cur_step = p.step;
    let u0 = gid.x * 4u;
    let b0 = gid.y * 16u;
    let h = p.hidden;
    if (u0 >= p.units4 || b0 >= p.batch) {
        return;
    }
    // Rows and units past the end read in-bounds stand-ins and are never stored.
    let last = p.batch - 1u;
    let ulast = p.units4 - 1u;
    let s_in = p.step % 2u;
    let r0 = state_at_h(s_in, min(b0 + 0u, last));
    let r1 = state_at_h(s_in, min(b0 + 1u, last));
    let r2 = state_at_h(s_in, min(b0 + 2u, last));
    let r3 = state_at_h(s_in, min(b0 + 3u, last));
    let r4 = state_at_h(s_in, min(b0 + 4u, last));
    let r5 = state_at_h(s_in, min(b0 + 5u, last));
    let r6 = state_at_h(s_in, min(b0 + 6u, last));
    let r7 = state_at_h(s_in, min(b0 + 7u, last));
    let r8 = state_at_h(s_in, min(b0 + 8u, last));
    let r9 = state_at_h(s_in, min(b0 + 9u, last));
    let r10 = state_at_h(s_in, min(b0 + 10u, last));
    let r11 = state_at_h(s_in, min(b0 + 11u, last));
    let r12 = state_at_h(s_in, min(b0 + 12u, last));
    let r13 = state_at_h(s_in, min(b0 + 13u, last));
    let r14 = state_at_h(s_in, min(b0 + 14u, last));
    let r15 = state_at_h(s_in, min(b0 + 15u, last));
    let w0i = min(u0 + 0u, ulast);
    let w1i = min(u0 + 1u, ulast);
    let w2i = min(u0 + 2u, ulast);
    let w3i = min(u0 + 3u, ulast);
    var a0_0 = vec4<f32>(0.0); var a0_1 = vec4<f32>(0.0); var a0_2 = vec4<f32>(0.0); var a0_3 = vec4<f32>(0.0);
    var a1_0 = vec4<f32>(0.0); var a1_1 = vec4<f32>(0.0); var a1_2 = vec4<f32>(0.0); var a1_3 = vec4<f32>(0.0);
    var a2_0 = vec4<f32>(0.0); var a2_1 = vec4<f32>(0.0); var a2_2 = vec4<f32>(0.0); var a2_3 = vec4<f32>(0.0);
    var a3_0 = vec4<f32>(0.0); var a3_1 = vec4<f32>(0.0); var a3_2 = vec4<f32>(0.0); var a3_3 = vec4<f32>(0.0);
    var a4_0 = vec4<f32>(0.0); var a4_1 = vec4<f32>(0.0); var a4_2 = vec4<f32>(0.0); var a4_3 = vec4<f32>(0.0);
    var a5_0 = vec4<f32>(0.0); var a5_1 = vec4<f32>(0.0); var a5_2 = vec4<f32>(0.0); var a5_3 = vec4<f32>(0.0);
    var a6_0 = vec4<f32>(0.0); var a6_1 = vec4<f32>(0.0); var a6_2 = vec4<f32>(0.0); var a6_3 = vec4<f32>(0.0);
    var a7_0 = vec4<f32>(0.0); var a7_1 = vec4<f32>(0.0); var a7_2 = vec4<f32>(0.0); var a7_3 = vec4<f32>(0.0);
    var a8_0 = vec4<f32>(0.0); var a8_1 = vec4<f32>(0.0); var a8_2 = vec4<f32>(0.0); var a8_3 = vec4<f32>(0.0);
    var a9_0 = vec4<f32>(0.0); var a9_1 = vec4<f32>(0.0); var a9_2 = vec4<f32>(0.0); var a9_3 = vec4<f32>(0.0);
    var a10_0 = vec4<f32>(0.0); var a10_1 = vec4<f32>(0.0); var a10_2 = vec4<f32>(0.0); var a10_3 = vec4<f32>(0.0);
    var a11_0 = vec4<f32>(0.0); var a11_1 = vec4<f32>(0.0); var a11_2 = vec4<f32>(0.0); var a11_3 = vec4<f32>(0.0);
    var a12_0 = vec4<f32>(0.0); var a12_1 = vec4<f32>(0.0); var a12_2 = vec4<f32>(0.0); var a12_3 = vec4<f32>(0.0);
    var a13_0 = vec4<f32>(0.0); var a13_1 = vec4<f32>(0.0); var a13_2 = vec4<f32>(0.0); var a13_3 = vec4<f32>(0.0);
    var a14_0 = vec4<f32>(0.0); var a14_1 = vec4<f32>(0.0); var a14_2 = vec4<f32>(0.0); var a14_3 = vec4<f32>(0.0);
    var a15_0 = vec4<f32>(0.0); var a15_1 = vec4<f32>(0.0); var a15_2 = vec4<f32>(0.0); var a15_3 = vec4<f32>(0.0);
    for (var k = 0u; k < h; k++) {
        let w0 = w_load(l_cur_w + k * p.units4 + w0i);
        let w1 = w_load(l_cur_w + k * p.units4 + w1i);
        let w2 = w_load(l_cur_w + k * p.units4 + w2i);
        let w3 = w_load(l_cur_w + k * p.units4 + w3i);
        let h0 = state[r0 + k];
        let h1 = state[r1 + k];
        let h2 = state[r2 + k];
        let h3 = state[r3 + k];
        let h4 = state[r4 + k];
        let h5 = state[r5 + k];
        let h6 = state[r6 + k];
        let h7 = state[r7 + k];
        let h8 = state[r8 + k];
        let h9 = state[r9 + k];
        let h10 = state[r10 + k];
        let h11 = state[r11 + k];
        let h12 = state[r12 + k];
        let h13 = state[r13 + k];
        let h14 = state[r14 + k];
        let h15 = state[r15 + k];
        a0_0 += h0 * w0; a0_1 += h0 * w1; a0_2 += h0 * w2; a0_3 += h0 * w3;
        a1_0 += h1 * w0; a1_1 += h1 * w1; a1_2 += h1 * w2; a1_3 += h1 * w3;
        a2_0 += h2 * w0; a2_1 += h2 * w1; a2_2 += h2 * w2; a2_3 += h2 * w3;
        a3_0 += h3 * w0; a3_1 += h3 * w1; a3_2 += h3 * w2; a3_3 += h3 * w3;
        a4_0 += h4 * w0; a4_1 += h4 * w1; a4_2 += h4 * w2; a4_3 += h4 * w3;
        a5_0 += h5 * w0; a5_1 += h5 * w1; a5_2 += h5 * w2; a5_3 += h5 * w3;
        a6_0 += h6 * w0; a6_1 += h6 * w1; a6_2 += h6 * w2; a6_3 += h6 * w3;
        a7_0 += h7 * w0; a7_1 += h7 * w1; a7_2 += h7 * w2; a7_3 += h7 * w3;
        a8_0 += h8 * w0; a8_1 += h8 * w1; a8_2 += h8 * w2; a8_3 += h8 * w3;
        a9_0 += h9 * w0; a9_1 += h9 * w1; a9_2 += h9 * w2; a9_3 += h9 * w3;
        a10_0 += h10 * w0; a10_1 += h10 * w1; a10_2 += h10 * w2; a10_3 += h10 * w3;
        a11_0 += h11 * w0; a11_1 += h11 * w1; a11_2 += h11 * w2; a11_3 += h11 * w3;
        a12_0 += h12 * w0; a12_1 += h12 * w1; a12_2 += h12 * w2; a12_3 += h12 * w3;
        a13_0 += h13 * w0; a13_1 += h13 * w1; a13_2 += h13 * w2; a13_3 += h13 * w3;
        a14_0 += h14 * w0; a14_1 += h14 * w1; a14_2 += h14 * w2; a14_3 += h14 * w3;
        a15_0 += h15 * w0; a15_1 += h15 * w1; a15_2 += h15 * w2; a15_3 += h15 * w3;
    }
    if (b0 + 0u < p.batch && u0 + 0u < p.units4) { finish(b0 + 0u, u0 + 0u, a0_0); }
    if (b0 + 0u < p.batch && u0 + 1u < p.units4) { finish(b0 + 0u, u0 + 1u, a0_1); }
    if (b0 + 0u < p.batch && u0 + 2u < p.units4) { finish(b0 + 0u, u0 + 2u, a0_2); }
    if (b0 + 0u < p.batch && u0 + 3u < p.units4) { finish(b0 + 0u, u0 + 3u, a0_3); }
    if (b0 + 1u < p.batch && u0 + 0u < p.units4) { finish(b0 + 1u, u0 + 0u, a1_0); }
    if (b0 + 1u < p.batch && u0 + 1u < p.units4) { finish(b0 + 1u, u0 + 1u, a1_1); }
    if (b0 + 1u < p.batch && u0 + 2u < p.units4) { finish(b0 + 1u, u0 + 2u, a1_2); }
    if (b0 + 1u < p.batch && u0 + 3u < p.units4) { finish(b0 + 1u, u0 + 3u, a1_3); }
    if (b0 + 2u < p.batch && u0 + 0u < p.units4) { finish(b0 + 2u, u0 + 0u, a2_0); }
    if (b0 + 2u < p.batch && u0 + 1u < p.units4) { finish(b0 + 2u, u0 + 1u, a2_1); }
    if (b0 + 2u < p.batch && u0 + 2u < p.units4) { finish(b0 + 2u, u0 + 2u, a2_2); }
    if (b0 + 2u < p.batch && u0 + 3u < p.units4) { finish(b0 + 2u, u0 + 3u, a2_3); }
    if (b0 + 3u < p.batch && u0 + 0u < p.units4) { finish(b0 + 3u, u0 + 0u, a3_0); }
    if (b0 + 3u < p.batch && u0 + 1u < p.units4) { finish(b0 + 3u, u0 + 1u, a3_1); }
    if (b0 + 3u < p.batch && u0 + 2u < p.units4) { finish(b0 + 3u, u0 + 2u, a3_2); }
    if (b0 + 3u < p.batch && u0 + 3u < p.units4) { finish(b0 + 3u, u0 + 3u, a3_3); }
    if (b0 + 4u < p.batch && u0 + 0u < p.units4) { finish(b0 + 4u, u0 + 0u, a4_0); }
    if (b0 + 4u < p.batch && u0 + 1u < p.units4) { finish(b0 + 4u, u0 + 1u, a4_1); }
    if (b0 + 4u < p.batch && u0 + 2u < p.units4) { finish(b0 + 4u, u0 + 2u, a4_2); }
    if (b0 + 4u < p.batch && u0 + 3u < p.units4) { finish(b0 + 4u, u0 + 3u, a4_3); }
    if (b0 + 5u < p.batch && u0 + 0u < p.units4) { finish(b0 + 5u, u0 + 0u, a5_0); }
    if (b0 + 5u < p.batch && u0 + 1u < p.units4) { finish(b0 + 5u, u0 + 1u, a5_1); }
    if (b0 + 5u < p.batch && u0 + 2u < p.units4) { finish(b0 + 5u, u0 + 2u, a5_2); }
    if (b0 + 5u < p.batch && u0 + 3u < p.units4) { finish(b0 + 5u, u0 + 3u, a5_3); }
    if (b0 + 6u < p.batch && u0 + 0u < p.units4) { finish(b0 + 6u, u0 + 0u, a6_0); }
    if (b0 + 6u < p.batch && u0 + 1u < p.units4) { finish(b0 + 6u, u0 + 1u, a6_1); }
    if (b0 + 6u < p.batch && u0 + 2u < p.units4) { finish(b0 + 6u, u0 + 2u, a6_2); }
    if (b0 + 6u < p.batch && u0 + 3u < p.units4) { finish(b0 + 6u, u0 + 3u, a6_3); }
    if (b0 + 7u < p.batch && u0 + 0u < p.units4) { finish(b0 + 7u, u0 + 0u, a7_0); }
    if (b0 + 7u < p.batch && u0 + 1u < p.units4) { finish(b0 + 7u, u0 + 1u, a7_1); }
    if (b0 + 7u < p.batch && u0 + 2u < p.units4) { finish(b0 + 7u, u0 + 2u, a7_2); }
    if (b0 + 7u < p.batch && u0 + 3u < p.units4) { finish(b0 + 7u, u0 + 3u, a7_3); }
    if (b0 + 8u < p.batch && u0 + 0u < p.units4) { finish(b0 + 8u, u0 + 0u, a8_0); }
    if (b0 + 8u < p.batch && u0 + 1u < p.units4) { finish(b0 + 8u, u0 + 1u, a8_1); }
    if (b0 + 8u < p.batch && u0 + 2u < p.units4) { finish(b0 + 8u, u0 + 2u, a8_2); }
    if (b0 + 8u < p.batch && u0 + 3u < p.units4) { finish(b0 + 8u, u0 + 3u, a8_3); }
    if (b0 + 9u < p.batch && u0 + 0u < p.units4) { finish(b0 + 9u, u0 + 0u, a9_0); }
    if (b0 + 9u < p.batch && u0 + 1u < p.units4) { finish(b0 + 9u, u0 + 1u, a9_1); }
    if (b0 + 9u < p.batch && u0 + 2u < p.units4) { finish(b0 + 9u, u0 + 2u, a9_2); }
    if (b0 + 9u < p.batch && u0 + 3u < p.units4) { finish(b0 + 9u, u0 + 3u, a9_3); }
    if (b0 + 10u < p.batch && u0 + 0u < p.units4) { finish(b0 + 10u, u0 + 0u, a10_0); }
    if (b0 + 10u < p.batch && u0 + 1u < p.units4) { finish(b0 + 10u, u0 + 1u, a10_1); }
    if (b0 + 10u < p.batch && u0 + 2u < p.units4) { finish(b0 + 10u, u0 + 2u, a10_2); }
    if (b0 + 10u < p.batch && u0 + 3u < p.units4) { finish(b0 + 10u, u0 + 3u, a10_3); }
    if (b0 + 11u < p.batch && u0 + 0u < p.units4) { finish(b0 + 11u, u0 + 0u, a11_0); }
    if (b0 + 11u < p.batch && u0 + 1u < p.units4) { finish(b0 + 11u, u0 + 1u, a11_1); }
    if (b0 + 11u < p.batch && u0 + 2u < p.units4) { finish(b0 + 11u, u0 + 2u, a11_2); }
    if (b0 + 11u < p.batch && u0 + 3u < p.units4) { finish(b0 + 11u, u0 + 3u, a11_3); }
    if (b0 + 12u < p.batch && u0 + 0u < p.units4) { finish(b0 + 12u, u0 + 0u, a12_0); }
    if (b0 + 12u < p.batch && u0 + 1u < p.units4) { finish(b0 + 12u, u0 + 1u, a12_1); }
    if (b0 + 12u < p.batch && u0 + 2u < p.units4) { finish(b0 + 12u, u0 + 2u, a12_2); }
    if (b0 + 12u < p.batch && u0 + 3u < p.units4) { finish(b0 + 12u, u0 + 3u, a12_3); }
    if (b0 + 13u < p.batch && u0 + 0u < p.units4) { finish(b0 + 13u, u0 + 0u, a13_0); }
    if (b0 + 13u < p.batch && u0 + 1u < p.units4) { finish(b0 + 13u, u0 + 1u, a13_1); }
    if (b0 + 13u < p.batch && u0 + 2u < p.units4) { finish(b0 + 13u, u0 + 2u, a13_2); }
    if (b0 + 13u < p.batch && u0 + 3u < p.units4) { finish(b0 + 13u, u0 + 3u, a13_3); }
    if (b0 + 14u < p.batch && u0 + 0u < p.units4) { finish(b0 + 14u, u0 + 0u, a14_0); }
    if (b0 + 14u < p.batch && u0 + 1u < p.units4) { finish(b0 + 14u, u0 + 1u, a14_1); }
    if (b0 + 14u < p.batch && u0 + 2u < p.units4) { finish(b0 + 14u, u0 + 2u, a14_2); }
    if (b0 + 14u < p.batch && u0 + 3u < p.units4) { finish(b0 + 14u, u0 + 3u, a14_3); }
    if (b0 + 15u < p.batch && u0 + 0u < p.units4) { finish(b0 + 15u, u0 + 0u, a15_0); }
    if (b0 + 15u < p.batch && u0 + 1u < p.units4) { finish(b0 + 15u, u0 + 1u, a15_1); }
    if (b0 + 15u < p.batch && u0 + 2u < p.units4) { finish(b0 + 15u, u0 + 2u, a15_2); }
    if (b0 + 15u < p.batch && u0 + 3u < p.units4) { finish(b0 + 15u, u0 + 3u, a15_3); }
}

// The windowed step `rnn_step16w`, its bindings `hwin` and `hout` (right after `tape`) and
// `hout_at` are generated by the shader registry (`windowed_step` in crates/gpu/src/shaders.rs)
// from `rnn_step16`. Only `finish_w` is the cell's own:
// finish() of units 4u..4u+3, then their new h (or the carried one) into hout for the next
// step's window.
fn finish_w(b: u32, u: u32, acc: vec4<f32>) {
    finish(b, u, acc);
    for (var q = 0u; q < 4u; q++) {
        let j = 4u * u + q;
        if (j < p.hidden) {
            hout[hout_at(b, j)] = state[state_at(1u - cur_step % 2u, b, j)];
        }
    }
}

// Persistent small-batch path: one workgroup, every step in one dispatch (see lstm_seq); an
// invocation owns (b, group of four units) pairs.
@compute @workgroup_size(256)
fn rnn_seq(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    set_dir(wid.z);
    let l_cur_w = cur_w;
    let h = p.hidden;
    let steps = p.step;
    for (var s = 0u; s < steps; s++) {
        cur_step = s;
        let s_in = s % 2u;
        for (var v = li; v < p.batch * p.units4; v += 256u) {
            let b = v / p.units4;
            let u = v - b * p.units4;
            let r = state_at(s_in, b, 0u);
            var a = vec4<f32>(0.0);
            for (var k = 0u; k < h; k++) {
                a += state[r + k] * w_load(l_cur_w + k * p.units4 + u);
            }
            finish(b, u, a);
        }
        storageBarrier();
    }
}

// ---------------------------------------------------------------------------------------------
// Backward step, scheduled as in lstm.wgsl: dh = carry + dy[t] + (dG_{s+1} · W_hh)[j], then
// dG = dh (1 - h^2) for tanh, dh [h > 0] for relu (h is the step's output, on the tape).
// W_hh is packed transposed by unit quads: wt[m * U4 + u] = (W[m, 4u], ..., W[m, 4u + 3]).

struct BackParams {
    batch: u32,
    hidden: u32,
    step: u32,
    _pad_r: u32,
    d_rs_t: u32,
    d_rs_b: u32,
    _pad_d: u32,
    parity: u32,
    tape_gates: u32,
    tape_hprev: u32,
    relu: u32,
    units4: u32,
    last: u32,
    dgh_off: u32,
    _pad_z: u32,
    splits: u32,      // partial products per row in `part` (the split reverse steps)
    wt_dir: u32,      // per-direction strides (vec4 slots, floats) of the packed W_hh, the
    tape_dir: u32,    //   tape and dg: one dispatch runs every direction (z), direction
    dg_dir: u32,      //   d = z, reversed in time when odd
    _pad_dir: u32,
}

@group(0) @binding(0) var<uniform> bp: BackParams;
@group(0) @binding(1) var<storage, read> wt: array<vec4<f32>>;

fn wt_load(i: u32) -> vec4<f32> {
    return wt[i];
}
@group(0) @binding(2) var<storage, read> b_lengths: array<u32>;
@group(0) @binding(3) var<storage, read> d_out: array<f32>;
@group(0) @binding(4) var<storage, read> b_tape: array<f32>;
@group(0) @binding(5) var<storage, read_write> dstate: array<f32>;
@group(0) @binding(6) var<storage, read_write> dg: array<f32>;  // [T*B, H]

fn dstate_at(slot: u32, b: u32, j: u32) -> u32 {
    let l_cur_dstate = cur_dstate;
    return l_cur_dstate + (slot * 2u * bp.batch + b) * bp.hidden + j;
}

// The reverse step, carry slot and final-pass flag the helpers below work on: the uniforms of
// a per-step dispatch, or the loop state of the persistent kernel.
// This invocation's direction and the offsets of its slices of W_hh, tape, dstate and dg.
var<private> cur_bdir: u32;
var<private> cur_wt: u32;
var<private> cur_btape: u32;
var<private> cur_dstate: u32;
var<private> cur_dg: u32;

fn set_bdir(z: u32) {
    cur_bdir = z;
    cur_wt = cur_bdir * bp.wt_dir;
    cur_btape = cur_bdir * bp.tape_dir;
    cur_dstate = cur_bdir * 4u * bp.batch * bp.hidden;
    cur_dg = cur_bdir * bp.dg_dir;
}

var<private> cur_bstep: u32;
var<private> cur_parity: u32;
var<private> cur_last: u32;

fn next_row(b: u32, len: u32) -> i32 {
    var s1 = cur_bstep + 1u;
    if (cur_last != 0u) {
        s1 = 0u;
    }
    if (s1 >= len) {
        return -1;
    }
    var t1 = s1;
    if ((cur_bdir % 2u) != 0u) {
        t1 = len - 1u - s1;
    }
    return i32(t1 * bp.batch + b);
}

fn back_finish_quad(b: u32, u: u32, rec: vec4<f32>) {
    let l_cur_dg = cur_dg;
    let l_cur_btape = cur_btape;
    let h = bp.hidden;
    let len = b_lengths[b];
    let s_in = cur_parity;
    let s_out = 1u - s_in;
    var t = cur_bstep;
    if ((cur_bdir % 2u) != 0u && cur_bstep < len) {
        t = len - 1u - cur_bstep;
    }
    let row = t * bp.batch + b;
    for (var q = 0u; q < 4u; q++) {
        let j = 4u * u + q;
        if (j < h) {
            let carry = dstate[dstate_at(s_in, b, j)];
            if (cur_last != 0u) {
                dstate[dstate_at(s_out, b, j)] = carry + rec[q];
            } else if (cur_bstep >= len) {
                dstate[dstate_at(s_out, b, j)] = carry;
            } else {
                let dh = carry + rec[q] + d_out[cur_bdir * bp.hidden + t * bp.d_rs_t + b * bp.d_rs_b + j];
                let hv = b_tape[l_cur_btape + bp.tape_gates + row * h + j];
                var da: f32;
                if (bp.relu != 0u) {
                    da = select(0.0, dh, hv > 0.0);
                } else {
                    da = dh * (1.0 - hv * hv);
                }
                dg[l_cur_dg + row * h + j] = da;
                dstate[dstate_at(s_out, b, j)] = 0.0;
            }
        }
    }
}

@compute @workgroup_size(64, 1)
fn rnn_step_bwd(@builtin(global_invocation_id) gid: vec3<u32>) {
    set_bdir(gid.z);
    let l_cur_wt = cur_wt;
    let l_cur_dg = cur_dg;
    cur_bstep = bp.step;
    cur_parity = bp.parity;
    cur_last = bp.last;
    let u = gid.x;
    let b = gid.y;
    let h = bp.hidden;
    if (u >= bp.units4 || b >= bp.batch) {
        return;
    }
    let r = next_row(b, b_lengths[b]);
    var rec = vec4<f32>(0.0);
    if (r >= 0) {
        let base = u32(r) * h;
        for (var m = 0u; m < h; m++) {
            rec += dg[l_cur_dg + base + m] * wt_load(l_cur_wt + m * bp.units4 + u);
        }
    }
    back_finish_quad(b, u, rec);
}

// Persistent small-batch backward: one workgroup runs the reverse steps and the final dh0/dc0
// pass in one dispatch (bp.step holds the number of steps), in the order and with the parities
// the host gives the per-step dispatches; storageBarrier() separates the steps.
@compute @workgroup_size(256)
fn rnn_seq_bwd(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    set_bdir(wid.z);
    let l_cur_wt = cur_wt;
    let l_cur_dg = cur_dg;
    let steps = bp.step;
    for (var i = 0u; i <= steps; i++) {
        cur_last = select(0u, 1u, i == steps);
        cur_bstep = select(steps - 1u - i, 0u, i == steps);
        cur_parity = i % 2u;
        for (var v = li; v < bp.batch * bp.units4; v += 256u) {
            let b = v / bp.units4;
            let u = v - b * bp.units4;
            let r = next_row(b, b_lengths[b]);
            var rec = vec4<f32>(0.0);
            if (r >= 0) {
                let base = u32(r) * bp.hidden;
                for (var m = 0u; m < bp.hidden; m++) {
                    rec += dg[l_cur_dg + base + m] * wt_load(l_cur_wt + m * bp.units4 + u);
                }
            }
            back_finish_quad(b, u, rec);
        }
        storageBarrier();
    }
}


// The cell half of a reverse step on CPU adapters: the recurrent product comes from
// `rec_panel` (recurrent.wgsl) as S partial sums, added here in slot order, so the
// result does not depend on scheduling. One row and four units per invocation.
@group(0) @binding(7) var<storage, read> part: array<vec4<f32>>;  // [dir][S][B][ceil(H / 4)]

@compute @workgroup_size(64, 1)
fn rnn_cell_bwd(@builtin(global_invocation_id) gid: vec3<u32>) {
    set_bdir(gid.z);
    cur_bstep = bp.step;
    cur_parity = bp.parity;
    cur_last = bp.last;
    let u = gid.x;
    let b = gid.y;
    let units4 = (bp.hidden + 3u) / 4u;
    if (u >= units4 || b >= bp.batch) {
        return;
    }
    var rec = vec4<f32>(0.0);
    for (var s = 0u; s < bp.splits; s++) {
        rec += part[((gid.z * bp.splits + s) * bp.batch + b) * units4 + u];
    }
    back_finish_quad(b, u, rec);
}
