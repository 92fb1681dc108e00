// Dropout (crates/gpu/src/ops/dropout.rs): out = x * m, m = scale where the element's Philox
// word (philox.wgsl) is at least the threshold, 0 below it. A product, as PyTorch computes it,
// so a NaN stays NaN where dropped. Forward and backward are this one kernel (backward applies
// the forward's mask to dy). One invocation per block of four elements: one Philox call serves
// the four, as crates/core/src/philox.rs lays the stream out. Elements base .. base + n of x and
// out are written (all of them, or a chunk of rows), each by its index in the whole tensor.

{{DropoutParams}}

@group(0) @binding(0) var<uniform> p: DropoutParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

fn apply(i: u32, word: u32) {
    if (i >= p.base && i - p.base < p.n) {
        out[i] = x[i] * select(0.0, p.scale, word >= p.threshold);
    }
}

@compute @workgroup_size(64)
fn dropout_apply(@builtin(global_invocation_id) gid: vec3<u32>) {
    let block = p.base / 4u + gid.x + gid.y * 65535u * 64u;
    if (block >= p.blocks) {
        return;
    }
    let w = philox_block(vec2<u32>(p.seed_lo, p.seed_hi), p.stream, block);
    let i = 4u * block;
    apply(i, w.x);
    apply(i + 1u, w.y);
    apply(i + 2u, w.z);
    apply(i + 3u, w.w);
}
