// Elementwise combinations, for trainers that join branches of a model: out = a·x + b·y.
// (Gradient flowing into a tensor used twice, e.g. encoder outputs as both keys and values,
// is the sum of the two.)

{{AxpbyParams}}

@group(0) @binding(0) var<uniform> p: AxpbyParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn axpby(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x + gid.y * 65535u * 64u;
    if (i >= p.n) {
        return;
    }
    out[i] = p.a * x[i] + p.b * y[i];
}

// out += a·x (in place: out is only read at its own index).
@group(0) @binding(2) var<storage, read_write> acc: array<f32>;

@compute @workgroup_size(64)
fn axpy_into(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x + gid.y * 65535u * 64u;
    if (i >= p.n) {
        return;
    }
    acc[i] = acc[i] + p.a * x[i];
}

// Copies n elements in blocks of `chunk`: element r of block o goes from
// src[src_off + o * src_stride + r] to dst[dst_off + o * dst_stride + r]. concat places each
// part with it, narrow cuts, narrow's gradient places into a cleared tensor. The host keeps
// every index inside both tensors. Bits move as u32, so any dtype, and every NaN payload,
// arrives unchanged.
{{StridedParams}}

@group(0) @binding(0) var<uniform> sp: StridedParams;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;

@compute @workgroup_size(64)
fn strided_copy(@builtin(global_invocation_id) gid: vec3<u32>) {
    let e = gid.x + gid.y * 65535u * 64u;
    if (e >= sp.n) {
        return;
    }
    let o = e / sp.chunk;
    let r = e - o * sp.chunk;
    dst[sp.dst_off + o * sp.dst_stride + r] = src[sp.src_off + o * sp.src_stride + r];
}
