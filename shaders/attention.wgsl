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
    _pad: u32,
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
