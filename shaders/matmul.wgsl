// Matrix products over K-major operands.
//
// `gemm_kmajor` computes C[m, n] (+)= sum_k At[k, m] * Bt[k, n] (+ bias[n]) with both operands
// stored K-major and padded so that their row lengths (lda, ldb) are multiples of 8: each
// invocation owns an 8x8 block of C and, per k, reads two vec4 of At and two of Bt and does an
// 8x8 outer product. No bounds checks run inside the k loop; only the store is guarded.
// `pack_kmajor` produces such operands from any strided matrix, zero-filling the padding.

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
}

@group(0) @binding(0) var<uniform> pp: PackParams;
@group(0) @binding(1) var<storage, read> pack_src: array<f32>;
@group(0) @binding(2) var<storage, read_write> pack_dst: array<f32>;

// dst[k * ld + m] = A(m, k) for m < M, 0 for M <= m < ld.
@compute @workgroup_size(64, 4)
fn pack_kmajor(@builtin(global_invocation_id) gid: vec3<u32>) {
    let m = gid.x;
    let k = gid.y + gid.z * 65535u * 4u;
    if (m >= pp.ld || k >= pp.cols) {
        return;
    }
    var v = 0.0;
    if (m < pp.rows) {
        v = pack_src[pp.src_off + (m / pp.m_inner) * pp.s_outer + (m % pp.m_inner) * pp.s_inner + k * pp.s_k];
    }
    pack_dst[k * pp.ld + m] = v;
}

struct GemmParams {
    m: u32,
    n: u32,
    k: u32,
    lda: u32,        // row length of At in floats (multiple of 8)
    ldb: u32,        // row length of Bt in floats (multiple of 8)
    c_rs: u32,       // C[m, n] is at c_off + m * c_rs + n * c_cs
    c_cs: u32,
    c_off: u32,
    accumulate: u32, // 1: C += product, 0: C = product
    has_bias: u32,   // 1: add bias[n]
    _pad0: u32,
    _pad1: u32,
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
            let idx = gp.c_off + m * gp.c_rs + n * gp.c_cs;
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
