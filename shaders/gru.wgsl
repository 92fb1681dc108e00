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
    win_rows: u32,    // rows per block of the h windows of CPU adapters (32; 16, 8, 4 for small B)
    y_rs_t: u32,
    y_rs_b: u32,
    splits: u32,      // partial products per accumulator in `fpart` (`*_cell_fwd`)
    save: u32,
    tape_gates: u32,  // activated r, z, n [T*B, 3H]
    tape_hprev: u32,  // h before the step [T*B, H]
    tape_hn: u32,     // W_hn h + b_hn [T*B, H]
    _pad: u32,
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
@group(0) @binding(3) var<storage, read> b_hn: array<f32>;
@group(0) @binding(4) var<storage, read> lengths: array<u32>;
@group(0) @binding(5) var<storage, read_write> state: array<f32>;
@group(0) @binding(6) var<storage, read_write> y: array<f32>;
@group(0) @binding(7) var<storage, read_write> tape: array<f32>;

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

fn finish(b: u32, j: u32, acc: vec4<f32>) {
    let l_cur_gi = cur_gi;
    let l_cur_tape = cur_tape;
    let h = p.hidden;
    let s_in = cur_step % 2u;
    let s_out = 1u - s_in;
    let h_prev = state[state_at(s_in, b, j)];
    let len = lengths[b];
    if (cur_step >= len) {
        state[state_at(s_out, b, j)] = h_prev;
        return;
    }
    var t = cur_step;
    if ((cur_dir % 2u) != 0u) {
        t = len - 1u - cur_step;
    }
    let row = t * p.batch + b;
    let base = row * 3u * h + j;
    let r = sigmoid(gi[l_cur_gi + base] + acc.x);
    let z = sigmoid(gi[l_cur_gi + base + h] + acc.y);
    let hn = acc.z + b_hn[cur_dir * p.hidden + j];
    let n = tanh_stable(gi[l_cur_gi + base + 2u * h] + r * hn);
    let h_new = (1.0 - z) * n + z * h_prev;
    state[state_at(s_out, b, j)] = h_new;
    y[cur_dir * p.hidden + t * p.y_rs_t + b * p.y_rs_b + j] = h_new;
    if (p.save != 0u) {
        let gb = p.tape_gates + base;
        tape[l_cur_tape + gb] = r;
        tape[l_cur_tape + gb + h] = z;
        tape[l_cur_tape + gb + 2u * h] = n;
        tape[l_cur_tape + p.tape_hprev + row * h + j] = h_prev;
        tape[l_cur_tape + p.tape_hn + row * h + j] = hn;
    }
}

@compute @workgroup_size(64, 1)
fn gru_step(@builtin(global_invocation_id) gid: vec3<u32>) {
    set_dir(gid.z);
    let l_cur_w = cur_w;
    cur_step = p.step;
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

// The cell half of a split step on CPU adapters (`gru_cell_fwd`), with its bindings `hout` and
// `fpart` (right after `tape`) and `hout_at`, is generated by the shader registry
// (`split_cell_fwd` in crates/gpu/src/shaders.rs). Only `finish_w` is the cell's own:
// finish(), then the new h (or the carried one) into hout for the next step's window.
fn finish_w(b: u32, j: u32, acc: vec4<f32>) {
    finish(b, j, acc);
    hout[hout_at(b, j)] = state[state_at(1u - cur_step % 2u, b, j)];
}

// Persistent small-batch path: one workgroup, every step in one dispatch (see lstm_seq).
@compute @workgroup_size(256)
fn gru_seq(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) {
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
            let r = state_at(s_in, b, 0u);
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
// Backward step, scheduled as in lstm.wgsl. dh = carry_h + dy[t] + (dGh_{s+1} · W_hh)[j], where
// dGh differs from dGi (what W_ih sees) only in the n gate, which the reset gate scales:
//   dn = dh (1 - z)(1 - n^2), dr = dn hn r(1 - r), dz = dh (h_prev - n) z(1 - z),
//   dGi = (dr, dz, dn), dGh = (dr, dz, dn r), carry_h = dh z (the direct path through z).
// W_hh is packed transposed: wt[m * H + j] = (W_r[m, j], W_z[m, j], W_n[m, j], 0).

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
    tape_hn: u32,
    _unused: u32,
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
@group(0) @binding(6) var<storage, read_write> dg: array<f32>;  // [dGi: T*B, 3H | dGh: T*B, 3H]

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

fn rec_dot(r: i32, j: u32) -> f32 {
    let l_cur_wt = cur_wt;
    let l_cur_dg = cur_dg;
    if (r < 0) {
        return 0.0;
    }
    let h = bp.hidden;
    let base = bp.dgh_off + u32(r) * 3u * h;
    var acc = 0.0;
    for (var m = 0u; m < h; m++) {
        let d = vec4<f32>(dg[l_cur_dg + base + m], dg[l_cur_dg + base + h + m], dg[l_cur_dg + base + 2u * h + m], 0.0);
        acc += dot(d, wt_load(l_cur_wt + m * h + j));
    }
    return acc;
}

fn back_finish(b: u32, j: u32, rec: f32) {
    let l_cur_dg = cur_dg;
    let l_cur_btape = cur_btape;
    let h = bp.hidden;
    let len = b_lengths[b];
    let s_in = cur_parity;
    let s_out = 1u - s_in;
    let carry_h = dstate[dstate_at(s_in, b, j)];
    if (cur_last != 0u) {
        dstate[dstate_at(s_out, b, j)] = carry_h + rec;
        return;
    }
    if (cur_bstep >= len) {
        dstate[dstate_at(s_out, b, j)] = carry_h;
        return;
    }
    var t = cur_bstep;
    if ((cur_bdir % 2u) != 0u) {
        t = len - 1u - cur_bstep;
    }
    let row = t * bp.batch + b;
    let dh = carry_h + rec + d_out[cur_bdir * bp.hidden + t * bp.d_rs_t + b * bp.d_rs_b + j];
    let gb = bp.tape_gates + row * 3u * h + j;
    let r = b_tape[l_cur_btape + gb];
    let z = b_tape[l_cur_btape + gb + h];
    let n = b_tape[l_cur_btape + gb + 2u * h];
    let hp = b_tape[l_cur_btape + bp.tape_hprev + row * h + j];
    let hn = b_tape[l_cur_btape + bp.tape_hn + row * h + j];
    let dn = dh * (1.0 - z) * (1.0 - n * n);
    let dr = dn * hn * r * (1.0 - r);
    let dz = dh * (hp - n) * z * (1.0 - z);
    let base = row * 3u * h + j;
    dg[l_cur_dg + base] = dr;
    dg[l_cur_dg + base + h] = dz;
    dg[l_cur_dg + base + 2u * h] = dn;
    dg[l_cur_dg + bp.dgh_off + base] = dr;
    dg[l_cur_dg + bp.dgh_off + base + h] = dz;
    dg[l_cur_dg + bp.dgh_off + base + 2u * h] = dn * r;
    dstate[dstate_at(s_out, b, j)] = dh * z;
}

@compute @workgroup_size(64, 1)
fn gru_step_bwd(@builtin(global_invocation_id) gid: vec3<u32>) {
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
fn gru_seq_bwd(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) {
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

// The cell half of a split reverse step on CPU adapters (`gru_cell_bwd`) and its binding `part`
// (right after `dg`) are generated by the shader registry (`split_cell_bwd` in
// crates/gpu/src/shaders.rs): it adds the partial products in slot order and finishes four
// units of a row through back_finish.
