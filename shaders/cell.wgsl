// The kernels every recurrent cell shares: one template, instantiated per cell by the shader
// registry (`cell_module` in crates/gpu/src/runtime/shaders.rs). A cell's module is
// common.wgsl, then this file with its markers filled: the parameter blocks (generated from
// their Rust definitions), the cell file (lstm.wgsl, gru.wgsl, gru_before.wgsl, rnn.wgsl) and
// the packed W_hh bindings (f32, or f16 unpacked to f32). A cell file holds only what differs
// between cells:
//
//   const GATES: u32      gates per unit (LSTM 4, GRU 3, Elman 1), gate-major in gi, the tape
//                         and dG: row r, gate g, unit j at (r * GATES + g) * H + j
//   const UNITS: u32      units per invocation: 1, where a vec4 of the packed W_hh holds one
//                         unit's gates, or 4, where it holds four units' one gate (Elman)
//   const HALVES: u32     state halves carried between steps: 2 (h, c) or 1 (h)
//   const EXTRAS: u32     the cell's tape rows beyond its gates and h_prev, at p.extra1 and
//                         p.extra2 (0, 1 or 2; LSTM c and c_prev, GRU W_hn h + b_hn, the
//                         reset-before GRU r ⊙ h)
//   const SPLIT_DG: bool  whether the recurrent side's gate gradients differ from the input
//                         side's (GRU: r scales n's), stored apart at bp.dgh_off
//   fn cell_fwd(pre, rec, h_prev, c_prev, j) -> CellFwd   the step of unit j from its input
//                         projection `pre` and recurrent product `rec` (GATES lanes used)
//   fn cell_bwd(dh, carry_c, act, aux) -> CellBwd          its reverse from the tape
//   const PHASES: u32     1, or 2 for a cell whose step needs a second product over a vector
//                         the first phase makes of every unit (the reset-before GRU's r ⊙ h),
//                         see "Two phases" below; for one-phase cells the registry appends
//                         cell_one_phase.wgsl, which says 1 and gives the inert hooks
//   fn cell_fwd_mid(pre, rec, h_prev, j) -> vec3<f32>      a two-phase cell's first phase
//   const MID_GATE: u32   the gate whose W_hh rows its reverse's second product uses
//   fn cell_bwd_mid(d_mid, act, aux) -> CellBwd            its reverse's second phase
//
// Forward: for one timestep the recurrent product h_prev · W_hh^T, the gates and the state
// update in one dispatch (`fwd_step`); the whole sequence in one workgroup for small B·H
// (`fwd_seq`); or, on CPU adapters, the product apart (`rec_panel`, recurrent.wgsl) and the
// cell half here (`fwd_split_cell`). gi holds the hoisted input projection x·W_ih^T + biases for
// every (t, b). State is double-buffered: slot (step % 2) is read, the other written; rows whose
// sequence has ended (step >= length) carry their state over, so the final slot holds each
// sequence's state after its last valid step. One dispatch runs every direction of a layer (z):
// direction d = z, reversed in time when d is odd.
//
// Backward (BPTT), run for steps max_len-1 down to 0, then once more with `last` = 1: at step s,
// row b (time t), dh = carry_h + dy[t] + (dG_{s+1} · W_hh)[j], where dG_{s+1} are the gate
// gradients the previous dispatch wrote for step s+1 (none past the sequence); then the gate
// gradients into dg and the carries for the step before. Rows whose sequence has not started
// yet (s >= length) carry through. The `last` pass turns the carries and dG_0 · W_hh into dh0
// (and dc0).
//
// Two phases (PHASES 2): each step is two passes with a dependency on every unit between them.
// Forward, the first pass multiplies h_prev as above and cell_fwd_mid returns (m, k1, k2): m,
// the second product's operand, goes into the c half of the slot read (such a cell has one
// state half), and k1, k2 into both halves of the slot written, where the second pass reads
// them (into cur_kept, with m) before cell_fwd overwrites h there; the second pass's product
// multiplies m (`fwd_step_mid`, `fwd_split_cell_mid`, or the second loop of `fwd_seq`).
// Reverse, the first pass is the one above, cell_bwd's dc the second product's operand (into
// the c half of the carry slot written); the second pass multiplies it by W_hh's MID_GATE rows,
// transposed, and adds cell_bwd_mid's gate gradients and carry to the first pass's
// (`bwd_step_mid`, `bwd_split_cell_mid`, or the second loop of `bwd_seq`). Two-phase cells
// have UNITS 1.
//
// No `if` on the parameter block alone chooses between large code paths here (see
// shaders/README.md: lavapipe would recompile the kernel per dispatch); the branches and loops
// on the cell's constants are resolved when the module compiles.

{{StepParams}}
{{BackParams}}
{{CELL}}

// What cell_fwd returns: the new state and what the tape keeps of the step.
struct CellFwd {
    h: f32,
    c: f32,           // HALVES == 2
    act: vec4<f32>,   // the activated gates (GATES lanes), taped at p.tape_gates
    aux: vec2<f32>,   // the EXTRAS tape rows, at p.extra1 and p.extra2
}

// What cell_bwd returns: the gate gradients and the carries into the step before.
struct CellBwd {
    dg: vec4<f32>,    // input side (what W_ih and the biases see), GATES lanes
    dgh: vec4<f32>,   // recurrent side, if SPLIT_DG
    dh: f32,          // dh carried to the step before, beside dG · W_hh
    dc: f32,          // dc carried to the step before (HALVES == 2)
}

@group(0) @binding(0) var<uniform> p: StepParams;
@group(0) @binding(1) var<storage, read> gi: array<f32>;
{{W_HH}}
@group(0) @binding(3) var<storage, read> lengths: array<u32>;
@group(0) @binding(4) var<storage, read_write> state: array<f32>;  // [dir][2 slots][h, c][B][H]
@group(0) @binding(5) var<storage, read_write> y: array<f32>;
@group(0) @binding(6) var<storage, read_write> tape: array<f32>;
// Binding 7 is the cell's own (GRU: b_hn); the host binds a stand-in where a cell has none.
// The split steps' cell half: the new h also goes to `hout`, K-major per block of p.win_rows
// rows, the window the next step's product reads; fpart holds that product as p.splits
// partial sums of each accumulator finish() takes.
@group(0) @binding(8) var<storage, read_write> hout: array<f32>;  // [dir][B / rows][H][rows]
@group(0) @binding(9) var<storage, read> fpart: array<vec4<f32>>;  // [dir][S][B][cols]

// The step finish() works on: p.step, or the loop counter of the persistent kernel.
var<private> cur_step: u32;

// A two-phase cell's second pass: what the first pass left for the unit cell_fwd works on,
// (m, k1, k2) of cell_fwd_mid.
var<private> cur_kept: vec3<f32>;

// This invocation's direction and the offsets of its slices (per-direction strides times the
// direction): of the gate rows (gi forward, dg backward), the packed W_hh (or its transpose),
// the state (or dstate: both [dir][2 slots][2 halves][B][H]) and the tape.
var<private> cur_dir: u32;
var<private> cur_gates: u32;
var<private> cur_w: u32;
var<private> cur_state: u32;
var<private> cur_tape: u32;

fn set_dir(z: u32, gates_dir: u32, w_dir: u32, tape_dir: u32, batch: u32, hidden: u32) {
    cur_dir = z;
    cur_gates = z * gates_dir;
    cur_w = z * w_dir;
    cur_state = z * 4u * batch * hidden;
    cur_tape = z * tape_dir;
}

fn set_fwd_dir(z: u32) {
    set_dir(z, p.gi_dir, p.w_dir, p.tape_dir, p.batch, p.hidden);
}

// Accumulators (vec4) per row: a unit's gates, or four units.
fn fwd_cols() -> u32 {
    return (p.hidden + UNITS - 1u) / UNITS;
}

fn state_at(slot: u32, half: u32, b: u32, j: u32) -> u32 {
    let l_cur_state = cur_state;
    return l_cur_state + ((slot * 2u + half) * p.batch + b) * p.hidden + j;
}

// Lane q of an accumulator as the recurrent terms of one unit's gates.
fn unit_rec(acc: vec4<f32>, q: u32) -> vec4<f32> {
    if (UNITS == 1u) {
        return acc;
    }
    return vec4<f32>(acc[q], 0.0, 0.0, 0.0);
}

// The input projection of unit j's gates at `row`. The loops over GATES (a constant) unroll
// when the module compiles.
fn gate_inputs(row: u32, j: u32) -> vec4<f32> {
    let l_cur_gates = cur_gates;
    let h = p.hidden;
    let base = l_cur_gates + row * GATES * h + j;
    var pre = vec4<f32>(0.0);
    for (var g = 0u; g < GATES; g++) {
        pre[g] = gi[base + g * h];
    }
    return pre;
}

fn tape_step(row: u32, j: u32, h_prev: f32, o: CellFwd) {
    let l_cur_tape = cur_tape;
    let h = p.hidden;
    let gb = l_cur_tape + p.tape_gates + row * GATES * h + j;
    for (var g = 0u; g < GATES; g++) {
        tape[gb + g * h] = o.act[g];
    }
    tape[l_cur_tape + p.tape_hprev + row * h + j] = h_prev;
    if (EXTRAS > 0u) {
        tape[l_cur_tape + p.extra1 + row * h + j] = o.aux.x;
    }
    if (EXTRAS > 1u) {
        tape[l_cur_tape + p.extra2 + row * h + j] = o.aux.y;
    }
}

// The time of cur_step for a sequence of length len (reversed in odd directions).
fn step_time(len: u32) -> u32 {
    var t = cur_step;
    if ((cur_dir % 2u) != 0u && cur_step < len) {
        t = len - 1u - cur_step;
    }
    return t;
}

// The step of the units an accumulator covers (unit u, or units 4u..4u+3 that exist) of row b.
fn finish(b: u32, u: u32, acc: vec4<f32>) {
    let s_in = cur_step % 2u;
    let s_out = 1u - s_in;
    let len = lengths[b];
    let t = step_time(len);
    let row = t * p.batch + b;
    for (var q = 0u; q < UNITS; q++) {
        let j = UNITS * u + q;
        if (j < p.hidden) {
            let h_prev = state[state_at(s_in, 0u, b, j)];
            var c_prev = 0.0;
            if (HALVES > 1u) {
                c_prev = state[state_at(s_in, 1u, b, j)];
            }
            if (PHASES > 1u) {
                let m = state[state_at(s_in, 1u, b, j)];
                let k1 = state[state_at(s_out, 0u, b, j)];
                cur_kept = vec3<f32>(m, k1, state[state_at(s_out, 1u, b, j)]);
            }
            if (cur_step >= len) {
                state[state_at(s_out, 0u, b, j)] = h_prev;
                if (HALVES > 1u) {
                    state[state_at(s_out, 1u, b, j)] = c_prev;
                }
            } else {
                let o = cell_fwd(gate_inputs(row, j), unit_rec(acc, q), h_prev, c_prev, j);
                state[state_at(s_out, 0u, b, j)] = o.h;
                if (HALVES > 1u) {
                    state[state_at(s_out, 1u, b, j)] = o.c;
                }
                y[cur_dir * p.hidden + t * p.y_rs_t + b * p.y_rs_b + j] = o.h;
                if (p.save != 0u) {
                    tape_step(row, j, h_prev, o);
                }
            }
        }
    }
}

// The first pass of a two-phase cell's step (PHASES 2) for the units acc covers of row b (see
// "Two phases"). Rows whose sequence has ended get zeros: the second pass carries their state
// over and uses none of it.
fn finish_mid(b: u32, u: u32, acc: vec4<f32>) {
    let s_in = cur_step % 2u;
    let s_out = 1u - s_in;
    let len = lengths[b];
    let row = step_time(len) * p.batch + b;
    for (var q = 0u; q < UNITS; q++) {
        let j = UNITS * u + q;
        if (j < p.hidden) {
            var m = vec3<f32>(0.0);
            if (cur_step < len) {
                let h_prev = state[state_at(s_in, 0u, b, j)];
                m = cell_fwd_mid(gate_inputs(row, j), unit_rec(acc, q), h_prev, j);
            }
            state[state_at(s_in, 1u, b, j)] = m.x;
            state[state_at(s_out, 0u, b, j)] = m.y;
            state[state_at(s_out, 1u, b, j)] = m.z;
        }
    }
}

// The pass of a step whose product read state half `half` (a literal at every call): a
// two-phase cell's first pass, or the step's last.
fn finish_phase(b: u32, u: u32, acc: vec4<f32>, half: u32) {
    if (PHASES > 1u && half == 0u) {
        finish_mid(b, u, acc);
    } else {
        finish(b, u, acc);
    }
}

// One unit (or four) and four batch rows per invocation.
@compute @workgroup_size(64, 1)
fn fwd_step(@builtin(global_invocation_id) gid: vec3<u32>) {
    fwd_step_at(gid, 0u);
}

// A two-phase cell's second pass: the product over the first pass's operand (the c half of the
// slot read).
@compute @workgroup_size(64, 1)
fn fwd_step_mid(@builtin(global_invocation_id) gid: vec3<u32>) {
    fwd_step_at(gid, 1u);
}

// fwd_step's body, its product over state half `half`.
fn fwd_step_at(gid: vec3<u32>, half: u32) {
    set_fwd_dir(gid.z);
    let l_cur_w = cur_w;
    cur_step = p.step;
    let u = gid.x;
    let b0 = gid.y * 4u;
    let h = p.hidden;
    let cols = fwd_cols();
    if (u >= cols || b0 >= p.batch) {
        return;
    }
    // Rows past the batch read row B-1 (in bounds) and are never stored.
    let last = p.batch - 1u;
    let s_in = p.step % 2u;
    let r0 = state_at(s_in, half, b0, 0u);
    let r1 = state_at(s_in, half, min(b0 + 1u, last), 0u);
    let r2 = state_at(s_in, half, min(b0 + 2u, last), 0u);
    let r3 = state_at(s_in, half, min(b0 + 3u, last), 0u);
    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0);
    for (var k = 0u; k < h; k++) {
        let wk = w_load(l_cur_w + k * cols + u);
        a0 += state[r0 + k] * wk;
        a1 += state[r1 + k] * wk;
        a2 += state[r2 + k] * wk;
        a3 += state[r3 + k] * wk;
    }
    finish_phase(b0, u, a0, half);
    if (b0 + 1u < p.batch) { finish_phase(b0 + 1u, u, a1, half); }
    if (b0 + 2u < p.batch) { finish_phase(b0 + 2u, u, a2, half); }
    if (b0 + 3u < p.batch) { finish_phase(b0 + 3u, u, a3, half); }
}

// Persistent small-batch path (B·H small): one workgroup runs every step of the sequence in one
// dispatch, with p.step holding the number of steps. Invocation li owns the (b, u) pairs li,
// li + 256, … of the B·cols; storageBarrier() between steps makes the new state visible to the
// whole workgroup before the next step reads it. Same arithmetic, in the same order, as
// fwd_step. A two-phase cell runs its second pass after a second barrier.
@compute @workgroup_size(256)
fn fwd_seq(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    set_fwd_dir(wid.z);
    let steps = p.step;
    for (var s = 0u; s < steps; s++) {
        cur_step = s;
        fwd_seq_pass(li, 0u);
        storageBarrier();
        if (PHASES > 1u) {
            fwd_seq_pass(li, 1u);
            storageBarrier();
        }
    }
}

// One pass of fwd_seq's step cur_step, its products over state half `half`.
fn fwd_seq_pass(li: u32, half: u32) {
    let l_cur_w = cur_w;
    let h = p.hidden;
    let cols = fwd_cols();
    let s_in = cur_step % 2u;
    for (var v = li; v < p.batch * cols; v += 256u) {
        let b = v / cols;
        let u = v - b * cols;
        let r = state_at(s_in, half, b, 0u);
        var a = vec4<f32>(0.0);
        for (var k = 0u; k < h; k++) {
            a += state[r + k] * w_load(l_cur_w + k * cols + u);
        }
        finish_phase(b, u, a, half);
    }
}

// The slot of a window (K-major blocks of `r` rows padded to 64 floats, one per direction) that
// element j of row b goes to, for `batch` rows of `hidden`.
fn window_at(r: u32, hidden: u32, batch: u32, b: u32, j: u32) -> u32 {
    let blk = (hidden * r + 63u) / 64u * 64u;
    let stride = (batch + r - 1u) / r * blk;
    return cur_dir * stride + (b / r) * blk + j * r + b % r;
}

// The slot of hout that h[b, j] goes to: blocks of p.win_rows rows.
fn hout_at(b: u32, j: u32) -> u32 {
    return window_at(p.win_rows, p.hidden, p.batch, b, j);
}

// The cell half of a split step (CPU adapters): the p.splits partial sums of accumulator u of
// row b added in slot order, so that the result does not depend on scheduling; then finish(),
// and the new h (or the carried one) into hout for the next step's window; a two-phase cell's
// first pass puts its second product's operand there instead (that product's window).
@compute @workgroup_size(64, 1)
fn fwd_split_cell(@builtin(global_invocation_id) gid: vec3<u32>) {
    split_cell_at(gid, 0u);
}

// A two-phase cell's second pass of a split step, after the product over the first's operand.
@compute @workgroup_size(64, 1)
fn fwd_split_cell_mid(@builtin(global_invocation_id) gid: vec3<u32>) {
    split_cell_at(gid, 1u);
}

// fwd_split_cell's body, after a product over state half `half`.
fn split_cell_at(gid: vec3<u32>, half: u32) {
    set_fwd_dir(gid.z);
    cur_step = p.step;
    let u = gid.x;
    let b = gid.y;
    let cols = fwd_cols();
    if (u >= cols || b >= p.batch) {
        return;
    }
    var acc = vec4<f32>(0.0);
    for (var s = 0u; s < p.splits; s++) {
        acc += fpart[((gid.z * p.splits + s) * p.batch + b) * cols + u];
    }
    finish_phase(b, u, acc, half);
    let first = PHASES > 1u && half == 0u;
    for (var q = 0u; q < UNITS; q++) {
        let j = UNITS * u + q;
        if (j < p.hidden) {
            let h_at = state_at(1u - cur_step % 2u, 0u, b, j);
            let m_at = state_at(cur_step % 2u, 1u, b, j);
            hout[hout_at(b, j)] = state[select(h_at, m_at, first)];
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Backward. The packed W_hh is transposed: wt[m * cols + u] holds W_hh[gate rows of unit m,
// column u] (UNITS 1: unit u's gates; UNITS 4: units 4u..4u+3 of the one gate).

@group(0) @binding(0) var<uniform> bp: BackParams;
{{WT_HH}}
@group(0) @binding(2) var<storage, read> b_lengths: array<u32>;
@group(0) @binding(3) var<storage, read> d_out: array<f32>;
@group(0) @binding(4) var<storage, read> b_tape: array<f32>;
@group(0) @binding(5) var<storage, read_write> dstate: array<f32>;  // [dir][2 slots][dh, dc][B][H]
@group(0) @binding(6) var<storage, read_write> dg: array<f32>;      // [dGi | dGh if SPLIT_DG]
// The split reverse steps: rec_panel's partial products, bp.splits per four units of a row.
@group(0) @binding(7) var<storage, read> part: array<vec4<f32>>;    // [dir][S][B][ceil(H / 4)]

fn set_bwd_dir(z: u32) {
    set_dir(z, bp.dg_dir, bp.wt_dir, bp.tape_dir, bp.batch, bp.hidden);
}

// A per-step reverse dispatch: its direction, and the step, carry slot and final-pass flag of
// its uniforms.
fn set_bwd_step(z: u32) {
    set_bwd_dir(z);
    cur_bstep = bp.step;
    cur_parity = bp.parity;
    cur_last = bp.last;
}

// The reverse step, carry slot and final-pass flag the backward helpers work on: the uniforms
// of a per-step dispatch, or the loop state of the persistent kernel.
var<private> cur_bstep: u32;
var<private> cur_parity: u32;
var<private> cur_last: u32;

fn bwd_cols() -> u32 {
    return (bp.hidden + UNITS - 1u) / UNITS;
}

fn dstate_at(slot: u32, half: u32, b: u32, j: u32) -> u32 {
    let l_cur_state = cur_state;
    return l_cur_state + ((slot * 2u + half) * bp.batch + b) * bp.hidden + j;
}

// Row (t * B + b) of the step after cur_bstep in this direction's order (step 0 in the final
// pass), or -1 if the sequence of length len has no such step.
fn next_row(b: u32, len: u32) -> i32 {
    var s1 = cur_bstep + 1u;
    if (cur_last != 0u) {
        s1 = 0u;
    }
    if (s1 >= len) {
        return -1;
    }
    var t1 = s1;
    if ((cur_dir % 2u) != 0u) {
        t1 = len - 1u - s1;
    }
    return i32(t1 * bp.batch + b);
}

// (dG_{r} · W_hh) for accumulator u: lane 0 for UNITS 1, lanes 0..3 (units 4u..4u+3) for
// UNITS 4; zero if r < 0 (no next step).
fn rec_dot(r: i32, u: u32) -> vec4<f32> {
    let l_cur_w = cur_w;
    let l_cur_gates = cur_gates;
    let h = bp.hidden;
    var acc = vec4<f32>(0.0);
    if (r < 0) {
        return acc;
    }
    if (UNITS > 1u) {
        let cols = bwd_cols();
        let base = u32(r) * h;
        for (var m = 0u; m < h; m++) {
            acc += dg[l_cur_gates + base + m] * wt_load(l_cur_w + m * cols + u);
        }
        return acc;
    }
    // One vec4 of dG per m, built in one constructor: the zero lane of a three-gate cell stays
    // visible to the compiler, as W_hh's padding lane is.
    let i0 = l_cur_gates + bp.dgh_off + u32(r) * GATES * h;
    var s = 0.0;
    if (GATES > 3u) {
        for (var m = 0u; m < h; m++) {
            let i = i0 + m;
            let d = vec4<f32>(dg[i], dg[i + h], dg[i + 2u * h], dg[i + 3u * h]);
            s += dot(d, wt_load(l_cur_w + m * h + u));
        }
    } else {
        for (var m = 0u; m < h; m++) {
            let i = i0 + m;
            let d = vec4<f32>(dg[i], dg[i + h], dg[i + 2u * h], 0.0);
            s += dot(d, wt_load(l_cur_w + m * h + u));
        }
    }
    acc.x = s;
    return acc;
}

// The tape of unit j at `row`: the activated gates (GATES lanes), then h_prev and the EXTRAS
// rows.
fn tape_gates(row: u32, j: u32) -> vec4<f32> {
    let l_cur_tape = cur_tape;
    let h = bp.hidden;
    let gb = l_cur_tape + bp.tape_gates + row * GATES * h + j;
    var act = vec4<f32>(0.0);
    for (var g = 0u; g < GATES; g++) {
        act[g] = b_tape[gb + g * h];
    }
    return act;
}

fn tape_aux(row: u32, j: u32) -> vec3<f32> {
    let l_cur_tape = cur_tape;
    let at = row * bp.hidden + j;
    var aux = vec3<f32>(b_tape[l_cur_tape + bp.tape_hprev + at], 0.0, 0.0);
    if (EXTRAS > 0u) {
        aux.y = b_tape[l_cur_tape + bp.extra1 + at];
    }
    if (EXTRAS > 1u) {
        aux.z = b_tape[l_cur_tape + bp.extra2 + at];
    }
    return aux;
}

fn store_dg(row: u32, j: u32, o: CellBwd) {
    let l_cur_gates = cur_gates;
    let h = bp.hidden;
    let base = l_cur_gates + row * GATES * h + j;
    for (var g = 0u; g < GATES; g++) {
        dg[base + g * h] = o.dg[g];
        if (SPLIT_DG) {
            dg[base + bp.dgh_off + g * h] = o.dgh[g];
        }
    }
}

// The time of cur_bstep for a sequence of length len (reversed in odd directions).
fn back_time(len: u32) -> u32 {
    var t = cur_bstep;
    if ((cur_dir % 2u) != 0u && cur_bstep < len) {
        t = len - 1u - cur_bstep;
    }
    return t;
}

// The reverse step of units j0..j0+n-1 (those under H) of row b, rec[q] the recurrent term of
// unit j0 + q. A two-phase cell's first pass: cell_bwd's dc, the second product's operand, goes
// into the c half of the carry slot written.
fn back_finish(b: u32, j0: u32, n: u32, rec: vec4<f32>) {
    let h = bp.hidden;
    let len = b_lengths[b];
    let s_in = cur_parity;
    let s_out = 1u - s_in;
    let t = back_time(len);
    let row = t * bp.batch + b;
    for (var q = 0u; q < n; q++) {
        let j = j0 + q;
        if (j < h) {
            let carry_h = dstate[dstate_at(s_in, 0u, b, j)];
            var carry_c = 0.0;
            if (HALVES > 1u) {
                carry_c = dstate[dstate_at(s_in, 1u, b, j)];
            }
            if (cur_last != 0u || cur_bstep >= len) {
                // The final pass adds dG_0 · W_hh into dh0; a step before the sequence starts
                // (rec is then 0) carries through.
                var dh = carry_h;
                if (cur_last != 0u) {
                    dh = carry_h + rec[q];
                }
                dstate[dstate_at(s_out, 0u, b, j)] = dh;
                if (HALVES > 1u || PHASES > 1u) {
                    dstate[dstate_at(s_out, 1u, b, j)] = carry_c;
                }
            } else {
                let dh = carry_h + rec[q] + d_out[cur_dir * h + t * bp.d_rs_t + b * bp.d_rs_b + j];
                let o = cell_bwd(dh, carry_c, tape_gates(row, j), tape_aux(row, j));
                store_dg(row, j, o);
                dstate[dstate_at(s_out, 0u, b, j)] = o.dh;
                if (HALVES > 1u || PHASES > 1u) {
                    dstate[dstate_at(s_out, 1u, b, j)] = o.dc;
                }
            }
        }
    }
}

// A two-phase cell's second reverse pass for units j0..j0+n-1 of row b, d_mid[q] the second
// product's term of unit j0 + q: cell_bwd_mid's gate gradients added to the first pass's, its
// carry to the carry written. Nothing for rows outside their sequence, or in the final pass.
fn back_finish_mid(b: u32, j0: u32, n: u32, d_mid: vec4<f32>) {
    let h = bp.hidden;
    let len = b_lengths[b];
    if (cur_last != 0u || cur_bstep >= len) {
        return;
    }
    let s_out = 1u - cur_parity;
    let row = back_time(len) * bp.batch + b;
    for (var q = 0u; q < n; q++) {
        let j = j0 + q;
        if (j < h) {
            let o = cell_bwd_mid(d_mid[q], tape_gates(row, j), tape_aux(row, j));
            let base = cur_gates + row * GATES * h + j;
            for (var g = 0u; g < GATES; g++) {
                dg[base + g * h] += o.dg[g];
                if (SPLIT_DG) {
                    dg[base + bp.dgh_off + g * h] += o.dgh[g];
                }
            }
            let at = dstate_at(s_out, 0u, b, j);
            dstate[at] += o.dh;
        }
    }
}

// The second reverse product of unit u (UNITS 1) of row b: the first pass's operands of every
// unit of the row (the c half of the carry slot written) times W_hh's MID_GATE rows.
fn mid_dot(b: u32, u: u32) -> f32 {
    let l_cur_w = cur_w;
    let cols = bwd_cols();
    let r = dstate_at(1u - cur_parity, 1u, b, 0u);
    var s = 0.0;
    for (var m = 0u; m < bp.hidden; m++) {
        s += dstate[r + m] * wt_load(l_cur_w + m * cols + u)[MID_GATE];
    }
    return s;
}

// The second reverse pass of unit u of row b, its product included where the row needs it.
fn back_step_mid(b: u32, u: u32) {
    if (cur_last != 0u || cur_bstep >= b_lengths[b]) {
        return;
    }
    back_finish_mid(b, u, 1u, vec4<f32>(mid_dot(b, u), 0.0, 0.0, 0.0));
}

// One row and one accumulator (a unit, or four) per invocation: the recurrent product, then
// the cell's reverse.
@compute @workgroup_size(64, 1)
fn bwd_step(@builtin(global_invocation_id) gid: vec3<u32>) {
    set_bwd_step(gid.z);
    let u = gid.x;
    let b = gid.y;
    if (u >= bwd_cols() || b >= bp.batch) {
        return;
    }
    back_finish(b, UNITS * u, UNITS, rec_dot(next_row(b, b_lengths[b]), u));
}

// A two-phase cell's second reverse pass, one row and one unit per invocation, after bwd_step.
@compute @workgroup_size(64, 1)
fn bwd_step_mid(@builtin(global_invocation_id) gid: vec3<u32>) {
    set_bwd_step(gid.z);
    let u = gid.x;
    let b = gid.y;
    if (u >= bwd_cols() || b >= bp.batch) {
        return;
    }
    back_step_mid(b, u);
}

// Persistent small-batch backward: one workgroup runs the reverse steps and the final pass in
// one dispatch (bp.step holds the number of steps), in the order and with the parities the
// host gives the per-step dispatches; storageBarrier() separates the steps (and a two-phase
// cell's passes).
@compute @workgroup_size(256)
fn bwd_seq(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    set_bwd_dir(wid.z);
    let cols = bwd_cols();
    let steps = bp.step;
    for (var i = 0u; i <= steps; i++) {
        cur_last = select(0u, 1u, i == steps);
        cur_bstep = select(steps - 1u - i, 0u, i == steps);
        cur_parity = i % 2u;
        for (var v = li; v < bp.batch * cols; v += 256u) {
            let b = v / cols;
            let u = v - b * cols;
            back_finish(b, UNITS * u, UNITS, rec_dot(next_row(b, b_lengths[b]), u));
        }
        storageBarrier();
        if (PHASES > 1u) {
            for (var v = li; v < bp.batch * cols; v += 256u) {
                let b = v / cols;
                back_step_mid(b, v - b * cols);
            }
            storageBarrier();
        }
    }
}

// The bp.splits partial products of units 4q..4q+3 of row b in direction z, added in slot
// order (cols: vec4 per row).
fn split_part(z: u32, b: u32, q: u32, cols: u32) -> vec4<f32> {
    var acc = vec4<f32>(0.0);
    for (var s = 0u; s < bp.splits; s++) {
        acc += part[((z * bp.splits + s) * bp.batch + b) * cols + q];
    }
    return acc;
}

// The cell half of a split reverse step (CPU adapters), one row and four units per invocation:
// the bp.splits partial products added in slot order, then the reverse of the four units.
@compute @workgroup_size(64, 1)
fn bwd_split_cell(@builtin(global_invocation_id) gid: vec3<u32>) {
    set_bwd_step(gid.z);
    let q = gid.x;
    let b = gid.y;
    let cols = (bp.hidden + 3u) / 4u;
    if (q >= cols || b >= bp.batch) {
        return;
    }
    back_finish(b, 4u * q, 4u, split_part(gid.z, b, q, cols));
}

// A two-phase cell's split reverse steps: the window of the second product's operand, blocks
// of bp.win_rows rows as the forward's h windows.
@group(0) @binding(8) var<storage, read_write> mid_win: array<f32>;  // [dir][B / rows][H][rows]

// A two-phase cell's first pass of a split reverse step: bwd_split_cell, then the operand of
// each of its units into the window of the second product.
@compute @workgroup_size(64, 1)
fn bwd_split_cell_a(@builtin(global_invocation_id) gid: vec3<u32>) {
    set_bwd_step(gid.z);
    let q = gid.x;
    let b = gid.y;
    let cols = (bp.hidden + 3u) / 4u;
    if (q >= cols || b >= bp.batch) {
        return;
    }
    back_finish(b, 4u * q, 4u, split_part(gid.z, b, q, cols));
    for (var k = 0u; k < 4u; k++) {
        let j = 4u * q + k;
        if (j < bp.hidden) {
            let at = window_at(bp.win_rows, bp.hidden, bp.batch, b, j);
            mid_win[at] = dstate[dstate_at(1u - cur_parity, 1u, b, j)];
        }
    }
}

// A two-phase cell's second pass of a split reverse step, after the product over the window:
// its bp.splits partial products (of that product's plan) in slot order, then the pass.
@compute @workgroup_size(64, 1)
fn bwd_split_cell_mid(@builtin(global_invocation_id) gid: vec3<u32>) {
    set_bwd_step(gid.z);
    let q = gid.x;
    let b = gid.y;
    let cols = (bp.hidden + 3u) / 4u;
    if (q >= cols || b >= bp.batch) {
        return;
    }
    back_finish_mid(b, 4u * q, 4u, split_part(gid.z, b, q, cols));
}
