// Matrix products over K-major operands.
//
// `gemm_kmajor` computes C[m, n] (+)= sum_k At[k, m] * Bt[k, n] (+ bias[n]) with both operands
// stored K-major and padded so that their row lengths (lda, ldb) are multiples of 8: each
// invocation owns an 8x8 block of C and, per k, reads two vec4 of At and two of Bt and does an
// 8x8 outer product. No bounds checks run inside the k loop; only the store is guarded.
// `pack_kmajor` produces such operands from any strided matrix, zero-filling the padding, either
// plainly K-major or in panels of 64 rows (see `gemm_panel`); `pack_kmajor_masked` also zeroes
// the padded steps of sequences (RNN lengths, masked attention keys).

struct PackParams {
    // Logical matrix A(m, k) = src[src_off + (m / m_inner) * s_outer + (m % m_inner) * s_inner + k * s_k]
    rows: u32,      // M
    cols: u32,      // K
    ld: u32,        // padded row length of dst (multiple of 8, >= M)
    m_inner: u32,
    s_inner: u32,
    s_outer: u32,
    s_k: u32,
    src_off: u32,
    pr: u32,        // rows per panel: dst[(m / pr) * cols * pr + k * pr + m % pr]; pr = ld is
                    // the plain layout dst[k * ld + m]
    dst_off: u32,   // added to every dst index
    // `pack_kmajor_masked` only: the sequence row q (m, or k when mask_on_k) is step t of
    // sequence s, q = t * seq_n + s (seq_outer = 0) or q = s * seq_n + t (seq_outer = 1), and
    // holds data only where t < pack_len[s].
    mask_on_k: u32,
    seq_n: u32,
    seq_outer: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> pp: PackParams;
@group(0) @binding(1) var<storage, read> pack_src: array<f32>;
@group(0) @binding(2) var<storage, read_write> pack_dst: array<f32>;
@group(0) @binding(3) var<storage, read> pack_len: array<u32>;

fn pack_at(m: u32, k: u32) -> f32 {
    return pack_src[pp.src_off + (m / pp.m_inner) * pp.s_outer + (m % pp.m_inner) * pp.s_inner + k * pp.s_k];
}

fn pack_store(m: u32, k: u32, v: f32) {
    pack_dst[pp.dst_off + (m / pp.pr) * pp.cols * pp.pr + k * pp.pr + m % pp.pr] = v;
}

// dst[k * ld + m] = A(m, k) for m < M, 0 for M <= m < ld (or the panel layout, see `pr`).
@compute @workgroup_size(64, 4)
fn pack_kmajor(@builtin(global_invocation_id) gid: vec3<u32>) {
    let m = gid.x;
    let k = gid.y + gid.z * 65535u * 4u;
    if (m >= pp.ld || k >= pp.cols) {
        return;
    }
    var v = 0.0;
    if (m < pp.rows) {
        v = pack_at(m, k);
    }
    pack_store(m, k, v);
}

// pack_kmajor writing 0 for the padded steps of sequences (see PackParams) without reading
// them: whatever a caller left there (NaN, Inf) never reaches a product, where 0 * NaN would
// spread it over the whole result.
@compute @workgroup_size(64, 4)
fn pack_kmajor_masked(@builtin(global_invocation_id) gid: vec3<u32>) {
    let m = gid.x;
    let k = gid.y + gid.z * 65535u * 4u;
    if (m >= pp.ld || k >= pp.cols) {
        return;
    }
    let q = select(m, k, pp.mask_on_k != 0u);
    let n = max(pp.seq_n, 1u);
    let t = select(q / n, q % n, pp.seq_outer != 0u);
    let s = select(q % n, q / n, pp.seq_outer != 0u);
    let len = pack_len[min(s, arrayLength(&pack_len) - 1u)];
    var v = 0.0;
    if (m < pp.rows && t < len) {
        v = pack_at(m, k);
    }
    pack_store(m, k, v);
}

struct GemmParams {
    m: u32,
    n: u32,
    k: u32,
    lda: u32,        // row length of At in floats (multiple of 8)
    ldb: u32,        // row length of Bt in floats (multiple of 8)
    c_rs: u32,       // C[m, n] is at c_off + m * c_rs + n * c_cs (see c_inner)
    c_cs: u32,
    c_off: u32,
    accumulate: u32, // 1: C += product, 0: C = product
    has_bias: u32,   // 1: add bias[n]
    c_inner: u32,    // rows decompose as m = m1 * c_inner + m0: C[m, n] at
    c_rs_outer: u32, //   c_off + m1 * c_rs_outer + m0 * c_rs + n * c_cs
    // `gemm_panel` only:
    m0: u32,         // the first row of the window's first panel
    k0: u32,         // the first k of this chunk (a row of Bt)
    a_stride: u32,   // vec4 between the window's panels
    _pad: u32,
}

@group(0) @binding(0) var<uniform> gp: GemmParams;
@group(0) @binding(1) var<storage, read> at: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> bt: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> gemm_bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

fn store_row(m: u32, n0: u32, lo: vec4<f32>, hi: vec4<f32>) {
    if (m >= gp.m) {
        return;
    }
    let vals = array<f32, 8>(lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w);
    for (var j = 0u; j < 8u; j++) {
        let n = n0 + j;
        if (n < gp.n) {
            var v = vals[j];
            if (gp.has_bias != 0u) {
                v += gemm_bias[n];
            }
            let idx = gp.c_off + (m / gp.c_inner) * gp.c_rs_outer + (m % gp.c_inner) * gp.c_rs + n * gp.c_cs;
            if (gp.accumulate != 0u) {
                v += c[idx];
            }
            c[idx] = v;
        }
    }
}

@compute @workgroup_size(8, 8)
fn gemm_kmajor(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n0 = gid.x * 8u;
    let m0 = gid.y * 8u;
    if (m0 >= gp.m || n0 >= gp.n) {
        return;
    }
    var c00 = vec4<f32>(0.0); var c01 = vec4<f32>(0.0);
    var c10 = vec4<f32>(0.0); var c11 = vec4<f32>(0.0);
    var c20 = vec4<f32>(0.0); var c21 = vec4<f32>(0.0);
    var c30 = vec4<f32>(0.0); var c31 = vec4<f32>(0.0);
    var c40 = vec4<f32>(0.0); var c41 = vec4<f32>(0.0);
    var c50 = vec4<f32>(0.0); var c51 = vec4<f32>(0.0);
    var c60 = vec4<f32>(0.0); var c61 = vec4<f32>(0.0);
    var c70 = vec4<f32>(0.0); var c71 = vec4<f32>(0.0);
    let sa = gp.lda / 4u;
    let sb = gp.ldb / 4u;
    var ia = m0 / 4u;
    var ib = n0 / 4u;
    for (var kk = 0u; kk < gp.k; kk++) {
        let a0 = at[ia];
        let a1 = at[ia + 1u];
        let b0 = bt[ib];
        let b1 = bt[ib + 1u];
        c00 += a0.x * b0; c01 += a0.x * b1;
        c10 += a0.y * b0; c11 += a0.y * b1;
        c20 += a0.z * b0; c21 += a0.z * b1;
        c30 += a0.w * b0; c31 += a0.w * b1;
        c40 += a1.x * b0; c41 += a1.x * b1;
        c50 += a1.y * b0; c51 += a1.y * b1;
        c60 += a1.z * b0; c61 += a1.z * b1;
        c70 += a1.w * b0; c71 += a1.w * b1;
        ia += sa;
        ib += sb;
    }
    store_row(m0, n0, c00, c01);
    store_row(m0 + 1u, n0, c10, c11);
    store_row(m0 + 2u, n0, c20, c21);
    store_row(m0 + 3u, n0, c30, c31);
    store_row(m0 + 4u, n0, c40, c41);
    store_row(m0 + 5u, n0, c50, c51);
    store_row(m0 + 6u, n0, c60, c61);
    store_row(m0 + 7u, n0, c70, c71);
}

// Variant for CPU adapters (lavapipe): there a storage load costs a loop over the SIMD lanes,
// while a uniform-buffer load is one vector gather, several times cheaper per float. So the
// 64-row operand comes through a uniform window of 64 KiB: A packed in panels of 64 rows,
// panel[k][64], the window holding whole panels (or one chunk of k of one) at a dynamic offset
// per dispatch. Each invocation owns a 64x8 block of C: per k, 16 vec4 of A from the window and
// two vec4 of Bt from storage. y indexes the panels in the window; the host splits k into chunks
// that fit, the later ones accumulating. The host keeps every window read inside the window.
@group(0) @binding(1) var<uniform> panel_a: array<vec4<f32>, 4096>;

@compute @workgroup_size(8)
fn gemm_panel(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let n0 = gid.x * 8u;
    let m0 = gp.m0 + wid.y * 64u;
    if (m0 >= gp.m || n0 >= gp.n) {
        return;
    }
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
    var c32_0 = vec4<f32>(0.0); var c32_1 = vec4<f32>(0.0);
    var c33_0 = vec4<f32>(0.0); var c33_1 = vec4<f32>(0.0);
    var c34_0 = vec4<f32>(0.0); var c34_1 = vec4<f32>(0.0);
    var c35_0 = vec4<f32>(0.0); var c35_1 = vec4<f32>(0.0);
    var c36_0 = vec4<f32>(0.0); var c36_1 = vec4<f32>(0.0);
    var c37_0 = vec4<f32>(0.0); var c37_1 = vec4<f32>(0.0);
    var c38_0 = vec4<f32>(0.0); var c38_1 = vec4<f32>(0.0);
    var c39_0 = vec4<f32>(0.0); var c39_1 = vec4<f32>(0.0);
    var c40_0 = vec4<f32>(0.0); var c40_1 = vec4<f32>(0.0);
    var c41_0 = vec4<f32>(0.0); var c41_1 = vec4<f32>(0.0);
    var c42_0 = vec4<f32>(0.0); var c42_1 = vec4<f32>(0.0);
    var c43_0 = vec4<f32>(0.0); var c43_1 = vec4<f32>(0.0);
    var c44_0 = vec4<f32>(0.0); var c44_1 = vec4<f32>(0.0);
    var c45_0 = vec4<f32>(0.0); var c45_1 = vec4<f32>(0.0);
    var c46_0 = vec4<f32>(0.0); var c46_1 = vec4<f32>(0.0);
    var c47_0 = vec4<f32>(0.0); var c47_1 = vec4<f32>(0.0);
    var c48_0 = vec4<f32>(0.0); var c48_1 = vec4<f32>(0.0);
    var c49_0 = vec4<f32>(0.0); var c49_1 = vec4<f32>(0.0);
    var c50_0 = vec4<f32>(0.0); var c50_1 = vec4<f32>(0.0);
    var c51_0 = vec4<f32>(0.0); var c51_1 = vec4<f32>(0.0);
    var c52_0 = vec4<f32>(0.0); var c52_1 = vec4<f32>(0.0);
    var c53_0 = vec4<f32>(0.0); var c53_1 = vec4<f32>(0.0);
    var c54_0 = vec4<f32>(0.0); var c54_1 = vec4<f32>(0.0);
    var c55_0 = vec4<f32>(0.0); var c55_1 = vec4<f32>(0.0);
    var c56_0 = vec4<f32>(0.0); var c56_1 = vec4<f32>(0.0);
    var c57_0 = vec4<f32>(0.0); var c57_1 = vec4<f32>(0.0);
    var c58_0 = vec4<f32>(0.0); var c58_1 = vec4<f32>(0.0);
    var c59_0 = vec4<f32>(0.0); var c59_1 = vec4<f32>(0.0);
    var c60_0 = vec4<f32>(0.0); var c60_1 = vec4<f32>(0.0);
    var c61_0 = vec4<f32>(0.0); var c61_1 = vec4<f32>(0.0);
    var c62_0 = vec4<f32>(0.0); var c62_1 = vec4<f32>(0.0);
    var c63_0 = vec4<f32>(0.0); var c63_1 = vec4<f32>(0.0);
    let sb = gp.ldb / 4u;
    var ib = (gp.k0 * gp.ldb + n0) / 4u;
    var ia = wid.y * gp.a_stride;
    for (var kk = 0u; kk < gp.k; kk++) {
        let a0 = panel_a[ia + 0u];
        let a1 = panel_a[ia + 1u];
        let a2 = panel_a[ia + 2u];
        let a3 = panel_a[ia + 3u];
        let a4 = panel_a[ia + 4u];
        let a5 = panel_a[ia + 5u];
        let a6 = panel_a[ia + 6u];
        let a7 = panel_a[ia + 7u];
        let a8 = panel_a[ia + 8u];
        let a9 = panel_a[ia + 9u];
        let a10 = panel_a[ia + 10u];
        let a11 = panel_a[ia + 11u];
        let a12 = panel_a[ia + 12u];
        let a13 = panel_a[ia + 13u];
        let a14 = panel_a[ia + 14u];
        let a15 = panel_a[ia + 15u];
        let b0 = bt[ib];
        let b1 = bt[ib + 1u];
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
        c32_0 += a8.x * b0; c32_1 += a8.x * b1;
        c33_0 += a8.y * b0; c33_1 += a8.y * b1;
        c34_0 += a8.z * b0; c34_1 += a8.z * b1;
        c35_0 += a8.w * b0; c35_1 += a8.w * b1;
        c36_0 += a9.x * b0; c36_1 += a9.x * b1;
        c37_0 += a9.y * b0; c37_1 += a9.y * b1;
        c38_0 += a9.z * b0; c38_1 += a9.z * b1;
        c39_0 += a9.w * b0; c39_1 += a9.w * b1;
        c40_0 += a10.x * b0; c40_1 += a10.x * b1;
        c41_0 += a10.y * b0; c41_1 += a10.y * b1;
        c42_0 += a10.z * b0; c42_1 += a10.z * b1;
        c43_0 += a10.w * b0; c43_1 += a10.w * b1;
        c44_0 += a11.x * b0; c44_1 += a11.x * b1;
        c45_0 += a11.y * b0; c45_1 += a11.y * b1;
        c46_0 += a11.z * b0; c46_1 += a11.z * b1;
        c47_0 += a11.w * b0; c47_1 += a11.w * b1;
        c48_0 += a12.x * b0; c48_1 += a12.x * b1;
        c49_0 += a12.y * b0; c49_1 += a12.y * b1;
        c50_0 += a12.z * b0; c50_1 += a12.z * b1;
        c51_0 += a12.w * b0; c51_1 += a12.w * b1;
        c52_0 += a13.x * b0; c52_1 += a13.x * b1;
        c53_0 += a13.y * b0; c53_1 += a13.y * b1;
        c54_0 += a13.z * b0; c54_1 += a13.z * b1;
        c55_0 += a13.w * b0; c55_1 += a13.w * b1;
        c56_0 += a14.x * b0; c56_1 += a14.x * b1;
        c57_0 += a14.y * b0; c57_1 += a14.y * b1;
        c58_0 += a14.z * b0; c58_1 += a14.z * b1;
        c59_0 += a14.w * b0; c59_1 += a14.w * b1;
        c60_0 += a15.x * b0; c60_1 += a15.x * b1;
        c61_0 += a15.y * b0; c61_1 += a15.y * b1;
        c62_0 += a15.z * b0; c62_1 += a15.z * b1;
        c63_0 += a15.w * b0; c63_1 += a15.w * b1;
        ia += 16u;
        ib += sb;
    }
    store_row(m0 + 0u, n0, c0_0, c0_1);
    store_row(m0 + 1u, n0, c1_0, c1_1);
    store_row(m0 + 2u, n0, c2_0, c2_1);
    store_row(m0 + 3u, n0, c3_0, c3_1);
    store_row(m0 + 4u, n0, c4_0, c4_1);
    store_row(m0 + 5u, n0, c5_0, c5_1);
    store_row(m0 + 6u, n0, c6_0, c6_1);
    store_row(m0 + 7u, n0, c7_0, c7_1);
    store_row(m0 + 8u, n0, c8_0, c8_1);
    store_row(m0 + 9u, n0, c9_0, c9_1);
    store_row(m0 + 10u, n0, c10_0, c10_1);
    store_row(m0 + 11u, n0, c11_0, c11_1);
    store_row(m0 + 12u, n0, c12_0, c12_1);
    store_row(m0 + 13u, n0, c13_0, c13_1);
    store_row(m0 + 14u, n0, c14_0, c14_1);
    store_row(m0 + 15u, n0, c15_0, c15_1);
    store_row(m0 + 16u, n0, c16_0, c16_1);
    store_row(m0 + 17u, n0, c17_0, c17_1);
    store_row(m0 + 18u, n0, c18_0, c18_1);
    store_row(m0 + 19u, n0, c19_0, c19_1);
    store_row(m0 + 20u, n0, c20_0, c20_1);
    store_row(m0 + 21u, n0, c21_0, c21_1);
    store_row(m0 + 22u, n0, c22_0, c22_1);
    store_row(m0 + 23u, n0, c23_0, c23_1);
    store_row(m0 + 24u, n0, c24_0, c24_1);
    store_row(m0 + 25u, n0, c25_0, c25_1);
    store_row(m0 + 26u, n0, c26_0, c26_1);
    store_row(m0 + 27u, n0, c27_0, c27_1);
    store_row(m0 + 28u, n0, c28_0, c28_1);
    store_row(m0 + 29u, n0, c29_0, c29_1);
    store_row(m0 + 30u, n0, c30_0, c30_1);
    store_row(m0 + 31u, n0, c31_0, c31_1);
    store_row(m0 + 32u, n0, c32_0, c32_1);
    store_row(m0 + 33u, n0, c33_0, c33_1);
    store_row(m0 + 34u, n0, c34_0, c34_1);
    store_row(m0 + 35u, n0, c35_0, c35_1);
    store_row(m0 + 36u, n0, c36_0, c36_1);
    store_row(m0 + 37u, n0, c37_0, c37_1);
    store_row(m0 + 38u, n0, c38_0, c38_1);
    store_row(m0 + 39u, n0, c39_0, c39_1);
    store_row(m0 + 40u, n0, c40_0, c40_1);
    store_row(m0 + 41u, n0, c41_0, c41_1);
    store_row(m0 + 42u, n0, c42_0, c42_1);
    store_row(m0 + 43u, n0, c43_0, c43_1);
    store_row(m0 + 44u, n0, c44_0, c44_1);
    store_row(m0 + 45u, n0, c45_0, c45_1);
    store_row(m0 + 46u, n0, c46_0, c46_1);
    store_row(m0 + 47u, n0, c47_0, c47_1);
    store_row(m0 + 48u, n0, c48_0, c48_1);
    store_row(m0 + 49u, n0, c49_0, c49_1);
    store_row(m0 + 50u, n0, c50_0, c50_1);
    store_row(m0 + 51u, n0, c51_0, c51_1);
    store_row(m0 + 52u, n0, c52_0, c52_1);
    store_row(m0 + 53u, n0, c53_0, c53_1);
    store_row(m0 + 54u, n0, c54_0, c54_1);
    store_row(m0 + 55u, n0, c55_0, c55_1);
    store_row(m0 + 56u, n0, c56_0, c56_1);
    store_row(m0 + 57u, n0, c57_0, c57_1);
    store_row(m0 + 58u, n0, c58_0, c58_1);
    store_row(m0 + 59u, n0, c59_0, c59_1);
    store_row(m0 + 60u, n0, c60_0, c60_1);
    store_row(m0 + 61u, n0, c61_0, c61_1);
    store_row(m0 + 62u, n0, c62_0, c62_1);
    store_row(m0 + 63u, n0, c63_0, c63_1);
}

// Workgroup-tiled variant for GPUs: a 64x64 tile of C per workgroup of 8x8 invocations, each
// owning an 8x8 block; per chunk of 8 k the workgroup stages the A and B tiles (8 x 64 each) in
// workgroup memory with one cooperative, coalesced load, then every invocation runs its outer
// products from there. Only the staging loads are guarded (tiles may overhang the padded rows
// or the last chunk of k); the inner loop has no bounds checks.
var<workgroup> tile_a: array<vec4<f32>, 128>;  // [8 k][16 vec4 of m]
var<workgroup> tile_b: array<vec4<f32>, 128>;  // [8 k][16 vec4 of n]

@compute @workgroup_size(8, 8)
fn gemm_tiled(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let tm0 = wid.y * 64u;
    let tn0 = wid.x * 64u;
    let li = lid.y * 8u + lid.x;
    var c00 = vec4<f32>(0.0); var c01 = vec4<f32>(0.0);
    var c10 = vec4<f32>(0.0); var c11 = vec4<f32>(0.0);
    var c20 = vec4<f32>(0.0); var c21 = vec4<f32>(0.0);
    var c30 = vec4<f32>(0.0); var c31 = vec4<f32>(0.0);
    var c40 = vec4<f32>(0.0); var c41 = vec4<f32>(0.0);
    var c50 = vec4<f32>(0.0); var c51 = vec4<f32>(0.0);
    var c60 = vec4<f32>(0.0); var c61 = vec4<f32>(0.0);
    var c70 = vec4<f32>(0.0); var c71 = vec4<f32>(0.0);
    for (var k0 = 0u; k0 < gp.k; k0 += 8u) {
        for (var q = 0u; q < 2u; q++) {
            let idx = li * 2u + q;
            let k = k0 + idx / 16u;
            let col = 4u * (idx % 16u);
            var a = vec4<f32>(0.0);
            if (k < gp.k && tm0 + col < gp.lda) {
                a = at[(k * gp.lda + tm0 + col) / 4u];
            }
            tile_a[idx] = a;
            var b = vec4<f32>(0.0);
            if (k < gp.k && tn0 + col < gp.ldb) {
                b = bt[(k * gp.ldb + tn0 + col) / 4u];
            }
            tile_b[idx] = b;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < 8u; kk++) {
            let a0 = tile_a[kk * 16u + lid.y * 2u];
            let a1 = tile_a[kk * 16u + lid.y * 2u + 1u];
            let b0 = tile_b[kk * 16u + lid.x * 2u];
            let b1 = tile_b[kk * 16u + lid.x * 2u + 1u];
            c00 += a0.x * b0; c01 += a0.x * b1;
            c10 += a0.y * b0; c11 += a0.y * b1;
            c20 += a0.z * b0; c21 += a0.z * b1;
            c30 += a0.w * b0; c31 += a0.w * b1;
            c40 += a1.x * b0; c41 += a1.x * b1;
            c50 += a1.y * b0; c51 += a1.y * b1;
            c60 += a1.z * b0; c61 += a1.z * b1;
            c70 += a1.w * b0; c71 += a1.w * b1;
        }
        workgroupBarrier();
    }
    let m0 = tm0 + lid.y * 8u;
    let n0 = tn0 + lid.x * 8u;
    if (n0 >= gp.n) {
        return;
    }
    store_row(m0, n0, c00, c01);
    store_row(m0 + 1u, n0, c10, c11);
    store_row(m0 + 2u, n0, c20, c21);
    store_row(m0 + 3u, n0, c30, c31);
    store_row(m0 + 4u, n0, c40, c41);
    store_row(m0 + 5u, n0, c50, c51);
    store_row(m0 + 6u, n0, c60, c61);
    store_row(m0 + 7u, n0, c70, c71);
}

struct SumParams {
    rows: u32,
    cols: u32,
    accumulate: u32,
    src_off: u32,
}

@group(0) @binding(0) var<uniform> sp: SumParams;
@group(0) @binding(1) var<storage, read> sum_src: array<f32>;
@group(0) @binding(2) var<storage, read_write> sum_dst: array<f32>;

// Column sums of a rows x cols matrix (bias gradients), each summed in row order: deterministic.
@compute @workgroup_size(64)
fn col_sum(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    if (c >= sp.cols) {
        return;
    }
    var s = 0.0;
    for (var r = 0u; r < sp.rows; r++) {
        s += sum_src[sp.src_off + r * sp.cols + c];
    }
    if (sp.accumulate != 0u) {
        s += sum_dst[c];
    }
    sum_dst[c] = s;
}
