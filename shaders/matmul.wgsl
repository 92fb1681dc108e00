// Matrix products over K-major operands.
//
// `gemm_kmajor` computes C[m, n] (+)= sum_k At[k, m] * Bt[k, n] (+ bias[n]) with both operands
// stored K-major and padded so that their row lengths (lda, ldb) are multiples of 8: each
// invocation owns an 8x8 block of C and, per k, reads two vec4 of At and two of Bt and does an
// 8x8 outer product. No bounds checks run inside the k loop; only the store is guarded.
// `pack_kmajor` produces such operands from any strided matrix, zero-filling the padding, either
// plainly K-major or in panels of 64 rows (see `gemm_panel`); `pack_kmajor_masked` also zeroes
// the padded steps of sequences (RNN lengths, masked attention keys).
//
// The registry (crates/gpu/src/runtime/shaders.rs) fills the double-braced markers: the parameter
// blocks, the unrolled accumulators, multiply-adds and stores of each kernel's register block
// (c{r}_0, c{r}_1: row r, columns 0..3 and 4..7, fed by a{r / 4} and b0, b1), and `gemm_panel`
// from matmul_panel.wgsl.

{{PackParams}}

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

{{GemmParams}}

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
{{KMAJOR_ACCUMULATORS}}
    let sa = gp.lda / 4u;
    let sb = gp.ldb / 4u;
    var ia = m0 / 4u;
    var ib = n0 / 4u;
    for (var kk = 0u; kk < gp.k; kk++) {
        let a0 = at[ia];
        let a1 = at[ia + 1u];
        let b0 = bt[ib];
        let b1 = bt[ib + 1u];
{{KMAJOR_MULTIPLY_ADDS}}
        ia += sa;
        ib += sb;
    }
{{KMAJOR_STORES}}
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
{{TILED_ACCUMULATORS}}
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
{{TILED_MULTIPLY_ADDS}}
        }
        workgroupBarrier();
    }
    let m0 = tm0 + lid.y * 8u;
    let n0 = tn0 + lid.x * 8u;
    if (n0 >= gp.n) {
        return;
    }
{{TILED_STORES}}
}

{{SumParams}}

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
