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
    win_rows: u32,    // rows per block of the h windows of CPU adapters (32; 16, 8, 4 for small B)
    y_rs_t: u32,      // y[t, b, d * H + j] at d * H + t * y_rs_t + b * y_rs_b + j
    y_rs_b: u32,
    splits: u32,      // partial products per accumulator in `fpart` (`*_cell_fwd`)
    save: u32,        // 1: training mode, write the tape
    tape_gates: u32,  // tape offsets (floats) of: activated gates [T*B, 4H],
    tape_hprev: u32,  //   h before the step [T*B, H],
    tape_c: u32,      //   c after the step [T*B, H],
    tape_cprev: u32,  //   c before the step [T*B, H]
    gi_dir: u32,      // per-direction strides (floats, vec4 slots for w) of gi, the packed
    w_dir: u32,       //   W_hh and the tape: one dispatch runs every direction (z), direction
    tape_dir: u32,    //   d = z, reversed in time when odd
    _pad_dir: u32,
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
@group(0) @binding(4) var<storage, read_write> state: array<f32>;  // [2 slots][h, c][B][H]
@group(0) @binding(5) var<storage, read_write> y: array<f32>;
@group(0) @binding(6) var<storage, read_write> tape: array<f32>;

fn state_at(slot: u32, which: u32, b: u32, j: u32) -> u32 {
    let l_cur_state = cur_state;
    return l_cur_state + ((slot * 2u + which) * p.batch + b) * p.hidden + j;
}

fn finish(b: u32, j: u32, acc: vec4<f32>) {
    let l_cur_gi = cur_gi;
    let l_cur_tape = cur_tape;
    let h = p.hidden;
    let s_in = cur_step % 2u;
    let s_out = 1u - s_in;
    let h_prev = state[state_at(s_in, 0u, b, j)];
    let c_prev = state[state_at(s_in, 1u, b, j)];
    let len = lengths[b];
    if (cur_step >= len) {
        state[state_at(s_out, 0u, b, j)] = h_prev;
        state[state_at(s_out, 1u, b, j)] = c_prev;
        return;
    }
    var t = cur_step;
    if ((cur_dir % 2u) != 0u) {
        t = len - 1u - cur_step;
    }
    let row = t * p.batch + b;
    let base = row * 4u * h + j;
    let a = acc + vec4<f32>(gi[l_cur_gi + base], gi[l_cur_gi + base + h], gi[l_cur_gi + base + 2u * h], gi[l_cur_gi + base + 3u * h]);
    let i = sigmoid(a.x);
    let f = sigmoid(a.y);
    let g = tanh_stable(a.z);
    let o = sigmoid(a.w);
    let c = f * c_prev + i * g;
    let h_new = o * tanh_stable(c);
    state[state_at(s_out, 0u, b, j)] = h_new;
    state[state_at(s_out, 1u, b, j)] = c;
    y[cur_dir * p.hidden + t * p.y_rs_t + b * p.y_rs_b + j] = h_new;
    if (p.save != 0u) {
        let gb = p.tape_gates + base;
        tape[l_cur_tape + gb] = i;
        tape[l_cur_tape + gb + h] = f;
        tape[l_cur_tape + gb + 2u * h] = g;
        tape[l_cur_tape + gb + 3u * h] = o;
        tape[l_cur_tape + p.tape_hprev + row * h + j] = h_prev;
        tape[l_cur_tape + p.tape_c + row * h + j] = c;
        tape[l_cur_tape + p.tape_cprev + row * h + j] = c_prev;
    }
}

@compute @workgroup_size(64, 1)
fn lstm_step(@builtin(global_invocation_id) gid: vec3<u32>) {
    set_dir(gid.z);
    let l_cur_w = cur_w;
    cur_step = p.step;
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
        let wk = w_load(l_cur_w + k * h + j);
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

// The cell half of a split step on CPU adapters (`lstm_cell_fwd`), with its bindings `hout` and
// `fpart` (right after `tape`) and `hout_at`, is generated by the shader registry
// (`split_cell_fwd` in crates/gpu/src/shaders.rs). Only `finish_w` is the cell's own:
// finish(), then the new h (or the carried one) into hout for the next step's window.
fn finish_w(b: u32, j: u32, acc: vec4<f32>) {
    finish(b, j, acc);
    hout[hout_at(b, j)] = state[state_at(1u - cur_step % 2u, 0u, b, j)];
}

// Persistent small-batch path (B·H small): one workgroup runs every step of the sequence in one
// dispatch, with p.step holding the number of steps. Invocation li owns the (b, j) pairs
// li, li + 256, … of the B·H; storageBarrier() between steps makes the new state visible to the
// whole workgroup before the next step reads it. Same arithmetic, in the same order, as
// lstm_step.
@compute @workgroup_size(256)
fn lstm_seq(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    set_dir(wid.z);
    let l_cur_w = cur_w;
    let h = p.hidden;
    let steps = p.step;
    for (var s = 0u; s < steps; s++) {
        cur_step = s;
        let s_in = s % 2u;
        for (var u = li; u < p.batch * h; u += 256u) {
            let b = u / h;
            let j = u - b * h;
            let r = state_at(s_in, 0u, b, 0u);
            var a = vec4<f32>(0.0);
            for (var k = 0u; k < h; k++) {
                a += state[r + k] * w_load(l_cur_w + k * h + j);
            }
            finish(b, j, a);
        }
        storageBarrier();
    }
}

// ---------------------------------------------------------------------------------------------
// Backward step (BPTT), run for steps max_len-1 down to 0, then once more with `last` = 1.
//
// At step s, row b (time t): dh = carry_h + dy[t] + (dG_{s+1} · W_hh)[j], where dG_{s+1} are the
// pre-activation gradients the previous dispatch wrote for step s+1 (none if s+1 is past the
// sequence); then the gate gradients, written to dg[cur_dg + row] (i, f, g, o), and carry_c = dc·f for
// the step before. Rows whose sequence has not started yet (s >= length) carry dh_n, dc_n
// through. The `last` dispatch turns the carries and dG_0 · W_hh into dh0 and dc0.
// W_hh is packed transposed: wt[m * H + j] = (W_i[m, j], W_f[m, j], W_g[m, j], W_o[m, j]).

struct BackParams {
    batch: u32,
    hidden: u32,
    step: u32,
    _pad_r: u32,
    d_rs_t: u32,      // dy[t, b, d * H + j] at d * H + t * d_rs_t + b * d_rs_b + j
    d_rs_b: u32,
    _pad_d: u32,
    parity: u32,      // which dstate slot holds the carries coming in
    tape_gates: u32,
    tape_hprev: u32,
    tape_c: u32,
    tape_cprev: u32,
    last: u32,        // 1: produce dh0, dc0 (no gate gradients)
    dgh_off: u32,     // offset of the recurrent-side gradients in dg (GRU: rows * 3H; else 0)
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
@group(0) @binding(5) var<storage, read_write> dstate: array<f32>;  // [2 slots][dh, dc][B][H]
@group(0) @binding(6) var<storage, read_write> dg: array<f32>;      // [T*B, 4H]

fn dstate_at(slot: u32, which: u32, b: u32, j: u32) -> u32 {
    let l_cur_dstate = cur_dstate;
    return l_cur_dstate + ((slot * 2u + which) * bp.batch + b) * bp.hidden + j;
}

fn back_finish(b: u32, j: u32, rec: f32) {
    let l_cur_dg = cur_dg;
    let l_cur_btape = cur_btape;
    let h = bp.hidden;
    let s_in = cur_parity;
    let s_out = 1u - s_in;
    let carry_h = dstate[dstate_at(s_in, 0u, b, j)];
    let carry_c = dstate[dstate_at(s_in, 1u, b, j)];
    let len = b_lengths[b];
    if (cur_last != 0u) {
        dstate[dstate_at(s_out, 0u, b, j)] = carry_h + rec;
        dstate[dstate_at(s_out, 1u, b, j)] = carry_c;
        return;
    }
    if (cur_bstep >= len) {
        dstate[dstate_at(s_out, 0u, b, j)] = carry_h;
        dstate[dstate_at(s_out, 1u, b, j)] = carry_c;
        return;
    }
    var t = cur_bstep;
    if ((cur_bdir % 2u) != 0u) {
        t = len - 1u - cur_bstep;
    }
    let row = t * bp.batch + b;
    let dh = carry_h + rec + d_out[cur_bdir * bp.hidden + t * bp.d_rs_t + b * bp.d_rs_b + j];
    let gb = bp.tape_gates + row * 4u * h + j;
    let i = b_tape[l_cur_btape + gb];
    let f = b_tape[l_cur_btape + gb + h];
    let g = b_tape[l_cur_btape + gb + 2u * h];
    let o = b_tape[l_cur_btape + gb + 3u * h];
    let tc = tanh_stable(b_tape[l_cur_btape + bp.tape_c + row * h + j]);
    let dct = carry_c + dh * o * (1.0 - tc * tc);
    let base = row * 4u * h + j;
    dg[l_cur_dg + base] = dct * g * i * (1.0 - i);
    dg[l_cur_dg + base + h] = dct * b_tape[l_cur_btape + bp.tape_cprev + row * h + j] * f * (1.0 - f);
    dg[l_cur_dg + base + 2u * h] = dct * i * (1.0 - g * g);
    dg[l_cur_dg + base + 3u * h] = dh * tc * o * (1.0 - o);
    dstate[dstate_at(s_out, 0u, b, j)] = 0.0;
    dstate[dstate_at(s_out, 1u, b, j)] = dct * f;
}

// (dG_{s+1} · W_hh)[b, j]: dG row r holds 4H gate gradients, gate-major.
fn rec_dot(r: i32, j: u32) -> f32 {
    let l_cur_wt = cur_wt;
    let l_cur_dg = cur_dg;
    if (r < 0) {
        return 0.0;
    }
    let h = bp.hidden;
    let base = u32(r) * 4u * h;
    var acc = 0.0;
    for (var m = 0u; m < h; m++) {
        let d = vec4<f32>(dg[l_cur_dg + base + m], dg[l_cur_dg + base + h + m], dg[l_cur_dg + base + 2u * h + m], dg[l_cur_dg + base + 3u * h + m]);
        acc += dot(d, wt_load(l_cur_wt + m * h + j));
    }
    return acc;
}

@compute @workgroup_size(64, 1)
fn lstm_step_bwd(@builtin(global_invocation_id) gid: vec3<u32>) {
    set_bdir(gid.z);
    cur_bstep = bp.step;
    cur_parity = bp.parity;
    cur_last = bp.last;
    let j = gid.x;
    let b = gid.y;
    if (j >= bp.hidden || b >= bp.batch) {
        return;
    }
    back_finish(b, j, rec_dot(next_row(b, b_lengths[b]), j));
}


// Persistent small-batch backward: one workgroup runs the reverse steps and the final dh0/dc0
// pass in one dispatch (bp.step holds the number of steps), in the order and with the parities
// the host gives the per-step dispatches; storageBarrier() separates the steps.
@compute @workgroup_size(256)
fn lstm_seq_bwd(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    set_bdir(wid.z);
    let steps = bp.step;
    for (var i = 0u; i <= steps; i++) {
        cur_last = select(0u, 1u, i == steps);
        cur_bstep = select(steps - 1u - i, 0u, i == steps);
        cur_parity = i % 2u;
        for (var u = li; u < bp.batch * bp.hidden; u += 256u) {
            let b = u / bp.hidden;
            let j = u - b * bp.hidden;
            back_finish(b, j, rec_dot(next_row(b, b_lengths[b]), j));
        }
        storageBarrier();
    }
}

// The cell half of a split reverse step on CPU adapters (`lstm_cell_bwd`) and its binding `part`
// (right after `dg`) are generated by the shader registry (`split_cell_bwd` in
// crates/gpu/src/shaders.rs): it adds the partial products in slot order and finishes four
// units of a row through back_finish.
