// Prelude of the cell files (lstm.wgsl, gru.wgsl, rnn.wgsl), placed by the shader registry
// after common.wgsl: the per-direction bookkeeping their kernels share. It reads the fields
// every cell's `StepParams` (p) and `BackParams` (bp) have under the same names: batch, hidden,
// gi_dir, w_dir, tape_dir (forward) and wt_dir, tape_dir, dg_dir (backward). One dispatch runs
// every direction of a layer (z), direction d = z, reversed in time when d is odd.

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

// Backward: this invocation's direction and the offsets of its slices of W_hh, tape, dstate
// and dg.
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

// The reverse step, carry slot and final-pass flag the backward helpers work on: the uniforms
// of a per-step dispatch, or the loop state of the persistent kernel.
var<private> cur_bstep: u32;
var<private> cur_parity: u32;
var<private> cur_last: u32;

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
    if ((cur_bdir % 2u) != 0u) {
        t1 = len - 1u - s1;
    }
    return i32(t1 * bp.batch + b);
}
