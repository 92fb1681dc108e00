// Embedding gather: y[r, :] = weight[ids[r], :]. An id outside 0..V (which the host API rejects
// before upload, but device-produced ids may carry) reads nothing and yields a zero row.

{{GatherParams}}

@group(0) @binding(0) var<uniform> p: GatherParams;
@group(0) @binding(1) var<storage, read> weight: array<f32>;
@group(0) @binding(2) var<storage, read> ids: array<u32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(64, 4)
fn embedding_gather(@builtin(global_invocation_id) gid: vec3<u32>) {
    let d = gid.x;
    let r = gid.y + gid.z * 65535u * 4u;
    if (d >= p.dim || r >= p.rows) {
        return;
    }
    let id = ids[r];
    var v = 0.0;
    if (id < p.vocab) {
        v = weight[id * p.dim + d];
    }
    y[r * p.dim + d] = v;
}

// Backward: the table's gradient, without atomics. The host sorts positions by id (stably) when
// the ids are uploaded, so each distinct id's positions are one run of `order`, cut in segments
// of at most 16,384 (CPU adapters end an invocation's loops after 65,535 iterations). An
// invocation owns one (segment, d) and sums its rows in position order; a dispatch holds at
// most one segment per id, and an id's later segments come in later dispatches that add to the
// earlier sums, so the result is bit-reproducible.

{{ScatterParams}}

@group(0) @binding(0) var<uniform> sp: ScatterParams;
@group(0) @binding(1) var<storage, read> dy: array<f32>;        // [N, D]
@group(0) @binding(2) var<storage, read> order: array<u32>;     // positions sorted by id
@group(0) @binding(3) var<storage, read> starts: array<u32>;    // segment u is order[starts[2u]..starts[2u+1]]
@group(0) @binding(4) var<storage, read> seg_ids: array<u32>;   // the id of segment u
@group(0) @binding(5) var<storage, read_write> grad: array<f32>; // [V, D]

@compute @workgroup_size(64, 4)
fn embedding_scatter(@builtin(global_invocation_id) gid: vec3<u32>) {
    let d = gid.x;
    let k = gid.y + gid.z * 65535u * 4u;
    if (d >= sp.dim || k >= sp.segments) {
        return;
    }
    let u = sp.first + k;
    var s = 0.0;
    for (var p = starts[2u * u]; p < starts[2u * u + 1u]; p++) {
        s += dy[order[p] * sp.dim + d];
    }
    let out = seg_ids[u] * sp.dim + d;
    if (sp.accumulate != 0u) {
        s += grad[out];
    }
    grad[out] = s;
}
