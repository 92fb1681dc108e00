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

struct GatherParams {
    batch: u32,
    kdim: u32,       // G*H
    step: u32,       // the reverse step s whose product is computed (dG of step s + 1)
    last: u32,       // 1: the final pass, which reads dG of step 0
    dg_dir: u32,
    dgh_off: u32,
    blk_stride: u32, // floats per block of the panel buffer (a multiple of 64)
    dir_stride: u32, // floats per direction of the panel buffer
    rows: u32,       // rows per block: 32, or 16, 8, 4 (`rec_panel16`, `rec_panel8`, …)
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

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

struct PanelParams {
    batch: u32,
    cols: u32,   // columns of this chunk of W
    row0: u32,   // the window's first row
    kc: u32,     // k in the window
    k0: u32,     // the window's first k (a row of W)
    k_sub: u32,  // k per z
    ldw: u32,    // floats per row of wp (a multiple of 8)
    w_off: u32,  // the direction's first float in wp (a multiple of 4)
    cols4: u32,  // vec4 per row of part
    slot0: u32,  // the part slot of z = 0
    q_base: u32, // the chunk's first vec4 in a row of part
    chunk4: u32, // vec4 of the chunk's columns
}

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

// Workgroups of 8 (one SIMD vector of llvmpipe on AVX2), as `gemm_panel`.
@compute @workgroup_size(8)
fn rec_panel(@builtin(global_invocation_id) gid: vec3<u32>) {
    // Columns past the end read the last in-bounds block of W and are never stored (every lane
    // stays active: the subgroup variant broadcasts between them).
    let u0 = gid.x * 8u;
    var c0_0 = vec4<f32>(0.0); var c0_1 = vec4<f32>(0.0);
    var c1_0 = vec4<f32>(0.0); var c1_1 = vec4<f32>(0.0);
    var c2_0 = vec4<f32>(0.0); var c2_1 = vec4<f32>(0.0);
    var c3_0 = vec4<f32>(0.0); var c3_1 = vec4<f32>(0.0);
    var c4_0 = vec4<f32>(0.0); var c4_1 = vec4<f32>(0.0);
    var c5_0 = vec4<f32>(0.0); var c5_1 = vec4<f32>(0.0);
    var c6_0 = vec4<f32>(0.0); var c6_1 = vec4<f32>(0.0);
    var c7_0 = vec4<f32>(0.0); var c7_1 = vec4<f32>(0.0);
    var c8_0 = vec4<f32>(0.0); var c8_1 = vec4<f32>(0.0);
    var c9_0 = vec4<f32>(0.0); var c9_1 = vec4<f32>(0.0);
    var c10_0 = vec4<f32>(0.0); var c10_1 = vec4<f32>(0.0);
    var c11_0 = vec4<f32>(0.0); var c11_1 = vec4<f32>(0.0);
    var c12_0 = vec4<f32>(0.0); var c12_1 = vec4<f32>(0.0);
    var c13_0 = vec4<f32>(0.0); var c13_1 = vec4<f32>(0.0);
    var c14_0 = vec4<f32>(0.0); var c14_1 = vec4<f32>(0.0);
    var c15_0 = vec4<f32>(0.0); var c15_1 = vec4<f32>(0.0);
    var c16_0 = vec4<f32>(0.0); var c16_1 = vec4<f32>(0.0);
    var c17_0 = vec4<f32>(0.0); var c17_1 = vec4<f32>(0.0);
    var c18_0 = vec4<f32>(0.0); var c18_1 = vec4<f32>(0.0);
    var c19_0 = vec4<f32>(0.0); var c19_1 = vec4<f32>(0.0);
    var c20_0 = vec4<f32>(0.0); var c20_1 = vec4<f32>(0.0);
    var c21_0 = vec4<f32>(0.0); var c21_1 = vec4<f32>(0.0);
    var c22_0 = vec4<f32>(0.0); var c22_1 = vec4<f32>(0.0);
    var c23_0 = vec4<f32>(0.0); var c23_1 = vec4<f32>(0.0);
    var c24_0 = vec4<f32>(0.0); var c24_1 = vec4<f32>(0.0);
    var c25_0 = vec4<f32>(0.0); var c25_1 = vec4<f32>(0.0);
    var c26_0 = vec4<f32>(0.0); var c26_1 = vec4<f32>(0.0);
    var c27_0 = vec4<f32>(0.0); var c27_1 = vec4<f32>(0.0);
    var c28_0 = vec4<f32>(0.0); var c28_1 = vec4<f32>(0.0);
    var c29_0 = vec4<f32>(0.0); var c29_1 = vec4<f32>(0.0);
    var c30_0 = vec4<f32>(0.0); var c30_1 = vec4<f32>(0.0);
    var c31_0 = vec4<f32>(0.0); var c31_1 = vec4<f32>(0.0);
    let kz0 = min(gid.z * pq.k_sub, pq.kc);
    let kz1 = min(kz0 + pq.k_sub, pq.kc);
    let sw = pq.ldw / 4u;
    var iw = (pq.w_off + (pq.k0 + kz0) * pq.ldw + min(u0, pq.ldw - 8u)) / 4u;
    var ia = kz0 * 8u;
    for (var k = kz0; k < kz1; k++) {
        let a0 = xw[ia + 0u];
        let a1 = xw[ia + 1u];
        let a2 = xw[ia + 2u];
        let a3 = xw[ia + 3u];
        let a4 = xw[ia + 4u];
        let a5 = xw[ia + 5u];
        let a6 = xw[ia + 6u];
        let a7 = xw[ia + 7u];
        let b0 = wp[iw];
        let b1 = wp[iw + 1u];
        c0_0 += a0.x * b0; c0_1 += a0.x * b1;
        c1_0 += a0.y * b0; c1_1 += a0.y * b1;
        c2_0 += a0.z * b0; c2_1 += a0.z * b1;
        c3_0 += a0.w * b0; c3_1 += a0.w * b1;
        c4_0 += a1.x * b0; c4_1 += a1.x * b1;
        c5_0 += a1.y * b0; c5_1 += a1.y * b1;
        c6_0 += a1.z * b0; c6_1 += a1.z * b1;
        c7_0 += a1.w * b0; c7_1 += a1.w * b1;
        c8_0 += a2.x * b0; c8_1 += a2.x * b1;
        c9_0 += a2.y * b0; c9_1 += a2.y * b1;
        c10_0 += a2.z * b0; c10_1 += a2.z * b1;
        c11_0 += a2.w * b0; c11_1 += a2.w * b1;
        c12_0 += a3.x * b0; c12_1 += a3.x * b1;
        c13_0 += a3.y * b0; c13_1 += a3.y * b1;
        c14_0 += a3.z * b0; c14_1 += a3.z * b1;
        c15_0 += a3.w * b0; c15_1 += a3.w * b1;
        c16_0 += a4.x * b0; c16_1 += a4.x * b1;
        c17_0 += a4.y * b0; c17_1 += a4.y * b1;
        c18_0 += a4.z * b0; c18_1 += a4.z * b1;
        c19_0 += a4.w * b0; c19_1 += a4.w * b1;
        c20_0 += a5.x * b0; c20_1 += a5.x * b1;
        c21_0 += a5.y * b0; c21_1 += a5.y * b1;
        c22_0 += a5.z * b0; c22_1 += a5.z * b1;
        c23_0 += a5.w * b0; c23_1 += a5.w * b1;
        c24_0 += a6.x * b0; c24_1 += a6.x * b1;
        c25_0 += a6.y * b0; c25_1 += a6.y * b1;
        c26_0 += a6.z * b0; c26_1 += a6.z * b1;
        c27_0 += a6.w * b0; c27_1 += a6.w * b1;
        c28_0 += a7.x * b0; c28_1 += a7.x * b1;
        c29_0 += a7.y * b0; c29_1 += a7.y * b1;
        c30_0 += a7.z * b0; c30_1 += a7.z * b1;
        c31_0 += a7.w * b0; c31_1 += a7.w * b1;
        ia += 8u;
        iw += sw;
    }
    let q0 = gid.x * 2u;
    let slot = pq.slot0 + gid.z;
    panel_store(pq.row0 + 0u, q0, slot, c0_0, c0_1);
    panel_store(pq.row0 + 1u, q0, slot, c1_0, c1_1);
    panel_store(pq.row0 + 2u, q0, slot, c2_0, c2_1);
    panel_store(pq.row0 + 3u, q0, slot, c3_0, c3_1);
    panel_store(pq.row0 + 4u, q0, slot, c4_0, c4_1);
    panel_store(pq.row0 + 5u, q0, slot, c5_0, c5_1);
    panel_store(pq.row0 + 6u, q0, slot, c6_0, c6_1);
    panel_store(pq.row0 + 7u, q0, slot, c7_0, c7_1);
    panel_store(pq.row0 + 8u, q0, slot, c8_0, c8_1);
    panel_store(pq.row0 + 9u, q0, slot, c9_0, c9_1);
    panel_store(pq.row0 + 10u, q0, slot, c10_0, c10_1);
    panel_store(pq.row0 + 11u, q0, slot, c11_0, c11_1);
    panel_store(pq.row0 + 12u, q0, slot, c12_0, c12_1);
    panel_store(pq.row0 + 13u, q0, slot, c13_0, c13_1);
    panel_store(pq.row0 + 14u, q0, slot, c14_0, c14_1);
    panel_store(pq.row0 + 15u, q0, slot, c15_0, c15_1);
    panel_store(pq.row0 + 16u, q0, slot, c16_0, c16_1);
    panel_store(pq.row0 + 17u, q0, slot, c17_0, c17_1);
    panel_store(pq.row0 + 18u, q0, slot, c18_0, c18_1);
    panel_store(pq.row0 + 19u, q0, slot, c19_0, c19_1);
    panel_store(pq.row0 + 20u, q0, slot, c20_0, c20_1);
    panel_store(pq.row0 + 21u, q0, slot, c21_0, c21_1);
    panel_store(pq.row0 + 22u, q0, slot, c22_0, c22_1);
    panel_store(pq.row0 + 23u, q0, slot, c23_0, c23_1);
    panel_store(pq.row0 + 24u, q0, slot, c24_0, c24_1);
    panel_store(pq.row0 + 25u, q0, slot, c25_0, c25_1);
    panel_store(pq.row0 + 26u, q0, slot, c26_0, c26_1);
    panel_store(pq.row0 + 27u, q0, slot, c27_0, c27_1);
    panel_store(pq.row0 + 28u, q0, slot, c28_0, c28_1);
    panel_store(pq.row0 + 29u, q0, slot, c29_0, c29_1);
    panel_store(pq.row0 + 30u, q0, slot, c30_0, c30_1);
    panel_store(pq.row0 + 31u, q0, slot, c31_0, c31_1);
}
