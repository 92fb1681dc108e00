// Fused LSTM step: for one timestep, the recurrent product h_prev · W_hh^T for all four gates,
// the gate nonlinearities and the cell update, in one dispatch. Gate order i, f, g, o.
//
// gi holds the hoisted input projection x·W_ih^T + b_ih + b_hh for every (t, b). W_hh is packed
// so that packed[k * H + j] = (W_i[j, k], W_f[j, k], W_g[j, k], W_o[j, k]): an invocation owns
// hidden unit j for four batch rows and finishes their cell update without another pass.
// State is double-buffered: slot (step % 2) is read, the other written; rows whose sequence has
// ended (step >= length) carry their state over, so the final slot holds each sequence's state
// after its last valid step.

struct StepParams {
    batch: u32,
    hidden: u32,
    step: u32,
    reverse: u32,     // 1: time t = length - 1 - step
    y_rs_t: u32,      // y[t, b, j] at y_off + t * y_rs_t + b * y_rs_b + j
    y_rs_b: u32,
    y_off: u32,
    save: u32,        // 1: training mode, write the tape
    tape_gates: u32,  // tape offsets (floats) of: activated gates [T*B, 4H],
    tape_hprev: u32,  //   h before the step [T*B, H],
    tape_c: u32,      //   c after the step [T*B, H],
    tape_cprev: u32,  //   c before the step [T*B, H]
}

@group(0) @binding(0) var<uniform> p: StepParams;
@group(0) @binding(1) var<storage, read> gi: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> lengths: array<u32>;
@group(0) @binding(4) var<storage, read_write> state: array<f32>;  // [2 slots][h, c][B][H]
@group(0) @binding(5) var<storage, read_write> y: array<f32>;
@group(0) @binding(6) var<storage, read_write> tape: array<f32>;

fn state_at(slot: u32, which: u32, b: u32, j: u32) -> u32 {
    return ((slot * 2u + which) * p.batch + b) * p.hidden + j;
}

fn finish(b: u32, j: u32, acc: vec4<f32>) {
    let h = p.hidden;
    let s_in = p.step % 2u;
    let s_out = 1u - s_in;
    let h_prev = state[state_at(s_in, 0u, b, j)];
    let c_prev = state[state_at(s_in, 1u, b, j)];
    let len = lengths[b];
    if (p.step >= len) {
        state[state_at(s_out, 0u, b, j)] = h_prev;
        state[state_at(s_out, 1u, b, j)] = c_prev;
        return;
    }
    var t = p.step;
    if (p.reverse != 0u) {
        t = len - 1u - p.step;
    }
    let row = t * p.batch + b;
    let base = row * 4u * h + j;
    let a = acc + vec4<f32>(gi[base], gi[base + h], gi[base + 2u * h], gi[base + 3u * h]);
    let i = sigmoid(a.x);
    let f = sigmoid(a.y);
    let g = tanh_stable(a.z);
    let o = sigmoid(a.w);
    let c = f * c_prev + i * g;
    let h_new = o * tanh_stable(c);
    state[state_at(s_out, 0u, b, j)] = h_new;
    state[state_at(s_out, 1u, b, j)] = c;
    y[p.y_off + t * p.y_rs_t + b * p.y_rs_b + j] = h_new;
    if (p.save != 0u) {
        let gb = p.tape_gates + base;
        tape[gb] = i;
        tape[gb + h] = f;
        tape[gb + 2u * h] = g;
        tape[gb + 3u * h] = o;
        tape[p.tape_hprev + row * h + j] = h_prev;
        tape[p.tape_c + row * h + j] = c;
        tape[p.tape_cprev + row * h + j] = c_prev;
    }
}

@compute @workgroup_size(64, 1)
fn lstm_step(@builtin(global_invocation_id) gid: vec3<u32>) {
    let j = gid.x;
    let b0 = gid.y * 4u;
    let h = p.hidden;
    if (j >= h || b0 >= p.batch) {
        return;
    }
    // Rows past the batch read row B-1 (in bounds) and are never stored.
    let last = p.batch - 1u;
    let s_in = p.step % 2u;
    let r0 = state_at(s_in, 0u, b0, 0u);
    let r1 = state_at(s_in, 0u, min(b0 + 1u, last), 0u);
    let r2 = state_at(s_in, 0u, min(b0 + 2u, last), 0u);
    let r3 = state_at(s_in, 0u, min(b0 + 3u, last), 0u);
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
