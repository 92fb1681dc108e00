// Log-softmax and softmax cross-entropy over the last axis of logits [N, C].
//
// `ce_rows` computes, per row, lse = max + ln(sum exp(x - max)) and nll = lse - x[target]
// (0 for an ignored target, marked on the device as 0xFFFFFFFF). `ce_reduce` sums the rows in
// one workgroup in a fixed order (strided partial sums, then a fixed tree), so the loss is
// bit-identical run to run: loss = sum(nll) / count, 0 when every target is ignored.
//
// `ce_rows` and `log_softmax_rows` give each row one invocation, which loops over its classes
// three times. For many classes (see WIDE_CLASSES in crates/gpu/src/ops/loss.rs) the `_wide` kernels
// give each row a workgroup of 64 instead: invocation i takes classes i, i + 64, …, and a fixed
// tree combines the partial maxima and sums. Wide rows spread over the workgroup on GPUs, and no
// invocation loops over all the classes, which a CPU adapter's loop limit would cut short.

{{RowParams}}

const IGNORED: u32 = 0xFFFFFFFFu;

@group(0) @binding(0) var<uniform> rp: RowParams;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<u32>;
@group(0) @binding(3) var<storage, read_write> row_out: array<f32>;  // [lse | nll | counted], 3N

fn row_lse(base: u32) -> f32 {
    var m = logits[base];
    for (var c = 1u; c < rp.classes; c++) {
        m = max(m, logits[base + c]);
    }
    var s = 0.0;
    for (var c = 0u; c < rp.classes; c++) {
        s += exp(logits[base + c] - m);
    }
    return m + log(s);
}

// Row r's outputs given its log-sum-exp: lse, nll (0 for an ignored target) and counted.
fn write_row(r: u32, base: u32, lse: f32) {
    let t = targets[r];
    var nll = 0.0;
    var counted = 0.0;
    if (t != IGNORED && t < rp.classes) {
        nll = lse - logits[base + t];
        counted = 1.0;
    }
    row_out[r] = lse;
    row_out[rp.rows + r] = nll;
    row_out[2u * rp.rows + r] = counted;
}

@compute @workgroup_size(64)
fn ce_rows(@builtin(global_invocation_id) gid: vec3<u32>) {
    let r = gid.x + gid.y * 65535u * 64u;
    if (r >= rp.rows) {
        return;
    }
    let base = r * rp.classes;
    let lse = row_lse(base);
    write_row(r, base, lse);
}

var<workgroup> row_part: array<f32, 64>;

// The tree over `row_part` (left half combined with right half, halving); every invocation gets
// the total. `is_max` combines by max instead of addition. Called by the whole workgroup.
fn row_combine(i: u32, v: f32, is_max: bool) -> f32 {
    row_part[i] = v;
    workgroupBarrier();
    for (var w = 32u; w > 0u; w = w / 2u) {
        if (i < w) {
            let o = row_part[i + w];
            row_part[i] = select(row_part[i] + o, max(row_part[i], o), is_max);
        }
        workgroupBarrier();
    }
    let total = row_part[0];
    workgroupBarrier();
    return total;
}

// row_lse() by the workgroup (invocation i takes classes i, i + 64, …).
fn row_lse_wide(i: u32, base: u32) -> f32 {
    var m = logits[base];
    for (var c = i; c < rp.classes; c += 64u) {
        m = max(m, logits[base + c]);
    }
    m = row_combine(i, m, true);
    var s = 0.0;
    for (var c = i; c < rp.classes; c += 64u) {
        s += exp(logits[base + c] - m);
    }
    return m + log(row_combine(i, s, false));
}

// ce_rows with one workgroup per row: row = x + 65535·y.
@compute @workgroup_size(64)
fn ce_rows_wide(@builtin(local_invocation_index) i: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let r = wid.x + wid.y * 65535u;
    if (r >= rp.rows) {
        return;
    }
    let base = r * rp.classes;
    let lse = row_lse_wide(i, base);
    if (i != 0u) {
        return;
    }
    write_row(r, base, lse);
}

@group(0) @binding(1) var<storage, read> rows_in: array<f32>;
@group(0) @binding(2) var<storage, read_write> loss_out: array<f32>;  // [loss, count]

var<workgroup> part_sum: array<f32, 64>;
var<workgroup> part_cnt: array<f32, 64>;

@compute @workgroup_size(64)
fn ce_reduce(@builtin(local_invocation_id) lid: vec3<u32>) {
    let i = lid.x;
    var s = 0.0;
    var n = 0.0;
    for (var r = i; r < rp.rows; r += 64u) {
        s += rows_in[rp.rows + r];
        n += rows_in[2u * rp.rows + r];
    }
    part_sum[i] = s;
    part_cnt[i] = n;
    workgroupBarrier();
    for (var w = 32u; w > 0u; w = w / 2u) {
        if (i < w) {
            part_sum[i] += part_sum[i + w];
            part_cnt[i] += part_cnt[i + w];
        }
        workgroupBarrier();
    }
    if (i == 0u) {
        var loss = 0.0;
        if (part_cnt[0] > 0.0) {
            loss = part_sum[0] / part_cnt[0];
        }
        loss_out[0] = loss;
        loss_out[1] = part_cnt[0];
    }
}

@group(0) @binding(2) var<storage, read_write> log_probs: array<f32>;

@compute @workgroup_size(64)
fn log_softmax_rows(@builtin(global_invocation_id) gid: vec3<u32>) {
    let r = gid.x + gid.y * 65535u * 64u;
    if (r >= rp.rows) {
        return;
    }
    let base = r * rp.classes;
    let lse = row_lse(base);
    for (var c = 0u; c < rp.classes; c++) {
        log_probs[base + c] = logits[base + c] - lse;
    }
}

// log_softmax_rows with one workgroup per row: row = x + 65535·y.
@compute @workgroup_size(64)
fn log_softmax_rows_wide(
    @builtin(local_invocation_index) i: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let r = wid.x + wid.y * 65535u;
    if (r >= rp.rows) {
        return;
    }
    let base = r * rp.classes;
    let lse = row_lse_wide(i, base);
    for (var c = i; c < rp.classes; c += 64u) {
        log_probs[base + c] = logits[base + c] - lse;
    }
}

{{BackParams}}

@group(0) @binding(0) var<uniform> cb: BackParams;
@group(0) @binding(1) var<storage, read> b_logits: array<f32>;
@group(0) @binding(2) var<storage, read> b_targets: array<u32>;
@group(0) @binding(3) var<storage, read> b_rows: array<f32>;   // forward's [lse | nll | counted]
@group(0) @binding(4) var<storage, read> b_loss: array<f32>;   // forward's [loss, count]
@group(0) @binding(5) var<storage, read_write> dlogits: array<f32>;

// d loss / d logits = (softmax - onehot(target)) * dloss / count; 0 on ignored rows.
@compute @workgroup_size(64, 4)
fn ce_backward(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    let r = gid.y + gid.z * 65535u * 4u;
    if (c >= cb.classes || r >= cb.rows) {
        return;
    }
    let t = b_targets[r];
    let count = b_loss[1];
    var g = 0.0;
    if (t != IGNORED && t < cb.classes && count > 0.0) {
        let p = exp(b_logits[r * cb.classes + c] - b_rows[r]);
        g = p;
        if (c == t) {
            g -= 1.0;
        }
        g *= cb.dloss / count;
    }
    dlogits[r * cb.classes + c] = g;
}
