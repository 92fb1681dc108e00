// Masked pooling over time: out[b, f] = mean or max of x[t, b, f] over t < lens[b], for x
// [T, B, F] or [B, T, F] (the strides s_t, s_b say which), and the gradients back to x.
//
// One invocation per output (b, f), i = b * F + f, so a workgroup reads 64 neighbouring
// features of one step. The loops stop at lens[b]: padded steps are never read, so whatever
// they hold (NaN in the tests) cannot reach a result; the backward kernels write 0 there. The
// host checks 1 <= lens[b] <= T; the `min` keeps every read in bounds whatever the buffer holds.
// Sums run in step order, and the maximum keeps the first step holding it (strict `>`), so
// results are deterministic. Mean and max are separate entries: a mode flag in the parameter
// block choosing between them would make lavapipe recompile per dispatch (shaders/README.md).

{{PoolParams}}

@group(0) @binding(0) var<uniform> p: PoolParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> lens: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

fn output_index(gid: vec3<u32>) -> u32 {
    return gid.x + gid.y * 65535u * 64u;
}

// Valid steps of output i's sequence, in 1..=T.
fn steps(b: u32) -> u32 {
    return clamp(lens[b], 1u, p.seq_len);
}

fn at(t: u32, b: u32, f: u32) -> u32 {
    return t * p.s_t + b * p.s_b + f;
}

// The first valid step holding the maximum of (b, f).
fn arg_max(b: u32, f: u32, len: u32) -> u32 {
    var best = 0u;
    var m = x[at(0u, b, f)];
    for (var t = 1u; t < len; t++) {
        let v = x[at(t, b, f)];
        if (v > m) {
            m = v;
            best = t;
        }
    }
    return best;
}

@compute @workgroup_size(64)
fn pool_mean(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = output_index(gid);
    if (i >= p.n) {
        return;
    }
    let b = i / p.features;
    let f = i % p.features;
    let len = steps(b);
    var s = 0.0;
    for (var t = 0u; t < len; t++) {
        s += x[at(t, b, f)];
    }
    out[i] = s / f32(len);
}

@compute @workgroup_size(64)
fn pool_max(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = output_index(gid);
    if (i >= p.n) {
        return;
    }
    let b = i / p.features;
    let f = i % p.features;
    out[i] = x[at(arg_max(b, f, steps(b)), b, f)];
}

@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(64)
fn pool_mean_backward(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = output_index(gid);
    if (i >= p.n) {
        return;
    }
    let b = i / p.features;
    let f = i % p.features;
    let len = steps(b);
    let share = dy[i] / f32(len);
    for (var t = 0u; t < p.seq_len; t++) {
        dx[at(t, b, f)] = select(0.0, share, t < len);
    }
}

@compute @workgroup_size(64)
fn pool_max_backward(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = output_index(gid);
    if (i >= p.n) {
        return;
    }
    let b = i / p.features;
    let f = i % p.features;
    let best = arg_max(b, f, steps(b));
    let g = dy[i];
    for (var t = 0u; t < p.seq_len; t++) {
        dx[at(t, b, f)] = select(0.0, g, t == best);
    }
}
