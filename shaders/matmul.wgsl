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

{{GEMM_PANEL}}

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
