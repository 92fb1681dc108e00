// The recurrent product of the reverse steps on CPU adapters, split from the cell update.
//
// part[d][s][b][j] = sum over k in split s of dG_next[b, k] * W_hh[k, j], with dG_next the
// recurrent-side gate gradients (G*H wide) of the step after this one (in the direction's
// order), or a zero row where a sequence has no such step. The cell kernels (`*_cell_bwd`) sum
// the S partial products of a row and finish the step. Each invocation holds a 16-row x 16-unit
// block, so every k loads 32 floats for 256 multiply-adds: on llvmpipe, where each loaded float
// costs about as much as dozens of multiply-adds, that is 2.5x fewer loads per multiply-add
// than the fused 16 x 4 step kernels. Splitting k over z keeps enough invocations to fill the
// cores at small batches.
//
// No `if` or loop bound here reads only the parameter block (see shaders/README.md).

struct RecParams {
    batch: u32,
    hidden: u32,
    kdim: u32,      // G*H: the length of a dG row
    k_split: u32,   // k per split
    step: u32,      // the reverse step s whose product is computed (dG of step s + 1)
    last: u32,      // 1: the final pass, which reads dG of step 0
    splits: u32,    // S
    units4: u32,    // ceil(H / 4): vec4 per row of part
    dg_dir: u32,    // floats per direction of dg
    dgh_off: u32,   // start of the recurrent-side gradients in a direction's dg
    zero_row: u32,  // a zeroed row of dg (within a direction)
    w_dir: u32,     // floats per direction of w
}

@group(0) @binding(0) var<uniform> rp: RecParams;
@group(0) @binding(1) var<storage, read> r_lengths: array<u32>;
@group(0) @binding(2) var<storage, read> r_dg: array<f32>;
@group(0) @binding(3) var<storage, read> r_w: array<f32>;      // [dir][G*H][H], PyTorch layout
@group(0) @binding(4) var<storage, read_write> part: array<vec4<f32>>;  // [dir][S][B][units4]

// Offset in the direction's dg of the dG row that row b reads: step s + 1 (step 0 in the final
// pass) of its sequence, reversed in time in odd directions, or the zero row past its length.
fn next_base(b: u32, dir: u32) -> u32 {
    let len = r_lengths[b];
    let s1 = select(rp.step + 1u, 0u, rp.last != 0u);
    let t1 = select(s1, len - 1u - s1, (dir % 2u) != 0u);
    return select(rp.zero_row, rp.dgh_off + (t1 * rp.batch + b) * rp.kdim, s1 < len);
}

// Workgroups of 8 (one SIMD vector of llvmpipe on AVX2): many small tasks balance the cores.
@compute @workgroup_size(8, 1)
fn rec_product16(@builtin(global_invocation_id) gid: vec3<u32>) {
    let dir = gid.z / rp.splits;
    let u0 = gid.x * 16u;
    let b0 = gid.y * 16u;
    let h = rp.hidden;
    if (u0 >= h || b0 >= rp.batch) {
        return;
    }
    let blast = rp.batch - 1u;
    let ulast = h - 1u;
    let dg0 = dir * rp.dg_dir;
    let w0 = dir * rp.w_dir;
    let base0 = dg0 + next_base(min(b0 + 0u, blast), dir);
    let base1 = dg0 + next_base(min(b0 + 1u, blast), dir);
    let base2 = dg0 + next_base(min(b0 + 2u, blast), dir);
    let base3 = dg0 + next_base(min(b0 + 3u, blast), dir);
    let base4 = dg0 + next_base(min(b0 + 4u, blast), dir);
    let base5 = dg0 + next_base(min(b0 + 5u, blast), dir);
    let base6 = dg0 + next_base(min(b0 + 6u, blast), dir);
    let base7 = dg0 + next_base(min(b0 + 7u, blast), dir);
    let base8 = dg0 + next_base(min(b0 + 8u, blast), dir);
    let base9 = dg0 + next_base(min(b0 + 9u, blast), dir);
    let base10 = dg0 + next_base(min(b0 + 10u, blast), dir);
    let base11 = dg0 + next_base(min(b0 + 11u, blast), dir);
    let base12 = dg0 + next_base(min(b0 + 12u, blast), dir);
    let base13 = dg0 + next_base(min(b0 + 13u, blast), dir);
    let base14 = dg0 + next_base(min(b0 + 14u, blast), dir);
    let base15 = dg0 + next_base(min(b0 + 15u, blast), dir);
    let c0 = w0 + min(u0 + 0u, ulast);
    let c1 = w0 + min(u0 + 1u, ulast);
    let c2 = w0 + min(u0 + 2u, ulast);
    let c3 = w0 + min(u0 + 3u, ulast);
    let c4 = w0 + min(u0 + 4u, ulast);
    let c5 = w0 + min(u0 + 5u, ulast);
    let c6 = w0 + min(u0 + 6u, ulast);
    let c7 = w0 + min(u0 + 7u, ulast);
    let c8 = w0 + min(u0 + 8u, ulast);
    let c9 = w0 + min(u0 + 9u, ulast);
    let c10 = w0 + min(u0 + 10u, ulast);
    let c11 = w0 + min(u0 + 11u, ulast);
    let c12 = w0 + min(u0 + 12u, ulast);
    let c13 = w0 + min(u0 + 13u, ulast);
    let c14 = w0 + min(u0 + 14u, ulast);
    let c15 = w0 + min(u0 + 15u, ulast);
    var a0_0 = 0.0; var a0_1 = 0.0; var a0_2 = 0.0; var a0_3 = 0.0; var a0_4 = 0.0; var a0_5 = 0.0; var a0_6 = 0.0; var a0_7 = 0.0; var a0_8 = 0.0; var a0_9 = 0.0; var a0_10 = 0.0; var a0_11 = 0.0; var a0_12 = 0.0; var a0_13 = 0.0; var a0_14 = 0.0; var a0_15 = 0.0;
    var a1_0 = 0.0; var a1_1 = 0.0; var a1_2 = 0.0; var a1_3 = 0.0; var a1_4 = 0.0; var a1_5 = 0.0; var a1_6 = 0.0; var a1_7 = 0.0; var a1_8 = 0.0; var a1_9 = 0.0; var a1_10 = 0.0; var a1_11 = 0.0; var a1_12 = 0.0; var a1_13 = 0.0; var a1_14 = 0.0; var a1_15 = 0.0;
    var a2_0 = 0.0; var a2_1 = 0.0; var a2_2 = 0.0; var a2_3 = 0.0; var a2_4 = 0.0; var a2_5 = 0.0; var a2_6 = 0.0; var a2_7 = 0.0; var a2_8 = 0.0; var a2_9 = 0.0; var a2_10 = 0.0; var a2_11 = 0.0; var a2_12 = 0.0; var a2_13 = 0.0; var a2_14 = 0.0; var a2_15 = 0.0;
    var a3_0 = 0.0; var a3_1 = 0.0; var a3_2 = 0.0; var a3_3 = 0.0; var a3_4 = 0.0; var a3_5 = 0.0; var a3_6 = 0.0; var a3_7 = 0.0; var a3_8 = 0.0; var a3_9 = 0.0; var a3_10 = 0.0; var a3_11 = 0.0; var a3_12 = 0.0; var a3_13 = 0.0; var a3_14 = 0.0; var a3_15 = 0.0;
    var a4_0 = 0.0; var a4_1 = 0.0; var a4_2 = 0.0; var a4_3 = 0.0; var a4_4 = 0.0; var a4_5 = 0.0; var a4_6 = 0.0; var a4_7 = 0.0; var a4_8 = 0.0; var a4_9 = 0.0; var a4_10 = 0.0; var a4_11 = 0.0; var a4_12 = 0.0; var a4_13 = 0.0; var a4_14 = 0.0; var a4_15 = 0.0;
    var a5_0 = 0.0; var a5_1 = 0.0; var a5_2 = 0.0; var a5_3 = 0.0; var a5_4 = 0.0; var a5_5 = 0.0; var a5_6 = 0.0; var a5_7 = 0.0; var a5_8 = 0.0; var a5_9 = 0.0; var a5_10 = 0.0; var a5_11 = 0.0; var a5_12 = 0.0; var a5_13 = 0.0; var a5_14 = 0.0; var a5_15 = 0.0;
    var a6_0 = 0.0; var a6_1 = 0.0; var a6_2 = 0.0; var a6_3 = 0.0; var a6_4 = 0.0; var a6_5 = 0.0; var a6_6 = 0.0; var a6_7 = 0.0; var a6_8 = 0.0; var a6_9 = 0.0; var a6_10 = 0.0; var a6_11 = 0.0; var a6_12 = 0.0; var a6_13 = 0.0; var a6_14 = 0.0; var a6_15 = 0.0;
    var a7_0 = 0.0; var a7_1 = 0.0; var a7_2 = 0.0; var a7_3 = 0.0; var a7_4 = 0.0; var a7_5 = 0.0; var a7_6 = 0.0; var a7_7 = 0.0; var a7_8 = 0.0; var a7_9 = 0.0; var a7_10 = 0.0; var a7_11 = 0.0; var a7_12 = 0.0; var a7_13 = 0.0; var a7_14 = 0.0; var a7_15 = 0.0;
    var a8_0 = 0.0; var a8_1 = 0.0; var a8_2 = 0.0; var a8_3 = 0.0; var a8_4 = 0.0; var a8_5 = 0.0; var a8_6 = 0.0; var a8_7 = 0.0; var a8_8 = 0.0; var a8_9 = 0.0; var a8_10 = 0.0; var a8_11 = 0.0; var a8_12 = 0.0; var a8_13 = 0.0; var a8_14 = 0.0; var a8_15 = 0.0;
    var a9_0 = 0.0; var a9_1 = 0.0; var a9_2 = 0.0; var a9_3 = 0.0; var a9_4 = 0.0; var a9_5 = 0.0; var a9_6 = 0.0; var a9_7 = 0.0; var a9_8 = 0.0; var a9_9 = 0.0; var a9_10 = 0.0; var a9_11 = 0.0; var a9_12 = 0.0; var a9_13 = 0.0; var a9_14 = 0.0; var a9_15 = 0.0;
    var a10_0 = 0.0; var a10_1 = 0.0; var a10_2 = 0.0; var a10_3 = 0.0; var a10_4 = 0.0; var a10_5 = 0.0; var a10_6 = 0.0; var a10_7 = 0.0; var a10_8 = 0.0; var a10_9 = 0.0; var a10_10 = 0.0; var a10_11 = 0.0; var a10_12 = 0.0; var a10_13 = 0.0; var a10_14 = 0.0; var a10_15 = 0.0;
    var a11_0 = 0.0; var a11_1 = 0.0; var a11_2 = 0.0; var a11_3 = 0.0; var a11_4 = 0.0; var a11_5 = 0.0; var a11_6 = 0.0; var a11_7 = 0.0; var a11_8 = 0.0; var a11_9 = 0.0; var a11_10 = 0.0; var a11_11 = 0.0; var a11_12 = 0.0; var a11_13 = 0.0; var a11_14 = 0.0; var a11_15 = 0.0;
    var a12_0 = 0.0; var a12_1 = 0.0; var a12_2 = 0.0; var a12_3 = 0.0; var a12_4 = 0.0; var a12_5 = 0.0; var a12_6 = 0.0; var a12_7 = 0.0; var a12_8 = 0.0; var a12_9 = 0.0; var a12_10 = 0.0; var a12_11 = 0.0; var a12_12 = 0.0; var a12_13 = 0.0; var a12_14 = 0.0; var a12_15 = 0.0;
    var a13_0 = 0.0; var a13_1 = 0.0; var a13_2 = 0.0; var a13_3 = 0.0; var a13_4 = 0.0; var a13_5 = 0.0; var a13_6 = 0.0; var a13_7 = 0.0; var a13_8 = 0.0; var a13_9 = 0.0; var a13_10 = 0.0; var a13_11 = 0.0; var a13_12 = 0.0; var a13_13 = 0.0; var a13_14 = 0.0; var a13_15 = 0.0;
    var a14_0 = 0.0; var a14_1 = 0.0; var a14_2 = 0.0; var a14_3 = 0.0; var a14_4 = 0.0; var a14_5 = 0.0; var a14_6 = 0.0; var a14_7 = 0.0; var a14_8 = 0.0; var a14_9 = 0.0; var a14_10 = 0.0; var a14_11 = 0.0; var a14_12 = 0.0; var a14_13 = 0.0; var a14_14 = 0.0; var a14_15 = 0.0;
    var a15_0 = 0.0; var a15_1 = 0.0; var a15_2 = 0.0; var a15_3 = 0.0; var a15_4 = 0.0; var a15_5 = 0.0; var a15_6 = 0.0; var a15_7 = 0.0; var a15_8 = 0.0; var a15_9 = 0.0; var a15_10 = 0.0; var a15_11 = 0.0; var a15_12 = 0.0; var a15_13 = 0.0; var a15_14 = 0.0; var a15_15 = 0.0;
    let k0 = (gid.z % rp.splits) * rp.k_split;
    let k1 = min(k0 + rp.k_split, rp.kdim);
    for (var k = k0; k < k1; k++) {
        let x0 = r_dg[base0 + k];
        let x1 = r_dg[base1 + k];
        let x2 = r_dg[base2 + k];
        let x3 = r_dg[base3 + k];
        let x4 = r_dg[base4 + k];
        let x5 = r_dg[base5 + k];
        let x6 = r_dg[base6 + k];
        let x7 = r_dg[base7 + k];
        let x8 = r_dg[base8 + k];
        let x9 = r_dg[base9 + k];
        let x10 = r_dg[base10 + k];
        let x11 = r_dg[base11 + k];
        let x12 = r_dg[base12 + k];
        let x13 = r_dg[base13 + k];
        let x14 = r_dg[base14 + k];
        let x15 = r_dg[base15 + k];
        let wk = k * h;
        let w0 = r_w[c0 + wk];
        let w1 = r_w[c1 + wk];
        let w2 = r_w[c2 + wk];
        let w3 = r_w[c3 + wk];
        let w4 = r_w[c4 + wk];
        let w5 = r_w[c5 + wk];
        let w6 = r_w[c6 + wk];
        let w7 = r_w[c7 + wk];
        let w8 = r_w[c8 + wk];
        let w9 = r_w[c9 + wk];
        let w10 = r_w[c10 + wk];
        let w11 = r_w[c11 + wk];
        let w12 = r_w[c12 + wk];
        let w13 = r_w[c13 + wk];
        let w14 = r_w[c14 + wk];
        let w15 = r_w[c15 + wk];
        a0_0 += x0 * w0; a0_1 += x0 * w1; a0_2 += x0 * w2; a0_3 += x0 * w3; a0_4 += x0 * w4; a0_5 += x0 * w5; a0_6 += x0 * w6; a0_7 += x0 * w7; a0_8 += x0 * w8; a0_9 += x0 * w9; a0_10 += x0 * w10; a0_11 += x0 * w11; a0_12 += x0 * w12; a0_13 += x0 * w13; a0_14 += x0 * w14; a0_15 += x0 * w15;
        a1_0 += x1 * w0; a1_1 += x1 * w1; a1_2 += x1 * w2; a1_3 += x1 * w3; a1_4 += x1 * w4; a1_5 += x1 * w5; a1_6 += x1 * w6; a1_7 += x1 * w7; a1_8 += x1 * w8; a1_9 += x1 * w9; a1_10 += x1 * w10; a1_11 += x1 * w11; a1_12 += x1 * w12; a1_13 += x1 * w13; a1_14 += x1 * w14; a1_15 += x1 * w15;
        a2_0 += x2 * w0; a2_1 += x2 * w1; a2_2 += x2 * w2; a2_3 += x2 * w3; a2_4 += x2 * w4; a2_5 += x2 * w5; a2_6 += x2 * w6; a2_7 += x2 * w7; a2_8 += x2 * w8; a2_9 += x2 * w9; a2_10 += x2 * w10; a2_11 += x2 * w11; a2_12 += x2 * w12; a2_13 += x2 * w13; a2_14 += x2 * w14; a2_15 += x2 * w15;
        a3_0 += x3 * w0; a3_1 += x3 * w1; a3_2 += x3 * w2; a3_3 += x3 * w3; a3_4 += x3 * w4; a3_5 += x3 * w5; a3_6 += x3 * w6; a3_7 += x3 * w7; a3_8 += x3 * w8; a3_9 += x3 * w9; a3_10 += x3 * w10; a3_11 += x3 * w11; a3_12 += x3 * w12; a3_13 += x3 * w13; a3_14 += x3 * w14; a3_15 += x3 * w15;
        a4_0 += x4 * w0; a4_1 += x4 * w1; a4_2 += x4 * w2; a4_3 += x4 * w3; a4_4 += x4 * w4; a4_5 += x4 * w5; a4_6 += x4 * w6; a4_7 += x4 * w7; a4_8 += x4 * w8; a4_9 += x4 * w9; a4_10 += x4 * w10; a4_11 += x4 * w11; a4_12 += x4 * w12; a4_13 += x4 * w13; a4_14 += x4 * w14; a4_15 += x4 * w15;
        a5_0 += x5 * w0; a5_1 += x5 * w1; a5_2 += x5 * w2; a5_3 += x5 * w3; a5_4 += x5 * w4; a5_5 += x5 * w5; a5_6 += x5 * w6; a5_7 += x5 * w7; a5_8 += x5 * w8; a5_9 += x5 * w9; a5_10 += x5 * w10; a5_11 += x5 * w11; a5_12 += x5 * w12; a5_13 += x5 * w13; a5_14 += x5 * w14; a5_15 += x5 * w15;
        a6_0 += x6 * w0; a6_1 += x6 * w1; a6_2 += x6 * w2; a6_3 += x6 * w3; a6_4 += x6 * w4; a6_5 += x6 * w5; a6_6 += x6 * w6; a6_7 += x6 * w7; a6_8 += x6 * w8; a6_9 += x6 * w9; a6_10 += x6 * w10; a6_11 += x6 * w11; a6_12 += x6 * w12; a6_13 += x6 * w13; a6_14 += x6 * w14; a6_15 += x6 * w15;
        a7_0 += x7 * w0; a7_1 += x7 * w1; a7_2 += x7 * w2; a7_3 += x7 * w3; a7_4 += x7 * w4; a7_5 += x7 * w5; a7_6 += x7 * w6; a7_7 += x7 * w7; a7_8 += x7 * w8; a7_9 += x7 * w9; a7_10 += x7 * w10; a7_11 += x7 * w11; a7_12 += x7 * w12; a7_13 += x7 * w13; a7_14 += x7 * w14; a7_15 += x7 * w15;
        a8_0 += x8 * w0; a8_1 += x8 * w1; a8_2 += x8 * w2; a8_3 += x8 * w3; a8_4 += x8 * w4; a8_5 += x8 * w5; a8_6 += x8 * w6; a8_7 += x8 * w7; a8_8 += x8 * w8; a8_9 += x8 * w9; a8_10 += x8 * w10; a8_11 += x8 * w11; a8_12 += x8 * w12; a8_13 += x8 * w13; a8_14 += x8 * w14; a8_15 += x8 * w15;
        a9_0 += x9 * w0; a9_1 += x9 * w1; a9_2 += x9 * w2; a9_3 += x9 * w3; a9_4 += x9 * w4; a9_5 += x9 * w5; a9_6 += x9 * w6; a9_7 += x9 * w7; a9_8 += x9 * w8; a9_9 += x9 * w9; a9_10 += x9 * w10; a9_11 += x9 * w11; a9_12 += x9 * w12; a9_13 += x9 * w13; a9_14 += x9 * w14; a9_15 += x9 * w15;
        a10_0 += x10 * w0; a10_1 += x10 * w1; a10_2 += x10 * w2; a10_3 += x10 * w3; a10_4 += x10 * w4; a10_5 += x10 * w5; a10_6 += x10 * w6; a10_7 += x10 * w7; a10_8 += x10 * w8; a10_9 += x10 * w9; a10_10 += x10 * w10; a10_11 += x10 * w11; a10_12 += x10 * w12; a10_13 += x10 * w13; a10_14 += x10 * w14; a10_15 += x10 * w15;
        a11_0 += x11 * w0; a11_1 += x11 * w1; a11_2 += x11 * w2; a11_3 += x11 * w3; a11_4 += x11 * w4; a11_5 += x11 * w5; a11_6 += x11 * w6; a11_7 += x11 * w7; a11_8 += x11 * w8; a11_9 += x11 * w9; a11_10 += x11 * w10; a11_11 += x11 * w11; a11_12 += x11 * w12; a11_13 += x11 * w13; a11_14 += x11 * w14; a11_15 += x11 * w15;
        a12_0 += x12 * w0; a12_1 += x12 * w1; a12_2 += x12 * w2; a12_3 += x12 * w3; a12_4 += x12 * w4; a12_5 += x12 * w5; a12_6 += x12 * w6; a12_7 += x12 * w7; a12_8 += x12 * w8; a12_9 += x12 * w9; a12_10 += x12 * w10; a12_11 += x12 * w11; a12_12 += x12 * w12; a12_13 += x12 * w13; a12_14 += x12 * w14; a12_15 += x12 * w15;
        a13_0 += x13 * w0; a13_1 += x13 * w1; a13_2 += x13 * w2; a13_3 += x13 * w3; a13_4 += x13 * w4; a13_5 += x13 * w5; a13_6 += x13 * w6; a13_7 += x13 * w7; a13_8 += x13 * w8; a13_9 += x13 * w9; a13_10 += x13 * w10; a13_11 += x13 * w11; a13_12 += x13 * w12; a13_13 += x13 * w13; a13_14 += x13 * w14; a13_15 += x13 * w15;
        a14_0 += x14 * w0; a14_1 += x14 * w1; a14_2 += x14 * w2; a14_3 += x14 * w3; a14_4 += x14 * w4; a14_5 += x14 * w5; a14_6 += x14 * w6; a14_7 += x14 * w7; a14_8 += x14 * w8; a14_9 += x14 * w9; a14_10 += x14 * w10; a14_11 += x14 * w11; a14_12 += x14 * w12; a14_13 += x14 * w13; a14_14 += x14 * w14; a14_15 += x14 * w15;
        a15_0 += x15 * w0; a15_1 += x15 * w1; a15_2 += x15 * w2; a15_3 += x15 * w3; a15_4 += x15 * w4; a15_5 += x15 * w5; a15_6 += x15 * w6; a15_7 += x15 * w7; a15_8 += x15 * w8; a15_9 += x15 * w9; a15_10 += x15 * w10; a15_11 += x15 * w11; a15_12 += x15 * w12; a15_13 += x15 * w13; a15_14 += x15 * w14; a15_15 += x15 * w15;
    }
    // Units past H (the clamped columns) land in the last quad's spare lanes, which the cell
    // kernels ignore.
    let q0 = gid.x * 4u;
    let prow = gid.z * rp.batch;
    if (b0 + 0u < rp.batch) {
        let pr = (prow + b0 + 0u) * rp.units4 + q0;
        part[pr] = vec4<f32>(a0_0, a0_1, a0_2, a0_3);
        if (q0 + 1u < rp.units4) {
            part[pr + 1u] = vec4<f32>(a0_4, a0_5, a0_6, a0_7);
        }
        if (q0 + 2u < rp.units4) {
            part[pr + 2u] = vec4<f32>(a0_8, a0_9, a0_10, a0_11);
        }
        if (q0 + 3u < rp.units4) {
            part[pr + 3u] = vec4<f32>(a0_12, a0_13, a0_14, a0_15);
        }
    }
    if (b0 + 1u < rp.batch) {
        let pr = (prow + b0 + 1u) * rp.units4 + q0;
        part[pr] = vec4<f32>(a1_0, a1_1, a1_2, a1_3);
        if (q0 + 1u < rp.units4) {
            part[pr + 1u] = vec4<f32>(a1_4, a1_5, a1_6, a1_7);
        }
        if (q0 + 2u < rp.units4) {
            part[pr + 2u] = vec4<f32>(a1_8, a1_9, a1_10, a1_11);
        }
        if (q0 + 3u < rp.units4) {
            part[pr + 3u] = vec4<f32>(a1_12, a1_13, a1_14, a1_15);
        }
    }
    if (b0 + 2u < rp.batch) {
        let pr = (prow + b0 + 2u) * rp.units4 + q0;
        part[pr] = vec4<f32>(a2_0, a2_1, a2_2, a2_3);
        if (q0 + 1u < rp.units4) {
            part[pr + 1u] = vec4<f32>(a2_4, a2_5, a2_6, a2_7);
        }
        if (q0 + 2u < rp.units4) {
            part[pr + 2u] = vec4<f32>(a2_8, a2_9, a2_10, a2_11);
        }
        if (q0 + 3u < rp.units4) {
            part[pr + 3u] = vec4<f32>(a2_12, a2_13, a2_14, a2_15);
        }
    }
    if (b0 + 3u < rp.batch) {
        let pr = (prow + b0 + 3u) * rp.units4 + q0;
        part[pr] = vec4<f32>(a3_0, a3_1, a3_2, a3_3);
        if (q0 + 1u < rp.units4) {
            part[pr + 1u] = vec4<f32>(a3_4, a3_5, a3_6, a3_7);
        }
        if (q0 + 2u < rp.units4) {
            part[pr + 2u] = vec4<f32>(a3_8, a3_9, a3_10, a3_11);
        }
        if (q0 + 3u < rp.units4) {
            part[pr + 3u] = vec4<f32>(a3_12, a3_13, a3_14, a3_15);
        }
    }
    if (b0 + 4u < rp.batch) {
        let pr = (prow + b0 + 4u) * rp.units4 + q0;
        part[pr] = vec4<f32>(a4_0, a4_1, a4_2, a4_3);
        if (q0 + 1u < rp.units4) {
            part[pr + 1u] = vec4<f32>(a4_4, a4_5, a4_6, a4_7);
        }
        if (q0 + 2u < rp.units4) {
            part[pr + 2u] = vec4<f32>(a4_8, a4_9, a4_10, a4_11);
        }
        if (q0 + 3u < rp.units4) {
            part[pr + 3u] = vec4<f32>(a4_12, a4_13, a4_14, a4_15);
        }
    }
    if (b0 + 5u < rp.batch) {
        let pr = (prow + b0 + 5u) * rp.units4 + q0;
        part[pr] = vec4<f32>(a5_0, a5_1, a5_2, a5_3);
        if (q0 + 1u < rp.units4) {
            part[pr + 1u] = vec4<f32>(a5_4, a5_5, a5_6, a5_7);
        }
        if (q0 + 2u < rp.units4) {
            part[pr + 2u] = vec4<f32>(a5_8, a5_9, a5_10, a5_11);
        }
        if (q0 + 3u < rp.units4) {
            part[pr + 3u] = vec4<f32>(a5_12, a5_13, a5_14, a5_15);
        }
    }
    if (b0 + 6u < rp.batch) {
        let pr = (prow + b0 + 6u) * rp.units4 + q0;
        part[pr] = vec4<f32>(a6_0, a6_1, a6_2, a6_3);
        if (q0 + 1u < rp.units4) {
            part[pr + 1u] = vec4<f32>(a6_4, a6_5, a6_6, a6_7);
        }
        if (q0 + 2u < rp.units4) {
            part[pr + 2u] = vec4<f32>(a6_8, a6_9, a6_10, a6_11);
        }
        if (q0 + 3u < rp.units4) {
            part[pr + 3u] = vec4<f32>(a6_12, a6_13, a6_14, a6_15);
        }
    }
    if (b0 + 7u < rp.batch) {
        let pr = (prow + b0 + 7u) * rp.units4 + q0;
        part[pr] = vec4<f32>(a7_0, a7_1, a7_2, a7_3);
        if (q0 + 1u < rp.units4) {
            part[pr + 1u] = vec4<f32>(a7_4, a7_5, a7_6, a7_7);
        }
        if (q0 + 2u < rp.units4) {
            part[pr + 2u] = vec4<f32>(a7_8, a7_9, a7_10, a7_11);
        }
        if (q0 + 3u < rp.units4) {
            part[pr + 3u] = vec4<f32>(a7_12, a7_13, a7_14, a7_15);
        }
    }
    if (b0 + 8u < rp.batch) {
        let pr = (prow + b0 + 8u) * rp.units4 + q0;
        part[pr] = vec4<f32>(a8_0, a8_1, a8_2, a8_3);
        if (q0 + 1u < rp.units4) {
            part[pr + 1u] = vec4<f32>(a8_4, a8_5, a8_6, a8_7);
        }
        if (q0 + 2u < rp.units4) {
            part[pr + 2u] = vec4<f32>(a8_8, a8_9, a8_10, a8_11);
        }
        if (q0 + 3u < rp.units4) {
            part[pr + 3u] = vec4<f32>(a8_12, a8_13, a8_14, a8_15);
        }
    }
    if (b0 + 9u < rp.batch) {
        let pr = (prow + b0 + 9u) * rp.units4 + q0;
        part[pr] = vec4<f32>(a9_0, a9_1, a9_2, a9_3);
        if (q0 + 1u < rp.units4) {
            part[pr + 1u] = vec4<f32>(a9_4, a9_5, a9_6, a9_7);
        }
        if (q0 + 2u < rp.units4) {
            part[pr + 2u] = vec4<f32>(a9_8, a9_9, a9_10, a9_11);
        }
        if (q0 + 3u < rp.units4) {
            part[pr + 3u] = vec4<f32>(a9_12, a9_13, a9_14, a9_15);
        }
    }
    if (b0 + 10u < rp.batch) {
        let pr = (prow + b0 + 10u) * rp.units4 + q0;
        part[pr] = vec4<f32>(a10_0, a10_1, a10_2, a10_3);
        if (q0 + 1u < rp.units4) {
            part[pr + 1u] = vec4<f32>(a10_4, a10_5, a10_6, a10_7);
        }
        if (q0 + 2u < rp.units4) {
            part[pr + 2u] = vec4<f32>(a10_8, a10_9, a10_10, a10_11);
        }
        if (q0 + 3u < rp.units4) {
            part[pr + 3u] = vec4<f32>(a10_12, a10_13, a10_14, a10_15);
        }
    }
    if (b0 + 11u < rp.batch) {
        let pr = (prow + b0 + 11u) * rp.units4 + q0;
        part[pr] = vec4<f32>(a11_0, a11_1, a11_2, a11_3);
        if (q0 + 1u < rp.units4) {
            part[pr + 1u] = vec4<f32>(a11_4, a11_5, a11_6, a11_7);
        }
        if (q0 + 2u < rp.units4) {
            part[pr + 2u] = vec4<f32>(a11_8, a11_9, a11_10, a11_11);
        }
        if (q0 + 3u < rp.units4) {
            part[pr + 3u] = vec4<f32>(a11_12, a11_13, a11_14, a11_15);
        }
    }
    if (b0 + 12u < rp.batch) {
        let pr = (prow + b0 + 12u) * rp.units4 + q0;
        part[pr] = vec4<f32>(a12_0, a12_1, a12_2, a12_3);
        if (q0 + 1u < rp.units4) {
            part[pr + 1u] = vec4<f32>(a12_4, a12_5, a12_6, a12_7);
        }
        if (q0 + 2u < rp.units4) {
            part[pr + 2u] = vec4<f32>(a12_8, a12_9, a12_10, a12_11);
        }
        if (q0 + 3u < rp.units4) {
            part[pr + 3u] = vec4<f32>(a12_12, a12_13, a12_14, a12_15);
        }
    }
    if (b0 + 13u < rp.batch) {
        let pr = (prow + b0 + 13u) * rp.units4 + q0;
        part[pr] = vec4<f32>(a13_0, a13_1, a13_2, a13_3);
        if (q0 + 1u < rp.units4) {
            part[pr + 1u] = vec4<f32>(a13_4, a13_5, a13_6, a13_7);
        }
        if (q0 + 2u < rp.units4) {
            part[pr + 2u] = vec4<f32>(a13_8, a13_9, a13_10, a13_11);
        }
        if (q0 + 3u < rp.units4) {
            part[pr + 3u] = vec4<f32>(a13_12, a13_13, a13_14, a13_15);
        }
    }
    if (b0 + 14u < rp.batch) {
        let pr = (prow + b0 + 14u) * rp.units4 + q0;
        part[pr] = vec4<f32>(a14_0, a14_1, a14_2, a14_3);
        if (q0 + 1u < rp.units4) {
            part[pr + 1u] = vec4<f32>(a14_4, a14_5, a14_6, a14_7);
        }
        if (q0 + 2u < rp.units4) {
            part[pr + 2u] = vec4<f32>(a14_8, a14_9, a14_10, a14_11);
        }
        if (q0 + 3u < rp.units4) {
            part[pr + 3u] = vec4<f32>(a14_12, a14_13, a14_14, a14_15);
        }
    }
    if (b0 + 15u < rp.batch) {
        let pr = (prow + b0 + 15u) * rp.units4 + q0;
        part[pr] = vec4<f32>(a15_0, a15_1, a15_2, a15_3);
        if (q0 + 1u < rp.units4) {
            part[pr + 1u] = vec4<f32>(a15_4, a15_5, a15_6, a15_7);
        }
        if (q0 + 2u < rp.units4) {
            part[pr + 2u] = vec4<f32>(a15_8, a15_9, a15_10, a15_11);
        }
        if (q0 + 3u < rp.units4) {
            part[pr + 3u] = vec4<f32>(a15_12, a15_13, a15_14, a15_15);
        }
    }
}
