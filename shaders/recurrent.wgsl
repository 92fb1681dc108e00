// The recurrent product of the steps on CPU adapters, split from the cell update:
// part[slot][b][c] = sum over the slot's k of X[b, k] * W[k, c]. Forward, X is h_prev and W is
// W_hh^T with each unit's gates side by side (c = 4j + gate; Elman c = j), so that a vec4 of
// part is what finish() takes. Backward, X is dG_next, the recurrent-side gate gradients (G*H
// wide) of the step after this one (in the direction's order), or zero where a sequence has no
// such step, and W is W_hh. The cell kernels (`fwd_split_cell`, `bwd_split_cell`) sum the S slots of a
// row in order and finish the step.
//
// X comes through a uniform window (see shaders/README.md: on llvmpipe a uniform load is one
// vector gather, a storage load a loop over the SIMD lanes). X is K-major per block of 32 rows,
// panel[k][32] (16, 8 or 4 rows for small batches, `rec_panel16` …): forward the steps write h
// that way, backward `rec_gather` lays out dG (zeros for rows with no next step and rows past
// the batch). Each dispatch binds one chunk of k (at most 16384 / rows) of one block as its window
// and reads one chunk of columns of one direction of W, rows padded to `ldw` floats: each chunk
// is its own buffer, so that padding W never takes it past a binding. Each invocation owns 32 rows x
// 8 columns: per k, 8 vec4 of X from the window and 2 vec4 of W from storage for 256
// multiply-adds. z splits the chunk's k further, each z writing its own slot of `part`, so that
// a dispatch has enough workgroups for the cores.
//
// No `if` or loop bound here reads only the parameter block (see shaders/README.md).

{{GatherParams}}

@group(0) @binding(0) var<uniform> gp: GatherParams;
@group(0) @binding(1) var<storage, read> g_lengths: array<u32>;
@group(0) @binding(2) var<storage, read> g_dg: array<f32>;
@group(0) @binding(3) var<storage, read_write> panel: array<f32>;  // [dir][block][k][rows]

// x: k * rows + row within the block, y: block, z: direction.
@compute @workgroup_size(64)
fn rec_gather(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    let k = i / gp.rows;
    if (k >= gp.kdim) {
        return;
    }
    let dir = gid.z;
    let b = gid.y * gp.rows + i % gp.rows;
    var v = 0.0;
    if (b < gp.batch) {
        let len = g_lengths[b];
        let s1 = select(gp.step + 1u, 0u, gp.last != 0u);
        if (s1 < len) {
            let t1 = select(s1, len - 1u - s1, (dir % 2u) != 0u);
            v = g_dg[dir * gp.dg_dir + gp.dgh_off + (t1 * gp.batch + b) * gp.kdim + k];
        }
    }
    panel[dir * gp.dir_stride + gid.y * gp.blk_stride + i] = v;
}

{{PanelParams}}

@group(0) @binding(0) var<uniform> pq: PanelParams;
@group(0) @binding(1) var<uniform> xw: array<vec4<f32>, 4096>;  // window: X[k][rows]
@group(0) @binding(2) var<storage, read> wp: array<vec4<f32>>;   // W: [dir][k][ldw]
@group(0) @binding(3) var<storage, read_write> pout: array<vec4<f32>>;  // part: [slot][B][cols4]

fn panel_store(b: u32, q0: u32, slot: u32, lo: vec4<f32>, hi: vec4<f32>) {
    if (b >= pq.batch || q0 >= pq.chunk4) {
        return;
    }
    let pr = (slot * pq.batch + b) * pq.cols4 + pq.q_base + q0;
    pout[pr] = lo;
    if (q0 + 1u < pq.chunk4) {
        pout[pr + 1u] = hi;
    }
}

{{REC_PANEL}}