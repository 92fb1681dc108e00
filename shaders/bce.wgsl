// Binary cross-entropy on logits (crates/gpu/src/ops/bce.rs; the formula and the masking rules
// are those of crates/cpu/src/bce.rs). Element i's loss is
// w * (pw * y * softplus(-x) + (1 - y) * softplus(x)), softplus(z) = max(z, 0) + log1p(exp(-|z|)),
// finite for any finite x. An ignored element (mask 0) contributes 0 through `select`, so NaN in
// its logit, target or weight never reaches a sum.
//
// The optional weight, pos_weight and mask are bound to stand-ins (the logits) when absent and
// never read into a result then (`select` on the has_* flags, a few instructions, not a code
// path). The reduction is deterministic: `bce_partial` sums fixed chunks of 1,024 elements per
// workgroup (16 strided loads per invocation, then a fixed tree), `bce_reduce` sums the chunks
// in one workgroup the same way; counts are u32, exact.

{{BceParams}}

@group(0) @binding(0) var<uniform> bp: BceParams;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<f32>;
@group(0) @binding(3) var<storage, read> weight: array<f32>;
@group(0) @binding(4) var<storage, read> pos_weight: array<f32>;
@group(0) @binding(5) var<storage, read> mask: array<u32>;

// log1p(e) for e in [0, 1]: below 1e-3 its series (error under e^4 / 4), where log(1 + e) would
// lose e's low bits to the rounding of 1 + e.
fn log1p_unit(e: f32) -> f32 {
    let series = e * (1.0 - e * (0.5 - e * (1.0 / 3.0)));
    return select(log(1.0 + e), series, e < 1e-3);
}

fn counted(i: u32) -> bool {
    return bp.has_mask == 0u || mask[i] != 0u;
}

// Element i's weight and positive weight (1 where absent).
fn factors(i: u32) -> vec2<f32> {
    let w = select(1.0, weight[i], bp.has_weight != 0u);
    let pw = select(1.0, pos_weight[i % bp.classes], bp.has_pos_weight != 0u);
    return vec2<f32>(w, pw);
}

// Element i's (loss, counted); (0, 0) where the mask ignores it.
fn bce_element(i: u32) -> vec2<f32> {
    let x = logits[i];
    let y = targets[i];
    let f = factors(i);
    let tail = log1p_unit(exp(-abs(x)));
    let l = f.x * (f.y * y * (max(-x, 0.0) + tail) + (1.0 - y) * (max(x, 0.0) + tail));
    return select(vec2<f32>(0.0), vec2<f32>(l, 1.0), counted(i));
}

@group(0) @binding(6) var<storage, read_write> losses: array<f32>;

// reduction "none": every element's loss.
@compute @workgroup_size(64)
fn bce_elements(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x + gid.y * 65535u * 64u;
    if (i >= bp.n) {
        return;
    }
    losses[i] = bce_element(i).x;
}

@group(0) @binding(6) var<storage, read_write> part_sums: array<f32>;
@group(0) @binding(7) var<storage, read_write> part_counts: array<u32>;

var<workgroup> tree_sum: array<f32, 64>;
var<workgroup> tree_count: array<u32, 64>;

// The fixed tree over the workgroup's 64 values (left half plus right half, halving); the
// total is in slot 0. Called by the whole workgroup.
fn tree(li: u32, s: f32, c: u32) {
    tree_sum[li] = s;
    tree_count[li] = c;
    workgroupBarrier();
    for (var w = 32u; w > 0u; w = w / 2u) {
        if (li < w) {
            tree_sum[li] += tree_sum[li + w];
            tree_count[li] += tree_count[li + w];
        }
        workgroupBarrier();
    }
}

// Chunk g = x + 65535 * y: the loss sum and count of elements 1024 * g .. 1024 * g + 1023.
@compute @workgroup_size(64)
fn bce_partial(
    @builtin(local_invocation_index) li: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let g = wid.x + wid.y * 65535u;
    if (g >= bp.groups) {
        return;
    }
    var s = 0.0;
    var c = 0u;
    for (var j = 0u; j < 16u; j++) {
        let i = g * 1024u + j * 64u + li;
        if (i < bp.n) {
            let e = bce_element(i);
            s += e.x;
            c += u32(e.y);
        }
    }
    tree(li, s, c);
    if (li == 0u) {
        part_sums[g] = tree_sum[0];
        part_counts[g] = tree_count[0];
    }
}

@group(0) @binding(1) var<storage, read> in_sums: array<f32>;
@group(0) @binding(2) var<storage, read> in_counts: array<u32>;
@group(0) @binding(3) var<storage, read_write> loss_out: array<f32>;   // [1]
@group(0) @binding(4) var<storage, read_write> count_out: array<u32>;  // [1]

// The chunks' sums in one workgroup (invocation i takes chunks i, i + 64, …): loss = the sum
// (reduction 2) or the sum over the count (1; 0 when nothing counts), and the count.
@compute @workgroup_size(64)
fn bce_reduce(@builtin(local_invocation_index) li: u32) {
    var s = 0.0;
    var c = 0u;
    for (var g = li; g < bp.groups; g += 64u) {
        s += in_sums[g];
        c += in_counts[g];
    }
    tree(li, s, c);
    if (li == 0u) {
        let total = tree_sum[0];
        let count = tree_count[0];
        let mean = select(0.0, total / f32(count), count > 0u);
        loss_out[0] = select(total, mean, bp.reduction == 1u);
        count_out[0] = count;
    }
}

@group(0) @binding(6) var<storage, read> dloss: array<f32>;
@group(0) @binding(7) var<storage, read> fwd_count: array<u32>;
@group(0) @binding(8) var<storage, read_write> dlogits: array<f32>;

// d loss / d x = w * (sigmoid(x) * (1 + (pw - 1) * y) - pw * y) times dloss / count (mean),
// dloss (sum) or dloss[i] (none); 0 where ignored. sigmoid from exp(-|x|): no overflow.
@compute @workgroup_size(64)
fn bce_backward(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x + gid.y * 65535u * 64u;
    if (i >= bp.n) {
        return;
    }
    let x = logits[i];
    let y = targets[i];
    let f = factors(i);
    let e = exp(-abs(x));
    let s = select(e / (1.0 + e), 1.0 / (1.0 + e), x >= 0.0);
    let d = f.x * (s * (1.0 + (f.y - 1.0) * y) - f.y * y);
    let up = dloss[select(0u, i, bp.reduction == 0u)];
    let count = fwd_count[0];
    let per = select(0.0, up / f32(count), count > 0u);
    let scale = select(up, per, bp.reduction == 1u);
    dlogits[i] = select(0.0, d * scale, counted(i));
}
