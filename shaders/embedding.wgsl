// Embedding gather: y[r, :] = weight[ids[r], :]. An id outside 0..V (which the host API rejects
// before upload, but device-produced ids may carry) reads nothing and yields a zero row.

struct GatherParams {
    rows: u32,   // number of ids
    dim: u32,    // D
    vocab: u32,  // V
    _pad: u32,
}

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
