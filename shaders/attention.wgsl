// Attention of queries [B, Tq, ·] over keys [B, Tk, ·] and values [B, Tk, Dv], keys at
// j >= key_len[b] masked out.
//
// `attn_scores`: s[b, i, j] = scale * q_i . kp_j (dot, scaled dot, and general with kp = W k
// computed by a GEMM beforehand), or v . tanh(qa_i + ka_j) (additive, with qa = W_q q and
// ka = W_k k from GEMMs). `attn_softmax`: softmax over the valid keys of each row, masked weights
// exactly 0. `attn_context`: ctx[b, i, :] = sum_j w[b, i, j] * value[b, j, :].

struct AttnParams {
    batch: u32,
    tq: u32,
    tk: u32,
    width: u32,     // length of the vectors the score compares (Dq, or A for additive)
    dv: u32,
    additive: u32,
    scale: f32,
    side: u32,        // attn_dside: 0 query side, 1 key side
    has_dw: u32,      // attn_dscores: 1 if an upstream dweights is bound
    accumulate: u32,  // attn_dv_add: 1 adds into the output
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: AttnParams;
@group(0) @binding(1) var<storage, read> qs: array<f32>;     // [B, Tq, width]
@group(0) @binding(2) var<storage, read> ks: array<f32>;     // [B, Tk, width]
@group(0) @binding(3) var<storage, read> v_add: array<f32>;  // [width] (additive only)
@group(0) @binding(4) var<storage, read> key_len: array<u32>;
@group(0) @binding(5) var<storage, read_write> scores: array<f32>;  // [B, Tq, Tk]

@compute @workgroup_size(64, 1)
fn attn_scores(@builtin(global_invocation_id) gid: vec3<u32>) {
    let j = gid.x;
    let i = gid.y;
    let b = gid.z;
    if (j >= p.tk || i >= p.tq || b >= p.batch) {
        return;
    }
    let out = (b * p.tq + i) * p.tk + j;
    if (j >= key_len[b]) {
        scores[out] = 0.0;
        return;
    }
    let qb = (b * p.tq + i) * p.width;
    let kb = (b * p.tk + j) * p.width;
    var s = 0.0;
    if (p.additive != 0u) {
        for (var a = 0u; a < p.width; a++) {
            s += v_add[a] * tanh_stable(qs[qb + a] + ks[kb + a]);
        }
    } else {
        for (var d = 0u; d < p.width; d++) {
            s += qs[qb + d] * ks[kb + d];
        }
        s *= p.scale;
    }
    scores[out] = s;
}

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

@group(0) @binding(1) var<storage, read> cw: array<f32>;      // weights [B, Tq, Tk]
@group(0) @binding(2) var<storage, read> cv: array<f32>;      // value [B, Tk, Dv]
@group(0) @binding(3) var<storage, read> ctx_len: array<u32>;
@group(0) @binding(4) var<storage, read_write> ctx_out: array<f32>;  // [B, Tq, Dv]

@compute @workgroup_size(64, 1)
fn attn_context(@builtin(global_invocation_id) gid: vec3<u32>) {
    let d = gid.x;
    let i = gid.y;
    let b = gid.z;
    if (d >= p.dv || i >= p.tq || b >= p.batch) {
        return;
    }
    let wb = (b * p.tq + i) * p.tk;
    var s = 0.0;
    for (var j = 0u; j < ctx_len[b]; j++) {
        s += cw[wb + j] * cv[(b * p.tk + j) * p.dv + d];
    }
    ctx_out[(b * p.tq + i) * p.dv + d] = s;
}

// ---------------------------------------------------------------------------------------------
// Backward. `attn_dscores`: per row (b, i), da_j = dctx_i . value_j (+ upstream dweights), then
// the softmax backward ds_j = w_j (da_j - sum_j' w_j' da_j'); masked keys get ds = 0.

@group(0) @binding(1) var<storage, read> g_w: array<f32>;      // weights [B, Tq, Tk]
@group(0) @binding(2) var<storage, read> g_val: array<f32>;    // value [B, Tk, Dv]
@group(0) @binding(3) var<storage, read> g_dctx: array<f32>;   // [B, Tq, Dv]
@group(0) @binding(4) var<storage, read> g_dw: array<f32>;     // upstream dweights or unused
@group(0) @binding(5) var<storage, read> g_len: array<u32>;
@group(0) @binding(6) var<storage, read_write> g_ds: array<f32>;  // [B, Tq, Tk]

@compute @workgroup_size(64)
fn attn_dscores(@builtin(global_invocation_id) gid: vec3<u32>) {
    let row = gid.x + gid.y * 65535u * 64u;
    if (row >= p.batch * p.tq) {
        return;
    }
    let b = row / p.tq;
    let len = g_len[b];
    let base = row * p.tk;
    var dot_wd = 0.0;
    for (var j = 0u; j < len; j++) {
        var da = 0.0;
        for (var d = 0u; d < p.dv; d++) {
            da += g_dctx[row * p.dv + d] * g_val[(b * p.tk + j) * p.dv + d];
        }
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

// dvalue[b, j, d] = sum_i w[b, i, j] dctx[b, i, d].
@group(0) @binding(1) var<storage, read> v_w: array<f32>;
@group(0) @binding(2) var<storage, read> v_dctx: array<f32>;
@group(0) @binding(3) var<storage, read_write> v_out: array<f32>;

@compute @workgroup_size(64, 1)
fn attn_dvalue(@builtin(global_invocation_id) gid: vec3<u32>) {
    let d = gid.x;
    let j = gid.y;
    let b = gid.z;
    if (d >= p.dv || j >= p.tk || b >= p.batch) {
        return;
    }
    var s = 0.0;
    for (var i = 0u; i < p.tq; i++) {
        s += v_w[(b * p.tq + i) * p.tk + j] * v_dctx[(b * p.tq + i) * p.dv + d];
    }
    v_out[(b * p.tk + j) * p.dv + d] = s;
}

// Gradients of the compared vectors. Dot scores: dq_i = scale sum_j ds_ij kp_j and
// dkp_j = scale sum_i ds_ij q_i. Additive: with u = tanh(qa_i + ka_j),
// dqa_i = sum_j ds_ij v (1 - u^2), dka_j = sum_i ds_ij v (1 - u^2).
// `side` 0 computes the query side [B, Tq, width], 1 the key side [B, Tk, width].
@group(0) @binding(1) var<storage, read> x_ds: array<f32>;    // [B, Tq, Tk]
@group(0) @binding(2) var<storage, read> x_q: array<f32>;     // [B, Tq, width]
@group(0) @binding(3) var<storage, read> x_k: array<f32>;     // [B, Tk, width]
@group(0) @binding(4) var<storage, read> x_v: array<f32>;     // [width] (additive)
@group(0) @binding(5) var<storage, read_write> x_out: array<f32>;

@compute @workgroup_size(64, 1)
fn attn_dside(@builtin(global_invocation_id) gid: vec3<u32>) {
    let a = gid.x;
    let i = gid.y;   // query index (side 0) or key index (side 1)
    let b = gid.z;
    let side = p.side;
    let n_own = select(p.tq, p.tk, side == 1u);
    let n_other = select(p.tk, p.tq, side == 1u);
    if (a >= p.width || i >= n_own || b >= p.batch) {
        return;
    }
    var s = 0.0;
    for (var o = 0u; o < n_other; o++) {
        var qi = i;
        var kj = o;
        if (side == 1u) {
            qi = o;
            kj = i;
        }
        let ds = x_ds[(b * p.tq + qi) * p.tk + kj];
        if (p.additive != 0u) {
            let u = tanh_stable(x_q[(b * p.tq + qi) * p.width + a] + x_k[(b * p.tk + kj) * p.width + a]);
            s += ds * x_v[a] * (1.0 - u * u);
        } else if (side == 0u) {
            s += ds * x_k[(b * p.tk + kj) * p.width + a];
        } else {
            s += ds * x_q[(b * p.tq + qi) * p.width + a];
        }
    }
    if (p.additive == 0u) {
        s *= p.scale;
    }
    x_out[(b * n_own + i) * p.width + a] = s;
}

// Additive only: dv[a] = sum over b, i, j of ds_ij tanh(qa_i + ka_j)[a], in a fixed order.
@compute @workgroup_size(64)
fn attn_dv_add(@builtin(global_invocation_id) gid: vec3<u32>) {
    let a = gid.x;
    if (a >= p.width) {
        return;
    }
    var s = 0.0;
    for (var b = 0u; b < p.batch; b++) {
        for (var i = 0u; i < p.tq; i++) {
            for (var j = 0u; j < p.tk; j++) {
                let ds = x_ds[(b * p.tq + i) * p.tk + j];
                s += ds * tanh_stable(x_q[(b * p.tq + i) * p.width + a] + x_k[(b * p.tk + j) * p.width + a]);
            }
        }
    }
    if (p.accumulate != 0u) {
        s += x_out[a];
    }
    x_out[a] = s;
}
