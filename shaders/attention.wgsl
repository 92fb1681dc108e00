// Attention of queries [B, Tq, ·] over keys [B, Tk, ·] and values [B, Tk, Dv], keys at
// j >= key_len[b] masked out.
//
// The products (dot and general scores q_i . kp_j, the context sum_j w_ij value_j, and their
// gradients) all run through `attn_bmm` at the end of this file; additive scores
// s[b, i, j] = v . tanh(qa_i + ka_j) (qa = W_q q and ka = W_k k from GEMMs) and their gradients
// through `attn_scores` and `attn_dside`. `attn_softmax`: softmax over the valid keys of each
// row, masked weights exactly 0 (whatever the scores of masked keys held).

{{AttnParams}}

@group(0) @binding(0) var<uniform> p: AttnParams;
@group(0) @binding(1) var<storage, read> sm_len: array<u32>;
@group(0) @binding(2) var<storage, read_write> sm_rows: array<f32>;  // [B, Tq, Tk], in place

@compute @workgroup_size(64)
fn attn_softmax(@builtin(global_invocation_id) gid: vec3<u32>) {
    let row = gid.x + gid.y * 65535u * 64u;
    if (row >= p.batch * p.tq) {
        return;
    }
    let b = row / p.tq;
    let len = sm_len[b];
    let base = row * p.tk;
    var m = sm_rows[base];
    for (var j = 1u; j < len; j++) {
        m = max(m, sm_rows[base + j]);
    }
    var s = 0.0;
    for (var j = 0u; j < len; j++) {
        let e = exp(sm_rows[base + j] - m);
        sm_rows[base + j] = e;
        s += e;
    }
    for (var j = 0u; j < p.tk; j++) {
        if (j < len) {
            sm_rows[base + j] = sm_rows[base + j] / s;
        } else {
            sm_rows[base + j] = 0.0;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Backward. `attn_bmm` first writes da_ij = dctx_i . value_j into the dscores buffer; then
// `attn_dsoftmax`, per row (b, i), adds the upstream dweights and applies the softmax backward
// ds_j = w_j (da_j - sum_j' w_j' da_j'); masked keys get ds = 0.

@group(0) @binding(1) var<storage, read> g_w: array<f32>;      // weights [B, Tq, Tk]
@group(0) @binding(2) var<storage, read> g_dw: array<f32>;     // upstream dweights or unused
@group(0) @binding(3) var<storage, read> g_len: array<u32>;
@group(0) @binding(4) var<storage, read_write> g_ds: array<f32>;  // [B, Tq, Tk]: da in, ds out

@compute @workgroup_size(64)
fn attn_dsoftmax(@builtin(global_invocation_id) gid: vec3<u32>) {
    let row = gid.x + gid.y * 65535u * 64u;
    if (row >= p.batch * p.tq) {
        return;
    }
    let b = row / p.tq;
    let len = g_len[b];
    let base = row * p.tk;
    var dot_wd = 0.0;
    for (var j = 0u; j < len; j++) {
        var da = g_ds[base + j];
        if (p.has_dw != 0u) {
            da += g_dw[base + j];
        }
        g_ds[base + j] = da;
        dot_wd += g_w[base + j] * da;
    }
    for (var j = 0u; j < p.tk; j++) {
        if (j < len) {
            g_ds[base + j] = g_w[base + j] * (g_ds[base + j] - dot_wd);
        } else {
            g_ds[base + j] = 0.0;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Additive (Bahdanau) scores and their gradients, 4x4 blocks per invocation: per step of the
// summed index each invocation loads 4 + 4 floats (+ v) for 16 tanh, instead of 3 loads per
// tanh. Loads past an edge are clamped to the last row and their results dropped.

fn tanh4(x: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(tanh_stable(x.x), tanh_stable(x.y), tanh_stable(x.z), tanh_stable(x.w));
}

fn comp(v: vec4<f32>, c: u32) -> f32 {
    return select(select(v.w, v.z, c == 2u), select(v.y, v.x, c == 0u), c < 2u);
}

@group(0) @binding(1) var<storage, read> qs: array<f32>;     // qa [B, Tq, width]
@group(0) @binding(2) var<storage, read> ks: array<f32>;     // ka [B, Tk, width]
@group(0) @binding(3) var<storage, read> v_add: array<f32>;  // [width]
@group(0) @binding(4) var<storage, read> key_len: array<u32>;
@group(0) @binding(5) var<storage, read_write> scores: array<f32>;  // [B, Tq, Tk]

// s[b, i, j] = v . tanh(qa_i + ka_j) for a 4 (i) x 4 (j) block; masked keys get 0.
@compute @workgroup_size(8, 8)
fn attn_scores(@builtin(global_invocation_id) gid: vec3<u32>) {
    let j0 = gid.x * 4u;
    let i0 = gid.y * 4u;
    let b = gid.z;
    if (j0 >= p.tk || i0 >= p.tq || b >= p.batch) {
        return;
    }
    let q0 = (b * p.tq + min(i0 + 0u, p.tq - 1u)) * p.width;
    let q1 = (b * p.tq + min(i0 + 1u, p.tq - 1u)) * p.width;
    let q2 = (b * p.tq + min(i0 + 2u, p.tq - 1u)) * p.width;
    let q3 = (b * p.tq + min(i0 + 3u, p.tq - 1u)) * p.width;
    let k0 = (b * p.tk + min(j0 + 0u, p.tk - 1u)) * p.width;
    let k1 = (b * p.tk + min(j0 + 1u, p.tk - 1u)) * p.width;
    let k2 = (b * p.tk + min(j0 + 2u, p.tk - 1u)) * p.width;
    let k3 = (b * p.tk + min(j0 + 3u, p.tk - 1u)) * p.width;
    var s0 = vec4<f32>(0.0);
    var s1 = vec4<f32>(0.0);
    var s2 = vec4<f32>(0.0);
    var s3 = vec4<f32>(0.0);
    for (var a = 0u; a < p.width; a++) {
        let va = v_add[a];
        let kv = vec4<f32>(ks[k0 + a], ks[k1 + a], ks[k2 + a], ks[k3 + a]);
        s0 += va * tanh4(qs[q0 + a] + kv);
        s1 += va * tanh4(qs[q1 + a] + kv);
        s2 += va * tanh4(qs[q2 + a] + kv);
        s3 += va * tanh4(qs[q3 + a] + kv);
    }
    let len = key_len[b];
    let rows = array<vec4<f32>, 4>(s0, s1, s2, s3);
    for (var r = 0u; r < 4u; r++) {
        let i = i0 + r;
        if (i < p.tq) {
            for (var c = 0u; c < 4u; c++) {
                let j = j0 + c;
                if (j < p.tk) {
                    scores[(b * p.tq + i) * p.tk + j] = select(0.0, comp(rows[r], c), j < len);
                }
            }
        }
    }
}

// Backward, with u = tanh(qa_i + ka_j): `side` 0 gives dqa_i = v * sum_j ds_ij (1 - u^2) and the
// partial sums sum_j ds_ij u (per b, i, a) that `col_sum` reduces to dv; `side` 1 gives
// dka_j = v * sum_i ds_ij (1 - u^2). An invocation owns 4 rows (i or j) x 4 features a.
@group(0) @binding(1) var<storage, read> x_ds: array<f32>;    // [B, Tq, Tk]
@group(0) @binding(2) var<storage, read> x_q: array<f32>;     // qa [B, Tq, width]
@group(0) @binding(3) var<storage, read> x_k: array<f32>;     // ka [B, Tk, width]
@group(0) @binding(4) var<storage, read> x_v: array<f32>;     // [width]
@group(0) @binding(5) var<storage, read> x_len: array<u32>;
@group(0) @binding(6) var<storage, read_write> x_out: array<f32>;  // [B, Tq or Tk, width]
@group(0) @binding(7) var<storage, read_write> x_part: array<f32>; // [B, Tq, width] (side 0)

@compute @workgroup_size(8, 8)
fn attn_dside(@builtin(global_invocation_id) gid: vec3<u32>) {
    let a0 = gid.x * 4u;
    let r0 = gid.y * 4u;
    let b = gid.z;
    let side = p.side;
    let n_own = select(p.tq, p.tk, side == 1u);
    if (a0 >= p.width || r0 >= n_own || b >= p.batch) {
        return;
    }
    // The summed index runs over valid keys (side 0) or all queries (side 1).
    let n_other = select(x_len[b], p.tq, side == 1u);
    let wl = p.width - 1u;
    let ac = vec4<u32>(min(a0, wl), min(a0 + 1u, wl), min(a0 + 2u, wl), min(a0 + 3u, wl));
    var ov0 = vec4<f32>(0.0);
    var ov1 = vec4<f32>(0.0);
    var ov2 = vec4<f32>(0.0);
    var ov3 = vec4<f32>(0.0);
    if (side == 0u) {
        let o0 = (b * p.tq + min(r0 + 0u, p.tq - 1u)) * p.width;
        ov0 = vec4<f32>(x_q[o0 + ac.x], x_q[o0 + ac.y], x_q[o0 + ac.z], x_q[o0 + ac.w]);
        let o1 = (b * p.tq + min(r0 + 1u, p.tq - 1u)) * p.width;
        ov1 = vec4<f32>(x_q[o1 + ac.x], x_q[o1 + ac.y], x_q[o1 + ac.z], x_q[o1 + ac.w]);
        let o2 = (b * p.tq + min(r0 + 2u, p.tq - 1u)) * p.width;
        ov2 = vec4<f32>(x_q[o2 + ac.x], x_q[o2 + ac.y], x_q[o2 + ac.z], x_q[o2 + ac.w]);
        let o3 = (b * p.tq + min(r0 + 3u, p.tq - 1u)) * p.width;
        ov3 = vec4<f32>(x_q[o3 + ac.x], x_q[o3 + ac.y], x_q[o3 + ac.z], x_q[o3 + ac.w]);
    } else {
        let o0 = (b * p.tk + min(r0 + 0u, p.tk - 1u)) * p.width;
        ov0 = vec4<f32>(x_k[o0 + ac.x], x_k[o0 + ac.y], x_k[o0 + ac.z], x_k[o0 + ac.w]);
        let o1 = (b * p.tk + min(r0 + 1u, p.tk - 1u)) * p.width;
        ov1 = vec4<f32>(x_k[o1 + ac.x], x_k[o1 + ac.y], x_k[o1 + ac.z], x_k[o1 + ac.w]);
        let o2 = (b * p.tk + min(r0 + 2u, p.tk - 1u)) * p.width;
        ov2 = vec4<f32>(x_k[o2 + ac.x], x_k[o2 + ac.y], x_k[o2 + ac.z], x_k[o2 + ac.w]);
        let o3 = (b * p.tk + min(r0 + 3u, p.tk - 1u)) * p.width;
        ov3 = vec4<f32>(x_k[o3 + ac.x], x_k[o3 + ac.y], x_k[o3 + ac.z], x_k[o3 + ac.w]);
    }
    var g0 = vec4<f32>(0.0);
    var e0 = vec4<f32>(0.0);
    var g1 = vec4<f32>(0.0);
    var e1 = vec4<f32>(0.0);
    var g2 = vec4<f32>(0.0);
    var e2 = vec4<f32>(0.0);
    var g3 = vec4<f32>(0.0);
    var e3 = vec4<f32>(0.0);
    for (var o = 0u; o < n_other; o++) {
        var xv: vec4<f32>;
        var d: vec4<f32>;
        if (side == 0u) {
            let kb = (b * p.tk + o) * p.width;
            xv = vec4<f32>(x_k[kb + ac.x], x_k[kb + ac.y], x_k[kb + ac.z], x_k[kb + ac.w]);
            d = vec4<f32>(x_ds[(b * p.tq + min(r0 + 0u, p.tq - 1u)) * p.tk + o], x_ds[(b * p.tq + min(r0 + 1u, p.tq - 1u)) * p.tk + o], x_ds[(b * p.tq + min(r0 + 2u, p.tq - 1u)) * p.tk + o], x_ds[(b * p.tq + min(r0 + 3u, p.tq - 1u)) * p.tk + o]);
        } else {
            let qb = (b * p.tq + o) * p.width;
            xv = vec4<f32>(x_q[qb + ac.x], x_q[qb + ac.y], x_q[qb + ac.z], x_q[qb + ac.w]);
            d = vec4<f32>(x_ds[(b * p.tq + o) * p.tk + min(r0 + 0u, p.tk - 1u)], x_ds[(b * p.tq + o) * p.tk + min(r0 + 1u, p.tk - 1u)], x_ds[(b * p.tq + o) * p.tk + min(r0 + 2u, p.tk - 1u)], x_ds[(b * p.tq + o) * p.tk + min(r0 + 3u, p.tk - 1u)]);
        }
        let u0 = tanh4(ov0 + xv);
        g0 += d.x * (1.0 - u0 * u0);
        e0 += d.x * u0;
        let u1 = tanh4(ov1 + xv);
        g1 += d.y * (1.0 - u1 * u1);
        e1 += d.y * u1;
        let u2 = tanh4(ov2 + xv);
        g2 += d.z * (1.0 - u2 * u2);
        e2 += d.z * u2;
        let u3 = tanh4(ov3 + xv);
        g3 += d.w * (1.0 - u3 * u3);
        e3 += d.w * u3;
    }
    let vv = vec4<f32>(x_v[ac.x], x_v[ac.y], x_v[ac.z], x_v[ac.w]);
    let gs = array<vec4<f32>, 4>(g0 * vv, g1 * vv, g2 * vv, g3 * vv);
    let es = array<vec4<f32>, 4>(e0, e1, e2, e3);
    for (var r = 0u; r < 4u; r++) {
        let row = r0 + r;
        if (row < n_own) {
            for (var c = 0u; c < 4u; c++) {
                let a = a0 + c;
                if (a < p.width) {
                    let idx = (b * n_own + row) * p.width + a;
                    x_out[idx] = comp(gs[r], c);
                    if (side == 0u) {
                        x_part[idx] = comp(es[r], c);
                    }
                }
            }
        }
    }
}


// ---------------------------------------------------------------------------------------------
// `attn_bmm`: the batched products of attention, C[b, m, n] = scale * sum_{k < K_b} A[b, m, k] *
// B[b, k, n] over strided views (element strides a_*, b_*, c_*), with K_b = min(K, key_len[b])
// when `k_by_len` is set (sums over keys stop at the last valid one). Each invocation owns an
// 8x8 block of C: per k it loads 8 floats of A and 8 of B for 64 multiply-adds, which is what
// pays on every adapter (on CPU adapters the loads are the cost; on GPUs, memory traffic).
// Loads of rows or columns past the edge are clamped to the last one and their results dropped,
// so nothing is read or written out of bounds.

{{BmmParams}}

@group(0) @binding(0) var<uniform> bp: BmmParams;
@group(0) @binding(1) var<storage, read> bm_a: array<f32>;
@group(0) @binding(2) var<storage, read> bm_b: array<f32>;
@group(0) @binding(3) var<storage, read> bm_len: array<u32>;
@group(0) @binding(4) var<storage, read_write> bm_c: array<f32>;

fn bmm_store(bz: u32, m: u32, n0: u32, lo: vec4<f32>, hi: vec4<f32>) {
    if (m >= bp.m) {
        return;
    }
    let vals = array<f32, 8>(lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w);
    for (var j = 0u; j < 8u; j++) {
        let n = n0 + j;
        if (n < bp.n) {
            let idx = bz * bp.c_b + m * bp.c_m + n * bp.c_n;
            bm_c[idx] = bp.scale * vals[j];
        }
    }
}

// An 8x8 block of C per invocation; the registry generates its unrolled rows of A, columns of
// B, accumulators (lo, hi: columns 0..3 and 4..7 of row r), multiply-adds and stores
// (`bmm_parts` in crates/gpu/src/runtime/shaders.rs). Rows and columns past the end read the
// last in-bounds one and are never stored.
@compute @workgroup_size(8, 8)
fn attn_bmm(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n0 = gid.x * 8u;
    let m0 = gid.y * 8u;
    let bz = gid.z;
    if (n0 >= bp.n || m0 >= bp.m || bz >= bp.batch) {
        return;
    }
    var kend = bp.k;
    if (bp.k_by_len != 0u) {
        kend = min(bm_len[bz], bp.k);
    }
    let ab = bz * bp.a_b;
    let bb = bz * bp.b_b;
{{BMM_A_ROWS}}
{{BMM_B_COLUMNS}}
{{BMM_ACCUMULATORS}}
    for (var kk = 0u; kk < kend; kk++) {
        let ka = kk * bp.a_k;
        let kb = kk * bp.b_k;
        let blo = vec4<f32>(bm_b[cb0 + kb], bm_b[cb1 + kb], bm_b[cb2 + kb], bm_b[cb3 + kb]);
        let bhi = vec4<f32>(bm_b[cb4 + kb], bm_b[cb5 + kb], bm_b[cb6 + kb], bm_b[cb7 + kb]);
{{BMM_MULTIPLY_ADDS}}
    }
{{BMM_STORES}}
}
